//! Writes a [`Plan`] as real commits on top of `demo-base`, plus the `fix`
//! branch, and tags `demo-good` / `demo-bad`. Authors and dates are fixed, so
//! the same base, commit count and seed give the same commit ids.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::import::{BASE_DATE, BASE_TAG};
use super::patches::{self, SMP_C};
use super::plan::{Change, Plan, PlannedCommit};
use super::{Error, git_env};

/// Tag on the last good commit (the imported base).
pub const GOOD_TAG: &str = "demo-good";
/// Tag on the tip of the history (contains the regression).
pub const BAD_TAG: &str = "demo-bad";
/// Branch with the fix on top of the tip.
pub const FIX_BRANCH: &str = "fix";
/// Branch holding the demo history.
pub const DEMO_BRANCH: &str = "demo";

/// What a written demo history is: the facts a user (or a test) checks the
/// bisection against. Kept in `.git/csdci-demo.json` to reuse the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub commits: usize,
    pub seed: u64,
    pub base: String,
    pub good: String,
    pub bad: String,
    pub fix: String,
    /// The planted regression commit.
    pub regression: String,
    /// Commits that do not compile.
    pub broken: Vec<String>,
}

const STATE_FILE: &str = "csdci-demo.json";

/// Returns the history already in `dir` when it was written for (commits, seed).
pub fn existing(dir: &Path, commits: usize, seed: u64, base: &str) -> Option<History> {
    let text = std::fs::read_to_string(dir.join(".git").join(STATE_FILE)).ok()?;
    let h: History = serde_json::from_str(&text).ok()?;
    let bad = git_env(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{BAD_TAG}^{{commit}}"),
        ],
        &[],
    )
    .ok()?;
    let fix = git_env(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{FIX_BRANCH}"),
        ],
        &[],
    )
    .ok()?;
    (h.commits == commits && h.seed == seed && h.base == base && h.bad == bad && h.fix == fix)
        .then_some(h)
}

/// Writes `plan` on top of `base` in the repository at `dir`.
pub fn write(dir: &Path, plan: &Plan, seed: u64, base: &str) -> Result<History, Error> {
    // Also in a base imported before csdci turned gc off at import.
    super::import::disable_auto_gc(dir)?;
    git_env(dir, &["checkout", "-q", "-f", "-B", DEMO_BRANCH, base], &[])?;
    let mut broken = Vec::new();
    let mut regression = None;
    let mut broken_sha = String::new();
    for (i, commit) in plan.commits.iter().enumerate() {
        let body = match &commit.change {
            Change::Unbreak { .. } => {
                format!(
                    "{}\n\nFixes: {} (\"{}\")",
                    commit.body,
                    &broken_sha[..12],
                    plan.commits[plan.broken].subject
                )
            }
            _ => commit.body.clone(),
        };
        let path = apply(dir, &commit.change)?;
        let sha = commit_change(dir, &path, commit, &body, i + 1)?;
        if i == plan.regression {
            regression = Some(sha.clone());
        }
        if i == plan.broken {
            broken_sha = sha.clone();
        }
        if (plan.broken..plan.unbroken).contains(&i) {
            broken.push(sha);
        }
    }
    let bad = git_env(dir, &["rev-parse", "HEAD"], &[])?;
    git_env(dir, &["tag", "-f", GOOD_TAG, base], &[])?;
    git_env(dir, &["tag", "-f", BAD_TAG, &bad], &[])?;

    git_env(dir, &["checkout", "-q", "-f", "-B", FIX_BRANCH, &bad], &[])?;
    let fix_commit = PlannedCommit {
        subject: patches::FIX_SUBJECT.into(),
        body: format!(
            "{}\n\nFixes: {} (\"{}\")",
            patches::FIX_BODY,
            &regression.clone().unwrap_or_default()
                [..12.min(regression.as_ref().map_or(0, |r| r.len()))],
            patches::REGRESSION_SUBJECT
        ),
        author: ("Chuyi Zhou".into(), "zhouchuyi@example.org".into()),
        change: Change::Regression,
    };
    let text = read(dir, SMP_C)?;
    write_file(dir, SMP_C, &patches::fix(&text)?)?;
    let fix = commit_change(
        dir,
        SMP_C,
        &fix_commit,
        &fix_commit.body,
        plan.commits.len() + 1,
    )?;
    git_env(dir, &["checkout", "-q", "-f", DEMO_BRANCH], &[])?;

    let history = History {
        commits: plan.commits.len(),
        seed,
        base: base.to_string(),
        good: base.to_string(),
        bad,
        fix,
        regression: regression.ok_or(Error::TooFewCommits {
            asked: plan.commits.len(),
            min: 1,
        })?,
        broken,
    };
    let state = dir.join(".git").join(STATE_FILE);
    let json = serde_json::to_string_pretty(&history).map_err(|e| Error::Tool {
        what: "json".into(),
        detail: e.to_string(),
    })?;
    std::fs::write(&state, json).map_err(|e| Error::io(&state, e))?;
    Ok(history)
}

fn read(dir: &Path, path: &str) -> Result<String, Error> {
    let p = dir.join(path);
    std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))
}

fn write_file(dir: &Path, path: &str, text: &str) -> Result<(), Error> {
    let p = dir.join(path);
    std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
}

/// Applies one change to the work tree; returns the path it changed.
fn apply(dir: &Path, change: &Change) -> Result<String, Error> {
    match change {
        Change::Append { path, text } | Change::Break { path, text } => {
            let old = read(dir, path)?;
            write_file(dir, path, &format!("{old}{text}"))?;
            Ok(path.clone())
        }
        Change::Unbreak {
            path,
            broken,
            fixed,
        } => {
            let old = read(dir, path)?;
            let Some(at) = old.rfind(broken.as_str()) else {
                return Err(Error::Anchor {
                    file: "demo history",
                    what: format!("the broken helper in {path}"),
                    found: 0,
                });
            };
            let new = format!("{}{}{}", &old[..at], fixed, &old[at + broken.len()..]);
            write_file(dir, path, &new)?;
            Ok(path.clone())
        }
        Change::Regression => {
            let old = read(dir, SMP_C)?;
            write_file(dir, SMP_C, &patches::regression(&old)?)?;
            Ok(SMP_C.to_string())
        }
    }
}

/// Commits `path` with the planned author and a date `n` steps after the base.
fn commit_change(
    dir: &Path,
    path: &str,
    commit: &PlannedCommit,
    body: &str,
    n: usize,
) -> Result<String, Error> {
    let base = chrono::DateTime::parse_from_rfc3339(BASE_DATE).map_err(|e| Error::Tool {
        what: "date".into(),
        detail: e.to_string(),
    })?;
    let date = (base + chrono::Duration::minutes(157 * n as i64)).to_rfc3339();
    let (name, email) = (&commit.author.0, &commit.author.1);
    let message = format!(
        "{}\n\n{}\n\nSigned-off-by: {} <{}>\n",
        commit.subject, body, name, email
    );
    let env = [
        ("GIT_AUTHOR_NAME", name.as_str()),
        ("GIT_AUTHOR_EMAIL", email.as_str()),
        ("GIT_COMMITTER_NAME", name.as_str()),
        ("GIT_COMMITTER_EMAIL", email.as_str()),
        ("GIT_AUTHOR_DATE", date.as_str()),
        ("GIT_COMMITTER_DATE", date.as_str()),
    ];
    git_env(dir, &["add", "--", path], &[])?;
    git_env(dir, &["commit", "-q", "--no-verify", "-m", &message], &env)?;
    git_env(dir, &["rev-parse", "HEAD"], &[])
}

/// The tag name of the base, re-exported for callers.
pub fn base_tag() -> &'static str {
    BASE_TAG
}

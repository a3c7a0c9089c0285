//! Applying a series with `git am -3` on its base, in csdci's own worktree
//! of the job's tree (the user's repository is never written to).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::vcs::worktree::Worktree;

/// What `git am` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// One commit per patch, in order.
    Commits(Vec<String>),
    /// `git am -3` failed: its message (bounded).
    DoesNotApply(String),
}

/// The identity csdci commits with (git am needs a committer).
const IDENTITY: [(&str, &str); 2] = [
    ("GIT_COMMITTER_NAME", "csdci bot"),
    ("GIT_COMMITTER_EMAIL", "csdci-bot@localhost"),
];

/// Checks out `base` in `wt` and applies `mbox` with `git am -3`.
pub fn apply(wt: &Worktree, base: &str, mbox: &[u8]) -> crate::Result<Applied> {
    let _ = crate::vcs::git(wt.path(), &["am", "--abort"]);
    wt.checkout(base).map_err(crate::Error::from)?;
    let mut child = Command::new("git")
        .args(crate::vcs::NO_AUTO_GC)
        .arg("-C")
        .arg(wt.path())
        .args(["am", "-3", "--keep-cr", "--no-gpg-sign"])
        .envs(IDENTITY)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| crate::Error::from(crate::vcs::Error::Spawn(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(mbox);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| crate::Error::from(crate::vcs::Error::Spawn(e)))?;
    if !out.status.success() {
        let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
        msg.push_str(&String::from_utf8_lossy(&out.stderr));
        let _ = crate::vcs::git(wt.path(), &["am", "--abort"]);
        let msg: Vec<&str> = msg
            .lines()
            .filter(|l| !l.starts_with("hint:") && !l.trim().is_empty())
            .take(20)
            .collect();
        return Ok(Applied::DoesNotApply(msg.join("\n")));
    }
    let range = format!("{base}..HEAD");
    let list = crate::vcs::git(wt.path(), &["rev-list", "--reverse", &range])
        .map_err(crate::Error::from)?;
    Ok(Applied::Commits(list.lines().map(str::to_string).collect()))
}

/// Resolves `rev` in `repo`, `None` if it is not there.
pub fn resolve(repo: &Path, rev: &str) -> Option<String> {
    crate::vcs::resolve(repo, rev).ok()
}

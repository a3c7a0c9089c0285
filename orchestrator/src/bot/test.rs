//! Testing an applied series: build every patch in order (a patch that
//! breaks the build is named with the first compiler errors), run the tip
//! and the base `runs` times each, and compare. A new failure on the tip is
//! bisected inside the series (good = base, bad = tip: a binary search over
//! the patches, a commit bad as soon as one of its runs fails) to name the
//! guilty patch; a failure the base shows and the tip does not is reported
//! as fixed with the 95% bound of [`crate::service::fix::upper_95`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sandbox::Sandbox;
use crate::vcs::worktree::Worktree;

/// One run's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    Pass,
    /// Failed, with the end of its output.
    Fail(String),
    /// Could not test (exit 125, infra); not evidence.
    Skip(String),
}

/// Builds and tests commits of a series. Every build and run of untrusted
/// code happens in the sandbox.
pub trait SeriesTester {
    /// Builds `commit`: `Ok(Err(errors))` when it does not build.
    fn build(&mut self, commit: &str) -> crate::Result<Result<(), Vec<String>>>;
    /// Tests the built `commit` once.
    fn run(&mut self, commit: &str) -> crate::Result<Run>;
}

/// The `build:` / `run:` commands of a bot job, in the sandbox, in csdci's
/// worktree of the tree.
pub struct CommandTester {
    wt: Worktree,
    sandbox: Sandbox,
    build: String,
    run: String,
    log: PathBuf,
    built: Option<String>,
}

impl CommandTester {
    /// `build` and `run` are shell commands run from the worktree's top.
    pub fn new(wt: Worktree, sandbox: Sandbox, build: &str, run: &str, log: &Path) -> Self {
        CommandTester {
            wt,
            sandbox,
            build: build.to_string(),
            run: run.to_string(),
            log: log.to_path_buf(),
            built: None,
        }
    }
}

fn tail(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| crate::bot::reply::clean(l))
        .collect()
}

impl SeriesTester for CommandTester {
    fn build(&mut self, commit: &str) -> crate::Result<Result<(), Vec<String>>> {
        self.wt.checkout(commit).map_err(crate::Error::from)?;
        self.built = None;
        let ran = self
            .sandbox
            .run(self.wt.path(), &self.build, Some(&self.log))
            .map_err(|e| crate::Error::Usage(e.to_string()))?;
        if ran.success() {
            self.built = Some(commit.to_string());
            return Ok(Ok(()));
        }
        if ran.timed_out {
            return Ok(Err(vec![format!(
                "build stopped at the sandbox's time limit ({} s)",
                self.sandbox.limits.wall.as_secs()
            )]));
        }
        let mut errors = crate::build::compiler_errors(&ran.output);
        if errors.is_empty() {
            errors = tail(&ran.output, 8);
        }
        errors.truncate(8);
        if errors.is_empty() {
            errors.push(format!("build exited with {:?}", ran.code));
        }
        Ok(Err(errors))
    }

    fn run(&mut self, commit: &str) -> crate::Result<Run> {
        if self.built.as_deref() != Some(commit)
            && let Err(e) = self.build(commit)?
        {
            return Ok(Run::Skip(format!("does not build: {}", e.join("; "))));
        }
        let ran = self
            .sandbox
            .run(self.wt.path(), &self.run, Some(&self.log))
            .map_err(|e| crate::Error::Usage(e.to_string()))?;
        Ok(match ran.code {
            Some(0) => Run::Pass,
            Some(125) => Run::Skip("the test said 125 (cannot test)".into()),
            _ if ran.timed_out => Run::Fail("the test hit the sandbox's time limit".into()),
            _ => Run::Fail(tail(&ran.output, 12).join("\n")),
        })
    }
}

/// One patch's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchResult {
    /// 1..=K.
    pub idx: u32,
    /// Its commit.
    pub commit: String,
    /// `ok`, `failed` or `not_built` (after an earlier break).
    pub build: String,
    /// The first compiler errors.
    pub errors: Vec<String>,
    /// Runs of this commit (the tip, and commits the bisection tested).
    pub runs: u32,
    /// Failures among them.
    pub fails: u32,
}

/// What testing a series found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// `git am -3` failed.
    DoesNotApply { message: String },
    /// The base itself does not build or cannot be tested.
    BaseUntestable { reason: String },
    /// Patch `patch` breaks the build.
    BuildFailed { patch: u32, errors: Vec<String> },
    /// Base and tip pass every run.
    Clean { runs: u32 },
    /// The tip fails, the base does not: patch `guilty` is the first bad.
    Regression {
        guilty: u32,
        tip_fails: u32,
        base_fails: u32,
        runs: u32,
        excerpt: String,
    },
    /// The base fails, the tip passes every run.
    Fixes {
        runs: u32,
        base_fails: u32,
        base_runs: u32,
        upper_95: f64,
    },
    /// Both fail.
    StillFails {
        base_fails: u32,
        tip_fails: u32,
        runs: u32,
        excerpt: String,
    },
    /// The tests could not run (every run skipped).
    Infra { reason: String },
}

impl Outcome {
    /// The short name stored in `series.result`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::DoesNotApply { .. } => "does_not_apply",
            Outcome::BaseUntestable { .. } => "base_untestable",
            Outcome::BuildFailed { .. } => "build_failed",
            Outcome::Clean { .. } => "clean",
            Outcome::Regression { .. } => "regression",
            Outcome::Fixes { .. } => "fixes",
            Outcome::StillFails { .. } => "still_fails",
            Outcome::Infra { .. } => "infra",
        }
    }
}

/// Runs `commit` up to `runs` times; stops at the first failure when
/// `stop_at_fail`. Returns (counted runs, failures, first failure's text).
fn runs_of(
    t: &mut dyn SeriesTester,
    commit: &str,
    runs: u32,
    stop_at_fail: bool,
) -> crate::Result<(u32, u32, Option<String>)> {
    let (mut done, mut fails, mut first, mut skips) = (0, 0, None, 0);
    while done < runs {
        match t.run(commit)? {
            Run::Pass => done += 1,
            Run::Fail(text) => {
                done += 1;
                fails += 1;
                first.get_or_insert(text);
                if stop_at_fail {
                    break;
                }
            }
            Run::Skip(reason) => {
                skips += 1;
                if skips >= 3 {
                    first.get_or_insert(reason);
                    break;
                }
            }
        }
    }
    Ok((done, fails, first))
}

/// Runs of the base already known (a nightly job tested it with the same
/// spec): the base is then neither built nor run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownBase {
    pub runs: u32,
    pub fails: u32,
    /// Where they come from, as the reply says it
    /// (`3 clean runs from the nightly job smp on 2026-12-03`).
    pub source: String,
}

/// Tests the series `commits` (patch 1..=K) on `base` (its runs taken from
/// `known` when given).
pub fn test_series(
    t: &mut dyn SeriesTester,
    base: &str,
    commits: &[String],
    runs: u32,
    known: Option<&KnownBase>,
    progress: &mut dyn FnMut(&str),
) -> crate::Result<(Outcome, Vec<PatchResult>)> {
    let runs = runs.max(1);
    let mut patches: Vec<PatchResult> = commits
        .iter()
        .enumerate()
        .map(|(i, c)| PatchResult {
            idx: i as u32 + 1,
            commit: c.clone(),
            build: "not_built".into(),
            errors: Vec::new(),
            runs: 0,
            fails: 0,
        })
        .collect();
    for i in 0..patches.len() {
        progress(&format!("building patch {}/{}", i + 1, patches.len()));
        match t.build(&commits[i])? {
            Ok(()) => patches[i].build = "ok".into(),
            Err(errors) => {
                patches[i].build = "failed".into();
                patches[i].errors = errors.clone();
                return Ok((
                    Outcome::BuildFailed {
                        patch: i as u32 + 1,
                        errors,
                    },
                    patches,
                ));
            }
        }
    }
    let Some(tip) = commits.last() else {
        return Ok((Outcome::Clean { runs: 0 }, patches));
    };
    progress(&format!("testing the tip, {runs} runs"));
    let (tip_runs, tip_fails, tip_text) = runs_of(t, tip, runs, false)?;
    if let Some(p) = patches.last_mut() {
        p.runs = tip_runs;
        p.fails = tip_fails;
    }
    if tip_runs == 0 {
        return Ok((
            Outcome::Infra {
                reason: tip_text.unwrap_or_else(|| "no run counted".into()),
            },
            patches,
        ));
    }
    let (base_runs, base_fails) = match known {
        Some(k) => {
            progress(&format!("the base: {}", k.source));
            (k.runs, k.fails)
        }
        None => {
            progress(&format!("testing the base, {runs} runs"));
            if let Err(errors) = t.build(base)? {
                return Ok((
                    Outcome::BaseUntestable {
                        reason: format!("the base does not build: {}", errors.join("; ")),
                    },
                    patches,
                ));
            }
            let (r, f, _) = runs_of(t, base, runs, false)?;
            (r, f)
        }
    };
    if base_runs == 0 {
        return Ok((
            Outcome::BaseUntestable {
                reason: "no run of the base counted".into(),
            },
            patches,
        ));
    }
    let outcome = match (base_fails > 0, tip_fails > 0) {
        (false, false) => Outcome::Clean { runs: tip_runs },
        (true, false) => Outcome::Fixes {
            runs: tip_runs,
            base_fails,
            base_runs,
            upper_95: crate::service::fix::upper_95(tip_runs, 0),
        },
        (true, true) => Outcome::StillFails {
            base_fails,
            tip_fails,
            runs: tip_runs,
            excerpt: tip_text.unwrap_or_default(),
        },
        (false, true) => {
            // good = base (index 0), bad = tip (index K).
            let (mut lo, mut hi) = (0usize, commits.len());
            let mut excerpt = tip_text.unwrap_or_default();
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                progress(&format!("bisecting: testing patch {mid}/{}", commits.len()));
                let (r, f, text) = runs_of(t, &commits[mid - 1], runs, true)?;
                patches[mid - 1].runs += r;
                patches[mid - 1].fails += f;
                if f > 0 {
                    hi = mid;
                    if let Some(x) = text {
                        excerpt = x;
                    }
                } else {
                    lo = mid;
                }
            }
            Outcome::Regression {
                guilty: hi as u32,
                tip_fails,
                base_fails,
                runs: tip_runs,
                excerpt,
            }
        }
    };
    Ok((outcome, patches))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits "0".."K"; `bad_from` and after fail, `broken` does not build.
    struct Fake {
        bad_from: Option<usize>,
        broken: Option<usize>,
        base_bad: bool,
    }

    /// A fake that records which commits it built and ran.
    struct Recording(Fake, Vec<String>);
    impl SeriesTester for Recording {
        fn build(&mut self, c: &str) -> crate::Result<Result<(), Vec<String>>> {
            self.1.push(format!("build {c}"));
            self.0.build(c)
        }
        fn run(&mut self, c: &str) -> crate::Result<Run> {
            self.1.push(format!("run {c}"));
            self.0.run(c)
        }
    }
    impl SeriesTester for Fake {
        fn build(&mut self, c: &str) -> crate::Result<Result<(), Vec<String>>> {
            let i: usize = c.parse().unwrap();
            Ok(if Some(i) == self.broken {
                Err(vec!["a.c:1:1: error: x".into()])
            } else {
                Ok(())
            })
        }
        fn run(&mut self, c: &str) -> crate::Result<Run> {
            let i: usize = c.parse().unwrap();
            let bad = (i == 0 && self.base_bad) || self.bad_from.is_some_and(|b| i >= b);
            Ok(if bad {
                Run::Fail("BUG".into())
            } else {
                Run::Pass
            })
        }
    }

    fn commits(k: usize) -> Vec<String> {
        (1..=k).map(|i| i.to_string()).collect()
    }

    #[test]
    fn names_the_guilty_patch() {
        for k in 1..=9 {
            for b in 1..=k {
                let mut f = Fake {
                    bad_from: Some(b),
                    broken: None,
                    base_bad: false,
                };
                let (o, _) = test_series(&mut f, "0", &commits(k), 3, None, &mut |_| {}).unwrap();
                assert!(
                    matches!(o, Outcome::Regression { guilty, .. } if guilty as usize == b),
                    "{k} {b} {o:?}"
                );
            }
        }
    }

    #[test]
    fn clean_fix_and_build_break() {
        let mut f = Fake {
            bad_from: None,
            broken: None,
            base_bad: false,
        };
        let (o, _) = test_series(&mut f, "0", &commits(3), 5, None, &mut |_| {}).unwrap();
        assert_eq!(o, Outcome::Clean { runs: 5 });
        let mut f = Fake {
            bad_from: None,
            broken: None,
            base_bad: true,
        };
        let (o, _) = test_series(&mut f, "0", &commits(2), 10, None, &mut |_| {}).unwrap();
        assert!(matches!(
            o,
            Outcome::Fixes {
                runs: 10,
                base_fails: 10,
                ..
            }
        ));
        let mut f = Fake {
            bad_from: None,
            broken: Some(1),
            base_bad: false,
        };
        let (o, p) = test_series(&mut f, "0", &commits(2), 1, None, &mut |_| {}).unwrap();
        assert!(matches!(o, Outcome::BuildFailed { patch: 1, .. }));
        assert_eq!(p[1].build, "not_built");
    }

    #[test]
    fn a_known_base_is_neither_built_nor_run() {
        let known = KnownBase {
            runs: 4,
            fails: 0,
            source: "4 clean runs from the nightly job n on 2026-12-03".into(),
        };
        let mut f = Recording(
            Fake {
                bad_from: Some(2),
                broken: None,
                base_bad: false,
            },
            Vec::new(),
        );
        let (o, _) = test_series(&mut f, "0", &commits(3), 2, Some(&known), &mut |_| {}).unwrap();
        assert!(
            matches!(
                o,
                Outcome::Regression {
                    guilty: 2,
                    base_fails: 0,
                    ..
                }
            ),
            "{o:?}"
        );
        assert!(!f.1.iter().any(|x| x.ends_with(" 0")), "{:?}", f.1);
        // A base the nightly job saw fail: the clean tip fixes it.
        let known = KnownBase {
            runs: 5,
            fails: 2,
            source: "2 failures in 5 runs".into(),
        };
        let mut f = Fake {
            bad_from: None,
            broken: None,
            base_bad: false,
        };
        let (o, _) = test_series(&mut f, "0", &commits(1), 3, Some(&known), &mut |_| {}).unwrap();
        assert!(
            matches!(
                o,
                Outcome::Fixes {
                    runs: 3,
                    base_fails: 2,
                    base_runs: 5,
                    ..
                }
            ),
            "{o:?}"
        );
    }
}

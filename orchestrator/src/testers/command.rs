//! The `--run CMD` tester, like `git bisect run`: `sh -c CMD` in a csdci-owned
//! worktree checked out at the commit. Exit 0: good; 125: cannot be tested;
//! 1..=124: bad; 126 or 127 (the command was not found or is not executable),
//! 128 or more (or killed by a signal): abort.
//!
//! The command runs in its own process group under a guardian shell (see
//! [`crate::process_group`]): when it ends, when it runs past its timeout, when
//! csdci is asked to stop (SIGINT/SIGTERM: the run ends as interrupted, the
//! bisection stays resumable) and when csdci dies (kill -9 included), the whole
//! group is killed, so nothing the script started keeps running in the
//! worktree.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::process_group::{self, Group};
use crate::testers::{Prepared, RunOutcome, RunReport, Tester};
use crate::vcs::worktree::Worktree;

/// What a run that exceeds its timeout means (never "bad").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The commit cannot be tested (like exit 125).
    Skip,
    /// The bisection stops (like exit 128 or more).
    Abort,
}

/// Runs a shell command per test.
pub struct CommandTester {
    cmd: String,
    repo: PathBuf,
    worktree: Worktree,
    log_dir: PathBuf,
    timeout: Option<(Duration, OnTimeout)>,
}

impl CommandTester {
    /// A tester running `cmd` in a worktree at `worktree` of `repo`, writing each
    /// run's output to `log_dir`. Installs csdci's SIGINT/SIGTERM handler, so
    /// that a signal ends the run (its process group killed) as interrupted.
    pub fn new(repo: &Path, worktree: &Path, log_dir: &Path, cmd: &str) -> crate::Result<Self> {
        crate::interrupt::install_interrupt_handler();
        let worktree = Worktree::ensure(repo, worktree)?;
        std::fs::create_dir_all(log_dir).map_err(|e| crate::Error::io(log_dir, e))?;
        Ok(CommandTester {
            cmd: cmd.to_string(),
            repo: repo.to_path_buf(),
            worktree,
            log_dir: log_dir.to_path_buf(),
            timeout: None,
        })
    }

    /// Kills a run after `timeout` (its whole process group) and counts it as
    /// `on_timeout` says: untestable, or the end of the bisection.
    pub fn with_timeout(mut self, timeout: Duration, on_timeout: OnTimeout) -> Self {
        self.timeout = Some((timeout, on_timeout));
        self
    }
}

/// `N s` for a timeout: whole seconds without a fraction.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

impl Tester for CommandTester {
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared> {
        if crate::interrupt::interrupted() {
            return Err(crate::Error::Interrupted);
        }
        self.worktree.checkout(commit)?;
        Ok(Prepared::Ready { artifact_id: None })
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport> {
        if crate::interrupt::interrupted() {
            return Err(crate::Error::Interrupted);
        }
        let short = crate::events::short(commit);
        let log = self.log_dir.join(format!("{short}-{attempt}.log"));
        let out = File::create(&log).map_err(|e| crate::Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| crate::Error::io(&log, e))?;
        let start = Instant::now();
        let mut cmd = process_group::command("csdci-run", "sh");
        cmd.arg("-c")
            .arg(&self.cmd)
            .current_dir(self.worktree.path())
            .env("CSDCI_COMMIT", commit)
            .env("CSDCI_ATTEMPT", attempt.to_string())
            .env("CSDCI_REPO", &self.repo)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut group = Group::spawn(&mut cmd).map_err(|e| crate::Error::io("sh", e))?;
        let deadline = self.timeout.map(|(t, _)| start + t);
        let waited = group.wait_while(|| {
            !crate::interrupt::interrupted() && deadline.is_none_or(|d| Instant::now() < d)
        });
        let status = match waited {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = group.kill();
                if crate::interrupt::interrupted() {
                    return Err(crate::Error::Interrupted);
                }
                let (timeout, on_timeout) = self.timeout.expect("a deadline passed");
                let what = format!("timed out after {}", seconds(timeout));
                return match on_timeout {
                    OnTimeout::Skip => Ok(RunReport {
                        outcome: RunOutcome::Skip { reason: what },
                        analysis: None,
                        console_log: Some(log),
                        run_id: None,
                        seconds: start.elapsed().as_secs_f64(),
                    }),
                    OnTimeout::Abort => Err(crate::bisect::Error::Aborted {
                        commit: commit.to_string(),
                        status: what,
                        log,
                    }
                    .into()),
                };
            }
            Err(e) => return Err(crate::Error::io("sh", e)),
        };
        drop(group);
        let seconds = start.elapsed().as_secs_f64();
        let outcome = match status.code() {
            Some(0) => RunOutcome::Pass,
            Some(125) => RunOutcome::Skip {
                reason: "--run command exited 125".into(),
            },
            Some(1..=124) => RunOutcome::Fail,
            code => {
                let status = match code {
                    Some(c @ (126 | 127)) => {
                        format!("exit {c}: command not found or not executable")
                    }
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".to_string(),
                };
                return Err(crate::bisect::Error::Aborted {
                    commit: commit.to_string(),
                    status,
                    log,
                }
                .into());
            }
        };
        Ok(RunReport {
            outcome,
            analysis: None,
            console_log: Some(log),
            run_id: None,
            seconds,
        })
    }
}

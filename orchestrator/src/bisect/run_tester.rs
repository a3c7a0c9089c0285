//! The `--run CMD` tester, like `git bisect run`: `sh -c CMD` in a csdci-owned
//! worktree checked out at the commit. Exit 0: good; 125: cannot be tested;
//! 1..=127 otherwise: bad; 128 or more (or killed by a signal): abort.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::sys::signal::Signal;

use crate::tester::{Prepared, RunOutcome, RunReport, Tester};
use crate::vcs::worktree::Worktree;

/// Runs a shell command per test.
pub struct RunTester {
    cmd: String,
    repo: PathBuf,
    worktree: Worktree,
    log_dir: PathBuf,
}

impl RunTester {
    /// A tester running `cmd` in a worktree at `worktree` of `repo`, writing each
    /// run's output to `log_dir`.
    pub fn new(repo: &Path, worktree: &Path, log_dir: &Path, cmd: &str) -> crate::Result<Self> {
        let worktree = Worktree::ensure(repo, worktree)?;
        std::fs::create_dir_all(log_dir).map_err(|e| crate::Error::io(log_dir, e))?;
        Ok(RunTester {
            cmd: cmd.to_string(),
            repo: repo.to_path_buf(),
            worktree,
            log_dir: log_dir.to_path_buf(),
        })
    }
}

impl Tester for RunTester {
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared> {
        self.worktree.checkout(commit)?;
        Ok(Prepared::Ready { artifact_id: None })
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport> {
        let short = &commit[..commit.len().min(12)];
        let log = self.log_dir.join(format!("{short}-{attempt}.log"));
        let out = File::create(&log).map_err(|e| crate::Error::io(&log, e))?;
        let err = out.try_clone().map_err(|e| crate::Error::io(&log, e))?;
        let start = Instant::now();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&self.cmd)
            .current_dir(self.worktree.path())
            .env("CSDCI_COMMIT", commit)
            .env("CSDCI_ATTEMPT", attempt.to_string())
            .env("CSDCI_REPO", &self.repo)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let status = cmd
            .status()
            .map_err(|e| crate::Error::io(PathBuf::from("sh"), e))?;
        let seconds = start.elapsed().as_secs_f64();
        let outcome = match status.code() {
            Some(0) => RunOutcome::Pass,
            Some(125) => RunOutcome::Skip {
                reason: "--run command exited 125".into(),
            },
            Some(c @ 1..=127) => {
                let _ = c;
                RunOutcome::Fail
            }
            code => {
                return Err(super::Error::Aborted {
                    commit: commit.to_string(),
                    status: code
                        .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}")),
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

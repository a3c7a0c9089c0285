//! `csdci bisect`: drives the Bayesian engine (`csdci-bisect`) with a
//! [`crate::testers::Tester`], journals every step in the store before acting on
//! the next, and writes the report.
//!
//! Use: [`driver::create`] a bisection (resolves revisions, checks settings), then
//! [`driver::run`] it with any tester; `run` on an existing id resumes it.

pub mod adopt;
pub mod command;
pub mod driver;
pub mod guest_time;
pub mod outcome;
pub mod policy;
pub mod predicate;
pub mod report;

use std::path::PathBuf;

pub use driver::{Settings, Start, create, run};
pub use policy::Policy;
pub use predicate::Predicate;
pub use report::Report;

/// Runs of the bad tip, at most, that verify it fails before bisecting with the
/// QEMU pipeline (`--verify-bad`): syzbot's and the seed reporter's first step.
/// Verification ends at the third failure, so a bug that fails 4 runs in 5
/// costs about 4 runs; 20 runs miss a bug failing 3 runs in 10 only 0.08% of
/// the time (10 runs would miss it 2.8%). Its failures also measure the failure
/// rate, so a good commit is settled in a few runs instead of many.
pub const DEFAULT_VERIFY_BAD_RUNS: u32 = 20;

/// The engine's settle tolerance with the QEMU pipeline (see
/// [`csdci_bisect::Config::settle_tolerance`]): there a run (~60 s of
/// scftorture) costs more than an incremental build (10-35 s, or none when the
/// artifact cache has the kernel), so a consistent commit is left sooner. On a
/// 62-commit history with the culprit at the tip this saves a quarter of the
/// runs, with the same accuracy in `csdci bench bisect-sim`-style simulation.
pub const PIPELINE_SETTLE_TOLERANCE: f64 = 3.0;

/// Engine settings for bisecting with the QEMU pipeline: the bad tip verified
/// first, and the settle tolerance and split of expensive runs (git's build
/// count is the `--run` guarantee; here the posterior's split saves runs).
pub fn for_pipeline(cfg: csdci_bisect::Config) -> csdci_bisect::Config {
    csdci_bisect::Config {
        verify_bad_runs: DEFAULT_VERIFY_BAD_RUNS,
        settle_tolerance: PIPELINE_SETTLE_TOLERANCE,
        split_interval: false,
        ..cfg
    }
}

/// Engine settings for a deterministic test (`--deterministic`): a bad commit
/// always fails and a good one never does (up to 1e-9, so a contradiction is
/// noticed instead of dividing by zero), so one run settles a commit and the
/// engine splits as `git bisect` does; the tip is trusted, as git trusts it.
pub fn for_deterministic(cfg: csdci_bisect::Config) -> csdci_bisect::Config {
    csdci_bisect::Config {
        p_grid: vec![1.0 - 1e-9],
        false_fail: vec![1e-9],
        settle_runs: 1,
        split_interval: true,
        verify_bad_runs: 0,
        ..cfg
    }
}

/// Bisection errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the --run command aborted the bisection at {commit} ({status}); its output is in {}", log.display())]
    Aborted {
        commit: String,
        status: String,
        log: PathBuf,
    },
    #[error(
        "infrastructure failed {attempts} times in a row at {commit}: {reason} (never counted as evidence; fix it and run 'csdci bisect --resume {id}')"
    )]
    Infra {
        id: i64,
        commit: String,
        attempts: u32,
        reason: String,
    },
    #[error("interrupted; nothing finished is lost: continue with 'csdci bisect --resume {id}'")]
    Interrupted { id: i64 },
    #[error(
        "bisection {0} is being run by another csdci process right now: wait for it to end, or stop it, then 'csdci bisect --resume {0}'"
    )]
    Busy(i64),
    #[error("engine: {0}")]
    Engine(#[from] csdci_bisect::Error),
    #[error("bisection {0} not found (see 'csdci bisect list')")]
    NotFound(i64),
    #[error("bisection {id}: stored settings are unreadable: {msg}")]
    Settings { id: i64, msg: String },
}

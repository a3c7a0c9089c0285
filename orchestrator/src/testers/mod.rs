//! Testers: the one interface the bisection engine sees, "prepare commit C,
//! run it, tell me what happened", and its implementations: [`local`] (the
//! QEMU pipeline on this host) and [`command`] (`--run CMD`, like `git bisect
//! run`). A LAVA lab will be one more module here.

pub mod command;
pub mod local;

use std::path::PathBuf;

use csdci_console::Analysis;

/// Result of preparing (building / checking out) a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Ready to run. `artifact_id` identifies the built kernel bytes (e.g. sha256
    /// of vmlinux + modules); two commits with the same id are the same kernel.
    Ready { artifact_id: Option<String> },
    /// Cannot be tested (does not build, `--run` said 125, ...). Not evidence.
    Untestable { reason: String },
}

/// What one run of a prepared commit showed about the kernel.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The workload finished and nothing was found.
    Pass,
    /// The kernel failed (the analysis, when there is one, says how).
    Fail,
    /// This commit cannot be tested; not evidence.
    Skip { reason: String },
    /// The test infrastructure failed (QEMU died, host OOM, ...); never evidence.
    Infra { reason: String },
}

/// One run's report.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub outcome: RunOutcome,
    /// Console analysis, when the tester reads a console.
    pub analysis: Option<Analysis>,
    /// Where the console log was stored.
    pub console_log: Option<PathBuf>,
    /// Row id in the store's `runs` table, when the tester records runs there.
    pub run_id: Option<i64>,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
}

/// Tests commits. Implementations own every process they start.
pub trait Tester {
    /// Builds or checks out `commit`.
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared>;
    /// Runs the prepared `commit` once; `attempt` counts runs of this commit from 0.
    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport>;
}

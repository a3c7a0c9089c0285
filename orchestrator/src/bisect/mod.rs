//! `csdci bisect`: drives the Bayesian engine (`csdci-bisect`) with a
//! [`crate::tester::Tester`], journals every step in the store before acting on
//! the next, and writes the report.
//!
//! Use: [`driver::create`] a bisection (resolves revisions, checks settings), then
//! [`driver::run`] it with any tester; `run` on an existing id resumes it.

pub mod driver;
pub mod predicate;
pub mod report;
pub mod run_tester;

use std::path::PathBuf;

pub use driver::{Settings, Start, create, run};
pub use predicate::Predicate;
pub use report::Report;
pub use run_tester::RunTester;

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
    #[error("engine: {0}")]
    Engine(#[from] csdci_bisect::Error),
    #[error("bisection {0} not found (see 'csdci bisect list')")]
    NotFound(i64),
    #[error("bisection {id}: stored settings are unreadable: {msg}")]
    Settings { id: i64, msg: String },
}

//! One night of a job: fetch each branch into csdci's mirror, build the head
//! once, run every cell, compare with the last night that tested each cell,
//! open, attach or fix regressions, bisect new ones and queue the mails.
//! Everything is written to the store before it is acted on, so a csdci
//! stopped mid-night resumes it: finished cells are not run again and an
//! unfinished bisection continues.

use std::sync::Arc;

use crate::events::Sink;
use crate::jobs::Job;
use crate::service::slots::Slots;
use crate::store::Store;
use crate::store::nights::NightCell;

/// How a night is run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The dashboard's public URL (`https://ci.example.org`): mails link to
    /// the regression's page there.
    pub public_url: Option<String>,
    /// Guest slots shared by every job of a `csdci serve` (none: no bound).
    pub guests: Option<Arc<Slots>>,
}

/// What one branch's night did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BranchNight {
    /// The branch.
    pub branch: String,
    /// The night's row id.
    pub night_id: i64,
    /// `unchanged`, `tested` or `infra`.
    pub status: String,
    /// Why (infra).
    pub reason: Option<String>,
    /// The head tested.
    pub head: Option<String>,
    /// The cells and their results.
    pub cells: Vec<NightCell>,
    /// Regressions this night opened.
    pub opened: Vec<i64>,
    /// Open regressions this night showed again.
    pub attached: Vec<i64>,
    /// Regressions this night marked fixed.
    pub fixed: Vec<i64>,
}

/// What a night of a job did, per branch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobNight {
    /// The job.
    pub job: String,
    /// One entry per branch.
    pub branches: Vec<BranchNight>,
}

/// Runs one night of `job` now (resuming an unfinished one), holding the
/// job's lock: [`crate::Error::JobBusy`] when another process runs it.
pub fn run_job(store: &Store, job: &Job, opts: &Options, events: &Sink) -> crate::Result<JobNight> {
    let _ = (store, job, opts, events);
    Err(crate::Error::Usage("nights are not implemented yet".into()))
}

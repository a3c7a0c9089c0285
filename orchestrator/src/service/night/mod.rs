//! One night of a job: fetch each branch into csdci's clone of the tree,
//! build the head once, run every cell, compare with the last night that
//! tested each cell ([`compare`]), open, attach or fix regressions, bisect
//! new ones and queue the mails. Everything is written to the store before it
//! is acted on, so a csdci stopped mid-night resumes it: finished cells are
//! not run again and an unfinished bisection continues.

pub mod cells;
pub mod compare;
pub mod keep;

use std::path::Path;
use std::sync::Arc;

use crate::bisect::predicate::Predicate;
use crate::events::{Event, Sink};
use crate::jobs::Job;
use crate::service::slots::Slots;
use crate::spec::RunSpec;
use crate::store::Store;
use crate::store::nights::NightCell;
use crate::store::regressions::{NewRegression, Regression};
use crate::testers::TesterSpec;
use crate::testers::command::OnTimeout;
use crate::vcs::fetch::Remote;

use compare::Action;

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
    /// Bisections that ended this night: (regression, bisection, status,
    /// culprit).
    pub bisected: Vec<Bisected>,
}

/// A bisection of a regression that ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bisected {
    /// The regression.
    pub regression: i64,
    /// The bisection.
    pub bisection: i64,
    /// Its status (`culprit`, `doubtful`, ...).
    pub status: String,
    /// The culprit's sha.
    pub culprit: Option<String>,
}

/// What a night of a job did, per branch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobNight {
    /// The job.
    pub job: String,
    /// One entry per branch.
    pub branches: Vec<BranchNight>,
    /// Mails sent at the end of the night.
    pub mails_sent: u32,
    /// Mails that could not be sent (kept; retried next night).
    pub mails_failed: u32,
}

/// Where csdci keeps its clones of job trees.
pub fn trees_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("jobs").join("trees")
}

/// Runs one night of `job` now (resuming an unfinished one), holding the
/// job's lock: [`crate::Error::JobBusy`] when another process runs it.
pub fn run_job(store: &Store, job: &Job, opts: &Options, events: &Sink) -> crate::Result<JobNight> {
    let lock_path = store
        .data_dir()
        .join("jobs")
        .join(format!("{}.lock", job.name));
    let _lock = crate::lockfile::try_lock(&lock_path)
        .map_err(|e| crate::Error::io(&lock_path, e))?
        .ok_or_else(|| crate::Error::JobBusy(job.name.clone()))?;
    let remote = Remote::ensure(
        &trees_dir(store.data_dir()),
        &job.tree,
        job.reference.as_deref(),
    );
    let mut branches = Vec::new();
    for branch in &job.branches {
        let b = match &remote {
            Ok(r) => branch_night(store, job, r, branch, opts, events)?,
            Err(e) => infra_night(
                store,
                job,
                branch,
                &format!("cannot clone {}: {e}", job.tree),
            )?,
        };
        branches.push(b);
    }
    match keep::prune(store, job, chrono::Utc::now()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            "{}: removed {n} run log folders older than `keep`",
            job.name
        ),
        Err(e) => tracing::warn!("{}: cannot remove old run logs: {e}", job.name),
    }
    let flushed = crate::service::outbox::flush(store)?;
    store.job_set_finished(&job.name)?;
    Ok(JobNight {
        job: job.name.clone(),
        branches,
        mails_sent: flushed.sent,
        mails_failed: flushed.failed,
    })
}

fn infra_night(store: &Store, job: &Job, branch: &str, reason: &str) -> crate::Result<BranchNight> {
    let prev = store.last_tested_head(&job.name, branch)?;
    let id = store.night_start(&job.name, branch, &job.tree, None, prev.as_deref())?;
    store.night_finish(id, "infra", Some(reason))?;
    tracing::warn!("{} {branch}: {reason}", job.name);
    Ok(BranchNight {
        branch: branch.to_string(),
        night_id: id,
        status: "infra".into(),
        reason: Some(reason.to_string()),
        head: None,
        cells: Vec::new(),
        opened: Vec::new(),
        attached: Vec::new(),
        fixed: Vec::new(),
        bisected: Vec::new(),
    })
}

/// The job's open regressions on `branch`.
fn open_regressions(store: &Store, job: &Job, branch: &str) -> crate::Result<Vec<Regression>> {
    Ok(store
        .regressions(Some(&job.name), Some("open"))?
        .into_iter()
        .filter(|r| r.branch == branch)
        .collect())
}

fn branch_night(
    store: &Store,
    job: &Job,
    remote: &Remote,
    branch: &str,
    opts: &Options,
    events: &Sink,
) -> crate::Result<BranchNight> {
    let note = |text: String| events.emit(&Event::Note { text });
    let resumed = store.night_unfinished(&job.name, branch)?;
    let (night, head) = match resumed {
        Some(n) if n.head.is_some() => {
            note(format!("{} {branch}: resuming night {}", job.name, n.id));
            let head = n.head.clone().unwrap_or_default();
            (n.id, head)
        }
        other => {
            if let Some(n) = other {
                store.night_finish(n.id, "interrupted", Some("stopped before its fetch ended"))?;
            }
            let head = match remote.fetch(branch) {
                Ok(h) => h,
                Err(e) => {
                    return infra_night(store, job, branch, &format!("fetch {branch}: {e}"));
                }
            };
            let prev = store.last_tested_head(&job.name, branch)?;
            let id =
                store.night_start(&job.name, branch, &job.tree, Some(&head), prev.as_deref())?;
            if prev.as_deref() == Some(head.as_str()) {
                store.night_finish(id, "unchanged", None)?;
                note(format!(
                    "{} {branch}: nothing new since {}; not tested",
                    job.name,
                    crate::events::short(&head)
                ));
                let bisected = pending(store, job, branch, remote, opts, events)?;
                return Ok(BranchNight {
                    branch: branch.to_string(),
                    night_id: id,
                    status: "unchanged".into(),
                    reason: None,
                    head: Some(head),
                    cells: Vec::new(),
                    opened: Vec::new(),
                    attached: Vec::new(),
                    fixed: Vec::new(),
                    bisected,
                });
            }
            (id, head)
        }
    };

    // Test every cell not finished yet.
    for cell in &job.cells {
        let name = cell.label();
        let spec_json = serde_json::to_string(&cell.spec).unwrap_or_else(|_| "{}".into());
        let mut c = store.cell_start(night, &name, &spec_json)?;
        if c.done() {
            continue;
        }
        let predicate = match &job.command {
            Some(_) => Predicate::Any,
            None => Predicate::parse(&cell.spec.predicate).map_err(crate::Error::Usage)?,
        };
        let mut tester = cells::tester(
            job,
            remote.path(),
            store.data_dir(),
            &cell.spec,
            night,
            events,
        )?;
        let run = cells::CellRun {
            store,
            job,
            predicate: &predicate,
            head: &head,
            opts,
            events,
        };
        cells::test_cell(&run, tester.as_mut(), &mut c)?;
    }

    // Compare with the nights before.
    let tonight = store.cells(night)?;
    let mut opened = Vec::new();
    let mut attached = Vec::new();
    for c in &tonight {
        let open = open_regressions(store, job, branch)?;
        // A failure is compared with the last night the cell ran (a night
        // whose head did not build tested nothing); a build break with the
        // last night that tried to build it.
        let prev = if c.status == "build_failed" {
            store.last_cell_before(&job.name, branch, &c.cell, night)?
        } else {
            store.last_ran_before(&job.name, branch, &c.cell, night)?
        };
        let prev = prev
            .as_ref()
            .and_then(|(n, pc)| n.head.as_deref().map(|h| (h, pc)));
        for action in compare::decide(c, prev, &open) {
            match action {
                Action::Attach { id } => {
                    store.regression_seen(id, night, &head, c.runs, c.fails)?;
                    if !attached.contains(&id) {
                        attached.push(id);
                    }
                }
                Action::Open {
                    title,
                    kind,
                    good,
                    detail,
                } => {
                    let id = store.regression_insert(&NewRegression {
                        job: &job.name,
                        branch,
                        cell: &c.cell,
                        title: &title,
                        kind,
                        good: good.as_deref(),
                        bad: &head,
                        night,
                        runs: c.runs,
                        fails: c.fails.max(u32::from(kind == "build")),
                        detail: detail.as_deref(),
                    })?;
                    note(format!(
                        "{} {branch}: new {kind} regression #{id}: {title}{}",
                        job.name,
                        if good.is_some() {
                            ""
                        } else {
                            " (failing since first tested: not bisected)"
                        }
                    ));
                    opened.push(id);
                }
            }
        }
    }
    let mut fixed = Vec::new();
    for r in open_regressions(store, job, branch)? {
        if r.last_seen_night == night || compare::clean_for(&r, &tonight) != Some(true) {
            continue;
        }
        let clean = store.regression_clean_night(r.id)?;
        if clean >= job.fixed_after {
            let range = format!("{}..{}", r.last_bad_head, head);
            store.regression_fixed(r.id, night, &head, Some(&range))?;
            note(format!(
                "{} {branch}: regression #{} fixed: clean {clean} nights, first clean at {} (fix in {range})",
                job.name,
                r.id,
                crate::events::short(&head)
            ));
            crate::service::outbox::queue_fixed(store, job, r.id, opts.public_url.as_deref())?;
            fixed.push(r.id);
        }
    }
    store.night_finish(night, "tested", None)?;
    let bisected = pending(store, job, branch, remote, opts, events)?;
    Ok(BranchNight {
        branch: branch.to_string(),
        night_id: night,
        status: "tested".into(),
        reason: None,
        head: Some(head),
        cells: store.cells(night)?,
        opened,
        attached,
        fixed,
        bisected,
    })
}

/// The spec regression `r`'s cell was tested with on the night that found it.
fn cell_spec(store: &Store, r: &Regression) -> crate::Result<RunSpec> {
    let spec = store
        .cells(r.first_night)?
        .into_iter()
        .find(|c| c.cell == r.cell)
        .map(|c| c.spec)
        .unwrap_or_else(|| "{}".into());
    serde_json::from_str(&spec).map_err(|e| {
        crate::Error::Usage(format!(
            "regression #{}: its cell's spec is unreadable ({e})",
            r.id
        ))
    })
}

/// Journals the runs of the night that opened regression `r` (its cell, at
/// the bad head, with the kernel that cell built) as the first evidence of
/// bisection `id`: the bisection of a test regression then starts knowing
/// how often the bad head fails instead of running it again. A build
/// regression has no runs to lend.
fn adopt_night_runs(
    store: &Store,
    r: &Regression,
    id: i64,
) -> crate::Result<crate::bisect::adopt::Adopted> {
    if r.kind == "build" {
        return Ok(Default::default());
    }
    let cell = store
        .cells(r.first_night)?
        .into_iter()
        .find(|c| c.cell == r.cell);
    match cell {
        Some(c) => match &c.artifact_id {
            Some(a) => crate::bisect::adopt::adopt_runs(store, id, &r.bad, a, &c.run_ids),
            None => Ok(Default::default()),
        },
        None => Ok(Default::default()),
    }
}

/// The bisection request for regression `r`.
fn request(
    job: &Job,
    remote: &Remote,
    r: &Regression,
    spec: RunSpec,
) -> crate::service::bisect::Request {
    let (tester, deterministic, predicate) = match (&job.command, r.kind.as_str()) {
        (Some(cmd), _) => (
            TesterSpec::Command {
                cmd: cmd.clone(),
                timeout_s: None,
                on_timeout: OnTimeout::Abort,
                max_guests: None,
            },
            false,
            "any".to_string(),
        ),
        (None, "build") => (TesterSpec::Build { spec }, true, "any".to_string()),
        (None, _) => {
            let predicate = spec.predicate.clone();
            match &job.lab {
                Some(lab) => (
                    TesterSpec::Lava {
                        spec,
                        lab: lab.clone(),
                    },
                    false,
                    predicate,
                ),
                None => (
                    TesterSpec::Local {
                        spec,
                        max_guests: None,
                    },
                    false,
                    predicate,
                ),
            }
        }
    };
    crate::service::bisect::Request {
        tree: remote.path().to_path_buf(),
        good: r.good.iter().cloned().collect(),
        bad: r.bad.clone(),
        first_parent: false,
        tester,
        confidence: Some(job.bisect.confidence),
        max_runs: Some(job.bisect.max_runs),
        verify_bad: job.bisect.verify_runs,
        deterministic,
        revert_check: false,
        predicate,
        policy: Default::default(),
        max_exposure_s: None,
    }
}

/// Bisects the branch's open regressions that wait for it (new tonight, or
/// left unfinished by a stopped csdci) and queues their reports.
fn pending(
    store: &Store,
    job: &Job,
    branch: &str,
    remote: &Remote,
    opts: &Options,
    events: &Sink,
) -> crate::Result<Vec<Bisected>> {
    let note = |text: String| events.emit(&Event::Note { text });
    let mut out = Vec::new();
    let mut open = open_regressions(store, job, branch)?;
    open.reverse(); // oldest first
    for r in open {
        let wants_bisection = job.bisect.enabled && r.good.is_some();
        if !wants_bisection {
            if r.kind == "build" {
                crate::service::outbox::queue_report(store, job, r.id, opts.public_url.as_deref())?;
            }
            continue;
        }
        let id = match r.bisection_id {
            Some(id) => id,
            None => {
                let spec = cell_spec(store, &r)?;
                let req = request(job, remote, &r, spec);
                let id = crate::service::bisect::start(store, &req)?;
                let adopted = match job.command {
                    None => adopt_night_runs(store, &r, id)?,
                    // A command's runs have no kernel to compare.
                    Some(_) => Default::default(),
                };
                store.regression_set_bisection(r.id, id)?;
                note(format!(
                    "{} {branch}: bisecting regression #{} ({}) as bisection {id}: {}..{}",
                    job.name,
                    r.id,
                    r.title,
                    crate::events::short(r.good.as_deref().unwrap_or("")),
                    crate::events::short(&r.bad)
                ));
                if adopted.runs > 0 {
                    note(format!(
                        "{} {branch}: the night's {} runs of {} ({} failing) are the bisection's first evidence",
                        job.name,
                        adopted.runs,
                        crate::events::short(&r.bad),
                        adopted.fails
                    ));
                }
                id
            }
        };
        let b = store
            .bisect_get(id)?
            .ok_or(crate::bisect::Error::NotFound(id))?;
        let ends_now = b.status != "done";
        if ends_now {
            match crate::service::bisect::drive(store, id, &mut |_| Ok(()), events) {
                Ok(_) => {}
                Err(e) if e.is_interrupt() || e.is_busy() => return Err(e),
                Err(e) => {
                    // Left for the next night (an infrastructure failure, a
                    // broken tree): the regression stays open.
                    note(format!(
                        "{} {branch}: bisection {id} of regression #{} stopped: {e}",
                        job.name, r.id
                    ));
                    continue;
                }
            }
        }
        let b = store
            .bisect_get(id)?
            .ok_or(crate::bisect::Error::NotFound(id))?;
        let report: Option<crate::bisect::Report> = b
            .result
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        let Some(report) = report else { continue };
        let culprit = (report.status == "culprit")
            .then(|| report.culprit.as_ref().map(|c| c.sha.clone()))
            .flatten();
        if r.culprit != culprit {
            store.regression_set_culprit(r.id, culprit.as_deref())?;
        }
        crate::service::outbox::queue_report(store, job, r.id, opts.public_url.as_deref())?;
        if ends_now {
            out.push(Bisected {
                regression: r.id,
                bisection: id,
                status: report.status.clone(),
                culprit,
            });
        }
    }
    Ok(out)
}

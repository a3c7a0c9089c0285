//! Bisections: what to bisect and how ([`Request`]), recorded once
//! ([`start`], or [`start_or_resume`] for a caller that reruns the same
//! request), then driven by one process at a time ([`drive`]), which emits
//! progress [`crate::events::Event`]s.

use std::path::PathBuf;

use crate::bisect::{self, Policy, Report, Settings, Start, driver};
use crate::events::Sink;
use crate::store::Store;
use crate::testers::{Context, TesterSpec};

/// A bisection to start.
#[derive(Debug, Clone)]
pub struct Request {
    /// A path inside the git repository (only read).
    pub tree: PathBuf,
    /// Good revisions (at least one).
    pub good: Vec<String>,
    /// The bad revision.
    pub bad: String,
    /// Follow first parents only.
    pub first_parent: bool,
    /// How commits are tested.
    pub tester: TesterSpec,
    /// Stop at this posterior probability of the culprit (default 0.99).
    pub confidence: Option<f64>,
    /// Stop after this many runs in total.
    pub max_runs: Option<u32>,
    /// Runs of the bad tip that verify it fails first (default: 20 with the
    /// local QEMU pipeline, 0 with a command, as `git bisect run`).
    pub verify_bad: Option<u32>,
    /// The test is deterministic: one run per commit.
    pub deterministic: bool,
    /// Test the bad tip with the culprit reverted.
    pub revert_check: bool,
    /// Which failures count (`any`, `csd`, `title:REGEX`).
    pub predicate: String,
    /// How runs are weighed: pass/fail (`runs`) or failure times (`timed`).
    pub policy: Policy,
    /// With the timed policy: the longest run the engine asks for, in
    /// seconds of workload (default: the pipeline's duration; with a command,
    /// its timeout or 600).
    pub max_exposure_s: Option<f64>,
}

impl Request {
    /// The bisection's settings: the engine set up for the tester.
    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.engine.confidence = self.confidence.unwrap_or(s.engine.confidence);
        s.engine.max_runs = self.max_runs;
        if matches!(
            self.tester,
            TesterSpec::Local { .. } | TesterSpec::Lava { .. }
        ) {
            s.engine = bisect::for_pipeline(s.engine);
        }
        if let Some(runs) = self.verify_bad {
            s.engine.verify_bad_runs = runs;
        }
        if self.deterministic {
            s.engine = bisect::for_deterministic(s.engine);
            s.deterministic = true;
        }
        s.predicate = self.predicate.clone();
        s.revert_check = self.revert_check;
        if self.policy == Policy::Timed {
            s.timed = Some(self.timed_config(&s.engine));
        }
        s
    }

    /// The failure-time engine's settings for this tester: a guest's boot
    /// and an incremental build cost seconds with the QEMU pipeline, a
    /// command's start and checkout next to nothing.
    fn timed_config(&self, engine: &csdci_bisect::Config) -> csdci_bisect::TimedConfig {
        let (boot_s, build_s, longest) = match &self.tester {
            TesterSpec::Local { spec, .. } => (
                bisect::policy::guest_overhead_s(spec.vcpus, 0.0),
                bisect::policy::PIPELINE_BUILD_S,
                spec.duration_s as f64,
            ),
            // A LAVA job waits for its device and boots from an initramfs
            // (36-57 s a run measured, for 5-20 s of workload).
            TesterSpec::Lava { spec, .. } => (
                bisect::policy::guest_overhead_s(spec.vcpus, 30.0),
                bisect::policy::PIPELINE_BUILD_S,
                spec.duration_s as f64,
            ),
            TesterSpec::Command { timeout_s, .. } => {
                (0.05, 0.2, timeout_s.map_or(600.0, |t| t as f64))
            }
            _ => (0.05, 0.2, 600.0),
        };
        bisect::policy::timed_config(
            engine,
            boot_s,
            build_s,
            self.max_exposure_s.unwrap_or(longest),
        )
    }

    fn start(&self) -> crate::Result<Start> {
        Ok(Start {
            tree: self.tree.clone(),
            good: self.good.clone(),
            bad: self.bad.clone(),
            first_parent: self.first_parent,
            settings: self.settings(),
            tester: serde_json::to_value(&self.tester)
                .map_err(|e| crate::Error::Usage(format!("tester: {e}")))?,
        })
    }
}

/// Checks `req`, resolves its revisions and records the bisection; returns
/// its id. Nothing is tested yet.
pub fn start(store: &Store, req: &Request) -> crate::Result<i64> {
    driver::create(store, &req.start()?)
}

/// The unfinished bisection of exactly `req` (interrupted, killed, stopped by
/// an infrastructure failure) when there is one, else a new one: `(id,
/// resumed)`.
pub fn start_or_resume(store: &Store, req: &Request) -> crate::Result<(i64, bool)> {
    let start = req.start()?;
    match driver::unfinished(store, &start)? {
        Some(id) => Ok((id, true)),
        None => Ok((driver::create(store, &start)?, false)),
    }
}

/// Changes the confidence and run budget of bisection `id` for the rest of it
/// (`csdci bisect --resume ID --confidence P --max-runs N`); returns the
/// settings now in force.
pub fn change_budget(
    store: &Store,
    id: i64,
    confidence: Option<f64>,
    max_runs: Option<u32>,
) -> crate::Result<Settings> {
    let b = store.bisect_get(id)?.ok_or(bisect::Error::NotFound(id))?;
    let mut settings: Settings =
        serde_json::from_str(&b.settings).map_err(|e| bisect::Error::Settings {
            id,
            msg: e.to_string(),
        })?;
    if let Some(c) = confidence {
        settings.engine.confidence = c;
    }
    if max_runs.is_some() {
        settings.engine.max_runs = max_runs;
    }
    settings
        .engine
        .validate()
        .map_err(|e| crate::Error::Usage(e.to_string()))?;
    store.bisect_update_settings(id, &serde_json::to_string(&settings).unwrap_or_default())?;
    Ok(settings)
}

/// The tester bisection `id` was started with.
pub fn tester_of(store: &Store, id: i64) -> crate::Result<TesterSpec> {
    let b = store.bisect_get(id)?.ok_or(bisect::Error::NotFound(id))?;
    serde_json::from_str(&b.tester).map_err(|e| {
        bisect::Error::Settings {
            id,
            msg: format!("its tester is unreadable ({e}); was it started by a newer csdci?"),
        }
        .into()
    })
}

/// Drives (or resumes) bisection `id` to its end: takes its lock first (a
/// second process is refused with [`bisect::Error::Busy`] before anything
/// touches its worktrees), makes its tester, runs the driver. Before the
/// tester is made, `before` may change the bisection (a new budget).
pub fn drive(
    store: &Store,
    id: i64,
    before: &mut dyn FnMut(&Store) -> crate::Result<()>,
    events: &Sink,
) -> crate::Result<Report> {
    drive_bounded(store, id, before, None, events)
}

/// [`drive`] with every run holding one of `guests` (`csdci serve`'s
/// `--max-guests`, shared with its nights).
pub fn drive_bounded(
    store: &Store,
    id: i64,
    before: &mut dyn FnMut(&Store) -> crate::Result<()>,
    guests: Option<std::sync::Arc<crate::service::slots::Slots>>,
    events: &Sink,
) -> crate::Result<Report> {
    let lock = driver::lock(store, id)?;
    before(store)?;
    let spec = tester_of(store, id)?;
    let b = store.bisect_get(id)?.ok_or(bisect::Error::NotFound(id))?;
    let repo = PathBuf::from(&b.repo);
    let mut tester = spec.build(
        &Context {
            data_dir: store.data_dir(),
            id,
            repo: &repo,
        },
        events.clone(),
    )?;
    if let Some(g) = guests {
        tester = Box::new(crate::service::work::SlotTester::new(tester, g));
    }
    driver::run_locked(store, &lock, id, tester.as_mut(), events.as_ref())
}

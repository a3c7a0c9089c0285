//! The local tester: the QEMU pipeline on this host. worktree → kconfig →
//! build/cache → guest root → VM → console analysis → verdict → store.
//! [`run_commit`] does it all for one commit; [`LocalTester`] is the same
//! pipeline behind the [`Tester`] trait for the bisection engine. `csdci run`,
//! `csdci bisect` and the demo share [`RunOptions`].
//!
//! ```no_run
//! use csdci::testers::local::{LocalTester, RunOptions};
//! use csdci::testers::Tester;
//! use csdci::spec::RunSpec;
//! let spec = RunSpec { vcpus: 8, duration_s: 30, ..RunSpec::default() };
//! let opts = RunOptions::new("/src/linux", "/var/lib/csdci", spec)?; // exit 3: bad spec
//! let mut t = LocalTester::new(opts)?; // exit 3: not a git tree
//! let _ = t.prepare("4b80da2ab22713cdd7922b6d1bc9416354d7af5a")?; // build or cache hit
//! let report = t.run_once("4b80da2ab22713cdd7922b6d1bc9416354d7af5a", 0)?;
//! # Ok::<(), csdci::Error>(())
//! ```
//!
//! Data directory layout: `csdci.sqlite3` (the `runs` table), `worktrees/<repo>/`
//! (one git worktree per repository, with its `O=` build directory
//! `.csdci-build/`), `cache/kernels/<key>/` (vmlinux, modules, config, build log,
//! manifest), `cache/configs/` (final .config per tree + fragments), `runs/<id>/`
//! (console.log, QEMU/virtiofsd logs), `logs/` (logs of failed builds),
//! `build.lock` (one kernel build at a time).
//!
//! A run is built ([`LocalTester::build`]), then staged, booted and
//! concluded ([`guest`]); [`batch`] boots several at once (`--max-guests`).

mod batch;
mod guest;

pub use batch::{MEMORY_SHARE, available_memory_mb, check_memory};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use csdci_console::Analysis;
use serde::Serialize;

use crate::build::{self, Built};
use crate::events::{Event, Sink};
use crate::image::GuestParams;
use crate::interrupt::interrupted;
use crate::kconfig::Fragment;
use crate::spec::RunSpec;
use crate::store::Store;
use crate::store::runs::{Finish, NewRun};
use crate::testers::{Exposure, Prepared, RunOutcome, RunPlan, RunReport, RunRequest, Tester};
use crate::verdict::Verdict;
use crate::vm::{self, VmOutcome};
use crate::{Error, Result};

/// A [`RunSpec`] checked and ready to test commits of a tree: the local
/// pipeline's input.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The user's kernel git tree (csdci never modifies it).
    pub tree: PathBuf,
    /// csdci's data directory (database, cache, worktrees, run logs).
    pub data_dir: PathBuf,
    /// How each commit is tested.
    pub spec: RunSpec,
    /// The spec's extra config fragments, read (applied after csdci's own,
    /// see [`crate::kconfig::DEFAULT_FRAGMENTS`]).
    pub fragments: Vec<Fragment>,
}

impl RunOptions {
    /// Validates `spec` (the one check, see [`RunSpec::validate`]) and reads
    /// its fragments.
    pub fn new(
        tree: impl Into<PathBuf>,
        data_dir: impl Into<PathBuf>,
        spec: RunSpec,
    ) -> Result<Self> {
        let fragments = spec.validate()?;
        Ok(RunOptions {
            tree: tree.into(),
            data_dir: data_dir.into(),
            spec,
            fragments,
        })
    }

    /// csdci's fragments followed by the user's (csdci's include initrd
    /// support, so one kernel boots either root).
    pub fn all_fragments(&self) -> Vec<Fragment> {
        let mut f = Fragment::defaults();
        f.extend(self.fragments.iter().cloned());
        f
    }

    /// The guest parameters.
    pub fn guest_params(&self) -> GuestParams {
        self.spec.guest_params()
    }
}

/// Receives progress; every method has a no-op default.
pub trait Reporter {
    /// A step started (`building`, `booting`...).
    fn stage(&mut self, _stage: &str) {}
    /// One line of build output.
    fn build_line(&mut self, _line: &str) {}
    /// Console bytes from the guest.
    fn console(&mut self, _bytes: &[u8]) {}
    /// A crash finding appeared on the console.
    fn finding(&mut self, _title: &str) {}
}

/// A reporter that logs stages with `tracing`.
pub struct LogReporter;

impl Reporter for LogReporter {
    fn stage(&mut self, stage: &str) {
        tracing::info!("{stage}");
    }
}

/// A reporter that turns the pipeline's progress into [`Event`]s.
pub struct EventReporter {
    events: Sink,
    workload_s: u64,
    partial: Vec<u8>,
}

impl EventReporter {
    /// Reports to `events`; the workload runs `workload_s` seconds (unless the
    /// guest says otherwise).
    pub fn new(events: Sink, workload_s: u64) -> Self {
        EventReporter {
            events,
            workload_s,
            partial: Vec::new(),
        }
    }
}

impl Reporter for EventReporter {
    fn stage(&mut self, stage: &str) {
        self.events.emit(&Event::Stage {
            name: stage.to_string(),
        });
    }
    fn build_line(&mut self, line: &str) {
        self.events.emit(&Event::Output {
            line: line.to_string(),
        });
    }
    fn console(&mut self, bytes: &[u8]) {
        // Whole lines only; a long line without a newline is cut at 4 KiB.
        self.partial.extend_from_slice(bytes);
        while let Some(n) = self.partial.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.partial[..n])
                .trim_end()
                .to_string();
            self.partial.drain(..=n);
            // The guest's init says when the workload starts (images/init.sh).
            if let Some(rest) = line.split("csdci: workload running for ").nth(1) {
                let seconds = rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(self.workload_s);
                self.events.emit(&Event::Workload { seconds });
            }
            if !line.is_empty() {
                self.events.emit(&Event::Output { line });
            }
        }
        if self.partial.len() > 4096 {
            self.partial.clear();
        }
    }
    fn finding(&mut self, title: &str) {
        self.events.emit(&Event::Finding {
            title: title.to_string(),
        });
    }
}

/// The build step as reported.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BuildInfo {
    /// The kernel came from the cache (no compile).
    pub cached: bool,
    /// `make` ran at all.
    pub make_invoked: bool,
    /// Seconds the step took.
    pub seconds: f64,
    /// `git rev-parse <commit>^{tree}`.
    pub tree_id: Option<String>,
    /// sha256 of the final .config.
    pub config_hash: Option<String>,
    /// sha256 over vmlinux + modules.
    pub artifact_id: Option<String>,
    /// Kernel release.
    pub release: Option<String>,
    /// Cache entry folder.
    pub artifacts: Option<PathBuf>,
    /// Build log.
    pub log: Option<PathBuf>,
    /// First compiler errors (untestable builds).
    pub errors: Vec<String>,
}

impl BuildInfo {
    /// The build step of a usable kernel.
    pub fn from_built(b: &Built) -> Self {
        let m = &b.entry.manifest;
        BuildInfo {
            cached: b.cached,
            make_invoked: b.make_invoked,
            seconds: b.seconds,
            tree_id: Some(m.key.tree_id.clone()),
            config_hash: Some(m.key.config_hash.clone()),
            artifact_id: Some(m.artifact_id.clone()),
            release: Some(m.release.clone()),
            artifacts: Some(b.entry.dir.clone()),
            log: Some(b.entry.build_log()),
            errors: Vec::new(),
        }
    }
}

/// Timings of one run, seconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    /// Build step (cache lookup included).
    pub build: f64,
    /// QEMU start until the guest's init ran.
    pub boot: Option<f64>,
    /// QEMU start until QEMU was gone.
    pub test: Option<f64>,
    /// The whole run.
    pub total: f64,
    /// Seconds of workload, measured on the host from the guest's
    /// "csdci: modprobe scftorture" line to its "workload done" line (or the
    /// guest's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<f64>,
    /// Seconds after the workload started when the console's first finding
    /// appeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_finding: Option<f64>,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Row id in the `runs` table.
    pub run_id: i64,
    /// Full commit sha.
    pub commit: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The build step.
    pub build: BuildInfo,
    /// How the VM ended (when it ran).
    pub vm: Option<VmOutcome>,
    /// Console analysis (when the VM ran).
    pub analysis: Option<Analysis>,
    /// The console log.
    pub console_log: Option<PathBuf>,
    /// The run's folder.
    pub run_dir: Option<PathBuf>,
    /// Timings.
    pub timings: Timings,
    /// The user interrupted the run.
    pub interrupted: bool,
}

/// Runs one commit: the whole pipeline. `rev` may be any revision.
pub fn run_commit(opts: &RunOptions, rev: &str, reporter: &mut dyn Reporter) -> Result<RunResult> {
    let mut tester = LocalTester::new(opts.clone())?;
    let commit = crate::vcs::resolve(&tester.repo, rev)?;
    tester.run_full(&commit, reporter)
}

/// The local QEMU pipeline as a [`Tester`].
pub struct LocalTester {
    opts: RunOptions,
    repo: PathBuf,
    store: Store,
    cancel: Arc<AtomicBool>,
    prepared: HashMap<String, std::result::Result<Built, build::Untestable>>,
    reporter: Box<dyn Reporter + Send>,
    /// Guests booted at once by `run_batch` (`--max-guests`).
    workers: usize,
    /// The failure that ends the planned run under way early
    /// ([`RunPlan::ends_on`]).
    ends_on: Option<crate::bisect::predicate::Predicate>,
}

impl LocalTester {
    /// Checks the options and the tree, opens the store (rows of killed runs
    /// become `interrupted`) and kills QEMU/virtiofsd left by a killed csdci.
    pub fn new(opts: RunOptions) -> Result<Self> {
        let repo = crate::vcs::open_tree(&opts.tree)?;
        let store = Store::open(&opts.data_dir)?;
        match vm::reap_stale(&opts.data_dir) {
            Ok(killed) if !killed.is_empty() => {
                tracing::warn!(
                    "killed processes left by a killed csdci: {}",
                    killed.join(", ")
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot clean up after an earlier csdci: {e}"),
        }
        Ok(LocalTester {
            opts,
            repo,
            store,
            cancel: Arc::new(AtomicBool::new(false)),
            prepared: HashMap::new(),
            reporter: Box::new(LogReporter),
            workers: 1,
            ends_on: None,
        })
    }

    /// Uses `reporter` for progress (default: tracing logs).
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter + Send>) -> Self {
        self.reporter = reporter;
        self
    }

    /// A flag that stops the current build or run when set (the process-wide
    /// interrupt flag of [`install_interrupt_handler`] works too).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The options.
    pub fn options(&self) -> &RunOptions {
        &self.opts
    }

    /// Builds `commit` (a full sha) or finds it in the cache, once per
    /// tester (later calls return the first answer); `Err(Untestable)` when
    /// it does not configure or compile. The LAVA tester builds with it.
    pub fn build(
        &mut self,
        commit: &str,
        reporter: &mut dyn Reporter,
    ) -> Result<std::result::Result<Built, build::Untestable>> {
        if let Some(p) = self.prepared.get(commit) {
            return Ok(p.clone());
        }
        let frags = self.opts.all_fragments();
        let req = build::Request {
            repo: &self.repo,
            commit,
            fragments: &frags,
            data_dir: &self.opts.data_dir,
        };
        // The build polls one flag; mirror the process-wide interrupt into it.
        let flag = self.cancel.clone();
        let watcher_done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let flag = flag.clone();
            let done = watcher_done.clone();
            // The work's cancel scope (a web-started bisection) follows.
            let scope = crate::interrupt::current().unwrap_or_default();
            std::thread::spawn(move || {
                crate::interrupt::scoped(&scope, || {
                    while !done.load(Ordering::SeqCst) {
                        if interrupted() {
                            flag.store(true, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
            })
        };
        reporter.stage("building");
        let out = build::build(&req, &flag, &mut |p| match p {
            build::Progress::Stage(s) => reporter.stage(s),
            build::Progress::Line(l) => reporter.build_line(&l),
        });
        watcher_done.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        let result = match out? {
            build::Outcome::Ready(b) => Ok(b),
            build::Outcome::Untestable(u) => Err(u),
        };
        self.prepared.insert(commit.to_string(), result.clone());
        Ok(result)
    }

    /// The `runs` row of a run of `commit` with these options (filled
    /// further as the run goes on).
    pub fn new_run(&self, commit: &str) -> NewRun {
        NewRun {
            repo: self.repo.display().to_string(),
            commit: commit.to_string(),
            vcpus: self.opts.spec.vcpus,
            memory_mb: self.opts.spec.memory_mb,
            accel_requested: self.opts.spec.accel.to_string(),
            scftorture: self.opts.guest_params().scftorture,
            duration_s: self.opts.spec.duration_s,
            ..Default::default()
        }
    }

    /// The `runs` row of a run of `commit` booting a built kernel: the
    /// options and the build's record `info` ([`BuildInfo::from_built`]),
    /// the one place the local and the LAVA tester fill it from a build.
    pub fn new_built_run(&self, commit: &str, info: &BuildInfo) -> NewRun {
        NewRun {
            tree_id: info.tree_id.clone(),
            config_hash: info.config_hash.clone(),
            artifact_id: info.artifact_id.clone(),
            build_seconds: Some(info.seconds),
            build_cached: Some(info.cached),
            artifacts: info.artifacts.as_ref().map(|p| p.display().to_string()),
            ..self.new_run(commit)
        }
    }

    /// Builds (or finds) and tests `commit` (a full sha), recording the run.
    pub fn run_full(&mut self, commit: &str, reporter: &mut dyn Reporter) -> Result<RunResult> {
        let start = Instant::now();
        match self.built_for_run(commit, start, reporter)? {
            Err(done) => Ok(done),
            Ok((b, build_s)) => {
                let r = self.test_built(commit, &b, reporter)?;
                Ok(r.with_build_time(build_s, start))
            }
        }
    }

    /// The build step of a run of `commit` started at `start`: the kernel
    /// and the seconds the step took, or the run's result already recorded
    /// (interrupted, build infrastructure failure, untestable).
    fn built_for_run(
        &mut self,
        commit: &str,
        start: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<std::result::Result<(Built, f64), RunResult>> {
        let tree_id = crate::vcs::mirror::Mirror::beside(
            &crate::build::worktree_dir(&self.opts.data_dir, &self.repo),
            &self.repo,
        )
        .and_then(|m| crate::vcs::git(m.path(), &["rev-parse", &format!("{commit}^{{tree}}")]))
        .ok();
        let built = match self.build(commit, reporter) {
            Ok(b) => b,
            Err(Error::Build(build::Error::Cancelled)) => {
                let mut n = self.new_run(commit);
                n.tree_id = tree_id;
                let id = self.store.insert_run(&n)?;
                self.store
                    .interrupt_run(id, "interrupted during the build")?;
                return Ok(Err(RunResult {
                    run_id: id,
                    commit: commit.into(),
                    verdict: Verdict::Infra {
                        reason: "interrupted".into(),
                    },
                    build: BuildInfo::default(),
                    vm: None,
                    analysis: None,
                    console_log: None,
                    run_dir: None,
                    timings: Timings {
                        build: start.elapsed().as_secs_f64(),
                        total: start.elapsed().as_secs_f64(),
                        workload: None,
                        first_finding: None,
                        ..Default::default()
                    },
                    interrupted: true,
                }));
            }
            Err(Error::Build(e)) => {
                // Infrastructure failure of the build step (disk full, make
                // missing, modules_install failed): recorded, never evidence.
                let reason = format!("build: {e}");
                let mut n = self.new_run(commit);
                n.tree_id = tree_id.clone();
                let id = self.store.insert_run(&n)?;
                let verdict = Verdict::Infra { reason };
                self.finish(id, &verdict, None, None)?;
                return Ok(Err(RunResult {
                    run_id: id,
                    commit: commit.into(),
                    verdict,
                    build: BuildInfo {
                        tree_id,
                        ..Default::default()
                    },
                    vm: None,
                    analysis: None,
                    console_log: None,
                    run_dir: None,
                    timings: Timings {
                        build: start.elapsed().as_secs_f64(),
                        total: start.elapsed().as_secs_f64(),
                        workload: None,
                        first_finding: None,
                        ..Default::default()
                    },
                    interrupted: false,
                }));
            }
            Err(e) => return Err(e),
        };
        let build_s = start.elapsed().as_secs_f64();
        match built {
            Err(u) => {
                let mut n = self.new_run(commit);
                n.tree_id = tree_id.clone();
                n.build_seconds = Some(build_s);
                n.build_cached = Some(false);
                n.artifacts = u.log.as_ref().map(|p| p.display().to_string());
                let id = self.store.insert_run(&n)?;
                let verdict = Verdict::Untestable {
                    reason: u.reason.clone(),
                };
                self.store.finish_run(
                    id,
                    &Finish {
                        verdict: verdict.name().into(),
                        title: Some(u.reason.clone()),
                        reason: Some(u.reason.clone()),
                        findings: serde_json::to_string(&u.errors).ok(),
                        ..Default::default()
                    },
                )?;
                Ok(Err(RunResult {
                    run_id: id,
                    commit: commit.into(),
                    verdict,
                    build: BuildInfo {
                        seconds: build_s,
                        make_invoked: true,
                        tree_id,
                        log: u.log,
                        errors: u.errors,
                        ..Default::default()
                    },
                    vm: None,
                    analysis: None,
                    console_log: None,
                    run_dir: None,
                    timings: Timings {
                        build: build_s,
                        total: start.elapsed().as_secs_f64(),
                        workload: None,
                        first_finding: None,
                        ..Default::default()
                    },
                    interrupted: false,
                }))
            }
            Ok(b) => Ok(Ok((b, build_s))),
        }
    }

    /// Boots and tests an already built kernel, recording the run.
    fn test_built(
        &mut self,
        commit: &str,
        b: &Built,
        reporter: &mut dyn Reporter,
    ) -> Result<RunResult> {
        match self.stage_guest(commit, b, reporter)? {
            guest::Staging::Done(r) => Ok(*r),
            guest::Staging::Ready(g) => {
                let booted = g.boot(&self.cancel, reporter);
                self.conclude(*g, booted, reporter)
            }
        }
    }

    fn finish(
        &self,
        id: i64,
        verdict: &Verdict,
        vm: Option<&VmOutcome>,
        analysis: Option<&Analysis>,
    ) -> Result<()> {
        self.store
            .finish_run(id, &finish_record(verdict, vm, analysis))?;
        Ok(())
    }

    /// Where a commit's kernel is, once prepared.
    pub fn artifacts(&self, commit: &str) -> Option<&Path> {
        match self.prepared.get(commit)? {
            Ok(b) => Some(&b.entry.dir),
            Err(_) => None,
        }
    }
}

/// The store's record of a booted (or tried) run's end: its verdict, how
/// the VM ended, the console's findings with their positions and the
/// console summary the pages show. The one place a tester's run becomes a
/// [`Finish`] (the local and the LAVA tester both finish runs with it).
pub(crate) fn finish_record(
    verdict: &Verdict,
    vm: Option<&VmOutcome>,
    analysis: Option<&Analysis>,
) -> Finish {
    let reason = match verdict {
        Verdict::Untestable { reason } | Verdict::Infra { reason } => Some(reason.clone()),
        _ => None,
    };
    Finish {
        accel: vm.map(|v| v.accel.to_string()),
        boot_seconds: vm.and_then(|v| v.boot_seconds),
        test_seconds: vm.map(|v| v.seconds),
        verdict: verdict.name().into(),
        title: verdict.title().map(str::to_string),
        findings: analysis.and_then(|a| serde_json::to_string(&a.findings).ok()),
        console_findings: analysis
            .map(|a| crate::store::findings::StoredFinding::from_console(&a.findings))
            .unwrap_or_default(),
        summary: analysis.map(crate::store::runs::RunSummary::of),
        vm_exit: vm.map(|v| format!("{:?}", v.exit)),
        reason,
    }
}

impl Tester for LocalTester {
    fn prepare(&mut self, commit: &str) -> Result<Prepared> {
        let mut reporter = std::mem::replace(&mut self.reporter, Box::new(LogReporter));
        let out = self.build(commit, reporter.as_mut());
        self.reporter = reporter;
        let out = match out {
            Err(Error::Build(build::Error::Cancelled)) => return Err(Error::Interrupted),
            other => other?,
        };
        match out {
            Ok(b) => Ok(Prepared::Ready {
                artifact_id: Some(b.entry.manifest.artifact_id.clone()),
            }),
            Err(u) => Ok(Prepared::Untestable { reason: u.reason }),
        }
    }

    fn run_once(&mut self, commit: &str, _attempt: u32) -> Result<RunReport> {
        let mut reporter = std::mem::replace(&mut self.reporter, Box::new(LogReporter));
        let out = self.run_full(commit, reporter.as_mut());
        self.reporter = reporter;
        out?.report()
    }

    /// Runs for the plan's length: the first whole second of workload at
    /// which `plan.should_stop` says a clean run has shown enough (it
    /// depends on the seconds run alone, so it is asked ahead), up to
    /// `plan.max_exposure_s`, becomes this run's scftorture duration; a
    /// finding `plan.ends_on` matches ends it [`crate::testers::FAILED_RUN_SETTLE_S`]
    /// later (its first match is the failure time).
    fn run_planned(&mut self, commit: &str, attempt: u32, plan: &RunPlan<'_>) -> Result<RunReport> {
        let longest = plan.max_exposure_s.ceil().max(1.0) as u64;
        let seconds = (1..longest)
            .find(|&t| (plan.should_stop)(t as f64))
            .unwrap_or(longest);
        let full = self.opts.spec.duration_s;
        self.opts.spec.duration_s = seconds;
        self.ends_on = plan.ends_on.cloned();
        let out = self.run_once(commit, attempt);
        self.opts.spec.duration_s = full;
        self.ends_on = None;
        out
    }

    fn workers(&self) -> usize {
        self.workers
    }

    /// With more than one worker, up to that many guests at once
    /// ([`batch`]); else one after another.
    fn run_batch(&mut self, runs: &[RunRequest]) -> Vec<Result<RunReport>> {
        if self.workers <= 1 || runs.len() <= 1 {
            return runs
                .iter()
                .map(|r| self.run_once(&r.commit, r.attempt))
                .collect();
        }
        self.run_parallel(runs)
            .into_iter()
            .map(|r| r.and_then(RunResult::report))
            .collect()
    }
}

impl RunResult {
    /// The result with its build step's seconds `build_s` and its total
    /// counted from `start` (the run's start, build included).
    fn with_build_time(mut self, build_s: f64, start: Instant) -> Self {
        self.build.seconds = build_s;
        self.timings.build = build_s;
        self.timings.total = start.elapsed().as_secs_f64();
        self
    }

    /// The run as the bisection driver (any [`Tester`] user) sees it: the
    /// verdict as a [`RunOutcome`], the analysis, the console and the row; an
    /// interrupted run is [`Error::Interrupted`]. The local and the LAVA
    /// tester both report with it.
    pub fn report(self) -> Result<RunReport> {
        if self.interrupted {
            return Err(Error::Interrupted);
        }
        Ok(RunReport {
            outcome: RunOutcome::from(&self.verdict),
            exposure: self.exposure(),
            analysis: self.analysis,
            console_log: self.console_log,
            run_id: Some(self.run_id),
            seconds: self.timings.total,
        })
    }

    /// The workload's [`Exposure`] as the console timed it: a clean run's
    /// seconds of workload; a failed one's, failed at its first finding (or,
    /// a hang without one, at its end). None for a run that says nothing
    /// about the kernel, or whose workload never started.
    pub fn exposure(&self) -> Option<Exposure> {
        let w = self.timings.workload?;
        match &self.verdict {
            Verdict::Clean => Some(Exposure {
                exposure_s: w,
                failed_at_s: None,
            }),
            Verdict::Failed { .. } => Some(Exposure {
                exposure_s: w,
                failed_at_s: Some(self.timings.first_finding.unwrap_or(w).min(w)),
            }),
            Verdict::Untestable { .. } | Verdict::Infra { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn console_lines_and_the_workload_start_become_events() {
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let s = seen.clone();
        let sink: Sink = Arc::new(move |e: &Event| s.lock().unwrap().push(e.clone()));
        let mut r = EventReporter::new(sink, 60);
        r.stage("booting");
        // Split mid-line, as the console arrives.
        r.console(b"[    1.0] Linux version 6.12\ncsdci: workload run");
        r.console(b"ning for 45 s\npartial");
        r.finding("BUG: soft lockup in smp_call_function");
        let got = seen.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                Event::Stage {
                    name: "booting".into()
                },
                Event::Output {
                    line: "[    1.0] Linux version 6.12".into()
                },
                Event::Workload { seconds: 45 },
                Event::Output {
                    line: "csdci: workload running for 45 s".into()
                },
                Event::Finding {
                    title: "BUG: soft lockup in smp_call_function".into()
                },
            ]
        );
    }
}

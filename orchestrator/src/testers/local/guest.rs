//! One guest run of a built kernel in three steps: [`LocalTester::stage_guest`]
//! (its `runs` row, run folder and guest root), [`Staged::boot`] (QEMU and
//! the console analysis; it touches no store, so several boot on threads at
//! once) and [`LocalTester::conclude`] (the verdict into the row). A single
//! run does the three in a row; a parallel batch stages and concludes its
//! runs in order and boots them at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use csdci_console::{Analysis, Analyzer};

use super::{BuildInfo, LocalTester, Reporter, RunResult, Timings};
use crate::bisect::predicate::Predicate;
use crate::build::Built;
use crate::image;
use crate::interrupt::interrupted;
use crate::testers::FAILED_RUN_SETTLE_S;
use crate::verdict::{self, Verdict};
use crate::vm::{self, VmOutcome};
use crate::{Error, Result};

/// A run whose row, folder and guest root are ready: what booting it needs.
pub(crate) struct Staged {
    id: i64,
    commit: String,
    info: BuildInfo,
    build_seconds: f64,
    cfg: vm::VmConfig,
    stop_after_crash: Option<Duration>,
    /// A planned run's failure (see [`crate::testers::RunPlan::ends_on`]).
    ends_on: Option<Predicate>,
    start: Instant,
}

/// How [`LocalTester::stage_guest`] ended.
pub(crate) enum Staging {
    /// Ready to boot.
    Ready(Box<Staged>),
    /// Recorded already (the guest root could not be made: infra).
    Done(Box<RunResult>),
}

/// What a boot saw: QEMU's end, the console's analysis, where csdci's NMI
/// came, whether the user stopped it.
pub(crate) struct Booted {
    outcome: std::result::Result<VmOutcome, vm::Error>,
    analysis: Analysis,
    pre_nmi: Option<usize>,
    user_stop: bool,
    /// Seconds of workload and of its first finding (see [`WorkloadClock`]).
    workload: (Option<f64>, Option<f64>),
}

/// When the workload ran, from the console as it streams: the guest's
/// "csdci: modprobe scftorture" line starts it (scftorture's threads start
/// inside the module's init, and a CSD lock can hang in it before modprobe
/// returns), its "workload done" line (or the guest's end) ends it; the
/// first finding after its start is the failure time. Host seconds (a TCG
/// guest's clock follows the host's).
#[derive(Debug, Default)]
pub(crate) struct WorkloadClock {
    /// The last bytes seen, so a marker split across reads is found.
    tail: Vec<u8>,
    started: Option<Instant>,
    done: Option<Instant>,
    failed: Option<Instant>,
}

impl WorkloadClock {
    const START: &'static [u8] = b"csdci: modprobe scftorture";
    const DONE: &'static [u8] = b"csdci: workload done";

    /// Feeds console bytes read at `now`, with whether the analyzer has
    /// a finding now.
    pub(crate) fn feed(&mut self, bytes: &[u8], now: Instant, finding: bool) {
        self.tail.extend_from_slice(bytes);
        let has = |m: &[u8], t: &[u8]| t.windows(m.len()).any(|w| w == m);
        if self.started.is_none() && has(Self::START, &self.tail) {
            self.started = Some(now);
        }
        if self.started.is_some() && self.done.is_none() && has(Self::DONE, &self.tail) {
            self.done = Some(now);
        }
        if self.started.is_some() && self.failed.is_none() && finding {
            self.failed = Some(now);
        }
        let keep = Self::START.len().max(Self::DONE.len());
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
    }

    /// Seconds of workload (at `end`, the guest's end, unless it said it
    /// was done) and of its first finding; `None` before it started.
    pub(crate) fn seconds(&self, end: Instant) -> (Option<f64>, Option<f64>) {
        let Some(s) = self.started else {
            return (None, None);
        };
        let since = |t: Instant| t.saturating_duration_since(s).as_secs_f64();
        (
            Some(since(self.done.unwrap_or(end))),
            self.failed.map(since),
        )
    }
}

impl Staged {
    /// The guest it boots.
    pub(crate) fn vm_config(&self) -> &vm::VmConfig {
        &self.cfg
    }

    /// The run's result with this verdict.
    fn result(
        &self,
        verdict: Verdict,
        vm: Option<VmOutcome>,
        analysis: Option<Analysis>,
        interrupted: bool,
    ) -> RunResult {
        RunResult {
            run_id: self.id,
            commit: self.commit.clone(),
            timings: Timings {
                build: self.build_seconds,
                boot: vm.as_ref().and_then(|v| v.boot_seconds),
                test: vm.as_ref().map(|v| v.seconds),
                total: self.start.elapsed().as_secs_f64(),
                workload: None,
                first_finding: None,
            },
            verdict,
            build: self.info.clone(),
            vm,
            analysis,
            console_log: Some(self.cfg.console_log.clone()),
            run_dir: Some(self.cfg.run_dir.clone()),
            interrupted,
        }
    }

    /// Boots the guest and reads its console until it ends, `cancel` is
    /// set or csdci is interrupted. QEMU and virtiofsd die with the calling
    /// thread.
    pub(crate) fn boot(&self, cancel: &AtomicBool, reporter: &mut dyn Reporter) -> Booted {
        reporter.stage("booting");
        let mut analyzer = Analyzer::new();
        let mut panicked_at: Option<Instant> = None;
        let mut crashed_at: Option<Instant> = None;
        let mut matched_at: Option<Instant> = None;
        let mut pre_nmi: Option<usize> = None;
        let mut user_stop = false;
        let mut said_init = false;
        let mut seen = 0;
        let mut clock = WorkloadClock::default();
        let marker = vm::NMI_MARKER.as_bytes();
        let outcome = vm::run(&self.cfg, &mut |bytes: &[u8]| {
            if !bytes.is_empty() {
                if pre_nmi.is_none() && bytes.windows(marker.len()).any(|w| w == marker) {
                    pre_nmi = Some(analyzer.findings().len());
                }
                analyzer.feed(bytes);
                reporter.console(bytes);
                for f in &analyzer.findings()[seen..] {
                    reporter.finding(&f.title);
                    if matched_at.is_none()
                        && let Some(p) = &self.ends_on
                        && p.matches_title(&f.title, f.kind)
                    {
                        matched_at = Some(Instant::now());
                    }
                }
                seen = analyzer.findings().len();
                let failed = match &self.ends_on {
                    Some(_) => matched_at.is_some(),
                    None => seen > 0,
                };
                clock.feed(bytes, Instant::now(), failed);
                if !said_init {
                    said_init = true;
                    reporter.stage("testing");
                }
            }
            if cancel.load(Ordering::SeqCst) || interrupted() {
                user_stop = true;
                return vm::Control::Stop;
            }
            // A planned run has shown its failure: end it once the report is out.
            if matched_at.is_some_and(|t| t.elapsed() > Duration::from_secs(FAILED_RUN_SETTLE_S))
                && pre_nmi.is_none()
            {
                return vm::Control::Stop;
            }
            if let Some(linger) = self.stop_after_crash
                && pre_nmi.is_none()
                && !analyzer.findings().is_empty()
                && crashed_at.get_or_insert_with(Instant::now).elapsed() > linger
            {
                return vm::Control::Stop;
            }
            if analyzer.panicked() {
                let t = *panicked_at.get_or_insert_with(Instant::now);
                if t.elapsed() > Duration::from_secs(3) {
                    return vm::Control::Stop;
                }
            }
            vm::Control::Continue
        });
        Booted {
            outcome,
            analysis: analyzer.finish(),
            pre_nmi,
            user_stop,
            workload: clock.seconds(Instant::now()),
        }
    }
}

impl LocalTester {
    /// Records a run of the built kernel `b` of `commit` and makes its
    /// folder and guest root.
    pub(crate) fn stage_guest(
        &mut self,
        commit: &str,
        b: &Built,
        reporter: &mut dyn Reporter,
    ) -> Result<Staging> {
        let start = Instant::now();
        let info = BuildInfo::from_built(b);
        let id = self.store.insert_run(&self.new_built_run(commit, &info))?;
        let run_dir = self.opts.data_dir.join("runs").join(id.to_string());
        let console_log = run_dir.join("console.log");
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
        self.store.set_run_paths(
            id,
            &run_dir.display().to_string(),
            &console_log.display().to_string(),
        )?;
        reporter.stage("preparing guest root");
        let params = self.opts.guest_params();
        let root = match self.opts.spec.root {
            vm::RootKind::Virtiofs => {
                image::prepare_run_root(&self.opts.data_dir, &b.entry.modules(), &params, &run_dir)
                    .map(vm::Root::Virtiofs)
            }
            vm::RootKind::Initramfs => {
                image::initramfs::for_artifact(&self.opts.data_dir, &b.entry, &params)
                    .map(vm::Root::Initramfs)
            }
        };
        let spec = &self.opts.spec;
        let staged = |root: vm::Root| Staged {
            id,
            commit: commit.to_string(),
            info: info.clone(),
            build_seconds: b.seconds,
            cfg: vm::VmConfig {
                kernel: b.entry.vmlinux(),
                root,
                vcpus: spec.vcpus,
                memory_mb: spec.memory_mb,
                accel: spec.accel,
                cmdline_extra: spec.cmdline_extra.clone(),
                console_log: console_log.clone(),
                run_dir: run_dir.clone(),
                deadline: Duration::from_secs(spec.duration_s + spec.grace_s),
                silence_timeout: Duration::from_secs(spec.silence_timeout_s),
                data_dir: self.opts.data_dir.clone(),
            },
            stop_after_crash: spec.stop_after_crash_s.map(Duration::from_secs),
            ends_on: self.ends_on.clone(),
            start,
        };
        match root {
            Ok(r) => Ok(Staging::Ready(Box::new(staged(r)))),
            Err(e) => {
                let g = staged(vm::Root::Virtiofs(PathBuf::new()));
                let verdict = Verdict::Infra {
                    reason: format!("guest root: {e}"),
                };
                self.finish(id, &verdict, None, None)?;
                Ok(Staging::Done(Box::new(
                    g.result(verdict, None, None, false),
                )))
            }
        }
    }

    /// Records how the booted run `g` ended: interrupted, or its verdict.
    pub(crate) fn conclude(
        &mut self,
        g: Staged,
        booted: Booted,
        reporter: &mut dyn Reporter,
    ) -> Result<RunResult> {
        // The per-run root is a copy of the base image plus modules; the
        // console log and QEMU/virtiofsd logs are what is kept (an
        // initramfs stays cached with the kernel).
        if let vm::Root::Virtiofs(dir) = &g.cfg.root {
            let _ = std::fs::remove_dir_all(dir);
        }
        let Booted {
            outcome,
            analysis,
            pre_nmi,
            user_stop,
            workload,
        } = booted;
        if user_stop {
            self.store.interrupt_run(g.id, "interrupted by the user")?;
            let verdict = Verdict::Infra {
                reason: "interrupted".into(),
            };
            return Ok(g.result(verdict, outcome.ok(), Some(analysis), true));
        }
        reporter.stage("analysing");
        let (verdict, vm_outcome) = match outcome {
            Ok(o) => (verdict::judge(&analysis, &o, pre_nmi), Some(o)),
            Err(e) => (
                Verdict::Infra {
                    reason: format!("vm: {e}"),
                },
                None,
            ),
        };
        self.finish(g.id, &verdict, vm_outcome.as_ref(), Some(&analysis))?;
        let mut r = g.result(verdict, vm_outcome, Some(analysis), false);
        (r.timings.workload, r.timings.first_finding) = workload;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_clock_times_the_run_and_its_first_finding() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut c = WorkloadClock::default();
        c.feed(b"[ 1.0] Linux version 6.12\n", at(0.0), false);
        assert_eq!(c.seconds(at(1.0)), (None, None));
        // The start marker split across two reads.
        c.feed(b"csdci: modprobe scft", at(2.0), false);
        c.feed(b"orture nthreads=8\n", at(2.5), false);
        c.feed(b"csdci: workload running for 60 s\n", at(4.0), false);
        c.feed(b"scftorture: ...\n", at(10.0), false);
        c.feed(
            b"smp: csd: Detected non-responsive CSD lock\n",
            at(14.5),
            true,
        );
        c.feed(b"more\n", at(20.0), true);
        let (w, f) = c.seconds(at(22.5));
        assert_eq!(w, Some(20.0));
        assert_eq!(f, Some(12.0));
        // A clean run ends at its "workload done" line, not the poweroff.
        let mut c = WorkloadClock::default();
        c.feed(b"csdci: modprobe scftorture \n", at(3.0), false);
        c.feed(b"csdci: workload done\n", at(8.25), false);
        assert_eq!(c.seconds(at(12.0)), (Some(5.25), None));
        // A CSD lock that hangs modprobe itself (scftorture's threads run
        // inside the module's init) fails the workload before "workload
        // running" is printed.
        let mut c = WorkloadClock::default();
        c.feed(b"csdci: modprobe scftorture nthreads=8\n", at(3.0), false);
        c.feed(
            b"smp: csd: Detected non-responsive CSD lock (#1)\n",
            at(8.0),
            true,
        );
        c.feed(b"csdci: workload running for 60 s\n", at(9.0), true);
        assert_eq!(c.seconds(at(11.0)), (Some(8.0), Some(5.0)));
    }
}

//! Testers: the one interface the bisection engine sees, "prepare commit C,
//! run it, tell me what happened", and its implementations: [`local`] (the
//! QEMU pipeline on this host) and [`command`] (`--run CMD`, like `git bisect
//! run`). A LAVA lab will be one more module here.

pub mod build_only;
pub mod command;
pub mod lava;
pub mod local;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::Sink;
use crate::spec::RunSpec;
use command::OnTimeout;

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
    /// How long its workload ran and when it first failed, when the tester
    /// measured it (a bisection on failure-time evidence needs it).
    pub exposure: Option<Exposure>,
}

/// A run's workload time: what a bisection on failure-time evidence observes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exposure {
    /// Seconds the workload ran (boot not counted), to its end, its first
    /// failure or an early stop.
    pub exposure_s: f64,
    /// Seconds after the workload started when it first failed (at most
    /// `exposure_s`); `None`: it did not.
    pub failed_at_s: Option<f64>,
}

/// How long a run may go, and when to end it early: what a bisection on
/// failure-time evidence asks of [`Tester::run_planned`].
pub struct RunPlan<'a> {
    /// Seconds of workload the run may use at most.
    pub max_exposure_s: f64,
    /// Asked with the seconds of workload run so far while the run is clean:
    /// `true` ends it now (a clean run of that exposure).
    pub should_stop: &'a dyn Fn(f64) -> bool,
    /// The failure the bisection counts: once a finding it matches is on the
    /// console the run has shown what it had to (its failure time), so the
    /// tester ends it [`FAILED_RUN_SETTLE_S`] later, when the report is
    /// complete, instead of lingering; its first match is the failure time.
    /// `None`: any finding is the failure, and a failed run ends as
    /// configured (`stop_after_crash_s`, a panic, the run's end).
    pub ends_on: Option<&'a crate::bisect::predicate::Predicate>,
}

/// Seconds a planned run goes on after its first finding that
/// [`RunPlan::ends_on`] matches: long enough for the report (a CSD-lock
/// message and its backtraces) to reach the console.
pub const FAILED_RUN_SETTLE_S: u64 = 3;

/// One run asked for in a round of a parallel bisection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// A commit already [`Tester::prepare`]d.
    pub commit: String,
    /// Counts runs of this commit from 0.
    pub attempt: u32,
}

/// Tests commits. Implementations own every process they start.
pub trait Tester {
    /// Builds or checks out `commit`.
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared>;
    /// Runs the prepared `commit` once; `attempt` counts runs of this commit from 0.
    fn run_once(&mut self, commit: &str, attempt: u32) -> crate::Result<RunReport>;
    /// Runs the prepared `commit` once for at most `plan.max_exposure_s`
    /// seconds of workload, ending it early when `plan.should_stop` says so,
    /// and reports its [`Exposure`]. The default ignores the plan (a full
    /// [`Tester::run_once`]).
    fn run_planned(
        &mut self,
        commit: &str,
        attempt: u32,
        plan: &RunPlan<'_>,
    ) -> crate::Result<RunReport> {
        let _ = plan;
        self.run_once(commit, attempt)
    }
    /// How many runs this tester can do at the same time (free LAVA
    /// devices, `--max-guests`); the driver asks for at most this many per
    /// round.
    fn workers(&self) -> usize {
        1
    }
    /// Runs several prepared commits at once and returns one result per
    /// request, in the same order (one failed request does not lose the
    /// others' reports). The default runs them one after another.
    fn run_batch(&mut self, runs: &[RunRequest]) -> Vec<crate::Result<RunReport>> {
        runs.iter()
            .map(|r| self.run_once(&r.commit, r.attempt))
            .collect()
    }
}

/// How a bisection's commits are tested: stored with it (typed JSON), so
/// `--resume`, the scheduler and the web rebuild the same tester.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TesterSpec {
    /// `--run CMD`: a shell command in csdci's checkout of each commit.
    #[serde(alias = "run")]
    Command {
        /// The command (`sh -c`); relative scripts already made absolute.
        cmd: String,
        /// Seconds after which a run is stopped.
        #[serde(default, alias = "timeout", skip_serializing_if = "Option::is_none")]
        timeout_s: Option<u64>,
        /// What a timeout means.
        #[serde(default = "abort", skip_serializing_if = "is_abort")]
        on_timeout: OnTimeout,
        /// Runs at once (`--max-guests`), each in a worktree of its own;
        /// absent: one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_guests: Option<u32>,
    },
    /// The QEMU pipeline on this host.
    #[serde(alias = "qemu")]
    Local {
        /// How each commit is tested.
        #[serde(alias = "options")]
        spec: RunSpec,
        /// Guests booted at once (`--max-guests`); absent: one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_guests: Option<u32>,
    },
    /// Whether the commit builds with the spec's configuration (a build
    /// break found by a nightly job); nothing is booted.
    Build {
        /// The configuration (its fragments) the commit is built with.
        spec: RunSpec,
    },
    /// A LAVA lab: csdci builds each commit, the lab boots it (an initramfs
    /// root) on a device of the lab's type and csdci judges the console.
    Lava {
        /// How each commit is tested (its root is always `initramfs`).
        spec: RunSpec,
        /// Where the lab is and what its jobs ask for.
        lab: lava::Lab,
    },
}

fn abort() -> OnTimeout {
    OnTimeout::Abort
}

fn is_abort(o: &OnTimeout) -> bool {
    *o == OnTimeout::Abort
}

/// Where a tester of bisection `id` keeps its files.
pub struct Context<'a> {
    /// csdci's data directory.
    pub data_dir: &'a Path,
    /// The bisection the tester serves (names its worktree and logs).
    pub id: i64,
    /// The repository.
    pub repo: &'a Path,
}

impl TesterSpec {
    /// Makes the tester this spec describes; it reports builds, stages,
    /// console lines and findings to `events`.
    pub fn build(&self, ctx: &Context<'_>, events: Sink) -> crate::Result<Box<dyn Tester>> {
        match self {
            TesterSpec::Command {
                cmd,
                timeout_s,
                on_timeout,
                max_guests,
            } => {
                let wt = ctx
                    .data_dir
                    .join("worktrees")
                    .join(format!("bisect-{}", ctx.id));
                let logs = ctx.data_dir.join("bisect").join(ctx.id.to_string());
                let mut t = command::CommandTester::new(ctx.repo, &wt, &logs, cmd)?
                    .with_workers(max_guests.unwrap_or(1) as usize)?;
                if let Some(s) = timeout_s {
                    t = t.with_timeout(std::time::Duration::from_secs(*s), *on_timeout);
                }
                Ok(Box::new(t))
            }
            TesterSpec::Local { spec, max_guests } => {
                let opts = local::RunOptions::new(ctx.repo, ctx.data_dir, spec.clone())?;
                crate::interrupt::install_interrupt_handler();
                let reporter = local::EventReporter::new(events, spec.duration_s);
                Ok(Box::new(
                    local::LocalTester::new(opts)?
                        .with_workers(max_guests.unwrap_or(1) as usize)?
                        .with_reporter(Box::new(reporter)),
                ))
            }
            TesterSpec::Lava { spec, lab } => {
                let spec = RunSpec {
                    root: crate::vm::RootKind::Initramfs,
                    ..spec.clone()
                };
                let opts = local::RunOptions::new(ctx.repo, ctx.data_dir, spec.clone())?;
                crate::interrupt::install_interrupt_handler();
                Ok(Box::new(
                    lava::LavaTester::new(opts, lab.clone())?.with_reporter(Box::new(
                        local::EventReporter::new(events, spec.duration_s),
                    )),
                ))
            }
            TesterSpec::Build { spec } => {
                let opts = local::RunOptions::new(ctx.repo, ctx.data_dir, spec.clone())?;
                crate::interrupt::install_interrupt_handler();
                let reporter = local::EventReporter::new(events, spec.duration_s);
                Ok(Box::new(build_only::BuildTester::new(
                    local::LocalTester::new(opts)?.with_reporter(Box::new(reporter)),
                )))
            }
        }
    }

    /// The failures that count, for a bisection with this tester.
    pub fn predicate(&self) -> Option<&str> {
        match self {
            TesterSpec::Command { .. } | TesterSpec::Build { .. } => None,
            TesterSpec::Local { spec, .. } | TesterSpec::Lava { spec, .. } => Some(&spec.predicate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_stored_by_the_previous_csdci_still_read() {
        let run: TesterSpec = serde_json::from_str(r#"{"kind":"run","cmd":"./t.sh"}"#).unwrap();
        assert_eq!(
            run,
            TesterSpec::Command {
                cmd: "./t.sh".into(),
                timeout_s: None,
                on_timeout: OnTimeout::Abort,
                max_guests: None,
            }
        );
        let q: TesterSpec = serde_json::from_str(
            r#"{"kind":"qemu","options":{"vcpus":8,"memory":"2G","duration":30,"scftorture":"","config_fragment":[],"accel":"auto","stop_after_crash":20}}"#,
        )
        .unwrap();
        let TesterSpec::Local { spec, max_guests } = &q else {
            panic!("{q:?}")
        };
        assert_eq!((spec.vcpus, spec.memory_mb, spec.duration_s), (8, 2048, 30));
        assert_eq!(*max_guests, None);
        let again: TesterSpec = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
        assert_eq!(again, q);
        assert!(serde_json::from_str::<TesterSpec>(r#"{"kind":"lava"}"#).is_err());
    }
}

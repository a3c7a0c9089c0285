//! Which evidence a bisection weighs (`--policy`): `runs` (today's: each run
//! passes or fails, [`Engine`]) or `timed` (failure-time evidence: each run's
//! exposure in seconds of workload and when it first failed,
//! [`TimedEngine`], which also chooses each run's length and ends a clean run
//! early). [`StageEngine`] is the one face the driver sees of either, and
//! [`replay_timed`] rebuilds a timed engine from the journal.

use std::collections::HashMap;

use csdci_bisect::{
    BatchStep, Conclusion, Config, Engine, TimedConfig, TimedEngine, TimedObs, TimedStep,
};
use serde::{Deserialize, Serialize};

use super::Error;
use super::outcome::RunObs;
use crate::store::bisect::Step;

/// How a bisection weighs its runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Each run passes or fails (a per-run failure probability).
    #[default]
    Runs,
    /// Failure-time evidence: a failure rate per second of workload; the
    /// engine chooses each run's length and stops clean runs early.
    Timed,
}

/// Seconds a local TCG guest of `vcpus` vCPUs spends outside its workload:
/// the boot times measured here (README, "Large guests": 2.4 s at 2 vCPUs,
/// 3.8 s at 8, 9.7 s at 16, 30 s at 32, 166 s at 64) plus a second for the
/// guest root and the shutdown. A lab adds its scheduling (`lab_s`).
pub fn guest_overhead_s(vcpus: u32, lab_s: f64) -> f64 {
    let boot = match vcpus {
        0..=8 => 4.0,
        9..=16 => 10.0,
        17..=32 => 30.0,
        _ => 166.0 * f64::from(vcpus) / 64.0,
    };
    boot + 1.0 + lab_s
}
/// Seconds an incremental kernel build takes (ccache), as the timed engine
/// is told.
pub const PIPELINE_BUILD_S: f64 = 20.0;

/// The timed engine's settings for a tester: `engine`'s confidence, run
/// budget and verification of the bad tip, a run's boot overhead `boot_s`,
/// the cost of preparing another commit `build_s`, and the longest run
/// `max_exposure_s` (seconds).
pub fn timed_config(
    engine: &Config,
    boot_s: f64,
    build_s: f64,
    max_exposure_s: f64,
) -> TimedConfig {
    let d = TimedConfig::default();
    TimedConfig {
        confidence: engine.confidence,
        max_runs: engine.max_runs,
        verify_bad_runs: engine.verify_bad_runs,
        verify_bad_fails: engine.verify_bad_fails.max(1),
        boot_s,
        build_s,
        min_exposure_s: d.min_exposure_s.min(max_exposure_s),
        max_exposure_s,
        ..d
    }
}

/// What to do next, from either engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run the candidate at `index`; with the timed policy, for at most
    /// `max_exposure_s` seconds of workload.
    Test {
        index: usize,
        max_exposure_s: Option<f64>,
    },
    /// Stop.
    Done(Conclusion),
}

/// The engine of one stage of a bisection.
#[derive(Debug, Clone)]
pub enum StageEngine {
    /// `--policy runs`.
    Runs(Engine),
    /// `--policy timed`.
    Timed(TimedEngine),
}

impl StageEngine {
    /// The next step.
    pub fn next(&self) -> Next {
        match self {
            StageEngine::Runs(e) => match e.next() {
                csdci_bisect::Step::Test { index } => Next::Test {
                    index,
                    max_exposure_s: None,
                },
                csdci_bisect::Step::Done(c) => Next::Done(c),
            },
            StageEngine::Timed(e) => match e.next() {
                TimedStep::Run {
                    index,
                    max_exposure_s,
                } => Next::Test {
                    index,
                    max_exposure_s: Some(max_exposure_s),
                },
                TimedStep::Done(c) => Next::Done(c),
            },
        }
    }

    /// A round of up to `workers` runs (the timed policy runs one at a time).
    pub fn next_batch(&self, workers: usize) -> BatchStep {
        match self {
            StageEngine::Runs(e) => e.next_batch(workers),
            StageEngine::Timed(_) => match self.next() {
                Next::Test { index, .. } => BatchStep::Test { runs: vec![index] },
                Next::Done(c) => BatchStep::Done(c),
            },
        }
    }

    /// Whether a clean run at `index` planned for `max_s` seconds should end
    /// after `elapsed_s` (never with the `runs` policy).
    pub fn should_stop(&self, index: usize, max_s: f64, elapsed_s: f64) -> bool {
        match self {
            StageEngine::Runs(_) => false,
            StageEngine::Timed(e) => e.stop_run(index, max_s, elapsed_s),
        }
    }

    /// The most likely culprit (or indistinguishable set) and its probability.
    pub fn best(&self) -> (Vec<usize>, f64) {
        match self {
            StageEngine::Runs(e) => e.best(),
            StageEngine::Timed(e) => e.best(),
        }
    }

    /// Posterior probability of each culprit position.
    pub fn posterior(&self) -> Vec<f64> {
        match self {
            StageEngine::Runs(e) => e.posterior(),
            StageEngine::Timed(e) => e.posterior(),
        }
    }

    /// Runs and failures observed at `index`.
    pub fn counts(&self, index: usize) -> (u32, u32) {
        match self {
            StageEngine::Runs(e) => e.counts(index),
            StageEngine::Timed(e) => {
                let (r, f, _) = e.counts(index);
                (r, f)
            }
        }
    }

    /// The bad tip's verification: at most this many runs, ending at this
    /// many failures.
    pub fn verify(&self) -> (u32, u32) {
        match self {
            StageEngine::Runs(e) => (e.config().verify_bad_runs, e.config().verify_bad_fails),
            StageEngine::Timed(e) => (e.config().verify_bad_runs, e.config().verify_bad_fails),
        }
    }

    /// The longest run the timed policy asks for (`None` with `runs`).
    pub fn max_exposure_s(&self) -> Option<f64> {
        match self {
            StageEngine::Runs(_) => None,
            StageEngine::Timed(e) => Some(e.config().max_exposure_s),
        }
    }

    /// Posterior means of a bad commit's per-run failure probability (timed:
    /// of a run of the longest length) and of the false-failure rate (timed:
    /// per run of that length).
    pub fn rates(&self) -> (f64, f64) {
        match self {
            StageEngine::Runs(e) => e.rates(),
            StageEngine::Timed(e) => {
                let t = e.config().max_exposure_s;
                let (_, eps) = e.rates();
                (e.fail_within(t), -(-eps * t).exp_m1())
            }
        }
    }

    /// With the timed policy: the posterior mean time to a bad commit's first
    /// failure, in seconds of workload.
    pub fn mttf_s(&self) -> Option<f64> {
        match self {
            StageEngine::Runs(_) => None,
            StageEngine::Timed(e) => Some(e.rates().0),
        }
    }
}

/// A run step's exposure as the timed engine observes it: the journalled
/// exposure (else, from a tester that did not measure it, the run's wall
/// time), failed at the journalled time (else at its end).
fn timed_obs(s: &Step, o: RunObs) -> Option<TimedObs> {
    let exposure_s = s.exposure_s.or(s.seconds).unwrap_or(0.0).max(0.0);
    Some(match o {
        RunObs::Pass | RunObs::Other => TimedObs::clean(exposure_s),
        RunObs::Fail => TimedObs::Run {
            exposure_s,
            failed_at_s: Some(s.failed_at_s.unwrap_or(exposure_s).min(exposure_s)),
        },
        RunObs::Skip => TimedObs::Skip,
        RunObs::Infra => return None,
    })
}

/// Rebuilds the timed engine of one candidate list from the journal's
/// finished steps: the same state as when they were observed live.
pub fn replay_timed(
    cfg: &TimedConfig,
    candidates: &[String],
    steps: &[Step],
) -> Result<TimedEngine, Error> {
    let index: HashMap<&str, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut e = TimedEngine::new(candidates.len(), cfg.clone())?;
    for s in steps.iter().filter(|s| s.status == "done") {
        let Some(&i) = index.get(s.commit.as_str()) else {
            continue;
        };
        let obs = match (s.kind.as_str(), s.outcome.as_deref()) {
            ("build", Some("untestable")) => Some(TimedObs::Skip),
            ("build", Some("ready")) => s
                .same_as
                .as_deref()
                .and_then(|c| index.get(c))
                .map(|&k| TimedObs::SameAs(k)),
            ("run", o) => RunObs::of(o).and_then(|o| timed_obs(s, o)),
            _ => None,
        };
        if let Some(o) = obs {
            e.observe(i, o)?;
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        id: i64,
        kind: &str,
        commit: &str,
        outcome: &str,
        exp: Option<f64>,
        at: Option<f64>,
    ) -> Step {
        Step {
            id,
            kind: kind.into(),
            commit: commit.into(),
            attempt: Some(0),
            status: "done".into(),
            outcome: Some(outcome.into()),
            artifact_id: None,
            same_as: None,
            reason: None,
            titles: Vec::new(),
            console_log: None,
            run_id: None,
            seconds: Some(99.0),
            exposure_s: exp,
            failed_at_s: at,
        }
    }

    #[test]
    fn the_journal_replays_into_the_same_timed_engine() {
        let cands: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
        let cfg = TimedConfig {
            verify_bad_runs: 2,
            ..TimedConfig::default()
        };
        let steps = vec![
            step(1, "run", "c5", "fail", Some(7.25), Some(7.25)),
            step(2, "run", "c5", "fail", Some(9.0), Some(8.5)),
            step(3, "run", "c2", "pass", Some(31.5), None),
            step(4, "run", "c2", "infra", None, None),
            step(5, "run", "c3", "other", Some(12.0), None),
            // Without a measured exposure: the run's wall time, failed at its end.
            step(6, "run", "c4", "fail", None, None),
            step(7, "merge_base_run", "c1", "fail", Some(3.0), Some(3.0)),
        ];
        let e = replay_timed(&cfg, &cands, &steps).unwrap();
        let live = TimedEngine::replay(
            6,
            cfg,
            [
                (5, TimedObs::failed(7.25)),
                (
                    5,
                    TimedObs::Run {
                        exposure_s: 9.0,
                        failed_at_s: Some(8.5),
                    },
                ),
                (2, TimedObs::clean(31.5)),
                (3, TimedObs::clean(12.0)),
                (4, TimedObs::failed(99.0)),
            ],
        )
        .unwrap();
        assert_eq!(e.observations(), live.observations());
        assert_eq!(e.posterior(), live.posterior());
        assert_eq!(e.counts(5), (2, 2, 16.25));
        let s = StageEngine::Timed(e);
        assert_eq!(s.counts(2), (1, 0));
        let (p, _) = s.rates();
        assert!(p > 0.9, "a bad commit fails a 600 s run: {p}");
        let m = s.mttf_s().unwrap();
        assert!(m > 1.0 && m < 1000.0, "{m}");
    }

    #[test]
    fn policy_words_are_stable() {
        assert_eq!(serde_json::to_string(&Policy::Timed).unwrap(), "\"timed\"");
        assert_eq!(Policy::default(), Policy::Runs);
    }
}

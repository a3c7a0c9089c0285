//! `csdci sweep`: which setting reproduces a failure fastest. Runs a grid of
//! settings ([`grid`]) on one failing commit within a time budget, spends it
//! adaptively ([`policy`]), estimates each setting's failure rate per
//! guest-second and its time to a first failure ([`survival`]: Kaplan–Meier,
//! clean runs censored), and recommends the setting with the lowest expected
//! wall time to a first failure, boot included. [`report`] prints the table
//! and writes the JSON and the plot ([`plot`]).

pub mod grid;
pub mod plot;
pub mod policy;
pub mod report;
pub mod survival;

use std::time::Instant;

use serde::Serialize;

pub use grid::{Arm, Axes, Skipped, Threads};
pub use policy::{Estimate, Policy, Tally};
use survival::{KaplanMeier, Obs};

/// What one run of an arm showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    /// The run's row in the store, when it was recorded.
    pub run_id: Option<i64>,
    /// Wall-clock seconds the run took without building its kernel (boot,
    /// workload, shutdown).
    pub wall_s: f64,
    /// Seconds of workload (None: it never started; the run is lost).
    pub workload_s: Option<f64>,
    /// Seconds of workload to the first failure that counts.
    pub failed_at_s: Option<f64>,
    /// The failure's title.
    pub title: Option<String>,
    /// A crash the predicate does not count, which ended the workload early
    /// (the run is clean up to it): its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_failure: Option<String>,
    /// Seconds from QEMU's start to the guest's init.
    pub boot_s: Option<f64>,
    /// scftorture's invocations (its last stats line).
    pub invocations: Option<u64>,
    /// Why the run said nothing about the kernel, when it did not.
    pub lost: Option<String>,
    /// The user stopped it: the sweep ends here.
    #[serde(skip)]
    pub interrupted: bool,
}

impl Observed {
    /// The survival observation of a judged run; None for a lost one.
    pub fn obs(&self) -> Option<Obs> {
        if self.lost.is_some() {
            return None;
        }
        let w = self.workload_s?;
        Some(match self.failed_at_s {
            Some(t) => Obs {
                time_s: t.clamp(0.0, w),
                failed: true,
            },
            None => Obs {
                time_s: w,
                failed: false,
            },
        })
    }
}

/// A sweep to run: the arms, the budget, the policy.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The commit under test.
    pub commit: String,
    /// The settings tried.
    pub arms: Vec<Arm>,
    /// Settings left out, with why.
    pub skipped: Vec<Skipped>,
    /// Wall-clock seconds the sweep may spend on runs.
    pub budget_s: f64,
    /// When to drop an arm and when to stop.
    pub policy: Policy,
}

/// One arm's result.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    /// The setting.
    #[serde(flatten)]
    pub arm: Arm,
    /// Runs judged and lost.
    pub runs: usize,
    /// Runs that failed.
    pub failures: u64,
    /// Seconds of workload, all judged runs together.
    pub exposure_s: f64,
    /// Rate and expected wall time to a first failure.
    pub estimate: Estimate,
    /// Median seconds of workload to the first failure (Kaplan–Meier).
    pub median_s: Option<f64>,
    /// Mean seconds from QEMU's start to init.
    pub boot_s: Option<f64>,
    /// scftorture invocations per second of workload (mean over runs).
    pub invocations_per_s: Option<f64>,
    /// Time to first failure: the survival curve with its band.
    pub km: KaplanMeier,
    /// Dropped, and why (None: ran to the end).
    pub dropped: Option<String>,
    /// Every run.
    pub observed: Vec<Observed>,
}

/// A sweep's result, as `--json` and `sweep.json` hold it.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The commit under test.
    pub commit: String,
    /// Wall-clock seconds the sweep could spend.
    pub budget_s: f64,
    /// Wall-clock seconds it spent.
    pub spent_s: f64,
    /// Why it stopped: `settled`, `budget`, `interrupted`, `running`.
    pub stopped: String,
    /// The policy it followed.
    pub policy: Policy,
    /// Every arm, in grid order.
    pub arms: Vec<ArmResult>,
    /// Settings left out, with why.
    pub skipped: Vec<Skipped>,
    /// Index in `arms` of the recommended setting (None: nothing failed).
    pub recommended: Option<usize>,
    /// Index of csdci's default setting, when the grid holds it.
    pub baseline: Option<usize>,
    /// Baseline's expected wall time over the recommended one's (> 1: the
    /// recommendation is faster).
    pub speedup: Option<f64>,
}

/// Runs the sweep: `run` tests one arm once; `progress` sees the result after
/// every run (to write it down, so an interrupted sweep loses nothing).
pub fn sweep(
    plan: &Plan,
    run: &mut dyn FnMut(&Arm) -> crate::Result<Observed>,
    progress: &mut dyn FnMut(&Sweep),
) -> crate::Result<Sweep> {
    let start = Instant::now();
    let run_s: Vec<f64> = plan.arms.iter().map(|a| a.duration_s as f64).collect();
    let mut tallies = vec![Tally::default(); plan.arms.len()];
    let mut observed: Vec<Vec<Observed>> = vec![Vec::new(); plan.arms.len()];
    let mut spent = 0.0;
    let stopped = loop {
        if policy::settled(&tallies, &plan.policy) {
            break "settled";
        }
        if spent >= plan.budget_s {
            break "budget";
        }
        let Some(i) = policy::next(&tallies, &plan.policy) else {
            break "settled";
        };
        let o = run(&plan.arms[i])?;
        spent = start.elapsed().as_secs_f64();
        if o.interrupted {
            break "interrupted";
        }
        match o.obs() {
            Some(obs) => {
                let overhead = o.wall_s - obs.time_s;
                if o.other_failure.is_some() {
                    tallies[i].masked(obs, overhead, o.wall_s);
                } else {
                    tallies[i].judged(obs, overhead, o.wall_s);
                }
            }
            None => tallies[i].lost(o.wall_s),
        }
        observed[i].push(o);
        policy::eliminate(&mut tallies, &run_s, &plan.policy);
        progress(&result(plan, &tallies, &observed, spent, "running"));
    };
    Ok(result(plan, &tallies, &observed, spent, stopped))
}

/// The arm that is csdci's default: 8 vCPUs, one scftorture thread per
/// vCPU, scftorture's weights, no hotplug, no load, 60 s.
fn baseline(arms: &[Arm]) -> Option<usize> {
    let d = crate::spec::RunSpec::default();
    arms.iter().position(|a| {
        a.vcpus == d.vcpus
            && a.nthreads == d.vcpus
            && a.weights.is_empty()
            && !a.hotplug
            && a.load == "none"
            && a.duration_s == d.duration_s
    })
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

fn result(
    plan: &Plan,
    tallies: &[Tally],
    observed: &[Vec<Observed>],
    spent_s: f64,
    stopped: &str,
) -> Sweep {
    let level = plan.policy.level;
    let run_s: Vec<f64> = plan.arms.iter().map(|a| a.duration_s as f64).collect();
    let arms: Vec<ArmResult> = plan
        .arms
        .iter()
        .zip(tallies)
        .zip(observed)
        .zip(&run_s)
        .map(|(((arm, t), obs), &r)| {
            let km = survival::kaplan_meier(&t.obs, level);
            ArmResult {
                arm: arm.clone(),
                runs: t.attempts(),
                failures: t.failures(),
                exposure_s: t.exposure_s(),
                estimate: t.estimate(r, level),
                median_s: km.median(),
                boot_s: mean(obs.iter().filter_map(|o| o.boot_s)),
                invocations_per_s: mean(obs.iter().filter_map(|o| {
                    let w = o.workload_s.filter(|w| *w > 0.0)?;
                    Some(o.invocations? as f64 / w)
                })),
                km,
                dropped: t.dropped.clone(),
                observed: obs.clone(),
            }
        })
        .collect();
    let recommended = policy::best(tallies, &run_s, &plan.policy);
    let baseline = baseline(&plan.arms);
    let speedup = match (recommended, baseline) {
        (Some(r), Some(b)) => {
            let (rw, bw) = (arms[r].estimate.wall_s, arms[b].estimate.wall_s);
            (rw.is_finite() && rw > 0.0 && bw.is_finite()).then(|| bw / rw)
        }
        _ => None,
    };
    Sweep {
        commit: plan.commit.clone(),
        budget_s: plan.budget_s,
        spent_s,
        stopped: stopped.into(),
        policy: plan.policy,
        arms,
        skipped: plan.skipped.clone(),
        recommended,
        baseline,
        speedup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Load;
    use crate::spec::RunSpec;

    #[test]
    fn a_sweep_spends_its_runs_on_the_arm_that_fails_and_recommends_it() {
        let axes = Axes {
            vcpus: vec![2, 8],
            threads: vec![Threads::PerVcpu(1)],
            weights: vec![String::new()],
            hotplug: vec![false],
            load: vec![Load::None],
            duration_s: vec![60],
        };
        let (arms, skipped) = grid::arms(&RunSpec::default(), &axes);
        assert_eq!(arms.len(), 2);
        let plan = Plan {
            commit: "c".into(),
            arms,
            skipped,
            budget_s: 1e9,
            policy: Policy::default(),
        };
        // 8 vCPUs fails at 5 s every time; 2 vCPUs never.
        let mut runs = Vec::new();
        let mut written = 0;
        let s = sweep(
            &plan,
            &mut |arm| {
                runs.push(arm.vcpus);
                Ok(Observed {
                    wall_s: 20.0 + if arm.vcpus == 8 { 5.0 } else { 60.0 },
                    workload_s: Some(if arm.vcpus == 8 { 5.0 } else { 60.0 }),
                    failed_at_s: (arm.vcpus == 8).then_some(5.0),
                    boot_s: Some(4.0),
                    invocations: Some(600),
                    ..Observed::default()
                })
            },
            &mut |_| written += 1,
        )
        .unwrap();
        assert_eq!(s.stopped, "settled");
        assert_eq!(s.recommended, Some(1));
        assert_eq!(s.baseline, Some(1));
        assert_eq!(s.speedup, Some(1.0));
        assert!(s.arms[0].dropped.is_some(), "{:?}", s.arms[0]);
        assert!(s.arms[1].failures >= 3);
        assert_eq!(written, runs.len());
        assert_eq!(s.arms[1].invocations_per_s, Some(120.0));
        assert_eq!(s.arms[1].median_s, Some(5.0));
        // Expected wall time: 20 s overhead / P(fail in 60 s) + 1/rate, the
        // rate 1 failure per 5 s.
        let w = s.arms[1].estimate.wall_s;
        assert!((w - 25.0).abs() < 0.1, "{w}");
        assert!(runs.len() < 10, "{runs:?}");
    }

    #[test]
    fn an_interrupted_run_ends_the_sweep_with_what_it_had() {
        let (arms, skipped) = grid::arms(
            &RunSpec::default(),
            &Axes {
                vcpus: vec![4],
                threads: vec![Threads::PerVcpu(1)],
                weights: vec![String::new()],
                hotplug: vec![false, true],
                load: vec![Load::None],
                duration_s: vec![30],
            },
        );
        let plan = Plan {
            commit: "c".into(),
            arms,
            skipped,
            budget_s: 1e9,
            policy: Policy::default(),
        };
        let mut n = 0;
        let s = sweep(
            &plan,
            &mut |_| {
                n += 1;
                Ok(Observed {
                    wall_s: 40.0,
                    workload_s: Some(30.0),
                    interrupted: n == 3,
                    ..Observed::default()
                })
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(s.stopped, "interrupted");
        assert_eq!(s.arms.iter().map(|a| a.runs).sum::<usize>(), 2);
        assert_eq!(s.recommended, None);
    }
}

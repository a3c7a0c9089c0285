//! What a bisection's runs cost in guest time, from its journal: every run's
//! wall time (boot and workload) and, where the tester measured it, its
//! exposure (seconds of workload). Reported with the bisection (`--policy
//! timed` spends exposure where it tells most; this is what it saved).

use serde::{Deserialize, Serialize};

use super::Policy;
use super::outcome::RunObs;
use crate::store::bisect::Step;

/// Guest time of a bisection's runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestTime {
    /// The policy it bisected with (`runs` or `timed`).
    pub policy: Policy,
    /// Wall seconds of every finished run (boot and workload), control runs
    /// (merge bases, tip, reverted tip) included: the guest-seconds spent.
    pub runs_s: f64,
    /// Seconds of workload of the runs whose tester measured it (`None`:
    /// none did).
    pub exposure_s: Option<f64>,
    /// Runs whose exposure was measured.
    pub measured_runs: u32,
    /// With `timed`: the posterior mean time to a bad commit's first failure
    /// (seconds of workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mttf_s: Option<f64>,
}

impl GuestTime {
    /// The totals of `steps` (finished ones count) for `policy`.
    pub fn of(steps: &[Step], policy: Policy, mttf_s: Option<f64>) -> GuestTime {
        let mut g = GuestTime {
            policy,
            mttf_s,
            ..GuestTime::default()
        };
        let runs = steps.iter().filter(|s| {
            s.status == "done"
                && s.kind.ends_with("run")
                && RunObs::of(s.outcome.as_deref()).is_some_and(RunObs::counts)
        });
        for s in runs {
            g.runs_s += s.seconds.unwrap_or(0.0);
            if let Some(e) = s.exposure_s {
                *g.exposure_s.get_or_insert(0.0) += e;
                g.measured_runs += 1;
            }
        }
        g
    }

    /// One line for the text report.
    pub fn line(&self) -> String {
        let mut s = format!("guest time: {:.1} s of runs", self.runs_s);
        if let Some(e) = self.exposure_s {
            s.push_str(&format!(
                ", {e:.1} s of workload in {} measured run{}",
                self.measured_runs,
                if self.measured_runs == 1 { "" } else { "s" }
            ));
        }
        if let Some(m) = self.mttf_s {
            s.push_str(&format!(
                " (--policy timed; a bad commit fails after {m:.1} s on average)"
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: &str, outcome: &str, seconds: f64, exposure: Option<f64>) -> Step {
        Step {
            id: 0,
            kind: kind.into(),
            commit: "c".into(),
            attempt: Some(0),
            status: "done".into(),
            outcome: Some(outcome.into()),
            artifact_id: None,
            same_as: None,
            reason: None,
            titles: Vec::new(),
            console_log: None,
            run_id: None,
            seconds: Some(seconds),
            exposure_s: exposure,
            failed_at_s: None,
        }
    }

    #[test]
    fn totals_count_finished_runs_and_measured_exposure() {
        let steps = [
            run("run", "pass", 20.0, Some(5.0)),
            run("run", "fail", 12.0, Some(2.5)),
            run("revert_run", "pass", 30.0, None),
            run("run", "infra", 99.0, Some(99.0)),
            run("build", "ready", 50.0, None),
        ];
        let g = GuestTime::of(&steps, Policy::Timed, Some(4.0));
        assert_eq!(g.runs_s, 62.0);
        assert_eq!(g.exposure_s, Some(7.5));
        assert_eq!(g.measured_runs, 2);
        assert!(g.line().contains("7.5 s of workload in 2 measured runs"));
        assert_eq!(
            GuestTime::of(&steps[2..3], Policy::Runs, None).exposure_s,
            None
        );
    }
}

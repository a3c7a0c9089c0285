//! Which arm runs next and which arms stop: successive elimination on the
//! expected wall time to a first failure. Every arm runs in turn (fewest
//! runs first); an arm whose best case (the upper end of its failure rate's
//! confidence interval) is still slower than the leading arm's worst case is
//! dropped, so the budget goes to the settings that can still win.

use serde::Serialize;

use super::survival::{self, Obs, Rate};

/// When to drop an arm and when to stop.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Policy {
    /// Two-sided confidence level of each arm's interval (e.g. 0.95).
    pub level: f64,
    /// Runs an arm gets before it may be dropped as clearly worse.
    pub min_runs: usize,
    /// Runs an arm gets at most (lost runs included).
    pub max_runs: usize,
    /// Lost runs in a row (untestable, infrastructure), or runs in a row
    /// ended by a failure the predicate does not count, that drop an arm.
    pub max_lost: u32,
    /// Failures the last arm standing needs before the sweep stops early.
    pub min_failures: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            level: 0.95,
            min_runs: 1,
            max_runs: 10,
            max_lost: 3,
            min_failures: 3,
        }
    }
}

/// What one arm has shown so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// One observation per judged run: seconds of workload to the first
    /// failure, or to a clean end (censored).
    pub obs: Vec<Obs>,
    /// Seconds each judged run cost beyond its workload (boot, shutdown;
    /// the one-off kernel build not counted).
    pub overhead_s: Vec<f64>,
    /// Wall-clock seconds of every run, lost ones included.
    pub wall_s: f64,
    /// Runs that said nothing about the kernel.
    pub lost: u32,
    /// Lost runs since the last judged one.
    pub lost_in_a_row: u32,
    /// Judged runs in a row that another failure (one the predicate does
    /// not count) ended before the one looked for could show.
    pub masked_in_a_row: u32,
    /// Still running: `None`; dropped: why.
    pub dropped: Option<String>,
}

/// An arm's figures: its failure rate and the expected wall time to a first
/// failure with its confidence interval (infinite while it never failed).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Estimate {
    /// Failures per second of workload.
    pub rate: Rate,
    /// Mean seconds a run costs beyond its workload.
    pub overhead_s: f64,
    /// Expected wall-clock seconds to a first failure (boot included).
    #[serde(serialize_with = "finite_or_null")]
    pub wall_s: f64,
    /// Its lower end (from the rate's upper end).
    #[serde(serialize_with = "finite_or_null")]
    pub wall_lower_s: f64,
    /// Its upper end (from the rate's lower end; infinite with no failure).
    #[serde(serialize_with = "finite_or_null")]
    pub wall_upper_s: f64,
}

/// JSON has no infinity: an unbounded figure is `null`.
fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

impl Tally {
    /// Runs tried, judged and lost.
    pub fn attempts(&self) -> usize {
        self.obs.len() + self.lost as usize
    }

    /// Runs that failed.
    pub fn failures(&self) -> u64 {
        self.obs.iter().filter(|o| o.failed).count() as u64
    }

    /// Seconds of workload, all judged runs together.
    pub fn exposure_s(&self) -> f64 {
        // Summed from +0.0: an empty f64 sum is -0.0.
        self.obs.iter().fold(0.0, |a, o| a + o.time_s.max(0.0))
    }

    /// Records a judged run.
    pub fn judged(&mut self, obs: Obs, overhead_s: f64, wall_s: f64) {
        self.obs.push(obs);
        self.overhead_s.push(overhead_s.max(0.0));
        self.wall_s += wall_s.max(0.0);
        self.lost_in_a_row = 0;
        self.masked_in_a_row = 0;
    }

    /// Records a run that another failure ended early: clean up to then.
    pub fn masked(&mut self, obs: Obs, overhead_s: f64, wall_s: f64) {
        let n = self.masked_in_a_row + 1;
        self.judged(obs, overhead_s, wall_s);
        self.masked_in_a_row = n;
    }

    /// Records a run that said nothing.
    pub fn lost(&mut self, wall_s: f64) {
        self.lost += 1;
        self.lost_in_a_row += 1;
        self.wall_s += wall_s.max(0.0);
    }

    /// The figures for runs of at most `run_s` seconds of workload.
    pub fn estimate(&self, run_s: f64, level: f64) -> Estimate {
        let rate = survival::poisson_rate(self.failures(), self.exposure_s(), level);
        let overhead_s = if self.overhead_s.is_empty() {
            0.0
        } else {
            self.overhead_s.iter().sum::<f64>() / self.overhead_s.len() as f64
        };
        let wall = |r: f64| survival::expected_wall_s(r, overhead_s, run_s);
        Estimate {
            rate,
            overhead_s,
            wall_s: wall(rate.per_s),
            // An unbounded rate (no exposure yet): at best the next run fails
            // at once, costing its overhead.
            wall_lower_s: if rate.upper.is_finite() {
                wall(rate.upper)
            } else {
                overhead_s
            },
            wall_upper_s: wall(rate.lower),
        }
    }
}

/// The arm to run next: a running arm with the fewest attempts that has runs
/// left (ties: the first). `None`: every arm is done.
pub fn next(tallies: &[Tally], policy: &Policy) -> Option<usize> {
    tallies
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dropped.is_none() && t.attempts() < policy.max_runs)
        .min_by_key(|(_, t)| t.attempts())
        .map(|(i, _)| i)
}

/// Drops arms that lost too many runs in a row, and arms clearly slower than
/// the leader; `run_s[i]` is arm i's run length. Returns the arms dropped now.
pub fn eliminate(tallies: &mut [Tally], run_s: &[f64], policy: &Policy) -> Vec<usize> {
    let mut dropped = Vec::new();
    for (i, t) in tallies.iter_mut().enumerate() {
        if t.dropped.is_none() && t.lost_in_a_row >= policy.max_lost {
            t.dropped = Some(format!(
                "{} runs in a row said nothing about the kernel",
                t.lost_in_a_row
            ));
            dropped.push(i);
        } else if t.dropped.is_none() && t.masked_in_a_row >= policy.max_lost {
            t.dropped = Some(format!(
                "{} runs in a row ended by another failure before the one looked for",
                t.masked_in_a_row
            ));
            dropped.push(i);
        }
    }
    let est: Vec<Estimate> = tallies
        .iter()
        .zip(run_s)
        .map(|(t, &r)| t.estimate(r, policy.level))
        .collect();
    let leader = tallies
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dropped.is_none())
        .min_by(|(a, _), (b, _)| est[*a].wall_upper_s.total_cmp(&est[*b].wall_upper_s))
        .map(|(i, _)| i);
    let Some(leader) = leader.filter(|&l| est[l].wall_upper_s.is_finite()) else {
        return dropped;
    };
    let bound = est[leader].wall_upper_s;
    for (i, t) in tallies.iter_mut().enumerate() {
        if i == leader || t.dropped.is_some() || t.obs.len() < policy.min_runs {
            continue;
        }
        if est[i].wall_lower_s > bound {
            t.dropped = Some(format!(
                "clearly slower: at best {} to a failure, arm {} at worst {}",
                secs(est[i].wall_lower_s),
                leader + 1,
                secs(bound)
            ));
            dropped.push(i);
        }
    }
    dropped
}

/// True when the sweep can stop before its budget: one arm is left and it
/// failed often enough, or no arm has runs left.
pub fn settled(tallies: &[Tally], policy: &Policy) -> bool {
    let running: Vec<&Tally> = tallies.iter().filter(|t| t.dropped.is_none()).collect();
    next(tallies, policy).is_none()
        || (running.len() == 1 && tallies.len() > 1 && running[0].failures() >= policy.min_failures)
}

/// The arm to recommend: the lowest expected wall time to a failure among
/// arms that failed at least once, running arms before dropped ones.
pub fn best(tallies: &[Tally], run_s: &[f64], policy: &Policy) -> Option<usize> {
    tallies
        .iter()
        .enumerate()
        .filter(|(_, t)| t.failures() > 0)
        .map(|(i, t)| {
            (
                i,
                t.dropped.is_some(),
                t.estimate(run_s[i], policy.level).wall_s,
            )
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)))
        .map(|(i, _, _)| i)
}

/// `12.3 s`, `4.2 min`, `∞`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "∞".into()
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Runs of `run_s` seconds, failures at rate `rate`, `boot` seconds each.
    fn simulate(rng: &mut ChaCha8Rng, rate: f64, run_s: f64, boot: f64) -> (Obs, f64) {
        let t = if rate > 0.0 {
            -rng.random::<f64>().ln() / rate
        } else {
            f64::INFINITY
        };
        let obs = Obs {
            time_s: t.min(run_s),
            failed: t < run_s,
        };
        (obs, boot)
    }

    #[test]
    fn the_fast_arm_wins_and_the_never_failing_ones_are_dropped() {
        // Arm 0 fails every ~100 s, arm 1 every ~10 s, arm 2 never, arm 3
        // every ~40 s; 60 s runs, 20 s boot each.
        let rates = [0.01, 0.1, 0.0, 0.025];
        let run_s = [60.0; 4];
        let policy = Policy {
            max_runs: 30,
            ..Policy::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut tallies = vec![Tally::default(); 4];
        let mut runs = 0;
        while let Some(i) = next(&tallies, &policy) {
            let (obs, boot) = simulate(&mut rng, rates[i], run_s[i], 20.0);
            tallies[i].judged(obs, boot, obs.time_s + boot);
            eliminate(&mut tallies, &run_s, &policy);
            runs += 1;
            if settled(&tallies, &policy) {
                break;
            }
        }
        assert_eq!(best(&tallies, &run_s, &policy), Some(1), "{tallies:?}");
        assert!(
            tallies[2].dropped.is_some(),
            "the arm that never fails is dropped"
        );
        // Far fewer runs than the full grid of 4 x 30.
        assert!(runs < 40, "{runs} runs");
        let e = tallies[1].estimate(60.0, 0.95);
        assert!(
            e.wall_lower_s <= e.wall_s && e.wall_s <= e.wall_upper_s,
            "{e:?}"
        );
    }

    #[test]
    fn lost_runs_drop_an_arm_and_no_failure_recommends_nothing() {
        let policy = Policy::default();
        let mut tallies = vec![Tally::default(); 2];
        for _ in 0..3 {
            tallies[0].lost(5.0);
        }
        tallies[1].judged(
            Obs {
                time_s: 60.0,
                failed: false,
            },
            10.0,
            70.0,
        );
        let dropped = eliminate(&mut tallies, &[60.0, 60.0], &policy);
        assert_eq!(dropped, vec![0]);
        // Another failure ending every run first drops an arm as well.
        let mut masked = Tally::default();
        for _ in 0..3 {
            let early = Obs {
                time_s: 0.2,
                failed: false,
            };
            masked.masked(early, 4.0, 4.2);
        }
        let mut two = vec![masked, Tally::default()];
        assert_eq!(eliminate(&mut two, &[60.0, 60.0], &policy), vec![0]);
        assert!(two[0].dropped.as_ref().unwrap().contains("another failure"));
        assert_eq!(next(&tallies, &policy), Some(1));
        assert_eq!(best(&tallies, &[60.0, 60.0], &policy), None);
        let e = tallies[1].estimate(60.0, 0.95);
        assert!(e.wall_upper_s.is_infinite() && e.wall_s.is_infinite());
        assert!(e.wall_lower_s.is_finite());
        assert_eq!(
            serde_json::to_value(e).unwrap()["wall_upper_s"],
            serde_json::Value::Null
        );
    }
}

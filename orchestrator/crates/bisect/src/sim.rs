//! Simulation: synthetic histories with a known culprit, flaky runs, false
//! failures and untestable commits, and three policies to bisect them: the
//! Bayesian [`Engine`], syzbot's fixed-runs policy and plain one-run bisection.
//! [`batch`]: the engine with W testers, rounds of W runs at once.
//! [`timed`]: the same on failure-time histories, costed in guest-seconds.

use rand::Rng;
use serde::Serialize;

use crate::{Config, Engine, Obs, Step};

pub mod batch;
pub mod timed;

/// A synthetic history of `n` candidates with a known culprit.
#[derive(Debug, Clone)]
pub struct History {
    /// Number of candidates (index `n - 1` is the bad tip).
    pub n: usize,
    /// Index of the first bad commit.
    pub culprit: usize,
    /// Probability that a run of a bad commit fails.
    pub p: f64,
    /// Probability that a run of a good commit fails.
    pub false_fail: f64,
    /// Commits that cannot be built.
    pub untestable: Vec<bool>,
}

impl History {
    /// A random history: culprit uniform, each commit but the tip untestable with
    /// probability `skip_density`.
    pub fn random(
        rng: &mut impl Rng,
        n: usize,
        p: f64,
        false_fail: f64,
        skip_density: f64,
    ) -> Self {
        let culprit = rng.random_range(0..n);
        let untestable = (0..n)
            .map(|i| i + 1 < n && rng.random_bool(skip_density))
            .collect();
        History {
            n,
            culprit,
            p,
            false_fail,
            untestable,
        }
    }

    /// One run of commit `i`: true when it fails.
    pub fn run(&self, rng: &mut impl Rng, i: usize) -> bool {
        let p = if i >= self.culprit {
            self.p
        } else {
            self.false_fail
        };
        rng.random_bool(p)
    }

    /// The best answer possible: the positions no test can tell from the culprit
    /// (position `i + 1` differs from `i` only in the state of commit `i`, so an
    /// untestable commit joins its two positions).
    pub fn truth(&self) -> Vec<usize> {
        truth(self.n, self.culprit, &self.untestable)
    }
}

/// The positions no test can tell from `culprit` (see [`History::truth`]).
pub(crate) fn truth(n: usize, culprit: usize, untestable: &[bool]) -> Vec<usize> {
    let mut lo = culprit;
    while lo > 0 && untestable[lo - 1] {
        lo -= 1;
    }
    let mut hi = culprit;
    while hi + 1 < n && untestable[hi] {
        hi += 1;
    }
    (lo..=hi).collect()
}

/// A bisection policy.
#[derive(Debug, Clone)]
pub enum Policy {
    /// The Bayesian engine.
    Bayes(Config),
    /// The Bayesian engine told each history's true failure probability and
    /// false-failure rate (its grids hold just those values, no robust prior):
    /// not a policy anyone can run, but a floor on the runs of any engine that
    /// has to learn the rates from the same runs.
    Told(Config),
    /// syzbot: 10 runs per commit (20 once a commit was flaky); bad at
    /// ≥ max(2, runs/6) failures, good only with zero, otherwise skipped; plain
    /// binary search on those verdicts.
    Syzbot,
    /// One run per commit, binary search (`git bisect run`).
    Plain,
}

/// What one simulated bisection cost and answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The answer: one index, or a set when not isolated.
    pub candidates: Vec<usize>,
    /// Runs made.
    pub runs: u32,
    /// Commits prepared (built), untestable ones included.
    pub builds: u32,
}

/// Bisects `h` with `policy`.
pub fn simulate(policy: &Policy, h: &History, rng: &mut impl Rng) -> Outcome {
    match policy {
        Policy::Bayes(cfg) => bayes(cfg, h, rng),
        Policy::Told(cfg) => {
            let told = Config {
                p_grid: vec![h.p.min(0.999)],
                false_fail: vec![h.false_fail.clamp(1e-4, 0.49)],
                robust_prior_exp: 0.0,
                ..cfg.clone()
            };
            bayes(&told, h, rng)
        }
        Policy::Syzbot => fixed_runs(h, rng, true),
        Policy::Plain => fixed_runs(h, rng, false),
    }
}

fn bayes(cfg: &Config, h: &History, rng: &mut impl Rng) -> Outcome {
    let mut e = Engine::new(h.n, cfg.clone()).expect("valid config");
    let (mut runs, mut builds) = (0, 0);
    let mut prepared = None;
    loop {
        match e.next() {
            Step::Test { index } => {
                if prepared != Some(index) {
                    builds += 1;
                    if h.untestable[index] {
                        prepared = None;
                        e.observe(index, Obs::Skip).expect("index in range");
                        continue;
                    }
                    prepared = Some(index);
                }
                runs += 1;
                let obs = if h.run(rng, index) {
                    Obs::Fail
                } else {
                    Obs::Pass
                };
                e.observe(index, obs).expect("index in range");
            }
            Step::Done(c) => {
                return Outcome {
                    candidates: c.candidates,
                    runs,
                    builds,
                };
            }
        }
    }
}

/// Binary search with a fixed number of runs per commit (syzbot) or one (plain).
fn fixed_runs(h: &History, rng: &mut impl Rng, syzbot: bool) -> Outcome {
    // Known good below `lo` (exclusive; -1 = the good commit), known bad at `hi`.
    let mut lo: isize = -1;
    let mut hi = h.n - 1;
    let mut skipped = vec![false; h.n];
    let mut per_commit = if syzbot { 10 } else { 1 };
    let (mut runs, mut builds) = (0, 0);
    loop {
        let mid = (lo + hi as isize) as f64 / 2.0;
        let pick = ((lo + 1) as usize..hi)
            .filter(|&i| !skipped[i])
            .min_by(|&a, &b| (a as f64 - mid).abs().total_cmp(&(b as f64 - mid).abs()));
        let Some(i) = pick else {
            return Outcome {
                candidates: ((lo + 1) as usize..=hi).collect(),
                runs,
                builds,
            };
        };
        builds += 1;
        if h.untestable[i] {
            skipped[i] = true;
            continue;
        }
        let fails = (0..per_commit).filter(|_| h.run(rng, i)).count() as u32;
        runs += per_commit;
        if !syzbot {
            if fails > 0 {
                hi = i;
            } else {
                lo = i as isize;
            }
            continue;
        }
        let flaky = fails > 0 && fails < per_commit;
        if fails >= 2.max(per_commit / 6) {
            hi = i;
        } else if fails == 0 {
            lo = i as isize;
        } else {
            skipped[i] = true;
        }
        if flaky {
            per_commit = 20;
        }
    }
}

/// Accuracy and cost of a policy over many trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Trials run.
    pub trials: usize,
    /// Fraction of trials whose answer was exactly [`History::truth`].
    pub accuracy: f64,
    /// Mean runs per bisection.
    pub mean_runs: f64,
    /// 95th percentile of runs per bisection.
    pub p95_runs: f64,
    /// Mean builds per bisection.
    pub mean_builds: f64,
    /// Largest number of builds in one bisection.
    pub max_builds: u32,
}

/// Summarises `(history, outcome)` pairs.
pub fn summarize<'a>(results: impl IntoIterator<Item = (&'a History, &'a Outcome)>) -> Summary {
    let mut runs = Vec::new();
    let (mut correct, mut builds, mut max_builds) = (0usize, 0u64, 0u32);
    for (h, o) in results {
        correct += usize::from(o.candidates == h.truth());
        runs.push(o.runs);
        builds += u64::from(o.builds);
        max_builds = max_builds.max(o.builds);
    }
    let t = runs.len();
    if t == 0 {
        return Summary::default();
    }
    runs.sort_unstable();
    let p95 = runs[((t as f64 * 0.95).ceil() as usize).clamp(1, t) - 1];
    Summary {
        trials: t,
        accuracy: correct as f64 / t as f64,
        mean_runs: runs.iter().map(|&r| f64::from(r)).sum::<f64>() / t as f64,
        p95_runs: f64::from(p95),
        mean_builds: builds as f64 / t as f64,
        max_builds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn run(policy: &Policy, n: usize, p: f64, eps: f64, skip: f64, trials: usize) -> Summary {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let pairs: Vec<_> = (0..trials)
            .map(|_| {
                let h = History::random(&mut rng, n, p, eps, skip);
                let o = simulate(policy, &h, &mut rng);
                (h, o)
            })
            .collect();
        summarize(pairs.iter().map(|(h, o)| (h, o)))
    }

    #[test]
    fn plain_bisection_is_exact_when_deterministic() {
        let s = run(&Policy::Plain, 100, 1.0, 0.0, 0.0, 50);
        assert_eq!(s.accuracy, 1.0);
        assert!(s.max_builds <= 7);
    }

    #[test]
    fn knowing_the_rates_saves_runs() {
        let told = run(&Policy::Told(Config::default()), 16, 0.5, 0.01, 0.0, 60);
        let learnt = run(&Policy::Bayes(Config::default()), 16, 0.5, 0.01, 0.0, 60);
        assert!(told.accuracy >= 0.95, "{told:?}");
        assert!(told.mean_runs < learnt.mean_runs, "{told:?} vs {learnt:?}");
    }

    #[test]
    fn bayes_is_accurate_on_flaky_history() {
        let s = run(&Policy::Bayes(Config::default()), 64, 0.5, 0.01, 0.05, 40);
        assert!(s.accuracy >= 0.95, "{s:?}");
    }
}

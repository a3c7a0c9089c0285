//! Parallel bisection on synthetic histories: the engine with `W` testers
//! ([`Engine::next_batch`]), costed in rounds (wall-clock: a round's runs go at
//! once) and runs.

use rand::Rng;
use serde::Serialize;

use super::History;
use crate::{BatchStep, Config, Engine, Obs};

/// What one simulated parallel bisection cost and answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchOutcome {
    /// The answer: one index, or a set when not isolated.
    pub candidates: Vec<usize>,
    /// Rounds of runs (each up to `W` runs at once).
    pub rounds: u32,
    /// Runs made.
    pub runs: u32,
    /// Commits prepared (each round prepares the commits it runs that the
    /// round before did not; untestable ones included).
    pub builds: u32,
}

/// Bisects `h` with the engine (`cfg`) and `workers` testers.
pub fn simulate_batch(
    cfg: &Config,
    h: &History,
    workers: usize,
    rng: &mut impl Rng,
) -> BatchOutcome {
    let mut e = Engine::new(h.n, cfg.clone()).expect("valid config");
    let (mut rounds, mut runs, mut builds) = (0, 0, 0);
    let mut prepared: Vec<usize> = Vec::new();
    loop {
        match e.next_batch(workers) {
            BatchStep::Test { runs: batch } => {
                let mut distinct = batch.clone();
                distinct.dedup();
                // Preparing comes first: an untestable commit leaves the round
                // to be chosen again without it.
                let mut skipped = false;
                for &i in &distinct {
                    if !prepared.contains(&i) {
                        builds += 1;
                    }
                    if h.untestable[i] {
                        e.observe(i, Obs::Skip).expect("index in range");
                        skipped = true;
                    }
                }
                if skipped {
                    prepared.retain(|i| !h.untestable[*i]);
                    continue;
                }
                prepared = distinct;
                rounds += 1;
                for i in batch {
                    runs += 1;
                    let obs = if h.run(rng, i) { Obs::Fail } else { Obs::Pass };
                    e.observe(i, obs).expect("index in range");
                }
            }
            BatchStep::Done(c) => {
                return BatchOutcome {
                    candidates: c.candidates,
                    rounds,
                    runs,
                    builds,
                };
            }
        }
    }
}

/// Accuracy and cost of parallel bisections over many trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchSummary {
    /// Trials run.
    pub trials: usize,
    /// Fraction of trials whose answer was exactly [`History::truth`].
    pub accuracy: f64,
    /// Mean rounds per bisection.
    pub mean_rounds: f64,
    /// 95th percentile of rounds per bisection.
    pub p95_rounds: f64,
    /// Mean runs per bisection.
    pub mean_runs: f64,
    /// Mean builds per bisection.
    pub mean_builds: f64,
}

/// Summarises `(history, outcome)` pairs.
pub fn summarize_batch<'a>(
    results: impl IntoIterator<Item = (&'a History, &'a BatchOutcome)>,
) -> BatchSummary {
    let mut rounds = Vec::new();
    let (mut correct, mut runs, mut builds) = (0usize, 0u64, 0u64);
    for (h, o) in results {
        correct += usize::from(o.candidates == h.truth());
        rounds.push(o.rounds);
        runs += u64::from(o.runs);
        builds += u64::from(o.builds);
    }
    let t = rounds.len();
    if t == 0 {
        return BatchSummary::default();
    }
    rounds.sort_unstable();
    let p95 = rounds[((t as f64 * 0.95).ceil() as usize).clamp(1, t) - 1];
    BatchSummary {
        trials: t,
        accuracy: correct as f64 / t as f64,
        mean_rounds: rounds.iter().map(|&r| f64::from(r)).sum::<f64>() / t as f64,
        p95_rounds: f64::from(p95),
        mean_runs: runs as f64 / t as f64,
        mean_builds: builds as f64 / t as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn run(n: usize, p: f64, w: usize, trials: usize) -> BatchSummary {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let pairs: Vec<_> = (0..trials)
            .map(|_| {
                let h = History::random(&mut rng, n, p, 0.01, 0.05);
                let o = simulate_batch(&Config::default(), &h, w, &mut rng);
                (h, o)
            })
            .collect();
        summarize_batch(pairs.iter().map(|(h, o)| (h, o)))
    }

    #[test]
    fn more_workers_take_fewer_rounds_on_a_flaky_history() {
        let one = run(64, 0.5, 1, 30);
        let eight = run(64, 0.5, 8, 30);
        assert!(
            one.accuracy >= 0.9 && eight.accuracy >= 0.9,
            "{one:?} {eight:?}"
        );
        assert!(
            eight.mean_rounds * 2.5 <= one.mean_rounds,
            "{one:?} vs {eight:?}"
        );
        // One worker: a round is a run.
        assert_eq!(one.mean_rounds, one.mean_runs);
    }
}

//! Rounds of several runs at once: with W testers free, [`Engine::next_batch`]
//! chooses W runs (several commits, or repeats of one) for the same round.
//!
//! A batch is judged by the expected information its *joint* outcome gives
//! about the culprit: the runs' commits cut the positions into segments no run
//! of the batch can tell apart inside, and the outcome (failures per commit) is
//! a mixture over those segments. W copies of the best single run tell much
//! less than W runs spread over the posterior (k-ary search when the test is
//! deterministic), and repeats of one commit win only where one run of a flaky
//! test says too little. The batch is built greedily, one run at a time, each
//! the run that adds most to the information of the batch so far; the failure
//! probability and false-failure rate are taken at their posterior means.
//!
//! Small outcome spaces are enumerated exactly; large ones (many commits,
//! flaky) are estimated by a fixed, seeded sample, so a batch stays a pure
//! function of the engine's observations and a replay chooses the same.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::engine::{Conclusion, Engine, Step};

/// A round: what to run next, all at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStep {
    /// Run the candidate at each index once, at the same time (ascending; an
    /// index listed twice is run twice). Never empty, never more runs than
    /// workers asked for.
    Test { runs: Vec<usize> },
    /// Stop.
    Done(Conclusion),
}

/// Outcome spaces with at most this many outcomes (after pruning the
/// negligible ones) are enumerated exactly; larger ones are sampled.
const EXACT_OUTCOMES: usize = 2048;
/// Samples of a large outcome space.
const SAMPLES: usize = 1024;
/// Outcomes (and partial outcomes) less likely than this are left out.
const PRUNE: f64 = 1e-13;
/// A run that adds less information than this (nats) is not worth a worker.
const MIN_GAIN: f64 = 1e-6;
/// The sample's seed (fixed: the same state always chooses the same batch).
const SEED: u64 = 0x6373_6463_692d_6274;

/// `x ln x`, with `0 ln 0 = 0`.
fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Probabilities of 0..=r failures in `r` runs failing with probability `x`.
fn binomial(r: u32, x: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(r as usize + 1);
    let mut c = 1.0f64;
    for f in 0..=r {
        out.push(c * x.powi(f as i32) * (1.0 - x).powi((r - f) as i32));
        c = c * f64::from(r - f) / f64::from(f + 1);
    }
    out
}

/// Entropy (nats) of a distribution.
fn entropy(d: &[f64]) -> f64 {
    -d.iter().map(|&x| xlogx(x)).sum::<f64>()
}

/// A batch: distinct candidate indices (ascending) and how often each is run.
type Batch = Vec<(usize, u32)>;

/// The batch with one run more at `index`.
fn with(batch: &Batch, index: usize) -> Batch {
    let mut b = batch.clone();
    match b.binary_search_by_key(&index, |&(i, _)| i) {
        Ok(k) => b[k].1 += 1,
        Err(k) => b.insert(k, (index, 1)),
    }
    b
}

/// What a batch is judged against: the culprit's posterior and the rates.
pub(crate) struct Model {
    /// Prefix sums of the posterior over positions (`cum[i]`: mass below `i`).
    cum: Vec<f64>,
    /// Failure probability of a run of a bad commit.
    p: f64,
    /// Failure probability of a run of a good commit.
    eps: f64,
}

impl Model {
    pub(crate) fn new(post: &[f64], p: f64, eps: f64) -> Self {
        let mut cum = Vec::with_capacity(post.len() + 1);
        cum.push(0.0);
        for &m in post {
            cum.push(cum.last().copied().unwrap_or(0.0) + m);
        }
        Model { cum, p, eps }
    }

    fn n(&self) -> usize {
        self.cum.len() - 1
    }

    /// Mass of positions `lo..=hi`.
    fn mass(&self, lo: usize, hi: usize) -> f64 {
        (self.cum[hi + 1] - self.cum[lo]).max(0.0)
    }

    /// The segments of positions `batch` cuts (position `i` is the culprit:
    /// a run at `j` fails as a bad commit's iff `i <= j`): `(lo, hi)` each.
    fn segments(&self, batch: &Batch) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(batch.len() + 1);
        let mut lo = 0;
        for &(j, _) in batch {
            out.push((lo, j));
            lo = j + 1;
        }
        out.push((lo, self.n() - 1));
        out
    }

    /// Expected reduction of the entropy (nats) of the culprit position by the
    /// joint outcome of `batch`: H(outcome) − H(outcome | culprit).
    pub(crate) fn info(&self, batch: &Batch) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        let seg: Vec<f64> = self
            .segments(batch)
            .iter()
            .map(|&(lo, hi)| if lo <= hi { self.mass(lo, hi) } else { 0.0 })
            .collect();
        let bad: Vec<Vec<f64>> = batch.iter().map(|&(_, r)| binomial(r, self.p)).collect();
        let good: Vec<Vec<f64>> = batch.iter().map(|&(_, r)| binomial(r, self.eps)).collect();
        // Run k is a bad commit's for segments 0..=k.
        let total: f64 = seg.iter().sum();
        let mut below = 0.0;
        let mut h_cond = 0.0;
        for k in 0..batch.len() {
            below += seg[k];
            h_cond += below * entropy(&bad[k]) + (total - below) * entropy(&good[k]);
        }
        let h =
            exact_entropy(&seg, &bad, &good).unwrap_or_else(|| sampled_entropy(&seg, &bad, &good));
        (h - h_cond).max(0.0)
    }
}

/// Entropy of the outcome (failures per run), enumerated; `None` when there
/// are more than [`EXACT_OUTCOMES`] outcomes that matter.
fn exact_entropy(seg: &[f64], bad: &[Vec<f64>], good: &[Vec<f64>]) -> Option<f64> {
    let m = bad.len();
    // levels[k]: per segment, the probability of the outcome so far.
    let mut levels = vec![vec![0.0; seg.len()]; m + 1];
    levels[0].copy_from_slice(seg);
    let mut h = 0.0;
    let mut outcomes = 0usize;
    // Depth-first over the runs' outcomes: choice[k] is the failures at run k.
    let mut choice = vec![0usize; m];
    let mut k = 0usize;
    loop {
        if k == m {
            let p: f64 = levels[m].iter().sum();
            h -= xlogx(p);
            outcomes += 1;
            if outcomes > EXACT_OUTCOMES {
                return None;
            }
            // Back up to the next choice.
            loop {
                if k == 0 {
                    return Some(h);
                }
                k -= 1;
                choice[k] += 1;
                if choice[k] < bad[k].len() {
                    break;
                }
            }
        }
        let f = choice[k];
        if f >= bad[k].len() {
            if k == 0 {
                return Some(h);
            }
            k -= 1;
            choice[k] += 1;
            continue;
        }
        let (head, tail) = levels.split_at_mut(k + 1);
        let (from, to) = (&head[k], &mut tail[0]);
        let mut w = 0.0;
        for (s, (x, y)) in from.iter().zip(to.iter_mut()).enumerate() {
            *y = x * if s <= k { bad[k][f] } else { good[k][f] };
            w += *y;
        }
        if w < PRUNE {
            choice[k] += 1;
            continue;
        }
        k += 1;
        if k < m {
            choice[k] = 0;
        }
    }
}

/// Entropy of the outcome, estimated from a fixed sample of it.
fn sampled_entropy(seg: &[f64], bad: &[Vec<f64>], good: &[Vec<f64>]) -> f64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let total: f64 = seg.iter().sum();
    let mut h = 0.0;
    let mut y = vec![0usize; bad.len()];
    for _ in 0..SAMPLES {
        let mut u = rng.random::<f64>() * total;
        let mut s = seg.len() - 1;
        for (i, &m) in seg.iter().enumerate() {
            if u < m {
                s = i;
                break;
            }
            u -= m;
        }
        for (k, yk) in y.iter_mut().enumerate() {
            let d = if s <= k { &bad[k] } else { &good[k] };
            let mut v = rng.random::<f64>();
            *yk = d.len() - 1;
            for (f, &q) in d.iter().enumerate() {
                if v < q {
                    *yk = f;
                    break;
                }
                v -= q;
            }
        }
        let p: f64 = seg
            .iter()
            .enumerate()
            .map(|(t, &m)| {
                m * y
                    .iter()
                    .enumerate()
                    .map(|(k, &f)| if t <= k { bad[k][f] } else { good[k][f] })
                    .product::<f64>()
            })
            .sum();
        h -= p.max(f64::MIN_POSITIVE).ln();
    }
    h / SAMPLES as f64
}

impl Engine {
    /// The next round for `workers` testers free: up to `workers` runs, chosen
    /// together (see the module documentation). With one worker this is
    /// exactly [`Engine::next`]. Feed every run's observation (in any order)
    /// before asking again.
    pub fn next_batch(&self, workers: usize) -> BatchStep {
        let index = match self.next() {
            Step::Done(c) => return BatchStep::Done(c),
            Step::Test { index } => index,
        };
        let mut w = workers.max(1);
        if let Some(max) = self.config().max_runs {
            w = w.min(max.saturating_sub(self.total_runs()).max(1) as usize);
        }
        if w == 1 {
            return BatchStep::Test { runs: vec![index] };
        }
        if self.verify_step().is_some() {
            // The bad tip's verification: its remaining runs, at once.
            let tip = self.len() - 1;
            let left = self
                .config()
                .verify_bad_runs
                .saturating_sub(self.counts(tip).0);
            return BatchStep::Test {
                runs: vec![tip; w.min(left.max(1) as usize)],
            };
        }
        let post = self.posterior();
        let (p, eps) = self.rates();
        let model = Model::new(&post, p, eps);
        let mut batch: Batch = Vec::new();
        let mut info = 0.0;
        for _ in 0..w {
            let mut best: Option<(Batch, f64)> = None;
            for c in self.batch_candidates(&model, &batch, index) {
                let b = with(&batch, c);
                let i = model.info(&b);
                if best.as_ref().is_none_or(|(_, x)| i > *x) {
                    best = Some((b, i));
                }
            }
            match best {
                Some((b, i)) if i - info > MIN_GAIN => {
                    batch = b;
                    info = i;
                }
                _ => break,
            }
        }
        if batch.is_empty() {
            return BatchStep::Test { runs: vec![index] };
        }
        BatchStep::Test {
            runs: batch
                .iter()
                .flat_map(|&(i, r)| std::iter::repeat_n(i, r as usize))
                .collect(),
        }
    }

    /// Runs worth trying next in a batch: another run of each commit in it,
    /// the commit that halves each segment it leaves, and the single run
    /// [`Engine::next`] would choose.
    fn batch_candidates(&self, model: &Model, batch: &Batch, single: usize) -> Vec<usize> {
        let mut out: Vec<usize> = batch.iter().map(|&(i, _)| i).collect();
        if self.testable(single) {
            out.push(single);
        }
        for (lo, hi) in model.segments(batch) {
            if lo >= hi {
                continue;
            }
            let total = model.mass(lo, hi);
            if total <= 0.0 {
                continue;
            }
            // A run at t splits the segment into lo..=t and t+1..=hi.
            let split = (lo..hi).filter(|&t| self.testable(t)).min_by(|&a, &b| {
                let qa = (model.mass(lo, a) / total - 0.5).abs();
                let qb = (model.mass(lo, b) / total - 0.5).abs();
                qa.total_cmp(&qb)
            });
            out.extend(split);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Obs};

    fn noiseless() -> Config {
        Config {
            p_grid: vec![1.0 - 1e-9],
            false_fail: vec![1e-9],
            settle_runs: 1,
            ..Config::default()
        }
    }

    /// Bisects `n` candidates deterministically with `w` workers; returns the
    /// culprit found and the rounds.
    fn rounds(n: usize, culprit: usize, w: usize, cfg: &Config) -> (Option<usize>, u32) {
        let mut e = Engine::new(n, cfg.clone()).unwrap();
        let mut rounds = 0;
        loop {
            match e.next_batch(w) {
                BatchStep::Test { runs } => {
                    assert!(!runs.is_empty() && runs.len() <= w, "{runs:?}");
                    rounds += 1;
                    for i in runs {
                        let obs = if i >= culprit { Obs::Fail } else { Obs::Pass };
                        e.observe(i, obs).unwrap();
                    }
                    assert!(rounds < 100, "no end");
                }
                BatchStep::Done(c) => return (c.culprit(), rounds),
            }
        }
    }

    #[test]
    fn one_worker_chooses_what_next_chooses() {
        let mut e = Engine::new(40, Config::default()).unwrap();
        for (i, o) in [
            (20, Obs::Pass),
            (30, Obs::Fail),
            (30, Obs::Pass),
            (25, Obs::Skip),
        ] {
            match (e.next(), e.next_batch(1)) {
                (Step::Test { index }, BatchStep::Test { runs }) => assert_eq!(runs, vec![index]),
                (a, b) => panic!("{a:?} vs {b:?}"),
            }
            e.observe(i, o).unwrap();
        }
    }

    #[test]
    fn a_deterministic_test_gets_k_ary_search() {
        // Three workers cut the candidates in four per round: half the rounds
        // of one worker.
        let n = 256;
        for culprit in (0..n).step_by(5).chain([n - 2, n - 1]) {
            let (c1, r1) = rounds(n, culprit, 1, &noiseless());
            let (c3, r3) = rounds(n, culprit, 3, &noiseless());
            assert_eq!((c1, c3), (Some(culprit), Some(culprit)));
            assert_eq!(r1, 8, "culprit {culprit}");
            assert!(r3 <= 4, "culprit {culprit}: {r3} rounds with 3 workers");
        }
        for (w, limit) in [(7, 3), (15, 2)] {
            for culprit in (0..n).step_by(7) {
                let (c, r) = rounds(n, culprit, w, &noiseless());
                assert_eq!(c, Some(culprit));
                assert!(r <= limit, "w={w} culprit {culprit}: {r} rounds");
            }
        }
    }

    #[test]
    fn spread_runs_tell_more_than_copies_of_one() {
        let post = vec![1.0 / 64.0; 64];
        let m = Model::new(&post, 1.0 - 1e-9, 1e-9);
        let quartiles = m.info(&vec![(15, 1), (31, 1), (47, 1)]);
        assert!((quartiles - 4f64.ln()).abs() < 1e-6, "{quartiles}");
        let copies = m.info(&vec![(31, 3)]);
        assert!((copies - 2f64.ln()).abs() < 1e-6, "{copies}");
        // A flaky test: two runs of the median beat one, but by less than two.
        let m = Model::new(&post, 0.5, 0.01);
        let (one, two) = (m.info(&vec![(31, 1)]), m.info(&vec![(31, 2)]));
        assert!(two > one && two < 2.0 * one, "{one} {two}");
    }

    #[test]
    fn sampled_entropy_agrees_with_the_exact_one() {
        let post: Vec<f64> = (1..=50).map(|i| i as f64 / 1275.0).collect();
        let m = Model::new(&post, 0.6, 0.02);
        let batch: Batch = vec![(5, 1), (12, 2), (20, 1), (33, 1), (40, 3)];
        let seg: Vec<f64> = m
            .segments(&batch)
            .iter()
            .map(|&(lo, hi)| m.mass(lo, hi))
            .collect();
        let bad: Vec<Vec<f64>> = batch.iter().map(|&(_, r)| binomial(r, m.p)).collect();
        let good: Vec<Vec<f64>> = batch.iter().map(|&(_, r)| binomial(r, m.eps)).collect();
        let exact = exact_entropy(&seg, &bad, &good).unwrap();
        let sampled = sampled_entropy(&seg, &bad, &good);
        assert!((exact - sampled).abs() < 0.1, "{exact} vs {sampled}");
        let h: f64 = binomial(3, 0.3).iter().sum();
        assert!((h - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_batch_respects_the_budget_and_verifies_the_tip_first() {
        let cfg = Config {
            max_runs: Some(5),
            ..Config::default()
        };
        let mut e = Engine::new(100, cfg).unwrap();
        e.observe(50, Obs::Pass).unwrap();
        e.observe(50, Obs::Pass).unwrap();
        match e.next_batch(8) {
            BatchStep::Test { runs } => assert!(runs.len() <= 3, "{runs:?}"),
            s => panic!("{s:?}"),
        }
        let cfg = Config {
            verify_bad_runs: 6,
            ..Config::default()
        };
        let mut e = Engine::new(30, cfg).unwrap();
        assert_eq!(e.next_batch(4), BatchStep::Test { runs: vec![29; 4] });
        for _ in 0..4 {
            e.observe(29, Obs::Pass).unwrap();
        }
        assert_eq!(e.next_batch(4), BatchStep::Test { runs: vec![29; 2] });
    }

    #[test]
    fn a_flaky_test_spreads_and_repeats() {
        let mut e = Engine::new(64, Config::default()).unwrap();
        for _ in 0..3 {
            e.observe(63, Obs::Fail).unwrap();
        }
        let BatchStep::Test { runs } = e.next_batch(8) else {
            panic!()
        };
        assert_eq!(runs.len(), 8);
        let mut distinct = runs.clone();
        distinct.dedup();
        assert!(distinct.len() >= 3, "{runs:?}");
        // Replaying the same observations chooses the same batch.
        let r = Engine::replay(64, Config::default(), e.observations().to_vec()).unwrap();
        assert_eq!(r.next_batch(8), e.next_batch(8));
    }
}

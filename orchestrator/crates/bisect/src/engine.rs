//! The bisection engine: observations in, next step out.

use serde::{Deserialize, Serialize};

use crate::posterior::Joint;

/// Engine errors (all caused by the caller's input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("no candidate commits to bisect")]
    Empty,
    #[error("confidence must be between 0.5 and 1 (exclusive), got {0}")]
    Confidence(f64),
    #[error("false-failure rates must be non-empty and in (0, 0.5)")]
    FalseFail,
    #[error("failure-probability grid must be non-empty, in (0, 1], and hold a value below 1")]
    Grid,
    #[error("the settle tolerance must be finite and above 0")]
    Settle,
    #[error("costs must be finite, build cost >= 0 and run cost > 0")]
    Cost,
    #[error("candidate index {index} out of range (there are {n})")]
    Index { index: usize, n: usize },
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Stop when the most likely culprit (or set of indistinguishable candidates)
    /// has at least this posterior probability.
    pub confidence: f64,
    /// Stop once this many runs have been made in total (`None`: no limit).
    pub max_runs: Option<u32>,
    /// Grid of probabilities that a run of a good commit fails anyway (false
    /// failure); the prior is uniform over it and it is learnt like the others.
    pub false_fail: Vec<f64>,
    /// Grid of per-run failure probabilities of a bad commit; the prior is uniform
    /// over it and it is learnt jointly with the culprit position.
    pub p_grid: Vec<f64>,
    /// Failures the user saw on the bad tip before bisecting (prior evidence about
    /// the failure probability; the tip is never re-tested for position).
    pub tip_failures: u32,
    /// Cost of preparing (building / checking out) a commit, in the same unit as
    /// `run_cost`.
    pub build_cost: f64,
    /// Cost of one run of a prepared commit.
    pub run_cost: f64,
    /// While no commit has both passed and failed, re-run the prepared commit up to
    /// this many times to settle its state before moving on.
    pub settle_runs: u32,
    /// Settling ends once the posterior mass on the prepared commit's unsettled
    /// side is below this fraction of `1 - confidence`. 0.25 keeps a deterministic
    /// test within `git bisect`'s builds; larger values leave a consistent commit
    /// sooner and may come back to it (fewer runs, sometimes one build more:
    /// right where a build is cheaper than a run).
    pub settle_tolerance: f64,
    /// Once the test has shown itself flaky, stopping also requires the confidence
    /// under a prior over the failure probability weighted by `p^-robust_prior_exp`
    /// (0 turns this off).
    pub robust_prior_exp: f64,
    /// While the results are consistent, split the interval between the highest
    /// commit that only passed and the lowest that only failed, as `git bisect`
    /// does, instead of the whole posterior: a deterministic test then builds
    /// the commits git would, on any number of candidates. Off, the doubt left
    /// on settled commits moves the split (a build more at times, a few runs
    /// fewer: right where a run costs more than a build).
    pub split_interval: bool,
    /// Before bisecting, run the bad tip until it has failed `verify_bad_fails`
    /// times or been run this many times (0: trust the bad revision, as
    /// `git bisect` does). Its runs are evidence about the failure probability;
    /// a tip that never fails ends the bisection ([`StopReason::NotReproduced`]).
    pub verify_bad_runs: u32,
    /// Failures of the bad tip that end its verification early.
    pub verify_bad_fails: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            confidence: 0.99,
            max_runs: None,
            false_fail: vec![0.002, 0.01, 0.03],
            p_grid: (1..=20).map(|i| i as f64 / 20.0).collect(),
            tip_failures: 1,
            build_cost: 3.0,
            run_cost: 1.0,
            settle_runs: 12,
            settle_tolerance: 0.25,
            robust_prior_exp: 1.0,
            split_interval: true,
            verify_bad_runs: 0,
            verify_bad_fails: 3,
        }
    }
}

impl Config {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(Error::Confidence(self.confidence));
        }
        if self.false_fail.is_empty() || self.false_fail.iter().any(|&e| !(e > 0.0 && e < 0.5)) {
            return Err(Error::FalseFail);
        }
        if self.p_grid.is_empty()
            || self.p_grid.iter().any(|&p| !(p > 0.0 && p <= 1.0))
            || self.p_grid.iter().all(|&p| p >= 1.0)
        {
            return Err(Error::Grid);
        }
        if !(self.settle_tolerance.is_finite() && self.settle_tolerance > 0.0) {
            return Err(Error::Settle);
        }
        if !(self.build_cost.is_finite()
            && self.run_cost.is_finite()
            && self.build_cost >= 0.0
            && self.run_cost > 0.0)
        {
            return Err(Error::Cost);
        }
        Ok(())
    }
}

/// One observation about a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Obs {
    /// A run passed (the predicate did not match).
    Pass,
    /// A run failed (the predicate matched).
    Fail,
    /// The commit cannot be tested (does not build, script said 125, ...).
    Skip,
    /// The commit's prepared artifact is identical to that of this other index: the
    /// two behave the same, so the culprit is not between them.
    SameAs(usize),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Run the candidate at `index` once (preparing it first unless it is the one
    /// prepared now).
    Test { index: usize },
    /// Stop.
    Done(Conclusion),
}

/// Why the engine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The most likely culprit (or set) reached the requested confidence.
    Confident,
    /// The run budget is spent.
    BudgetSpent,
    /// No test can tell the remaining candidates apart.
    NothingToTest,
    /// The bad tip never failed in its verification runs: there is nothing to
    /// bisect (see [`Config::verify_bad_runs`]).
    NotReproduced,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conclusion {
    /// The most likely culprit, or the set of candidates untestable commits make
    /// indistinguishable (ascending indices).
    pub candidates: Vec<usize>,
    /// Posterior probability that the culprit is among `candidates`.
    pub confidence: f64,
    /// Why the engine stopped.
    pub reason: StopReason,
}

impl Conclusion {
    /// The culprit, when it is isolated with the requested confidence.
    pub fn culprit(&self) -> Option<usize> {
        match (self.reason, self.candidates.as_slice()) {
            (StopReason::Confident, [c]) => Some(*c),
            _ => None,
        }
    }
}

/// The bisection engine. See the crate documentation for the model.
#[derive(Debug, Clone)]
pub struct Engine {
    n: usize,
    cfg: Config,
    joint: Joint,
    untestable: Vec<bool>,
    alias: Vec<Option<usize>>,
    runs: Vec<u32>,
    fails: Vec<u32>,
    total_runs: u32,
    current: Option<usize>,
    log: Vec<(usize, Obs)>,
}

/// How evenly a commit with cumulative mass `q` at or below it splits the
/// posterior: larger is better.
fn split_quality(q: f64) -> f64 {
    -(q - 0.5).abs()
}

impl Engine {
    /// An engine over `n` candidates (index `n - 1` is the bad tip).
    pub fn new(n: usize, cfg: Config) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::Empty);
        }
        cfg.validate()?;
        let mut joint = Joint::new(n, &cfg.p_grid, &cfg.false_fail, 0.0);
        if cfg.tip_failures > 0 {
            joint.run(n - 1, true, cfg.tip_failures);
        }
        Ok(Engine {
            n,
            joint,
            untestable: vec![false; n],
            alias: vec![None; n],
            runs: vec![0; n],
            fails: vec![0; n],
            total_runs: 0,
            current: None,
            log: Vec::new(),
            cfg,
        })
    }

    /// Rebuilds an engine from its observations, in order.
    pub fn replay(
        n: usize,
        cfg: Config,
        observations: impl IntoIterator<Item = (usize, Obs)>,
    ) -> Result<Self, Error> {
        let mut e = Engine::new(n, cfg)?;
        for (i, o) in observations {
            e.observe(i, o)?;
        }
        Ok(e)
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (an engine has at least one candidate).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Feeds one observation about the candidate at `index`.
    pub fn observe(&mut self, index: usize, obs: Obs) -> Result<(), Error> {
        let n = self.n;
        let check = |i: usize| {
            if i < n {
                Ok(())
            } else {
                Err(Error::Index { index: i, n })
            }
        };
        check(index)?;
        match obs {
            Obs::Pass | Obs::Fail => {
                let fail = obs == Obs::Fail;
                self.joint.run(index, fail, 1);
                self.runs[index] += 1;
                self.fails[index] += u32::from(fail);
                self.total_runs += 1;
                self.current = Some(index);
            }
            Obs::Skip => {
                self.untestable[index] = true;
                if self.current == Some(index) {
                    self.current = None;
                }
            }
            Obs::SameAs(other) => {
                check(other)?;
                if other != index {
                    if self.untestable[other] {
                        self.untestable[index] = true;
                        self.current = None;
                    } else {
                        let (lo, hi) = (index.min(other), index.max(other));
                        self.joint.exclude(lo + 1, hi);
                        self.alias[index] = Some(other);
                        self.current = Some(other);
                    }
                }
            }
        }
        self.log.push((index, obs));
        Ok(())
    }

    /// Every observation so far, in order.
    pub fn observations(&self) -> &[(usize, Obs)] {
        &self.log
    }

    /// Posterior probability of each culprit position.
    pub fn posterior(&self) -> Vec<f64> {
        self.joint.positions()
    }

    /// Posterior means of the per-run failure probability of a bad commit and of
    /// the false-failure rate of a good one.
    pub fn rates(&self) -> (f64, f64) {
        self.joint.rate_means()
    }

    /// Runs and failures observed at `index`.
    pub fn counts(&self, index: usize) -> (u32, u32) {
        (self.runs[index], self.fails[index])
    }

    /// Total runs observed.
    pub fn total_runs(&self) -> u32 {
        self.total_runs
    }

    /// True when `index` was found untestable.
    pub fn is_untestable(&self, index: usize) -> bool {
        self.untestable[index]
    }

    /// The index whose prepared artifact was the same as `index`'s, if any.
    pub fn alias_of(&self, index: usize) -> Option<usize> {
        self.alias[index]
    }

    /// True while no commit has both passed and failed.
    pub fn consistent(&self) -> bool {
        self.runs
            .iter()
            .zip(&self.fails)
            .all(|(&r, &f)| f == 0 || f == r)
    }

    /// The candidate prepared now, as far as the engine knows (the last one run).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Groups of positions that no test can tell apart (a position joins the one
    /// before it when the commit before it is untestable), with their mass.
    fn groups(&self, post: &[f64]) -> Vec<(Vec<usize>, f64)> {
        let mut out: Vec<(Vec<usize>, f64)> = Vec::new();
        for (i, &m) in post.iter().enumerate() {
            match out.last_mut() {
                Some((g, mass)) if i > 0 && self.untestable[i - 1] => {
                    g.push(i);
                    *mass += m;
                }
                _ => out.push((vec![i], m)),
            }
        }
        out
    }

    /// The most likely culprit (or indistinguishable set) and its probability.
    pub fn best(&self) -> (Vec<usize>, f64) {
        let post = self.posterior();
        self.groups(&post).into_iter().fold(
            (Vec::new(), -1.0),
            |best, g| if g.1 > best.1 { g } else { best },
        )
    }

    fn conclude(&self, reason: StopReason) -> Step {
        let (candidates, confidence) = self.best();
        Step::Done(Conclusion {
            candidates,
            confidence: confidence.clamp(0.0, 1.0),
            reason,
        })
    }

    pub(crate) fn testable(&self, i: usize) -> bool {
        i + 1 < self.n && !self.untestable[i] && self.alias[i].is_none()
    }

    /// The confidence used to stop: once the test has shown itself flaky, the
    /// most likely group must reach the confidence also under a prior that favours
    /// low failure probabilities (so an unlucky streak of failures cannot talk the
    /// engine into a high failure rate and an early, wrong answer).
    fn stop_confidence(&self) -> f64 {
        let (best, conf) = self.best();
        if self.consistent() || self.cfg.robust_prior_exp == 0.0 {
            return conf;
        }
        let alt = self.joint.positions_reweighted(self.cfg.robust_prior_exp);
        let alt_conf: f64 = best.iter().map(|&i| alt[i]).sum();
        conf.min(alt_conf)
    }

    /// While every commit has given consistent results: the positions between
    /// the highest commit that only passed and the lowest that only failed (or
    /// the tip), where `git bisect` would look for the culprit. Splitting this
    /// interval rather than the whole posterior keeps the doubt left on settled
    /// commits from moving the split, so a deterministic test builds the
    /// commits git would. `None` when [`Config::split_interval`] is off, once the
    /// test has shown itself flaky, or when the results contradict each other
    /// (a pass above a failure).
    fn open_interval(&self) -> Option<(usize, usize)> {
        if !self.cfg.split_interval || !self.consistent() {
            return None;
        }
        let tested = |i: &usize| self.runs[*i] > 0;
        let from = (0..self.n)
            .filter(tested)
            .filter(|&i| self.fails[i] == 0)
            .max()
            .map_or(0, |i| i + 1);
        let to = (0..self.n)
            .filter(tested)
            .find(|&i| self.fails[i] > 0)
            .unwrap_or(self.n - 1);
        (from <= to).then_some((from, to))
    }

    /// The bad tip's verification: `Some(step)` while it is under way or when it
    /// failed, `None` once it is done (or off, or impossible: an untestable tip is
    /// trusted to be bad, as `git bisect` would).
    pub(crate) fn verify_step(&self) -> Option<Step> {
        let tip = self.n - 1;
        let (runs, fails) = (self.runs[tip], self.fails[tip]);
        if self.cfg.verify_bad_runs == 0 || self.untestable[tip] {
            return None;
        }
        if fails >= self.cfg.verify_bad_fails.max(1) {
            return None;
        }
        if runs < self.cfg.verify_bad_runs {
            return Some(Step::Test { index: tip });
        }
        (fails == 0).then(|| self.conclude(StopReason::NotReproduced))
    }

    /// The next step.
    pub fn next(&self) -> Step {
        if let Some(step) = self.verify_step() {
            return step;
        }
        if self.stop_confidence() >= self.cfg.confidence {
            return self.conclude(StopReason::Confident);
        }
        if let Some(max) = self.cfg.max_runs
            && self.total_runs >= max
        {
            return self.conclude(StopReason::BudgetSpent);
        }
        let gains = self.joint.gains();
        let post = self.posterior();
        // Move: the testable commit that best halves the posterior mass (of the
        // open interval while the results are consistent).
        let (from, to) = self.open_interval().unwrap_or((0, self.n - 1));
        let total: f64 = post[from..=to].iter().sum();
        let mut cum = 0.0;
        let mut mv: Option<(usize, f64)> = None;
        for (i, &m) in post.iter().enumerate().take(to + 1).skip(from) {
            cum += m;
            if Some(i) == self.current || !self.testable(i) {
                continue;
            }
            let q = split_quality(cum / total.max(f64::MIN_POSITIVE));
            if mv.is_none_or(|(_, best)| q > best) {
                mv = Some((i, q));
            }
        }
        let move_score = mv.map(|(i, _)| (i, gains[i] / (self.cfg.build_cost + self.cfg.run_cost)));
        let rerun_score = self
            .current
            .filter(|&c| self.testable(c))
            .map(|c| (c, gains[c] / self.cfg.run_cost));
        // While every commit has given consistent results the test may well be
        // deterministic: settle the prepared commit before leaving it, as git
        // bisect does, so a deterministic script costs no more builds than git.
        if let Some(c) = self
            .current
            .filter(|&c| self.testable(c) && self.consistent())
        {
            let bad: f64 = post[..=c].iter().sum();
            let delta = (1.0 - self.cfg.confidence) * self.cfg.settle_tolerance;
            // A failure only counts once "good but a false failure" is unlikely
            // next to the single most likely culprit, which it must not outweigh.
            let top = post[..=c].iter().copied().fold(0.0, f64::max);
            let unsettled = if self.fails[c] > 0 {
                1.0 - bad > delta * top
            } else {
                bad > delta
            };
            if unsettled && self.runs[c] < self.cfg.settle_runs {
                return Step::Test { index: c };
            }
        }
        let pick = match (rerun_score, move_score) {
            (Some(r), Some(m)) => {
                if r.1 >= m.1 {
                    r
                } else {
                    m
                }
            }
            (Some(r), None) => r,
            (None, Some(m)) => m,
            (None, None) => return self.conclude(StopReason::NothingToTest),
        };
        if pick.1 <= 1e-12 {
            // The median commit tells nothing; try the most informative one.
            let best = (0..self.n)
                .filter(|&i| self.testable(i))
                .max_by(|&a, &b| gains[a].total_cmp(&gains[b]));
            return match best {
                Some(i) if gains[i] > 1e-12 => Step::Test { index: i },
                _ => self.conclude(StopReason::NothingToTest),
            };
        }
        Step::Test { index: pick.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bisects `n` candidates with a deterministic test (culprit at `culprit`)
    /// and checks the answer and that it cost at most `git bisect`'s
    /// ⌈log2 n⌉ builds plus `extra`.
    fn assert_git_builds(n: usize, culprit: usize, cfg: Config, extra: u32) {
        let limit = (n as f64).log2().ceil() as u32 + extra;
        let mut e = Engine::new(n, cfg).unwrap();
        let mut builds = 0;
        let mut prepared = None;
        let c = loop {
            match e.next() {
                Step::Test { index } => {
                    if prepared != Some(index) {
                        builds += 1;
                        prepared = Some(index);
                    }
                    let obs = if index >= culprit {
                        Obs::Fail
                    } else {
                        Obs::Pass
                    };
                    e.observe(index, obs).unwrap();
                }
                Step::Done(c) => break c,
            }
        };
        assert_eq!(c.culprit(), Some(culprit), "n={n} culprit={culprit}");
        assert!(
            builds <= limit,
            "n={n} culprit={culprit}: {builds} builds > {limit}"
        );
    }

    #[test]
    fn deterministic_costs_no_more_builds_than_git_bisect() {
        for n in 1..=70usize {
            for culprit in 0..n {
                assert_git_builds(n, culprit, Config::default(), 0);
            }
        }
    }

    /// Larger histories, where the doubt left on each settled commit adds up:
    /// with the culprit at or next to the tip every commit tested passes, and
    /// splitting the whole posterior (not the interval git would) used to cost
    /// a build more (N = 256, 512) and so did a mid-history culprit at N = 4096.
    #[test]
    fn deterministic_builds_stay_within_git_bisect_on_large_histories() {
        for culprit in (0..256).step_by(3).chain([253, 254, 255]) {
            assert_git_builds(256, culprit, Config::default(), 0);
        }
        assert_git_builds(512, 511, Config::default(), 0);
        for culprit in [0, 1, 776, 2047, 2048, 4094, 4095] {
            assert_git_builds(4096, culprit, Config::default(), 0);
        }
    }

    fn verifying() -> Config {
        Config {
            verify_bad_runs: 10,
            ..Config::default()
        }
    }

    #[test]
    fn verification_costs_one_build_more_when_deterministic() {
        for n in 1..=40usize {
            for culprit in 0..n {
                assert_git_builds(n, culprit, verifying(), 1);
            }
        }
    }

    #[test]
    fn the_bad_tip_is_verified_first_until_it_fails_often_enough() {
        let mut e = Engine::new(30, verifying()).unwrap();
        // Fail, pass, fail, fail: three failures end the verification.
        for obs in [Obs::Fail, Obs::Pass, Obs::Fail, Obs::Fail] {
            assert_eq!(e.next(), Step::Test { index: 29 });
            e.observe(29, obs).unwrap();
        }
        assert!(matches!(e.next(), Step::Test { index } if index < 29));
        // Off (the default): the tip is trusted, as git bisect does.
        let e = Engine::new(30, Config::default()).unwrap();
        assert!(matches!(e.next(), Step::Test { index } if index < 29));
    }

    #[test]
    fn a_bad_tip_that_never_fails_is_not_reproduced() {
        let mut e = Engine::new(30, verifying()).unwrap();
        for _ in 0..10 {
            assert_eq!(e.next(), Step::Test { index: 29 });
            e.observe(29, Obs::Pass).unwrap();
        }
        match e.next() {
            Step::Done(c) => {
                assert_eq!(c.reason, StopReason::NotReproduced);
                assert_eq!(c.culprit(), None);
            }
            s => panic!("expected not reproduced, got {s:?}"),
        }
        // One failure in ten is a (rare) reproduction: bisect on.
        let mut e = Engine::new(30, verifying()).unwrap();
        for i in 0..10 {
            e.observe(29, if i == 9 { Obs::Fail } else { Obs::Pass })
                .unwrap();
        }
        assert!(matches!(e.next(), Step::Test { index } if index < 29));
        // A tip that cannot be built cannot be verified: trusted, as git would.
        let mut e = Engine::new(30, verifying()).unwrap();
        e.observe(29, Obs::Skip).unwrap();
        assert!(matches!(e.next(), Step::Test { index } if index < 29));
    }

    /// Bisects (n = 62, p = 0.8) with `cfg`; returns the longest streak of runs
    /// of one good commit in a row and the total runs.
    fn demo_shaped(cfg: &Config, culprit: usize, seed: u64) -> (u32, u32) {
        use rand::{Rng, SeedableRng};
        let (n, p) = (62, 0.8);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut e = Engine::new(n, cfg.clone()).unwrap();
        let (mut streak, mut longest, mut last) = (0u32, 0u32, None);
        loop {
            match e.next() {
                Step::Test { index } => {
                    let fail = index >= culprit && rng.random_bool(p);
                    streak = if last == Some(index) { streak + 1 } else { 1 };
                    last = Some(index);
                    if index < culprit {
                        longest = longest.max(streak);
                    }
                    e.observe(index, if fail { Obs::Fail } else { Obs::Pass })
                        .unwrap();
                    assert!(e.total_runs() < 200, "seed {seed}: no end");
                }
                Step::Done(c) => {
                    assert_eq!(c.culprit(), Some(culprit), "seed {seed}");
                    return (longest, e.total_runs());
                }
            }
        }
    }

    /// The demo's shape: the first commit tested is good and nothing has failed
    /// yet. Trusting the tip, the engine settles that commit for the full
    /// `settle_runs`; with the tip verified it knows the failure rate, leaves good
    /// commits sooner and spends fewer runs in all.
    #[test]
    fn a_verified_tip_keeps_passing_commits_from_being_rerun_for_long() {
        let (mut with, mut without) = (0, 0);
        for seed in 0..20 {
            let (longest, runs) = demo_shaped(&verifying(), 47, seed);
            assert!(
                longest < Config::default().settle_runs,
                "seed {seed}: a good commit ran {longest} times in a row"
            );
            with += runs;
            without += demo_shaped(&Config::default(), 47, seed).1;
        }
        assert!(
            f64::from(with) < 0.85 * f64::from(without),
            "verified: {with} runs, trusted: {without}"
        );
    }

    /// The culprit is the tip: every commit tested passes, and each would be
    /// settled in turn. A looser settle tolerance trusts passes sooner (a pass
    /// higher up says more than another pass lower down).
    #[test]
    fn a_looser_settle_spends_fewer_runs_when_the_culprit_is_the_tip() {
        let loose = Config {
            settle_tolerance: 3.0,
            ..verifying()
        };
        let (mut strict_runs, mut loose_runs) = (0, 0);
        for seed in 0..20 {
            strict_runs += demo_shaped(&verifying(), 61, seed).1;
            loose_runs += demo_shaped(&loose, 61, seed).1;
        }
        assert!(
            f64::from(loose_runs) < 0.85 * f64::from(strict_runs),
            "loose {loose_runs} runs, strict {strict_runs}"
        );
        let bad = Config {
            settle_tolerance: 0.0,
            ..Config::default()
        };
        assert_eq!(Engine::new(4, bad).unwrap_err(), Error::Settle);
    }

    #[test]
    fn skips_collapse_into_a_set() {
        // Culprit 5; 3 and 4 cannot be tested: the answer is {3, 4, 5}.
        let mut e = Engine::new(10, Config::default()).unwrap();
        for _ in 0..200 {
            match e.next() {
                Step::Test { index } => {
                    let obs = if index == 3 || index == 4 {
                        Obs::Skip
                    } else if index >= 5 {
                        Obs::Fail
                    } else {
                        Obs::Pass
                    };
                    e.observe(index, obs).unwrap();
                }
                Step::Done(c) => {
                    assert_eq!(c.candidates, vec![3, 4, 5]);
                    assert_eq!(c.culprit(), None);
                    return;
                }
            }
        }
        panic!("did not finish");
    }

    #[test]
    fn replay_rebuilds_the_same_state() {
        let mut e = Engine::new(50, Config::default()).unwrap();
        for (i, o) in [
            (20, Obs::Pass),
            (20, Obs::Fail),
            (7, Obs::Skip),
            (30, Obs::SameAs(20)),
        ] {
            e.observe(i, o).unwrap();
        }
        let r = Engine::replay(50, Config::default(), e.observations().to_vec()).unwrap();
        assert_eq!(r.posterior(), e.posterior());
        assert_eq!(r.next(), e.next());
    }

    #[test]
    fn bad_config_is_refused() {
        let cfg = Config {
            confidence: 1.0,
            ..Config::default()
        };
        assert_eq!(Engine::new(5, cfg).unwrap_err(), Error::Confidence(1.0));
        assert_eq!(Engine::new(0, Config::default()).unwrap_err(), Error::Empty);
        let mut e = Engine::new(3, Config::default()).unwrap();
        assert!(e.observe(3, Obs::Pass).is_err());
    }
}

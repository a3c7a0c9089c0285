//! Failure-time evidence: the [`TimedEngine`] models a bad commit's failures as
//! a rate per guest-second of workload instead of a per-run probability.
//!
//! A run of a bad commit first fails after a time `X` with survival
//! `S(t) = exp(-(λ t)^k)` (a Weibull onset: `k = 1` is a constant rate `λ`, `k < 1`
//! a heavier tail, where a long clean run convinces less); a good commit fails
//! anyway at a small constant rate `ε` per second. `λ`, `k` and `ε` are unknown:
//! a grid prior over them (log-uniform over `λ`) is marginalised jointly with the
//! culprit position, so the engine learns the rate from the bad tip's failures.
//! An observation is a run's exposure (seconds of workload it ran) and, when it
//! failed, when: a clean run of 60 s says more than one of 20 s, and failures at
//! 5–11 s on the tip tell how long a clean run must be to convince.
//!
//! Each run costs its boot (`boot_s`) on top of its exposure; preparing another
//! commit costs `build_s`. The engine picks each run's commit and its length (the
//! most exposure the run may use) by expected information gain about the culprit
//! per second, and [`TimedEngine::should_stop`] says when a run in progress, clean
//! so far, is no longer worth continuing (a fresh run somewhere, boot included,
//! would now learn more per second). It stops when the most likely culprit (or set
//! of candidates untestable commits make indistinguishable) reaches the requested
//! confidence, or when the guest-second or run budget is spent.
//!
//! Exposures and failure times are kept in whole milliseconds, so the engine's
//! state is a pure function of its [`TimedConfig`] and the observations, exactly
//! as journalled: [`TimedEngine::replay`] equals feeding them live.

use serde::{Deserialize, Serialize};

use crate::engine::{Conclusion, Error, StopReason};
use crate::posterior::binary_gains;

/// Settings of the [`TimedEngine`]. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimedConfig {
    /// Stop when the most likely culprit (or indistinguishable set) has at least
    /// this posterior probability.
    pub confidence: f64,
    /// Overhead of every run before its workload starts (boot), in guest-seconds.
    pub boot_s: f64,
    /// Cost of preparing (building / checking out) a commit other than the one
    /// prepared now, in seconds of wall time (not guest time; it steers the choice
    /// between re-running and moving on).
    pub build_s: f64,
    /// Shortest run length the engine asks for.
    pub min_exposure_s: f64,
    /// Longest run length the engine asks for (also the length of the bad tip's
    /// verification runs).
    pub max_exposure_s: f64,
    /// A run of a commit ends once, clean so far, it has made the commit being
    /// bad less likely than this fraction of `1 - confidence` (it is settled
    /// good), and is planned that long (up to `max_exposure_s`).
    pub settle_tolerance: f64,
    /// Grid of onset rates `λ` (per second) of a bad commit; the prior is uniform
    /// over it (log-uniform when it is log-spaced, as by default).
    pub rate_grid: Vec<f64>,
    /// Grid of Weibull shapes `k` of the onset (1: exponential; below 1: heavier
    /// tailed; at most 1); the prior is uniform over it.
    pub shape_grid: Vec<f64>,
    /// Grid of false-failure rates (per second) of a good commit; the prior is
    /// uniform over it.
    pub false_rate: Vec<f64>,
    /// How a run's length is chosen.
    pub run_length: RunLength,
    /// Failure times (seconds since the workload started) seen on the bad tip
    /// before bisecting: prior evidence about the rate.
    pub tip_failures_s: Vec<f64>,
    /// Stop once runs have used this many guest-seconds (boot and exposure) in
    /// all (`None`: no limit). A run is never planned longer than what is left.
    pub budget_s: Option<f64>,
    /// Stop once this many runs have been made (`None`: no limit).
    pub max_runs: Option<u32>,
    /// Stop once runs have used this many times `⌈log2 n⌉ × (boot_s + m)`
    /// guest-seconds in all, where `m` is the bad tip's mean time to failure
    /// as its runs measured it (their exposure over their failures; at least
    /// `min_exposure_s`): about 50
    /// times what a clean bisection of that failure spends, so evidence that
    /// keeps contradicting itself (false failures as frequent as the slow
    /// real ones) ends inconclusive instead of running for days. `None`, or a
    /// tip without a failure: no such limit.
    pub budget_tip_mttf: Option<f64>,
    /// Before bisecting, run the bad tip (for `max_exposure_s` each) until it has
    /// failed `verify_bad_fails` times or been run this many times (0: trust it).
    /// Its failure times measure the rate; a tip that never fails ends the
    /// bisection ([`StopReason::NotReproduced`]).
    pub verify_bad_runs: u32,
    /// Failures of the bad tip that end its verification.
    pub verify_bad_fails: u32,
    /// Past `verify_bad_fails`, go on running the bad tip (within
    /// `verify_bad_runs`) while one more failure pays for itself: with `n`
    /// failures a mean `m` apart, a good commit must run clean for about
    /// `n m (F^(1/n) - 1)` seconds to be `F = 1 / (1 - confidence)` times less
    /// likely bad (the rate is known only from the failures), so the next
    /// failure saves `⌈log2 n⌉ / 2` good steps that difference, against the
    /// `boot_s + m` it costs. Cheap, fast failures buy a sharper rate and
    /// shorter clean runs everywhere after.
    pub verify_bad_adaptive: bool,
}

/// How the [`TimedEngine`] chooses a run's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunLength {
    /// Long enough that a clean run settles the commit good (up to the
    /// longest): one long run per good commit.
    Settle,
    /// The length whose run tells most about the culprit per second (boot,
    /// expected exposure and build): several shorter runs when the onset's
    /// hazard falls with time (a heavy tail), where a reboot restarts the
    /// likeliest time to fail.
    #[default]
    Gain,
}

/// `n` log-spaced values from `lo` to `hi`.
fn log_spaced(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| lo * (hi / lo).powf(i as f64 / (n - 1).max(1) as f64))
        .collect()
}

impl Default for TimedConfig {
    fn default() -> Self {
        TimedConfig {
            confidence: 0.99,
            boot_s: 15.0,
            build_s: 20.0,
            min_exposure_s: 5.0,
            max_exposure_s: 600.0,
            settle_tolerance: 1.0,
            // Mean onsets from about 0.5 s to an hour.
            rate_grid: log_spaced(1.0 / 3600.0, 2.0, 22),
            // Exponential to heavy tails; the middle shape keeps accuracy at
            // 99% on log-normal and Weibull onsets in `csdci bench bisect-sim
            // --failure-time` (0.5 and 1 alone: 98%).
            shape_grid: vec![0.5, 0.75, 1.0],
            false_rate: vec![2e-5, 1e-4, 4e-4],
            run_length: RunLength::Gain,
            tip_failures_s: Vec::new(),
            budget_s: None,
            max_runs: None,
            budget_tip_mttf: Some(50.0),
            verify_bad_runs: 12,
            verify_bad_fails: 5,
            verify_bad_adaptive: true,
        }
    }
}

impl TimedConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return Err(Error::Confidence(self.confidence));
        }
        let pos = |v: &[f64]| !v.is_empty() && v.iter().all(|&x| x.is_finite() && x > 0.0);
        if !pos(&self.false_rate) {
            return Err(Error::FalseFail);
        }
        if !pos(&self.rate_grid)
            || !pos(&self.shape_grid)
            || self.shape_grid.iter().any(|&k| k > 1.0)
        {
            return Err(Error::Grid);
        }
        let times_ok = self.boot_s.is_finite()
            && self.boot_s >= 0.0
            && self.build_s.is_finite()
            && self.build_s >= 0.0
            && self.min_exposure_s.is_finite()
            && self.min_exposure_s > 0.0
            && self.max_exposure_s.is_finite()
            && self.max_exposure_s >= self.min_exposure_s
            && self.settle_tolerance.is_finite()
            && self.settle_tolerance > 0.0
            && self.budget_s.is_none_or(|b| b >= 0.0)
            && self
                .budget_tip_mttf
                .is_none_or(|b| b.is_finite() && b > 0.0)
            && self
                .tip_failures_s
                .iter()
                .all(|&t| t.is_finite() && t >= 0.0);
        if !times_ok {
            return Err(Error::Cost);
        }
        Ok(())
    }
}

/// One observation about a candidate of the [`TimedEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimedObs {
    /// A run whose workload ran `exposure_s` seconds (its boot not counted) and
    /// failed (the predicate matched) `failed_at_s` seconds after the workload
    /// started, or not at all. A run cut short (by [`TimedEngine::should_stop`],
    /// a timeout, a kill) is a clean run of the exposure it had.
    Run {
        exposure_s: f64,
        failed_at_s: Option<f64>,
    },
    /// The commit cannot be tested (does not build, script said 125, ...).
    Skip,
    /// The commit's prepared artifact is identical to that of this other index.
    SameAs(usize),
}

impl TimedObs {
    /// A clean run of `exposure_s` seconds.
    pub fn clean(exposure_s: f64) -> Self {
        TimedObs::Run {
            exposure_s,
            failed_at_s: None,
        }
    }

    /// A run that failed `at_s` seconds into its workload (and ended there).
    pub fn failed(at_s: f64) -> Self {
        TimedObs::Run {
            exposure_s: at_s,
            failed_at_s: Some(at_s),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimedStep {
    /// Run the candidate at `index` (preparing it first unless it is the one
    /// prepared now) for at most `max_exposure_s` seconds of workload, ending it
    /// at its first failure or earlier when [`TimedEngine::should_stop`] says so.
    Run { index: usize, max_exposure_s: f64 },
    /// Stop.
    Done(Conclusion),
}

/// Whole milliseconds: what the engine keeps of a time, so a journal replays it
/// exactly.
fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per-column statistics of a run segment: the probability that it fails and its
/// expected exposure, for a bad (`pb`, `tb`) and a good (`pg`, `tg`) commit.
#[derive(Debug, Clone)]
struct Seg {
    pb: Vec<f64>,
    pg: Vec<f64>,
    tb: Vec<f64>,
    tg: Vec<f64>,
}

/// A planned run and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    index: usize,
    exposure: f64,
    /// Expected information gain per second of cost.
    score: f64,
    gain: f64,
}

/// The failure-time bisection engine. See the module documentation.
#[derive(Debug, Clone)]
pub struct TimedEngine {
    n: usize,
    cfg: TimedConfig,
    /// Per column: Weibull shape, onset rate, false-failure rate.
    shape: Vec<f64>,
    rate: Vec<f64>,
    eps: Vec<f64>,
    /// Joint weights `w[i * k + g]`, normalised.
    w: Vec<f64>,
    /// Run lengths the engine chooses from, and their fresh-run statistics.
    options: Vec<(f64, Seg)>,
    untestable: Vec<bool>,
    alias: Vec<Option<usize>>,
    runs: Vec<u32>,
    fails: Vec<u32>,
    exposure: Vec<f64>,
    total_runs: u32,
    spent_s: f64,
    current: Option<usize>,
    log: Vec<(usize, TimedObs)>,
}

impl TimedEngine {
    /// An engine over `n` candidates (index `n - 1` is the bad tip).
    pub fn new(n: usize, cfg: TimedConfig) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::Empty);
        }
        cfg.validate()?;
        let (mut shape, mut rate, mut eps) = (Vec::new(), Vec::new(), Vec::new());
        for &e in &cfg.false_rate {
            for &k in &cfg.shape_grid {
                for &l in &cfg.rate_grid {
                    shape.push(k);
                    rate.push(l);
                    eps.push(e);
                }
            }
        }
        let k = shape.len();
        let mut e = TimedEngine {
            n,
            w: vec![1.0 / (n * k) as f64; n * k],
            shape,
            rate,
            eps,
            options: Vec::new(),
            untestable: vec![false; n],
            alias: vec![None; n],
            runs: vec![0; n],
            fails: vec![0; n],
            exposure: vec![0.0; n],
            total_runs: 0,
            spent_s: 0.0,
            current: None,
            log: Vec::new(),
            cfg,
        };
        let mut lens = Vec::new();
        let mut t = e.cfg.min_exposure_s;
        while t < e.cfg.max_exposure_s * (1.0 - 1e-9) {
            lens.push(ms(t));
            t *= 1.25;
        }
        lens.push(ms(e.cfg.max_exposure_s));
        e.options = lens.into_iter().map(|t| (t, e.seg(0.0, t))).collect();
        for t in e.cfg.tip_failures_s.clone() {
            e.update(n - 1, ms(t), true);
        }
        Ok(e)
    }

    /// Rebuilds an engine from its observations, in order (from a journal): the
    /// same state as feeding them live.
    pub fn replay(
        n: usize,
        cfg: TimedConfig,
        observations: impl IntoIterator<Item = (usize, TimedObs)>,
    ) -> Result<Self, Error> {
        let mut e = TimedEngine::new(n, cfg)?;
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
    pub fn config(&self) -> &TimedConfig {
        &self.cfg
    }

    fn k(&self) -> usize {
        self.shape.len()
    }

    /// Multiplies in the likelihood of a run at `index` that ran clean for `t`
    /// seconds or failed at `t`.
    fn update(&mut self, index: usize, t: f64, failed: bool) {
        let k = self.k();
        let mut lb = Vec::with_capacity(k);
        let mut lg = Vec::with_capacity(k);
        for g in 0..k {
            let (sh, l, e) = (self.shape[g], self.rate[g], self.eps[g]);
            let x = l * t;
            let mut b = -x.powf(sh);
            let mut gd = -e * t;
            if failed {
                // Density: hazard times survival (a failure at 0 counts as at 1 ms).
                let xf = (l * t.max(1e-3)).max(f64::MIN_POSITIVE);
                b += (sh * l).ln() + (sh - 1.0) * xf.ln();
                gd += e.ln();
            }
            lb.push(b);
            lg.push(gd);
        }
        let top = lb
            .iter()
            .chain(&lg)
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let lb: Vec<f64> = lb.iter().map(|x| (x - top).exp()).collect();
        let lg: Vec<f64> = lg.iter().map(|x| (x - top).exp()).collect();
        for (i, row) in self.w.chunks_mut(k).enumerate() {
            let l = if i <= index { &lb } else { &lg };
            for (x, l) in row.iter_mut().zip(l) {
                *x *= l;
            }
        }
        self.normalise();
    }

    fn normalise(&mut self) {
        let s: f64 = self.w.iter().sum();
        if s > 0.0 && s.is_finite() {
            self.w.iter_mut().for_each(|x| *x /= s);
        } else {
            // Evidence the model cannot explain at all: start over from uniform.
            let v = 1.0 / self.w.len() as f64;
            self.w.iter_mut().for_each(|x| *x = v);
        }
    }

    /// Feeds one observation about the candidate at `index`.
    pub fn observe(&mut self, index: usize, obs: TimedObs) -> Result<(), Error> {
        let n = self.n;
        let check = |i: usize| {
            if i < n {
                Ok(())
            } else {
                Err(Error::Index { index: i, n })
            }
        };
        check(index)?;
        let obs = match obs {
            TimedObs::Run {
                exposure_s,
                failed_at_s,
            } => {
                let exposure_s = ms(exposure_s);
                let failed_at_s = failed_at_s.map(ms);
                let ok = exposure_s.is_finite()
                    && exposure_s >= 0.0
                    && failed_at_s.is_none_or(|f| f.is_finite() && f >= 0.0 && f <= exposure_s);
                if !ok {
                    return Err(Error::Cost);
                }
                match failed_at_s {
                    Some(t) => self.update(index, t, true),
                    None => self.update(index, exposure_s, false),
                }
                self.runs[index] += 1;
                self.fails[index] += u32::from(failed_at_s.is_some());
                self.exposure[index] += exposure_s;
                self.total_runs += 1;
                self.spent_s += self.cfg.boot_s + exposure_s;
                self.current = Some(index);
                TimedObs::Run {
                    exposure_s,
                    failed_at_s,
                }
            }
            TimedObs::Skip => {
                self.untestable[index] = true;
                if self.current == Some(index) {
                    self.current = None;
                }
                obs
            }
            TimedObs::SameAs(other) => {
                check(other)?;
                if other != index {
                    if self.untestable[other] {
                        self.untestable[index] = true;
                        self.current = None;
                    } else {
                        let (lo, hi) = (index.min(other), index.max(other));
                        let k = self.k();
                        for x in &mut self.w[(lo + 1) * k..(hi + 1) * k] {
                            *x = 0.0;
                        }
                        self.normalise();
                        self.alias[index] = Some(other);
                        self.current = Some(other);
                    }
                }
                obs
            }
        };
        self.log.push((index, obs));
        Ok(())
    }

    /// Every observation so far, in order, as kept (times in whole milliseconds):
    /// what to journal.
    pub fn observations(&self) -> &[(usize, TimedObs)] {
        &self.log
    }

    /// Posterior probability of each culprit position.
    pub fn posterior(&self) -> Vec<f64> {
        self.w.chunks(self.k()).map(|r| r.iter().sum()).collect()
    }

    /// Posterior means of a bad commit's mean time to failure (seconds of
    /// workload) and of a good commit's false-failure rate (per second).
    pub fn rates(&self) -> (f64, f64) {
        let k = self.k();
        let (mut mttf, mut eps) = (0.0, 0.0);
        for row in self.w.chunks(k) {
            for (g, x) in row.iter().enumerate() {
                mttf += x * gamma(1.0 + 1.0 / self.shape[g]) / self.rate[g];
                eps += x * self.eps[g];
            }
        }
        (mttf, eps)
    }

    /// Posterior probability that a run of a bad commit fails within `t`
    /// seconds of workload (a per-run failure probability for runs of `t`).
    pub fn fail_within(&self, t: f64) -> f64 {
        let k = self.k();
        let mut p = 0.0;
        for row in self.w.chunks(k) {
            for (g, x) in row.iter().enumerate() {
                p += x * -(-(self.rate[g] * t).powf(self.shape[g])).exp_m1();
            }
        }
        p.clamp(0.0, 1.0)
    }

    /// Runs, failures and seconds of exposure observed at `index`.
    pub fn counts(&self, index: usize) -> (u32, u32, f64) {
        (self.runs[index], self.fails[index], self.exposure[index])
    }

    /// Total runs observed.
    pub fn total_runs(&self) -> u32 {
        self.total_runs
    }

    /// Guest-seconds spent: every run's boot and exposure.
    pub fn spent_s(&self) -> f64 {
        self.spent_s
    }

    /// True when `index` was found untestable.
    pub fn is_untestable(&self, index: usize) -> bool {
        self.untestable[index]
    }

    /// The candidate prepared now, as far as the engine knows (the last one run).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The most likely culprit (or indistinguishable set) and its probability.
    pub fn best(&self) -> (Vec<usize>, f64) {
        let post = self.posterior();
        let mut groups: Vec<(Vec<usize>, f64)> = Vec::new();
        for (i, &m) in post.iter().enumerate() {
            match groups.last_mut() {
                Some((g, mass)) if i > 0 && self.untestable[i - 1] => {
                    g.push(i);
                    *mass += m;
                }
                _ => groups.push((vec![i], m)),
            }
        }
        groups
            .into_iter()
            .fold((Vec::new(), -1.0), |b, g| if g.1 > b.1 { g } else { b })
    }

    fn conclude(&self, reason: StopReason) -> TimedStep {
        let (candidates, confidence) = self.best();
        TimedStep::Done(Conclusion {
            candidates,
            confidence: confidence.clamp(0.0, 1.0),
            reason,
        })
    }

    fn testable(&self, i: usize) -> bool {
        i + 1 < self.n && !self.untestable[i] && self.alias[i].is_none()
    }

    /// The bad tip's mean time to failure as its runs measured it (their
    /// exposure over their failures), once it has failed.
    fn tip_mttf(&self) -> Option<f64> {
        let tip = self.n - 1;
        (self.fails[tip] > 0).then(|| self.exposure[tip] / f64::from(self.fails[tip]))
    }

    /// `⌈log2 n⌉` (at least 1): the steps of a binary search over the candidates.
    fn search_steps(&self) -> f64 {
        (self.n as f64).log2().ceil().max(1.0)
    }

    /// The guest-seconds [`TimedConfig::budget_tip_mttf`] allows, once the
    /// bad tip has failed.
    fn tip_budget(&self) -> Option<f64> {
        let factor = self.cfg.budget_tip_mttf?;
        // No run is shorter than the shortest the engine plans.
        let mttf = self.tip_mttf()?.max(self.cfg.min_exposure_s);
        Some(factor * self.search_steps() * (self.cfg.boot_s + mttf))
    }

    /// The longest exposure the budget leaves for one more run (`None`: not even
    /// the shortest).
    fn exposure_cap(&self) -> Option<f64> {
        if self.cfg.max_runs.is_some_and(|m| self.total_runs >= m) {
            return None;
        }
        if self.tip_budget().is_some_and(|b| self.spent_s >= b) {
            return None;
        }
        let cap = match self.cfg.budget_s {
            Some(b) => ms(b - self.spent_s - self.cfg.boot_s).min(self.cfg.max_exposure_s),
            None => self.cfg.max_exposure_s,
        };
        (cap >= self.cfg.min_exposure_s.min(self.cfg.max_exposure_s)).then_some(cap)
    }

    /// Statistics of a run segment from `from` to `from + len` seconds of
    /// workload, given that the run was clean until `from`.
    fn seg(&self, from: f64, len: f64) -> Seg {
        let k = self.k();
        let mut s = Seg {
            pb: Vec::with_capacity(k),
            pg: Vec::with_capacity(k),
            tb: Vec::with_capacity(k),
            tg: Vec::with_capacity(k),
        };
        let mut cache: Option<(f64, f64, f64, f64)> = None;
        for g in 0..k {
            let (sh, l, e) = (self.shape[g], self.rate[g], self.eps[g]);
            // The bad statistics do not depend on the false-failure rate: the
            // columns repeat them for each one.
            let (pb, tb) = match cache {
                Some((csh, cl, pb, tb)) if csh == sh && cl == l => (pb, tb),
                _ => {
                    let (pb, tb) = weibull_segment(sh, l, from, len);
                    cache = Some((sh, l, pb, tb));
                    (pb, tb)
                }
            };
            let pg = -(-e * len).exp_m1();
            let tg = if e * len < 1e-9 { len } else { pg / e };
            s.pb.push(pb);
            s.tb.push(tb);
            s.pg.push(pg);
            s.tg.push(tg);
        }
        s
    }

    /// Expected information gain and expected exposure of a run segment at every
    /// index, and the probability that the commit is bad once the segment ran
    /// clean.
    fn evaluate(&self, seg: &Seg) -> Eval {
        let n = self.n;
        let (mut m, mut a, mut c, mut eb, mut eg) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for row in self.w.chunks(self.k()) {
            let (mut s, mut sa, mut sc, mut sb, mut sg) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (g, &x) in row.iter().enumerate() {
                s += x;
                sa += x * seg.pb[g];
                sc += x * seg.pg[g];
                sb += x * seg.tb[g];
                sg += x * seg.tg[g];
            }
            m.push(s);
            a.push(sa);
            c.push(sc);
            eb.push(sb);
            eg.push(sg);
        }
        let gains = binary_gains(&m, &a, &c);
        // At j: bad under positions <= j, good above.
        let total_good: f64 = eg.iter().sum();
        let clean_good: f64 = m.iter().zip(&c).map(|(m, c)| (m - c).max(0.0)).sum();
        let (mut bad, mut good_below, mut clean_bad, mut clean_good_below) = (0.0, 0.0, 0.0, 0.0);
        let mut exposure = Vec::with_capacity(n);
        let mut bad_if_clean = Vec::with_capacity(n);
        for j in 0..n {
            bad += eb[j];
            good_below += eg[j];
            clean_bad += (m[j] - a[j]).max(0.0);
            clean_good_below += (m[j] - c[j]).max(0.0);
            exposure.push(bad + (total_good - good_below).max(0.0));
            let above = (clean_good - clean_good_below).max(0.0);
            bad_if_clean.push(clean_bad / (clean_bad + above).max(f64::MIN_POSITIVE));
        }
        Eval {
            gains,
            exposure,
            bad_if_clean,
        }
    }

    /// The settle threshold: a commit clean long enough to be bad with less than
    /// this probability is taken for good.
    fn settled(&self) -> f64 {
        (1.0 - self.cfg.confidence) * self.cfg.settle_tolerance
    }

    /// The best run to make now: at each testable index, a run long enough to
    /// settle it good when clean (up to `cap`); of those, the one with the most
    /// expected information per second (boot, expected exposure and build).
    fn plan(&self, cap: f64) -> Option<Plan> {
        let mut evals: Vec<(f64, Eval)> = self
            .options
            .iter()
            .filter(|(t, _)| *t < cap)
            .map(|(t, seg)| (*t, self.evaluate(seg)))
            .collect();
        evals.push((cap, self.evaluate(&self.seg(0.0, cap))));
        let settled = self.settled();
        let mut best: Option<Plan> = None;
        for j in (0..self.n).filter(|&j| self.testable(j)) {
            let build = if Some(j) == self.current {
                0.0
            } else {
                self.cfg.build_s
            };
            let score =
                |ev: &Eval| ev.gains[j] / (self.cfg.boot_s + ev.exposure[j] + build).max(1e-9);
            let settle = evals
                .iter()
                .find(|(_, ev)| ev.bad_if_clean[j] <= settled)
                .unwrap_or(&evals[evals.len() - 1]);
            let (t, ev) = match self.cfg.run_length {
                RunLength::Settle => settle,
                // The length that tells most per second (shorter runs, more of
                // them, when the onset's hazard falls with time).
                RunLength::Gain => evals
                    .iter()
                    .fold(settle, |b, x| if score(&x.1) > score(&b.1) { x } else { b }),
            };
            let gain = ev.gains[j];
            let score = score(ev);
            if best.is_none_or(|b| score > b.score) {
                best = Some(Plan {
                    index: j,
                    exposure: *t,
                    score,
                    gain,
                });
            }
        }
        best.filter(|p| p.gain > 1e-12)
    }

    /// The bad tip's verification: `Some(step)` while it is under way or when it
    /// failed, `None` once it is done (or off, or impossible).
    fn verify_step(&self, cap: Option<f64>) -> Option<TimedStep> {
        let tip = self.n - 1;
        let (runs, fails) = (self.runs[tip], self.fails[tip]);
        if self.cfg.verify_bad_runs == 0 || self.untestable[tip] {
            return None;
        }
        if fails >= self.cfg.verify_bad_fails.max(1) && !self.another_tip_failure_pays() {
            return None;
        }
        if runs < self.cfg.verify_bad_runs {
            return Some(match cap {
                Some(c) => TimedStep::Run {
                    index: tip,
                    max_exposure_s: c,
                },
                None => self.conclude(StopReason::BudgetSpent),
            });
        }
        (fails == 0).then(|| self.conclude(StopReason::NotReproduced))
    }

    /// Whether one more failure of the bad tip saves more clean exposure on
    /// the good commits to come than it costs (see
    /// [`TimedConfig::verify_bad_adaptive`]).
    fn another_tip_failure_pays(&self) -> bool {
        if !self.cfg.verify_bad_adaptive {
            return false;
        }
        let Some(m) = self.tip_mttf() else {
            return false;
        };
        let f = 1.0 / (1.0 - self.cfg.confidence);
        let clean = |n: f64| n * m * (f.powf(1.0 / n) - 1.0);
        let n = f64::from(self.fails[self.n - 1]);
        let good_steps = (self.search_steps() / 2.0).max(1.0);
        let saved = good_steps * (clean(n) - clean(n + 1.0));
        saved > self.cfg.boot_s + m
    }

    /// The next step (a pure function of the configuration and the observations).
    pub fn next(&self) -> TimedStep {
        let cap = self.exposure_cap();
        if let Some(step) = self.verify_step(cap) {
            return step;
        }
        if self.best().1 >= self.cfg.confidence {
            return self.conclude(StopReason::Confident);
        }
        let Some(cap) = cap else {
            return self.conclude(StopReason::BudgetSpent);
        };
        match self.plan(cap) {
            Some(p) => TimedStep::Run {
                index: p.index,
                max_exposure_s: p.exposure,
            },
            None => self.conclude(StopReason::NothingToTest),
        }
    }

    /// Whether the run [`TimedEngine::next`] asked for, clean for `elapsed_s`
    /// seconds of workload so far, should end now (as a clean run of
    /// `elapsed_s`): once it reached its planned length, once a clean run of
    /// `elapsed_s` settles the commit good (see [`TimedConfig::settle_tolerance`])
    /// or already ends the bisection. Call it periodically (every few seconds)
    /// while the run is clean; it only reads the engine. The bad tip's
    /// verification runs are never stopped early.
    pub fn should_stop(&self, elapsed_s: f64) -> bool {
        match self.next() {
            TimedStep::Run {
                index,
                max_exposure_s,
            } => self.stop_run(index, max_exposure_s, elapsed_s),
            TimedStep::Done(_) => true,
        }
    }

    /// [`TimedEngine::should_stop`] for a run at `index` planned for `max_s`
    /// (the step [`TimedEngine::next`] returned): a driver that keeps the step
    /// asks this without planning again.
    pub fn stop_run(&self, index: usize, max_s: f64, elapsed_s: f64) -> bool {
        let e = ms(elapsed_s);
        if e >= max_s {
            return true;
        }
        if e <= 0.0 || index + 1 == self.n {
            return false;
        }
        let mut h = self.clone();
        if h.observe(index, TimedObs::clean(e)).is_err() {
            return true;
        }
        let bad: f64 = h.posterior()[..=index].iter().sum();
        bad <= self.settled() || h.best().1 >= h.cfg.confidence
    }
}

/// [`TimedEngine::evaluate`]'s answer, per index.
#[derive(Debug, Clone)]
struct Eval {
    gains: Vec<f64>,
    exposure: Vec<f64>,
    bad_if_clean: Vec<f64>,
}

/// Probability that a Weibull onset (shape `k`, rate `l`) falls in
/// `(from, from + len]` given that it is past `from`, and the expected exposure
/// of that segment (`∫ S(t) dt / S(from)` over it).
fn weibull_segment(k: f64, l: f64, from: f64, len: f64) -> (f64, f64) {
    let h0 = (l * from).powf(k);
    let h1 = (l * (from + len)).powf(k);
    let x = h1 - h0;
    let p = -(-x).exp_m1();
    if len <= 0.0 || l <= 0.0 {
        return (0.0, len.max(0.0));
    }
    // Substituting u = (l t)^k - h0: dt = (u + h0)^(1/k - 1) du / (k l), so the
    // exposure is ∫_0^x e^-u (u + h0)^(1/k - 1) du / (k l).
    let t = if (k - 1.0).abs() < 1e-12 {
        p / l
    } else if (k - 0.5).abs() < 1e-12 {
        // ∫ e^-u (u + h0) du = (1 + h0)(1 - e^-x) - x e^-x.
        ((1.0 + h0) * p - x * (-x).exp()) / (k * l)
    } else {
        // Simpson's rule on the smooth integrand, up to where e^-u is negligible.
        let top = x.min(40.0);
        let steps = 64;
        let hstep = top / steps as f64;
        let f = |u: f64| (-u).exp() * (u + h0).powf(1.0 / k - 1.0);
        let mut s = f(0.0) + f(top);
        for i in 1..steps {
            s += f(i as f64 * hstep) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * hstep / 3.0 / (k * l)
    };
    (p, t.clamp(0.0, len))
}

/// The gamma function (Lanczos approximation), for positive arguments.
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, &g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::timed::{Onset, TimedHistory, TimedPolicy, simulate_timed};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn history(seed: u64, n: usize, onset: Onset, skip: f64) -> TimedHistory {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        TimedHistory::random(&mut rng, n, onset, 1e-4, 15.0, skip)
    }

    const FAST: Onset = Onset::Exponential { mean_s: 8.0 };

    fn timed_policy() -> TimedPolicy {
        TimedPolicy::FailureTime {
            cfg: TimedConfig::default(),
            check_s: Some(5.0),
            settle_s: 0.0,
        }
    }

    #[test]
    fn names_the_right_culprit_on_simulated_histories() {
        for (onset, seeds) in [
            (FAST, 0..16u64),
            (
                Onset::Weibull {
                    shape: 0.6,
                    scale_s: 20.0,
                },
                0..6,
            ),
        ] {
            for seed in seeds {
                let h = history(seed, 16, onset, 0.1);
                let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
                let o = simulate_timed(&timed_policy(), &h, &mut rng);
                assert_eq!(o.candidates, h.truth(), "{onset:?} seed {seed}: {o:?}");
            }
        }
    }

    #[test]
    fn spends_fewer_guest_seconds_than_the_per_run_model() {
        let today = TimedPolicy::PerRun {
            cfg: crate::Config {
                verify_bad_runs: 20,
                settle_tolerance: 3.0,
                split_interval: false,
                ..crate::Config::default()
            },
            run_s: 60.0,
            linger_s: 0.0,
        };
        let (mut new, mut old) = (0.0, 0.0);
        for seed in 0..16 {
            let h = history(seed, 16, FAST, 0.0);
            let a = simulate_timed(&timed_policy(), &h, &mut ChaCha8Rng::seed_from_u64(seed));
            let b = simulate_timed(&today, &h, &mut ChaCha8Rng::seed_from_u64(seed));
            assert_eq!(a.candidates, h.truth(), "seed {seed}");
            new += a.guest_s;
            old += b.guest_s;
        }
        assert!(
            new < 0.97 * old,
            "failure-time {new:.0} s, per-run {old:.0} s"
        );
    }

    /// Bisects `h`, checking `should_stop` every 5 s; after `kill_after` runs the
    /// process is "killed": a new engine is rebuilt from the journal (the
    /// observations through JSON) and carries on. Returns the final engine.
    fn bisect_with_kill(h: &TimedHistory, seed: u64, kill_after: Option<u32>) -> TimedEngine {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut e = TimedEngine::new(h.n, TimedConfig::default()).unwrap();
        loop {
            if kill_after == Some(e.total_runs()) {
                let journal = serde_json::to_string(e.observations()).unwrap();
                let obs: Vec<(usize, TimedObs)> = serde_json::from_str(&journal).unwrap();
                let r = TimedEngine::replay(h.n, TimedConfig::default(), obs).unwrap();
                assert_eq!(r.posterior(), e.posterior());
                assert_eq!(r.next(), e.next());
                assert_eq!(r.spent_s(), e.spent_s());
                assert_eq!(r.should_stop(12.5), e.should_stop(12.5));
                e = r;
            }
            let TimedStep::Run {
                index,
                max_exposure_s,
            } = e.next()
            else {
                return e;
            };
            if h.untestable[index] {
                e.observe(index, TimedObs::Skip).unwrap();
                continue;
            }
            let x = h.draw(&mut rng, index);
            let mut t: f64 = 0.0;
            let obs = loop {
                let next = (t + 5.0).min(max_exposure_s);
                if x <= next {
                    break TimedObs::failed(x);
                }
                t = next;
                if t >= max_exposure_s || e.should_stop(t) {
                    break TimedObs::clean(t);
                }
            };
            e.observe(index, obs).unwrap();
        }
    }

    #[test]
    fn replay_equals_live_and_resume_after_a_kill_repeats_nothing() {
        let h = history(3, 16, FAST, 0.1);
        let live = bisect_with_kill(&h, 9, None);
        // Some runs were cut short by should_stop: partial lengths in the journal.
        let partial = live.observations().iter().any(|(_, o)| {
            matches!(o, TimedObs::Run { exposure_s, failed_at_s: None } if *exposure_s < 600.0)
        });
        assert!(partial, "{:?}", live.observations());
        let replayed =
            TimedEngine::replay(16, TimedConfig::default(), live.observations().to_vec()).unwrap();
        assert_eq!(replayed.posterior(), live.posterior());
        assert_eq!(replayed.next(), live.next());
        assert_eq!(replayed.observations(), live.observations());
        for kill in [1, 4, 7] {
            let resumed = bisect_with_kill(&h, 9, Some(kill));
            assert_eq!(
                resumed.observations(),
                live.observations(),
                "kill after {kill}"
            );
            assert_eq!(resumed.next(), live.next());
        }
    }

    fn conclude(h: &TimedHistory, cfg: TimedConfig, seed: u64) -> (Conclusion, TimedEngine) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut e = TimedEngine::new(h.n, cfg).unwrap();
        loop {
            match e.next() {
                TimedStep::Run {
                    index,
                    max_exposure_s,
                } => {
                    let obs = if h.untestable[index] {
                        TimedObs::Skip
                    } else {
                        let x = h.draw(&mut rng, index);
                        if x <= max_exposure_s {
                            TimedObs::failed(x)
                        } else {
                            TimedObs::clean(max_exposure_s)
                        }
                    };
                    e.observe(index, obs).unwrap();
                    assert!(e.total_runs() < 500, "no end");
                }
                TimedStep::Done(c) => return (c, e),
            }
        }
    }

    #[test]
    fn culprit_first_or_last() {
        for culprit in [0, 11] {
            for seed in 0..4 {
                let mut h = history(seed, 12, FAST, 0.0);
                h.culprit = culprit;
                let (c, _) = conclude(&h, TimedConfig::default(), seed);
                assert_eq!(c.culprit(), Some(culprit), "seed {seed}");
            }
        }
    }

    #[test]
    fn a_tiny_rate_ends_on_the_budget() {
        let h = TimedHistory {
            onset: Onset::Exponential { mean_s: 1e7 },
            ..history(1, 12, FAST, 0.0)
        };
        let cfg = TimedConfig {
            verify_bad_runs: 0,
            tip_failures_s: vec![300.0],
            budget_s: Some(3000.0),
            ..TimedConfig::default()
        };
        let (c, e) = conclude(&h, cfg, 1);
        assert_eq!(c.reason, StopReason::BudgetSpent);
        assert!(e.spent_s() <= 3000.0 + 1e-6, "{}", e.spent_s());
        assert!(e.spent_s() > 2500.0, "{}", e.spent_s());
        // Verified instead, a tip that never fails is not reproduced.
        let (c, e) = conclude(&h, TimedConfig::default(), 1);
        assert_eq!(c.reason, StopReason::NotReproduced);
        assert_eq!(e.total_runs(), TimedConfig::default().verify_bad_runs);
    }

    /// Feeds the tip's verification runs (each failing after `fail_s`) until
    /// the engine moves on; returns the tip's failures.
    fn verify_tip(e: &mut TimedEngine, fail_s: f64) -> u32 {
        let tip = e.len() - 1;
        while let TimedStep::Run { index, .. } = e.next() {
            if index != tip {
                break;
            }
            e.observe(tip, TimedObs::failed(fail_s)).unwrap();
            assert!(e.total_runs() <= 100, "the verification never ends");
        }
        e.counts(tip).1
    }

    #[test]
    fn cheap_fast_tip_failures_are_bought_while_they_pay() {
        let cfg = |boot_s: f64, adaptive: bool| TimedConfig {
            boot_s,
            verify_bad_fails: 3,
            verify_bad_runs: 20,
            verify_bad_adaptive: adaptive,
            ..TimedConfig::default()
        };
        // Failures 5 s in, 4 s of boot: a sharper rate saves more clean
        // exposure on the good commits than a run costs, a few times over.
        let mut e = TimedEngine::new(64, cfg(4.0, true)).unwrap();
        let fast = verify_tip(&mut e, 5.0);
        assert!((5..=12).contains(&fast), "{fast} failures");
        // Off, or with a boot that costs more than any saving: the minimum.
        let mut e = TimedEngine::new(64, cfg(4.0, false)).unwrap();
        assert_eq!(verify_tip(&mut e, 5.0), 3);
        let mut e = TimedEngine::new(64, cfg(2000.0, true)).unwrap();
        assert_eq!(verify_tip(&mut e, 5.0), 3);
        // The run budget still caps it.
        let mut e = TimedEngine::new(
            64,
            TimedConfig {
                verify_bad_runs: 4,
                ..cfg(0.0, true)
            },
        )
        .unwrap();
        assert_eq!(verify_tip(&mut e, 5.0), 4);
    }

    /// Bisects 16 candidates whose tip fails 10 s in, then answers every
    /// third run with an early failure and the others clean, wherever they
    /// are (evidence that keeps contradicting itself), for at most `runs`
    /// runs; returns the engine and how it stopped (`None`: still running).
    fn contradicting(factor: Option<f64>, runs: u32) -> (TimedEngine, Option<StopReason>) {
        let cfg = TimedConfig {
            boot_s: 10.0,
            budget_tip_mttf: factor,
            ..TimedConfig::default()
        };
        let mut e = TimedEngine::new(16, cfg).unwrap();
        verify_tip(&mut e, 10.0);
        for k in 1..=runs {
            match e.next() {
                TimedStep::Run {
                    index,
                    max_exposure_s,
                } => {
                    let obs = if k % 3 == 0 {
                        TimedObs::failed(max_exposure_s.min(20.0))
                    } else {
                        TimedObs::clean(max_exposure_s)
                    };
                    e.observe(index, obs).unwrap();
                }
                TimedStep::Done(c) => return (e, Some(c.reason)),
            }
        }
        (e, None)
    }

    #[test]
    fn contradicting_evidence_ends_on_the_tips_budget() {
        // The tip fails 10 s in, 10 s of boot: 3 x ⌈log2 16⌉ x 20 s = 240 s.
        let (e, reason) = contradicting(Some(3.0), 10_000);
        assert_eq!(reason, Some(StopReason::BudgetSpent));
        let limit = 3.0 * 4.0 * (10.0 + 10.0);
        let longest = e.config().max_exposure_s + 10.0;
        assert!(
            (limit..limit + longest).contains(&e.spent_s()),
            "{} vs {limit}",
            e.spent_s()
        );
        // Without the limit the same evidence goes on well past it.
        let (e, reason) = contradicting(None, 200);
        assert_ne!(reason, Some(StopReason::BudgetSpent));
        assert!(e.spent_s() > 3.0 * limit, "{}", e.spent_s());
    }

    #[test]
    fn untestable_commits_collapse_into_a_set() {
        let mut h = history(2, 10, FAST, 0.0);
        h.culprit = 5;
        h.untestable[3] = true;
        h.untestable[4] = true;
        let (c, e) = conclude(&h, TimedConfig::default(), 2);
        assert_eq!(c.candidates, vec![3, 4, 5]);
        assert_eq!(c.culprit(), None);
        assert!(e.is_untestable(3) && e.is_untestable(4));
    }

    #[test]
    fn fast_tip_failures_make_a_short_clean_run_convincing() {
        // The tip failed at 5-11 s: a good commit needs well under a minute.
        // Runs planned to settle the commit in one go (RunLength::Settle).
        let fast = TimedConfig {
            verify_bad_runs: 0,
            tip_failures_s: vec![5.0, 7.0, 9.0, 11.0, 6.0],
            run_length: RunLength::Settle,
            ..TimedConfig::default()
        };
        let slow = TimedConfig {
            tip_failures_s: vec![50.0, 70.0, 90.0, 110.0, 60.0],
            ..fast.clone()
        };
        let needed = |cfg: &TimedConfig| {
            let mut e = TimedEngine::new(2, cfg.clone()).unwrap();
            // Two candidates: index 0 is the only one to test.
            let TimedStep::Run { index: 0, .. } = e.next() else {
                panic!("{:?}", e.next());
            };
            let t = (1..=600)
                .map(f64::from)
                .find(|&t| e.should_stop(t))
                .unwrap();
            e.observe(0, TimedObs::clean(t)).unwrap();
            (t, e)
        };
        let (t_fast, e) = needed(&fast);
        let (t_slow, _) = needed(&slow);
        assert!((20.0..90.0).contains(&t_fast), "{t_fast}");
        assert!(t_slow > 5.0 * t_fast, "{t_slow} vs {t_fast}");
        assert!(e.posterior()[1] >= 1.0 - 0.01 - 1e-9);
        let (mttf, _) = e.rates();
        assert!((4.0..20.0).contains(&mttf), "{mttf}");
    }

    #[test]
    fn the_weibull_segment_integrates_right() {
        // The closed forms (k = 1, 1/2) and Simpson's rule (k = 0.7) against a
        // fine sum over t of the conditional survival.
        for (k, l, from, len) in [
            (1.0, 0.1, 0.0, 30.0),
            (0.5, 0.02, 10.0, 100.0),
            (0.7, 0.05, 0.0, 200.0),
            (0.7, 0.01, 30.0, 60.0),
        ] {
            let (p, t) = weibull_segment(k, l, from, len);
            let s = |t: f64| (-(l * t).powf(k)).exp();
            let steps = 200_000;
            let dt = len / steps as f64;
            let brute: f64 = (0..steps)
                .map(|i| s(from + (i as f64 + 0.5) * dt) * dt)
                .sum::<f64>()
                / s(from);
            let p_brute = 1.0 - s(from + len) / s(from);
            assert!((p - p_brute).abs() < 1e-9, "{k}: {p} vs {p_brute}");
            assert!((t - brute).abs() < 0.01 * brute, "{k}: {t} vs {brute}");
        }
        // Survival to from + len over survival to from, and E[min(X, len)].
        let (p, t) = weibull_segment(1.0, 0.1, 5.0, 10.0);
        assert!((p - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!((t - 10.0 * p).abs() < 1e-9);
    }

    #[test]
    fn heavy_tails_get_several_short_runs_instead_of_one_long_one() {
        // A decreasing hazard: a reboot restarts the likeliest time to fail,
        // so runs planned for information per second beat runs planned to
        // settle a commit in one go, at the same answers.
        let onset = Onset::Weibull {
            shape: 0.6,
            scale_s: 40.0,
        };
        let policy = |run_length| TimedPolicy::FailureTime {
            cfg: TimedConfig {
                run_length,
                ..TimedConfig::default()
            },
            check_s: Some(5.0),
            settle_s: 0.0,
        };
        let (mut gain, mut settle) = (0.0, 0.0);
        let (mut gain_runs, mut settle_runs) = (0, 0);
        // Answers as often right (at 99% confidence, about one wrong in a
        // hundred: a few in 30 is chance, not a bias).
        let (mut wrong_gain, mut wrong_settle) = (0, 0);
        for seed in 0..30 {
            let h = history(seed, 16, onset, 0.0);
            let a = simulate_timed(
                &policy(RunLength::Gain),
                &h,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            let b = simulate_timed(
                &policy(RunLength::Settle),
                &h,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            wrong_gain += u32::from(a.candidates != h.truth());
            wrong_settle += u32::from(b.candidates != h.truth());
            gain += a.guest_s;
            settle += b.guest_s;
            gain_runs += a.runs;
            settle_runs += b.runs;
        }
        assert!(
            wrong_gain <= 2 && wrong_settle <= 2,
            "{wrong_gain}, {wrong_settle} wrong"
        );
        assert!(
            gain < 0.8 * settle,
            "gain {gain:.0} s, settle {settle:.0} s"
        );
        assert!(gain_runs > settle_runs, "{gain_runs} vs {settle_runs} runs");
    }

    #[test]
    fn a_planned_run_length_is_one_the_engine_offers() {
        let mut e = TimedEngine::new(
            8,
            TimedConfig {
                verify_bad_runs: 0,
                tip_failures_s: vec![20.0, 90.0, 4.0, 300.0, 35.0],
                ..TimedConfig::default()
            },
        )
        .unwrap();
        let TimedStep::Run {
            index,
            max_exposure_s,
        } = e.next()
        else {
            panic!("{:?}", e.next());
        };
        let cfg = e.config().clone();
        assert!((cfg.min_exposure_s..=cfg.max_exposure_s).contains(&max_exposure_s));
        // A heavy-tailed tip: the run is planned well short of the longest.
        assert!(max_exposure_s < 300.0, "{max_exposure_s}");
        assert!(e.should_stop(max_exposure_s));
        e.observe(index, TimedObs::clean(max_exposure_s)).unwrap();
        assert_eq!(e.counts(index), (1, 0, ms(max_exposure_s)));
    }

    #[test]
    fn bad_settings_and_observations_are_refused() {
        let bad = TimedConfig {
            max_exposure_s: 1.0,
            ..TimedConfig::default()
        };
        assert_eq!(TimedEngine::new(4, bad).unwrap_err(), Error::Cost);
        assert_eq!(
            TimedEngine::new(0, TimedConfig::default()).unwrap_err(),
            Error::Empty
        );
        let mut e = TimedEngine::new(4, TimedConfig::default()).unwrap();
        assert!(e.observe(4, TimedObs::clean(1.0)).is_err());
        let late = TimedObs::Run {
            exposure_s: 10.0,
            failed_at_s: Some(11.0),
        };
        assert!(e.observe(1, late).is_err());
        assert!(e.observations().is_empty());
    }
}

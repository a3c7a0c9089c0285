//! Failure-time histories: a bad commit's run first fails after a random onset
//! (exponential, Weibull or log-normal, seconds of workload), a good one's at a
//! small constant false-failure rate, and every run pays a boot overhead. Three
//! policies bisect them, costed in guest-seconds (boot plus workload; a run ends
//! at its first failure): today's per-run [`Engine`] with runs of a fixed length,
//! syzbot's 10 runs of a fixed length per step, and the [`TimedEngine`]. A
//! failing run goes on after its first failure as the real tester lets it:
//! `linger_s` for the fixed-length policies (`csdci demo`'s
//! `stop_after_crash_s`: the report's backtraces and a possible panic), the
//! settle time of a planned run for the [`TimedEngine`] (the tester ends it
//! that long after the finding its predicate counts).

use rand::Rng;
use serde::Serialize;

use crate::{Config, Engine, Obs, Step, TimedConfig, TimedEngine, TimedObs, TimedStep};

/// When a bad commit's run first fails, in seconds of workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Onset {
    /// Exponential: a constant rate `1 / mean_s`.
    Exponential { mean_s: f64 },
    /// Weibull: survival `exp(-(t / scale_s)^shape)`; `shape < 1` is heavier
    /// tailed than exponential.
    Weibull { shape: f64, scale_s: f64 },
    /// Log-normal: `median_s · e^(sigma · Z)`.
    LogNormal { median_s: f64, sigma: f64 },
}

impl Onset {
    /// One onset time.
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        // In (0, 1]: never ln 0.
        let u = 1.0 - rng.random::<f64>();
        match *self {
            Onset::Exponential { mean_s } => -mean_s * u.ln(),
            Onset::Weibull { shape, scale_s } => scale_s * (-u.ln()).powf(1.0 / shape),
            Onset::LogNormal { median_s, sigma } => {
                let v: f64 = rng.random();
                let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                median_s * (sigma * z).exp()
            }
        }
    }

    /// Probability that a run of `t` seconds fails.
    pub fn cdf(&self, t: f64) -> f64 {
        match *self {
            Onset::Exponential { mean_s } => 1.0 - (-t / mean_s).exp(),
            Onset::Weibull { shape, scale_s } => 1.0 - (-(t / scale_s).powf(shape)).exp(),
            Onset::LogNormal { median_s, sigma } => {
                if t <= 0.0 {
                    0.0
                } else {
                    0.5 * erfc(-(t / median_s).ln() / (sigma * std::f64::consts::SQRT_2))
                }
            }
        }
    }

    /// Median onset.
    pub fn median(&self) -> f64 {
        match *self {
            Onset::Exponential { mean_s } => mean_s * std::f64::consts::LN_2,
            Onset::Weibull { shape, scale_s } => scale_s * std::f64::consts::LN_2.powf(1.0 / shape),
            Onset::LogNormal { median_s, .. } => median_s,
        }
    }
}

/// The complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// A failure-time history of `n` candidates with a known culprit.
#[derive(Debug, Clone)]
pub struct TimedHistory {
    /// Number of candidates (index `n - 1` is the bad tip).
    pub n: usize,
    /// Index of the first bad commit.
    pub culprit: usize,
    /// Onset of a bad commit's failure.
    pub onset: Onset,
    /// False failures per second of workload, on every commit.
    pub false_rate: f64,
    /// Guest-seconds every run spends booting before its workload starts.
    pub boot_s: f64,
    /// Commits that cannot be built.
    pub untestable: Vec<bool>,
}

impl TimedHistory {
    /// A random history: culprit uniform, each commit but the tip untestable with
    /// probability `skip_density`.
    pub fn random(
        rng: &mut impl Rng,
        n: usize,
        onset: Onset,
        false_rate: f64,
        boot_s: f64,
        skip_density: f64,
    ) -> Self {
        let culprit = rng.random_range(0..n);
        let untestable = (0..n)
            .map(|i| i + 1 < n && rng.random_bool(skip_density))
            .collect();
        TimedHistory {
            n,
            culprit,
            onset,
            false_rate,
            boot_s,
            untestable,
        }
    }

    /// When a run of commit `i` first fails (seconds of workload; infinite when
    /// it never would).
    pub fn draw(&self, rng: &mut impl Rng, i: usize) -> f64 {
        let false_fail = if self.false_rate > 0.0 {
            -(1.0 - rng.random::<f64>()).ln() / self.false_rate
        } else {
            f64::INFINITY
        };
        if i >= self.culprit {
            self.onset.sample(rng).min(false_fail)
        } else {
            false_fail
        }
    }

    /// The best answer possible (see [`super::History::truth`]).
    pub fn truth(&self) -> Vec<usize> {
        super::truth(self.n, self.culprit, &self.untestable)
    }
}

/// A bisection policy on failure-time histories.
#[derive(Debug, Clone)]
pub enum TimedPolicy {
    /// Today's: the per-run [`Engine`], every run `run_s` seconds of workload (it
    /// fails when the onset comes first, and goes on `linger_s` after it, up to
    /// `run_s`).
    PerRun {
        cfg: Config,
        run_s: f64,
        linger_s: f64,
    },
    /// syzbot's: the bad tip, then binary search, 10 runs of `run_s` per commit
    /// (20 once a commit was flaky); bad at ≥ max(2, runs/6) failures, good only
    /// with none, otherwise skipped. A tip that never fails is not reproduced.
    /// A failing run goes on `linger_s` after its failure (up to `run_s`).
    Syzbot { run_s: f64, linger_s: f64 },
    /// The [`TimedEngine`] (told the history's boot cost), its runs ended early
    /// by [`TimedEngine::should_stop`] checked every `check_s` seconds (`None`:
    /// each run lasts its planned length or to its failure); a failing run goes
    /// on `settle_s` after its failure (up to its planned length).
    FailureTime {
        cfg: TimedConfig,
        check_s: Option<f64>,
        settle_s: f64,
    },
}

/// What one simulated bisection cost and answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedOutcome {
    /// The answer: one index, or a set when not isolated (empty: not reproduced).
    pub candidates: Vec<usize>,
    /// Runs made.
    pub runs: u32,
    /// Commits prepared (built), untestable ones included.
    pub builds: u32,
    /// Guest-seconds: every run's boot and workload.
    pub guest_s: f64,
}

/// Bisects `h` with `policy`.
pub fn simulate_timed(policy: &TimedPolicy, h: &TimedHistory, rng: &mut impl Rng) -> TimedOutcome {
    match policy {
        TimedPolicy::PerRun {
            cfg,
            run_s,
            linger_s,
        } => per_run(cfg, *run_s, *linger_s, h, rng),
        TimedPolicy::Syzbot { run_s, linger_s } => syzbot(*run_s, *linger_s, h, rng),
        TimedPolicy::FailureTime {
            cfg,
            check_s,
            settle_s,
        } => failure_time(cfg, *check_s, *settle_s, h, rng),
    }
}

/// Guest-seconds of a fixed-length run of `run_s` whose onset is `x`.
fn fixed_run_cost(h: &TimedHistory, x: f64, run_s: f64, linger_s: f64) -> f64 {
    h.boot_s
        + if x < run_s {
            (x + linger_s).min(run_s)
        } else {
            run_s
        }
}

fn per_run(
    cfg: &Config,
    run_s: f64,
    linger_s: f64,
    h: &TimedHistory,
    rng: &mut impl Rng,
) -> TimedOutcome {
    let mut e = Engine::new(h.n, cfg.clone()).expect("valid config");
    let mut o = TimedOutcome {
        candidates: Vec::new(),
        runs: 0,
        builds: 0,
        guest_s: 0.0,
    };
    let mut prepared = None;
    loop {
        match e.next() {
            Step::Test { index } => {
                if prepared != Some(index) {
                    o.builds += 1;
                    if h.untestable[index] {
                        prepared = None;
                        e.observe(index, Obs::Skip).expect("index in range");
                        continue;
                    }
                    prepared = Some(index);
                }
                let x = h.draw(rng, index);
                o.runs += 1;
                o.guest_s += fixed_run_cost(h, x, run_s, linger_s);
                let obs = if x < run_s { Obs::Fail } else { Obs::Pass };
                e.observe(index, obs).expect("index in range");
            }
            Step::Done(c) => {
                if c.reason != crate::StopReason::NotReproduced {
                    o.candidates = c.candidates;
                }
                return o;
            }
        }
    }
}

fn syzbot(run_s: f64, linger_s: f64, h: &TimedHistory, rng: &mut impl Rng) -> TimedOutcome {
    let mut o = TimedOutcome {
        candidates: Vec::new(),
        runs: 0,
        builds: 0,
        guest_s: 0.0,
    };
    let mut per_commit = 10;
    // `per_commit` runs of commit `i`: its failures.
    let mut test = |o: &mut TimedOutcome, i: usize, runs: u32| -> u32 {
        o.builds += 1;
        let mut fails = 0;
        for _ in 0..runs {
            let x = h.draw(rng, i);
            o.runs += 1;
            o.guest_s += fixed_run_cost(h, x, run_s, linger_s);
            fails += u32::from(x < run_s);
        }
        fails
    };
    if test(&mut o, h.n - 1, per_commit) == 0 {
        return o;
    }
    let mut lo: isize = -1;
    let mut hi = h.n - 1;
    let mut skipped = vec![false; h.n];
    loop {
        let mid = (lo + hi as isize) as f64 / 2.0;
        let pick = ((lo + 1) as usize..hi)
            .filter(|&i| !skipped[i])
            .min_by(|&a, &b| (a as f64 - mid).abs().total_cmp(&(b as f64 - mid).abs()));
        let Some(i) = pick else {
            o.candidates = ((lo + 1) as usize..=hi).collect();
            return o;
        };
        if h.untestable[i] {
            o.builds += 1;
            skipped[i] = true;
            continue;
        }
        let fails = test(&mut o, i, per_commit);
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

fn failure_time(
    cfg: &TimedConfig,
    check_s: Option<f64>,
    settle_s: f64,
    h: &TimedHistory,
    rng: &mut impl Rng,
) -> TimedOutcome {
    let cfg = TimedConfig {
        boot_s: h.boot_s,
        ..cfg.clone()
    };
    let mut e = TimedEngine::new(h.n, cfg).expect("valid config");
    let mut o = TimedOutcome {
        candidates: Vec::new(),
        runs: 0,
        builds: 0,
        guest_s: 0.0,
    };
    let mut prepared = None;
    loop {
        match e.next() {
            TimedStep::Run {
                index,
                max_exposure_s: max,
            } => {
                if prepared != Some(index) {
                    o.builds += 1;
                    if h.untestable[index] {
                        prepared = None;
                        e.observe(index, TimedObs::Skip).expect("index in range");
                        continue;
                    }
                    prepared = Some(index);
                }
                let x = h.draw(rng, index);
                // A failure at `x` ends the run `settle_s` later.
                let failed = |x: f64| TimedObs::Run {
                    exposure_s: (x + settle_s).min(max),
                    failed_at_s: Some(x),
                };
                let obs = match check_s {
                    None if x <= max => failed(x),
                    None => TimedObs::clean(max),
                    Some(step) => {
                        // Ask at every check whether the clean run should end.
                        let mut t: f64 = 0.0;
                        loop {
                            let next = (t + step).min(max);
                            if x <= next {
                                break failed(x);
                            }
                            t = next;
                            if t >= max || e.stop_run(index, max, t) {
                                break TimedObs::clean(t);
                            }
                        }
                    }
                };
                let TimedObs::Run { exposure_s, .. } = obs else {
                    unreachable!()
                };
                o.runs += 1;
                o.guest_s += h.boot_s + exposure_s;
                e.observe(index, obs).expect("index in range");
            }
            TimedStep::Done(c) => {
                if c.reason != crate::StopReason::NotReproduced {
                    o.candidates = c.candidates;
                }
                return o;
            }
        }
    }
}

/// Accuracy and cost of a policy over many trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimedSummary {
    /// Trials run.
    pub trials: usize,
    /// Fraction of trials whose answer was exactly [`TimedHistory::truth`].
    pub accuracy: f64,
    /// Mean guest-seconds per bisection.
    pub mean_guest_s: f64,
    /// 90th percentile of guest-seconds per bisection.
    pub p90_guest_s: f64,
    /// Mean runs per bisection.
    pub mean_runs: f64,
    /// Mean builds per bisection.
    pub mean_builds: f64,
}

/// Summarises `(history, outcome)` pairs.
pub fn summarize_timed<'a>(
    results: impl IntoIterator<Item = (&'a TimedHistory, &'a TimedOutcome)>,
) -> TimedSummary {
    let mut guest = Vec::new();
    let (mut correct, mut runs, mut builds) = (0usize, 0u64, 0u64);
    for (h, o) in results {
        correct += usize::from(o.candidates == h.truth());
        guest.push(o.guest_s);
        runs += u64::from(o.runs);
        builds += u64::from(o.builds);
    }
    let t = guest.len();
    if t == 0 {
        return TimedSummary::default();
    }
    guest.sort_by(f64::total_cmp);
    let p90 = guest[((t as f64 * 0.9).ceil() as usize).clamp(1, t) - 1];
    TimedSummary {
        trials: t,
        accuracy: correct as f64 / t as f64,
        mean_guest_s: guest.iter().sum::<f64>() / t as f64,
        p90_guest_s: p90,
        mean_runs: runs as f64 / t as f64,
        mean_builds: builds as f64 / t as f64,
    }
}

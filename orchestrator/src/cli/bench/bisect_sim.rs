//! `csdci bench bisect-sim`: the Bayesian bisection policy against syzbot's
//! fixed-runs policy and plain one-run bisection, on synthetic histories.
//! `--workers`: rounds (wall-clock) and runs of parallel bisection with W
//! testers against one.
//! `--failure-time`: guest-seconds of today's per-run policy, syzbot's and the
//! failure-time engine on histories of failure onsets with a boot overhead.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use csdci_bisect::sim::batch::{BatchOutcome, BatchSummary, simulate_batch, summarize_batch};
use csdci_bisect::sim::timed::{
    Onset, TimedHistory, TimedOutcome, TimedPolicy, TimedSummary, simulate_timed, summarize_timed,
};
use csdci_bisect::sim::{History, Outcome, Policy, Summary, simulate, summarize};
use csdci_bisect::{Config, TimedConfig};

use crate::cli::Cli;

/// Arguments of `csdci bench bisect-sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bisections per table row and policy.
    #[arg(long, default_value_t = 100)]
    pub trials: usize,
    /// Random seed (the same seed prints the same table).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only rows with this many candidates (default: 16, 256 and 4096).
    #[arg(long)]
    pub commits: Option<usize>,
    /// Simulate the engine as `csdci bisect` sets it up for the QEMU pipeline
    /// (the bad tip verified first, its runs counted; the looser settle
    /// tolerance) instead of as for `--run` (git bisect's builds). A tip that is
    /// not reproduced counts as a wrong answer.
    #[arg(long)]
    pub pipeline: bool,
    /// The engine's stopping confidence (`csdci bisect --confidence`); lower it
    /// to compare runs with syzbot's at a similar accuracy.
    #[arg(long, default_value_t = 0.99)]
    pub confidence: f64,
    /// Failure-time histories instead: a bad commit's run fails after an onset
    /// (exponential, Weibull, log-normal), every run pays a boot; guest-seconds
    /// per bisection of today's policy (per-run engine, fixed-length runs),
    /// syzbot's (10 fixed-length runs per step) and the failure-time engine.
    #[arg(long)]
    pub failure_time: bool,
    /// With --failure-time: guest-seconds each run spends booting.
    #[arg(long, default_value_t = 15.0, value_name = "S")]
    pub boot_s: f64,
    /// With --failure-time: the fixed run length (seconds of workload) of
    /// today's and syzbot's policies (csdci run's default duration).
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    pub run_s: f64,
    /// With --failure-time: seconds a failing run of today's and syzbot's
    /// policies goes on after its first failure (`csdci demo`'s
    /// --stop-after-crash; 0: it ends at the failure).
    #[arg(long, default_value_t = crate::cli::demo::DEFAULT_STOP_AFTER_CRASH_S as f64, value_name = "S")]
    pub linger_s: f64,
    /// With --failure-time: seconds a failing run of the failure-time policy
    /// goes on after the finding its predicate counts (the tester's settle
    /// time; 0: it ends at the failure).
    #[arg(long, default_value_t = crate::testers::FAILED_RUN_SETTLE_S as f64, value_name = "S")]
    pub settle_s: f64,
    /// With --failure-time: failures of the bad tip that end its verification
    /// under the failure-time policy (default: as `csdci bisect` sets it up).
    #[arg(long, value_name = "N")]
    pub tip_fails: Option<u32>,
    /// With --failure-time: the longest run the failure-time policy asks for
    /// (`csdci bisect --max-exposure`; seconds of workload).
    #[arg(long, default_value_t = 600.0, value_name = "S")]
    pub max_exposure_s: f64,
    /// With --failure-time: how often the failure-time policy asks the engine
    /// whether a clean run is still worth continuing (0: never).
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    pub check_s: f64,
    /// With --failure-time: the engine's grid of Weibull onset shapes (1:
    /// exponential only; below 1: heavier tails, more robust, longer clean runs).
    #[arg(long, value_delimiter = ',', value_name = "K,...")]
    pub shapes: Option<Vec<f64>>,
    /// With --failure-time: how the failure-time engine chooses a run's
    /// length: `gain` (most information per second, the default) or `settle`
    /// (long enough to settle a commit good in one clean run; the engine
    /// before it planned by information).
    #[arg(long, value_name = "HOW", default_value = "gain")]
    pub run_length: RunLengthArg,
    /// Parallel bisection instead: rounds (wall-clock, a round's runs go at
    /// once) and total runs of the engine with W testers, for each W given
    /// (default 1,2,3,4,8,16), against W = 1 at the same confidence.
    #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "W,...")]
    pub workers: Option<Vec<usize>>,
}

/// `--run-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunLengthArg {
    /// Most information per second.
    Gain,
    /// Long enough to settle a commit in one clean run.
    Settle,
}

/// One table row: a family of histories.
#[derive(Debug, Clone, Copy)]
struct Row {
    n: usize,
    p: f64,
    /// Largest false-failure rate; each history draws one in [0, max].
    max_false_fail: f64,
    /// Largest skip density; each history draws one in [0, max].
    max_skip: f64,
}

/// Results of one row.
struct RowResult {
    row: Row,
    bayes: Summary,
    syzbot: Summary,
    plain: Summary,
    /// The engine told the true rates (see [`Policy::Told`]).
    told: Summary,
}

fn rows(only: Option<usize>) -> Vec<Row> {
    let sizes: Vec<usize> = match only {
        Some(n) => vec![n],
        None => vec![16, 256, 4096],
    };
    let mut out = Vec::new();
    for &n in &sizes {
        out.push(Row {
            n,
            p: 1.0,
            max_false_fail: 0.0,
            max_skip: 0.0,
        });
        for p in [1.0, 0.8, 0.5, 0.3, 0.2] {
            out.push(Row {
                n,
                p,
                max_false_fail: 0.02,
                max_skip: 0.10,
            });
        }
    }
    out
}

fn run_row(row: Row, trials: usize, seed: u64, row_index: usize, bayes: &Config) -> RowResult {
    let policies = [
        Policy::Bayes(bayes.clone()),
        Policy::Syzbot,
        Policy::Plain,
        Policy::Told(bayes.clone()),
    ];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, trials.max(1));
    // Trial t uses its own seeds, so the table does not depend on the thread count.
    let trial = |t: usize| -> (History, Vec<Outcome>) {
        let base = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add((row_index as u64) << 32)
            .wrapping_add(t as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(base);
        let ff = if row.max_false_fail > 0.0 {
            rng.random_range(0.0..=row.max_false_fail)
        } else {
            0.0
        };
        let skip = if row.max_skip > 0.0 {
            rng.random_range(0.0..=row.max_skip)
        } else {
            0.0
        };
        let h = History::random(&mut rng, row.n, row.p, ff, skip);
        let outs = policies
            .iter()
            .enumerate()
            .map(|(i, pol)| {
                let mut r = ChaCha8Rng::seed_from_u64(base ^ ((i as u64 + 1) << 56));
                simulate(pol, &h, &mut r)
            })
            .collect();
        (h, outs)
    };
    let mut results: Vec<(usize, (History, Vec<Outcome>))> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let trial = &trial;
                s.spawn(move || {
                    (w..trials)
                        .step_by(threads)
                        .map(|t| (t, trial(t)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(t, _)| *t);
    let summary = |i: usize| summarize(results.iter().map(|(_, (h, o))| (h, &o[i])));
    RowResult {
        row,
        bayes: summary(0),
        syzbot: summary(1),
        plain: summary(2),
        told: summary(3),
    }
}

fn log2_ceil(n: usize) -> u32 {
    (n as f64).log2().ceil() as u32
}

/// Runs `csdci bench bisect-sim`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    if args.trials == 0 {
        return Err(crate::Error::Usage("--trials must be at least 1".into()));
    }
    if let Some(n) = args.commits
        && n < 2
    {
        return Err(crate::Error::Usage("--commits must be at least 2".into()));
    }
    if args.failure_time {
        return failure_time(args);
    }
    if let Some(w) = &args.workers {
        return workers(args, w);
    }
    let start = std::time::Instant::now();
    let base = Config {
        confidence: args.confidence,
        ..Config::default()
    };
    base.validate()
        .map_err(|e| crate::Error::Usage(format!("--confidence: {e}")))?;
    let bayes = if args.pipeline {
        crate::bisect::for_pipeline(base)
    } else {
        base
    };
    println!(
        "bisect-sim: {} trials per row, seed {}; eps = false-failure rate, skip = untestable density",
        args.trials, args.seed
    );
    println!(
        "bayes stopping at confidence {}, as set up for {}",
        args.confidence,
        if args.pipeline {
            "the QEMU pipeline (bad tip verified first, its runs counted)"
        } else {
            "--run (the bad tip trusted, as by git bisect)"
        }
    );
    println!(
        "(each history draws eps and skip uniformly up to the row's maximum; the culprit is uniform)"
    );
    println!(
        "told: the same engine told each history's true p and eps (no one can run it; a floor for any engine that learns them)"
    );
    println!();
    println!(
        "{:>5} {:>4} {:>5} {:>5} | {:>24} | {:>24} | {:>17} | {:>6} {:>6} | {:>12} {:>6}",
        "N",
        "p",
        "eps≤",
        "skip≤",
        "bayes acc runs p95 bld",
        "syzbot acc runs p95 bld",
        "plain acc runs bld",
        "runs/",
        "runs/",
        "told acc runs",
        "runs/"
    );
    println!(
        "{:>5} {:>4} {:>5} {:>5} | {:>24} | {:>24} | {:>17} | {:>6} {:>6} | {:>12} {:>6}",
        "", "", "", "", "", "", "", "syzbot", "plain", "", "syzbot"
    );
    let mut results = Vec::new();
    for (i, row) in rows(args.commits).into_iter().enumerate() {
        let r = run_row(row, args.trials, args.seed, i, &bayes);
        let fmt = |s: &Summary| {
            format!(
                "{:>5.1}% {:>5.1} {:>4} {:>5.1}",
                s.accuracy * 100.0,
                s.mean_runs,
                s.p95_runs,
                s.mean_builds
            )
        };
        println!(
            "{:>5} {:>4.1} {:>4.0}% {:>4.0}% | {:>24} | {:>24} | {:>5.1}% {:>4.1} {:>5.1} | {:>6.2} {:>6.2} | {:>5.1}% {:>5.1} {:>6.2}",
            row.n,
            row.p,
            row.max_false_fail * 100.0,
            row.max_skip * 100.0,
            fmt(&r.bayes),
            fmt(&r.syzbot),
            r.plain.accuracy * 100.0,
            r.plain.mean_runs,
            r.plain.mean_builds,
            r.bayes.mean_runs / r.syzbot.mean_runs.max(1e-9),
            r.bayes.mean_runs / r.plain.mean_runs.max(1e-9),
            r.told.accuracy * 100.0,
            r.told.mean_runs,
            r.told.mean_runs / r.syzbot.mean_runs.max(1e-9),
        );
        results.push(r);
    }
    println!();
    // Targets, checked against the rows above.
    let acc_rows: Vec<&RowResult> = results.iter().filter(|r| r.row.p >= 0.3).collect();
    let min_acc = acc_rows
        .iter()
        .map(|r| r.bayes.accuracy)
        .fold(1.0, f64::min);
    let ratio_rows: Vec<&RowResult> = results.iter().filter(|r| r.row.p <= 0.5).collect();
    let worst_ratio = |runs: fn(&RowResult) -> f64| {
        ratio_rows
            .iter()
            .map(|r| runs(r) / r.syzbot.mean_runs.max(1e-9))
            .fold(0.0, f64::max)
    };
    let max_ratio = worst_ratio(|r| r.bayes.mean_runs);
    let told_ratio = worst_ratio(|r| r.told.mean_runs);
    let det_rows: Vec<&RowResult> = results
        .iter()
        .filter(|r| r.row.p >= 1.0 && r.row.max_skip == 0.0)
        .collect();
    let worst_builds = det_rows
        .iter()
        .map(|r| r.bayes.max_builds as i64 - log2_ceil(r.row.n) as i64)
        .max()
        .unwrap_or(0);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "target accuracy ≥ 99% where p ≥ 0.3: worst {:.1}% ({})",
        min_acc * 100.0,
        verdict(min_acc >= 0.99)
    );
    println!(
        "target runs ≤ 0.6 × syzbot where p ≤ 0.5: worst {:.2} ({}; told the rates: worst {:.2})",
        max_ratio,
        verdict(max_ratio <= 0.6),
        told_ratio
    );
    println!(
        "target builds ≤ ⌈log2 N⌉ + 2 where p = 1 (no skips): worst ⌈log2 N⌉ {:+} ({})",
        worst_builds,
        verdict(worst_builds <= 2)
    );
    println!("took {:.1} s", start.elapsed().as_secs_f64());
    Ok(0)
}

/// Runs `trial(t)` for `t` in `0..trials` on every core, in trial order.
fn par_trials<T: Send>(trials: usize, trial: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, trials.max(1));
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let trial = &trial;
                s.spawn(move || {
                    (w..trials)
                        .step_by(threads)
                        .map(|t| (t, trial(t)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, x)| x).collect()
}

fn onset_name(o: &Onset) -> String {
    match *o {
        Onset::Exponential { mean_s } => format!("exp mean {mean_s:.0}s"),
        Onset::Weibull { shape, scale_s } => format!("weibull k={shape} {scale_s:.0}s"),
        Onset::LogNormal { median_s, sigma } => format!("lognorm {median_s:.0}s s={sigma}"),
    }
}

/// `csdci bench bisect-sim --failure-time`.
fn failure_time(args: &Args) -> crate::Result<u8> {
    let usage = |m: String| crate::Error::Usage(m);
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    let valid = [args.boot_s, args.check_s, args.linger_s, args.settle_s]
        .into_iter()
        .all(ok)
        && args.run_s.is_finite()
        && args.run_s > 0.0;
    if !valid {
        return Err(usage(
            "--boot-s, --check-s, --linger-s and --settle-s must be >= 0 and --run-s > 0".into(),
        ));
    }
    let start = std::time::Instant::now();
    let today = crate::bisect::for_pipeline(Config {
        confidence: args.confidence,
        ..Config::default()
    });
    today
        .validate()
        .map_err(|e| usage(format!("--confidence: {e}")))?;
    if !(args.max_exposure_s.is_finite() && args.max_exposure_s >= 1.0) {
        return Err(usage("--max-exposure-s must be >= 1".into()));
    }
    // As `csdci bisect --policy timed` sets the engine up for the QEMU pipeline.
    let mut new = crate::bisect::policy::timed_config(
        &today,
        args.boot_s,
        crate::bisect::policy::PIPELINE_BUILD_S,
        args.max_exposure_s,
    );
    if let Some(f) = args.tip_fails {
        new.verify_bad_fails = f;
    }
    if let Some(k) = &args.shapes {
        new.shape_grid = k.clone();
    }
    new.run_length = match args.run_length {
        RunLengthArg::Gain => csdci_bisect::RunLength::Gain,
        RunLengthArg::Settle => csdci_bisect::RunLength::Settle,
    };
    new.validate()
        .map_err(|e| usage(format!("--shapes/--confidence: {e}")))?;
    let policies = [
        TimedPolicy::PerRun {
            cfg: today,
            run_s: args.run_s,
            linger_s: args.linger_s,
        },
        TimedPolicy::Syzbot {
            run_s: args.run_s,
            linger_s: args.linger_s,
        },
        TimedPolicy::FailureTime {
            cfg: new.clone(),
            check_s: (args.check_s > 0.0).then_some(args.check_s),
            settle_s: args.settle_s,
        },
    ];
    let sizes = match args.commits {
        Some(n) => vec![n],
        None => vec![16, 64],
    };
    let onsets = [
        Onset::Exponential { mean_s: 8.0 },
        Onset::Exponential { mean_s: 45.0 },
        Onset::Exponential { mean_s: 120.0 },
        Onset::Weibull {
            shape: 0.6,
            scale_s: 40.0,
        },
        Onset::LogNormal {
            median_s: 30.0,
            sigma: 1.0,
        },
    ];
    const MAX_FALSE_RATE: f64 = 2e-4;
    const MAX_SKIP: f64 = 0.1;
    println!(
        "bisect-sim --failure-time: {} trials per row, seed {}; boot {} s per run; confidence {}",
        args.trials, args.seed, args.boot_s, args.confidence
    );
    println!(
        "(culprit uniform; false failures per second uniform up to {MAX_FALSE_RATE:e} on every commit; untestable density uniform up to {:.0}%; a failing run goes on {} s after its failure under today's and syzbot's policies, {} s under the new one)",
        MAX_SKIP * 100.0,
        args.linger_s,
        args.settle_s
    );
    println!(
        "today: the per-run engine as for the QEMU pipeline (tip verified), runs of {} s; syzbot: the tip, then 10 runs of {} s per step (20 once flaky); new: the failure-time engine (shapes {:?}, tip verified until {} failures, run lengths its own ({:?}), should_stop every {} s)",
        args.run_s, args.run_s, new.shape_grid, new.verify_bad_fails, new.run_length, args.check_s
    );
    println!(
        "known: the failure-time engine told the onset's true rate and shape (not for log-normal onsets), the tip still verified: what learning the onset costs is the gap between new and known"
    );
    println!("guest-s = boot + workload seconds per bisection (mean, p90); acc = exact answer");
    println!();
    println!(
        "{:>4} {:>20} | {:>21} | {:>21} | {:>21} | {:>9} {:>9} | {:>14} {:>10}",
        "N",
        "onset",
        "today acc mean p90",
        "syzbot acc mean p90",
        "new acc mean p90",
        "today/new",
        "syzbot/new",
        "known acc mean",
        "today/known"
    );
    let mut row_index = 0u64;
    let mut worst: Option<f64> = None;
    let mut all_acc = true;
    for &n in &sizes {
        for onset in &onsets {
            row_index += 1;
            let seed = args.seed;
            // The engine told the true onset, when it is a Weibull one.
            let known = match *onset {
                Onset::Exponential { mean_s } => Some((1.0, 1.0 / mean_s)),
                Onset::Weibull { shape, scale_s } => Some((shape, 1.0 / scale_s)),
                Onset::LogNormal { .. } => None,
            }
            .map(|(shape, rate)| TimedPolicy::FailureTime {
                cfg: TimedConfig {
                    shape_grid: vec![shape],
                    rate_grid: vec![rate],
                    // Nothing to learn from more tip failures.
                    verify_bad_adaptive: false,
                    ..new.clone()
                },
                check_s: (args.check_s > 0.0).then_some(args.check_s),
                settle_s: args.settle_s,
            });
            let row_policies: Vec<&TimedPolicy> = policies.iter().chain(known.as_ref()).collect();
            let outs: Vec<(TimedHistory, Vec<TimedOutcome>)> = par_trials(args.trials, |t| {
                let base = seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(row_index << 32)
                    .wrapping_add(t as u64);
                let mut rng = ChaCha8Rng::seed_from_u64(base);
                let ff = rng.random_range(0.0..=MAX_FALSE_RATE);
                let skip = rng.random_range(0.0..=MAX_SKIP);
                let h = TimedHistory::random(&mut rng, n, *onset, ff, args.boot_s, skip);
                let o = row_policies
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let mut r = ChaCha8Rng::seed_from_u64(base ^ ((i as u64 + 1) << 56));
                        simulate_timed(p, &h, &mut r)
                    })
                    .collect();
                (h, o)
            });
            let sum = |i: usize| summarize_timed(outs.iter().map(|(h, o)| (h, &o[i])));
            let (a, b, c) = (sum(0), sum(1), sum(2));
            let fmt = |s: &TimedSummary| {
                format!(
                    "{:>5.1}% {:>6.0} {:>6.0}",
                    s.accuracy * 100.0,
                    s.mean_guest_s,
                    s.p90_guest_s
                )
            };
            let ratio = a.mean_guest_s / c.mean_guest_s.max(1e-9);
            let (known, today_known) = match known {
                Some(_) => {
                    let k = sum(3);
                    (
                        format!("{:>5.1}% {:>7.0}", k.accuracy * 100.0, k.mean_guest_s),
                        format!("{:.2}", a.mean_guest_s / k.mean_guest_s.max(1e-9)),
                    )
                }
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:>4} {:>20} | {:>21} | {:>21} | {:>21} | {:>9.2} {:>9.2} | {:>14} {:>10}",
                n,
                onset_name(onset),
                fmt(&a),
                fmt(&b),
                fmt(&c),
                ratio,
                b.mean_guest_s / c.mean_guest_s.max(1e-9),
                known,
                today_known
            );
            worst = Some(worst.map_or(ratio, |w: f64| w.min(ratio)));
            all_acc &= c.accuracy >= args.confidence;
        }
    }
    println!();
    let worst = worst.unwrap_or(0.0);
    println!(
        "target: new ≥ 1.5× fewer guest-seconds than today at ≥ {:.0}% accuracy: worst ratio {:.2}, accuracy {} ({})",
        args.confidence * 100.0,
        worst,
        if all_acc {
            "met in every row"
        } else {
            "MISSED in some row"
        },
        if worst >= 1.5 && all_acc {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("took {:.1} s", start.elapsed().as_secs_f64());
    Ok(0)
}

/// One row of `--workers`: a family of histories and the engine's settings.
struct WorkerRow {
    label: &'static str,
    p: f64,
    max_false_fail: f64,
    max_skip: f64,
    cfg: Config,
}

/// `csdci bench bisect-sim --workers W,...`.
fn workers(args: &Args, given: &[usize]) -> crate::Result<u8> {
    let usage = |m: String| crate::Error::Usage(m);
    let mut ws: Vec<usize> = if given.is_empty() {
        vec![1, 2, 3, 4, 8, 16]
    } else {
        given.to_vec()
    };
    if ws.contains(&0) {
        return Err(usage("--workers: each W must be at least 1".into()));
    }
    ws.push(1);
    ws.sort_unstable();
    ws.dedup();
    let start = std::time::Instant::now();
    let base = Config {
        confidence: args.confidence,
        ..Config::default()
    };
    base.validate()
        .map_err(|e| usage(format!("--confidence: {e}")))?;
    let engine = if args.pipeline {
        crate::bisect::for_pipeline(base)
    } else {
        base
    };
    let n = args.commits.unwrap_or(256);
    let rows = [
        WorkerRow {
            label: "--deterministic",
            p: 1.0,
            max_false_fail: 0.0,
            max_skip: 0.0,
            cfg: crate::bisect::for_deterministic(engine.clone()),
        },
        WorkerRow {
            label: "flake-aware",
            p: 1.0,
            max_false_fail: 0.0,
            max_skip: 0.0,
            cfg: engine.clone(),
        },
        WorkerRow {
            label: "flake-aware",
            p: 1.0,
            max_false_fail: 0.02,
            max_skip: 0.10,
            cfg: engine.clone(),
        },
        WorkerRow {
            label: "flake-aware",
            p: 0.5,
            max_false_fail: 0.0,
            max_skip: 0.0,
            cfg: engine.clone(),
        },
        WorkerRow {
            label: "flake-aware",
            p: 0.5,
            max_false_fail: 0.02,
            max_skip: 0.10,
            cfg: engine.clone(),
        },
    ];
    println!(
        "bisect-sim --workers: N = {n}, {} trials per row and W, seed {}; engine confidence {}, as set up for {}",
        args.trials,
        args.seed,
        args.confidence,
        if args.pipeline {
            "the QEMU pipeline"
        } else {
            "--run"
        }
    );
    println!(
        "rounds = wall-clock rounds (a round's runs go at once on W testers); runs = total runs; ×W1 = W = 1's mean over this W's"
    );
    println!(
        "(eps, skip drawn uniformly up to the row's maximum; the same histories and seeds for every W)"
    );
    println!();
    println!(
        "{:>15} {:>4} {:>5} {:>5} {:>3} | {:>6} {:>7} {:>5} {:>7} {:>6} | {:>9} {:>8}",
        "engine",
        "p",
        "eps≤",
        "skip≤",
        "W",
        "acc",
        "rounds",
        "p95",
        "runs",
        "builds",
        "rounds×W1",
        "log_W+1 N"
    );
    let mut det_ok = true;
    let mut flaky_ratio: Option<(f64, f64)> = None;
    for (ri, row) in rows.iter().enumerate() {
        let mut w1: Option<BatchSummary> = None;
        for &w in &ws {
            let seed = args.seed;
            let outs: Vec<(History, BatchOutcome)> = par_trials(args.trials, |t| {
                let base = seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add((ri as u64 + 100) << 32)
                    .wrapping_add(t as u64);
                let mut rng = ChaCha8Rng::seed_from_u64(base);
                let ff = if row.max_false_fail > 0.0 {
                    rng.random_range(0.0..=row.max_false_fail)
                } else {
                    0.0
                };
                let skip = if row.max_skip > 0.0 {
                    rng.random_range(0.0..=row.max_skip)
                } else {
                    0.0
                };
                let h = History::random(&mut rng, n, row.p, ff, skip);
                let mut r = ChaCha8Rng::seed_from_u64(base ^ (1 << 56));
                let o = simulate_batch(&row.cfg, &h, w, &mut r);
                (h, o)
            });
            let s = summarize_batch(outs.iter().map(|(h, o)| (h, o)));
            let base = w1.get_or_insert_with(|| s.clone()).clone();
            let ratio = base.mean_rounds / s.mean_rounds.max(1e-9);
            let ideal = (n as f64).ln() / ((w + 1) as f64).ln();
            println!(
                "{:>15} {:>4.1} {:>4.0}% {:>4.0}% {:>3} | {:>5.1}% {:>7.1} {:>5} {:>7.1} {:>6.1} | {:>9.2} {:>8.2}",
                row.label,
                row.p,
                row.max_false_fail * 100.0,
                row.max_skip * 100.0,
                w,
                s.accuracy * 100.0,
                s.mean_rounds,
                s.p95_rounds,
                s.mean_runs,
                s.mean_builds,
                ratio,
                ideal
            );
            if ri == 0 && w > 1 {
                // k-ary search: within one round of ⌈log_{W+1} N⌉ on average.
                det_ok &= s.accuracy >= 1.0 && s.mean_rounds <= ideal.ceil() + 1.0;
            }
            if ri == rows.len() - 1 && w == 8 {
                flaky_ratio = Some((ratio, s.accuracy));
            }
        }
        println!();
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "target p = 1 (--deterministic): rounds ≈ log_(W+1) N (k-ary search; mean within ⌈log_(W+1) N⌉ + 1, exact answers): {}",
        verdict(det_ok)
    );
    match flaky_ratio {
        Some((r, acc)) => {
            let wrong = ((1.0 - acc) * args.trials as f64).round();
            println!(
                "target p = 0.5 (eps ≤ 2%, skip ≤ 10%): rounds fall ≥ 2.5× from W = 1 to W = 8 at accuracy ≥ 99%: {r:.2}× at {:.1}%, {wrong} wrong of {} ({})",
                acc * 100.0,
                args.trials,
                verdict(r >= 2.5 && acc >= 0.99)
            );
            if args.trials < 500 {
                println!(
                    "  ({} trials measure a 1% error rate to about ±{:.1}%: --trials 500 for the accuracy)",
                    args.trials,
                    200.0 * (0.01 * 0.99 / args.trials as f64).sqrt()
                );
            }
        }
        None => println!("target p = 0.5: W = 8 not simulated (add it to --workers)"),
    }
    println!("took {:.1} s", start.elapsed().as_secs_f64());
    Ok(0)
}

//! `csdci bench demo`: how close a finished bisection of the real pipeline (the
//! demo's, by default the newest) came to its lower bound, from the journal
//! and the runs table. The lower bound is what a bisector that knew the
//! culprit's failure rate and never ran a commit twice would spend: the cold
//! build, one incremental build per step of the binary search that leads to
//! the culprit, and per step one run: its overhead (boot, guest root), then on
//! a bad commit the mean time to the first failure, on a good one the clean
//! exposure after which a bad commit would have failed with the requested
//! confidence (`ln(1 / (1 - confidence))` mean times to failure, for a
//! constant failure rate).

use super::Cli;
use crate::bisect::report::Report;
use crate::store::Store;

/// Arguments of `csdci bench demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bisection to measure (default: the newest finished one that used the QEMU pipeline).
    #[arg(long, value_name = "ID")]
    pub id: Option<i64>,
    /// Cold build time in seconds, when the runs table has no uncached build of the repository.
    #[arg(long, value_name = "SECONDS")]
    pub cold_build: Option<f64>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Runs `csdci bench demo`.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    let store = Store::open(&cli.data_dir())?;
    let usage = |m: String| crate::Error::Usage(m);
    let b = match args.id {
        Some(id) => store.bisect_get(id)?.ok_or_else(|| {
            usage(format!(
                "bisection {id} not found (see 'csdci bisect list')"
            ))
        })?,
        None => store
            .bisect_list()?
            .into_iter()
            .filter(|b| b.status == "done" && b.tester.contains("\"qemu\""))
            .max_by_key(|b| b.id)
            .ok_or_else(|| {
                usage("no finished QEMU bisection yet: run 'csdci demo' first".into())
            })?,
    };
    let report: Report = b
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(|| usage(format!("bisection {} has no report", b.id)))?;
    let steps = store.bisect_steps(b.id, true)?;
    let secs = |kind: &str, pred: &dyn Fn(&crate::store::bisect::Step) -> bool| -> Vec<f64> {
        steps
            .iter()
            .filter(|s| s.kind == kind && pred(s))
            .filter_map(|s| s.seconds)
            .collect()
    };
    let bisect_time: f64 = steps
        .iter()
        .filter(|s| s.kind == "build" || s.kind == "run")
        .filter_map(|s| s.seconds)
        .sum();
    let builds = secs("build", &|s| s.outcome.as_deref() == Some("ready"));
    // Incremental builds: those that compiled something (cache hits take < 1 s).
    let incremental: Vec<f64> = builds.iter().copied().filter(|s| *s >= 1.0).collect();
    let runs: Vec<&crate::store::bisect::Step> = steps
        .iter()
        .filter(|s| s.kind == "run" && s.status == "done")
        .collect();
    let fail_times: Vec<f64> = runs
        .iter()
        .filter(|s| s.outcome.as_deref() == Some("fail"))
        .filter_map(|s| s.failed_at_s)
        .collect();
    // A run's overhead: its wall time less its workload (boot, guest root,
    // shutdown); the smallest seen.
    let overhead = runs
        .iter()
        .filter_map(|s| Some(s.seconds? - s.exposure_s?))
        .filter(|x| *x >= 0.0)
        .reduce(f64::min);
    let cold = args.cold_build.or_else(|| {
        let repo_runs = store.recent_runs(10_000).ok()?;
        repo_runs
            .iter()
            .filter(|r| r.repo == b.repo && r.build_cached == Some(false))
            .filter_map(|r| r.build_seconds)
            .reduce(f64::max)
    });
    // The candidates: the commits between the good revisions and the bad one,
    // oldest first.
    let mut range = vec![
        "rev-list".to_string(),
        "--reverse".into(),
        "--topo-order".into(),
        report.bad.clone(),
    ];
    range.extend(report.good.iter().map(|g| format!("^{g}")));
    let range: Vec<&str> = range.iter().map(String::as_str).collect();
    let candidates: Vec<String> = crate::vcs::git(std::path::Path::new(&b.repo), &range)?
        .lines()
        .map(str::to_string)
        .collect();
    let n = candidates.len().max(2);
    let culprit = report
        .culprit
        .as_ref()
        .and_then(|c| candidates.iter().position(|x| *x == c.sha));
    let confidence = serde_json::from_str::<crate::bisect::driver::Settings>(&b.settings)
        .map(|s| s.engine.confidence)
        .unwrap_or(report.confidence);
    println!("bisection #{} of {}", b.id, b.repo);
    println!("  time to culprit (builds + runs)  {bisect_time:8.0} s");
    println!("  commits in range (N)             {n:8}");
    println!("  builds                           {:8}", report.builds);
    println!("  runs                             {:8}", report.runs);
    println!(
        "  confidence                       {:8.4} (asked {confidence})",
        report.confidence
    );
    let Some(inc) = mean(&incremental).or(mean(&builds)) else {
        println!("  no build in the journal: no lower bound");
        return Ok(0);
    };
    let Some(ttf) = mean(&fail_times) else {
        println!("  no failing run with a failure time in the journal: no lower bound");
        return Ok(0);
    };
    let Some(culprit) = culprit else {
        println!("  no culprit in the range: no lower bound");
        return Ok(0);
    };
    let Some(cold) = cold else {
        println!("  no uncached build of this repository recorded: pass --cold-build SECONDS");
        return Ok(0);
    };
    let overhead = overhead.unwrap_or(0.0);
    let (bad_steps, good_steps) = search_path(n, culprit);
    let clean = clean_exposure(ttf, confidence);
    let steps_lb = bad_steps + good_steps;
    let lb = cold
        + steps_lb as f64 * (inc + overhead)
        + bad_steps as f64 * ttf
        + good_steps as f64 * clean;
    println!("  cold build                       {cold:8.0} s");
    println!("  incremental build (mean)         {inc:8.1} s");
    println!("  run overhead (boot, least)       {overhead:8.1} s");
    println!(
        "  time to first failure (mean of {}) {ttf:6.1} s",
        fail_times.len()
    );
    println!("  clean exposure for {confidence}        {clean:8.1} s");
    println!(
        "  binary search to the culprit     {steps_lb:8} steps ({bad_steps} bad, {good_steps} good)"
    );
    println!(
        "  lower bound                      {lb:8.0} s (cold + {steps_lb} x (build + overhead) + {bad_steps} x ttf + {good_steps} x clean)"
    );
    // A bisection whose base was built before it started (by an earlier run)
    // did not pay the cold build: add it, so the ratio compares like with like.
    let paid_cold = builds.iter().any(|s| *s >= cold * 0.5);
    let total = if paid_cold {
        bisect_time
    } else {
        bisect_time + cold
    };
    println!(
        "  time to culprit incl. cold build {total:8.0} s{}",
        if paid_cold {
            ""
        } else {
            " (cold build done earlier, added)"
        }
    );
    println!("  ratio to lower bound             {:8.2}", total / lb);
    Ok(0)
}

/// The steps of a plain binary search over `n` candidates (the last one bad)
/// whose first bad one is `culprit`: how many tested bad, how many good.
fn search_path(n: usize, culprit: usize) -> (usize, usize) {
    // The culprit lies in lo..=hi; hi is known bad.
    let (mut lo, mut hi) = (0usize, n - 1);
    let (mut bad, mut good) = (0, 0);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if mid >= culprit {
            bad += 1;
            hi = mid;
        } else {
            good += 1;
            lo = mid + 1;
        }
    }
    (bad, good)
}

/// Seconds of clean workload after which a commit failing at a constant rate
/// (mean time to failure `ttf`) would have failed with probability
/// `confidence`.
fn clean_exposure(ttf: f64, confidence: f64) -> f64 {
    ttf * (1.0 / (1.0 - confidence.clamp(0.5, 0.999_999))).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_takes_log2_steps_and_splits_them_by_the_culprit() {
        for n in [2usize, 3, 16, 60, 61, 1000] {
            for culprit in 0..n {
                let (bad, good) = search_path(n, culprit);
                let steps = bad + good;
                let log = (n as f64).log2();
                assert!(
                    steps as f64 >= log.floor() && steps as f64 <= log.ceil(),
                    "n {n} culprit {culprit}: {steps} steps"
                );
            }
        }
        // The tip is the culprit: every step is good.
        assert_eq!(search_path(16, 15), (0, 4));
        // The first commit is: every step is bad.
        assert_eq!(search_path(16, 0), (4, 0));
    }

    #[test]
    fn clean_exposure_is_what_the_confidence_needs() {
        // A bad commit with mean 10 s survives 46 s with probability 1%.
        let t = clean_exposure(10.0, 0.99);
        assert!(((-t / 10.0f64).exp() - 0.01).abs() < 1e-9, "{t}");
    }
}

//! `csdci bench demo`: how close a finished bisection of the real pipeline (the
//! demo's, by default the newest) came to the lower bound
//! `cold build + ⌈log2 N⌉ × (incremental build + time to first failure)`,
//! from the journal and the runs table.

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
    let fails = secs("run", &|s| s.outcome.as_deref() == Some("fail"));
    let time_to_failure = fails.iter().copied().fold(f64::INFINITY, f64::min);
    let cold = args.cold_build.or_else(|| {
        let repo_runs = store.recent_runs(10_000).ok()?;
        repo_runs
            .iter()
            .filter(|r| r.repo == b.repo && r.build_cached == Some(false))
            .filter_map(|r| r.build_seconds)
            .reduce(f64::max)
    });
    // N: the commits between the good revisions and the bad one.
    let mut range = vec!["rev-list".to_string(), "--count".into(), report.bad.clone()];
    range.extend(report.good.iter().map(|g| format!("^{g}")));
    let range: Vec<&str> = range.iter().map(String::as_str).collect();
    let n: usize = crate::vcs::git(std::path::Path::new(&b.repo), &range)?
        .trim()
        .parse()
        .unwrap_or(2);
    let n = n.max(2);
    let steps_lb = (n as f64).log2().ceil();
    println!("bisection #{} of {}", b.id, b.repo);
    println!("  time to culprit (builds + runs)  {bisect_time:8.0} s");
    println!("  commits in range (N)             {n:8}");
    println!("  builds                           {:8}", report.builds);
    println!("  runs                             {:8}", report.runs);
    println!(
        "  confidence                       {:8.4}",
        report.confidence
    );
    let Some(inc) = mean(&incremental).or(mean(&builds)) else {
        println!("  no build in the journal: no lower bound");
        return Ok(0);
    };
    if !time_to_failure.is_finite() {
        println!("  no failing run in the journal: no lower bound");
        return Ok(0);
    }
    let Some(cold) = cold else {
        println!("  no uncached build of this repository recorded: pass --cold-build SECONDS");
        return Ok(0);
    };
    let lb = cold + steps_lb * (inc + time_to_failure);
    println!("  cold build                       {cold:8.0} s");
    println!("  incremental build (mean)         {inc:8.1} s");
    println!("  time to first failure (min run)  {time_to_failure:8.1} s");
    println!("  lower bound (cold + {steps_lb:.0} x (inc + ttf)) {lb:5.0} s");
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

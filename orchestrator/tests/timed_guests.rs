//! `csdci bisect --policy timed` with the QEMU pipeline: real kernels (the
//! short range of the demo history that tests/local_parallel.rs bisects: the
//! commit before the planted regression, the regression and the two after
//! it; from the shared artifact cache, so this file runs after the tests that
//! build them), real guests, the console judged by the CSD-lock predicate.
//! Checked as a user would read `csdci bisect log`: the culprit is the planted
//! commit; every run journalled its workload seconds; a failing run ended
//! within a few seconds of the CSD-lock report (the tester's settle time, not
//! the configured `--stop-after-crash` linger nor the run's end); and the
//! report's `guest_time` adds up the journal.
//!
//! Cost here (2 cores, TCG): about 1-2 minutes (guests only; the kernels are
//! cached).

use std::time::Duration;

use serde_json::Value;

mod common;

use common::{bisect_log, csdci_within, kernel_repo, short_demo_range};

/// The linger a failing run would otherwise get (`--stop-after-crash`).
const LINGER_S: f64 = 15.0;

#[test]
fn timed_policy_on_real_guests_ends_failing_runs_at_the_report() {
    let (regression, good, bad) = short_demo_range();
    let repo = kernel_repo();
    let tree = repo.to_string_lossy().to_string();
    let linger = format!("{LINGER_S}");
    let args = [
        "bisect",
        "--tree",
        &tree,
        &good,
        &bad,
        "--policy",
        "timed",
        "--verify-bad",
        "6",
        "--no-revert-check",
        "--max-runs",
        "24",
        "--json",
        "--vcpus",
        "8",
        "--memory",
        "1G",
        "--duration",
        "30",
        "--stop-after-crash",
        &linger,
        "--scftorture",
        "nthreads=16 weight_single=1",
        "--predicate",
        "csd",
    ];
    let (code, out) = csdci_within(&args, Duration::from_secs(1200));
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["status"], "culprit", "{r:#}");
    assert_eq!(r["culprit"]["sha"], regression.as_str(), "{r:#}");
    assert_eq!(code, 0, "{r:#}");
    let log = bisect_log(&r);
    let runs: Vec<&Value> = log["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run" && s["status"] == "done")
        .collect();
    let (mut fails, mut exposure) = (0, 0.0);
    for s in &runs {
        let e = s["exposure_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("no exposure journalled: {s:#}"));
        exposure += e;
        assert!(e <= 30.0 + 5.0, "a run past its --duration: {s:#}");
        if s["outcome"] == "fail" {
            fails += 1;
            let at = s["failed_at_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("a failure without its time: {s:#}"));
            // Ended at the report plus the settle time (console and QEMU's
            // exit add a little), long before the linger would have.
            let after = e - at;
            assert!(
                (0.0..LINGER_S - 5.0).contains(&after),
                "a failing run went on {after:.1} s after its CSD-lock report: {s:#}"
            );
            assert!(
                s["titles"].as_array().is_some_and(|t| t
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| t.contains("csd")))),
                "{s:#}"
            );
        }
    }
    // The tip was verified (it failed), and the culprit named only once its
    // kernel had failed: run as itself, or as a later commit that builds the
    // same kernel (every candidate here is bad: the good end is the commit
    // before the regression, and the fillers after it change comments).
    assert!(fails >= 2, "{log:#}");
    let steps = log["steps"].as_array().unwrap();
    let same = steps
        .iter()
        .find(|s| s["kind"] == "build" && s["commit"] == regression.as_str())
        .and_then(|s| s["same_as"].as_str())
        .unwrap_or(&regression);
    assert!(
        runs.iter()
            .any(|s| s["commit"] == same && s["outcome"] == "fail"),
        "the culprit's kernel never failed: {log:#}"
    );
    let g = &r["guest_time"];
    assert_eq!(g["policy"], "timed", "{r:#}");
    assert!(
        (g["exposure_s"].as_f64().unwrap() - exposure).abs() < 1e-3,
        "{g} vs {exposure}"
    );
}

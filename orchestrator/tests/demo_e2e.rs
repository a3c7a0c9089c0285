//! The demo end to end, as README command 1 runs it but on a shorter history:
//! a real git history made from Debian's linux-source-6.12 with the planted
//! CSD-lock regression, real kernel builds, real QEMU guests running scftorture,
//! the Bayesian bisection, the revert check and the fix validation.
//!
//! Shares the kernel repository (`/var/tmp/csdci-linux-6.12`, or
//! `CSDCI_TEST_KERNEL_REPO`) and the data directory (`CSDCI_TEST_DATA_DIR`, else
//! `<target>/tmp/csdci-run-tests`) with `run_real.rs`, so its base commit is
//! already built when this test runs.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::kernel_repo as repo;

/// Both tests write the demo history of the same repository: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

use common::csdci_within as csdci;

/// `csdci demo --prepare-only --json`: the history JSON.
fn prepare_only(dir: &str, commits: &str, seed: &str) -> Value {
    let args = ["demo", "--dir", dir, "--commits", commits, "--seed", seed];
    let (code, out) = csdci(
        &[&args[..], &["--prepare-only", "--json"]].concat(),
        Duration::from_secs(1200),
    );
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).expect("json")
}

#[test]
fn the_same_seed_writes_the_same_history() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo();
    let d = dir.to_string_lossy().to_string();
    let first = prepare_only(&d, "8", "11");
    // Forget the recorded history and write it again from scratch.
    std::fs::remove_file(dir.join(".git/csdci-demo.json")).expect("state file");
    let second = prepare_only(&d, "8", "11");
    assert_eq!(
        first["history"], second["history"],
        "same seed, same commits"
    );
    let h = &first["history"];
    let regression = h["regression"].as_str().unwrap();
    assert_eq!(
        git(
            &dir,
            &[
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                regression
            ]
        ),
        "kernel/smp.c"
    );
    assert!(git(&dir, &["show", regression]).contains("get_single_csd_data(cpu)"));
    assert_eq!(
        git(&dir, &["rev-list", "--count", "demo-good..demo-bad"]),
        "8"
    );
    assert!(git(&dir, &["show", "fix"]).contains("try_cmpxchg_acquire"));
    assert!(!h["broken"].as_array().unwrap().is_empty());
}

#[test]
fn demo_bisects_to_the_planted_regression_and_validates_the_fix() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo();
    let d = dir.to_string_lossy().to_string();
    let (code, out) = csdci(
        &[
            "demo",
            "--dir",
            &d,
            "--commits",
            "16",
            "--seed",
            "5",
            "--json",
            "--fix-runs",
            "2",
            "--keep",
            "--vcpus",
            "8",
            "--duration",
            "20",
        ],
        Duration::from_secs(40 * 60),
    );
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}), exit {code}: {out}"));
    let regression = v["history"]["regression"].as_str().expect("regression sha");
    let b = &v["bisection"];
    assert_eq!(
        b["culprit"]["sha"].as_str(),
        Some(regression),
        "culprit: {b:#}"
    );
    assert!(b["confidence"].as_f64().unwrap() >= 0.99, "{b:#}");
    assert_eq!(v["culprit_matches_regression"], Value::Bool(true));
    // The bad tip was reproduced first (and its failures were evidence).
    let tip = &b["tested"][0];
    assert_eq!(
        tip["commit"],
        git(&dir, &["rev-parse", "demo-bad"]),
        "{b:#}"
    );
    assert!(tip["fails"].as_u64().unwrap() >= 1, "{tip}");
    // The commits that do not compile were never counted as evidence.
    for broken in v["history"]["broken"].as_array().unwrap() {
        let tested = b["tested"].as_array().unwrap();
        if let Some(t) = tested.iter().find(|t| t["commit"] == *broken) {
            assert_eq!(
                t["fails"].as_u64(),
                Some(0),
                "broken commit counted as failing: {t}"
            );
        }
    }
    let fix = &v["fix_validation"];
    assert_eq!(fix["fails"].as_u64(), Some(0), "{fix}");
    assert_eq!(fix["passed"], Value::Bool(true));
    assert_eq!(code, 0, "exit code");
}

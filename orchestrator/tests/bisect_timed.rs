//! `csdci bisect --policy timed` end to end: real git repositories, `--run`
//! scripts whose bad commits fail a fraction of a second into the run and
//! whose good commits run clean until csdci stops them (it tells them the
//! longest run in `CSDCI_MAX_EXPOSURE_S`), driven through the `csdci` binary.
//! Checks the culprit, the journalled exposure and first-failure times, that
//! clean runs end early, and that kill -9 in a run then `--resume` repeats no
//! finished run and keeps the journal as it was. Cost: about 20-30 s here
//! (real seconds of clean runs; no kernels, no guests).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::repo::*;
use serde_json::Value;

/// Bad commits fail after `fail_s` seconds (exit 1); good ones run clean
/// until stopped (or for `CSDCI_MAX_EXPOSURE_S`); each run first appends
/// "commit attempt good|bad" to `log`.
fn timed_script(log: &Path, fail_s: f64) -> String {
    format!(
        "test -e broken && exit 125; \
         if grep -q good state; then s=good; else s=bad; fi; \
         echo \"$CSDCI_COMMIT $CSDCI_ATTEMPT $s\" >> {}; \
         [ $s = good ] && exec sleep \"$CSDCI_MAX_EXPOSURE_S\"; \
         sleep {fail_s}; exit 1",
        log.display()
    )
}

const MAX: f64 = 30.0;

fn timed_args(tree: &str, script: &str) -> Vec<String> {
    [
        "bisect",
        "base",
        "main",
        "--tree",
        tree,
        "--run",
        script,
        "--json",
        "--policy",
        "timed",
        "--max-exposure",
        "30",
        "--verify-bad",
        "4",
        "--no-revert-check",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A finished run step: (id, commit, attempt, outcome, exposure, failed at).
type DoneRun = (i64, String, u64, String, Option<f64>, Option<f64>);

/// The finished run steps of bisection 1.
fn done_runs(r: &Repo) -> Vec<DoneRun> {
    let out = r.csdci(&["bisect", "log", "1", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run" && s["status"] == "done")
        .map(|s| {
            (
                s["id"].as_i64().unwrap(),
                s["commit"].as_str().unwrap().to_string(),
                s["attempt"].as_u64().unwrap(),
                s["outcome"].as_str().unwrap().to_string(),
                s["exposure_s"].as_f64(),
                s["failed_at_s"].as_f64(),
            )
        })
        .collect()
}

#[test]
fn timed_policy_finds_the_culprit_with_journalled_exposures_and_short_clean_runs() {
    let (r, shas) = Repo::linear(16, 11, |_| false);
    let runlog = r.path.parent().unwrap().join("runs.log");
    let tree = r.path.to_string_lossy().to_string();
    let args = timed_args(&tree, &timed_script(&runlog, 0.3));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = r.csdci(&args);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["culprit"]["sha"], shas[10], "{v}");
    let runs = done_runs(&r);
    assert_eq!(runs.len() as u64, v["runs"].as_u64().unwrap(), "{v}");
    let mut clean_short = 0;
    for (_, commit, _, outcome, exposure, failed_at) in &runs {
        let e = exposure.unwrap_or_else(|| panic!("no exposure journalled: {runs:?}"));
        let bad = shas[10..].contains(commit);
        match outcome.as_str() {
            "fail" => {
                assert!(bad, "a good commit failed: {runs:?}");
                let at = failed_at.unwrap();
                assert!(at <= e && (0.2..10.0).contains(&at), "{at} of {e}");
            }
            "pass" => {
                assert!(failed_at.is_none());
                assert!(
                    e < MAX - 1.0,
                    "a clean run went the whole {MAX} s: {runs:?}"
                );
                clean_short += 1;
            }
            o => panic!("{o}: {runs:?}"),
        }
    }
    // The good side was run and ended early every time.
    assert!(clean_short >= 2, "{runs:?}");
    let g = &v["guest_time"];
    assert_eq!(g["policy"], "timed", "{v}");
    assert_eq!(g["measured_runs"].as_u64(), v["runs"].as_u64());
    let total: f64 = runs.iter().map(|r| r.4.unwrap()).sum();
    assert!(
        (g["exposure_s"].as_f64().unwrap() - total).abs() < 1e-6,
        "{g}"
    );
    assert!(g["mttf_s"].as_f64().unwrap() < 5.0, "{g}");
}

#[test]
fn kill_9_in_a_timed_run_then_resume_repeats_nothing() {
    let (r, shas) = Repo::linear(16, 6, |_| false);
    let runlog = r.path.parent().unwrap().join("runs.log");
    let tree = r.path.to_string_lossy().to_string();
    let args = timed_args(&tree, &timed_script(&runlog, 0.3));
    let mut child = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Wait for a clean run (a good commit) under way after the tip's runs.
    let start = Instant::now();
    loop {
        let l = lines(&runlog);
        if l.len() > 4 && l.last().is_some_and(|x| x.ends_with("good")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{l:?}");
        assert!(child.try_wait().unwrap().is_none(), "finished: {l:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL, half a second into a clean run
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = done_runs(&r);
    assert!(before.len() >= 4, "{before:?}");
    let out = r.csdci(&["bisect", "--resume", "1", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["culprit"]["sha"], shas[5], "{v}");
    let after = done_runs(&r);
    // What finished before the kill is in the journal as it was.
    assert_eq!(&after[..before.len()], &before[..], "{after:?}");
    // No finished run was made again (the killed one was not finished).
    let mut seen = HashSet::new();
    for (_, c, a, ..) in &after {
        assert!(seen.insert((c.clone(), *a)), "run repeated: {c} {a}");
    }
    // Every run the scripts started is a finished step, but the killed one.
    assert_eq!(lines(&runlog).len(), after.len() + 1, "{after:?}");
    let out = r.csdci(&["bisect", "log", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"));
    assert_eq!(
        v["guest_time"]["measured_runs"].as_u64(),
        v["runs"].as_u64()
    );
}

#[test]
fn timed_policy_refuses_what_it_cannot_do() {
    let (r, _) = Repo::linear(4, 2, |_| false);
    for (extra, needle) in [
        (vec!["--max-exposure", "30"], "--policy timed"),
        (
            vec!["--policy", "timed", "--deterministic"],
            "--deterministic",
        ),
        (
            vec!["--policy", "timed", "--max-exposure", "0"],
            "--max-exposure",
        ),
    ] {
        let tree = r.path.to_string_lossy().to_string();
        let mut args = vec!["bisect", "base", "main", "--tree", &tree, "--run", "true"];
        args.extend(extra.iter().copied());
        let out = r.csdci(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

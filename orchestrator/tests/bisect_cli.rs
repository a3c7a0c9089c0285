//! `csdci bisect` end to end: real git repositories made in a temp dir, tested by
//! `--run` scripts, driven through the `csdci` binary.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::repo::*;
use serde_json::Value;

#[test]
fn deterministic_costs_no_more_builds_than_git_bisect() {
    // (256, 256): every commit tested passes; the engine once spent a ninth build.
    for (n, culprit) in [(100, 37), (64, 64), (30, 1), (256, 256)] {
        let (r, shas) = Repo::linear(n, culprit, |_| false);
        let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &[]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["culprit"]["sha"], shas[culprit - 1], "n={n}: {v}");
        assert_eq!(v["culprit"]["subject"], format!("commit {culprit}"));
        assert_eq!(v["culprit"]["author"], "Ada Tester <ada@example.org>");
        let builds = v["builds"].as_u64().unwrap();
        assert!(
            builds <= log2_ceil(n),
            "n={n} culprit={culprit}: {builds} builds > ⌈log2 {n}⌉"
        );
        assert!(v["confidence"].as_f64().unwrap() >= 0.99);
        assert_eq!(v["revert_check"]["status"], "fixes", "{v}");
        let fixes = v["fixes"].as_str().unwrap();
        assert_eq!(
            fixes,
            format!("Fixes: {} (\"commit {culprit}\")", &shas[culprit - 1][..12])
        );
    }
}

#[test]
fn culprit_right_after_good_and_right_before_bad_with_text_report() {
    for culprit in [1, 40] {
        let (r, shas) = Repo::linear(40, culprit, |_| false);
        let (code, text) = r.bisect_text("base", "main", DETERMINISTIC, &[]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(&format!("first bad commit: {}", shas[culprit - 1])),
            "{text}"
        );
        assert!(
            text.contains(&format!("Fixes: {}", &shas[culprit - 1][..12])),
            "{text}"
        );
        assert!(text.contains("Author: Ada Tester"), "{text}");
    }
}

#[test]
fn flaky_scripts_find_the_culprit() {
    for (percent, n, culprit) in [(80, 60, 23), (50, 60, 41), (30, 40, 17)] {
        let (r, shas) = Repo::linear(n, culprit, |_| false);
        let (code, v) = r.bisect_json(
            "base",
            "main",
            &flaky_script(percent),
            &["--confidence", "0.999", "--no-revert-check"],
        );
        assert_eq!(code, 0, "p={percent}%: {v}");
        assert_eq!(v["culprit"]["sha"], shas[culprit - 1], "p={percent}%: {v}");
        let tested = v["tested"].as_array().unwrap();
        let fails: u64 = tested.iter().map(|t| t["fails"].as_u64().unwrap()).sum();
        assert!(fails >= 2, "{v}");
        assert_eq!(v["revert_check"]["status"], "not_run");
    }
}

#[test]
fn unbuildable_stretch_is_stepped_around_or_reported_as_a_set() {
    // Culprit outside the stretch: still isolated.
    let (r, shas) = Repo::linear(50, 30, |i| (20..=26).contains(&i));
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &["--no-revert-check"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], shas[29]);
    // Culprit inside: the set of commits no test can tell apart, like git.
    let (r, shas) = Repo::linear(50, 23, |i| (20..=26).contains(&i));
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &[]);
    assert_eq!(code, 1, "{v}");
    assert!(v["culprit"].is_null());
    assert_eq!(v["status"], "not_isolated");
    let set: Vec<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = (20..=27).map(|i| shas[i - 1].as_str()).collect();
    assert_eq!(set, expected, "{v}");
    assert!(
        v["tested"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["untestable"].as_str().is_some_and(|s| s.contains("125")))
    );
}

#[test]
fn merges_descend_into_the_branch_unless_first_parent() {
    let r = Repo::new();
    for i in 1..=10 {
        r.commit(i, false, false);
    }
    let fork = git(&r.path, &["rev-parse", "HEAD"]);
    // Main line goes on (good), a side branch brings the culprit.
    for i in 11..=20 {
        r.commit(i, false, false);
    }
    git(&r.path, &["checkout", "-q", "-b", "side", &fork]);
    let mut side = Vec::new();
    for i in 101..=112 {
        side.push(r.commit(i, i >= 107, false));
    }
    git(&r.path, &["checkout", "-q", "main"]);
    git(
        &r.path,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-X",
            "theirs",
            "side",
            "-m",
            "Merge branch side",
        ],
    );
    let merge = git(&r.path, &["rev-parse", "HEAD"]);
    for i in 21..=25 {
        std::fs::write(r.path.join(format!("f{i}")), "x\n").unwrap();
        git(&r.path, &["add", "-A"]);
        git(&r.path, &["commit", "-qm", &format!("commit {i}")]);
    }
    assert_eq!(
        std::fs::read_to_string(r.path.join("state")).unwrap(),
        "bad\n"
    );
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], side[6], "{v}");
    assert_eq!(v["culprit"]["subject"], "commit 107");
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &["--first-parent"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], merge, "{v}");
}

#[test]
fn json_report_has_the_documented_fields() {
    let (r, shas) = Repo::linear(20, 8, |_| false);
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &[]);
    assert_eq!(code, 0);
    for field in [
        "culprit",
        "confidence",
        "candidates",
        "tested",
        "builds",
        "runs",
        "revert_check",
        "fixes",
        "titles",
    ] {
        assert!(v.get(field).is_some(), "missing {field}: {v}");
    }
    let tested = v["tested"].as_array().unwrap();
    for t in tested {
        for f in ["commit", "runs", "fails", "titles"] {
            assert!(t.get(f).is_some(), "tested entry missing {f}: {t}");
        }
    }
    let runs: u64 = tested.iter().map(|t| t["runs"].as_u64().unwrap()).sum();
    assert_eq!(runs, v["runs"].as_u64().unwrap());
    let culprit_entry = tested.iter().find(|t| t["commit"] == shas[7]).unwrap();
    assert_eq!(culprit_entry["fails"], culprit_entry["runs"]);
    // The journal can be shown and listed.
    let out = r.csdci(&["bisect", "log", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("posterior:"), "{log}");
    assert!(log.contains(&format!("Fixes: {}", &shas[7][..12])), "{log}");
    let out = r.csdci(&["bisect", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("culprit {}", &shas[7][..12])));
}

#[test]
fn bad_arguments_exit_3_with_one_clear_line() {
    let (r, _) = Repo::linear(5, 3, |_| false);
    let tree = r.path.to_string_lossy().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["bisect", "--tree", &tree, "--run", "true"],
            "give <good> <bad>",
        ),
        (
            vec![
                "bisect",
                "base",
                "nosuchrev",
                "--tree",
                &tree,
                "--run",
                "true",
            ],
            "nosuchrev",
        ),
        (vec!["bisect", "base", "main", "--tree", &tree], "--run"),
        (
            vec![
                "bisect",
                "base",
                "main",
                "--tree",
                &tree,
                "--run",
                "true",
                "--predicate",
                "title:(",
            ],
            "bad regex",
        ),
        (
            vec![
                "bisect",
                "base",
                "main",
                "--tree",
                &tree,
                "--run",
                "true",
                "--confidence",
                "1.5",
            ],
            "--confidence",
        ),
        (
            vec!["bisect", "main", "base", "--tree", &tree, "--run", "true"],
            "swap",
        ),
        (vec!["bisect", "--resume", "42"], "not found"),
        (vec!["bisect", "log", "42"], "not found"),
        (
            vec![
                "bisect",
                "base",
                "main",
                "--tree",
                "/nonexistent",
                "--run",
                "true",
            ],
            "/nonexistent",
        ),
    ];
    for (args, needle) in cases {
        let out = r.csdci(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn kill_9_then_resume_loses_and_repeats_no_finished_run() {
    let (r, shas) = Repo::linear(60, 29, |_| false);
    let runlog = r.path.parent().unwrap().join("runs.log");
    // Each run takes a while and appends "commit attempt" when it finishes.
    let script = recorded(&runlog, 0.15, &flaky_script(70));
    let tree = r.path.to_string_lossy().to_string();
    let mut child = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args([
            "bisect", "base", "main", "--tree", &tree, "--run", &script, "--json",
        ])
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
    let start = Instant::now();
    while lines(&runlog).len() < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "runs did not start"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A second csdci may not drive the same bisection meanwhile.
    let busy = r.csdci(&["bisect", "--resume", "1", "--json"]);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert_eq!(busy.status.code(), Some(75), "{err}");
    assert!(err.contains("being run by another csdci process"), "{err}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the running one goes on"
    );
    let status = |r: &Repo| -> Value {
        let out = r.csdci(&["bisect", "list", "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0]["status"].clone()
    };
    assert_eq!(status(&r), "running");
    // Mid-run: the next script is sleeping.
    std::thread::sleep(Duration::from_millis(60));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = lines(&runlog).len();
    assert!(before >= 8);
    // Killed before it could say so: listed as stopped, not running.
    assert_eq!(status(&r), "stopped");
    let out = r.csdci(&["bisect", "--resume", "1", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["culprit"]["sha"], shas[28], "{v}");
    let all = lines(&runlog);
    let mut seen = std::collections::HashSet::new();
    for l in &all {
        assert!(seen.insert(l.clone()), "run repeated after resume: {l}");
    }
    // Every finished run is in the report (bisection runs + revert-check runs).
    let counted = v["runs"].as_u64().unwrap() + v["revert_check"]["runs"].as_u64().unwrap();
    assert_eq!(all.len() as u64, counted, "{v}");
    // The journal says it resumed: the run killed mid-way is marked interrupted.
    let out = r.csdci(&["bisect", "log", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"));
}

#[test]
fn revert_check_says_when_the_revert_does_not_apply() {
    let (r, shas) = Repo::linear(20, 9, |_| false);
    // A later commit edits the culprit's line again: its revert conflicts.
    std::fs::write(r.path.join("state"), "bad, and more\n").unwrap();
    git(&r.path, &["commit", "-qam", "commit 21"]);
    let (code, v) = r.bisect_json("base", "main", "! grep -q bad state", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], shas[8]);
    assert_eq!(v["revert_check"]["status"], "does_not_apply", "{v}");
    assert!(
        v["revert_check"]["message"]
            .as_str()
            .unwrap()
            .contains("could not revert")
    );
}

#[test]
fn exit_128_aborts() {
    let (r, _) = Repo::linear(10, 5, |_| false);
    let tree = r.path.to_string_lossy().to_string();
    let out = r.csdci(&[
        "bisect", "base", "main", "--tree", &tree, "--run", "exit 130",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("aborted"), "{err}");
}

#[test]
fn verify_bad_tests_the_tip_first_and_flaky_bisection_still_finds_the_culprit() {
    let (r, shas) = Repo::linear(40, 29, |_| false);
    let seen = r.path.parent().unwrap().join("seen");
    let script = recorded(&seen, 0.0, &flaky_script(70));
    let (code, v) = r.bisect_json(
        "base",
        "main",
        &script,
        &[
            "--verify-bad",
            "20",
            "--confidence",
            "0.999",
            "--no-revert-check",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], shas[28], "{v}");
    let first = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        first.lines().next(),
        Some(format!("{} 0", shas[39]).as_str()),
        "the bad tip is run first"
    );
    let tip = v["tested"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["commit"] == shas[39])
        .expect("the tip is among the tested commits");
    assert!(tip["fails"].as_u64().unwrap() >= 1, "{tip}");
}

#[test]
fn a_bad_tip_that_never_fails_is_reported_as_not_reproduced() {
    let (r, shas) = Repo::linear(12, 5, |_| false);
    // The bug is gone on this machine: every run passes.
    let (code, v) = r.bisect_json("base", "main", "exit 0", &["--verify-bad", "6"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "not_reproduced", "{v}");
    assert_eq!(v["stop_reason"], "not_reproduced");
    assert!(v["culprit"].is_null());
    assert_eq!(v["runs"], 6, "only the tip's verification runs: {v}");
    assert_eq!(v["tested"][0]["commit"], shas[11]);
    assert_eq!(v["revert_check"]["status"], "not_run");
    // The text report says so, and what to try.
    let (code, text) = r.bisect_text("base", "main", "exit 0", &["--verify-bad", "3"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "the bad revision {} did not fail in 3 runs: nothing to bisect",
            &shas[11][..12]
        )),
        "{text}"
    );
    assert!(text.contains("(bad tip)"), "{text}");
}

//! Field-test findings about `csdci bisect --run` (issue 10, items 1-4, 6, 7,
//! 9 and 11): ordinary mistakes must never give a confident wrong culprit, the
//! user's repository is never written to, and a deterministic test costs what
//! `git bisect run` costs. Real git repositories, the real `csdci` binary.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::repo::*;
use serde_json::Value;

/// A 20-commit history whose commit 10 adds a file `BUG`.
fn bug_history() -> (Repo, Vec<String>) {
    let r = Repo::new();
    let shas = (1..=20)
        .map(|i| {
            if i == 10 {
                std::fs::write(r.path.join("BUG"), "yes\n").unwrap();
            }
            r.commit(i, false, false)
        })
        .collect();
    (r, shas)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `csdci ARGS` started from `cwd`.
fn csdci_in(r: &Repo, cwd: &Path, args: &[&str]) -> Output {
    Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("csdci runs")
}

fn bisections(r: &Repo) -> Vec<Value> {
    let out = r.csdci(&["bisect", "list", "--json"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| v.as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

#[test]
fn a_relative_script_is_found_from_where_csdci_was_started_and_a_missing_one_is_refused() {
    let (r, shas) = bug_history();
    // The everyday case: an untracked script beside the user's checkout.
    let t = r.path.join("t.sh");
    std::fs::write(&t, "test ! -f BUG\n").unwrap();
    Command::new("chmod").arg("+x").arg(&t).status().unwrap();
    let out = csdci_in(
        &r,
        &r.path,
        &["bisect", "base", "main", "--run", "./t.sh", "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["status"], "culprit", "{v}");
    assert_eq!(v["culprit"]["sha"], shas[9], "{v}");

    // Missing, or not executable: one clear line, exit 3, nothing recorded.
    let (r, _) = bug_history();
    let out = csdci_in(
        &r,
        &r.path,
        &["bisect", "base", "main", "--run", "./nope.sh"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("./nope.sh") && err.contains("no such file"),
        "{err}"
    );
    let plain = r.path.join("plain.sh");
    std::fs::write(&plain, "exit 0\n").unwrap();
    let out = csdci_in(
        &r,
        &r.path,
        &["bisect", "base", "main", "--run", "./plain.sh"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not executable"), "{err}");
    let out = csdci_in(
        &r,
        &r.path,
        &[
            "bisect",
            "base",
            "main",
            "--run",
            "no-such-tool-xyz --check",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(bisections(&r).is_empty(), "nothing was recorded");

    // What only the shell finds out (exit 127 at run time) aborts: never bad.
    let out = csdci_in(
        &r,
        &r.path,
        &[
            "bisect",
            "base",
            "main",
            "--run",
            "sh -c 'exit 127'",
            "--json",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("aborted"), "{err}");
    assert!(out.stdout.is_empty(), "no report, no culprit");
}

#[test]
fn a_bad_merge_base_is_reported_never_a_culprit_and_a_good_one_is_tested_first() {
    let (r, shas) = bug_history();
    // s2 forks after the bug came in and removes it there: GOOD is not an
    // ancestor of BAD, and their merge base (commit 15) is bad.
    git(&r.path, &["checkout", "-q", "-b", "s2", &shas[14]]);
    git(&r.path, &["rm", "-q", "BUG"]);
    git(&r.path, &["commit", "-qm", "remove BUG on s2"]);
    // s3 forks before the bug (commit 5) with a harmless commit.
    git(&r.path, &["checkout", "-q", "-b", "s3", &shas[4]]);
    std::fs::write(r.path.join("other"), "x\n").unwrap();
    git(&r.path, &["add", "other"]);
    git(&r.path, &["commit", "-qm", "unrelated on s3"]);
    git(&r.path, &["checkout", "-q", "main"]);

    let (code, v) = r.bisect_json("s2", "main", "test ! -f BUG", &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["status"], "merge_base_bad", "{v}");
    assert!(v["culprit"].is_null(), "{v}");
    assert!(v["fixes"].is_null(), "{v}");
    assert_eq!(v["merge_bases"][0]["commit"], shas[14], "{v}");
    assert_eq!(v["merge_bases"][0]["fails"], 1, "{v}");
    let (code, text) = r.bisect_text("s2", "main", "test ! -f BUG", &[]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("the merge base is bad"), "{text}");
    assert!(text.contains("older than GOOD"), "{text}");
    assert!(!text.contains("first bad commit"), "{text}");

    let (code, v) = r.bisect_json("s3", "main", "test ! -f BUG", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], shas[9], "{v}");
    assert_eq!(v["merge_bases"][0]["commit"], shas[4], "{v}");
    assert_eq!(v["merge_bases"][0]["fails"], 0, "{v}");
    assert!(v["merge_bases"][0]["runs"].as_u64().unwrap() >= 1);
}

#[test]
fn a_test_that_never_fails_is_not_reproduced_and_no_revert_fixes_it() {
    let (r, shas) = Repo::linear(12, 5, |_| false);
    let (code, v) = r.bisect_json("base", "main", "exit 0", &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "not_reproduced", "{v}");
    assert!(v["culprit"].is_null(), "{v}");
    assert!(v["fixes"].is_null(), "{v}");
    assert!(v["tip_check"]["runs"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["tip_check"]["fails"], 0, "{v}");
    assert_eq!(v["revert_check"]["status"], "not_run", "{v}");
    let (code, text) = r.bisect_text("base", "main", "exit 0", &["--deterministic"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "the bad revision {} did not fail",
            &shas[11][..12]
        )),
        "{text}"
    );
    assert!(!text.contains("fixes"), "{text}");
    assert!(!text.contains("first bad commit"), "{text}");
}

#[test]
fn a_revert_that_does_not_fix_the_failure_makes_the_culprit_doubtful() {
    // Commit 5 breaks `state`; commit 8 adds a second cause of the failure, so
    // reverting commit 5 on the tip still fails.
    let r = Repo::new();
    let shas: Vec<String> = (1..=12)
        .map(|i| {
            if i == 8 {
                std::fs::write(r.path.join("also_bad"), "y\n").unwrap();
            }
            r.commit(i, i >= 5, false)
        })
        .collect();
    let test = "grep -q good state && ! test -f also_bad";
    let (code, v) = r.bisect_json("base", "main", test, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "doubtful", "{v}");
    assert_eq!(
        v["culprit"]["sha"], shas[4],
        "the suspect is still named: {v}"
    );
    assert_eq!(v["revert_check"]["status"], "does_not_fix", "{v}");
    assert!(v["doubt"].as_str().unwrap().contains("does not fix"), "{v}");
    assert!(
        v["fixes"].is_null(),
        "no Fixes: line for a doubtful culprit: {v}"
    );
    let (code, text) = r.bisect_text("base", "main", test, &[]);
    assert_eq!(code, 1);
    assert!(text.contains("DOUBTFUL"), "{text}");
    assert!(!text.contains("Fixes:"), "{text}");
    // `bisect list` does not call it a culprit either.
    let out = r.csdci(&["bisect", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains(&format!("doubtful {}", &shas[4][..12])),
        "{list}"
    );
    assert!(!list.contains("culprit "), "{list}");
}

/// Starts a bisection whose runs each take a while, kills it (SIGKILL) after
/// `runs` runs, and returns the run log.
fn killed_bisection(r: &Repo, runs: usize) -> std::path::PathBuf {
    let runlog = r.path.parent().unwrap().join("runs.log");
    let script = recorded(&runlog, 0.3, DETERMINISTIC);
    let tree = r.path.to_string_lossy().to_string();
    let mut child = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(["bisect", "base", "main", "--tree", &tree, "--run", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&runlog)
        .unwrap_or_default()
        .lines()
        .count()
        < runs
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "runs did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    runlog
}

#[test]
fn two_resumes_at_once_one_drives_the_other_is_refused_cleanly() {
    for round in 0..3 {
        let (r, shas) = Repo::linear(40, 23, |_| false);
        killed_bisection(&r, 2);
        // The worktree is gone too (a user cleaned up): resuming re-creates it,
        // which must happen under the lock.
        let wt = r.data.join("worktrees").join("bisect-1");
        assert!(wt.exists(), "round {round}");
        std::fs::remove_dir_all(&wt).unwrap();
        let spawn = || {
            Command::new(CSDCI)
                .arg("--data-dir")
                .arg(&r.data)
                .args(["bisect", "--resume", "1", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let mut codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
        codes.sort();
        for o in &outs {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !err.contains("fatal:"),
                "round {round}: raw git error: {err}"
            );
            match o.status.code() {
                Some(0) => assert_eq!(json(o)["culprit"]["sha"], shas[22]),
                Some(75) => assert!(err.contains("being run by another csdci process"), "{err}"),
                c => panic!("round {round}: exit {c:?}: {err}"),
            }
        }
        assert_eq!(codes[0], 0, "round {round}: one of them finishes it");
    }
}

#[test]
fn the_users_repository_gets_no_worktree_no_ref_and_no_prune() {
    let (r, shas) = Repo::linear(20, 9, |_| false);
    // A worktree of the user's, moved away for now: its registration must stay.
    let theirs = r.path.parent().unwrap().join("their-wt");
    git(
        &r.path,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &theirs.to_string_lossy(),
            "base",
        ],
    );
    let moved = r.path.parent().unwrap().join("their-wt-moved");
    std::fs::rename(&theirs, &moved).unwrap();
    let refs = git(&r.path, &["for-each-ref"]);
    let worktrees = git(&r.path, &["worktree", "list", "--porcelain"]);
    let head = git(&r.path, &["rev-parse", "HEAD"]);
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["culprit"]["sha"], shas[8]);
    assert_eq!(v["revert_check"]["status"], "fixes", "{v}");
    assert_eq!(git(&r.path, &["for-each-ref"]), refs, "no refs/csdci/...");
    assert_eq!(
        git(&r.path, &["worktree", "list", "--porcelain"]),
        worktrees,
        "no csdci worktree registered, the user's one not pruned"
    );
    assert_eq!(git(&r.path, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&r.path, &["status", "--porcelain"]), "");
    std::fs::rename(&moved, &theirs).unwrap();
    assert!(git(&r.path, &["worktree", "list"]).contains("their-wt"));
}

#[test]
fn resume_applies_a_new_budget_and_confidence_and_refuses_other_options() {
    let (r, shas) = Repo::linear(30, 17, |_| false);
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &["--max-runs", "1"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["stop_reason"], "budget_spent", "{v}");
    assert_eq!(v["runs"], 1);
    let out = r.csdci(&[
        "bisect",
        "--resume",
        "1",
        "--max-runs",
        "60",
        "--confidence",
        "0.999",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["culprit"]["sha"], shas[16], "{v}");
    assert!(v["confidence"].as_f64().unwrap() >= 0.999, "{v}");
    for bad in [
        &["--predicate", "csd"][..],
        &["--vcpus", "4"],
        &["--first-parent"],
        &["--deterministic"],
    ] {
        let mut args = vec!["bisect", "--resume", "1"];
        args.extend_from_slice(bad);
        let out = r.csdci(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{bad:?}: {err}");
        assert!(err.contains("cannot be used with"), "{bad:?}: {err}");
    }
    let out = r.csdci(&["bisect", "--resume", "1", "--confidence", "1.5"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn deterministic_mode_runs_each_commit_once_as_git_does() {
    for (n, culprit, broken) in [(64, 37, (0, 0)), (300, 150, (110, 130)), (64, 64, (0, 0))] {
        let (r, shas) = Repo::linear(n, culprit, |i| i > broken.0 && i < broken.1);
        let (code, v) = r.bisect_json(
            "base",
            "main",
            DETERMINISTIC,
            &["--deterministic", "--no-revert-check"],
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["culprit"]["sha"], shas[culprit - 1], "{v}");
        let git = v["git_bisect_runs"].as_u64().unwrap();
        let runs = v["runs"].as_u64().unwrap();
        // Each tested commit is run once; skips cost a checkout, not a run.
        for t in v["tested"].as_array().unwrap() {
            assert!(t["runs"].as_u64().unwrap() <= 1, "{t}");
        }
        assert!(runs <= git, "n={n}: {runs} runs > git's {git}: {v}");
        if broken == (0, 0) {
            assert!(
                runs + 1 >= git,
                "git's count is a real count: {runs} vs {git}"
            );
        }
    }
    // The default mode says what git would have needed.
    let (r, _) = Repo::linear(64, 37, |_| false);
    let (code, text) = r.bisect_text("base", "main", DETERMINISTIC, &["--no-revert-check"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("git bisect run would have needed 6 runs"),
        "{text}"
    );
}

//! `csdci bisect GOOD BAD --max-guests 2` with the QEMU pipeline: two real
//! guests boot at once. A short range of the demo history (the planted
//! regression, the commit after it and the one after that; the good end is
//! the commit before it), real kernels (from the shared artifact cache: the
//! demo, nightly and LAVA tests build these commits first, and the file is
//! named to run after them), two QEMU guests running scftorture side by
//! side, the console judged by the CSD-lock predicate. Checked as a user
//! would: the culprit is the planted commit, and the store's runs show two
//! guests at once (a round's runs took less wall-clock time than their
//! guests' lifetimes added up, which one guest after another cannot do).
//! Also: W guests that do not fit the host's memory are refused, naming
//! both flags, and `--max-guests` is refused with `--lab lava`.
//!
//! Cost here (2 cores, TCG): 91 s, of which 20 s build the one kernel the
//! earlier tests had not (a ccache rebuild) and two rounds of two guests
//! took 42 s and 28 s of wall-clock time for 73 s and 47 s of guests.

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

mod common;

use common::repo::git;
use common::{csdci_within, data_dir, kernel_repo};

/// The guest: the settings that reproduce the planted race most often
/// (single no-wait calls only), short.
const TEST: [&str; 12] = [
    "--vcpus",
    "8",
    "--memory",
    "1G",
    "--duration",
    "20",
    "--stop-after-crash",
    "5",
    "--scftorture",
    "nthreads=16 weight_single=1",
    "--predicate",
    "csd",
];

#[test]
fn max_guests_must_fit_the_memory_and_is_not_for_a_lab() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("linux");
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    std::fs::write(tree.join("Kconfig"), "# a kernel tree\n").unwrap();
    std::fs::write(tree.join("kernel/smp.c"), "/* v1 */\n").unwrap();
    let commit = |msg: &str| {
        git(&tree, &["add", "-A"]);
        git(
            &tree,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                msg,
            ],
        );
    };
    git(&tree, &["init", "-q"]);
    commit("good");
    std::fs::write(tree.join("kernel/smp.c"), "/* v2 */\n").unwrap();
    commit("bad");
    let data = tmp.path().join("data");
    let csdci = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
            .arg("--data-dir")
            .arg(&data)
            .args(["bisect", "HEAD~1", "HEAD", "--tree"])
            .arg(&tree)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // 100000 guests of 1G fit no host.
    let (code, err) = csdci(&["--max-guests", "100000", "--memory", "1G"]);
    assert_eq!(code, Some(3), "{err}");
    for want in ["--max-guests 100000", "--memory 1024M", "available memory"] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let (code, err) = csdci(&[
        "--max-guests",
        "2",
        "--lab",
        "lava",
        "--lava-url",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("--max-guests") && err.contains("--lab lava"),
        "{err}"
    );
    // Nothing was started.
    let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(&data)
        .args(["bisect", "list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Two rounds of two guests here (91 s; see the module doc).
#[test]
fn two_guests_at_once_bisect_to_the_planted_commit() {
    let (regression, good, bad) = common::short_demo_range();
    let repo = kernel_repo();
    let tree = repo.to_string_lossy().to_string();
    let mut args = vec![
        "bisect",
        "--tree",
        &tree,
        &good,
        &bad,
        "--max-guests",
        "2",
        "--verify-bad",
        "0",
        "--no-revert-check",
        "--max-runs",
        "16",
        "--json",
    ];
    args.extend(TEST);
    let (code, out) = csdci_within(&args, Duration::from_secs(900));
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["status"], "culprit", "{r:#}");
    assert_eq!(r["culprit"]["sha"], regression.as_str(), "{r:#}");
    assert_eq!(code, 0, "{r:#}");
    // The runs, from the store: each its own guest (row, console), and some
    // round ran two at once.
    let log = common::bisect_log(&r);
    let store = csdci::store::Store::open_read_only(&data_dir()).unwrap();
    let runs: Vec<_> = log["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "run")
        .filter_map(|s| s["run_id"].as_i64())
        .map(|id| store.run(id).unwrap().expect("runs row"))
        .collect();
    assert!(runs.len() >= 2, "{log:#}");
    let consoles: std::collections::HashSet<_> = runs.iter().map(|r| &r.console_log).collect();
    assert_eq!(consoles.len(), runs.len(), "one console per run");
    for run in &runs {
        let console = std::fs::read_to_string(run.console_log.as_ref().unwrap()).unwrap();
        assert!(
            console.contains("Linux version"),
            "run {}: {console}",
            run.id
        );
    }
    let span = |a: &csdci::store::runs::RunRow| {
        (
            at(&a.started_at),
            at(a.finished_at.as_ref().expect("finished")),
        )
    };
    let at_once = runs.iter().enumerate().any(|(i, a)| {
        runs[i + 1..].iter().any(|b| {
            let ((sa, ea), (sb, eb)) = (span(a), span(b));
            let wall = (ea.max(eb) - sa.min(sb)).as_seconds_f64();
            let guests = a.test_seconds.unwrap_or(0.0) + b.test_seconds.unwrap_or(0.0);
            sa < eb && sb < ea && wall < guests
        })
    });
    let table: Vec<_> = runs
        .iter()
        .map(|r| (r.id, &r.started_at, &r.finished_at, r.test_seconds))
        .collect();
    assert!(at_once, "no two guests ran at once: {table:#?}");
}

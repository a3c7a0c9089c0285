//! Runs the analyzer over syzkaller's Linux report corpus and fails if the figures
//! fall below the ratchet (`corpus_ratchet.json`, the figures reached so far).
//!
//! The corpus is vendored in `testdata/syzkaller/report` (see its README for
//! provenance and how to refresh it); the test fails when it is missing or empty.
//! `CSDCI_CORPUS_DIR=DIR` scores another copy instead; `CSDCI_CORPUS_MISMATCHES=1`
//! prints every disagreement.

use std::path::PathBuf;

use csdci_console::corpus::{self, Figures};

fn corpus_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CSDCI_CORPUS_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/syzkaller/report")
}

/// Upstream's `pkg/report/testdata/linux/report/` has 747 cases at the vendored
/// commit; fewer means a partial copy (a refresh may add more).
const MIN_CASES: usize = 747;

#[test]
fn corpus_figures_do_not_regress() {
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "corpus not found at {} (it is vendored in the repository: a checkout without \
         orchestrator/crates/console/testdata/syzkaller/report is incomplete)",
        dir.display()
    );
    let cases = corpus::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus at {} unreadable: {e}", dir.display()));
    // Another corpus given by CSDCI_CORPUS_DIR may be smaller, but not empty.
    let min = if std::env::var_os("CSDCI_CORPUS_DIR").is_some() {
        1
    } else {
        MIN_CASES
    };
    assert!(
        cases.len() >= min,
        "only {} cases in {} (expected at least {min})",
        cases.len(),
        dir.display()
    );
    eprintln!("corpus: {} ({} cases)", dir.display(), cases.len());
    let score = corpus::score(&cases);
    eprintln!("{}", score.table());
    if std::env::var_os("CSDCI_CORPUS_MISMATCHES").is_some() {
        for m in &score.mismatches {
            eprintln!(
                "{:>5}: expected {:?} (corrupted {}) got {:?} (corrupted {})",
                m.name, m.expected, m.expected_corrupted, m.got, m.got_corrupted
            );
        }
    }
    let got = score.figures();
    let ratchet_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus_ratchet.json");
    let text = std::fs::read_to_string(&ratchet_path).expect("ratchet file readable");
    let want: Figures = serde_json::from_str(&text).expect("ratchet file is valid JSON");
    eprintln!(
        "reached: {}",
        serde_json::to_string(&got).unwrap_or_default()
    );
    let checks = [
        (
            "crash/no-crash agreement",
            got.crash_agreement,
            want.crash_agreement,
        ),
        (
            "exact title agreement",
            got.title_agreement,
            want.title_agreement,
        ),
        (
            "corrupted agreement",
            got.corrupted_agreement,
            want.corrupted_agreement,
        ),
        (
            "soft lockup titles",
            got.soft_lockup_title,
            want.soft_lockup_title,
        ),
        (
            "RCU stall titles",
            got.rcu_stall_title,
            want.rcu_stall_title,
        ),
        (
            "hung task titles",
            got.hung_task_title,
            want.hung_task_title,
        ),
    ];
    let mut failed = Vec::new();
    for (what, g, w) in checks {
        // Figures are stored rounded to 0.01.
        if g + 0.005 < w {
            failed.push(format!("{what}: {g:.2}% < ratchet {w:.2}%"));
        }
    }
    assert!(
        failed.is_empty(),
        "corpus figures regressed (see {}):\n{}",
        ratchet_path.display(),
        failed.join("\n")
    );
}

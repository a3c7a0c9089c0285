//! The analyzer on hand-written consoles (CSD-lock reports, lockups, RCU stalls,
//! scftorture runs, console noise) and on a real console of the demo regression.
//! Every fixture is also fed in random chunks: the result must not depend on where
//! the console was split.

mod common;

use common::*;
use csdci_console::{FindingKind, Verdict, analyze};

#[test]
fn csd_lock_then_soft_lockup_and_panic() {
    let a = check("csd_soft_lockup.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: soft lockup in smp_call_function")
    );
    assert!(!a.corrupted);
    assert!(a.panicked);
    assert_eq!(
        kinds(&a),
        vec![
            FindingKind::CsdLock,
            FindingKind::CsdLock,
            FindingKind::CsdLock,
            FindingKind::SoftLockup,
            FindingKind::Panic
        ]
    );
    let soft = &a.findings[3];
    assert_eq!(
        (soft.cpu, soft.task.as_deref()),
        (Some(3), Some("scftorture_invo"))
    );
    assert_eq!(a.findings[4].title, "kernel panic: softlockup: hung tasks");
    assert_eq!(a.csd.len(), 3);
    let g1 = &a.csd[0];
    assert_eq!((g1.id, g1.waiter_cpu, g1.target_cpu), (1, Some(3), Some(0)));
    assert_eq!(g1.func.as_deref(), Some("scf_handler_1"));
    assert_eq!(g1.csd.as_deref(), Some("0xffff888003c1b4a0"));
    assert_eq!(g1.max_wait_ns, Some(15000251900));
    assert_eq!(g1.reports, 3);
    assert!(g1.resent && !g1.unstuck);
    assert_eq!(g1.shared_with, vec![2, 3]);
    assert_eq!(
        g1.target_state.as_deref(),
        Some("handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request")
    );
    let g3 = &a.csd[2];
    assert!(g3.unstuck && !g3.resent);
    assert_eq!(a.csd[1].waiter_cpu, Some(2));
    assert_eq!(a.scftorture.result, None);
    assert!(a.scftorture.started);
}

#[test]
fn hard_lockup() {
    let a = check("hard_lockup.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(a.title.as_deref(), Some("BUG: hard lockup in scf_handler"));
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup, FindingKind::Panic]);
    assert_eq!(a.findings[0].cpu, Some(3));
    assert_eq!(a.findings[1].title, "kernel panic: Hard LOCKUP");
}

#[test]
fn rcu_stall_suppressed_by_stuck_csd_lock() {
    let a = check("rcu_stall_csd.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(
        a.title.as_deref(),
        Some("INFO: rcu detected stall, suppressed due to stuck CSD-lock")
    );
    assert_eq!(
        kinds(&a),
        vec![
            FindingKind::CsdLock,
            FindingKind::RcuStall,
            FindingKind::RcuStall
        ]
    );
    assert_eq!(a.findings[2].title, "INFO: rcu kthread starved");
    assert_eq!(a.csd.len(), 1);
    assert_eq!(a.csd[0].reports, 2);
    assert_eq!(a.csd[0].target_state.as_deref(), Some("unresponsive"));
}

#[test]
fn rcu_self_detected_stall() {
    let a = check("rcu_stall.log");
    assert_eq!(
        a.title.as_deref(),
        Some("INFO: rcu detected stall in smp_call_function")
    );
    assert_eq!(kinds(&a), vec![FindingKind::RcuStall]);
    assert!(!a.panicked);
}

#[test]
fn clean_scftorture_run() {
    let a = check("scftorture_clean.log");
    assert_eq!(a.verdict, Verdict::Clean);
    assert_eq!(a.title, None);
    assert!(a.findings.is_empty());
    assert_eq!(a.scftorture.result.as_deref(), Some("SUCCESS"));
    assert_eq!(a.scftorture.invocations, Some(55450));
    assert_eq!(a.scftorture.stats_lines, 3);
    assert_eq!(a.scftorture.errors.ste, 0);
}

#[test]
fn scftorture_failure() {
    let a = check("scftorture_failure.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(a.title.as_deref(), Some("WARNING in scf_handler"));
    assert_eq!(
        kinds(&a),
        vec![
            FindingKind::Warning,
            FindingKind::MemoryOrdering,
            FindingKind::ScftortureFailure,
            FindingKind::ScftortureFailure
        ]
    );
    assert_eq!(
        a.findings[1].title,
        "scftorture: Memory-ordering failure in scf_handler"
    );
    assert_eq!(a.scftorture.result.as_deref(), Some("FAILURE"));
    assert_eq!(a.scftorture.errors.stnmoe, 1);
    assert_eq!(a.scftorture.invocations, Some(55301));
    assert_eq!(a.scftorture.memory_ordering_failures, 1);
}

#[test]
fn silent_guest_is_incomplete() {
    let a = check("incomplete.log");
    assert_eq!(a.verdict, Verdict::Incomplete);
    assert!(a.findings.is_empty());
    assert_eq!(a.scftorture.invocations, Some(18112));
}

#[test]
fn noisy_console() {
    let a = check("noisy_csd.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: soft lockup in smp_call_function")
    );
    assert!(a.panicked);
    assert_eq!(a.csd.len(), 2);
    assert_eq!(a.csd[0].shared_with, vec![2]);
    assert!(a.csd[0].resent);
    // The glued "Continued" line still counts.
    assert_eq!(a.csd[1].reports, 2);
    assert_eq!(a.csd[1].max_wait_ns, Some(10000131004));
    assert!(a.scftorture.started);
}

#[test]
fn real_demo_regression_console() {
    let a = check("real/csd-regression-tcg-8cpu.log");
    assert_eq!(a.verdict, Verdict::Crash);
    // "scftorture: !!! built as module, weight_resched ignored" is not a failure.
    assert!(!kinds(&a).contains(&FindingKind::ScftortureFailure));
    assert_eq!(
        kinds(&a)
            .iter()
            .filter(|k| **k == FindingKind::CsdLock)
            .count(),
        7
    );
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: soft lockup in smp_call_function")
    );
    assert!(a.panicked);
    assert_eq!(a.csd.len(), 7);
    assert!(a.csd.iter().all(|g| g.target_cpu == Some(6)));
    // CSDs #1, #4 and #6 wait on the same CSD.
    let g1 = a.csd.iter().find(|g| g.id == 1).expect("lock #1");
    assert_eq!(g1.shared_with, vec![4, 6]);
    assert_eq!(g1.func.as_deref(), Some("scf_handler_1"));
}

#[test]
fn two_csd_messages_glued_on_one_line() {
    let log = b"[ 9.1] smp: csd: Detected non-responsive CSD lock (#1) on CPU#1, waiting 5000000153 ns for CPU#06 scf_handler_1+0x0/0x50 [scftorture](0xffff8880004703c0).[ 9.2] smp: csd: Detected non-responsive CSD lock (#2) on CPU#3, waiting 5000000001 ns for CPU#06 scf_handler_1+0x0/0x50 [scftorture](0xffff8880004703c0).\n";
    let a = analyze(log);
    assert_eq!(a.csd.len(), 2);
    assert_eq!(a.csd[0].csd.as_deref(), Some("0xffff8880004703c0"));
    assert_eq!(a.csd[1].waiter_cpu, Some(3));
    assert_eq!(a.csd[0].shared_with, vec![2]);
}

#[test]
fn bare_oops_without_bug_line() {
    let log = b"[   5.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\n[   5.1] CPU: 2 UID: 0 PID: 88 Comm: scftorture_invo Not tainted 6.12.0 #1\n[   5.1] RIP: 0010:scf_handler+0x1b/0x2a0 [scftorture]\n[   5.1] Call Trace:\n[   5.1]  <IRQ>\n[   5.1]  scf_handler_1+0xe/0x30 [scftorture]\n[   5.1]  __flush_smp_call_function_queue+0xa0/0x420\n";
    let a = analyze(log);
    assert_eq!(a.title.as_deref(), Some("Oops in scf_handler"));
    assert_eq!(kinds(&a), vec![FindingKind::Oops]);
    assert_eq!(a.findings[0].cpu, Some(2));
}

#[test]
fn empty_and_garbage_inputs() {
    assert_eq!(analyze(b"").verdict, Verdict::Incomplete);
    let a = analyze(&[0xff; 100_000]);
    assert_eq!(a.verdict, Verdict::Incomplete);
    assert_eq!(a.lines, 2);
}

/// Mutation testing without extra dependencies: corpus-like consoles with random
/// byte flips, insertions, long lines and NULs, fed at random chunk boundaries,
/// must analyse without panicking and independently of the chunking.
#[test]
fn random_mutations_and_chunkings_agree() {
    let seeds: Vec<Vec<u8>> = [
        "csd_soft_lockup.log",
        "hard_lockup.log",
        "noisy_csd.log",
        "rcu_stall.log",
        "scftorture_failure.log",
        "real/csd-regression-tcg-8cpu.log",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300u64 {
        let mut data = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
        let edits = rng.next() % 40;
        for _ in 0..edits {
            if data.is_empty() {
                break;
            }
            let at = (rng.next() % data.len() as u64) as usize;
            match rng.next() % 6 {
                0 => data[at] = rng.next() as u8,
                1 => data.insert(at, b'\n'),
                2 => {
                    data.remove(at);
                }
                3 => {
                    let junk = [
                        b"BUG: ".as_slice(),
                        b"csd: ",
                        b"Call Trace:",
                        b"\0",
                        b"\x1b[",
                        b"scftorture: ",
                    ];
                    let j = junk[(rng.next() % junk.len() as u64) as usize];
                    data.splice(at..at, j.iter().copied());
                }
                4 if round % 10 == 0 => {
                    // An overlong line.
                    let n = 64 * 1024 + (rng.next() % 3000) as usize;
                    data.splice(at..at, std::iter::repeat_n(b'x', n));
                }
                _ => {
                    let end = (at + (rng.next() % 200) as usize).min(data.len());
                    data.truncate(end.max(at));
                }
            }
        }
        let whole = analyze(&data);
        let chunked = analyze_chunked(&data, rng.next());
        assert_eq!(
            whole, chunked,
            "round {round}: chunking changed the analysis"
        );
    }
}

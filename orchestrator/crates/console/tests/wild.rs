//! Consoles from the wild (issue 10, items 12-15): excerpts as users paste them from
//! mailing lists and bug trackers, through syslog, journald and dmesg, from old
//! kernels, wrapped by mailers. Every fixture is also fed in random chunks.

mod common;

use common::*;
use csdci_console::{FindingKind, Verdict, analyze};

// Item 12: log tools' prefixes.

#[test]
fn syslog_prefixed_hung_task() {
    let a = check("wild_syslog_hung_task.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(
        a.title.as_deref(),
        Some("INFO: task hung in jbd2_journal_commit_transaction")
    );
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::HungTask]);
    assert_eq!(a.findings[0].task.as_deref(), Some("jbd2/sdb1-8"));
}

#[test]
fn dmesg_t_soft_lockup() {
    let a = check("wild_dmesg_T_soft_lockup.log");
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: soft lockup in nfsd_file_gc_worker")
    );
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::SoftLockup]);
    let f = &a.findings[0];
    assert_eq!((f.cpu, f.task.as_deref()), (Some(2), Some("kworker/2:1")));
}

#[test]
fn dmesg_h_hung_task() {
    let a = check("wild_dmesg_H_hung_task.log");
    assert_eq!(
        a.title.as_deref(),
        Some("INFO: task hung in write_cache_pages")
    );
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::HungTask]);
}

#[test]
fn journald_soft_lockup() {
    let a = check("wild_journald_soft_lockup.log");
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: soft lockup in sys_exit_group")
    );
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::SoftLockup]);
    assert_eq!(a.findings[0].cpu, Some(5));
}

// Item 13: hard lockups.

#[test]
fn nmi_watchdog_of_2_6() {
    let a = check("nmi_watchdog_26.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(a.title.as_deref(), Some("BUG: hard lockup in tg3_timer"));
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup, FindingKind::Panic]);
    let f = &a.findings[0];
    assert_eq!((f.cpu, f.task.as_deref()), (Some(1), Some("java")));
    assert_eq!(a.findings[1].title, "kernel panic: nmi watchdog");
}

#[test]
fn hard_lockup_titled_from_the_nmi_backtrace() {
    let a = check("hard_lockup_nmi_backtrace.log");
    assert_eq!(a.title.as_deref(), Some("BUG: hard lockup in nvme_poll"));
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup]);
    assert_eq!(a.findings[0].cpu, Some(2));
}

#[test]
fn hard_lockup_seen_by_a_buddy_cpu() {
    let a = check("hard_lockup_buddy.log");
    assert_eq!(a.title.as_deref(), Some("BUG: hard lockup in scf_handler"));
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup, FindingKind::Panic]);
    assert_eq!(a.findings[0].cpu, Some(3));
}

#[test]
fn hard_lockup_forms_of_other_kernels() {
    // 2.6.3x x86: die_nmi() with a "BUG: " prefix; 3.x: a WARN() from the perf
    // callback, the trace running through the NMI into the interrupted code.
    let log = "\
[ 1021.5] BUG: NMI Watchdog detected LOCKUP on CPU3, ip ffffffff8103e3a4, registers:
[ 1021.5] CPU 3
[ 1021.5] Pid: 0, comm: swapper Not tainted 2.6.32-431.el6.x86_64 #1
[ 1021.5] RIP: 0010:[<ffffffff8103e3a4>]  [<ffffffff8103e3a4>] bnx2_poll_work+0x54/0x1a0 [bnx2]
[ 1021.5] Call Trace:
[ 1021.5]  <IRQ>  [<ffffffffa0123456>] bnx2_poll+0x6e/0x2d0 [bnx2]
[ 1021.5]  [<ffffffff814567c3>] net_rx_action+0x103/0x2f0
";
    let a = analyze(log.as_bytes());
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: hard lockup in bnx2_poll_work")
    );
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup]);
    assert_eq!(a.findings[0].cpu, Some(3));
    let log = "\
[ 5123.1] ------------[ cut here ]------------
[ 5123.1] WARNING: CPU: 0 PID: 0 at kernel/watchdog.c:245 watchdog_overflow_callback+0x9c/0xd0()
[ 5123.1] Watchdog detected hard LOCKUP on cpu 0
[ 5123.1] Modules linked in: ext4 jbd2 mbcache
[ 5123.1] CPU: 0 PID: 0 Comm: swapper/0 Not tainted 3.10.0-123.el7.x86_64 #1
[ 5123.1]  0000000000000000 000000007b34c6a3 ffff88017fc05c18 ffffffff815e19ba
[ 5123.1] Call Trace:
[ 5123.1]  <NMI>  [<ffffffff815e19ba>] dump_stack+0x19/0x1b
[ 5123.1]  [<ffffffff8105dee1>] warn_slowpath_common+0x61/0x80
[ 5123.1]  [<ffffffff8105df5c>] warn_slowpath_fmt+0x5c/0x80
[ 5123.1]  [<ffffffff8110ac19>] watchdog_overflow_callback+0x9c/0xd0
[ 5123.1]  [<ffffffff8114c9ec>] __perf_event_overflow+0x8c/0x1f0
[ 5123.1]  [<ffffffff8114d5e4>] perf_event_overflow+0x14/0x20
[ 5123.1]  [<ffffffff81029b88>] intel_pmu_handle_irq+0x1f8/0x3f0
[ 5123.1]  [<ffffffff815eb1fb>] perf_event_nmi_handler+0x2b/0x50
[ 5123.1]  [<ffffffff815ea9d9>] nmi_handle.isra.0+0x69/0xb0
[ 5123.1]  [<ffffffff815eaaf0>] do_nmi+0xd0/0x340
[ 5123.1]  [<ffffffff815e9e31>] end_repeat_nmi+0x1e/0x2e
[ 5123.1]  [<ffffffff812d4f21>] ? tg3_poll_work+0x21/0x40
[ 5123.1]  <<EOE>>  <IRQ>  [<ffffffff812d4f21>] tg3_poll_work+0x21/0x40
[ 5123.1]  [<ffffffff814d9a2a>] net_rx_action+0x15a/0x250
";
    let a = analyze(log.as_bytes());
    assert_eq!(
        a.title.as_deref(),
        Some("BUG: hard lockup in tg3_poll_work")
    );
    assert_eq!(kinds(&a), vec![FindingKind::HardLockup]);
}

// Item 14: wrapped consoles.

#[test]
fn wrapped_user_space_gpf_is_no_crash() {
    let a = check("wrapped_traps_gpf.log");
    assert_ne!(a.verdict, Verdict::Crash, "{:?}", a.findings);
    assert!(a.findings.is_empty());
}

#[test]
fn wrapped_boot_warnings_are_no_crash() {
    let a = check("wrapped_spectre_warning.log");
    assert_ne!(a.verdict, Verdict::Crash, "{:?}", a.findings);
    assert!(a.findings.is_empty());
}

#[test]
fn wrapped_hung_task_is_rejoined() {
    let a = check("wrapped_hung_task.log");
    assert_eq!(a.title.as_deref(), Some("INFO: task hung in __rpc_execute"));
    assert!(!a.corrupted);
    assert_eq!(kinds(&a), vec![FindingKind::HungTask]);
}

#[test]
fn wrapped_warning_is_rejoined() {
    let a = check("wrapped_warning.log");
    assert_eq!(
        a.title.as_deref(),
        Some("WARNING in intel_atomic_commit_tail")
    );
    assert_eq!(kinds(&a), vec![FindingKind::Warning]);
    assert_eq!(a.findings[0].cpu, Some(3));
}

#[test]
fn a_real_warning_without_file_is_still_a_crash() {
    // WARN_ON() with its stack but no "CPU: ... at" (CONFIG_BUG without verbose).
    let log = "\
[   42.1] WARNING: suspicious frob
[   42.1] Modules linked in:
[   42.1] CPU: 1 PID: 77 Comm: frobd Not tainted 6.6.0 #1
[   42.1] Call Trace:
[   42.1]  <TASK>
[   42.1]  frob_one+0x12/0x40
[   42.1]  frob_all+0x30/0x90
[   42.1]  kthread+0xd2/0x100
[   42.1]  </TASK>
";
    let a = analyze(log.as_bytes());
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(kinds(&a), vec![FindingKind::Warning]);
}

// Item 15: CSD titles.

#[test]
fn csd_title_by_the_function_most_locks_wait_on() {
    let a = check("csd_truncated_function.log");
    assert_eq!(a.verdict, Verdict::Crash);
    assert_eq!(
        a.title.as_deref(),
        Some("csd: non-responsive CSD lock in flush_tlb_func")
    );
    assert_eq!(a.csd.len(), 4);
    assert_eq!(a.csd[0].func.as_deref(), Some("flush_tlb_func"));
    assert_eq!(a.csd[0].reports, 2);
    assert!(a.csd[0].resent && a.csd[0].unstuck);
    assert_eq!(a.csd[3].func.as_deref(), Some("do_sync_core"));
    assert_eq!(
        a.findings[3].title,
        "csd: non-responsive CSD lock in do_sync_core"
    );
}

#[test]
fn csd_title_when_the_first_lock_is_the_odd_one() {
    let log = "\
[  88.1] smp: csd: Detected non-responsive CSD lock (#1) on CPU#0, waiting 5000000120 ns for CPU#03 do_sync_core+0x0/0x30(0x0).
[  88.1] smp: 	csd: CSD lock (#1) unresponsive.
[  88.2] smp: csd: Detected non-responsive CSD lock (#2) on CPU#1, waiting 5000000150 ns for CPU#03 flush_tlb_func+0x0/0x140(0xffffb29a0c5f3d88).
[  88.3] smp: csd: Detected non-responsive CSD lock (#3) on CPU#2, waiting 5000000111 ns for CPU#03 flush_tlb_func+0x0/0x140(0xffffb29a0d1e7d88).
";
    let a = analyze(log.as_bytes());
    assert_eq!(
        a.title.as_deref(),
        Some("csd: non-responsive CSD lock in flush_tlb_func")
    );
    assert_eq!(a.csd[0].func.as_deref(), Some("do_sync_core"));
}

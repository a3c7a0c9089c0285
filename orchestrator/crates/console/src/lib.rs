//! Streaming analysis of a Linux kernel serial console.
//!
//! The analyzer is fed raw console bytes in chunks of any size (a whole file, or
//! whatever a QEMU serial socket delivered) and keeps memory bounded whatever the
//! input length. It produces [`Finding`]s (one per crash/lockup/CSD report/...),
//! a syzkaller-style primary title, the CSD-lock structure grouped by lock id and
//! scftorture's own statistics.
//!
//! This crate knows nothing about processes, QEMU or git: it only reads bytes.
//!
//! How it works: a SIMD literal prefilter ([`aho_corasick`], at most 32 literals)
//! picks the few lines worth parsing; everything else costs a newline count. A
//! report header (table in [`oops`]) opens a bounded capture of the following lines
//! (at most 1000 lines / 256 KiB, at most 4 at once); when the report ends (next
//! report without caller ids, the limit, or [`Analyzer::finish`]) it is titled the
//! way syzkaller titles it ([`report`], [`stack`], [`title`]). CSD-lock lines are
//! grouped by lock id ([`csd`]), scftorture lines parsed ([`scf`]). Memory does not
//! grow with the input: lines are split at 64 KiB, findings beyond
//! [`MAX_FINDINGS`] are only counted, CSD groups are capped.
//!
//! Checked against syzkaller's crash-report corpus ([`corpus`], `tests/corpus.rs`
//! with a ratchet), hand-written CSD/lockup/scftorture fixtures, a real console of
//! the demo regression, random mutations at random chunk boundaries, and a
//! cargo-fuzz target (`fuzz/`, run with `RUSTC_BOOTSTRAP=1 cargo fuzz run analyzer`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod analyzer;
pub mod corpus;
pub mod csd;
pub mod excerpt;
mod find;
pub mod oops;
pub mod prefix;
pub mod report;
pub mod scf;
mod span;
pub mod stack;
pub mod title;
mod who;

pub use analyzer::{Analyzer, MAX_FINDINGS};

/// What kind of problem a finding reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// "csd: Detected non-responsive CSD lock" and friends.
    CsdLock,
    /// "BUG: soft lockup".
    SoftLockup,
    /// "Watchdog detected hard LOCKUP".
    HardLockup,
    /// RCU CPU stall warnings (all flavours).
    RcuStall,
    /// "INFO: task ... blocked for more than N seconds".
    HungTask,
    /// "BUG:" lines and "kernel BUG at".
    Bug,
    /// "WARNING:" (WARN_ON and friends).
    Warning,
    /// Architecture faults ("Internal error:", "Unhandled fault:", ...).
    Oops,
    /// "general protection fault", "stack segment".
    GeneralProtectionFault,
    /// KASAN reports.
    Kasan,
    /// KCSAN data races.
    Kcsan,
    /// UBSAN reports.
    Ubsan,
    /// KMSAN reports.
    Kmsan,
    /// lockdep: possible deadlock, inconsistent lock state, suspicious RCU usage, ...
    Lockdep,
    /// "Kernel panic - not syncing" and other panics.
    Panic,
    /// scftorture's "End of test: FAILURE" or its "!!!" error counters.
    ScftortureFailure,
    /// scftorture's "Memory-ordering failure".
    MemoryOrdering,
    /// KFENCE reports.
    Kfence,
    /// kmemleak "memory leak".
    MemoryLeak,
    /// Anything else that syzkaller treats as a crash.
    Other,
}

impl FindingKind {
    /// Snake-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::CsdLock => "csd_lock",
            FindingKind::SoftLockup => "soft_lockup",
            FindingKind::HardLockup => "hard_lockup",
            FindingKind::RcuStall => "rcu_stall",
            FindingKind::HungTask => "hung_task",
            FindingKind::Bug => "bug",
            FindingKind::Warning => "warning",
            FindingKind::Oops => "oops",
            FindingKind::GeneralProtectionFault => "general_protection_fault",
            FindingKind::Kasan => "kasan",
            FindingKind::Kcsan => "kcsan",
            FindingKind::Ubsan => "ubsan",
            FindingKind::Kmsan => "kmsan",
            FindingKind::Lockdep => "lockdep",
            FindingKind::Panic => "panic",
            FindingKind::ScftortureFailure => "scftorture_failure",
            FindingKind::MemoryOrdering => "memory_ordering",
            FindingKind::Kfence => "kfence",
            FindingKind::MemoryLeak => "memory_leak",
            FindingKind::Other => "other",
        }
    }
}

/// One problem found in the console.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    /// syzkaller-style title, e.g. "BUG: soft lockup in smp_call_function".
    pub title: String,
    /// 1-based line number in the console where the finding starts.
    pub line: u64,
    /// 1-based line number where it ends: the end of its stack trace, its
    /// `---[ end trace`, registers, the last line of a CSD report. 0 in
    /// findings written before positions were reported (read them as `line`).
    #[serde(default)]
    pub last_line: u64,
    /// Byte offset in the console of the finding's first line.
    #[serde(default)]
    pub start_byte: u64,
    /// Byte offset just past its last line (newline included); 0 when not
    /// reported (findings written by older versions).
    #[serde(default)]
    pub end_byte: u64,
    /// CPU the report names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Task (comm) the report names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The report is truncated or garbled (its title may end in "corrupted").
    #[serde(default)]
    pub corrupted: bool,
    /// A kernel crash report (as opposed to a CSD-lock or scftorture line); the
    /// primary title is the first of these.
    #[serde(default)]
    pub crash_report: bool,
}

/// All reports about one CSD lock id (`#N`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct CsdGroup {
    /// Lock id (`#N`), one per waiting call.
    pub id: u64,
    /// CPU that waits for the lock.
    pub waiter_cpu: Option<u32>,
    /// CPU that should have run the function and released the lock.
    pub target_cpu: Option<u32>,
    /// The function sent (symbol only), e.g. "scf_handler_1".
    pub func: Option<String>,
    /// The CSD's info pointer as printed, e.g. "0xffff888000c6e0c0".
    pub csd: Option<String>,
    /// Longest wait reported, in ns.
    pub max_wait_ns: Option<i64>,
    /// The IPI was re-sent.
    pub resent: bool,
    /// The lock was eventually released ("got unstuck").
    pub unstuck: bool,
    /// "Detected"/"Continued" lines about this id.
    pub reports: u32,
    /// What the target CPU was doing ("handling prior F(I) request", "unresponsive").
    #[serde(default)]
    pub target_state: Option<String>,
    /// Other lock ids waiting on the same CSD address (several waiters on one CSD
    /// is the signature of a lost IPI).
    #[serde(default)]
    pub shared_with: Vec<u64>,
}

/// scftorture's own counters and verdict.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ScfStats {
    /// "SUCCESS" or "FAILURE" (or "LOCK_HOTPLUG") from the End-of-test line.
    pub result: Option<String>,
    /// `scf_invoked_count` of the last stats line.
    pub invocations: Option<u64>,
    /// Error counters of the last stats line.
    pub errors: ScfErrors,
    /// The "Start of test" line was seen.
    #[serde(default)]
    pub started: bool,
    /// Stats lines seen.
    #[serde(default)]
    pub stats_lines: u64,
    /// "Memory-ordering failure" lines seen.
    #[serde(default)]
    pub memory_ordering_failures: u64,
    /// CPU hotplug as the last stats line counts it (`onoff: ...`; absent
    /// when the kernel has no `CONFIG_HOTPLUG_CPU` or no stats line came).
    #[serde(default)]
    pub onoff: Option<ScfOnoff>,
    /// "smpboot: CPU N is now offline" lines: CPUs the kernel took offline.
    #[serde(default)]
    pub cpus_offlined: u64,
    /// "smpboot: Booting Node M Processor N" lines: CPUs brought online after
    /// boot (by hotplug, and by scftorture's final "online all").
    #[serde(default)]
    pub cpus_onlined: u64,
}

/// scftorture's CPU hotplug counters (torture.c's `onoff: ONL/ONLA:OFFL/OFFLA`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ScfOnoff {
    /// CPUs brought online.
    pub online: u64,
    /// Online attempts.
    pub online_attempts: u64,
    /// CPUs taken offline.
    pub offline: u64,
    /// Offline attempts.
    pub offline_attempts: u64,
}

/// scftorture error counters (from its stats lines).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ScfErrors {
    /// Handler errors (`n_errs`).
    pub ste: u64,
    /// Memory-barrier errors on handler entry (`n_mb_in_errs`).
    pub stnmie: u64,
    /// Memory-barrier errors on handler exit (`n_mb_out_errs`).
    pub stnmoe: u64,
    /// Allocation failures (`n_alloc_errs`).
    pub staf: u64,
}

/// Overall reading of a console.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one crash finding.
    Crash,
    /// The workload finished successfully and nothing was found.
    Clean,
    /// Nothing was found but the workload did not finish.
    Incomplete,
}

/// Result of analysing one console.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Analysis {
    /// crash, clean or incomplete.
    pub verdict: Verdict,
    /// Title of the first crash, syzkaller style.
    pub title: Option<String>,
    /// The first crash report is truncated or garbled.
    pub corrupted: bool,
    /// Findings in console order (at most [`MAX_FINDINGS`]).
    pub findings: Vec<Finding>,
    /// CSD-lock reports grouped by lock id.
    pub csd: Vec<CsdGroup>,
    /// scftorture's statistics and result.
    pub scftorture: ScfStats,
    /// Lines read.
    pub lines: u64,
    /// "Kernel panic - not syncing" was seen.
    #[serde(default)]
    pub panicked: bool,
    /// Findings per kind, including those beyond [`MAX_FINDINGS`].
    #[serde(default)]
    pub finding_counts: BTreeMap<FindingKind, u64>,
    /// Findings counted but not kept (beyond [`MAX_FINDINGS`]).
    #[serde(default)]
    pub dropped_findings: u64,
}

/// Analyses a whole console at once.
pub fn analyze(bytes: &[u8]) -> Analysis {
    let mut a = Analyzer::new();
    a.feed(bytes);
    a.finish()
}

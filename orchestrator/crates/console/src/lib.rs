//! Streaming analysis of a Linux kernel serial console.
//!
//! The analyzer is fed raw console bytes in chunks of any size (a whole file, or
//! whatever a QEMU serial socket delivered) and keeps memory bounded whatever the
//! input length. It produces [`Finding`]s (one per crash/lockup/CSD report/...),
//! a syzkaller-style primary title, the CSD-lock structure grouped by lock id and
//! scftorture's own statistics.
//!
//! This crate knows nothing about processes, QEMU or git: it only reads bytes.

use serde::{Deserialize, Serialize};

/// What kind of problem a finding reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// "csd: Detected non-responsive CSD lock" and friends.
    CsdLock,
    SoftLockup,
    HardLockup,
    RcuStall,
    HungTask,
    /// "BUG:" lines and "kernel BUG at".
    Bug,
    Warning,
    Oops,
    GeneralProtectionFault,
    Kasan,
    Kcsan,
    Ubsan,
    Kmsan,
    Lockdep,
    Panic,
    ScftortureFailure,
    MemoryOrdering,
    Other,
}

/// One problem found in the console.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    /// syzkaller-style title, e.g. "BUG: soft lockup in smp_call_function".
    pub title: String,
    /// 1-based line number in the console where the finding starts.
    pub line: u64,
    /// CPU the report names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Task (comm) the report names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// All reports about one CSD lock id (`#N`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct CsdGroup {
    pub id: u64,
    pub waiter_cpu: Option<u32>,
    pub target_cpu: Option<u32>,
    pub func: Option<String>,
    pub csd: Option<String>,
    pub max_wait_ns: Option<i64>,
    pub resent: bool,
    pub unstuck: bool,
    pub reports: u32,
}

/// scftorture's own counters and verdict.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ScfStats {
    /// "SUCCESS" or "FAILURE" from the End-of-test line.
    pub result: Option<String>,
    pub invocations: Option<u64>,
    pub errors: ScfErrors,
}

/// scftorture error counters (from its stats lines).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ScfErrors {
    pub ste: u64,
    pub stnmie: u64,
    pub stnmoe: u64,
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
    pub verdict: Verdict,
    /// Title of the first crash, syzkaller style.
    pub title: Option<String>,
    /// The first crash report is truncated or garbled.
    pub corrupted: bool,
    pub findings: Vec<Finding>,
    pub csd: Vec<CsdGroup>,
    pub scftorture: ScfStats,
    /// Lines read.
    pub lines: u64,
}

/// Streaming analyzer: feed bytes, then [`Analyzer::finish`].
#[derive(Default)]
pub struct Analyzer {
    lines: u64,
    partial: Vec<u8>,
    findings: Vec<Finding>,
    scf: ScfStats,
}

impl Analyzer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of console bytes; chunks may split lines anywhere.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            self.partial.extend_from_slice(&rest[..pos]);
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
            rest = &rest[pos + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Findings so far (the run pipeline polls this to stop a doomed guest early).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// True once the console shows a kernel panic.
    pub fn panicked(&self) -> bool {
        self.findings.iter().any(|f| f.kind == FindingKind::Panic)
    }

    /// True once scftorture printed its End-of-test line.
    pub fn workload_finished(&self) -> bool {
        self.scf.result.is_some()
    }

    fn line(&mut self, raw: &[u8]) {
        self.lines += 1;
        let line = String::from_utf8_lossy(raw);
        let kind = if line.contains("Kernel panic - not syncing") {
            Some((FindingKind::Panic, "kernel panic"))
        } else if line.contains("csd: Detected non-responsive CSD lock") {
            Some((FindingKind::CsdLock, "csd lock"))
        } else if line.contains("soft lockup") {
            Some((FindingKind::SoftLockup, "BUG: soft lockup"))
        } else if line.contains("BUG:") {
            Some((FindingKind::Bug, "BUG"))
        } else {
            None
        };
        if let Some((kind, title)) = kind {
            self.findings.push(Finding {
                kind,
                title: title.into(),
                line: self.lines,
                cpu: None,
                task: None,
            });
        }
        if line.contains("End of test: SUCCESS") {
            self.scf.result = Some("SUCCESS".into());
        } else if line.contains("End of test: FAILURE") {
            self.scf.result = Some("FAILURE".into());
        }
    }

    /// Ends the stream and returns the analysis.
    pub fn finish(mut self) -> Analysis {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        let verdict = if !self.findings.is_empty() || self.scf.result.as_deref() == Some("FAILURE")
        {
            Verdict::Crash
        } else if self.scf.result.is_some() {
            Verdict::Clean
        } else {
            Verdict::Incomplete
        };
        Analysis {
            verdict,
            title: self.findings.first().map(|f| f.title.clone()),
            corrupted: false,
            findings: self.findings,
            csd: Vec::new(),
            scftorture: self.scf,
            lines: self.lines,
        }
    }
}

/// Analyses a whole console at once.
pub fn analyze(bytes: &[u8]) -> Analysis {
    let mut a = Analyzer::new();
    a.feed(bytes);
    a.finish()
}

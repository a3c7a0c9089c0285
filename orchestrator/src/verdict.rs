//! The verdict of one run: predicates over the console analysis
//! (`csdci-console`, the only source of findings) and how the VM ended.
//! A kernel failure and an infrastructure failure are different verdicts.

use csdci_console::{Analysis, Finding, Verdict as ConsoleVerdict};
use serde::Serialize;

use crate::vm::{VmExit, VmOutcome};

/// What one run says about a kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The workload finished, the guest powered off, nothing was found.
    Clean,
    /// The kernel failed.
    Failed {
        /// Title of the first finding (syzkaller style), or what hung.
        title: String,
        /// The findings that show it.
        findings: Vec<Finding>,
    },
    /// The commit cannot be tested (does not configure or build).
    Untestable {
        /// Why.
        reason: String,
    },
    /// The test infrastructure failed; says nothing about the kernel.
    Infra {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// `clean`, `failed`, `untestable` or `infra`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Failed { .. } => "failed",
            Verdict::Untestable { .. } => "untestable",
            Verdict::Infra { .. } => "infra",
        }
    }

    /// The title (failed) or reason (untestable, infra).
    pub fn title(&self) -> Option<&str> {
        match self {
            Verdict::Clean => None,
            Verdict::Failed { title, .. } => Some(title),
            Verdict::Untestable { reason } | Verdict::Infra { reason } => Some(reason),
        }
    }
}

impl From<&Verdict> for crate::testers::RunOutcome {
    /// What a verdict tells a [`crate::testers::Tester`]'s user: clean
    /// passes, failed fails, untestable is a skip, infra is infra.
    fn from(v: &Verdict) -> Self {
        use crate::testers::RunOutcome;
        match v {
            Verdict::Clean => RunOutcome::Pass,
            Verdict::Failed { .. } => RunOutcome::Fail,
            Verdict::Untestable { reason } => RunOutcome::Skip {
                reason: reason.clone(),
            },
            Verdict::Infra { reason } => RunOutcome::Infra {
                reason: reason.clone(),
            },
        }
    }
}

/// Judges a run. `pre_nmi_findings` is how many of the analysis' findings came
/// before csdci injected an NMI into a hung guest (`None`: no NMI was injected):
/// reports csdci provoked are evidence of a hang, not a crash of their own.
pub fn judge(analysis: &Analysis, vm: &VmOutcome, pre_nmi_findings: Option<usize>) -> Verdict {
    let organic = match pre_nmi_findings {
        Some(n) => &analysis.findings[..n.min(analysis.findings.len())],
        None => &analysis.findings[..],
    };
    let scf_failed = analysis.scftorture.result.as_deref() == Some("FAILURE");
    if !organic.is_empty()
        || (pre_nmi_findings.is_none() && analysis.verdict == ConsoleVerdict::Crash)
    {
        let title = analysis
            .title
            .clone()
            .or_else(|| organic.first().map(|f| f.title.clone()))
            .unwrap_or_else(|| "kernel failure".into());
        return Verdict::Failed {
            title,
            findings: analysis.findings.clone(),
        };
    }
    if scf_failed {
        return Verdict::Failed {
            title: "scftorture: End of test: FAILURE".into(),
            findings: analysis.findings.clone(),
        };
    }
    let hang = |what: &str| Verdict::Failed {
        title: match vm.boot_seconds {
            Some(_) => format!("hang: {what}"),
            None => format!("hang before init: {what}"),
        },
        findings: analysis.findings.clone(),
    };
    match &vm.exit {
        VmExit::PoweredOff if analysis.scftorture.result.as_deref() == Some("SUCCESS") => {
            Verdict::Clean
        }
        VmExit::PoweredOff => Verdict::Infra {
            reason: "the guest powered off before scftorture reported its end of test (see the console log)".into(),
        },
        VmExit::Panicked => Verdict::Failed {
            title: "kernel panic (pvpanic) without a console report".into(),
            findings: analysis.findings.clone(),
        },
        VmExit::Silent => hang("no console output"),
        VmExit::Deadline => hang("the test did not finish before the deadline"),
        VmExit::Stopped => Verdict::Infra {
            reason: "the run was stopped".into(),
        },
        VmExit::QemuDied(why) => Verdict::Infra {
            reason: format!("qemu died: {why}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Accel;
    use csdci_console::Analyzer;

    fn analyse(text: &str) -> Analysis {
        let mut a = Analyzer::new();
        a.feed(text.as_bytes());
        a.finish()
    }

    fn vm(exit: VmExit) -> VmOutcome {
        VmOutcome {
            exit,
            accel: Accel::Tcg,
            boot_seconds: Some(3.0),
            seconds: 30.0,
        }
    }

    const SUCCESS: &str = "[   40.0] scftorture: --- End of test: SUCCESS: verbose=1\n";

    #[test]
    fn clean_needs_success_and_power_off() {
        assert_eq!(
            judge(&analyse(SUCCESS), &vm(VmExit::PoweredOff), None),
            Verdict::Clean
        );
        assert_eq!(
            judge(&analyse("boot\n"), &vm(VmExit::PoweredOff), None).name(),
            "infra"
        );
        assert_eq!(
            judge(
                &analyse("x\n"),
                &vm(VmExit::QemuDied("exit 1".into())),
                None
            )
            .name(),
            "infra"
        );
    }

    #[test]
    fn console_findings_fail_the_kernel() {
        let text = "[ 1.0] smp: csd: Detected non-responsive CSD lock (#1) on CPU#0, waiting 5000000000 ns for CPU#01 do_nothing+0x0/0x10(0x0).\n";
        let v = judge(&analyse(text), &vm(VmExit::Stopped), None);
        assert_eq!(v.name(), "failed");
    }

    #[test]
    fn hang_after_nmi_is_a_failure_titled_hang() {
        let text = "[ 1.0] Kernel panic - not syncing: NMI: Not continuing\n";
        let v = judge(&analyse(text), &vm(VmExit::Silent), Some(0));
        match v {
            Verdict::Failed { title, .. } => assert!(title.starts_with("hang"), "{title}"),
            v => panic!("{v:?}"),
        }
    }
}

//! What a finished LAVA job means for csdci. The console decides whenever
//! the kernel spoke: a Complete job, a crash on the console (whatever LAVA
//! made of it: a panic closes the connection of a `-no-reboot` guest, which
//! LAVA calls an infrastructure error), a panic LAVA's kernel-messages
//! parser caught, a guest that hung past the test's timeout, a job csdci
//! stopped itself (after a crash, or a silent console). Everything else is
//! infrastructure, retried and never evidence: an infrastructure,
//! bootloader or configuration error, a job canceled by someone else, a
//! timeout with no kernel output, a job never scheduled (no device online).

use crate::vm::VmExit;

use super::log::JobResult;

/// Why csdci itself canceled a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A crash was found (stop-after-crash, or the kernel panicked).
    Crash,
    /// The console was silent for the spec's silence timeout.
    Silent,
    /// The guest ran past the spec's duration + grace.
    Deadline,
    /// The job waited in the queue too long (no device took it).
    Queue,
}

/// How a job ended, as far as csdci cares.
#[derive(Debug, Clone, Default)]
pub struct Ending<'a> {
    /// LAVA's health: `Complete`, `Incomplete`, `Canceled`.
    pub health: &'a str,
    /// The dispatcher's `job` result, when the log has one.
    pub job: Option<&'a JobResult>,
    /// The kernel printed something.
    pub kernel_output: bool,
    /// The guest init's last line was seen.
    pub end_marker: bool,
    /// LAVA reported a kernel panic.
    pub lava_panic: bool,
    /// The console analysis found a crash.
    pub crash_found: bool,
    /// csdci canceled the job, and why.
    pub stopped: Option<Stop>,
}

/// What the run is judged by.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    /// The console analysis, with the guest's end as the local pipeline
    /// would have seen it.
    Console(VmExit),
    /// An infrastructure failure: retried, never evidence.
    Infra(String),
}

/// What the ending means.
pub fn meaning(e: &Ending<'_>) -> Meaning {
    let error = e
        .job
        .map(|j| {
            format!(
                "{}{}",
                j.error_type.as_deref().unwrap_or("error"),
                j.error_msg
                    .as_deref()
                    .map(|m| format!(": {}", m.trim()))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no result in the job log".into());
    let silent = |what: &str| Meaning::Infra(format!("{what}; the kernel printed nothing"));
    match e.stopped {
        Some(Stop::Queue) => {
            return Meaning::Infra("no device took the job in time (canceled)".into());
        }
        Some(Stop::Crash) => return Meaning::Console(VmExit::Stopped),
        Some(Stop::Silent) if e.kernel_output => return Meaning::Console(VmExit::Silent),
        Some(Stop::Deadline) if e.kernel_output => return Meaning::Console(VmExit::Deadline),
        Some(Stop::Silent) => return silent("no console output (canceled)"),
        Some(Stop::Deadline) => return silent("past the deadline (canceled)"),
        None => {}
    }
    let exit = if e.lava_panic {
        VmExit::Panicked
    } else if e.end_marker {
        VmExit::PoweredOff
    } else {
        VmExit::Stopped
    };
    if e.crash_found {
        return Meaning::Console(exit);
    }
    match e.health {
        "Complete" => Meaning::Console(exit),
        "Canceled" => Meaning::Infra("the job was canceled in LAVA".into()),
        "Incomplete" if !e.kernel_output => silent(&format!("incomplete ({error})")),
        "Incomplete" => {
            let kind = e.job.and_then(|j| j.error_type.as_deref()).unwrap_or("");
            match kind {
                _ if e.lava_panic => Meaning::Console(VmExit::Panicked),
                // The monitor waited for the end line until the test's
                // timeout: the guest hung (the local pipeline's deadline).
                "Test" => Meaning::Console(VmExit::Deadline),
                _ => Meaning::Infra(format!("incomplete ({error})")),
            }
        }
        other => Meaning::Infra(format!("unexpected job health '{other}' ({error})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lava::log::Log;

    fn sample(name: &str) -> Log {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/lava/samples")
            .join(name);
        let mut log = Log::new();
        log.feed(&std::fs::read_to_string(p).unwrap());
        log
    }

    fn ending<'a>(log: &'a Log, health: &'a str, crash: bool) -> Ending<'a> {
        Ending {
            health,
            job: log.job_result(),
            kernel_output: log.kernel_output(),
            end_marker: log.end_marker_seen(),
            lava_panic: log.lava_panic().is_some(),
            crash_found: crash,
            stopped: None,
        }
    }

    #[test]
    fn a_complete_job_is_judged_by_the_console_as_powered_off() {
        let log = sample("complete.yaml");
        assert_eq!(
            meaning(&ending(&log, "Complete", false)),
            Meaning::Console(VmExit::PoweredOff)
        );
    }

    #[test]
    fn a_panic_that_closed_the_connection_is_the_kernels_not_the_labs() {
        // LAVA says Infrastructure (the -no-reboot guest's QEMU exited), but
        // the console shows the panic.
        let log = sample("panic-connection-closed.yaml");
        assert_eq!(
            log.job_result().unwrap().error_type.as_deref(),
            Some("Infrastructure")
        );
        assert!(matches!(
            meaning(&ending(&log, "Incomplete", true)),
            Meaning::Console(_)
        ));
        // Without a crash on the console it is the lab's.
        assert!(matches!(
            meaning(&ending(&log, "Incomplete", false)),
            Meaning::Infra(r) if r.contains("Connection closed")
        ));
    }

    #[test]
    fn a_csd_lock_report_on_a_lava_console_fails_the_kernel() {
        // The demo's bad kernel on the local lab: CSD-lock reports, then
        // the guest panicked and QEMU exited (LAVA: Infrastructure).
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/lava/samples/csd-lock-connection-closed.yaml");
        let mut log = Log::new();
        let console = log.feed(&std::fs::read_to_string(p).unwrap());
        let mut a = csdci_console::Analyzer::new();
        a.feed(&console);
        let analysis = a.finish();
        let titles: Vec<&str> = analysis.findings.iter().map(|f| f.title.as_str()).collect();
        assert!(titles.iter().any(|t| t.contains("CSD lock")), "{titles:?}");
        let m = meaning(&ending(&log, "Incomplete", !analysis.findings.is_empty()));
        let Meaning::Console(exit) = m else {
            panic!("{m:?}")
        };
        let vm = crate::vm::VmOutcome {
            exit,
            accel: crate::vm::Accel::Tcg,
            boot_seconds: log.boot_seconds(),
            seconds: log.console_seconds().unwrap(),
        };
        let v = crate::verdict::judge(&analysis, &vm, None);
        assert_eq!(v.name(), "failed");
    }

    #[test]
    fn a_job_that_never_booted_is_infra_whatever_its_error_type() {
        let log = sample("missing-kernel.yaml");
        let m = meaning(&ending(&log, "Incomplete", false));
        assert!(
            matches!(&m, Meaning::Infra(r) if r.contains("does not exist") && r.contains("printed nothing")),
            "{m:?}"
        );
    }

    #[test]
    fn a_monitor_timeout_after_kernel_output_is_a_hang() {
        let log = sample("monitor-timeout.yaml");
        assert_eq!(
            meaning(&ending(&log, "Incomplete", false)),
            Meaning::Console(VmExit::Deadline)
        );
    }

    #[test]
    fn canceled_jobs_are_infra_unless_csdci_stopped_them_for_a_reason() {
        let log = sample("canceled-after-panic.yaml");
        assert_eq!(
            log.job_result().unwrap().error_type.as_deref(),
            Some("Canceled")
        );
        assert!(matches!(
            meaning(&ending(&log, "Canceled", false)),
            Meaning::Infra(_)
        ));
        let mut e = ending(&log, "Canceled", true);
        e.stopped = Some(Stop::Crash);
        assert_eq!(meaning(&e), Meaning::Console(VmExit::Stopped));
        e.stopped = Some(Stop::Silent);
        assert_eq!(meaning(&e), Meaning::Console(VmExit::Silent));
        e.stopped = Some(Stop::Queue);
        assert!(matches!(meaning(&e), Meaning::Infra(_)));
        e.stopped = Some(Stop::Deadline);
        e.kernel_output = false;
        assert!(matches!(meaning(&e), Meaning::Infra(r) if r.contains("printed nothing")));
    }

    #[test]
    fn a_panic_lava_reports_is_judged_by_the_console() {
        let job = JobResult {
            result: "fail".into(),
            error_type: Some("Job".into()),
            error_msg: Some("kernel panic".into()),
        };
        let e = Ending {
            health: "Incomplete",
            job: Some(&job),
            kernel_output: true,
            lava_panic: true,
            ..Ending::default()
        };
        assert_eq!(meaning(&e), Meaning::Console(VmExit::Panicked));
        let e = Ending {
            lava_panic: false,
            ..e
        };
        assert!(matches!(meaning(&e), Meaning::Infra(_)));
    }
}

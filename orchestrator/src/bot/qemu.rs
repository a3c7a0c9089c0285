//! Testing a series with the QEMU pipeline (a bot job's `test:`): the
//! nightly jobs' [`LocalTester`] with the job's [`RunSpec`], every kernel
//! build of it (kconfig and make) inside the [`Sandbox`] through
//! [`crate::sandbox::scoped`]: writable only csdci's sandboxed build
//! worktree (its own, never the nightly jobs' one, see
//! [`crate::build::worktree_dir`]), the modules staging folder and the
//! ccache; no network. The guest is QEMU (a VM, no network).
//!
//! A run fails when the job's predicate matches its console analysis; the
//! failure's text is the matching title and the console lines from the
//! first finding on, as the reply quotes them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::bisect::predicate::Predicate;
use crate::sandbox::Sandbox;
use crate::spec::RunSpec;
use crate::testers::local::{LocalTester, RunOptions};
use crate::testers::{Prepared, RunOutcome, Tester};

use super::test::{Run, SeriesTester};

/// The QEMU pipeline as a [`SeriesTester`].
pub struct QemuTester {
    inner: LocalTester,
    sandbox: Sandbox,
    predicate: Predicate,
    attempts: std::collections::HashMap<String, u32>,
}

impl QemuTester {
    /// Tests commits of `tree` (csdci's clone of the job's tree; the
    /// series' commits are in csdci's mirror of it) with `spec`, building in
    /// `sandbox` (its writable paths besides the build tree: the ccache).
    pub fn new(
        tree: &Path,
        data_dir: &Path,
        spec: &RunSpec,
        sandbox: Sandbox,
    ) -> crate::Result<Self> {
        let predicate = Predicate::parse(&spec.predicate).map_err(crate::Error::Usage)?;
        let opts = RunOptions::new(tree, data_dir, spec.clone())?;
        crate::interrupt::install_interrupt_handler();
        Ok(QemuTester {
            inner: LocalTester::new(opts)?,
            sandbox,
            predicate,
            attempts: Default::default(),
        })
    }
}

/// Console lines a failure's text quotes at most.
const QUOTED: usize = 10;

/// The title the predicate matched and the console from the first finding.
fn failure_text(
    predicate: &Predicate,
    a: &csdci_console::Analysis,
    console: Option<&Path>,
) -> String {
    let finding = a
        .findings
        .iter()
        .find(|f| predicate.matches_title(&f.title, f.kind));
    let title = finding
        .map(|f| f.title.clone())
        .or_else(|| a.title.clone())
        .unwrap_or_else(|| "kernel failure without a title".into());
    let mut out = vec![title];
    // The finding's own byte range (a few KiB read, whatever the console's
    // size); without a finding, the console's last lines.
    let lines = console
        .and_then(|p| std::fs::File::open(p).ok())
        .and_then(|mut f| {
            let lines = match finding.filter(|f| f.end_byte > f.start_byte) {
                Some(fd) => csdci_console::excerpt::around(
                    &mut f,
                    fd.start_byte..fd.end_byte,
                    QUOTED,
                    QUOTED,
                )
                .map(|e| e.lines.into_iter().chain(e.after).collect()),
                None => csdci_console::excerpt::tail(&mut f, QUOTED),
            };
            lines.ok()
        });
    out.extend(
        lines
            .unwrap_or_default()
            .iter()
            .filter(|l: &&String| !l.trim().is_empty())
            .take(QUOTED)
            .map(|l| super::reply::clean(l)),
    );
    out.join("\n")
}

/// Sets `flag` once `after` has passed, unless dropped before.
struct Deadline {
    done: Arc<(Mutex<bool>, Condvar)>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deadline {
    fn start(after: Duration, flag: Arc<AtomicBool>) -> Self {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (done.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*d;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = cv
                .wait_timeout_while(guard, after, |stopped| !*stopped)
                .unwrap_or_else(|e| e.into_inner());
            if !*guard {
                f.store(true, Ordering::SeqCst);
                flag.store(true, Ordering::SeqCst);
            }
        });
        Deadline {
            done,
            fired,
            thread: Some(thread),
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let (lock, cv) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SeriesTester for QemuTester {
    /// Builds in the sandbox, stopped at the sandbox's wall-clock limit
    /// (then it is a build failure saying so).
    fn build(&mut self, commit: &str) -> crate::Result<Result<(), Vec<String>>> {
        let flag = self.inner.cancel_flag();
        let deadline = Deadline::start(self.sandbox.limits.wall, flag.clone());
        let inner = &mut self.inner;
        let out = crate::sandbox::scoped(&self.sandbox, || inner.prepare(commit));
        let fired = deadline.fired();
        drop(deadline);
        if fired {
            flag.store(false, Ordering::SeqCst);
            return Ok(Err(vec![format!(
                "the build stopped at the sandbox's time limit ({} s)",
                self.sandbox.limits.wall.as_secs()
            )]));
        }
        match out? {
            Prepared::Ready { .. } => Ok(Ok(())),
            Prepared::Untestable { reason } => Ok(Err(vec![super::reply::clean(&reason)])),
        }
    }

    fn run(&mut self, commit: &str) -> crate::Result<Run> {
        let n = self.attempts.entry(commit.to_string()).or_insert(0);
        let attempt = *n;
        *n += 1;
        let inner = &mut self.inner;
        let report = crate::sandbox::scoped(&self.sandbox, || inner.run_once(commit, attempt))?;
        Ok(match report.outcome {
            RunOutcome::Pass => Run::Pass,
            RunOutcome::Fail => match &report.analysis {
                Some(a) if self.predicate.matches(a) => Run::Fail(failure_text(
                    &self.predicate,
                    a,
                    report.console_log.as_deref(),
                )),
                // Failed, but not as the predicate asks: a run, no failure.
                Some(_) => Run::Pass,
                None => Run::Fail("the run failed without a console".into()),
            },
            RunOutcome::Skip { reason } | RunOutcome::Infra { reason } => Run::Skip(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_sets_the_flag_only_when_it_passes() {
        let flag = Arc::new(AtomicBool::new(false));
        let d = Deadline::start(Duration::from_millis(50), flag.clone());
        std::thread::sleep(Duration::from_millis(300));
        assert!(d.fired() && flag.load(Ordering::SeqCst));
        drop(d);
        let flag = Arc::new(AtomicBool::new(false));
        let start = std::time::Instant::now();
        let d = Deadline::start(Duration::from_secs(60), flag.clone());
        drop(d);
        assert!(!flag.load(Ordering::SeqCst));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn failure_text_quotes_the_matching_finding_and_its_console() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let console = "[    1.0] boot\n\
[    2.0] smp: csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5000155348 ns for CPU#00 scf_handler_1+0x0/0x21 [scftorture](0xffff888003c1b4a0).\n\
[    2.0] smp:     csd: CSD lock (#1) handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request.\n\
[    3.0] smp: csd: CSD lock (#1) got unstuck on CPU#03, CPU#00 released the lock.\n";
        std::fs::write(&log, console).unwrap();
        let mut an = csdci_console::Analyzer::new();
        an.feed(console.as_bytes());
        let a = an.finish();
        assert!(Predicate::Csd.matches(&a), "{a:?}");
        let t = failure_text(&Predicate::Csd, &a, Some(&log));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("CSD lock"), "{t}");
        assert!(lines[1].contains("Detected non-responsive CSD lock"), "{t}");
        assert!(!t.contains("boot"), "{t}");
    }
}

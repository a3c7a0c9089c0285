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
    if let Some(text) = console.and_then(|p| std::fs::read(p).ok()) {
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let from = finding
            .map(|f| (f.line as usize).saturating_sub(1))
            .unwrap_or(lines.len().saturating_sub(10))
            .min(lines.len());
        out.extend(
            lines[from..]
                .iter()
                .filter(|l| !l.trim().is_empty())
                .take(10)
                .map(|l| super::reply::clean(l)),
        );
    }
    out.join("\n")
}

impl SeriesTester for QemuTester {
    fn build(&mut self, commit: &str) -> crate::Result<Result<(), Vec<String>>> {
        let inner = &mut self.inner;
        match crate::sandbox::scoped(&self.sandbox, || inner.prepare(commit))? {
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

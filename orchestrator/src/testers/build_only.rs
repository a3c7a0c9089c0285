//! The build tester: "does commit C compile with this configuration?". A
//! commit that does not build is bad, one that builds is good; nothing is
//! booted. It bisects a build break found by a nightly job, with the same
//! build (fragments, cache, worktree) the QEMU pipeline uses.

use crate::testers::local::LocalTester;
use crate::testers::{Prepared, RunOutcome, RunReport, Tester};

/// Judges commits by whether they build.
pub struct BuildTester {
    inner: LocalTester,
    /// Why the last prepared commit did not build.
    broken: std::collections::HashMap<String, String>,
}

impl BuildTester {
    /// Builds with `inner`'s options.
    pub fn new(inner: LocalTester) -> Self {
        BuildTester {
            inner,
            broken: Default::default(),
        }
    }
}

impl Tester for BuildTester {
    fn prepare(&mut self, commit: &str) -> crate::Result<Prepared> {
        match self.inner.prepare(commit)? {
            Prepared::Untestable { reason } => {
                self.broken.insert(commit.to_string(), reason);
                Ok(Prepared::Ready { artifact_id: None })
            }
            ready => {
                self.broken.remove(commit);
                Ok(ready)
            }
        }
    }

    fn run_once(&mut self, commit: &str, _attempt: u32) -> crate::Result<RunReport> {
        let outcome = if self.broken.contains_key(commit) {
            RunOutcome::Fail
        } else {
            RunOutcome::Pass
        };
        Ok(RunReport {
            outcome,
            analysis: None,
            console_log: None,
            run_id: None,
            seconds: 0.0,
            exposure: None,
        })
    }
}

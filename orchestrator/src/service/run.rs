//! Testing one commit on this host (or on a LAVA lab): build (or find in
//! the cache), boot, torture, judge, record.

use std::path::Path;

use crate::spec::RunSpec;
use crate::testers::local::{self, Reporter, RunOptions, RunResult};

/// Tests revision `rev` of `tree` as `spec` says, with csdci's data in
/// `data_dir`; the run is recorded in the store before it starts.
pub fn test_commit(
    tree: &Path,
    data_dir: &Path,
    rev: &str,
    spec: RunSpec,
    reporter: &mut dyn Reporter,
) -> crate::Result<RunResult> {
    let opts = RunOptions::new(tree, data_dir, spec)?;
    local::run_commit(&opts, rev, reporter)
}

/// Tests revision `rev` of `tree` once on the LAVA `lab`: built here,
/// booted there (an initramfs root), judged here; recorded as a local run is.
pub fn test_commit_on_lava(
    tree: &Path,
    data_dir: &Path,
    rev: &str,
    spec: RunSpec,
    lab: crate::testers::lava::Lab,
    reporter: &mut dyn Reporter,
) -> crate::Result<RunResult> {
    let spec = RunSpec {
        root: crate::vm::RootKind::Initramfs,
        ..spec
    };
    let opts = RunOptions::new(tree, data_dir, spec)?;
    let commit = crate::vcs::resolve(&crate::vcs::open_tree(tree)?, rev)?;
    let mut tester = crate::testers::lava::LavaTester::new(opts, lab)?;
    tester.run_full(&commit, reporter)
}

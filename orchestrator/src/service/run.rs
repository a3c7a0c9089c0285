//! Testing one commit on this host: build (or find in the cache), boot,
//! torture, judge, record.

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

//! What the real-kernel test files share: the imported kernel repository and
//! the data directory, so the cold kernel build happens once per machine.
#![allow(dead_code)] // each test binary uses its own part

pub mod kcidb;
pub mod repo;
pub mod smtp;

use std::path::{Path, PathBuf};

/// Where the tests import Debian's linux-source-6.12 (the demo's import; the
/// first test that needs it makes it).
pub const IMPORTED_REPO: &str = "/var/tmp/csdci-linux-6.12";

/// The imported kernel repository: `CSDCI_TEST_KERNEL_REPO`, else
/// [`IMPORTED_REPO`].
pub fn kernel_repo() -> PathBuf {
    std::env::var_os("CSDCI_TEST_KERNEL_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(IMPORTED_REPO))
}

/// The data directory every real-kernel test shares (artifact cache, runs):
/// `CSDCI_TEST_DATA_DIR`, else `<target>/tmp/csdci-run-tests`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("CSDCI_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("csdci-run-tests"))
}

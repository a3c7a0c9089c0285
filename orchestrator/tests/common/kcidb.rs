//! kcidb-io, the KCIDB schema's Python package from PyPI, in the virtualenv
//! `.ci/deps` makes: the real validator of csdci's KCIDB export.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The virtualenv with kcidb-io: `CSDCI_KCIDB_VENV`, else where `.ci/deps`
/// puts it.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("CSDCI_KCIDB_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/csdci-kcidb-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "no kcidb-io virtualenv at {}: run .ci/deps (as root) to make it",
        venv.display()
    );
    py
}

/// Validates `doc` with kcidb-io's `LATEST` schema; returns (ok, the
/// version LATEST is, the validator's message).
pub fn kcidb_validate(doc: &str) -> (bool, String, String) {
    let script = "import json, sys, kcidb_io\n\
        s = kcidb_io.schema.LATEST\n\
        print(f'{s.major}.{s.minor}')\n\
        sys.stdout.flush()\n\
        s.validate(json.load(sys.stdin))\n";
    let mut child = Command::new(venv_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the virtualenv's python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

//! Field test (issue 10, item 9): `csdci parse BIG | head -1` ends quietly
//! with exit 0 when `head` closes the pipe. A real pipe between two processes.

use std::process::{Command, Stdio};

const CSDCI: &str = env!("CARGO_BIN_EXE_csdci");

#[test]
fn a_closed_stdout_pipe_ends_quietly_with_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join(format!("console-{}.log", "x".repeat(80)));
    std::fs::write(
        &log,
        "[    0.000000] Linux version 6.12\n\
         [    1.000000] WARNING: CPU: 1 PID: 2 at kernel/smp.c:123 smp_call_function_single+0x1/0x2\n",
    )
    .unwrap();
    for json in [false, true] {
        // Far more output than a pipe holds (64 KiB), so csdci is still
        // writing when `head` exits.
        let mut csdci = Command::new(CSDCI);
        csdci.arg("parse");
        if json {
            csdci.arg("--json");
        }
        let mut csdci = csdci
            .args(std::iter::repeat_n(&log, 3000))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let head = Command::new("head")
            .arg("-1")
            .stdin(csdci.stdout.take().unwrap())
            .output()
            .unwrap();
        let out = csdci.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(String::from_utf8_lossy(&head.stdout).lines().count(), 1);
        assert_eq!(out.status.code(), Some(0), "json={json}: {err}");
        assert!(err.is_empty(), "json={json}: {err}");
    }
}

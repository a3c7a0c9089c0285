//! `contrib/systemd/csdci.service` passes `systemd-analyze verify` (Debian's
//! `systemd` package, which `.ci/deps` installs) and keeps the settings the README
//! promises.
//!
//! `verify` checks that ExecStart's program exists and that the man page named by
//! Documentation= is installed. The unit is checked as shipped except for
//! ExecStart's path: `/usr/local/bin/csdci` is replaced by the csdci this test
//! was built with (what `cargo install --root /usr/local` puts there), and
//! MANPATH points at the pages `csdci man --dir` writes.

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../contrib/systemd/csdci.service");
const EXEC_START: &str = "ExecStart=/usr/local/bin/csdci serve\n";

#[test]
fn the_unit_runs_csdci_serve_as_a_sandboxed_kvm_user() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for want in [
        EXEC_START.trim_end(),
        "User=csdci",
        "Group=csdci",
        "SupplementaryGroups=kvm",
        "StateDirectory=csdci",
        "Environment=CSDCI_DATA_DIR=/var/lib/csdci",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(lines.contains(&want), "csdci.service lacks {want}");
    }
    // Settings that would break QEMU or virtiofsd.
    for bad in [
        "PrivateDevices=",
        "MemoryDenyWriteExecute=",
        "RestrictNamespaces=",
        "PrivateUsers=",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(bad)),
            "csdci.service sets {bad}"
        );
    }
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let found = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !nix::unistd::Uid::effective().is_root(),
            "systemd-analyze not found: run .ci/deps (installs Debian's systemd)"
        );
        eprintln!(
            "!!! SKIPPED: systemd-analyze not found and not root, so cannot install \
             Debian's systemd; the unit was not verified"
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_csdci"));
    assert_eq!(UNIT.matches(EXEC_START).count(), 1, "one ExecStart");
    let unit = UNIT.replace(EXEC_START, &format!("ExecStart={} serve\n", bin.display()));
    let dir = t.path().join("system");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("csdci.service");
    std::fs::write(&path, unit).unwrap();
    let man = t.path().join("man");
    let o = Command::new(bin)
        .arg("man")
        .arg("--dir")
        .arg(man.join("man1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "csdci man --dir: {o:?}");

    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", &man)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "systemd-analyze verify failed ({}):\n{stdout}{stderr}",
        o.status
    );
    // Warnings (an unknown or misspelt key, a bad value) exit 0 but are printed.
    let complaints: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("csdci.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains:\n{}",
        complaints.join("\n")
    );
}

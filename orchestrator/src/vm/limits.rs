//! Host limits the CLI checks before it builds anything (e.g. `--vcpus` larger
//! than QEMU's machine allows is a usage error, not a failed run).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Error;
use super::process::{OwnedChild, procs_dir};
use super::qemu;
use super::qmp::Qmp;

/// The machine type csdci guests use.
pub const MACHINE: &str = "q35";

/// The most vCPUs QEMU accepts for csdci's machine type (QMP `query-machines`,
/// `cpu-max`; 288 for q35 on QEMU 7.2).
pub fn max_vcpus(data_dir: &Path) -> Result<u32, Error> {
    let (host, guest) = UnixStream::pair().map_err(|e| Error::Qmp(format!("socketpair: {e}")))?;
    let bin = qemu::binary();
    let mut cmd = Command::new(&bin);
    cmd.args([
        "-machine",
        "none",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-chardev",
        "socket,id=qmp,fd=3,server=off",
        "-mon",
        "chardev=qmp,mode=control",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let fd = guest.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _child = OwnedChild::spawn(cmd, "qemu (limits)", &procs_dir(data_dir)).map_err(|e| {
        Error::Spawn {
            program: bin.display().to_string(),
            source: e,
        }
    })?;
    drop(guest);
    let mut q = Qmp::connect(host, |_| {})?;
    let machines = q.execute(qapi::qmp::query_machines { compat_props: None })?;
    let _ = q.quit();
    cpu_max(&machines, MACHINE)
        .ok_or_else(|| Error::Qmp(format!("query-machines does not list machine '{MACHINE}'")))
}

/// `cpu-max` of `machine` (by name or alias) in a `query-machines` answer.
fn cpu_max(machines: &serde_json::Value, machine: &str) -> Option<u32> {
    machines.as_array()?.iter().find_map(|m| {
        let named = m.get("name").and_then(|n| n.as_str()) == Some(machine)
            || m.get("alias").and_then(|n| n.as_str()) == Some(machine);
        if named {
            m.get("cpu-max")?.as_u64().map(|n| n as u32)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_is_found_by_alias() {
        let v = serde_json::json!([
            {"name": "pc-i440fx-7.2", "alias": "pc", "cpu-max": 255},
            {"name": "pc-q35-7.2", "alias": "q35", "cpu-max": 288},
        ]);
        assert_eq!(cpu_max(&v, "q35"), Some(288));
        assert_eq!(cpu_max(&v, "virt"), None);
    }

    #[test]
    fn qemu_reports_its_limit() {
        if Command::new(qemu::binary())
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipping: qemu-system-x86_64 not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let n = max_vcpus(d.path()).unwrap();
        assert!(n >= 255, "q35 allows {n} vCPUs");
    }
}

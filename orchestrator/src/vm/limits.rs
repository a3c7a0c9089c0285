//! Host limits the CLI checks before it builds anything (e.g. `--vcpus` larger
//! than QEMU's machine allows is a usage error, not a failed run).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::Error;
use super::process::OwnedChild;
use super::qemu;
use super::qmp::Qmp;

/// The machine type csdci guests use.
pub const MACHINE: &str = "q35";

/// The vCPU limit assumed when QEMU cannot be asked: q35's on QEMU 7.2
/// (Debian bookworm).
pub const FALLBACK_MAX_VCPUS: u32 = 288;

/// The most vCPUs QEMU accepts for `machine` (a machine type name or alias,
/// e.g. [`MACHINE`]): `cpu-max` in QMP `query-machines`. QEMU is asked once per
/// process; when it cannot be asked (not installed, fails to start) or does not
/// list `machine`, this is [`FALLBACK_MAX_VCPUS`].
pub fn max_vcpus(machine: &str) -> u32 {
    static MACHINES: OnceLock<Option<serde_json::Value>> = OnceLock::new();
    let machines = MACHINES.get_or_init(|| {
        query_machines()
            .inspect_err(|e| {
                tracing::debug!(
                    "cannot ask QEMU its vCPU limits ({e}); assuming {FALLBACK_MAX_VCPUS}"
                )
            })
            .ok()
    });
    machines
        .as_ref()
        .and_then(|m| {
            let n = cpu_max(m, machine);
            if n.is_none() {
                tracing::debug!(
                    "QEMU does not list machine '{machine}'; assuming {FALLBACK_MAX_VCPUS} vCPUs"
                );
            }
            n
        })
        .unwrap_or(FALLBACK_MAX_VCPUS)
}

/// Asks QEMU (`-machine none`, QMP over an inherited socket) `query-machines`.
fn query_machines() -> Result<serde_json::Value, Error> {
    // The probe lives only for this call and dies with the calling thread
    // (PR_SET_PDEATHSIG), so its pid file goes to a folder of its own.
    let procs = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
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
    let _child =
        OwnedChild::spawn(cmd, "qemu (limits)", procs.path()).map_err(|e| Error::Spawn {
            program: bin.display().to_string(),
            source: e,
        })?;
    drop(guest);
    let mut q = Qmp::connect(host, |_| {})?;
    let machines = q.execute(qapi::qmp::query_machines { compat_props: None })?;
    let _ = q.quit();
    Ok(machines)
}

/// vCPUs per host CPU beyond which a TCG guest is too slow to torture: its
/// clock falls behind the host's and scftorture calls few functions.
/// Measured on a 2-core host (Linux 6.12 demo kernel, 30 s scftorture, one
/// thread per vCPU): 2 vCPUs 54,000 invocations/s, 4: 3,500, 8: 2,600, 16:
/// 2,000 with a 2.4–9.7 s boot and the workload's 30 s taking 30–32.5 s;
/// 32 vCPUs (16 per host CPU): a 30 s boot, the 30 s workload taking 57 s
/// and 900 invocations/s (README, "Large guests").
pub const TCG_VCPUS_PER_HOST_CPU: u32 = 8;

/// The warning for a TCG guest of `vcpus` on a host of `host_cpus` CPUs
/// past [`TCG_VCPUS_PER_HOST_CPU`] per host CPU (None: within it).
pub fn tcg_oversubscribed(vcpus: u32, host_cpus: u32) -> Option<String> {
    let limit = host_cpus.max(1).saturating_mul(TCG_VCPUS_PER_HOST_CPU);
    (vcpus > limit).then(|| {
        format!(
            "{vcpus} vCPUs under TCG on {host_cpus} host CPUs: past {limit} ({TCG_VCPUS_PER_HOST_CPU} per host CPU) the guest's clock falls behind and scftorture calls few functions, so runs are slow and weak; use fewer vCPUs or KVM"
        )
    })
}

/// This host's CPUs (what the process may run on).
pub fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
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
    fn tcg_past_eight_vcpus_per_host_cpu_is_warned_about() {
        assert_eq!(tcg_oversubscribed(16, 2), None);
        let w = tcg_oversubscribed(17, 2).unwrap();
        assert!(
            w.starts_with("17 vCPUs under TCG on 2 host CPUs: past 16"),
            "{w}"
        );
        assert_eq!(tcg_oversubscribed(8, 0), None);
        assert!(tcg_oversubscribed(9, 0).is_some());
    }

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
    fn max_vcpus_is_qemus_own_limit() {
        let Ok(out) = Command::new(qemu::binary()).arg("--version").output() else {
            eprintln!("skipping: qemu-system-x86_64 not installed");
            return;
        };
        let real = cpu_max(&query_machines().unwrap(), MACHINE).unwrap();
        assert_eq!(max_vcpus(MACHINE), real);
        assert_eq!(max_vcpus(MACHINE), real, "cached");
        assert!(real >= 255, "q35 allows {real} vCPUs");
        if String::from_utf8_lossy(&out.stdout).contains("version 7.2.") {
            assert_eq!(real, 288, "q35 of QEMU 7.2 (Debian bookworm)");
        }
        assert_eq!(max_vcpus("no-such-machine"), FALLBACK_MAX_VCPUS);
    }
}

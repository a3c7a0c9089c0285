//! Running one guest: QEMU with a virtiofs root (virtiofsd) or an initramfs
//! root (`-initrd`), QMP, the serial console streamed to a log file and to the
//! caller, deadlines, and cleanup.
//!
//! [`run`] is synchronous; it uses threads inside. Every process it starts is
//! owned ([`process::OwnedChild`]): killed when the run ends however it ends,
//! killed by the kernel when the calling thread dies, and recorded in a pid file
//! that [`reap_stale`] uses after a SIGKILLed csdci.
//!
//! Files: `qemu.rs` (the argv), `virtiofsd.rs`, `qmp.rs`, `accel.rs` (KVM
//! probe), `process.rs` (owned children), `session.rs` (the run loop),
//! `limits.rs` (QEMU's vCPU limit).
//!
//! Host programs: `qemu-system-x86_64` (`CSDCI_QEMU` overrides) and virtiofsd
//! (`/usr/lib/qemu/virtiofsd`, `CSDCI_VIRTIOFSD` overrides). One run per
//! `run_dir` at a time.

pub mod accel;
pub mod limits;
pub mod process;
pub mod qemu;
pub mod qmp;
mod session;
pub mod virtiofsd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::io_error::PathIo;

/// Infrastructure failures: the guest could not be run or observed. Never
/// evidence about the kernel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "virtiofsd not found (install qemu-system-x86 on Debian bookworm, or set CSDCI_VIRTIOFSD)"
    )]
    NoVirtiofsd,
    #[error("virtiofsd died ({status}): {log}")]
    VirtiofsdDied { status: String, log: String },
    #[error("qmp: {0}")]
    Qmp(String),
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error("bad vm config: {0}")]
    Config(String),
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(PathIo::new(path, source))
    }
}

/// Which accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when a probe boot shows it works on this host (cached), else TCG.
    Auto,
    /// KVM (`-cpu` model from the cached probe when there is one, else `host`).
    Kvm,
    /// TCG emulation, multi-threaded.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Auto => "auto",
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

impl std::str::FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            _ => Err(format!("unknown accelerator '{s}' (use auto, kvm or tcg)")),
        }
    }
}

/// Which kind of root file system the guest boots with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RootKind {
    /// A host folder served by virtiofsd (csdci's local default).
    #[default]
    Virtiofs,
    /// A gzip'd cpio archive passed with `-initrd` (what a LAVA lab boots,
    /// see [`crate::image::initramfs`]).
    Initramfs,
}

impl std::fmt::Display for RootKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootKind::Virtiofs => "virtiofs",
            RootKind::Initramfs => "initramfs",
        })
    }
}

impl std::str::FromStr for RootKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "virtiofs" => Ok(RootKind::Virtiofs),
            "initramfs" => Ok(RootKind::Initramfs),
            _ => Err(format!(
                "unknown guest root '{s}' (use virtiofs or initramfs)"
            )),
        }
    }
}

/// The guest's root file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// A host folder (from [`crate::image::prepare_run_root`]) served by virtiofsd.
    Virtiofs(PathBuf),
    /// An initramfs archive (from [`crate::image::initramfs::for_artifact`]).
    Initramfs(PathBuf),
}

impl Root {
    /// The kind of root.
    pub fn kind(&self) -> RootKind {
        match self {
            Root::Virtiofs(_) => RootKind::Virtiofs,
            Root::Initramfs(_) => RootKind::Initramfs,
        }
    }
}

/// One guest run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The kernel (`vmlinux`, booted via PVH with `-kernel`).
    pub kernel: PathBuf,
    /// The guest's root file system.
    pub root: Root,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM in MiB.
    pub memory_mb: u64,
    /// Accelerator wanted.
    pub accel: Accel,
    /// Appended to csdci's kernel command line ([`qemu::cmdline_for`]).
    pub cmdline_extra: String,
    /// Where the raw serial console is written.
    pub console_log: PathBuf,
    /// Folder for sockets and QEMU/virtiofsd logs (`qemu.stderr`,
    /// `virtiofsd.log`).
    pub run_dir: PathBuf,
    /// Wall-clock limit from QEMU start; past it csdci injects an NMI, then quits.
    pub deadline: Duration,
    /// Console silence limit; past it csdci injects an NMI, then quits.
    pub silence_timeout: Duration,
    /// csdci's data folder (accel probe cache, pid files of live children).
    pub data_dir: PathBuf,
}

/// What the caller's console callback wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep running.
    Continue,
    /// Stop the guest now (QMP `quit`); the run ends with [`VmExit::Stopped`].
    Stop,
}

/// How the guest run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmExit {
    /// The guest powered off by itself.
    PoweredOff,
    /// The guest panicked (pvpanic event), or reset without one (with
    /// `panic=-1` and `-no-reboot` a reset means a crash).
    Panicked,
    /// The run passed its deadline (csdci injected an NMI, then quit).
    Deadline,
    /// The console was silent too long (csdci injected an NMI, then quit).
    Silent,
    /// The console callback asked to stop.
    Stopped,
    /// QEMU exited without a guest shutdown; why (exit status, stderr tail).
    QemuDied(String),
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmOutcome {
    /// How it ended.
    pub exit: VmExit,
    /// The accelerator actually used (never `Auto`).
    pub accel: Accel,
    /// Seconds from QEMU start until the guest's init ran (kernel line
    /// "Run /sbin/init as init process" or the image's "csdci: init started").
    pub boot_seconds: Option<f64>,
    /// Seconds from QEMU start until QEMU was gone.
    pub seconds: f64,
}

/// Line csdci writes into the console log (and passes to the callback) when it
/// injects an NMI; everything after it was provoked by csdci.
pub const NMI_MARKER: &str = "csdci-host: injecting NMI";

/// Boots the guest and streams its console to `console_log` and `on_console`
/// until it powers off, panics, hits a limit, or `on_console` says
/// [`Control::Stop`]. `on_console` is also called with an empty slice at least
/// every 250 ms, so a caller can stop the run (e.g. on Ctrl-C) without output.
///
/// Spawn-from-this-thread rule: QEMU and virtiofsd die with the calling thread.
pub fn run(
    cfg: &VmConfig,
    on_console: &mut dyn FnMut(&[u8]) -> Control,
) -> Result<VmOutcome, Error> {
    session::run(cfg, on_console)
}

/// Kills QEMU/virtiofsd processes left behind by an earlier csdci that was
/// SIGKILLed, and returns what it killed. Call once at start.
pub fn reap_stale(data_dir: &Path) -> Result<Vec<String>, Error> {
    process::reap_stale(data_dir).map_err(|e| Error::io(process::procs_dir(data_dir), e))
}

pub use limits::max_vcpus;

/// The last 2000 bytes of a log file, for error messages.
fn tail_of(path: &Path) -> String {
    let s = std::fs::read(path).unwrap_or_default();
    let start = s.len().saturating_sub(2000);
    String::from_utf8_lossy(&s[start..]).trim().to_string()
}

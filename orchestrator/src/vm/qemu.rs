//! The QEMU command line, in one place.
//!
//! The guest boots `vmlinux` directly (PVH, `-kernel`), its root file system is a
//! host folder served by virtiofsd (`vhost-user-fs-pci`, which needs guest RAM in
//! a shared memfd) or an initramfs (`-initrd`, as a LAVA lab boots it), the serial console goes to QEMU's stdout (a pipe csdci
//! reads), QMP runs over an inherited socket (no path-length limits), and
//! `-device pvpanic` reports guest panics as QMP `GUEST_PANICKED` events.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::RootKind;

/// The QEMU binary (`CSDCI_QEMU` overrides it).
pub fn binary() -> PathBuf {
    std::env::var_os("CSDCI_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

/// Accelerator and CPU model QEMU runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// Hardware virtualisation with the given `-cpu` model (e.g. `host`).
    Kvm { cpu: String },
    /// Multi-threaded TCG emulation (`-cpu max`).
    Tcg,
}

impl Engine {
    /// The `-accel` and `-cpu` arguments.
    pub fn args(&self) -> [String; 4] {
        match self {
            Engine::Kvm { cpu } => ["-accel".into(), "kvm".into(), "-cpu".into(), cpu.clone()],
            Engine::Tcg => [
                "-accel".into(),
                "tcg,thread=multi".into(),
                "-cpu".into(),
                "max".into(),
            ],
        }
    }
}

/// Kernel command line options every csdci guest gets, before the caller's extra
/// options: serial console, virtiofs root, CSD-lock debugging, reboot (hence,
/// with `-no-reboot`, QEMU exit) right after a panic, and a panic with
/// backtraces of every CPU when csdci injects an NMI into a hung guest.
pub const BASE_CMDLINE: &str = "console=ttyS0,115200 rootfstype=virtiofs root=root rw \
     csdlock_debug=1 panic=-1 unknown_nmi_panic panic_print=0x40";

/// [`BASE_CMDLINE`] without the virtiofs root options: the kernel runs the
/// initramfs's `/init` (the default `rdinit=`).
pub const INITRAMFS_CMDLINE: &str = "console=ttyS0,115200 \
     csdlock_debug=1 panic=-1 unknown_nmi_panic panic_print=0x40";

/// The virtiofs tag the guest mounts as its root (`root=` above).
pub const ROOT_TAG: &str = "root";

/// Builds the full kernel command line of a virtiofs-root guest.
pub fn cmdline(extra: &str) -> String {
    cmdline_for(RootKind::Virtiofs, extra)
}

/// Builds the full kernel command line for a guest with a `root` root:
/// [`BASE_CMDLINE`] or [`INITRAMFS_CMDLINE`], then `extra`.
pub fn cmdline_for(root: RootKind, extra: &str) -> String {
    let base = match root {
        RootKind::Virtiofs => BASE_CMDLINE,
        RootKind::Initramfs => INITRAMFS_CMDLINE,
    };
    let extra = extra.trim();
    if extra.is_empty() {
        base.to_string()
    } else {
        format!("{base} {extra}")
    }
}

/// Where the guest's root comes from, as QEMU sees it.
#[derive(Debug, Clone, Copy)]
pub enum RootArg<'a> {
    /// virtiofsd's vhost-user socket (relative to QEMU's working directory is fine).
    Virtiofs {
        /// The socket.
        socket: &'a Path,
    },
    /// The initramfs archive (`-initrd`).
    Initrd(&'a Path),
}

/// Everything the argv depends on.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// vmlinux to boot.
    pub kernel: &'a Path,
    /// Accelerator.
    pub engine: &'a Engine,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM in MiB.
    pub memory_mb: u64,
    /// Full kernel command line.
    pub append: &'a str,
    /// The root file system.
    pub root: RootArg<'a>,
    /// File descriptor number of the QMP socket QEMU inherits.
    pub qmp_fd: i32,
}

/// The argv (without the binary) for a test run.
pub fn argv(spec: &Spec<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in ["-nodefaults", "-no-user-config", "-machine", "q35"] {
        push(s);
    }
    for s in spec.engine.args() {
        push(&s);
    }
    let m = spec.memory_mb;
    for s in [
        "-smp".to_string(),
        spec.vcpus.to_string(),
        "-m".into(),
        format!("{m}M"),
    ] {
        push(&s);
    }
    if let RootArg::Virtiofs { .. } = spec.root {
        // vhost-user needs the guest RAM in memory virtiofsd can map.
        for s in [
            "-object".into(),
            format!("memory-backend-memfd,id=mem,size={m}M,share=on"),
            "-numa".into(),
            "node,memdev=mem".into(),
        ] {
            push(&s);
        }
    }
    for s in [
        "-display".to_string(),
        "none".into(),
        "-chardev".into(),
        "stdio,id=con,signal=off".into(),
        "-serial".into(),
        "chardev:con".into(),
        "-chardev".into(),
        format!("socket,id=qmp,fd={},server=off", spec.qmp_fd),
        "-mon".into(),
        "chardev=qmp,mode=control".into(),
        "-device".into(),
        "pvpanic".into(),
        "-action".into(),
        "panic=none".into(),
        "-no-reboot".into(),
    ] {
        push(&s);
    }
    match spec.root {
        RootArg::Virtiofs { socket } => {
            let mut fs = OsString::from("socket,id=fs,path=");
            fs.push(socket);
            a.push("-chardev".into());
            a.push(fs);
            a.push("-device".into());
            a.push(format!("vhost-user-fs-pci,chardev=fs,tag={ROOT_TAG}").into());
        }
        RootArg::Initrd(archive) => {
            a.push("-initrd".into());
            a.push(archive.into());
        }
    }
    a.push("-kernel".into());
    a.push(spec.kernel.into());
    a.push("-append".into());
    a.push(spec.append.into());
    a
}

/// The argv for the KVM probe: the kernel alone (no root file system, one
/// serial console on stdout), which boots until it finds no root and panics.
pub fn probe_argv(kernel: &Path, engine: &Engine) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-nodefaults", "-no-user-config", "-machine", "q35"]
        .iter()
        .map(OsString::from)
        .collect();
    a.extend(engine.args().iter().map(OsString::from));
    for s in [
        "-smp",
        "2",
        "-m",
        "256M",
        "-display",
        "none",
        "-chardev",
        "stdio,id=con,signal=off",
        "-serial",
        "chardev:con",
        "-no-reboot",
        "-kernel",
    ] {
        a.push(s.into());
    }
    a.push(kernel.into());
    a.push("-append".into());
    a.push("console=ttyS0,115200 panic=-1 root=/dev/csdci-probe-no-root".into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(a: &[OsString]) -> String {
        a.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn argv_has_what_virtiofs_and_pvh_need() {
        let engine = Engine::Tcg;
        let append = cmdline("foo=1");
        let spec = Spec {
            kernel: Path::new("/k/vmlinux"),
            engine: &engine,
            vcpus: 8,
            memory_mb: 2048,
            append: &append,
            root: RootArg::Virtiofs {
                socket: Path::new("virtiofs.sock"),
            },
            qmp_fd: 3,
        };
        let s = joined(&argv(&spec));
        for want in [
            "-accel tcg,thread=multi -cpu max",
            "-smp 8 -m 2048M",
            "-object memory-backend-memfd,id=mem,size=2048M,share=on -numa node,memdev=mem",
            "-chardev socket,id=fs,path=virtiofs.sock -device vhost-user-fs-pci,chardev=fs,tag=root",
            "-chardev socket,id=qmp,fd=3,server=off -mon chardev=qmp,mode=control",
            "-device pvpanic",
            "-no-reboot",
            "-kernel /k/vmlinux",
        ] {
            assert!(s.contains(want), "missing {want:?} in {s}");
        }
        let a = argv(&spec);
        let i = a.iter().position(|x| x == "-append").unwrap();
        let append = a[i + 1].to_string_lossy();
        assert!(append.starts_with("console=ttyS0"));
        assert!(append.contains("rootfstype=virtiofs root=root rw"));
        assert!(append.contains("csdlock_debug=1"));
        assert!(append.ends_with(" foo=1"));
    }

    #[test]
    fn kvm_engine_uses_the_probed_cpu_model() {
        let e = Engine::Kvm {
            cpu: "host,-arch-capabilities".into(),
        };
        let s = joined(&probe_argv(Path::new("/k/vmlinux"), &e));
        assert!(s.contains("-accel kvm -cpu host,-arch-capabilities"));
        assert!(s.contains("-kernel /k/vmlinux"));
        assert!(!s.contains("vhost-user-fs"));
    }

    #[test]
    fn empty_extra_adds_nothing() {
        assert_eq!(cmdline("  "), BASE_CMDLINE);
    }

    #[test]
    fn initramfs_guest_gets_initrd_and_no_virtiofs() {
        let engine = Engine::Tcg;
        let append = cmdline_for(RootKind::Initramfs, "foo=1");
        let spec = Spec {
            kernel: Path::new("/k/vmlinux"),
            engine: &engine,
            vcpus: 4,
            memory_mb: 1024,
            append: &append,
            root: RootArg::Initrd(Path::new("/c/initramfs.cpio.gz")),
            qmp_fd: 3,
        };
        let s = joined(&argv(&spec));
        assert!(s.contains("-smp 4 -m 1024M -display none"), "{s}");
        assert!(
            s.contains("-initrd /c/initramfs.cpio.gz -kernel /k/vmlinux"),
            "{s}"
        );
        for absent in ["vhost-user-fs", "memory-backend-memfd", "-numa", "virtiofs"] {
            assert!(!s.contains(absent), "{absent} in {s}");
        }
        // The same options as a virtiofs guest, less the virtiofs root ones.
        assert_eq!(
            BASE_CMDLINE.replace(" rootfstype=virtiofs root=root rw", ""),
            INITRAMFS_CMDLINE
        );
        assert_eq!(append, format!("{INITRAMFS_CMDLINE} foo=1"));
    }
}

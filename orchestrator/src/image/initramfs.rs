//! The initramfs root: the same guest as the virtiofs root (busybox, the one
//! init `images/init.sh`, the kernel's modules, `/csdci/params`) packed into a
//! gzip'd newc cpio that QEMU loads with `-initrd`. LAVA's qemu device has no
//! virtiofs, so every LAVA run boots this; `csdci run --root initramfs` boots
//! it locally, to check what a lab will run.
//!
//! The archive holds the base image ([`super::ensure_base`]: static busybox,
//! its applet links, empty mount points), `/init` (`images/init.sh`, the file
//! the kernel runs from an initramfs; also at `/sbin/init` as in the base),
//! `/dev/console` (so init has a console before it mounts devtmpfs), every
//! module of the kernel (`lib/modules/<release>/`, `modules.dep` included,
//! without the `build`/`source` links) and the run's `/csdci/params`. The init
//! is unchanged: it prints the same `csdci: ` markers, so the console analyzer
//! and the stage detection read a LAVA log as they read a local one.
//!
//! Archives are cached next to the kernel, in
//! `<cache entry>/initramfs/<key>.cpio.gz`, keyed by the artifact id, the base
//! (busybox bytes and init script) and the rendered params; equal inputs give
//! byte-identical archives (mtimes 0, owner root, gzip without a timestamp).
//!
//! The kernel needs `CONFIG_BLK_DEV_INITRD=y` and `CONFIG_RD_GZIP=y`: csdci's
//! `configs/qemu-base.config` sets both, so the kernel of a virtiofs run boots
//! an initramfs too (one build serves both roots); an archive for a kernel
//! built without them is refused with [`Error::NoInitrd`].
//!
//! For a lab (the LAVA tester): build the kernel with the spec's fragments, then
//!
//! ```no_run
//! # fn f(data_dir: &std::path::Path, entry: &csdci::build::Entry) -> Result<(), csdci::image::Error> {
//! use csdci::image::initramfs;
//! use csdci::spec::RunSpec;
//! let spec = RunSpec { root: csdci::vm::RootKind::Initramfs, ..RunSpec::default() };
//! let boot = initramfs::boot(data_dir, entry, &spec)?;
//! // Publish boot.kernel and boot.initramfs; boot QEMU with
//! // `-kernel <kernel> -initrd <initramfs> -append "<boot.cmdline>"`,
//! // `-smp spec.vcpus -m spec.memory_mb`, serial console on ttyS0. The guest
//! // prints "csdci: init started", runs scftorture for spec.duration_s,
//! // prints "csdci: workload done" and powers off (or panics: panic=-1).
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::{Error, GuestParams, INIT_SCRIPT, ensure_base, run_root};
use crate::build::Entry;
use crate::spec::RunSpec;
use crate::vm::RootKind;

/// Bump when the archive's layout changes without its inputs changing.
const RECIPE_VERSION: &str = "1";

/// The folder of a cache entry that holds its archives.
const DIR: &str = "initramfs";

/// What a lab needs to boot one run: the kernel, the archive, the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The kernel image (`vmlinux`, booted by QEMU through PVH with `-kernel`,
    /// as the local pipeline does).
    pub kernel: PathBuf,
    /// The gzip'd cpio (`-initrd`).
    pub initramfs: PathBuf,
    /// The full kernel command line (`-append`), csdci's own plus the spec's
    /// `cmdline_extra`: the one the local pipeline uses for an initramfs guest.
    pub cmdline: String,
}

/// The kernel command line of an initramfs run of `spec`
/// ([`crate::vm::qemu::cmdline_for`]).
pub fn kernel_cmdline(spec: &RunSpec) -> String {
    crate::vm::qemu::cmdline_for(RootKind::Initramfs, &spec.cmdline_extra)
}

/// The kernel, archive (built or cached, [`for_artifact`]) and command line
/// for one run of `spec` on the kernel in `entry`.
pub fn boot(data_dir: &Path, entry: &Entry, spec: &RunSpec) -> Result<Boot, Error> {
    Ok(Boot {
        kernel: entry.vmlinux(),
        initramfs: for_artifact(data_dir, entry, &spec.guest_params())?,
        cmdline: kernel_cmdline(spec),
    })
}

/// The archive for the kernel in `entry` with `params`, built on first use and
/// cached in the entry's folder; `data_dir` holds the base image.
pub fn for_artifact(
    data_dir: &Path,
    entry: &Entry,
    params: &GuestParams,
) -> Result<PathBuf, Error> {
    let rendered = params.render()?;
    let config = entry.config();
    let text = fs::read_to_string(&config).map_err(|e| Error::io(&config, e))?;
    for want in ["CONFIG_BLK_DEV_INITRD=y", "CONFIG_RD_GZIP=y"] {
        if !text.lines().any(|l| l.trim() == want) {
            return Err(Error::NoInitrd {
                config,
                missing: want.into(),
            });
        }
    }
    let modules = entry.modules();
    let releases = run_root::module_releases(&modules)?;
    let base = ensure_base(data_dir)?;
    // The background load program, when the run has one (its folder name
    // carries its hash; left out of the key without a load).
    let tlbload = if params.load.is_none() {
        None
    } else {
        Some(super::load::ensure_tlbload(data_dir)?)
    };
    let mut h = Sha256::new();
    for part in [
        RECIPE_VERSION,
        &base.file_name().unwrap_or_default().to_string_lossy(),
        &entry.manifest.artifact_id,
        &rendered,
    ] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    if let Some(t) = tlbload.as_ref().and_then(|t| t.parent()) {
        h.update(t.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(b"\0");
    }
    let key = hex::encode(h.finalize());
    let dir = entry.dir.join(DIR);
    let path = dir.join(format!("{}.cpio.gz", &key[..16]));
    if path.is_file() {
        return Ok(path);
    }
    let mut nodes = BTreeMap::new();
    add_tree(&mut nodes, &base, "")?;
    for rel in &releases {
        let name = format!("lib/modules/{rel}");
        add_tree(&mut nodes, &modules.join(&name), &name)?;
    }
    nodes.insert("init".into(), Node::Bytes(INIT_SCRIPT.into(), 0o755));
    nodes.insert("csdci/params".into(), Node::Bytes(rendered.into(), 0o644));
    nodes.insert("dev/console".into(), Node::CharDev(0o600, 5, 1));
    if let Some(t) = tlbload {
        nodes.insert(super::load::TLBLOAD_GUEST_PATH.into(), Node::File(t, 0o755));
    }
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let tmp = dir.join(format!(".tmp-{}-{}", &key[..16], std::process::id()));
    write_archive(&nodes, &tmp).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(&tmp, e)
    })?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// One archive member.
#[derive(Debug)]
enum Node {
    Dir(u32),
    File(PathBuf, u32),
    Bytes(Vec<u8>, u32),
    Symlink(PathBuf),
    CharDev(u32, u32, u32),
}

/// Adds the tree `from` under the archive name `prefix` (folders, files,
/// symlinks; the `build`/`source` links of `modules_install` left out).
fn add_tree(nodes: &mut BTreeMap<String, Node>, from: &Path, prefix: &str) -> Result<(), Error> {
    if !prefix.is_empty() {
        // The parents of a nested prefix (`lib/modules/<release>`).
        let mut acc = String::new();
        for c in prefix.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            nodes.entry(acc.clone()).or_insert(Node::Dir(0o755));
        }
    }
    for e in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        let src = e.path();
        let file_name = e.file_name();
        let Some(fname) = file_name.to_str() else {
            continue;
        };
        if fname.starts_with(".csdci-") {
            continue;
        }
        let name = if prefix.is_empty() {
            fname.to_string()
        } else {
            format!("{prefix}/{fname}")
        };
        let meta = fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            if fname == "build" || fname == "source" {
                continue;
            }
            let target = fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
            nodes.insert(name, Node::Symlink(target));
        } else if ft.is_dir() {
            nodes.insert(name.clone(), Node::Dir(mode));
            add_tree(nodes, &src, &name)?;
        } else if ft.is_file() {
            nodes.insert(name, Node::File(src, mode));
        }
    }
    Ok(())
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes `nodes` (sorted by name, so every folder comes before its
/// contents) as a gzip'd newc cpio to `path`.
fn write_archive(nodes: &BTreeMap<String, Node>, path: &Path) -> std::io::Result<()> {
    let file = fs::File::create(path)?;
    let mut gz = GzEncoder::new(BufWriter::new(file), Compression::default());
    for (i, (name, node)) in nodes.iter().enumerate() {
        let b = cpio::NewcBuilder::new(name)
            .ino(i as u32 + 1)
            .uid(0)
            .gid(0)
            .mtime(0);
        let (b, data): (_, std::borrow::Cow<'_, [u8]>) = match node {
            Node::Dir(mode) => (b.mode(S_IFDIR | mode).nlink(2), Default::default()),
            Node::File(src, mode) => (b.mode(S_IFREG | mode), fs::read(src)?.into()),
            Node::Bytes(bytes, mode) => (b.mode(S_IFREG | mode), bytes.as_slice().into()),
            Node::Symlink(target) => (
                b.mode(S_IFLNK | 0o777),
                target.as_os_str().as_encoded_bytes().into(),
            ),
            Node::CharDev(mode, major, minor) => (
                b.mode(S_IFCHR | mode).rdev_major(*major).rdev_minor(*minor),
                Default::default(),
            ),
        };
        let size = u32::try_from(data.len())
            .map_err(|_| std::io::Error::other(format!("{name}: too large for a cpio archive")))?;
        let mut w = b.write(&mut gz, size);
        w.write_all(&data)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut gz)?;
    let mut out = gz.finish()?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::cache::{CacheKey, Manifest};
    use crate::kconfig::Fragment;
    use std::io::Read;
    use std::process::{Command, Stdio};

    fn busybox() -> bool {
        let ok = Path::new("/bin/busybox").exists();
        if !ok {
            eprintln!("skipping: /bin/busybox not installed (apt-get install busybox-static)");
        }
        ok
    }

    fn fake_entry(dir: &Path, config: &str) -> Entry {
        let rel = dir.join("modules/lib/modules/6.12.0-test");
        fs::create_dir_all(rel.join("kernel/kernel")).unwrap();
        fs::write(rel.join("kernel/kernel/scftorture.ko"), b"scf").unwrap();
        fs::write(rel.join("kernel/kernel/torture.ko"), b"tort").unwrap();
        fs::write(
            rel.join("modules.dep"),
            "kernel/kernel/scftorture.ko: kernel/kernel/torture.ko\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/nonexistent/build", rel.join("build")).unwrap();
        fs::write(dir.join("vmlinux"), b"kernel").unwrap();
        fs::write(dir.join("config"), config).unwrap();
        Entry {
            dir: dir.to_path_buf(),
            manifest: Manifest {
                key: CacheKey {
                    tree_id: "t".into(),
                    config_hash: "c".into(),
                    compiler: "gcc".into(),
                },
                artifact_id: "a".repeat(64),
                release: "6.12.0-test".into(),
                commit: "c".repeat(40),
                build_seconds: 1.0,
                created: "now".into(),
            },
        }
    }

    const CONFIG: &str = "CONFIG_SMP=y\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\n";

    fn params(duration_s: u64) -> GuestParams {
        GuestParams {
            scftorture: "nthreads=4 weight_resched=0".into(),
            duration_s,
            load: crate::image::Load::None,
        }
    }

    /// `gzip -dc archive | cpio -t[v]`: the archive as the real tools read it.
    fn cpio_list(archive: &Path, verbose: bool) -> String {
        let gz = fs::File::open(archive).unwrap();
        let mut gunzip = Command::new("gzip")
            .arg("-dc")
            .stdin(gz)
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip");
        let out = Command::new("cpio")
            .arg(if verbose { "-tv" } else { "-t" })
            .arg("--quiet")
            .stdin(gunzip.stdout.take().unwrap())
            .output()
            .expect("cpio (apt-get install cpio)");
        assert!(gunzip.wait().unwrap().success(), "gzip -dc failed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The content of one member, read back with the cpio crate.
    fn member(archive: &Path, name: &str) -> Option<Vec<u8>> {
        let mut r = flate2::read::GzDecoder::new(fs::File::open(archive).unwrap());
        loop {
            let mut e = cpio::NewcReader::new(r).unwrap();
            if e.entry().is_trailer() {
                return None;
            }
            if e.entry().name() == name {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                return Some(v);
            }
            r = e.finish().unwrap();
        }
    }

    #[test]
    fn archive_has_init_busybox_modules_params_and_a_console() {
        if !busybox() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let entry = fake_entry(&d.path().join("entry"), CONFIG);
        let a = for_artifact(&d.path().join("data"), &entry, &params(30)).unwrap();
        assert!(
            a.starts_with(entry.dir.join("initramfs")),
            "{}",
            a.display()
        );
        let list = cpio_list(&a, false);
        let names: Vec<&str> = list.lines().collect();
        for want in [
            "init",
            "bin/busybox",
            "bin/sh",
            "sbin/modprobe",
            "sbin/poweroff",
            "proc",
            "sys",
            "dev",
            "dev/console",
            "tmp",
            "csdci/params",
            "lib/modules/6.12.0-test/modules.dep",
            "lib/modules/6.12.0-test/kernel/kernel/scftorture.ko",
            "lib/modules/6.12.0-test/kernel/kernel/torture.ko",
        ] {
            assert!(names.contains(&want), "no {want} in:\n{list}");
        }
        assert!(!names.contains(&"lib/modules/6.12.0-test/build"), "{list}");
        // Every folder comes before what it holds (the kernel creates files
        // in order and needs the parent).
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(
            pos("lib") < pos("lib/modules") && pos("lib/modules") < pos("lib/modules/6.12.0-test")
        );
        let verbose = cpio_list(&a, true);
        let line = |n: &str| {
            verbose
                .lines()
                .find(|l| l.ends_with(&format!(" {n}")) || l.contains(&format!(" {n} -> ")))
                .unwrap_or_else(|| panic!("no {n} in:\n{verbose}"))
                .to_string()
        };
        assert!(line("init").starts_with("-rwxr-xr-x"), "{}", line("init"));
        assert!(
            line("bin/busybox").starts_with("-rwxr-xr-x"),
            "{}",
            line("bin/busybox")
        );
        assert!(
            line("dev/console").starts_with("crw-------"),
            "{}",
            line("dev/console")
        );
        assert!(
            line("bin/sh").contains("bin/sh -> /bin/busybox"),
            "{}",
            line("bin/sh")
        );
        assert!(line("proc").starts_with("drwx"), "{}", line("proc"));
        assert_eq!(member(&a, "init").unwrap(), INIT_SCRIPT.as_bytes());
        assert_eq!(
            member(&a, "bin/busybox").unwrap(),
            fs::read("/bin/busybox").unwrap()
        );
        assert_eq!(
            String::from_utf8(member(&a, "csdci/params").unwrap()).unwrap(),
            "CSDCI_SCFTORTURE='nthreads=4 weight_resched=0'\nCSDCI_DURATION_S=30\n"
        );
        assert_eq!(
            member(&a, "lib/modules/6.12.0-test/kernel/kernel/scftorture.ko").unwrap(),
            b"scf"
        );
    }

    #[test]
    fn archives_are_cached_per_params_and_reproducible() {
        if !busybox() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let entry = fake_entry(&d.path().join("entry"), CONFIG);
        let a = for_artifact(&data, &entry, &params(30)).unwrap();
        let bytes = fs::read(&a).unwrap();
        let t = fs::metadata(&a).unwrap().modified().unwrap();
        assert_eq!(for_artifact(&data, &entry, &params(30)).unwrap(), a);
        assert_eq!(fs::metadata(&a).unwrap().modified().unwrap(), t);
        let b = for_artifact(&data, &entry, &params(45)).unwrap();
        assert_ne!(a, b);
        assert!(
            String::from_utf8(member(&b, "csdci/params").unwrap())
                .unwrap()
                .contains("=45")
        );
        // Rebuilt from scratch: the same bytes (no timestamps inside).
        fs::remove_file(&a).unwrap();
        assert_eq!(
            fs::read(for_artifact(&data, &entry, &params(30)).unwrap()).unwrap(),
            bytes
        );
        // No temporary files left next to them.
        let left: Vec<_> = fs::read_dir(entry.dir.join(DIR))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".cpio.gz"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_kernel_without_initrd_support_or_bad_params_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let entry = fake_entry(
            &d.path().join("entry"),
            "CONFIG_SMP=y\n# CONFIG_BLK_DEV_INITRD is not set\n",
        );
        let e = for_artifact(&d.path().join("data"), &entry, &params(30))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CONFIG_BLK_DEV_INITRD=y") && e.contains("configs/qemu-base.config"),
            "{e}"
        );
        assert!(e.contains(&entry.config().display().to_string()), "{e}");
        let entry = fake_entry(&d.path().join("entry2"), CONFIG);
        let bad = GuestParams {
            scftorture: "x=1; reboot".into(),
            duration_s: 30,
            load: crate::image::Load::None,
        };
        assert!(matches!(
            for_artifact(&d.path().join("data"), &entry, &bad),
            Err(Error::BadParams { .. })
        ));
    }

    #[test]
    fn boot_gives_vmlinux_the_archive_and_the_initramfs_command_line() {
        if !busybox() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let entry = fake_entry(&d.path().join("entry"), CONFIG);
        let spec = RunSpec {
            vcpus: 4,
            duration_s: 20,
            cmdline_extra: "nokaslr".into(),
            root: RootKind::Initramfs,
            ..RunSpec::default()
        };
        let b = boot(&d.path().join("data"), &entry, &spec).unwrap();
        assert_eq!(b.kernel, entry.vmlinux());
        assert!(b.initramfs.is_file());
        assert!(
            b.cmdline.starts_with("console=ttyS0,115200 "),
            "{}",
            b.cmdline
        );
        assert!(b.cmdline.contains("csdlock_debug=1"), "{}", b.cmdline);
        assert!(b.cmdline.ends_with(" nokaslr"), "{}", b.cmdline);
        assert!(!b.cmdline.contains("virtiofs"), "{}", b.cmdline);
        let p = String::from_utf8(member(&b.initramfs, "csdci/params").unwrap()).unwrap();
        assert_eq!(
            p,
            "CSDCI_SCFTORTURE='nthreads=4 weight_resched=0'\nCSDCI_DURATION_S=20\n"
        );
    }

    #[test]
    fn csdcis_fragments_turn_on_initrd_and_gzip() {
        let names: Vec<String> = Fragment::defaults()
            .iter()
            .flat_map(|f| f.settings().unwrap())
            .map(|s| format!("{}={}", s.name, s.value))
            .collect();
        for want in ["BLK_DEV_INITRD=y", "RD_GZIP=y"] {
            assert!(names.iter().any(|n| n == want), "{want}: {names:?}");
        }
    }
}

//! The base image: static busybox, its applet links, the init, empty mount
//! points. Built once per (busybox bytes, init script) under
//! `<data_dir>/image/base-<hash>/` and reused.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::Error;

/// The guest init (`images/init.sh`), installed as `/sbin/init`.
pub const INIT_SCRIPT: &str = include_str!("../../../images/init.sh");

/// Bump when the base layout changes without busybox or the init changing.
const RECIPE_VERSION: &str = "1";

/// Folders every base has.
const DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "proc",
    "sys",
    "dev",
    "tmp",
    "run",
    "root",
    "etc",
    "lib/modules",
    "csdci",
];

/// Marker file written last: a base without it is incomplete.
const COMPLETE: &str = ".csdci-base-complete";

/// The host busybox (`CSDCI_BUSYBOX` overrides `/bin/busybox`).
fn busybox_path() -> PathBuf {
    std::env::var_os("CSDCI_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// True when `elf` is an ELF file with a program interpreter (dynamically linked).
pub(super) fn has_interpreter(elf: &[u8]) -> bool {
    let rd16 = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let rd32 = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let rd64 = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (rd64(0x20), rd16(0x36), rd16(0x38)) else {
        return false;
    };
    (0..phnum).any(|i| rd32(phoff + i * phentsize) == Some(3)) // PT_INTERP
}

/// Builds the base image if needed and returns its folder.
pub fn ensure_base(data_dir: &Path) -> Result<PathBuf, Error> {
    let bb = busybox_path();
    let bytes = fs::read(&bb).map_err(|_| Error::NoBusybox(bb.clone()))?;
    if has_interpreter(&bytes) {
        return Err(Error::DynamicBusybox(bb));
    }
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION);
    h.update(&bytes);
    h.update(INIT_SCRIPT);
    let hash = hex::encode(h.finalize());
    let images = data_dir.join("image");
    let dir = images.join(format!("base-{}", &hash[..16]));
    if dir.join(COMPLETE).exists() {
        return Ok(dir);
    }
    fs::create_dir_all(&images).map_err(|e| Error::io(&images, e))?;
    let tmp = images.join(format!(".tmp-base-{}-{}", &hash[..16], std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    build(&bb, &bytes, &tmp)?;
    if dir.exists() {
        // An incomplete leftover (or a concurrent build that just finished).
        if dir.join(COMPLETE).exists() {
            let _ = fs::remove_dir_all(&tmp);
            return Ok(dir);
        }
        fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

fn build(bb: &Path, bytes: &[u8], dir: &Path) -> Result<(), Error> {
    for d in DIRS {
        let p = dir.join(d);
        fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    }
    let target = dir.join("bin/busybox");
    fs::write(&target, bytes).map_err(|e| Error::io(&target, e))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&target, e))?;
    let out = Command::new(bb)
        .arg("--list-full")
        .output()
        .map_err(|e| Error::Command {
            cmd: format!("{} --list-full", bb.display()),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: format!("{} --list-full", bb.display()),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        // Our init replaces busybox's; the binary itself is already there.
        if applet.is_empty() || applet == "sbin/init" || applet == "bin/busybox" {
            continue;
        }
        // Only plain relative paths (no "..") from busybox's list.
        if applet
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        let link = dir.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        if link.symlink_metadata().is_err() {
            symlink("/bin/busybox", &link).map_err(|e| Error::io(&link, e))?;
        }
    }
    let init = dir.join("sbin/init");
    fs::write(&init, INIT_SCRIPT).map_err(|e| Error::io(&init, e))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&init, e))?;
    let done = dir.join(COMPLETE);
    fs::write(&done, "").map_err(|e| Error::io(&done, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binaries_are_classified() {
        // /bin/sh is dynamically linked on Debian.
        let sh = fs::read("/bin/sh").unwrap();
        assert!(has_interpreter(&sh));
        assert!(!has_interpreter(b"#!/bin/sh\n"));
    }

    #[test]
    fn base_has_busybox_applets_and_our_init_and_is_reused() {
        if !Path::new("/bin/busybox").exists() {
            eprintln!("skipping: /bin/busybox not installed (apt-get install busybox-static)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let base = ensure_base(d.path()).unwrap();
        assert_eq!(
            fs::read_link(base.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(fs::read_link(base.join("sbin/modprobe")).is_ok());
        let init = fs::read_to_string(base.join("sbin/init")).unwrap();
        assert!(init.contains("modprobe scftorture"));
        assert!(
            fs::symlink_metadata(base.join("sbin/init"))
                .unwrap()
                .is_file()
        );
        for d in ["proc", "sys", "dev", "tmp", "lib/modules", "csdci"] {
            assert!(base.join(d).is_dir(), "{d}");
        }
        let t = fs::metadata(base.join(COMPLETE))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(ensure_base(d.path()).unwrap(), base);
        assert_eq!(
            fs::metadata(base.join(COMPLETE))
                .unwrap()
                .modified()
                .unwrap(),
            t
        );
    }
}

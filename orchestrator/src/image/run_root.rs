//! The per-run root: a cheap replica of the base (hard links), plus modules.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::Error;

/// Releases (`lib/modules/<release>`) in an `INSTALL_MOD_PATH` folder; fails
/// when there is none or none has scftorture.
pub fn module_releases(modules: &Path) -> Result<Vec<String>, Error> {
    let dir = modules.join("lib/modules");
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::NoModules(modules.to_path_buf()));
    }
    if !out.iter().any(|r| has_scftorture(&dir.join(r))) {
        return Err(Error::NoScftorture(modules.to_path_buf()));
    }
    Ok(out)
}

fn has_scftorture(dir: &Path) -> bool {
    let Ok(rd) = fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let Ok(ft) = e.file_type() else { return false };
        if ft.is_dir() {
            has_scftorture(&e.path())
        } else {
            e.file_name().to_string_lossy().starts_with("scftorture.ko")
        }
    })
}

/// Makes `to` a replica of `from`: folders created, files hard-linked (copied
/// across file systems), symlinks recreated. An existing `to` is removed first.
pub fn replicate(from: &Path, to: &Path) -> Result<(), Error> {
    if to.symlink_metadata().is_ok() {
        fs::remove_dir_all(to).map_err(|e| Error::io(to, e))?;
    }
    walk(from, to, &|src, dst| match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(_) => fs::copy(src, dst).map(drop),
    })
}

/// Copies the tree `from` into `to` (files copied, so the guest cannot write
/// through to the build cache), leaving out the `build` and `source` links
/// that `modules_install` points at the host's build tree.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    walk(from, to, &|src, dst| fs::copy(src, dst).map(drop))
}

fn walk(
    from: &Path,
    to: &Path,
    file: &dyn Fn(&Path, &Path) -> io::Result<()>,
) -> Result<(), Error> {
    fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for e in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let ft = e.file_type().map_err(|e| Error::io(&src, e))?;
        if ft.is_symlink() {
            let name = e.file_name();
            if name == "build" || name == "source" {
                continue;
            }
            let target = fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
            symlink(&target, &dst).map_err(|e| Error::io(&dst, e))?;
        } else if ft.is_dir() {
            walk(&src, &dst, file)?;
        } else {
            file(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{GuestParams, prepare_run_root};
    use std::os::unix::fs::MetadataExt;

    fn fake_modules(dir: &Path) {
        let m = dir.join("lib/modules/6.12.0-test/kernel/kernel");
        fs::create_dir_all(&m).unwrap();
        fs::write(m.join("scftorture.ko"), b"ko").unwrap();
        fs::write(m.join("torture.ko"), b"ko").unwrap();
        fs::write(
            dir.join("lib/modules/6.12.0-test/modules.dep"),
            "kernel/kernel/scftorture.ko: kernel/kernel/torture.ko\n",
        )
        .unwrap();
        symlink(
            "/nonexistent/build",
            dir.join("lib/modules/6.12.0-test/build"),
        )
        .unwrap();
    }

    #[test]
    fn run_root_has_base_modules_and_params() {
        if !Path::new("/bin/busybox").exists() {
            eprintln!("skipping: /bin/busybox not installed (apt-get install busybox-static)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mods = d.path().join("mods");
        fake_modules(&mods);
        let params = GuestParams {
            scftorture: "nthreads=16".into(),
            duration_s: 30,
            load: crate::image::Load::None,
        };
        let run = d.path().join("run1");
        let root = prepare_run_root(&d.path().join("data"), &mods, &params, &run).unwrap();
        assert_eq!(root, run.join("root"));
        let rel = root.join("lib/modules/6.12.0-test");
        assert!(rel.join("kernel/kernel/scftorture.ko").is_file());
        assert!(rel.join("modules.dep").is_file());
        assert!(rel.join("build").symlink_metadata().is_err());
        assert_eq!(
            fs::read_to_string(root.join("csdci/params")).unwrap(),
            "CSDCI_SCFTORTURE='nthreads=16'\nCSDCI_DURATION_S=30\n"
        );
        // busybox is shared with the base, not copied.
        assert!(fs::metadata(root.join("bin/busybox")).unwrap().nlink() >= 2);
        // A second prepare of the same run folder starts clean.
        fs::write(root.join("tmp/leftover"), "x").unwrap();
        prepare_run_root(&d.path().join("data"), &mods, &params, &run).unwrap();
        assert!(!root.join("tmp/leftover").exists());
    }

    #[test]
    fn missing_modules_or_scftorture_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = module_releases(d.path()).unwrap_err().to_string();
        assert!(e.contains("lib/modules/<release>"), "{e}");
        fs::create_dir_all(d.path().join("lib/modules/6.12.0/kernel")).unwrap();
        let e = module_releases(d.path()).unwrap_err().to_string();
        assert!(e.contains("CONFIG_SCF_TORTURE_TEST=m"), "{e}");
    }
}

//! The guest root file system: a base built once from Debian's static busybox
//! and the init in `images/init.sh`, and a per-run root with the kernel's
//! modules and the run's parameters, served by virtiofsd; or the same packed
//! into an initramfs archive ([`initramfs`]). See `images/README.md`.

mod base;
pub mod initramfs;
pub mod load;
mod params;
mod run_root;

use std::path::{Path, PathBuf};

use crate::io_error::PathIo;

pub use base::{INIT_SCRIPT, ensure_base};
pub use load::Load;
pub use params::GuestParams;

/// Image errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{0} not found or not executable (install Debian's busybox-static: apt-get install busybox-static)"
    )]
    NoBusybox(PathBuf),
    #[error(
        "{0} is dynamically linked; the guest has no libc (install busybox-static: apt-get install busybox-static)"
    )]
    DynamicBusybox(PathBuf),
    #[error("{cmd} failed: {why}")]
    Command { cmd: String, why: String },
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(
        "no modules in {0} (expected lib/modules/<release>/ from 'make modules_install INSTALL_MOD_PATH=...')"
    )]
    NoModules(PathBuf),
    #[error("no scftorture module under {0} (the kernel config needs CONFIG_SCF_TORTURE_TEST=m)")]
    NoScftorture(PathBuf),
    #[error(
        "bad scftorture parameters '{params}': character '{bad}' not allowed (use name=value pairs separated by spaces, e.g. 'nthreads=16 onoff_interval=100')"
    )]
    BadParams { params: String, bad: char },
    #[error("duration must be at least 1 s")]
    BadDuration,
    #[error(
        "the kernel cannot boot an initramfs: {config} lacks {missing} (csdci's configs/qemu-base.config sets it: keep it in the kernel's config fragments)"
    )]
    NoInitrd { config: PathBuf, missing: String },
    #[error(
        "cannot build the background load program: {cmd} failed: {why} (it is compiled on the host: apt-get install build-essential)"
    )]
    LoadCompile { cmd: String, why: String },
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(PathIo::new(path, source))
    }
}

/// Builds the guest root for one run at `<run_dir>/root` and returns its path:
/// the base image (built once under `data_dir` and reused), the modules of
/// `modules` (an `INSTALL_MOD_PATH` folder holding `lib/modules/<release>/`),
/// `params` in `/csdci/params` and, when `params.load` asks for one, the
/// background load program ([`load`]). An existing `<run_dir>/root` is replaced.
pub fn prepare_run_root(
    data_dir: &Path,
    modules: &Path,
    params: &GuestParams,
    run_dir: &Path,
) -> Result<PathBuf, Error> {
    let rendered = params.render()?;
    let releases = run_root::module_releases(modules)?;
    let base = ensure_base(data_dir)?;
    let root = run_dir.join("root");
    run_root::replicate(&base, &root)?;
    for rel in &releases {
        let from = modules.join("lib/modules").join(rel);
        let to = root.join("lib/modules").join(rel);
        run_root::copy_tree(&from, &to)?;
    }
    if !params.load.is_none() {
        let bin = load::ensure_tlbload(data_dir)?;
        let to = root.join(load::TLBLOAD_GUEST_PATH);
        std::fs::copy(&bin, &to).map_err(|e| Error::io(&to, e))?;
    }
    let p = root.join("csdci/params");
    std::fs::write(&p, rendered).map_err(|e| Error::io(&p, e))?;
    Ok(root)
}

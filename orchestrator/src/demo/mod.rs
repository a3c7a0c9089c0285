//! `csdci demo`: a real kernel history with a CSD-lock regression of the
//! b0473dcd4b1d class, made from Debian's linux-source-6.12 ([`import`]), planned
//! from a seed ([`plan`]), written as commits ([`history`]) with the kernel
//! changes of [`patches`].

pub mod history;
pub mod import;
pub mod patches;
pub mod plan;

use std::path::{Path, PathBuf};

pub use history::History;

/// Demo errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "a demo history needs at least {min} commits (got {asked}); pass --commits {min} or more"
    )]
    TooFewCommits { asked: usize, min: usize },
    #[error(
        "{file}: expected exactly one match for {what}, found {found}; the demo patches are written for linux 6.12"
    )]
    Anchor {
        file: &'static str,
        what: String,
        found: usize,
    },
    #[error("kernel tarball {path} not found: {hint}")]
    NoTarball { path: PathBuf, hint: String },
    #[error("{0} exists and is not a csdci demo repository (no demo-base tag); pick another --dir")]
    ForeignRepo(PathBuf),
    #[error(transparent)]
    Git(#[from] crate::vcs::Error),
    #[error("{what} failed: {detail}")]
    Tool { what: String, detail: String },
    #[error(transparent)]
    Io(#[from] crate::io_error::PathIo),
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(crate::io_error::PathIo::new(path, source))
    }
}

/// Runs git in `dir` with extra environment; returns trimmed stdout.
fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, Error> {
    Ok(crate::vcs::git_env(dir, args, env)?)
}

/// Makes (or reuses) the demo history of `commits` commits from `seed` in `dir`.
pub fn prepare(dir: &Path, tarball: &Path, commits: usize, seed: u64) -> Result<History, Error> {
    let plan = plan::plan(commits, seed)?;
    let base = import::ensure_base(dir, tarball)?;
    if let Some(h) = history::existing(dir, commits, seed, &base) {
        tracing::info!(
            "reusing the demo history in {} ({} commits, seed {})",
            dir.display(),
            commits,
            seed
        );
        return Ok(h);
    }
    tracing::info!(
        "writing a demo history of {commits} commits (seed {seed}) in {}",
        dir.display()
    );
    history::write(dir, &plan, seed, &base)
}

//! Version control: csdci-owned worktrees (git CLI: fast checkout of a 92k-file
//! tree), revision parsing and commit-graph queries (git2).

pub mod graph;
pub mod revert;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::process::Command;

/// VCS errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} is not a directory")]
    NoTree(PathBuf),
    #[error(
        "{0} is not a git repository (run 'git init' there, or pass --tree with a kernel git tree)"
    )]
    NotGit(PathBuf),
    #[error("unknown revision '{rev}' in {tree}")]
    UnknownRev { tree: PathBuf, rev: String },
    #[error("git {args} failed in {dir}: {stderr}")]
    Git {
        dir: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
}

/// VCS result.
pub type Result<T> = std::result::Result<T, Error>;

/// Runs `git -C dir args...` and returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables (author, dates, ...).
pub fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(env.iter().copied())
        .output()
        .map_err(Error::Spawn)?;
    if !out.status.success() {
        return Err(Error::Git {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// Checks that `tree` is a git work tree (or bare repo) and returns its top level.
pub fn open_tree(tree: &Path) -> Result<PathBuf> {
    if !tree.is_dir() {
        return Err(Error::NoTree(tree.to_path_buf()));
    }
    match git(tree, &["rev-parse", "--show-toplevel"]) {
        Ok(top) if !top.is_empty() => Ok(PathBuf::from(top)),
        _ => match git(tree, &["rev-parse", "--git-dir"]) {
            Ok(_) => Ok(tree.to_path_buf()),
            Err(_) => Err(Error::NotGit(tree.to_path_buf())),
        },
    }
}

/// Resolves a revision (tag, branch, sha, `HEAD~3`) to a full commit sha.
pub fn resolve(tree: &Path, rev: &str) -> Result<String> {
    let spec = format!("{rev}^{{commit}}");
    git(tree, &["rev-parse", "--verify", "--quiet", &spec]).map_err(|_| Error::UnknownRev {
        tree: tree.to_path_buf(),
        rev: rev.to_string(),
    })
}

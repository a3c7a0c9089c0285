//! Version control: csdci-owned worktrees (git CLI: fast checkout of a 92k-file
//! tree), revision parsing and commit-graph queries (git2).

pub mod fetch;
pub mod graph;
pub mod mirror;
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
    #[error(
        "git {args} failed in {dir}: {} exists (another git process is working in that repository, or one was killed and left it behind); if no git process is running there, remove {}",
        lock.display(),
        lock.display()
    )]
    Locked {
        dir: PathBuf,
        args: String,
        /// The lock file git could not create.
        lock: PathBuf,
    },
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Options of every git command csdci runs: no automatic `gc` or maintenance.
/// A commit in a 92k-file tree otherwise starts a background gc that holds
/// `HEAD.lock` for minutes while csdci checks out.
pub const NO_AUTO_GC: [&str; 4] = ["-c", "gc.auto=0", "-c", "maintenance.auto=false"];

/// The lock file named by git's "Unable to create 'X.lock': File exists" or
/// "cannot lock ref ...: 'X.lock' exists", relative paths taken from `dir`.
pub fn lock_in_the_way(dir: &Path, stderr: &str) -> Option<PathBuf> {
    let re = regex::Regex::new(r"'([^']+\.lock)'(?::\s*File)?\s+exists").expect("static regex");
    let lock = PathBuf::from(&re.captures(stderr)?[1]);
    Some(if lock.is_absolute() {
        lock
    } else {
        dir.join(lock)
    })
}

/// VCS result.
pub type Result<T> = std::result::Result<T, Error>;

/// Runs `git -C dir args...` (with [`NO_AUTO_GC`]) and returns its trimmed
/// stdout. A lock file in the way is reported as [`Error::Locked`].
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables (author, dates, ...).
pub fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let out = Command::new("git")
        .args(NO_AUTO_GC)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(env.iter().copied())
        .output()
        .map_err(Error::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(lock) = lock_in_the_way(dir, &stderr) {
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                args: args.join(" "),
                lock,
            });
        }
        return Err(Error::Git {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            stderr,
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

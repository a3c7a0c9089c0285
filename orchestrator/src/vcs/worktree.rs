//! csdci-owned git worktrees. The user's repository is never written to: each
//! worktree is registered in csdci's [`Mirror`] of it (a bare repository that
//! borrows the user's objects), kept in the `.mirrors` folder beside the
//! worktree, and reused between runs, so an out-of-tree build directory beside
//! it stays incremental.

use std::path::{Path, PathBuf};

use super::mirror::Mirror;
use super::{Error, Result, git};

/// A detached worktree owned by csdci.
#[derive(Debug, Clone)]
pub struct Worktree {
    repo: PathBuf,
    path: PathBuf,
}

impl Worktree {
    /// Opens the worktree at `path` of the repository `source`, adding it (in
    /// the mirror of `source` beside `path`) if it does not exist. `source` is
    /// only read.
    pub fn ensure(source: &Path, path: &Path) -> Result<Self> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let mirror = Mirror::beside(path, source)?;
        let repo = mirror.path().to_path_buf();
        let registered = git(&repo, &["worktree", "list", "--porcelain"])?
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .any(|p| Path::new(p) == path);
        if !registered || !path.join(".git").exists() {
            // A stale directory or registration (e.g. after kill -9) is replaced;
            // only csdci's own mirror is pruned, never the user's repository.
            let _ = git(&repo, &["worktree", "prune"]);
            if path.exists() {
                std::fs::remove_dir_all(path).map_err(Error::Spawn)?;
            }
            std::fs::create_dir_all(parent).map_err(Error::Spawn)?;
            let head = super::resolve(source, "HEAD")?;
            let p = path.to_string_lossy();
            git(
                &repo,
                &["worktree", "add", "--force", "--detach", &p, &head],
            )?;
        }
        Ok(Worktree {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// Checks out `commit` (detached), discarding local changes and untracked files.
    /// Files whose content does not change keep their mtime, so make stays incremental.
    pub fn checkout(&self, commit: &str) -> Result<()> {
        git(
            &self.path,
            &["checkout", "--quiet", "--force", "--detach", commit],
        )?;
        git(&self.path, &["clean", "-q", "-f", "-d"])?;
        Ok(())
    }

    /// The commit checked out now.
    pub fn head(&self) -> Result<String> {
        git(&self.path, &["rev-parse", "HEAD"])
    }

    /// The worktree's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository it is registered in (csdci's mirror of the source).
    pub fn repo(&self) -> &Path {
        &self.repo
    }
}

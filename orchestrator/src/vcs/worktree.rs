//! csdci-owned git worktrees. The user's checkout is never touched: csdci adds a
//! detached worktree under its data directory and reuses it between runs, so an
//! out-of-tree build directory beside it stays incremental.

use std::path::{Path, PathBuf};

use super::{Error, Result, git};

/// A detached worktree owned by csdci.
#[derive(Debug, Clone)]
pub struct Worktree {
    repo: PathBuf,
    path: PathBuf,
}

impl Worktree {
    /// Opens the worktree at `path` for `repo`, adding it if it does not exist.
    pub fn ensure(repo: &Path, path: &Path) -> Result<Self> {
        let registered = git(repo, &["worktree", "list", "--porcelain"])?
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .any(|p| Path::new(p) == path);
        if !registered || !path.join(".git").exists() {
            // A stale directory or registration (e.g. after kill -9) is replaced.
            let _ = git(repo, &["worktree", "prune"]);
            if path.exists() {
                std::fs::remove_dir_all(path).map_err(Error::Spawn)?;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(Error::Spawn)?;
            }
            let p = path.to_string_lossy();
            git(
                repo,
                &["worktree", "add", "--force", "--detach", &p, "HEAD"],
            )?;
        }
        Ok(Worktree {
            repo: repo.to_path_buf(),
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

    /// The repository it belongs to.
    pub fn repo(&self) -> &Path {
        &self.repo
    }
}

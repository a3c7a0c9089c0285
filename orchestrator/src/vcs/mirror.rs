//! csdci's own repository beside the user's: a bare repository in csdci's data
//! directory that borrows the user's objects through `objects/info/alternates`.
//! Worktrees, revert commits and their refs live there, so csdci never writes to
//! the user's repository: no registered worktrees, no refs, no `worktree prune`.
//!
//! Every commit of the user's repository is visible in the mirror at once (the
//! objects are shared, nothing is copied or fetched). Commits csdci makes (a
//! revert on the bad tip) are written into the mirror's own object store.

use std::path::{Path, PathBuf};

use super::{Error, Result, git};

/// A csdci-owned bare repository sharing the objects of a source repository.
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
}

/// The source repository's object directory (the common one for a worktree).
pub(super) fn objects_dir(source: &Path) -> Result<PathBuf> {
    let common = git(source, &["rev-parse", "--git-common-dir"])?;
    let common = Path::new(&common);
    let common = if common.is_absolute() {
        common.to_path_buf()
    } else {
        source.join(common)
    };
    let objects = common.join("objects");
    objects
        .canonicalize()
        .map_err(|_| Error::NotGit(source.to_path_buf()))
}

/// A short stable name for a path.
fn key(path: &Path) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&h[..8])
}

impl Mirror {
    /// The mirror of `source` under `dir` (one per source repository), created
    /// on first use. `source` is only read.
    pub fn ensure(dir: &Path, source: &Path) -> Result<Self> {
        let objects = objects_dir(source)?;
        let name = objects
            .parent()
            .and_then(|p| {
                // `.../linux/.git/objects` → "linux"; `.../linux.git/objects` → "linux.git".
                let p = if p.file_name().is_some_and(|n| n == ".git") {
                    p.parent()?
                } else {
                    p
                };
                p.file_name().map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "repo".into());
        let path = dir.join(format!("{name}-{}.git", key(&objects)));
        let alternates = path.join("objects").join("info").join("alternates");
        let want = format!("{}\n", objects.display());
        if std::fs::read_to_string(&alternates).ok().as_deref() != Some(want.as_str()) {
            std::fs::create_dir_all(dir).map_err(Error::Spawn)?;
            if !path.join("HEAD").exists() {
                // Made aside and renamed, so a half-made mirror is never used.
                let tmp = dir.join(format!(
                    ".{name}-{}.tmp{}",
                    key(&objects),
                    std::process::id()
                ));
                let _ = std::fs::remove_dir_all(&tmp);
                let t = tmp.to_string_lossy();
                git(dir, &["init", "--quiet", "--bare", &t])?;
                for (k, v) in [
                    ("gc.auto", "0"),
                    ("maintenance.auto", "false"),
                    ("core.logAllRefUpdates", "false"),
                ] {
                    git(&tmp, &["config", k, v])?;
                }
                std::fs::write(tmp.join("objects/info/alternates"), &want).map_err(Error::Spawn)?;
                if std::fs::rename(&tmp, &path).is_err() {
                    // Another csdci made it first.
                    let _ = std::fs::remove_dir_all(&tmp);
                }
            }
            if std::fs::read_to_string(&alternates).ok().as_deref() != Some(want.as_str()) {
                std::fs::write(&alternates, &want).map_err(Error::Spawn)?;
            }
        }
        Ok(Mirror { path })
    }

    /// The mirror of `source` that worktrees in the folder of `worktree` are
    /// registered in (its `.mirrors` subfolder).
    pub fn beside(worktree: &Path, source: &Path) -> Result<Self> {
        let parent = worktree.parent().unwrap_or(Path::new("."));
        Mirror::ensure(&parent.join(".mirrors"), source)
    }

    /// The mirror's git directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &Path) -> String {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "-b", "main"]).unwrap();
        std::fs::write(dir.join("a"), "1\n").unwrap();
        git(dir, &["add", "a"]).unwrap();
        git(
            dir,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qm",
                "one",
            ],
        )
        .unwrap();
        git(dir, &["rev-parse", "HEAD"]).unwrap()
    }

    #[test]
    fn mirror_sees_the_source_commits_and_writes_nothing_there() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let sha = repo(&src);
        let before = git(&src, &["for-each-ref"]).unwrap();
        let m = Mirror::ensure(&tmp.path().join("mirrors"), &src).unwrap();
        assert_eq!(
            git(m.path(), &["rev-parse", &format!("{sha}^{{commit}}")]).unwrap(),
            sha
        );
        // Same mirror the second time; a new commit in the source is visible at once.
        std::fs::write(src.join("a"), "2\n").unwrap();
        git(
            &src,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-qam",
                "two",
            ],
        )
        .unwrap();
        let sha2 = git(&src, &["rev-parse", "HEAD"]).unwrap();
        let m2 = Mirror::ensure(&tmp.path().join("mirrors"), &src).unwrap();
        assert_eq!(m.path(), m2.path());
        assert!(git(m2.path(), &["cat-file", "-e", &sha2]).is_ok());
        assert_eq!(
            git(&src, &["for-each-ref"]).unwrap().lines().count(),
            before.lines().count() // main only: nothing added by csdci
        );
        assert_eq!(git(&src, &["worktree", "list"]).unwrap().lines().count(), 1);
    }
}

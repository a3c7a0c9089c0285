//! csdci's clone of a job's tree: a bare repository in csdci's data directory
//! that `git fetch` updates each night, branch by branch. The user's checkout
//! (when the tree is a local path) is only read. With a `reference` (a local
//! clone of the same project, as `git clone --reference`), the clone borrows
//! that repository's objects, so a fetch transfers only what it lacks.

use std::path::{Path, PathBuf};

use super::{Error, Result, git};

/// A csdci-owned bare clone of one remote tree.
#[derive(Debug, Clone)]
pub struct Remote {
    path: PathBuf,
    url: String,
}

/// A short stable name for a string.
fn key(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..8])
}

/// The last path component of a URL or path, without `.git`.
fn base_name(url: &str) -> String {
    let name = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("tree")
        .trim_end_matches(".git");
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "tree".into()
    } else {
        clean
    }
}

impl Remote {
    /// The clone of `url` under `dir`, made on first use (aside, then renamed,
    /// so a half-made clone is never used). `reference`, when given, lends
    /// its objects.
    pub fn ensure(dir: &Path, url: &str, reference: Option<&Path>) -> Result<Self> {
        let path = dir.join(format!("{}-{}.git", base_name(url), key(url)));
        if !path.join("HEAD").exists() {
            std::fs::create_dir_all(dir).map_err(Error::Spawn)?;
            let tmp = dir.join(format!(".{}.tmp{}", key(url), std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let t = tmp.to_string_lossy();
            git(dir, &["init", "--quiet", "--bare", &t])?;
            for (k, v) in [
                ("gc.auto", "0"),
                ("maintenance.auto", "false"),
                ("core.logAllRefUpdates", "false"),
                ("fetch.writeCommitGraph", "false"),
            ] {
                git(&tmp, &["config", k, v])?;
            }
            if std::fs::rename(&tmp, &path).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        let alternates = path.join("objects").join("info").join("alternates");
        match reference {
            Some(r) => {
                let want = format!("{}\n", super::mirror::objects_dir(r)?.display());
                if std::fs::read_to_string(&alternates).ok().as_deref() != Some(want.as_str()) {
                    std::fs::write(&alternates, want).map_err(Error::Spawn)?;
                }
            }
            None => {
                // A reference dropped from the job: keep borrowing until the
                // objects are copied (`git repack -a`), or history breaks.
                if alternates.exists() {
                    git(&path, &["repack", "-a", "-d", "-q"])?;
                    let _ = std::fs::remove_file(&alternates);
                }
            }
        }
        Ok(Remote {
            path,
            url: url.to_string(),
        })
    }

    /// Fetches `branch` (forced: a rebased branch is followed) and returns
    /// its head.
    pub fn fetch(&self, branch: &str) -> Result<String> {
        let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        git(
            &self.path,
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                &self.url,
                &refspec,
            ],
        )?;
        // A new clone's HEAD names a branch it may not have; worktrees start
        // from HEAD, so point it at a branch that exists.
        if super::resolve(&self.path, "HEAD").is_err() {
            git(
                &self.path,
                &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
            )?;
        }
        self.head(branch)
    }

    /// The head of `branch` as last fetched.
    pub fn head(&self, branch: &str) -> Result<String> {
        super::resolve(&self.path, &format!("refs/heads/{branch}"))
    }

    /// The clone's git directory (a tree csdci tests commits from).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL it fetches from.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            base_name("https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"),
            "linux"
        );
        assert_eq!(base_name("git@host:tip/tip.git"), "tip");
        assert_eq!(base_name("/src/linux/"), "linux");
        assert_ne!(key("a"), key("b"));
    }

    #[test]
    fn fetches_a_branch_and_follows_a_rebase() {
        let up = tempfile::tempdir().unwrap();
        let u = up.path();
        let g = |args: &[&str]| git(u, args).unwrap();
        g(&["init", "-q", "-b", "main"]);
        g(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ]);
        let one = g(&["rev-parse", "HEAD"]);
        let data = tempfile::tempdir().unwrap();
        let r = Remote::ensure(data.path(), &u.display().to_string(), None).unwrap();
        assert_eq!(r.fetch("main").unwrap(), one);
        g(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--amend",
            "--allow-empty",
            "-m",
            "two",
        ]);
        let two = g(&["rev-parse", "HEAD"]);
        assert_eq!(r.fetch("main").unwrap(), two);
        assert!(r.fetch("nope").is_err());
        // The user's repository got nothing from csdci.
        assert_eq!(
            g(&["for-each-ref", "--format=%(refname)"]),
            "refs/heads/main"
        );
    }
}

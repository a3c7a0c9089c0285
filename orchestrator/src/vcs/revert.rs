//! "The bad tip with the culprit reverted": a commit made in a temporary detached
//! worktree with `git revert --no-edit`, so it can be tested like any commit. The
//! commit and its ref live in csdci's mirror (see [`super::mirror`]), never in
//! the user's repository; testers find it there through their own worktrees.

use std::path::Path;

use serde::Serialize;

use super::worktree::Worktree;
use super::{Result, git};

/// What reverting the culprit on the bad tip gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Revert {
    /// The revert applied; `sha` is the new commit (kept alive by `ref_name` in
    /// csdci's mirror).
    Applied { sha: String, ref_name: String },
    /// The revert does not apply cleanly.
    DoesNotApply { message: String },
}

/// Reverts `culprit` on top of `tip` in a temporary worktree at `scratch` (removed
/// afterwards) of the repository `repo`. Merge commits are reverted against their
/// first parent.
pub fn revert_on_tip(
    repo: &Path,
    scratch: &Path,
    tip: &str,
    culprit: &str,
    is_merge: bool,
) -> Result<Revert> {
    let wt = Worktree::ensure(repo, scratch)?;
    let result = (|| {
        wt.checkout(tip)?;
        let mut args = vec![
            "-c",
            "user.name=csdci",
            "-c",
            "user.email=csdci@localhost",
            "revert",
            "--no-edit",
        ];
        if is_merge {
            args.extend(["-m", "1"]);
        }
        args.push(culprit);
        match git(wt.path(), &args) {
            Ok(_) => {
                let sha = wt.head()?;
                let ref_name = format!("refs/csdci/reverts/{culprit}");
                git(wt.repo(), &["update-ref", &ref_name, &sha])?;
                Ok(Revert::Applied { sha, ref_name })
            }
            Err(super::Error::Git { stderr, .. }) => {
                let _ = git(wt.path(), &["revert", "--abort"]);
                let first = stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("git revert failed")
                    .to_string();
                Ok(Revert::DoesNotApply { message: first })
            }
            Err(e) => Err(e),
        }
    })();
    let p = scratch.to_string_lossy();
    let _ = git(wt.repo(), &["worktree", "remove", "--force", &p]);
    let _ = git(wt.repo(), &["worktree", "prune"]);
    result
}

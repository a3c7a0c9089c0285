//! Commit-graph queries for bisection (git2): the candidate commits between good
//! revision(s) and a bad one, and what a report says about a commit.
//!
//! Candidates are linear lists, oldest first, ending with the bad tip, so that
//! "the culprit is index `i`" means every commit at index `≥ i` is bad. A first-
//! parent chain has exactly that property. The full graph is handled in stages:
//! bisect the first-parent chain; if the culprit is a merge whose second parent
//! brings commits of its own, bisect that branch's first-parent chain (ending with
//! the merge) next, and so on ([`Graph::branch_of_merge`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Sort};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// What a report says about a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Full sha.
    pub sha: String,
    /// First line of the message.
    pub subject: String,
    /// "Name <email>".
    pub author: String,
    /// Author date, RFC 3339.
    pub date: String,
    /// Number of parents (2 or more: a merge).
    pub parents: usize,
}

/// A repository opened for graph queries.
pub struct Graph {
    repo: Repository,
    path: PathBuf,
}

fn git_err(path: &Path, what: &str, e: git2::Error) -> Error {
    Error::Git {
        dir: path.to_path_buf(),
        args: what.to_string(),
        stderr: e.message().to_string(),
    }
}

impl Graph {
    /// Opens the repository containing `tree`.
    pub fn open(tree: &Path) -> Result<Self> {
        if !tree.is_dir() {
            return Err(Error::NoTree(tree.to_path_buf()));
        }
        let repo = Repository::discover(tree).map_err(|_| Error::NotGit(tree.to_path_buf()))?;
        Ok(Graph {
            repo,
            path: tree.to_path_buf(),
        })
    }

    /// Resolves a revision to a full commit sha.
    pub fn resolve(&self, rev: &str) -> Result<String> {
        let unknown = || Error::UnknownRev {
            tree: self.path.clone(),
            rev: rev.to_string(),
        };
        let obj = self.repo.revparse_single(rev).map_err(|_| unknown())?;
        let commit = obj.peel_to_commit().map_err(|_| unknown())?;
        Ok(commit.id().to_string())
    }

    fn oid(&self, sha: &str) -> Result<Oid> {
        Oid::from_str(sha).map_err(|e| git_err(&self.path, "parse sha", e))
    }

    /// Commits reachable from `tip` but from none of `hide`.
    fn range(&self, tip: Oid, hide: &[Oid]) -> Result<HashSet<Oid>> {
        let err = |e| git_err(&self.path, "revwalk", e);
        let mut walk = self.repo.revwalk().map_err(err)?;
        walk.set_sorting(Sort::NONE).map_err(err)?;
        walk.push(tip).map_err(err)?;
        for h in hide {
            walk.hide(*h).map_err(err)?;
        }
        walk.map(|r| r.map_err(err)).collect()
    }

    /// The first-parent chain from `tip` while inside `range`, oldest first.
    fn chain(&self, tip: Oid, range: &HashSet<Oid>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cur = Some(tip);
        while let Some(id) = cur.filter(|id| range.contains(id)) {
            out.push(id.to_string());
            let c = self
                .repo
                .find_commit(id)
                .map_err(|e| git_err(&self.path, "find commit", e))?;
            cur = c.parent_ids().next();
        }
        out.reverse();
        Ok(out)
    }

    /// Candidates between `goods` and `bad`: the first-parent chain of `bad` down to
    /// the first commit reachable from a good one, oldest first, ending with `bad`.
    /// Errors when there is nothing to bisect.
    pub fn candidates(&self, goods: &[String], bad: &str) -> Result<Vec<String>> {
        let bad_id = self.oid(bad)?;
        let hide: Vec<Oid> = goods.iter().map(|g| self.oid(g)).collect::<Result<_>>()?;
        let range = self.range(bad_id, &hide)?;
        let chain = self.chain(bad_id, &range)?;
        if chain.is_empty() {
            return Err(Error::Git {
                dir: self.path.clone(),
                args: format!("rev-list {bad} --not {}", goods.join(" ")),
                stderr: "no commits between the good and bad revisions (is the bad one an ancestor of a good one?)"
                    .into(),
            });
        }
        Ok(chain)
    }

    /// For a merge commit: the first-parent chain of what its second parent brings
    /// (commits not reachable from the first parent nor from `goods`), oldest
    /// first, followed by the merge itself. `None` when `merge` is not a merge or
    /// brings no commits of its own.
    pub fn branch_of_merge(&self, goods: &[String], merge: &str) -> Result<Option<Vec<String>>> {
        let id = self.oid(merge)?;
        let c = self
            .repo
            .find_commit(id)
            .map_err(|e| git_err(&self.path, "find commit", e))?;
        let parents: Vec<Oid> = c.parent_ids().collect();
        if parents.len() < 2 {
            return Ok(None);
        }
        let mut hide: Vec<Oid> = goods.iter().map(|g| self.oid(g)).collect::<Result<_>>()?;
        hide.push(parents[0]);
        // Other parents than the second are folded in with it (octopus merges).
        let mut list = Vec::new();
        for &p in &parents[1..] {
            let range = self.range(p, &hide)?;
            let chain = self.chain(p, &range)?;
            hide.push(p);
            list.extend(chain);
        }
        if list.is_empty() {
            return Ok(None);
        }
        list.push(merge.to_string());
        Ok(Some(list))
    }

    /// Sha, subject, author and date of a commit.
    pub fn info(&self, sha: &str) -> Result<CommitInfo> {
        let c = self
            .repo
            .find_commit(self.oid(sha)?)
            .map_err(|e| git_err(&self.path, "find commit", e))?;
        let author = c.author();
        let t = author.when();
        let date = chrono::DateTime::from_timestamp(t.seconds(), 0)
            .map(|d| {
                let off = chrono::FixedOffset::east_opt(t.offset_minutes() * 60)
                    .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
                d.with_timezone(&off).to_rfc3339()
            })
            .unwrap_or_default();
        Ok(CommitInfo {
            sha: sha.to_string(),
            subject: c.summary().unwrap_or("").to_string(),
            author: format!(
                "{} <{}>",
                author.name().unwrap_or("?"),
                author.email().unwrap_or("?")
            ),
            date,
            parents: c.parent_count(),
        })
    }

    /// True when `ancestor` is an ancestor of (or equal to) `of`.
    pub fn is_ancestor(&self, ancestor: &str, of: &str) -> Result<bool> {
        let (a, b) = (self.oid(ancestor)?, self.oid(of)?);
        if a == b {
            return Ok(true);
        }
        self.repo
            .graph_descendant_of(b, a)
            .map_err(|e| git_err(&self.path, "merge-base", e))
    }
}

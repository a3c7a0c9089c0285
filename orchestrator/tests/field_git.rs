//! Field test (issue 10, item 10): git as csdci runs it starts no automatic gc
//! (which held `HEAD.lock` while the demo checked out), and a lock file left in
//! the way is reported by its exact path. Real git repositories.

mod common;

use common::repo::git;
use std::path::Path;

use csdci::vcs::worktree::Worktree;

/// A repository with two commits (`one`, `two`).
fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for name in ["one", "two"] {
        std::fs::write(dir.join(name), format!("{name}\n")).unwrap();
        git(dir, &["add", name]);
        git(dir, &["commit", "-qm", name]);
        git(dir, &["tag", name]);
    }
}

const AUTHOR: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "csdci"),
    ("GIT_AUTHOR_EMAIL", "csdci@example.org"),
    ("GIT_COMMITTER_NAME", "csdci"),
    ("GIT_COMMITTER_EMAIL", "csdci@example.org"),
];

#[test]
fn git_run_by_csdci_starts_no_automatic_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("repo");
    repo(&d);
    // A repository that asks for a gc at the first loose objects, in the
    // foreground: any gc a commit starts leaves a pack at once.
    git(&d, &["config", "gc.auto", "1"]);
    git(&d, &["config", "gc.autoDetach", "false"]);
    for i in 0..600 {
        std::fs::write(d.join(format!("f{i}")), format!("{i}\n")).unwrap();
    }
    csdci::vcs::git_env(&d, &["add", "-A"], &[]).unwrap();
    csdci::vcs::git_env(&d, &["commit", "-q", "-m", "many files"], &AUTHOR).unwrap();
    csdci::vcs::git_env(&d, &["checkout", "-q", "-B", "other", "one"], &[]).unwrap();
    let packs: Vec<_> = std::fs::read_dir(d.join(".git/objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(packs.is_empty(), "git gc ran: {packs:?}");
    assert!(!d.join(".git/gc.pid").exists());
    assert!(!d.join(".git/gc.log").exists());
}

#[test]
fn a_stale_lock_is_reported_with_the_file_to_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("repo");
    repo(&d);
    for name in ["index.lock", "HEAD.lock"] {
        let lock = d.join(".git").join(name);
        std::fs::write(&lock, "").unwrap();
        let e = csdci::vcs::git(&d, &["checkout", "-q", "-B", "other", "one"]).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, csdci::vcs::Error::Locked { lock: l, .. } if *l == lock),
            "{e:?}"
        );
        assert!(msg.contains(&format!("remove {}", lock.display())), "{msg}");
        std::fs::remove_file(&lock).unwrap();
    }
    csdci::vcs::git(&d, &["checkout", "-q", "-B", "other", "one"]).unwrap();
}

#[test]
fn a_stale_index_lock_in_csdcis_worktree_is_named_by_the_checkout_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("repo");
    repo(&d);
    let (one, two) = (
        git(&d, &["rev-parse", "one"]),
        git(&d, &["rev-parse", "two"]),
    );
    let wt = Worktree::ensure(&d, &tmp.path().join("wt")).unwrap();
    wt.checkout(&one).unwrap();
    let lock = git(
        wt.path(),
        &[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "index.lock",
        ],
    );
    // A git process killed mid-checkout leaves its index.lock behind.
    std::fs::write(&lock, "").unwrap();
    let e = wt.checkout(&two).unwrap_err();
    let msg = csdci::Error::from(e).to_string();
    assert!(msg.contains(&format!("remove {lock}")), "{msg}");
    assert!(msg.contains("no git process is running"), "{msg}");
    std::fs::remove_file(&lock).unwrap();
    wt.checkout(&two).unwrap();
}

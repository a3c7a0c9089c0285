//! Records the git commit csdci is built from, for `csdci --version`, in the
//! `CSDCI_GIT_COMMIT` environment variable of the compilation: the commit's
//! abbreviated hash (12 hex digits), `CSDCI_GIT_COMMIT` from the build's own
//! environment when set (a packager building from a tarball), or `unknown` when
//! the source is not a git checkout.
//!
//! It reruns only when HEAD moves (`.git/HEAD`, the branch's ref file, the packed
//! refs), not on every source change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CSDCI_GIT_COMMIT");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // A checkout of csdci itself, not some other repository the source was
    // unpacked into: this package is tracked there.
    let checkout = git(&manifest, &["ls-files", "--", "Cargo.toml"]).is_some();
    let commit = match std::env::var("CSDCI_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ if checkout => git(&manifest, &["rev-parse", "--short=12", "HEAD"])
            .unwrap_or_else(|| "unknown".to_string()),
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=CSDCI_GIT_COMMIT={commit}");

    // The files whose change moves HEAD. Only existing ones are named: cargo
    // treats a missing rerun-if-changed file as always stale. With none named
    // (no checkout) cargo falls back to rerunning when the package changes.
    let Some(git_dir) = git(&manifest, &["rev-parse", "--absolute-git-dir"]).filter(|_| checkout)
    else {
        return;
    };
    let git_dir = PathBuf::from(git_dir);
    // In a linked worktree the branch refs live in the common dir.
    let common = git(
        &manifest,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )
    .map(PathBuf::from)
    .unwrap_or_else(|| git_dir.clone());
    let mut watch = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(head_ref) = git(&manifest, &["symbolic-ref", "-q", "HEAD"]) {
        // A packed branch has no file of its own until it moves: watch the
        // nearest folder that exists, where the file will appear.
        let mut p = common.join(head_ref);
        while !p.exists() && p.pop() {}
        watch.push(p);
    }
    for p in watch {
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

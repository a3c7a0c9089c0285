//! Real git repositories for `csdci bisect` tests: a linear history whose
//! commits are good or bad (and buildable or not), and the `csdci` binary run
//! on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const CSDCI: &str = env!("CARGO_BIN_EXE_csdci");

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada Tester")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Tester")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository under test plus a data dir.
pub struct Repo {
    pub _tmp: tempfile::TempDir,
    pub path: PathBuf,
    pub data: PathBuf,
}

impl Repo {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("repo");
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&path).unwrap();
        git(&path, &["init", "-q", "-b", "main"]);
        std::fs::write(path.join("state"), "good\n").unwrap();
        git(&path, &["add", "state"]);
        git(&path, &["commit", "-qm", "base"]);
        git(&path, &["tag", "base"]);
        Repo {
            _tmp: tmp,
            path,
            data,
        }
    }

    /// Adds commit "commit {i}" (a new file `f{i}`), setting `state` to bad when
    /// `bad`, and marking it unbuildable when `broken`.
    pub fn commit(&self, i: usize, bad: bool, broken: bool) -> String {
        std::fs::write(self.path.join(format!("f{i}")), format!("{i}\n")).unwrap();
        let state = if bad { "bad\n" } else { "good\n" };
        std::fs::write(self.path.join("state"), state).unwrap();
        let b = self.path.join("broken");
        if broken {
            std::fs::write(&b, "yes\n").unwrap();
        } else if b.exists() {
            std::fs::remove_file(&b).unwrap();
        }
        git(&self.path, &["add", "-A"]);
        git(&self.path, &["commit", "-qm", &format!("commit {i}")]);
        git(&self.path, &["rev-parse", "HEAD"])
    }

    /// A linear history of `n` commits after `base`; commits `culprit..` are bad.
    pub fn linear(n: usize, culprit: usize, broken: impl Fn(usize) -> bool) -> (Self, Vec<String>) {
        let r = Repo::new();
        let shas = (1..=n)
            .map(|i| r.commit(i, i >= culprit, broken(i)))
            .collect();
        (r, shas)
    }

    pub fn csdci(&self, args: &[&str]) -> Output {
        Command::new(CSDCI)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("csdci runs")
    }

    /// `csdci bisect` with the text report: (exit code, stdout).
    pub fn bisect_text(&self, good: &str, bad: &str, run: &str, extra: &[&str]) -> (i32, String) {
        let tree = self.path.to_string_lossy().to_string();
        let mut args = vec!["bisect", good, bad, "--tree", &tree, "--run", run];
        args.extend_from_slice(extra);
        let out = self.csdci(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    pub fn bisect_json(&self, good: &str, bad: &str, run: &str, extra: &[&str]) -> (i32, Value) {
        let tree = self.path.to_string_lossy().to_string();
        let mut args = vec!["bisect", good, bad, "--tree", &tree, "--run", run, "--json"];
        args.extend_from_slice(extra);
        let out = self.csdci(&args);
        let code = out.status.code().unwrap_or(-1);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }
}

pub fn log2_ceil(n: usize) -> u64 {
    (n as f64).log2().ceil() as u64
}

/// A script failing on bad commits with probability `percent`, untestable
/// (exit 125) where `broken` exists.
pub fn flaky_script(percent: u32) -> String {
    format!(
        "test -e broken && exit 125; grep -q good state && exit 0; \
         r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' '); \
         [ \"$r\" -lt {} ] && exit 1; exit 0",
        65536 * percent / 100
    )
}

/// `script`, first appending "commit attempt" of every run to `log` (after
/// `sleep` seconds, so a run takes a while).
pub fn recorded(log: &Path, sleep: f64, script: &str) -> String {
    format!(
        "sleep {sleep}; echo \"$CSDCI_COMMIT $CSDCI_ATTEMPT\" >> {}; {script}",
        log.display()
    )
}

pub const DETERMINISTIC: &str = "test -e broken && exit 125; grep -q good state";

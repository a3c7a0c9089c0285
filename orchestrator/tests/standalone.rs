//! A clone of the repository is all a user needs: the repository's HEAD is
//! cloned into a fresh temporary folder with nothing beside it (no `../shared`),
//! and there the corpus test and `csdci bench corpus` both score the vendored
//! syzkaller corpus, read from the clone.
//!
//! It checks what is committed (a clone has no uncommitted work). The clone
//! builds into its own target directory, `<target>/tmp/standalone-target`, kept
//! between runs so that only csdci's own crates rebuild (sharing this
//! workspace's target directory would make the clone's crates and the working
//! tree's overwrite each other's artifacts: cargo names them by their path
//! relative to the workspace, the same in both). The first run builds every
//! dependency once more (minutes on two cores).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const VENDORED: &str = "orchestrator/crates/console/testdata/syzkaller/report";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("orchestrator has a parent")
        .to_path_buf()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `cargo ARGS` in `dir`, building into `target`, with nothing of the outer
/// build's environment (it would point cargo back at this workspace).
fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_") || k.starts_with("CSDCI_") || k == "RUST_TEST_THREADS" {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target);
    let started = Instant::now();
    let o = cmd.output().expect("cargo runs");
    eprintln!(
        "cargo {} (in {}): {:.1} s",
        args.join(" "),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    o
}

#[test]
fn a_clone_alone_checks_the_real_corpus() {
    let t = tempfile::tempdir().unwrap();
    let clone = t.path().join("csdci");
    let o = Command::new("git")
        .args(["clone", "--quiet", "--no-local"])
        .arg(repo())
        .arg(&clone)
        .output()
        .expect("git runs");
    assert!(o.status.success(), "{}", show("git clone", &o));
    let beside: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["csdci"], "nothing beside the clone");
    assert!(
        !repo().starts_with(t.path()) && !clone.starts_with(repo()),
        "the clone is outside the working tree, and the other way round"
    );
    let corpus = clone.join(VENDORED);
    let cases = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("the clone has no {VENDORED}: {e}"))
        .count();
    assert!(cases >= 747, "{cases} files in the clone's corpus");

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standalone-target");

    // The corpus test, as a user runs it.
    let o = cargo(
        &clone,
        &target,
        &[
            "test",
            "--locked",
            "-p",
            "csdci-console",
            "--test",
            "corpus",
            "--",
            "--nocapture",
        ],
    );
    assert!(
        o.status.success(),
        "{}",
        show("corpus test in the clone", &o)
    );
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("corpus: {} (747 cases)", corpus.display())),
        "the corpus test did not read the clone's corpus:\n{err}"
    );
    assert!(err.contains("test result: ok. 1 passed") || text(&o.stdout).contains("1 passed"));

    // csdci bench corpus, from a subfolder of the clone.
    let sub = clone.join("orchestrator/crates");
    let o = cargo(
        &sub,
        &target,
        &["run", "--locked", "-p", "csdci", "--", "bench", "corpus"],
    );
    assert!(
        o.status.success(),
        "{}",
        show("bench corpus in the clone", &o)
    );
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("corpus: {} (747 files", corpus.display())),
        "bench corpus did not read the clone's corpus:\n{out}"
    );
    assert!(out.contains("overall"), "{out}");
}

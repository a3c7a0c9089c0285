//! `csdci run` with bad arguments: one clear line on stderr, exit 3, and
//! nothing built or started.

use std::path::Path;
use std::process::{Command, Output};

fn csdci(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data)
        .arg("run")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run csdci")
}

/// Asserts exit 3 and exactly one non-empty stderr line containing `needle`.
fn assert_usage(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    assert!(lines[0].contains(needle), "'{needle}' not in: {}", lines[0]);
}

/// A tiny git repository (not a kernel: these errors come before any build).
fn tiny_repo(dir: &Path) {
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@e")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@e")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(dir.join("Makefile"), "all:\n").unwrap();
    git(&["add", "Makefile"]);
    git(&["commit", "-q", "-m", "init"]);
}

#[test]
fn run_missing_tree_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let out = csdci(
        d.path(),
        &["--tree", "/nonexistent/linux", "--commit", "HEAD"],
    );
    assert_usage(&out, "/nonexistent/linux is not a directory");
}

#[test]
fn run_non_git_directory_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let out = csdci(d.path(), &["--tree", plain.to_str().unwrap()]);
    assert_usage(&out, "is not a git repository");
}

#[test]
fn run_unknown_commit_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    tiny_repo(d.path());
    let out = csdci(
        &d.path().join("data"),
        &[
            "--tree",
            d.path().to_str().unwrap(),
            "--commit",
            "v9.99-nope",
        ],
    );
    assert_usage(&out, "unknown revision 'v9.99-nope'");
}

#[test]
fn run_bad_fragment_syntax_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    tiny_repo(d.path());
    let frag = d.path().join("extra.config");
    std::fs::write(&frag, "# mine\nCONFIG_KASAN=maybe\n").unwrap();
    let out = csdci(
        &d.path().join("data"),
        &[
            "--tree",
            d.path().to_str().unwrap(),
            "--config-fragment",
            frag.to_str().unwrap(),
        ],
    );
    assert_usage(
        &out,
        "extra.config:2: bad config fragment line 'CONFIG_KASAN=maybe'",
    );
}

#[test]
fn run_missing_fragment_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    tiny_repo(d.path());
    let out = csdci(
        &d.path().join("data"),
        &[
            "--tree",
            d.path().to_str().unwrap(),
            "--config-fragment",
            "/nonexistent.config",
        ],
    );
    assert_usage(&out, "cannot read config fragment /nonexistent.config");
}

#[test]
fn run_too_many_vcpus_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    tiny_repo(d.path());
    let tree = d.path().to_str().unwrap();
    let data = d.path().join("data");
    assert_usage(
        &csdci(&data, &["--tree", tree, "--vcpus", "1000"]),
        "at most 288 vCPUs",
    );
    assert_usage(
        &csdci(&data, &["--tree", tree, "--vcpus", "65"]),
        "configured for at most 64 CPUs",
    );
    assert_usage(
        &csdci(&data, &["--tree", tree, "--vcpus", "0"]),
        "at least 1",
    );
}

#[test]
fn run_bad_memory_and_accel_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    tiny_repo(d.path());
    let tree = d.path().to_str().unwrap();
    let data = d.path().join("data");
    assert_usage(
        &csdci(&data, &["--tree", tree, "--memory", "lots"]),
        "bad memory size 'lots'",
    );
    assert_usage(
        &csdci(&data, &["--tree", tree, "--memory", "16M"]),
        "at least 128M",
    );
    assert_usage(&csdci(&data, &["--tree", tree, "--memory", "100T"]), "RAM");
    assert_usage(
        &csdci(&data, &["--tree", tree, "--accel", "xen"]),
        "unknown accelerator 'xen'",
    );
    assert_usage(
        &csdci(
            &data,
            &["--tree", tree, "--scftorture", "nthreads=2; reboot"],
        ),
        "--scftorture",
    );
}

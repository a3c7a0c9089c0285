//! Field test (issue 10, item 8): the first concurrent use of a new data dir
//! (no "database is locked"), `bisect list`/`log` in a read-only data dir,
//! and open errors that name the database. Real csdci processes.

mod common;

use common::repo::{CSDCI, git};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A repository: `base`, then 4 commits, the third one bad.
fn repo(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    git(path, &["init", "-q", "-b", "main"]);
    std::fs::write(path.join("state"), "good\n").unwrap();
    git(path, &["add", "state"]);
    git(path, &["commit", "-qm", "base"]);
    git(path, &["tag", "base"]);
    for i in 1..=4 {
        let state = if i >= 3 { "bad\n" } else { "good\n" };
        std::fs::write(path.join("state"), state).unwrap();
        std::fs::write(path.join(format!("f{i}")), "x\n").unwrap();
        git(path, &["add", "-A"]);
        git(path, &["commit", "-qm", &format!("commit {i}")]);
    }
}

fn csdci(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(CSDCI);
    c.arg("--data-dir").arg(data).args(args);
    c
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `csdci --data-dir data args...`, started once it reads a line from `go`
/// (a FIFO), so that all start together.
fn gated(go: &Path, data: &Path, args: &[&str]) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("read x < \"$0\"; exec \"$@\"")
        .arg(go)
        .arg(CSDCI)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn eight_processes_at_once_on_a_new_data_dir_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let repos: Vec<PathBuf> = (0..4).map(|i| tmp.path().join(format!("r{i}"))).collect();
    for r in &repos {
        repo(r);
    }
    for round in 0..10 {
        let data = tmp.path().join(format!("data{round}"));
        let go = tmp.path().join(format!("go{round}"));
        nix::unistd::mkfifo(&go, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut children = Vec::new();
        for (i, r) in repos.iter().enumerate() {
            let tree = r.to_string_lossy().to_string();
            children.push(gated(
                &go,
                &data,
                &[
                    "bisect",
                    "base",
                    "main",
                    "--tree",
                    &tree,
                    "--run",
                    "grep -q good state",
                    "--no-revert-check",
                ],
            ));
            let args: &[&str] = if i % 2 == 0 {
                &["bisect", "list"]
            } else {
                &["bisect", "list", "--json"]
            };
            children.push(gated(&go, &data, args));
        }
        // Held open (read-write: no wait for a reader) until all are done; one
        // line per process releases them together (`read` takes one line).
        let mut gate = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&go)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::io::Write::write_all(&mut gate, &[b'\n'; 8]).unwrap();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out));
        }
        drop(gate);
        let out = csdci(&data, &["bisect", "list", "--json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v.as_array().unwrap().len(), 4, "round {round}: {v}");
    }
}

/// Runs `csdci` as user `nobody` (tests run as root, and root ignores
/// permission bits).
fn as_nobody(data: &Path, args: &[&str]) -> Output {
    let mut c = csdci(data, args);
    // SAFETY: setgroups/setgid/setuid are async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).map_err(std::io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(65534)).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    c.env("HOME", "/nonexistent").output().unwrap()
}

fn chown_r(path: &Path, uid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn list_and_log_work_in_a_read_only_data_dir() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: needs root to act as another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // `nobody` must reach the data dir and the repository.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let r = tmp.path().join("r");
    repo(&r);
    let data = tmp.path().join("data");
    let tree = r.to_string_lossy().to_string();
    let out = csdci(
        &data,
        &[
            "bisect",
            "base",
            "main",
            "--tree",
            &tree,
            "--run",
            "grep -q good state",
            "--no-revert-check",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The user's own data dir, made read-only (`chmod -R a-w`).
    chown_r(&data, 65534);
    let st = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(st.success());
    let before: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = as_nobody(&data, &["bisect", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["status"], "done", "{v}");
    let out = as_nobody(&data, &["bisect", "log", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!out.stdout.is_empty());
    let after: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "a read command created files");
    // A data dir that does not exist yet lists nothing, and creates nothing.
    let none = tmp.path().join("none");
    let out = as_nobody(&none, &["bisect", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(!none.exists());
    let out = as_nobody(&none, &["bisect", "log", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bisection 3 not found"));
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&data)
        .status();
}

#[test]
fn open_errors_name_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("csdci.sqlite3");
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();
    let r = tmp.path().join("r");
    repo(&r);
    let tree = r.to_string_lossy().to_string();
    for args in [
        vec!["bisect", "list"],
        vec!["bisect", "log", "1"],
        vec!["bisect", "base", "main", "--tree", &tree, "--run", "true"],
    ] {
        let out = csdci(&data, &args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(err.contains(&db.display().to_string()), "{args:?}: {err}");
    }
}

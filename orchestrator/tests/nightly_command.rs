//! Nights of a job whose commits are tested by a command (`run:`), on real
//! git repositories fetched over a real `git daemon`: the first night tests
//! the head, a night with nothing new builds nothing, a regression pushed
//! upstream is found, bisected to its commit, attached (not bisected again)
//! when a later night shows it again, and marked fixed when the fix lands.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::repo::{CSDCI, git};
use serde_json::Value;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `git daemon` serving the bare repositories under `base`; waits until it
/// answers.
fn git_daemon(base: &Path) -> (Daemon, u16) {
    let port = common::free_port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
        ])
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon (apt install git-daemon-sysvinit or git)");
    let d = Daemon(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (d, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("git daemon did not listen on {port}");
}

fn commit(work: &Path, name: &str, state: &str) -> String {
    std::fs::write(work.join(name), format!("{name}\n")).unwrap();
    std::fs::write(work.join("state"), format!("{state}\n")).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", &format!("add {name}")]);
    git(work, &["rev-parse", "HEAD"])
}

fn night(dir: &Path, data: &Path) -> (i32, Value, String) {
    let out = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(data)
        .args(["job", "run", "nightly-check", "--once", "--json", "--jobs"])
        .arg(dir)
        .output()
        .expect("csdci");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), v, stderr)
}

#[test]
fn nights_find_bisect_attach_and_fix_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("srv");
    let up = base.join("up.git");
    std::fs::create_dir_all(&up).unwrap();
    git(&up, &["init", "-q", "--bare", "-b", "main"]);
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["remote", "add", "origin", up.to_str().unwrap()]);
    let first = commit(&work, "base", "good");
    git(&work, &["push", "-q", "origin", "main"]);
    let (_daemon, port) = git_daemon(&base);

    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("nightly-check.yaml"),
        format!(
            "name: nightly-check\ntree: git://127.0.0.1:{port}/up.git\nbranch: main\n\
             schedule: \"0 2 * * *\"\nrun: grep -q good state\nruns: 2\nfixed_after: 1\nkeep: 1s\n\
             bisect:\n  verify_runs: 1\n  max_runs: 60\n"
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");

    // Night 1: the head is clean.
    let (code, v, err) = night(&jobs, &data);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let night1_logs = data
        .join("nights")
        .join(v["branches"][0]["night_id"].to_string());
    assert!(
        night1_logs.is_dir(),
        "the command's logs are kept per night"
    );
    let b = &v["branches"][0];
    assert_eq!(b["status"], "tested", "{v:#}");
    assert_eq!(b["head"], first.as_str());
    assert_eq!(b["cells"][0]["status"], "clean");
    assert_eq!(b["cells"][0]["runs"], 2);

    // Nothing new: unchanged, nothing run.
    let (code, v, _) = night(&jobs, &data);
    assert_eq!(code, 0);
    assert_eq!(v["branches"][0]["status"], "unchanged", "{v:#}");
    assert!(v["branches"][0]["cells"].as_array().unwrap().is_empty());

    // `keep: 1s`: a later night removes the first night's logs (its results stay).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    night(&jobs, &data);
    assert!(!night1_logs.exists(), "logs older than keep are removed");

    // Eight commits land; the fifth breaks the test.
    let mut shas = Vec::new();
    for i in 1..=8 {
        shas.push(commit(
            &work,
            &format!("f{i}"),
            if i >= 5 { "bad" } else { "good" },
        ));
    }
    git(&work, &["push", "-q", "origin", "main"]);
    let (code, v, err) = night(&jobs, &data);
    assert_eq!(code, 1, "{v:#}\n{err}");
    let b = &v["branches"][0];
    assert_eq!(b["cells"][0]["status"], "failed", "{v:#}");
    assert_eq!(b["opened"].as_array().unwrap().len(), 1, "{v:#}");
    let regression = b["opened"][0].as_i64().unwrap();
    let bisected = &b["bisected"][0];
    assert_eq!(bisected["regression"], regression, "{v:#}\n{err}");
    assert_eq!(bisected["status"], "culprit", "{v:#}\n{err}");
    assert_eq!(bisected["culprit"], shas[4].as_str(), "{v:#}");

    // Another bad commit: the same failure is attached, not bisected again.
    commit(&work, "f9", "bad");
    git(&work, &["push", "-q", "origin", "main"]);
    let (code, v, _) = night(&jobs, &data);
    assert_eq!(code, 1);
    let b = &v["branches"][0];
    assert_eq!(b["attached"], serde_json::json!([regression]), "{v:#}");
    assert!(b["opened"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(b["bisected"].as_array().unwrap().is_empty(), "{v:#}");
    let store = csdci::store::Store::open_read_only(&data).unwrap();
    assert_eq!(
        store.bisect_list().unwrap().len(),
        1,
        "one bisection in all"
    );

    // The fix lands: one clean night marks it fixed (fixed_after: 1).
    let fix = commit(&work, "f10", "good");
    git(&work, &["push", "-q", "origin", "main"]);
    let (code, v, err) = night(&jobs, &data);
    assert_eq!(code, 0, "{v:#}\n{err}");
    assert_eq!(
        v["branches"][0]["fixed"],
        serde_json::json!([regression]),
        "{v:#}"
    );
    let r = store.regression(regression).unwrap().unwrap();
    assert_eq!(r.status, "fixed");
    assert_eq!(r.fixed_head.as_deref(), Some(fix.as_str()));
    assert_eq!(r.culprit.as_deref(), Some(shas[4].as_str()));
    let nine = git(&work, &["rev-parse", "HEAD~1"]);
    assert_eq!(r.fixed_range, Some(format!("{nine}..{fix}")));

    // `job list` shows the last result and no open regression.
    let out = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&data)
        .args(["job", "list", "--json", "--jobs"])
        .arg(&jobs)
        .output()
        .unwrap();
    let l: Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = l[0]["cells"][0]["last_result"].as_str().unwrap();
    assert!(last.starts_with("main: clean at "), "{last}");
    assert!(
        l[0]["open_regressions"].as_array().unwrap().is_empty(),
        "{l:#}"
    );
    // The user's work repository got nothing from csdci.
    assert_eq!(git(&work, &["worktree", "list"]).lines().count(), 1);
}

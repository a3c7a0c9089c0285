//! Field test (issue 10, items 1 and 5): `--run` commands that are missing or
//! not executable abort; a test's processes never outlive csdci (kill -9,
//! SIGTERM, SIGINT), SIGTERM/SIGINT end with exit 130 and a resumable journal;
//! a run past its timeout is skipped or aborts, never bad. Real git
//! repositories, real processes.

mod common;

use common::repo::{CSDCI, Repo, git};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use csdci::testers::command::CommandTester as RunTester;
use csdci::testers::command::OnTimeout;
use csdci::testers::{RunOutcome, Tester};

/// A linear history of `n` commits after `base`; commits `culprit..` are bad.
fn repo(n: usize, culprit: usize) -> Repo {
    Repo::linear(n, culprit, |_| false).0
}

/// What these tests need of a repository under test.
trait Field {
    /// A path in the test's temporary folder, beside the repository.
    fn file(&self, name: &str) -> PathBuf;
    /// The `--run` tester on the repository.
    fn tester(&self, cmd: &str) -> RunTester;
    /// `csdci bisect base main --run RUN`, started.
    fn spawn_bisect(&self, run: &str) -> Child;
}

impl Field for Repo {
    fn file(&self, name: &str) -> PathBuf {
        self._tmp.path().join(name)
    }

    fn tester(&self, cmd: &str) -> RunTester {
        RunTester::new(
            &self.path,
            &self._tmp.path().join("wt"),
            &self._tmp.path().join("logs"),
            cmd,
        )
        .expect("tester")
    }

    fn spawn_bisect(&self, run: &str) -> Child {
        Command::new(CSDCI)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["bisect", "base", "main", "--tree"])
            .arg(&self.path)
            .args(["--run", run])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("csdci runs")
    }
}

/// Alive and not a zombie (pid 1 of a container may never reap orphans).
fn alive(pid: i32) -> bool {
    u32::try_from(pid)
        .ok()
        .and_then(csdci::procfs::stat)
        .is_some_and(|s| !s.is_zombie())
}

/// Waits (bounded) until every pid is gone; panics naming the survivors.
fn assert_gone(pids: &[i32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for &p in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("{what}: processes of the test script survived: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A script that, while `hang` exists, starts two `sleep 1000` (one in a
/// subshell, a grandchild), writes their pids and "started" to `pids`, and
/// waits; otherwise tests `state` like a deterministic bisection script.
fn hanging_script(hang: &Path, pids: &Path) -> String {
    format!(
        "if [ -e {hang} ]; then sleep 1000 & echo $! >> {pids}; \
         (sleep 1000 & echo $! >> {pids}; echo started >> {pids}; wait) & wait; fi; \
         grep -q good state",
        hang = hang.display(),
        pids = pids.display()
    )
}

/// Waits until the script wrote its two pids; returns them.
fn started(pids: &Path, child: &mut Child) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(pids).unwrap_or_default();
        if text.contains("started") {
            let p: Vec<i32> = text.lines().filter_map(|l| l.parse().ok()).collect();
            if p.len() == 2 {
                return p;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "csdci ended before the script started"
        );
        assert!(Instant::now() < deadline, "the script did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exit_127_and_126_abort_instead_of_counting_as_bad() {
    let r = repo(3, 2);
    let head = git(&r.path, &["rev-parse", "main"]);
    let not_exec = r.file("not-executable.sh");
    std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
    for (cmd, code) in [
        ("csdci-no-such-command-xyz".to_string(), 127),
        (not_exec.display().to_string(), 126),
        ("exit 127".to_string(), 127),
        ("exit 126".to_string(), 126),
    ] {
        let mut t = r.tester(&cmd);
        t.prepare(&head).unwrap();
        let e = t.run_once(&head, 0).expect_err(&cmd).to_string();
        assert!(
            e.contains(&format!("exit {code}: command not found or not executable")),
            "{cmd}: {e}"
        );
        assert!(e.contains("aborted the bisection"), "{cmd}: {e}");
    }
    // Exit 1..=124 stays "bad", 125 "skip".
    let mut t = r.tester("exit 124");
    t.prepare(&head).unwrap();
    assert_eq!(t.run_once(&head, 0).unwrap().outcome, RunOutcome::Fail);
}

#[test]
fn cli_bisect_with_a_command_not_found_aborts() {
    let r = repo(4, 2);
    let out = r.spawn_bisect("exit 127").wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{err}\n{stdout}");
    assert!(err.contains("command not found or not executable"), "{err}");
    assert!(!stdout.contains("first bad commit"), "{stdout}");
}

#[test]
fn a_run_past_its_timeout_is_skipped_or_aborts_and_its_processes_die() {
    let r = repo(2, 2);
    let head = git(&r.path, &["rev-parse", "main"]);
    for on_timeout in [OnTimeout::Skip, OnTimeout::Abort] {
        let pids = r.file(&format!("pids-{on_timeout:?}"));
        let hang = r.file("hang");
        std::fs::write(&hang, "").unwrap();
        let mut t = r
            .tester(&hanging_script(&hang, &pids))
            .with_timeout(Duration::from_secs(1), on_timeout);
        t.prepare(&head).unwrap();
        let start = Instant::now();
        let got = t.run_once(&head, 0);
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        match on_timeout {
            OnTimeout::Skip => assert_eq!(
                got.unwrap().outcome,
                RunOutcome::Skip {
                    reason: "timed out after 1 s".into()
                }
            ),
            OnTimeout::Abort => {
                let e = got.expect_err("abort").to_string();
                assert!(e.contains("(timed out after 1 s)"), "{e}");
            }
        }
        let text = std::fs::read_to_string(&pids).unwrap();
        let p: Vec<i32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(p.len(), 2, "{text}");
        assert_gone(&p, "timeout");
        // Without the marker the same tester runs normally.
        std::fs::remove_file(&hang).unwrap();
        assert_eq!(t.run_once(&head, 1).unwrap().outcome, RunOutcome::Fail);
    }
}

#[test]
fn a_fast_script_is_not_slowed_by_the_guardian() {
    let r = repo(2, 2);
    let head = git(&r.path, &["rev-parse", "main"]);
    let mut t = r.tester("grep -q good state");
    t.prepare(&head).unwrap();
    let start = Instant::now();
    for i in 0..10 {
        assert_eq!(t.run_once(&head, i).unwrap().outcome, RunOutcome::Fail);
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn kill_9_of_csdci_kills_the_whole_test_script() {
    let r = repo(8, 5);
    let (hang, pids) = (r.file("hang"), r.file("pids"));
    std::fs::write(&hang, "").unwrap();
    let mut child = r.spawn_bisect(&hanging_script(&hang, &pids));
    let p = started(&pids, &mut child);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_gone(&p, "kill -9");
}

#[test]
fn sigterm_and_sigint_exit_130_kill_the_script_and_resume() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let r = repo(8, 5);
        let (hang, pids) = (r.file("hang"), r.file("pids"));
        std::fs::write(&hang, "").unwrap();
        let mut child = r.spawn_bisect(&hanging_script(&hang, &pids));
        let p = started(&pids, &mut child);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let start = Instant::now();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(start.elapsed() < Duration::from_secs(10), "{sig}");
        assert_eq!(out.status.code(), Some(130), "{sig}: {err}");
        assert!(err.contains("--resume 1"), "{sig}: {err}");
        assert_gone(&p, &format!("{sig}"));
        // The journal is resumable: without the marker the bisection ends.
        std::fs::remove_file(&hang).unwrap();
        let out = Command::new(CSDCI)
            .arg("--data-dir")
            .arg(&r.data)
            .args(["bisect", "--resume", "1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{sig}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let culprit = git(&r.path, &["rev-parse", "main~3"]);
        assert!(
            stdout.contains(&format!("first bad commit: {culprit}")),
            "{sig}: {stdout}"
        );
    }
}

#[test]
fn cli_timeout_skips_or_aborts_and_kills_the_hung_script() {
    // Abort (the default): every run hangs; the first one ends the bisection.
    let r = repo(6, 4);
    let (hang, pids) = (r.file("hang"), r.file("pids"));
    std::fs::write(&hang, "").unwrap();
    let start = Instant::now();
    let out = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(["bisect", "base", "main", "--tree"])
        .arg(&r.path)
        .args(["--run", &hanging_script(&hang, &pids), "--timeout", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("timed out after 1 s"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
    let p: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(p.len(), 2);
    assert_gone(&p, "--timeout abort");

    // Skip: the last good commit hangs; it is journalled as untestable (never
    // bad), and nothing of the hung run survives.
    let r = repo(6, 4);
    let pids = r.file("pids");
    let last_good = git(&r.path, &["rev-parse", "main~3"]);
    let script = format!(
        "if [ \"$CSDCI_COMMIT\" = {last_good} ]; then sleep 1000 & echo $! >> {pids}; wait; fi; \
         grep -q good state",
        pids = pids.display()
    );
    let out = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(["bisect", "base", "main", "--tree"])
        .arg(&r.path)
        .args(["--run", &script, "--timeout", "1", "--on-timeout", "skip"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{err}");
    let log = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args(["bisect", "log", "1"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("timed out after 1 s"), "{log}");
    let p: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(!p.is_empty());
    assert_gone(&p, "--timeout skip");
}

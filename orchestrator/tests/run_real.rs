//! Real end-to-end runs of `csdci run`: a real Linux 6.12 tree is configured,
//! compiled, booted under QEMU (virtiofs root, scftorture) and judged.
//!
//! Kernel tree: `CSDCI_TEST_KERNEL_TREE`, else a git repository made once per
//! machine from Debian's `/usr/src/linux-source-6.12.tar.xz` in
//! `/var/tmp/csdci-linux-6.12` (the demo's import). Data directory, shared by
//! every test here so the cold build (~10 min on 2 cores) happens once:
//! `CSDCI_TEST_DATA_DIR`, else `<target>/tmp/csdci-run-tests`.
//! The tests run one at a time (one mutex): TCG guests and kernel builds are
//! CPU hungry.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::data_dir;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const VCPUS: &str = "4";
const DURATION: &str = "15";

/// The kernel tree and the revision to test in it: `HEAD` of
/// `CSDCI_TEST_KERNEL_TREE`, else the imported tree's `demo-base` tag (stable
/// even when the demo adds history to that repository).
fn kernel() -> &'static (PathBuf, String) {
    static TREE: OnceLock<(PathBuf, String)> = OnceLock::new();
    TREE.get_or_init(|| {
        if let Some(t) = std::env::var_os("CSDCI_TEST_KERNEL_TREE") {
            return (PathBuf::from(t), "HEAD".into());
        }
        let dir = common::kernel_repo();
        common::demo_base();
        (dir, csdci::demo::import::BASE_TAG.into())
    })
}

fn kernel_tree() -> PathBuf {
    kernel().0.clone()
}

fn base_rev() -> &'static str {
    &kernel().1
}

fn command(commit: &str, duration: &str, json: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_csdci"));
    c.arg("--data-dir")
        .arg(data_dir())
        .arg("run")
        .arg("--tree")
        .arg(kernel_tree())
        .args(["--commit", commit, "--vcpus", VCPUS, "--memory", "1G"])
        .args(["--duration", duration, "--accel", "auto"])
        .env("RUST_LOG", "info");
    if json {
        c.arg("--json");
    }
    c
}

fn run_json(commit: &str) -> (Output, Value) {
    let out = command(commit, DURATION, true).output().expect("run csdci");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}\nstdout: {stdout}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json)
}

/// The first clean run (cold build on a fresh data directory), done once.
fn clean_run() -> &'static Value {
    static RUN: OnceLock<Value> = OnceLock::new();
    RUN.get_or_init(|| {
        let start = Instant::now();
        let (out, json) = run_json(base_rev());
        eprintln!(
            "first run: {:.0} s, build {} s (cached: {})",
            start.elapsed().as_secs_f64(),
            json["build"]["seconds"],
            json["build"]["cached"]
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "verdict {}\nstderr: {}",
            json["verdict"],
            String::from_utf8_lossy(&out.stderr)
        );
        json
    })
}

/// QEMU and virtiofsd processes that belong to the test data directory.
fn leftovers() -> Vec<String> {
    let data = data_dir().display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if (comm.contains("qemu") || comm.contains("virtiofsd")) && cmd.contains(&data) {
            found.push(format!("{} {}", e.file_name().to_string_lossy(), cmd));
        }
    }
    found
}

fn wait_gone(timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let left = leftovers();
        if left.is_empty() || start.elapsed() > timeout {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn store() -> csdci::store::Store {
    csdci::store::Store::open(&data_dir()).expect("open store")
}

/// Starts `csdci run` with a long duration and waits until the guest's workload runs.
fn start_long_run() -> (Child, i64) {
    let before = store().recent_runs(1).unwrap().first().map_or(0, |r| r.id);
    let mut child = command(base_rev(), "300", false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "csdci ended early: {}",
            read_all(&mut child)
        );
        if let Some(r) = store().recent_runs(1).unwrap().first()
            && r.id > before
            && let Some(log) = &r.console_log
            && std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains("csdci: workload running")
        {
            return (child, r.id);
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "guest never started its workload"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn read_all(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("csdci did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_real_clean_verdict_then_cached_rerun() {
    let _g = serial();
    let first = clean_run();
    assert_eq!(first["verdict"]["verdict"], "clean");
    let log = PathBuf::from(first["console_log"].as_str().unwrap());
    let console = std::fs::read_to_string(&log).unwrap();
    assert!(
        console.contains("scftorture: --- End of test: SUCCESS"),
        "{console}"
    );
    assert!(first["timings"]["boot"].as_f64().is_some());
    assert!(
        Path::new(first["build"]["artifacts"].as_str().unwrap())
            .join("vmlinux")
            .is_file()
    );

    let id = first["run_id"].as_i64().unwrap();
    let row = store().run(id).unwrap().expect("run row");
    assert_eq!(row.status, "done");
    assert_eq!(row.verdict.as_deref(), Some("clean"));
    assert_eq!(row.vcpus, 4);
    assert!(row.accel.is_some() && row.boot_seconds.is_some() && row.test_seconds.is_some());
    assert_eq!(row.console_log.as_deref(), Some(log.to_str().unwrap()));

    // Same commit and config again: the cache answers, make never runs.
    let wt_logs: Vec<_> = glob_build_logs();
    let start = Instant::now();
    let (out, second) = run_json(base_rev());
    assert_eq!(out.status.code(), Some(0), "{second}");
    assert_eq!(second["build"]["cached"], true);
    assert_eq!(second["build"]["make_invoked"], false);
    assert!(
        second["build"]["seconds"].as_f64().unwrap() < 5.0,
        "{}",
        second["build"]
    );
    assert_eq!(
        second["build"]["artifact_id"],
        first["build"]["artifact_id"]
    );
    assert_eq!(glob_build_logs(), wt_logs, "a build log changed: make ran");
    eprintln!(
        "cached run: {:.1} s end to end (boot {} s, test {} s)",
        start.elapsed().as_secs_f64(),
        second["timings"]["boot"],
        second["timings"]["test"]
    );
}

/// (path, mtime) of every csdci build log in the worktrees.
fn glob_build_logs() -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(data_dir().join("worktrees")) {
        for e in rd.flatten() {
            let p = e.path().join(".csdci-build/csdci-build.log");
            if let Ok(m) = std::fs::metadata(&p).and_then(|m| m.modified()) {
                v.push((p, m));
            }
        }
    }
    v.sort();
    v
}

/// A commit on top of the tested revision whose kernel/smp.c does not compile,
/// made without touching any branch or checkout (a dangling commit object).
fn broken_commit(tree: &Path) -> String {
    edited_commit(tree, "kernel/smp.c", "\nint csdci_test_broken = ;\n")
}

/// A dangling commit on top of the tested revision that appends `tail` to `file`.
fn edited_commit(tree: &Path, file: &str, tail: &str) -> String {
    rewritten_commit(tree, file, |text| text + tail)
}

/// A dangling commit on top of the tested revision with `file` rewritten by `edit`.
fn rewritten_commit(tree: &Path, file: &str, edit: impl FnOnce(String) -> String) -> String {
    let git = |args: &[&str], env: &[(&str, &Path)], input: Option<&[u8]>| -> String {
        let mut c = Command::new("git");
        c.arg("-C").arg(tree).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.env("GIT_AUTHOR_NAME", "csdci test")
            .env("GIT_AUTHOR_EMAIL", "test@csdci.invalid")
            .env("GIT_COMMITTER_NAME", "csdci test")
            .env("GIT_COMMITTER_EMAIL", "test@csdci.invalid")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            if let Some(i) = input {
                stdin.write_all(i).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let base = git(
        &["rev-parse", &format!("{}^{{commit}}", base_rev())],
        &[],
        None,
    );
    let text = edit(git(&["show", &format!("{base}:{file}")], &[], None) + "\n");
    let blob = git(
        &["hash-object", "-w", "--stdin"],
        &[],
        Some(text.as_bytes()),
    );
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let env = [("GIT_INDEX_FILE", index.as_path())];
    git(&["read-tree", &base], &env, None);
    git(
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{blob},{file}"),
        ],
        &env,
        None,
    );
    let treeid = git(&["write-tree"], &env, None);
    git(
        &[
            "commit-tree",
            &treeid,
            "-p",
            &base,
            "-m",
            &format!("csdci test: edit {file}"),
        ],
        &[],
        None,
    )
}

#[test]
fn run_real_broken_commit_is_untestable_with_compiler_error() {
    let _g = serial();
    clean_run();
    let commit = broken_commit(&kernel_tree());
    let out = command(&commit, DURATION, false).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict   untestable"), "{stdout}");
    assert!(
        stdout.contains("kernel/smp.c:") && stdout.contains("error: expected expression"),
        "{stdout}"
    );
    let row = store().runs_for_commit(&commit).unwrap().pop().unwrap();
    assert_eq!(row.verdict.as_deref(), Some("untestable"));
    assert_eq!(row.status, "done");
}

#[test]
fn run_real_sigint_and_sigkill_leave_no_processes_and_keep_results() {
    let _g = serial();
    let clean_id = clean_run()["run_id"].as_i64().unwrap();
    assert!(
        leftovers().is_empty(),
        "processes before the test: {:?}",
        leftovers()
    );

    // SIGINT: csdci stops the guest, marks the run interrupted, exits 130.
    let (mut child, id) = start_long_run();
    assert!(
        !leftovers().is_empty(),
        "no qemu/virtiofsd seen while running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(code, Some(130), "{}", read_all(&mut child));
    assert_eq!(wait_gone(Duration::from_secs(5)), Vec::<String>::new());
    assert_eq!(store().run(id).unwrap().unwrap().status, "interrupted");

    // SIGKILL: the children die with csdci; the next start marks the row.
    let (mut child, id) = start_long_run();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(wait_gone(Duration::from_secs(10)), Vec::<String>::new());
    let row = store().run(id).unwrap().unwrap();
    assert_eq!(row.status, "interrupted", "{row:?}");

    // Earlier results are intact.
    let clean = store().run(clean_id).unwrap().unwrap();
    assert_eq!(clean.status, "done");
    assert_eq!(clean.verdict.as_deref(), Some("clean"));
    assert!(Path::new(clean.console_log.as_deref().unwrap()).is_file());
}

#[test]
fn run_real_dropped_config_option_names_its_dependency() {
    let _g = serial();
    let frag = tempfile::Builder::new()
        .suffix(".config")
        .tempfile()
        .unwrap();
    std::fs::write(
        frag.path(),
        "# needs SCSI, which tinyconfig lacks\nCONFIG_USB_STORAGE=y\n",
    )
    .unwrap();
    let out = command(base_rev(), DURATION, false)
        .arg("--config-fragment")
        .arg(frag.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("verdict   untestable"), "{stdout}");
    assert!(
        stdout.contains("CONFIG_USB_STORAGE=y")
            && stdout.contains(":2) became not set")
            && stdout.contains("drivers/usb/storage/Kconfig:11: depends on SCSI"),
        "{stdout}"
    );
}

/// Processes working inside the test data directory (make, compilers).
fn build_leftovers() -> Vec<String> {
    let data = data_dir();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd"))
            && cwd.starts_with(&data)
        {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push(format!(
                "{} {}",
                e.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    found
}

#[test]
fn run_real_sigkill_during_build_leaves_no_make_behind() {
    let _g = serial();
    // A comment at the end of a widely included header: most of the kernel
    // recompiles (quickly, through ccache), long enough to kill csdci mid-build.
    let stamp = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let commit = edited_commit(
        &kernel_tree(),
        "include/linux/smp.h",
        &format!("/* csdci kill test {stamp} */\n"),
    );
    let mut child = command(&commit, DURATION, false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let compiling = build_leftovers().iter().any(|p| p.ends_with(" make"));
        if compiling && start.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "csdci ended before make ran"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "make never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !build_leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(build_leftovers(), Vec::<String>::new());
}

#[test]
fn run_real_csd_lock_regression_fails_with_exit_1() {
    let _g = serial();
    // The demo's CSD-lock regression (destination-CPU csd_data for async single
    // calls) applied to kernel/smp.c of the tested revision.
    let tree = kernel_tree();
    let commit = rewritten_commit(&tree, "kernel/smp.c", |smp| {
        csdci::demo::patches::regression(&smp).expect("demo regression applies to 6.12")
    });
    // The race needs load and luck: measured here, 2 of 3 runs of 30 s with
    // 8 vCPUs and 16 threads caught it; allow 3 runs of 45 s.
    let mut last = String::new();
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
            .arg("--data-dir")
            .arg(data_dir())
            .args(["run", "--tree"])
            .arg(&tree)
            .args(["--commit", &commit, "--vcpus", "8", "--memory", "1G"])
            .args(["--duration", "45", "--scftorture", "nthreads=16", "--json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.code() == Some(1) {
            assert_eq!(json["verdict"]["verdict"], "failed");
            let findings = json["verdict"]["findings"].as_array().unwrap();
            assert!(
                findings.iter().any(|f| f["kind"] == "csd_lock"),
                "{}",
                json["verdict"]
            );
            let row = store()
                .run(json["run_id"].as_i64().unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(row.verdict.as_deref(), Some("failed"));
            return;
        }
        last = format!("exit {:?}: {}", out.status.code(), json["verdict"]);
    }
    panic!("the CSD-lock regression was not detected in 3 runs; last: {last}");
}

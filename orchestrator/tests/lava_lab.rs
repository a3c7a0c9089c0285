//! `--lab lava` against a real LAVA lab on this host: Debian's lava-server
//! and lava-dispatcher with PostgreSQL, started by `tests/lava/lab.sh`
//! (installs them when missing; once per test binary), one worker and two
//! `qemu` devices (TCG). csdci builds the demo kernels (the shared imported
//! repository and data directory, so kernels come from the cache or
//! ccache), LAVA boots them with csdci's initramfs, csdci judges the console.
//!
//! Checked as a user would: `csdci run --lab lava` of the demo's bad kernel
//! exits 1 with the CSD-lock finding, with the title a local run gives; the
//! good kernel is clean; a refused token exits 3 with a clear message; a
//! lava-worker killed mid-job makes the run an infrastructure failure (exit
//! 2), never a verdict; a LAVA server stopped mid-run is waited for and the
//! run finishes with its verdict once it is back; a bisection over a short
//! range of the demo history, its server stopped for 40 s mid-bisection,
//! names the planted commit with jobs on both devices at the same time and
//! no step for the outage.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{csdci_within, data_dir, kernel_repo};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lava/lab.sh")
}

/// `lab.sh CMD`, which must succeed; its stdout.
fn lab_sh(cmd: &str) -> String {
    let out = Command::new(lab_script())
        .arg(cmd)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/lava/lab.sh");
    assert!(out.status.success(), "lab.sh {cmd} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab (started once): (URL, token file).
struct Lab {
    url: String,
    token_file: String,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let env = lab_sh("start");
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k} in lab.sh output:\n{env}"))
                .to_string()
        };
        Lab {
            url: get("LAVA_URL"),
            token_file: get("LAVA_TOKEN_FILE"),
        }
    })
}

/// The demo history (the one the demo, nightly and initramfs tests write).
fn history() -> &'static Value {
    static H: OnceLock<Value> = OnceLock::new();
    H.get_or_init(common::demo_history)
}

/// The guest: short (TCG on two cores is slow and LAVA adds its own time).
const TEST: [&str; 6] = [
    "--duration",
    "20",
    "--stop-after-crash",
    "15",
    "--vcpus",
    "8",
];

fn lava_args(token_file: &str) -> Vec<String> {
    let lab = lab();
    [
        "--lab",
        "lava",
        "--lava-url",
        &lab.url,
        "--lava-token-file",
        token_file,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `csdci run --json` of `commit` (on the lab with `lava`, else here):
/// (exit code, result JSON).
fn run(commit: &str, lava: Option<&str>) -> (i32, Value) {
    let tree = kernel_repo();
    let mut args: Vec<String> = ["run", "--tree", tree.to_str().unwrap(), "--commit", commit]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(TEST.iter().map(|s| s.to_string()));
    if let Some(tok) = lava {
        args.extend(lava_args(tok));
    }
    args.push("--json".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = csdci_within(&args, Duration::from_secs(1800));
    let v =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}), exit {code}: {out}"));
    (code, v)
}

/// What LAVA recorded about a run's job (`<run dir>/lava.json`).
fn lava_meta(result: &Value) -> Value {
    let dir = result["run_dir"].as_str().expect("run_dir");
    let text = std::fs::read_to_string(Path::new(dir).join("lava.json")).expect("lava.json");
    serde_json::from_str(&text).unwrap()
}

/// GET on the lab's API with its token.
fn api(path: &str) -> Value {
    let lab = lab();
    let tok = std::fs::read_to_string(&lab.token_file).unwrap();
    let out = Command::new("curl")
        .args(["-fsS", "-H"])
        .arg(format!("Authorization: Token {}", tok.trim()))
        .arg(format!("{}/api/v0.2/{path}", lab.url.trim_end_matches('/')))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "GET {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The CSD-lock findings of a run's result.
fn csd_findings(r: &Value) -> Vec<String> {
    r["verdict"]["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter(|f| f["kind"] == "csd_lock")
                .map(|f| f["title"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the bad kernel until it fails (it is a race: most runs show it, on
/// a loaded host not all), at most three times: (exit code, result).
fn failing_run(commit: &str, lava: Option<&str>) -> (i32, Value) {
    let mut last = (0, Value::Null);
    for _ in 0..3 {
        last = run(commit, lava);
        if last.0 != 0 {
            break;
        }
    }
    last
}

#[test]
fn the_bad_kernel_fails_on_lava_with_the_title_of_a_local_run() {
    let _g = serial();
    let lab = lab();
    let bad = history()["bad"].as_str().unwrap().to_string();
    let (code, on_lab) = failing_run(&bad, Some(&lab.token_file));
    assert_eq!(code, 1, "{on_lab:#}");
    let csd = csd_findings(&on_lab);
    assert!(!csd.is_empty(), "no CSD-lock finding: {on_lab:#}");
    let meta = lava_meta(&on_lab);
    assert!(
        meta["device"].as_str().unwrap().starts_with("csdci-qemu"),
        "{meta:#}"
    );
    // LAVA's own record of the job: it ran on that device, and its console
    // (kept by csdci) is what was judged: `csdci parse`, the analyzer of
    // local runs, gives the verdict's title.
    let job = api(&format!("jobs/{}/", meta["job"]));
    assert_eq!(job["actual_device"], meta["device"]);
    let console = on_lab["console_log"].as_str().unwrap();
    assert!(
        std::fs::read_to_string(console)
            .unwrap()
            .contains("csdci: init started")
    );
    let (code, parsed) = csdci_within(&["parse", "--json", console], Duration::from_secs(60));
    assert_eq!(code, 1, "{parsed}");
    let parsed: Value = serde_json::from_str(parsed.lines().next().unwrap()).unwrap();
    assert_eq!(parsed["title"], on_lab["verdict"]["title"]);
    // The same kernel on this host fails the same way.
    let (code, here) = failing_run(&bad, None);
    assert_eq!(code, 1, "{here:#}");
    assert!(!csd_findings(&here).is_empty(), "{here:#}");
    assert!(
        on_lab["verdict"]["title"] == here["verdict"]["title"]
            || csd.iter().any(|t| *t == here["verdict"]["title"])
            || csd_findings(&here)
                .iter()
                .any(|t| *t == on_lab["verdict"]["title"]),
        "lava: {} ({csd:?}); local: {}",
        on_lab["verdict"]["title"],
        here["verdict"]["title"]
    );
}

#[test]
fn the_good_kernel_is_clean_on_lava() {
    let _g = serial();
    let lab = lab();
    let good = history()["good"].as_str().unwrap().to_string();
    let (code, r) = run(&good, Some(&lab.token_file));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["verdict"]["verdict"], "clean");
    let job = api(&format!("jobs/{}/", lava_meta(&r)["job"]));
    assert_eq!(job["health"], "Complete", "{job:#}");
}

#[test]
fn a_refused_token_is_a_usage_error() {
    let _g = serial();
    let lab = lab();
    let d = tempfile::tempdir().unwrap();
    let tok = d.path().join("token");
    std::fs::write(&tok, "not-a-token\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(d.path().join("data"))
        .args(["run", "--tree", kernel_repo().to_str().unwrap()])
        .args(lava_args(tok.to_str().unwrap()))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused the token from the file") && stderr.contains("Invalid token"),
        "{stderr}"
    );
    // No token at all.
    let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(d.path().join("data"))
        .args(["run", "--tree", kernel_repo().to_str().unwrap()])
        .args(["--lab", "lava", "--lava-url", &lab.url])
        .env_remove("CSDCI_LAVA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lava-token-file"));
}

/// `csdci run --lab lava --json` in the background: the child and a
/// reader of its stdout.
fn spawn_run(commit: &str) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let tree = kernel_repo();
    let mut child = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data_dir())
        .args(["run", "--tree", tree.to_str().unwrap(), "--commit", commit])
        .args(TEST)
        .args(lava_args(&lab().token_file))
        .arg("--json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    (child, reader)
}

/// Waits until a job is Running on the lab whose console reached csdci's
/// init; its id.
fn wait_for_running_job(since_id: u64, limit: Duration) -> u64 {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < limit,
            "no job reached the guest's init in {limit:?}"
        );
        let jobs = api("jobs/?state=Running&ordering=-id&limit=10");
        for j in jobs["results"].as_array().unwrap() {
            let id = j["id"].as_u64().unwrap();
            if id <= since_id {
                continue;
            }
            let lab = lab();
            let tok = std::fs::read_to_string(&lab.token_file).unwrap();
            let log = Command::new("curl")
                .args(["-fsS", "-H"])
                .arg(format!("Authorization: Token {}", tok.trim()))
                .arg(format!(
                    "{}/api/v0.2/jobs/{id}/logs/",
                    lab.url.trim_end_matches('/')
                ))
                .output()
                .unwrap();
            if String::from_utf8_lossy(&log.stdout).contains("csdci: init started") {
                return id;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn last_job_id() -> u64 {
    api("jobs/?ordering=-id&limit=1")["results"][0]["id"]
        .as_u64()
        .unwrap_or(0)
}

fn wait_child(mut child: std::process::Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("csdci ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_worker_killed_mid_job_is_an_infrastructure_failure_not_a_verdict() {
    let _g = serial();
    let good = history()["good"].as_str().unwrap().to_string();
    // The kernel first (so the job starts at once).
    let (code, _) = run(&good, Some(&lab().token_file));
    assert_eq!(code, 0);
    let before = last_job_id();
    let (child, out) = spawn_run(&good);
    let job = wait_for_running_job(before, Duration::from_secs(600));
    lab_sh("kill-worker");
    std::thread::sleep(Duration::from_secs(5));
    lab_sh("start-worker");
    let code = wait_child(child, Duration::from_secs(1200));
    let out = out.join().unwrap();
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["verdict"]["verdict"], "infra", "{r:#}");
    assert!(
        r["verdict"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("lava job {job}")),
        "{r:#}"
    );
    // The lab is usable again: the next run is judged.
    lab_sh("start");
    let (code, r) = run(&good, Some(&lab().token_file));
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn a_lava_server_stopped_mid_run_is_waited_for() {
    let _g = serial();
    let bad = history()["bad"].as_str().unwrap().to_string();
    let before = last_job_id();
    let (child, out) = spawn_run(&bad);
    wait_for_running_job(before, Duration::from_secs(1500));
    lab_sh("stop-server");
    // The API is gone for a while; csdci must neither judge nor give up.
    std::thread::sleep(Duration::from_secs(40));
    lab_sh("start-server");
    let code = wait_child(child, Duration::from_secs(1200));
    let out = out.join().unwrap();
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    // Judged by its console once the server was back (the race shows in
    // several ways: a CSD-lock report, a warning in the IPI path, a lockup).
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["verdict"]["verdict"], "failed", "{r:#}");
    assert!(!r["verdict"]["findings"].as_array().unwrap().is_empty());
}

/// `git` in the kernel repository; trimmed stdout.
fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(kernel_repo())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// RFC 3339 time of a LAVA job field.
fn at(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("no time: {v}")))
        .unwrap()
}

#[test]
fn a_bisection_on_two_devices_names_the_planted_commit_through_a_server_outage() {
    let _g = serial();
    let h = history();
    let regression = h["regression"].as_str().unwrap().to_string();
    let bad_tip = h["bad"].as_str().unwrap();
    // A short range around the planted commit: three commits before it
    // (one of them does not compile), two after.
    let good = git(&["rev-parse", &format!("{regression}~3")]);
    let after = git(&[
        "rev-list",
        "--reverse",
        "--ancestry-path",
        &format!("{regression}..{bad_tip}"),
    ]);
    let bad = after
        .lines()
        .nth(1)
        .expect("two commits after the regression")
        .to_string();
    let tree = kernel_repo();
    let mut args: Vec<String> = [
        "bisect",
        "--tree",
        tree.to_str().unwrap(),
        &good,
        &bad,
        "--verify-bad",
        "1",
        "--max-runs",
        "40",
        "--no-revert-check",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(TEST.iter().map(|s| s.to_string()));
    args.extend(lava_args(&lab().token_file));
    let before = last_job_id();
    let mut child = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data_dir())
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    // Mid-bisection, the server goes away for a while, then comes back.
    wait_for_running_job(before, Duration::from_secs(2400));
    lab_sh("stop-server");
    std::thread::sleep(Duration::from_secs(40));
    lab_sh("start-server");
    let code = wait_child(child, Duration::from_secs(3600));
    let out = reader.join().unwrap();
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "culprit", "{r:#}");
    assert_eq!(r["culprit"]["sha"], regression.as_str(), "{r:#}");
    // Every run's LAVA job: its device and times; two on different
    // devices ran at the same time.
    let log = common::bisect_log(&r);
    let mut jobs = Vec::new();
    for s in log["steps"].as_array().unwrap() {
        assert!(
            !s["reason"].as_str().unwrap_or("").contains("unreachable"),
            "the outage became a step: {s:#}"
        );
        if let Some(c) = s["console_log"].as_str() {
            let meta = Path::new(c).parent().unwrap().join("lava.json");
            if let Ok(text) = std::fs::read_to_string(meta) {
                let m: Value = serde_json::from_str(&text).unwrap();
                jobs.push(m);
            }
        }
    }
    assert!(jobs.len() >= 2, "{log:#}");
    let overlap = jobs.iter().enumerate().any(|(i, a)| {
        jobs[i + 1..].iter().any(|b| {
            a["device"] != b["device"]
                && at(&a["start_time"]) < at(&b["end_time"])
                && at(&b["start_time"]) < at(&a["end_time"])
        })
    });
    assert!(
        overlap,
        "no two jobs ran at once on both devices: {jobs:#?}"
    );
}

//! What the real-kernel test files share: the imported kernel repository and
//! the data directory, so the cold kernel build happens once per machine.
#![allow(dead_code)] // each test binary uses its own part

pub mod kcidb;
pub mod repo;
pub mod smtp;

use std::path::{Path, PathBuf};

/// Where the tests import Debian's linux-source-6.12 (the demo's import; the
/// first test that needs it makes it).
pub const IMPORTED_REPO: &str = "/var/tmp/csdci-linux-6.12";

/// The imported kernel repository: `CSDCI_TEST_KERNEL_REPO`, else
/// [`IMPORTED_REPO`].
pub fn kernel_repo() -> PathBuf {
    std::env::var_os("CSDCI_TEST_KERNEL_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(IMPORTED_REPO))
}

/// The data directory every real-kernel test shares (artifact cache, runs):
/// `CSDCI_TEST_DATA_DIR`, else `<target>/tmp/csdci-run-tests`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("CSDCI_TEST_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("csdci-run-tests"))
}

/// A TCP port on loopback that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs csdci on the shared data directory with a wall-clock limit, so a
/// hung pipeline fails the test instead of hanging CI (SIGINT first, so
/// csdci stops its guests); returns (exit code, stdout).
pub fn csdci_within(args: &[&str], limit: std::time::Duration) -> (i32, String) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data_dir())
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn csdci");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            panic!("csdci {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    (
        status.code().unwrap_or(-1),
        reader.join().unwrap_or_default(),
    )
}

/// The imported repository with its `demo-base` tag (imported on first use);
/// returns the base commit.
pub fn demo_base() -> String {
    csdci::demo::import::ensure_base(&kernel_repo(), Path::new(csdci::demo::import::TARBALL))
        .expect("import linux-source-6.12 (apt-get install linux-source-6.12)")
}

/// The demo history every real-kernel test shares (16 commits, seed 5, as
/// `csdci demo --prepare-only` writes it on the imported repository): the
/// `history` object of its JSON (`good`, `bad`, `fix`, `regression`, ...).
pub fn demo_history() -> serde_json::Value {
    demo_base();
    let repo = kernel_repo();
    let (code, out) = csdci_within(
        &[
            "demo",
            "--dir",
            repo.to_str().unwrap(),
            "--commits",
            "16",
            "--seed",
            "5",
            "--prepare-only",
            "--json",
        ],
        std::time::Duration::from_secs(1200),
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("history json");
    v["history"].clone()
}

/// A short range of [`demo_history`] around its planted regression: the
/// regression, the good end (the commit before it) and the bad end (the
/// second commit after it).
pub fn short_demo_range() -> (String, String, String) {
    let h = demo_history();
    let repo = kernel_repo();
    let regression = h["regression"].as_str().unwrap().to_string();
    let good = repo::git(&repo, &["rev-parse", &format!("{regression}~1")]);
    let after = repo::git(
        &repo,
        &[
            "rev-list",
            "--reverse",
            "--ancestry-path",
            &format!("{regression}..{}", h["bad"].as_str().unwrap()),
        ],
    );
    let bad = after
        .lines()
        .nth(1)
        .expect("two commits after the regression")
        .to_string();
    (regression, good, bad)
}

/// `csdci bisect log ID --json` of the bisection whose report (the JSON of
/// `csdci bisect --json`) is `report`.
pub fn bisect_log(report: &serde_json::Value) -> serde_json::Value {
    let id = report["id"]
        .as_i64()
        .or_else(|| report["bisection"].as_i64())
        .expect("bisection id");
    let (code, log) = csdci_within(
        &["bisect", "log", &id.to_string(), "--json"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{log}");
    serde_json::from_str(&log).expect("bisect log json")
}

/// "Upstream" for a test: a bare repository at `dir` that borrows the
/// imported repository's objects (`git clone --bare --shared`).
pub fn upstream(dir: &Path) -> PathBuf {
    let st = std::process::Command::new("git")
        .args(["clone", "-q", "--bare", "--shared", "--no-tags"])
        .arg(kernel_repo())
        .arg(dir)
        .status()
        .expect("git clone");
    assert!(
        st.success(),
        "git clone --bare --shared into {}",
        dir.display()
    );
    dir.to_path_buf()
}

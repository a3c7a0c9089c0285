//! `csdci run --root initramfs`: the guest a LAVA lab boots (kernel +
//! initramfs, no virtiofs), booted by the local QEMU pipeline on a real Linux
//! 6.12 kernel, judged as a virtiofs run of the same commit is.
//!
//! Shares the imported kernel repository (`/var/tmp/csdci-linux-6.12`, or
//! `CSDCI_TEST_KERNEL_REPO`) and the data directory (`CSDCI_TEST_DATA_DIR`,
//! else `<target>/tmp/csdci-run-tests`) with `run_real.rs` and the demo tests,
//! so the kernels come from the artifact cache (csdci's fragments give
//! initrd support, so one kernel serves both roots).
//! The tests run one at a time (TCG guests and kernel builds are CPU hungry).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{csdci_within, kernel_repo};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The imported tree with its `demo-base` tag.
fn base_tree() -> PathBuf {
    common::demo_base();
    kernel_repo()
}

/// `csdci run --json` of `commit` with `root` and `extra` flags (1G of RAM):
/// (exit code, result JSON).
fn run(tree: &Path, commit: &str, root: &str, extra: &[&str]) -> (i32, Value) {
    let args = [
        &[
            "run",
            "--tree",
            tree.to_str().unwrap(),
            "--commit",
            commit,
            "--memory",
            "1G",
            "--accel",
            "auto",
            "--root",
            root,
            "--json",
        ][..],
        extra,
    ]
    .concat();
    let (code, out) = csdci_within(&args, Duration::from_secs(40 * 60));
    let v =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}), exit {code}: {out}"));
    (code, v)
}

fn console(v: &Value) -> String {
    std::fs::read_to_string(v["console_log"].as_str().expect("console log")).unwrap()
}

/// The `csdci: ` lines of the guest's init, numbers left out: what the host's
/// stage detection reads.
fn init_markers(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| l.find("csdci: ").map(|i| &l[i..]))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.starts_with("csdci: init started") && !l.starts_with("csdci: modprobe"))
        .collect()
}

fn qemu_cmdline(v: &Value) -> String {
    let dir = PathBuf::from(v["run_dir"].as_str().expect("run dir"));
    std::fs::read_to_string(dir.join("qemu-cmdline.txt")).unwrap()
}

/// The archive a run booted (`-initrd` in its QEMU command line).
fn initrd_of(v: &Value) -> PathBuf {
    let q = qemu_cmdline(v);
    let mut words = q.split_whitespace();
    words.find(|w| *w == "-initrd");
    PathBuf::from(words.next().unwrap_or_else(|| panic!("no -initrd in {q}")))
}

#[test]
fn initramfs_boot_of_the_good_kernel_is_clean_like_virtiofs() {
    let _g = serial();
    let tree = base_tree();
    let rev = csdci::demo::import::BASE_TAG;
    let (code, ramfs) = run(
        &tree,
        rev,
        "initramfs",
        &["--vcpus", "4", "--duration", "15"],
    );
    assert_eq!(code, 0, "{ramfs:#}");
    assert_eq!(ramfs["verdict"]["verdict"], "clean", "{ramfs:#}");
    assert_eq!(ramfs["vm"]["exit"], "PoweredOff", "{ramfs:#}");
    assert!(ramfs["timings"]["boot"].as_f64().is_some(), "{ramfs:#}");
    let c = console(&ramfs);
    for want in [
        "Run /init as init process",
        "csdci: init started",
        "csdci: modprobe scftorture nthreads=4 weight_resched=0",
        "csdci: workload running for 15 s",
        "scftorture: --- End of test: SUCCESS",
        "csdci: workload done",
        "csdci: powering off (done)",
    ] {
        assert!(c.contains(want), "no {want:?} in the console:\n{c}");
    }
    // Booted from the archive: -initrd, no virtiofs device, no virtiofsd.
    let q = qemu_cmdline(&ramfs);
    assert!(q.contains(" -initrd ") && q.contains(".cpio.gz"), "{q}");
    assert!(
        !q.contains("vhost-user-fs") && !q.contains("virtiofs"),
        "{q}"
    );
    let run_dir = PathBuf::from(ramfs["run_dir"].as_str().unwrap());
    assert!(!run_dir.join("virtiofsd.log").exists());
    // The kernel was built with initrd support, and the archive is cached
    // with it.
    let artifacts = PathBuf::from(ramfs["build"]["artifacts"].as_str().unwrap());
    let config = std::fs::read_to_string(artifacts.join("config")).unwrap();
    assert!(config.lines().any(|l| l == "CONFIG_BLK_DEV_INITRD=y"));
    let archive = initrd_of(&ramfs);
    assert!(
        archive.starts_with(artifacts.join("initramfs")) && archive.is_file(),
        "{}",
        archive.display()
    );
    let mtime = std::fs::metadata(&archive).unwrap().modified().unwrap();

    // The same commit with the virtiofs root: the same verdict, and the init
    // said the same things.
    let (code, vfs) = run(
        &tree,
        rev,
        "virtiofs",
        &["--vcpus", "4", "--duration", "15"],
    );
    assert_eq!(code, 0, "{vfs:#}");
    assert_eq!(vfs["verdict"], ramfs["verdict"]);
    assert_eq!(init_markers(&console(&vfs)), init_markers(&c));
    // One kernel serves both roots: qemu-base.config carries initrd support,
    // so the virtiofs run takes the kernel the initramfs run built.
    assert_eq!(
        vfs["build"]["artifact_id"], ramfs["build"]["artifact_id"],
        "one kernel for the virtiofs and the initramfs root"
    );
    assert_eq!(vfs["build"]["cached"], true, "{vfs:#}");

    // Again: kernel and archive come from the cache.
    let (code, again) = run(
        &tree,
        rev,
        "initramfs",
        &["--vcpus", "4", "--duration", "15"],
    );
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(again["build"]["cached"], true);
    assert_eq!(again["build"]["artifact_id"], ramfs["build"]["artifact_id"]);
    assert_eq!(initrd_of(&again), archive);
    assert_eq!(
        std::fs::metadata(&archive).unwrap().modified().unwrap(),
        mtime,
        "the archive was rebuilt"
    );
}

#[test]
fn initramfs_boot_of_the_bad_kernel_fails_with_the_csd_title_like_virtiofs() {
    let _g = serial();
    let tree = base_tree();
    // The demo history (the same one the demo and nightly tests write).
    let bad = common::demo_history()["bad"]
        .as_str()
        .expect("bad sha")
        .to_string();
    // The planted race (async single-CPU calls under CSD-lock debugging)
    // fails most runs that make only such calls from 16 threads (the bot's
    // kernel test caught it 4 of 4 times): each root gets up to eight.
    let opts = [
        "--duration",
        "30",
        "--stop-after-crash",
        "10",
        "--vcpus",
        "8",
        "--scftorture",
        "nthreads=16 weight_single=1",
    ];
    let ramfs = first_failure(&tree, &bad, "initramfs", &opts);
    assert!(qemu_cmdline(&ramfs).contains(" -initrd "));
    let vfs = first_failure(&tree, &bad, "virtiofs", &opts);
    assert!(qemu_cmdline(&vfs).contains("vhost-user-fs-pci"));
    // The same CSD-lock finding, titled the same, from both consoles.
    assert_eq!(csd_title(&ramfs), csd_title(&vfs));
}

/// Runs `commit` with `root` until a run fails (exit 1, a CSD-lock finding),
/// eight runs at most; its result.
fn first_failure(tree: &Path, commit: &str, root: &str, opts: &[&str]) -> Value {
    let mut verdicts = Vec::new();
    for _ in 0..8 {
        let (code, v) = run(tree, commit, root, opts);
        if code == 1 && csd_title(&v).is_some() {
            return v;
        }
        assert!(code == 0 || code == 1, "exit {code}: {v:#}");
        verdicts.push(v["verdict"].clone());
    }
    panic!("{root}: no run of {commit} failed with a CSD-lock finding: {verdicts:?}");
}

/// The title of the run's first CSD-lock finding ("csd: ...").
fn csd_title(v: &Value) -> Option<String> {
    v["verdict"]["findings"]
        .as_array()?
        .iter()
        .filter_map(|f| f["title"].as_str())
        .find(|t| t.starts_with("csd: "))
        .map(str::to_string)
}

#[test]
fn an_unknown_root_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["run", "--tree", "/nonexistent", "--root", "nfs"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--root: unknown guest root 'nfs' (use virtiofs or initramfs)"),
        "{stderr}"
    );
}

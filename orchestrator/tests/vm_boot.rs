//! Real boots: a built kernel under QEMU with a virtiofs root and scftorture.
//!
//! Boots `CSDCI_TEST_VMLINUX` (a vmlinux built from configs/) with
//! `CSDCI_TEST_MODULES` (its `INSTALL_MOD_PATH` folder); without them, the
//! kernel that `run_real.rs` built for the imported tree's `demo-base` (found in
//! the shared test data directory's artifact cache). When neither exists every
//! test here prints a notice and passes. Tests run one at a time (TCG guests are
//! CPU hungry).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use csdci::image::{GuestParams, prepare_run_root};
use csdci::vm::{self, Accel, Control, NMI_MARKER, VmConfig, VmExit};

mod common;

static SERIAL: Mutex<()> = Mutex::new(());

struct Kernel {
    vmlinux: PathBuf,
    modules: PathBuf,
}

fn kernel() -> Option<Kernel> {
    let vmlinux = std::env::var_os("CSDCI_TEST_VMLINUX").map(PathBuf::from);
    let modules = std::env::var_os("CSDCI_TEST_MODULES").map(PathBuf::from);
    match (vmlinux, modules) {
        (Some(vmlinux), Some(modules)) if vmlinux.is_file() && modules.is_dir() => {
            Some(Kernel { vmlinux, modules })
        }
        _ => cached_base_kernel().or_else(|| {
            eprintln!(
                "skipping real boot: set CSDCI_TEST_VMLINUX and CSDCI_TEST_MODULES to a built kernel, or run run_real.rs first"
            );
            None
        }),
    }
}

/// The `demo-base` kernel in the artifact cache of the tests' shared data
/// directory (`CSDCI_TEST_DATA_DIR`, else `<target>/tmp/csdci-run-tests`).
fn cached_base_kernel() -> Option<Kernel> {
    let repo = common::kernel_repo();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "--verify", "--quiet", "demo-base^{commit}"])
        .output()
        .ok()?;
    let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if base.is_empty() {
        return None;
    }
    let data = common::data_dir();
    std::fs::read_dir(data.join("cache/kernels"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|entry| {
            std::fs::read_to_string(entry.join("manifest.json"))
                .map(|m| m.contains(&format!("\"commit\": \"{base}\"")))
                .unwrap_or(false)
                && entry.join("vmlinux").is_file()
        })
        .map(|entry| Kernel {
            vmlinux: entry.join("vmlinux"),
            modules: entry.join("modules"),
        })
}

/// A data folder kept across test runs, so the KVM probe runs once per host.
fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join("csdci-test-data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(k: &Kernel, tmp: &Path, scftorture: &str, duration_s: u64) -> VmConfig {
    let run_dir = tmp.join("run");
    let params = GuestParams {
        scftorture: scftorture.into(),
        duration_s,
        load: csdci::image::Load::None,
    };
    let root = prepare_run_root(&data_dir(), &k.modules, &params, &run_dir).unwrap();
    VmConfig {
        kernel: k.vmlinux.clone(),
        root: vm::Root::Virtiofs(root),
        vcpus: 8,
        memory_mb: 1024,
        accel: Accel::Auto,
        cmdline_extra: String::new(),
        console_log: run_dir.join("console.log"),
        run_dir,
        deadline: Duration::from_secs(duration_s + 120),
        silence_timeout: Duration::from_secs(90),
        data_dir: data_dir(),
    }
}

/// Processes whose command line mentions `needle` (our run folder).
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
        if cmd.contains(&needle) || cwd.starts_with(&needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

fn assert_nothing_left(cfg: &VmConfig) {
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_mentioning(&cfg.run_dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn clean_boot_powers_off_with_scftorture_success() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&k, tmp.path(), "nthreads=16", 30);
    let mut streamed = Vec::new();
    let out = vm::run(&cfg, &mut |b| {
        streamed.extend_from_slice(b);
        Control::Continue
    })
    .unwrap();
    let console = std::fs::read_to_string(&cfg.console_log).unwrap();
    eprintln!("outcome: {out:?}");
    assert_eq!(out.exit, VmExit::PoweredOff, "console:\n{console}");
    assert_ne!(out.accel, Accel::Auto);
    assert!(console.contains("csdci: init started"), "{console}");
    assert!(
        console.contains("scftorture: --- End of test: SUCCESS"),
        "{console}"
    );
    assert!(console.contains("csdci: workload done"));
    // The exact QEMU command line is kept with the run (the dashboard serves it).
    let line = std::fs::read_to_string(cfg.run_dir.join("qemu-cmdline.txt")).unwrap();
    assert!(
        line.contains("qemu-system-x86_64") && line.contains("-smp"),
        "{line}"
    );
    assert_eq!(String::from_utf8_lossy(&streamed), console);
    let boot = out.boot_seconds.expect("boot time measured");
    assert!(boot > 0.0 && boot < out.seconds);
    assert!(out.seconds >= 30.0, "ran {} s", out.seconds);
    assert_nothing_left(&cfg);
}

#[test]
fn deadline_injects_nmi_then_quits() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&k, tmp.path(), "nthreads=16", 600);
    cfg.deadline = Duration::from_secs(20);
    let out = vm::run(&cfg, &mut |_| Control::Continue).unwrap();
    let console = std::fs::read_to_string(&cfg.console_log).unwrap();
    eprintln!("outcome: {out:?}");
    assert_eq!(out.exit, VmExit::Deadline, "console:\n{console}");
    let (_, after) = console
        .split_once(NMI_MARKER)
        .unwrap_or_else(|| panic!("no NMI marker in console:\n{console}"));
    eprintln!("console after the NMI:\n{after}");
    // The guest reacted to the NMI (unknown_nmi_panic: a panic with backtraces).
    assert!(
        after.contains("NMI"),
        "no NMI reaction after the marker:\n{after}"
    );
    assert!(
        out.seconds < 20.0 + 10.0 + 5.0 + 5.0,
        "took {} s",
        out.seconds
    );
    assert_nothing_left(&cfg);
}

#[test]
fn silent_console_is_detected() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The init prints a heartbeat every 10 s and scftorture prints stats every
    // 60 s: a 7 s silence limit trips during the workload.
    let mut cfg = config(&k, tmp.path(), "nthreads=2", 600);
    cfg.silence_timeout = Duration::from_secs(7);
    let out = vm::run(&cfg, &mut |_| Control::Continue).unwrap();
    let console = std::fs::read_to_string(&cfg.console_log).unwrap();
    assert_eq!(out.exit, VmExit::Silent, "console:\n{console}");
    assert!(console.contains("console silent for"), "{console}");
    assert_nothing_left(&cfg);
}

#[test]
fn stop_from_the_callback_and_panicking_callback_leave_nothing_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&k, tmp.path(), "nthreads=2", 600);
    let mut seen = String::new();
    let out = vm::run(&cfg, &mut |b| {
        seen.push_str(&String::from_utf8_lossy(b));
        if seen.contains("csdci: workload running") {
            Control::Stop
        } else {
            Control::Continue
        }
    })
    .unwrap();
    assert_eq!(out.exit, VmExit::Stopped);
    // Stopped by the callback, long before the 600 s workload would have ended
    // (not a timing target: the guest's pace depends on the host).
    assert!(out.seconds < 600.0, "took {} s", out.seconds);
    assert_nothing_left(&cfg);

    // A caller that panics mid-run: unwinding drops the owned processes.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut seen = String::new();
        vm::run(&cfg, &mut |b| {
            seen.push_str(&String::from_utf8_lossy(b));
            assert!(!seen.contains("csdci: init started"), "caller bug");
            Control::Continue
        })
    }));
    assert!(r.is_err());
    assert_nothing_left(&cfg);
}

#[test]
fn broken_kvm_is_reported_as_qemu_died_not_as_a_hang() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let probe = csdci::vm::accel::cached(&data_dir());
    if probe.as_ref().is_none_or(|p| p.kvm_cpu.is_some()) {
        eprintln!("skipping: KVM is not known to be broken on this host ({probe:?})");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&k, tmp.path(), "nthreads=2", 30);
    cfg.accel = Accel::Kvm;
    let out = vm::run(&cfg, &mut |_| Control::Continue).unwrap();
    eprintln!("outcome: {out:?}");
    // QEMU's own report ends the run, not csdci's silence or deadline limits
    // (those would be VmExit::Silent / Deadline): no hang. How long the broken
    // KVM guest crawls before QEMU gives up depends on the host (25-56 s seen).
    assert!(
        matches!(&out.exit, VmExit::QemuDied(why) if why.contains("KVM")),
        "{out:?}"
    );
    assert_nothing_left(&cfg);
}

/// Not a test by itself: the body of the process that
/// `sigkill_of_the_owner_leaves_nothing_behind` starts and SIGKILLs.
#[test]
#[ignore = "helper process for sigkill_of_the_owner_leaves_nothing_behind"]
fn helper_run_until_killed() {
    let Some(dir) = std::env::var_os("CSDCI_TEST_HELPER_DIR") else {
        return;
    };
    let Some(k) = kernel() else { return };
    let cfg = config(&k, Path::new(&dir), "nthreads=2", 600);
    let _ = vm::run(&cfg, &mut |_| Control::Continue);
}

#[test]
fn sigkill_of_the_owner_leaves_nothing_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_run_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("CSDCI_TEST_HELPER_DIR", tmp.path())
        .spawn()
        .unwrap();
    let console = tmp.path().join("run/console.log");
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("csdci: workload running")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "guest never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let run_dir = tmp.path().join("run");
    assert!(
        !processes_mentioning(&run_dir).is_empty(),
        "qemu/virtiofsd should be running now"
    );
    helper.kill().unwrap(); // SIGKILL: no destructor runs.
    helper.wait().unwrap();
    // PR_SET_PDEATHSIG kills them; give the kernel a moment.
    std::thread::sleep(Duration::from_millis(500));
    let left = processes_mentioning(&run_dir);
    assert!(left.is_empty(), "left behind after SIGKILL: {left:?}");
    // The pid files remain; the next start removes them (nothing to kill).
    assert_eq!(vm::reap_stale(&data_dir()).unwrap(), Vec::<String>::new());
}

#[test]
fn kvm_probe_answers_within_its_limit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let rec = csdci::vm::accel::probe(&k.vmlinux, tmp.path()).unwrap();
    eprintln!("probe: {rec:?} in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(rec.key, csdci::vm::accel::host_key());
    assert!(t.elapsed() < Duration::from_secs(30));
    if rec.kvm_cpu.is_none() {
        assert!(!rec.detail.is_empty());
    }
}

#[test]
fn guest_panic_is_reported_as_panicked() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&k, tmp.path(), "nthreads=2", 30);
    // The kernel panics when the requested init does not exist.
    cfg.cmdline_extra = "init=/csdci-no-such-init".into();
    let out = vm::run(&cfg, &mut |_| Control::Continue).unwrap();
    let console = std::fs::read_to_string(&cfg.console_log).unwrap();
    eprintln!("outcome: {out:?}");
    assert_eq!(out.exit, VmExit::Panicked, "console:\n{console}");
    assert!(console.contains("Kernel panic"), "{console}");
    // Seen as the panic it is, not left to run into the deadline.
    assert!(
        out.seconds < cfg.deadline.as_secs_f64(),
        "took {} s",
        out.seconds
    );
    assert_nothing_left(&cfg);
}

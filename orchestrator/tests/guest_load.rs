//! Real guests with the background load and CPU hotplug: `csdci run --load tlb`
//! with scftorture's `onoff_*` parameters on the imported Linux 6.12 tree's
//! `demo-base` (a good kernel), 4 vCPUs, 20 s. The guest's console says the
//! load started and how much it did, the CPUs really went offline and online
//! (the console's smpboot lines and scftorture's own counters, in the run's
//! scftorture stats), and the run is still judged clean; the initramfs root
//! (what a LAVA lab boots) carries the load as well.
//!
//! Kernel tree and data directory as in `run_real.rs` (shared, so the kernel
//! comes from the build cache once it was built).

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

mod common;

fn kernel_tree() -> std::path::PathBuf {
    if let Some(t) = std::env::var_os("CSDCI_TEST_KERNEL_TREE") {
        return t.into();
    }
    let dir = common::kernel_repo();
    common::demo_base();
    dir
}

fn rev() -> &'static str {
    match std::env::var_os("CSDCI_TEST_KERNEL_TREE") {
        Some(_) => "HEAD",
        None => csdci::demo::import::BASE_TAG,
    }
}

/// The number after `key` in `line` ("... done: 12 processes" → 12).
fn number_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| w.trim_end_matches(',') == word)
        .unwrap_or_else(|| panic!("no '{word}' in {line}"));
    words[i - 1].parse().unwrap_or_else(|_| panic!("{line}"))
}

/// One guest at a time: TCG guests are CPU hungry.
static SERIAL: Mutex<()> = Mutex::new(());

/// `csdci run --json` of the good kernel with `extra` flags, 4 vCPUs: the
/// result (after checking it is clean) and the console.
fn clean_run(extra: &[&str]) -> (Value, String) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tree = kernel_tree().display().to_string();
    let mut args = vec![
        "run",
        "--tree",
        &tree,
        "--commit",
        rev(),
        "--vcpus",
        "4",
        "--memory",
        "1G",
        "--json",
    ];
    args.extend(extra);
    let (code, stdout) = common::csdci_within(&args, Duration::from_secs(3600));
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}"));
    assert_eq!(code, 0, "verdict {}", json["verdict"]);
    assert_eq!(json["verdict"]["verdict"], "clean", "{}", json["verdict"]);
    let path = json["console_log"].as_str().expect("console_log");
    let console = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    (json, console)
}

/// The first console line containing `text`.
fn line(console: &str, text: &str) -> String {
    console
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no '{text}' in the console:\n{console}"))
        .to_string()
}

/// The load ran on all 4 CPUs at nice 19 and counted its work.
fn check_load(console: &str) {
    let started = line(console, "csdci: background load started: ");
    assert!(started.contains("each of 4 CPUs"), "{started}");
    assert!(started.contains("nice 19"), "{started}");
    let done = line(console, "csdci: background load done: ");
    assert!(number_before(&done, "processes") > 0, "{done}");
    assert!(number_before(&done, "cycles") > 0, "{done}");
    assert!(
        !console.contains("background load ended early"),
        "{console}"
    );
    let tlb = line(console, "csdci: tlb shootdowns during the workload: ");
    eprintln!("{started}\n{done}\n{tlb}");
}

#[test]
fn tlb_load_and_cpu_hotplug_run_in_the_guest_and_a_good_kernel_stays_clean() {
    let (json, console) = clean_run(&[
        "--duration",
        "20",
        "--load",
        "tlb",
        "--scftorture",
        "nthreads=4 onoff_holdoff=2 onoff_interval=50",
    ]);
    check_load(&console);
    // CPUs went offline and online, seen by the console analysis.
    let scf = &json["analysis"]["scftorture"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("{scf}"));
    assert!(n(&scf["cpus_offlined"]) > 0, "{scf}");
    assert!(n(&scf["cpus_onlined"]) > 0, "{scf}");
    assert!(n(&scf["onoff"]["offline"]) > 0, "{scf}");
    assert!(n(&scf["onoff"]["online"]) > 0, "{scf}");
    assert!(
        n(&scf["cpus_offlined"]) >= n(&scf["onoff"]["offline"]),
        "every offline scftorture counts is announced: {scf}"
    );
    assert_eq!(scf["result"], "SUCCESS", "{scf}");
    assert!(n(&scf["invocations"]) > 0, "{scf}");
    eprintln!("scftorture stats: {scf}");
}

#[test]
fn the_initramfs_root_runs_the_load_too() {
    let (json, console) =
        clean_run(&["--duration", "15", "--load", "tlb:2", "--root", "initramfs"]);
    check_load(&console);
    assert!(
        line(&console, "csdci: background load started: ").contains("2 process(es) at a time"),
        "{console}"
    );
    // No hotplug asked for: none happened.
    assert_eq!(json["analysis"]["scftorture"]["cpus_offlined"], 0);
}

//! `csdci parse`: exit codes, JSON fields and the text report on the console
//! analyzer's fixtures.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/console/tests/fixtures")
        .join(name)
}

fn parse(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("parse")
        .args(args)
        .args(files)
        .env_remove("RUST_LOG")
        .output()
        .expect("run csdci")
}

#[test]
fn json_for_a_csd_regression_console() {
    let out = parse(&["--json"], &[fixture("csd_soft_lockup.log")]);
    assert_eq!(out.status.code(), Some(1), "a crash exits 1");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object per file");
    assert!(
        v["file"]
            .as_str()
            .unwrap_or("")
            .ends_with("csd_soft_lockup.log")
    );
    assert_eq!(v["verdict"], "crash");
    assert_eq!(v["title"], "BUG: soft lockup in smp_call_function");
    assert_eq!(v["corrupted"], false);
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or(""))
        .collect();
    assert!(
        kinds.contains(&"csd_lock") && kinds.contains(&"soft_lockup") && kinds.contains(&"panic")
    );
    let csd = &v["csd"][0];
    assert_eq!(csd["id"], 1);
    assert_eq!(csd["waiter_cpu"], 3);
    assert_eq!(csd["target_cpu"], 0);
    assert_eq!(csd["func"], "scf_handler_1");
    assert_eq!(csd["csd"], "0xffff888003c1b4a0");
    assert_eq!(csd["resent"], true);
    assert!(v["scftorture"]["errors"]["ste"].is_number());
}

#[test]
fn clean_run_exits_zero_and_stdin_works() {
    let out = parse(&["--json"], &[fixture("scftorture_clean.log")]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["title"], serde_json::Value::Null);
    assert_eq!(v["scftorture"]["result"], "SUCCESS");
    assert_eq!(v["scftorture"]["invocations"], 55450);

    let mut child = Command::new(env!("CARGO_BIN_EXE_csdci"))
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run csdci");
    let log = std::fs::read(fixture("incomplete.log")).expect("fixture");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&log)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-: incomplete"));
}

#[test]
fn text_report_shows_findings_csd_table_and_stats() {
    let out = parse(
        &[],
        &[
            fixture("csd_soft_lockup.log"),
            fixture("scftorture_clean.log"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("title: BUG: soft lockup in smp_call_function"),
        "{text}"
    );
    assert!(text.contains("CSD locks:"), "{text}");
    assert!(text.contains("#1 #2") || text.contains("#2 #3"), "{text}");
    assert!(
        text.contains("scftorture: result SUCCESS, 55450 invocations"),
        "{text}"
    );
}

#[test]
fn unreadable_file_exits_three_with_a_message() {
    let out = parse(&[], &[PathBuf::from("/nonexistent/console.log")]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read /nonexistent/console.log"),
        "{err}"
    );
}

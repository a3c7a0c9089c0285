//! `csdci export kcidb`: a real store (made through the Store API) with a
//! clean night, a night whose runs fail with a regression, a night whose
//! head does not build and an unchanged night; the real `csdci` binary
//! exports it and the real `kcidb-io` package from PyPI (in the virtualenv
//! `.ci/deps` makes) validates the output against KCIDB's latest schema.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::kcidb::kcidb_validate;

use csdci::store::Store;
use csdci::store::findings::StoredFinding;
use csdci::store::nights::TitleCount;
use csdci::store::regressions::NewRegression;
use csdci::store::runs::{Finish, NewRun};
use serde_json::Value;

const JOB: &str = "csd-nightly";
const BRANCH: &str = "master";
const TREE: &str = "https://git.example.org/pub/scm/linux/kernel/git/test/linux.git";
const CSD_LINE: &str = "smp: csd: Detected non-responsive CSD lock (#1) on CPU#2, waiting 5000000000 ns for CPU#03 scf_handler_1+0x0/0x50(0xffff888000c6e0c0).";
const CSD_TITLE: &str = "csd: Detected non-responsive CSD lock in scf_handler_1";
const BUILD_ERROR: &str =
    "kernel/smp.c:812:9: error: implicit declaration of function 'csd_lock_wait_bad'";

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

fn csdci(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csdci"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("CSDCI_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run csdci")
}

fn export(data: &Path, args: &[&str]) -> (String, Value) {
    let mut all = vec!["export", "kcidb"];
    all.extend_from_slice(args);
    let out = csdci(data, &all);
    assert!(
        out.status.success(),
        "csdci {all:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Nothing on standard output with -o FILE.
    let doc = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("the export is JSON")
    };
    (text, doc)
}

fn ids(doc: &Value, list: &str) -> Vec<String> {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} is a list"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn find<'a>(doc: &'a Value, list: &str, id: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no {list} {id} in {doc:#}"))
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    failing_run: i64,
    clean_run: i64,
    test_regression: i64,
    build_regression: i64,
    nights: [i64; 3],
}

fn console(data: &Path, name: &str, lines: &[&str]) -> String {
    let dir = data.join("runs").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("console.log");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.to_string_lossy().into_owned()
}

fn run(store: &Store, data: &Path, head: &str, failed: bool) -> i64 {
    let id = store
        .insert_run(&NewRun {
            repo: TREE.into(),
            commit: head.into(),
            config_hash: Some("cfg0".into()),
            artifact_id: Some(format!("art-{head}")),
            vcpus: 4,
            memory_mb: 2048,
            accel_requested: "auto".into(),
            scftorture: "nthreads=4".into(),
            duration_s: 30,
            build_seconds: Some(120.0),
            build_cached: Some(false),
            ..Default::default()
        })
        .unwrap();
    let mut lines = vec![
        "[    0.0] Linux version 6.12.0",
        "[    1.0] smp: Bringing up secondary CPUs ...",
    ];
    let line = format!("[   30.1] {CSD_LINE}");
    if failed {
        lines.push(&line);
    } else {
        lines.push("[   31.0] scftorture: --- End of test: SUCCESS");
    }
    let log = console(data, &format!("run-{id}"), &lines);
    store
        .set_run_paths(
            id,
            &format!("{}", Path::new(&log).parent().unwrap().display()),
            &log,
        )
        .unwrap();
    let findings = if failed {
        vec![StoredFinding {
            ordinal: 0,
            kind: "csd_lock".into(),
            title: CSD_TITLE.into(),
            first_line: 3,
            last_line: None,
            start_byte: None,
            end_byte: None,
            cpu: Some(2),
            task: None,
            corrupted: false,
            crash_report: false,
        }]
    } else {
        Vec::new()
    };
    store
        .finish_run(
            id,
            &Finish {
                accel: Some("kvm".into()),
                boot_seconds: Some(2.5),
                test_seconds: Some(30.0),
                verdict: if failed { "failed" } else { "clean" }.into(),
                title: failed.then(|| CSD_TITLE.to_string()),
                console_findings: findings,
                ..Default::default()
            },
        )
        .unwrap();
    id
}

/// Night 1 (Nov 1) clean; night 2 (Nov 2) fails 2 of 3 runs: a test
/// regression with a culprit; night 3 (Nov 3) does not build: a build
/// regression; night 4 (Nov 4) unchanged.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(&data).unwrap();
    let spec = r#"{"vcpus":4,"scftorture":"nthreads=4","duration_s":30}"#;
    let cell_name = "vcpus=4 scftorture=nthreads=4";

    let n1 = store
        .night_start(JOB, BRANCH, TREE, Some(&sha('1')), None)
        .unwrap();
    let mut c = store.cell_start(n1, cell_name, spec).unwrap();
    let clean_run = run(&store, &data, &sha('1'), false);
    c.run_ids = vec![clean_run, run(&store, &data, &sha('1'), false)];
    c.status = "clean".into();
    c.runs = 2;
    c.artifact_id = Some(format!("art-{}", sha('1')));
    store.cell_update(&c).unwrap();
    store.night_finish(n1, "tested", None).unwrap();

    let n2 = store
        .night_start(JOB, BRANCH, TREE, Some(&sha('2')), Some(&sha('1')))
        .unwrap();
    let mut c = store.cell_start(n2, cell_name, spec).unwrap();
    let failing_run = run(&store, &data, &sha('2'), true);
    c.run_ids = vec![
        run(&store, &data, &sha('2'), false),
        failing_run,
        run(&store, &data, &sha('2'), true),
    ];
    c.status = "failed".into();
    c.runs = 3;
    c.fails = 2;
    let title = csdci_console::title::normalize(CSD_TITLE);
    c.titles = vec![TitleCount {
        title: title.clone(),
        runs: 2,
    }];
    store.cell_update(&c).unwrap();
    let test_regression = store
        .regression_insert(&NewRegression {
            job: JOB,
            branch: BRANCH,
            cell: cell_name,
            title: &title,
            kind: "test",
            good: Some(&sha('1')),
            bad: &sha('2'),
            night: n2,
            runs: 3,
            fails: 2,
            detail: None,
        })
        .unwrap();
    store
        .regression_set_culprit(test_regression, Some(&sha('c')))
        .unwrap();
    store.night_finish(n2, "tested", None).unwrap();

    let n3 = store
        .night_start(JOB, BRANCH, TREE, Some(&sha('3')), Some(&sha('2')))
        .unwrap();
    let mut c = store.cell_start(n3, cell_name, spec).unwrap();
    c.status = "build_failed".into();
    c.build_error = Some(BUILD_ERROR.into());
    store.cell_update(&c).unwrap();
    let build_title = csdci_console::title::normalize(&format!("build error: {BUILD_ERROR}"));
    let build_regression = store
        .regression_insert(&NewRegression {
            job: JOB,
            branch: BRANCH,
            cell: cell_name,
            title: &build_title,
            kind: "build",
            good: Some(&sha('2')),
            bad: &sha('3'),
            night: n3,
            runs: 0,
            fails: 0,
            detail: Some(BUILD_ERROR),
        })
        .unwrap();
    store.night_finish(n3, "tested", None).unwrap();

    let n4 = store
        .night_start(JOB, BRANCH, TREE, Some(&sha('3')), Some(&sha('3')))
        .unwrap();
    store.night_finish(n4, "unchanged", None).unwrap();

    for (n, day) in [(n1, 1), (n2, 2), (n3, 3), (n4, 4)] {
        store
            .conn()
            .execute(
                &format!(
                    "UPDATE nights SET started_at = '2026-11-0{day}T02:00:00.000Z', \
                     finished_at = '2026-11-0{day}T03:00:00.000Z' WHERE id = {n}"
                ),
                (),
            )
            .unwrap();
    }
    drop(store);
    Fixture {
        _dir: dir,
        data,
        failing_run,
        clean_run,
        test_regression,
        build_regression,
        nights: [n1, n2, n3],
    }
}

#[test]
fn the_export_is_valid_kcidb_and_shows_the_regressions() {
    let f = fixture();
    let (text, doc) = export(&f.data, &[]);
    let (ok, latest, err) = kcidb_validate(&text);
    assert!(ok, "kcidb-io rejects the export: {err}\n{text}");
    assert_eq!(
        format!("{}.{}", doc["version"]["major"], doc["version"]["minor"]),
        latest,
        "the export is of kcidb-io's latest schema"
    );

    // One checkout per night that tested a head; the unchanged night has none.
    let [n1, n2, n3] = f.nights;
    assert_eq!(
        ids(&doc, "checkouts"),
        [n1, n2, n3].map(|n| format!("csdci:night-{n}"))
    );
    let c1 = find(&doc, "checkouts", &format!("csdci:night-{n1}"));
    assert_eq!(c1["git_repository_url"], TREE);
    assert_eq!(c1["git_commit_hash"], sha('1'));
    assert_eq!(c1["git_repository_branch"], BRANCH);
    assert_eq!(c1["valid"], true);
    assert_eq!(c1["start_time"], "2026-11-01T02:00:00.000+00:00");
    assert_eq!(doc["builds"].as_array().unwrap().len(), 3);
    assert_eq!(doc["tests"].as_array().unwrap().len(), 5);

    // The clean run passes and nothing links it to an issue.
    let clean = find(&doc, "tests", &format!("csdci:run-{}", f.clean_run));
    assert_eq!(clean["status"], "PASS");
    assert_eq!(clean["path"], "csd.scftorture");

    // The failing run is FAIL, with its console and the CSD-lock line.
    let failing_id = format!("csdci:run-{}", f.failing_run);
    let failing = find(&doc, "tests", &failing_id);
    assert_eq!(failing["status"], "FAIL");
    assert_eq!(failing["duration"], 32.5);
    let url = failing["log_url"].as_str().unwrap();
    assert!(
        url.starts_with("file:///") && url.ends_with("/console.log"),
        "{url}"
    );
    assert!(failing["log_excerpt"].as_str().unwrap().contains(CSD_LINE));
    assert_eq!(failing["misc"]["titles"][0], CSD_TITLE);
    let build = find(&doc, "builds", failing["build_id"].as_str().unwrap());
    assert_eq!(build["status"], "PASS");
    assert_eq!(build["architecture"], "x86_64");
    assert_eq!(build["checkout_id"], format!("csdci:night-{n2}"));

    // The regression is an issue, linked to both failing runs of night 2.
    let issue_id = format!("csdci:regression-{}", f.test_regression);
    let issue = find(&doc, "issues", &issue_id);
    assert_eq!(issue["version"], 1);
    assert_eq!(issue["comment"], csdci_console::title::normalize(CSD_TITLE));
    assert_eq!(issue["culprit"]["code"], true);
    assert_eq!(issue["misc"]["culprit_commit"], sha('c'));
    let incidents: Vec<&Value> = doc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["issue_id"] == issue_id)
        .collect();
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    assert!(incidents.iter().any(|i| i["test_id"] == failing_id));
    assert!(
        incidents
            .iter()
            .all(|i| i["present"] == true && i["issue_version"] == 1)
    );
    assert!(
        doc["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["test_id"] != format!("csdci:run-{}", f.clean_run))
    );

    // The build failure: a FAIL build with the compiler error, its issue and incident.
    let broken = doc["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["checkout_id"] == format!("csdci:night-{n3}"))
        .unwrap();
    assert_eq!(broken["status"], "FAIL");
    assert_eq!(broken["log_excerpt"], BUILD_ERROR);
    let build_issue = format!("csdci:regression-{}", f.build_regression);
    find(&doc, "issues", &build_issue);
    assert!(
        doc["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["issue_id"] == build_issue && i["build_id"] == broken["id"])
    );

    // With the dashboard's URL, each issue links its page.
    let (text, doc) = export(&f.data, &["--public-url", "https://ci.example.org/"]);
    assert!(kcidb_validate(&text).0);
    assert_eq!(
        find(&doc, "issues", &issue_id)["report_url"],
        format!("https://ci.example.org/regressions/{}", f.test_regression)
    );

    // The validator is no rubber stamp: an unknown status is refused.
    let mut bad = doc.clone();
    bad["tests"][0]["status"] = "BROKEN".into();
    let (ok, _, err) = kcidb_validate(&bad.to_string());
    assert!(!ok && err.contains("BROKEN"), "{err}");
}

#[test]
fn since_keeps_the_newer_nights_and_their_issues() {
    let f = fixture();
    let [_, n2, n3] = f.nights;
    let (text, doc) = export(&f.data, &["--since", "2026-11-02"]);
    let (ok, _, err) = kcidb_validate(&text);
    assert!(ok, "{err}");
    assert_eq!(
        ids(&doc, "checkouts"),
        [n2, n3].map(|n| format!("csdci:night-{n}"))
    );
    assert_eq!(ids(&doc, "issues").len(), 2);

    // RFC 3339, to a file; night 2 and its regression are left out.
    let out = f.data.join("kcidb.json");
    let (stdout, _) = export(
        &f.data,
        &[
            "--since",
            "2026-11-03T01:00:00+00:00",
            "--origin",
            "my_lab",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    let (ok, _, err) = kcidb_validate(&text);
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ids(&doc, "checkouts"), [format!("my_lab:night-{n3}")]);
    assert_eq!(
        ids(&doc, "issues"),
        [format!("my_lab:regression-{}", f.build_regression)]
    );
    assert!(ids(&doc, "tests").is_empty());

    // A span back from now: every fixture night is older than a day.
    let (_, doc) = export(&f.data, &["--since", "1d"]);
    assert!(ids(&doc, "checkouts").is_empty());
}

#[test]
fn a_bad_since_or_origin_is_a_usage_error() {
    let f = fixture();
    let out = csdci(&f.data, &["export", "kcidb", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--since") && err.contains("7d"), "{err}");
    assert!(out.stdout.is_empty());
    let out = csdci(&f.data, &["export", "kcidb", "--origin", "My-CI"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--origin"));
}

#[test]
fn an_empty_data_dir_exports_an_empty_valid_document() {
    let dir = tempfile::tempdir().unwrap();
    let (text, doc) = export(dir.path(), &["--public-url", "https://ci.example.org"]);
    let (ok, _, err) = kcidb_validate(&text);
    assert!(ok, "{err}");
    assert!(ids(&doc, "checkouts").is_empty());
    // Nothing was created in it: the store is read only.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

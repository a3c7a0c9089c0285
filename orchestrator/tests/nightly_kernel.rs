//! Three nights of a job on the demo kernel history, as a maintainer runs
//! them with `csdci job run NAME --once`: real kernel builds, real QEMU guests
//! running scftorture, a real SMTP server on loopback.
//!
//! Night 1 tests a clean head. Then upstream's head is a commit that does not
//! compile: a build regression, bisected (does it build?) to the commit that
//! broke it and mailed with the compiler error. The history with the planted
//! CSD-lock regression is pushed; that night the build is fixed (follow-up
//! mail) and the failure is found, bisected from the last head that ran clean
//! to the planted commit and mailed once. A night with nothing new tests
//! nothing. The fix is pushed; the next night runs clean, marks the regression
//! fixed and sends the threaded follow-up.
//!
//! The upstream repository borrows the imported kernel repository's objects,
//! and the job names that repository as its `reference`, so a night fetches
//! only refs. Shares the kernel repository and the data directory (the build
//! cache) with the other real-kernel tests.

mod common;

use std::path::Path;
use std::time::Duration;

use common::kernel_repo;
use common::repo::git;
use common::smtp::{Smtp, header};
use serde_json::Value;

use common::csdci_within as csdci;

fn night(jobs: &Path, name: &str) -> (i32, Value) {
    let (code, out) = csdci(
        &[
            "job",
            "run",
            name,
            "--once",
            "--json",
            "--public-url",
            "https://ci.example.org",
            "--jobs",
            jobs.to_str().unwrap(),
        ],
        Duration::from_secs(40 * 60),
    );
    let v =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON ({e}), exit {code}: {out}"));
    (code, v)
}

/// The night of job `name` that tested `head`.
fn night_of(store: &::csdci::store::Store, name: &str, head: &str) -> i64 {
    store
        .nights(Some(name), None, 100)
        .unwrap()
        .into_iter()
        .find(|n| n.head.as_deref() == Some(head))
        .map(|n| n.id)
        .expect("the night of the head")
}

#[test]
fn a_nightly_job_finds_bisects_mails_and_closes_the_csd_regression() {
    let h = &common::demo_history();
    let repo = kernel_repo();
    let (good, bad, fix, regression) = (
        h["good"].as_str().unwrap(),
        h["bad"].as_str().unwrap(),
        h["fix"].as_str().unwrap(),
        h["regression"].as_str().unwrap(),
    );

    // "Upstream": a bare repository whose main branch moves as commits land.
    let tmp = tempfile::tempdir().unwrap();
    let up = common::upstream(&tmp.path().join("linux.git"));
    git(&up, &["update-ref", "refs/heads/main", good]);

    let mut smtp = Smtp::start();
    let name = format!(
        "csd-demo-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join(format!("{name}.yaml")),
        format!(
            "name: {name}\n\
             tree: {up}\n\
             reference: {repo}\n\
             branch: main\n\
             schedule: \"0 3 * * *\"\n\
             test:\n  vcpus: 8\n  duration: 20\n  stop_after_crash_s: 15\n\
             runs: 2\n\
             fixed_after: 1\n\
             bisect:\n  verify_runs: 1\n  max_runs: 80\n\
             notify:\n  to: [\"CSD watchers <csd@example.org>\"]\n  from: csdci@example.org\n  \
             smtp:\n    url: \"smtp://127.0.0.1:{port}\"\n    starttls: false\n",
            up = up.display(),
            repo = repo.display(),
            port = smtp.port
        ),
    )
    .unwrap();

    // Night 1: the clean base.
    let (code, v) = night(&jobs, &name);
    assert_eq!(code, 0, "{v:#}");
    let b = &v["branches"][0];
    assert_eq!(b["status"], "tested", "{v:#}");
    assert_eq!(b["head"], good);
    assert_eq!(b["cells"][0]["status"], "clean", "{v:#}");
    assert!(smtp.messages().is_empty());

    // A head that does not compile: a build regression, bisected to the
    // commit that broke the build, reported with the compiler error.
    let broken = h["broken"][0].as_str().unwrap();
    git(&up, &["update-ref", "refs/heads/main", broken]);
    let (code, v) = night(&jobs, &name);
    assert_eq!(code, 1, "{v:#}");
    let b = &v["branches"][0];
    assert_eq!(b["cells"][0]["status"], "build_failed", "{v:#}");
    let build_reg = b["opened"][0].as_i64().expect("a build regression");
    assert_eq!(b["bisected"][0]["culprit"], broken, "{v:#}");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].contains("error:"),
        "the compiler error: {}",
        mails[0]
    );
    assert!(mails[0].contains(&broken[..12]), "{}", mails[0]);
    let build_report_id = header(&mails[0], "Message-ID").expect("Message-ID");

    // The history with the regression lands (and builds again).
    git(&up, &["update-ref", "refs/heads/main", bad]);
    let (code, v) = night(&jobs, &name);
    assert_eq!(code, 1, "{v:#}");
    let b = &v["branches"][0];
    assert_eq!(b["cells"][0]["status"], "failed", "{v:#}");
    let reg = b["opened"][0].as_i64().expect("a regression opened");
    let x = &b["bisected"][0];
    assert_eq!(x["regression"], reg, "{v:#}");
    assert_eq!(
        x["culprit"], regression,
        "bisected to the planted commit: {v:#}"
    );
    // The night's two failing runs of the bad head are the bisection's first
    // evidence: journalled as its runs (the same rows), not run again first.
    let store = ::csdci::store::Store::open_read_only(&common::data_dir()).unwrap();
    let cell = store.cells(night_of(&store, &name, bad)).unwrap();
    let night_runs = &cell[0].run_ids;
    assert_eq!(night_runs.len(), 2, "{cell:?}");
    let steps = store
        .bisect_steps(x["bisection"].as_i64().unwrap(), true)
        .unwrap();
    let first: Vec<_> = steps.iter().filter(|s| s.kind == "run").take(2).collect();
    let ids: Vec<Option<i64>> = first.iter().map(|s| s.run_id).collect();
    assert_eq!(
        ids,
        night_runs.iter().map(|&r| Some(r)).collect::<Vec<_>>(),
        "{steps:#?}"
    );
    assert!(first.iter().all(|s| s.commit == bad), "{steps:#?}");
    let fails = first
        .iter()
        .filter(|s| s.outcome.as_deref() == Some("fail"))
        .count() as u32;
    assert_eq!(fails, cell[0].fails, "{steps:#?}");
    assert_eq!(
        b["fixed"],
        serde_json::json!([build_reg]),
        "the build works again: {v:#}"
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 3, "build fixed, one report: {mails:#?}");
    let fixed_build = mails
        .iter()
        .find(|m| header(m, "In-Reply-To").as_deref() == Some(build_report_id.as_str()))
        .expect("the build break's follow-up");
    assert!(fixed_build.contains(&bad[..12]), "{fixed_build}");
    let report = mails
        .iter()
        .find(|m| m.contains(&regression[..12]) && header(m, "In-Reply-To").is_none())
        .expect("the CSD report");
    let subject = header(report, "Subject").unwrap_or_default();
    assert!(subject.starts_with("[csdci] "), "{subject}");
    assert!(subject.contains("linux/main"), "{subject}");
    assert!(report.contains(&regression[..12]), "{report}");
    assert!(report.contains("Fixes: "), "{report}");
    assert!(report.contains("csdci run"), "{report}");
    assert!(
        report.contains(&format!("https://ci.example.org/regressions/{reg}")),
        "{report}"
    );
    let report_id = header(report, "Message-ID").expect("Message-ID");

    // A night with nothing new tests nothing and mails nothing.
    let (code, v) = night(&jobs, &name);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["branches"][0]["status"], "unchanged", "{v:#}");
    assert_eq!(smtp.messages().len(), 3);

    // The fix lands: clean, fixed, one threaded follow-up.
    git(&up, &["update-ref", "refs/heads/main", fix]);
    let (code, v) = night(&jobs, &name);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["branches"][0]["fixed"], serde_json::json!([reg]), "{v:#}");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 4, "{mails:#?}");
    assert_eq!(
        header(&mails[3], "In-Reply-To").as_deref(),
        Some(report_id.as_str())
    );
    assert!(mails[3].contains(&fix[..12]), "{}", mails[3]);
    smtp.stop();

    // The nights as KCIDB, valid against the real kcidb-io schema, with the
    // CSD regression as an issue and its failing runs as FAIL tests.
    let (code, out) = csdci(&["export", "kcidb"], Duration::from_secs(120));
    assert_eq!(code, 0, "{out}");
    let (ok, _, err) = common::kcidb::kcidb_validate(&out);
    assert!(ok, "kcidb-io rejects the export: {err}");
    let k: Value = serde_json::from_str(&out).unwrap();
    let issue = format!("csdci:regression-{reg}");
    assert!(
        k["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == issue.as_str()),
        "{issue} not in the export"
    );
    assert!(
        k["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["issue_id"] == issue.as_str()),
        "no incident of {issue}"
    );

    // `job list` shows the job with nothing open.
    let (code, out) = csdci(
        &["job", "list", "--json", "--jobs", jobs.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0);
    let l: Value = serde_json::from_str(&out).unwrap();
    assert!(
        l[0]["open_regressions"].as_array().unwrap().is_empty(),
        "{l:#}"
    );
}

//! `csdci job check` and `csdci job list` on real files: the shipped job
//! passes; each broken file exits 3 with one line naming file, line and column.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn csdci(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csdci"))
        .current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run csdci")
}

fn repo_jobs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs")
}

const BASE: &str = "name: t\ntree: /tmp\nbranch: master\nschedule: \"0 2 * * *\"\n";

/// Writes `text` as `name` in a fresh temp dir, checks it, and asserts exit 3
/// and one stderr line `FILE:LINE:COLUMN: …` containing every needle.
fn assert_bad(name: &str, text: &[u8], line: u64, needles: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join(name);
    std::fs::write(&f, text).unwrap();
    let out = csdci(d.path(), &["job", "check", f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    let prefix = format!("{}:{line}:", f.display());
    assert!(
        lines[0].starts_with(&prefix),
        "want {prefix}…, got {}",
        lines[0]
    );
    let col: String = lines[0][prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!col.is_empty(), "no column in {}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' not in: {}", lines[0]);
    }
}

#[test]
fn shipped_job_passes() {
    let d = tempfile::tempdir().unwrap();
    let out = csdci(d.path(), &["job", "check", repo_jobs().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok: "), "{stdout}");
    assert!(
        stdout.contains("(job csd-nightly, 2 cells, next run "),
        "{stdout}"
    );
}

#[test]
fn default_path_is_jobs_of_the_current_directory() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("jobs")).unwrap();
    std::fs::write(d.path().join("jobs/a.yaml"), BASE).unwrap();
    let out = csdci(d.path(), &["job", "check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: jobs/a.yaml (job t, 1 cell, next run ")
    );
}

#[test]
fn unknown_field_suggests() {
    let t = format!("{BASE}test:\n  vpcus: 4\n");
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        6,
        &["unknown field `vpcus`, did you mean `vcpus`?"],
    );
    let t = format!("{BASE}schedul: x\n");
    assert_bad("a.yaml", t.as_bytes(), 5, &["did you mean `schedule`?"]);
}

#[test]
fn hour_out_of_range() {
    let t = "name: t\ntree: /tmp\nbranch: master\nschedule: \"0 25 * * *\"\n";
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        4,
        &["schedule: `0 25 * * *`: hour 25 out of range 0–23"],
    );
}

#[test]
fn bad_timezone() {
    let t = format!("{BASE}timezone: Europe/Berln\n");
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        5,
        &["timezone: ", "did you mean `Europe/Berlin`?"],
    );
}

#[test]
fn password_in_the_file_is_refused() {
    let t = format!(
        "{BASE}notify:\n  to: [a@example.org]\n  from: c@example.org\n  smtp:\n    url: \"smtp://mail.example.org:587\"\n    password: hunter2\n"
    );
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        10,
        &["notify.smtp.password", "password_env"],
    );
}

#[test]
fn matrix_key_that_is_no_runspec_field() {
    let t = format!("{BASE}matrix:\n  vcpu: [4, 8]\n");
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        6,
        &["matrix.vcpu", "did you mean `vcpus`?"],
    );
}

#[test]
fn matrix_cell_fails_runspec_validation() {
    let t = format!("{BASE}matrix:\n  vcpus: [4, 1000]\n");
    assert_bad("a.yaml", t.as_bytes(), 6, &["matrix.vcpus: 1000", "vCPUs"]);
}

#[test]
fn yaml_syntax_error() {
    let t = format!("{BASE}test:\n  vcpus: \"8\n");
    assert_bad("a.yaml", t.as_bytes(), 6, &["yaml: "]);
}

#[test]
fn empty_file() {
    assert_bad("a.yaml", b"", 1, &["empty job file"]);
    assert_bad("a.yaml", b"# only a comment\n", 1, &["empty job file"]);
}

#[test]
fn not_utf8() {
    assert_bad("a.yaml", b"name: t\ntree: \xff\n", 2, &["not UTF-8"]);
}

#[test]
fn bad_keep_and_smtp_url() {
    let t = format!("{BASE}keep: 30 days\n");
    assert_bad("a.yaml", t.as_bytes(), 5, &["keep: "]);
    let t = format!(
        "{BASE}notify:\n  to: [a@example.org]\n  from: c@example.org\n  smtp:\n    url: \"mail.example.org\"\n"
    );
    assert_bad(
        "a.yaml",
        t.as_bytes(),
        9,
        &["notify.smtp.url", "smtp://host:port"],
    );
}

#[test]
fn relative_fragments_resolve_against_the_job_file() {
    let d = tempfile::tempdir().unwrap();
    let jobs = d.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(jobs.join("extra.config"), "CONFIG_NR_CPUS=512\n").unwrap();
    let t = format!("{BASE}test:\n  vcpus: 100\n  config_fragments: [extra.config]\n");
    std::fs::write(jobs.join("a.yaml"), t).unwrap();
    // Checked from another directory: the fragment is found next to the file.
    let out = csdci(d.path(), &["job", "check", "jobs/a.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn list_json_gives_the_next_run() {
    let d = tempfile::tempdir().unwrap();
    let out = csdci(
        d.path(),
        &[
            "job",
            "list",
            "--jobs",
            repo_jobs().to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = &v[0];
    assert_eq!(job["name"], "csd-nightly");
    assert_eq!(job["timezone"], "Europe/Berlin");
    let next = job["next_run_utc"].as_str().unwrap();
    assert!(next.ends_with('Z') && next.contains('T'), "{next}");
    assert!(
        job["next_run_local"]
            .as_str()
            .unwrap()
            .contains("T02:00:00+0")
    );
    assert_eq!(job["cells"].as_array().unwrap().len(), 2);
    assert_eq!(job["cells"][0]["last_result"], "never run");
    assert_eq!(job["open_regressions"], serde_json::json!([]));
}

#[test]
fn run_and_test_together_are_refused() {
    let text = format!("{BASE}run: ./check.sh\ntest:\n  vcpus: 4\n");
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("check.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        d.path().join("check.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let f = d.path().join("j.yaml");
    std::fs::write(&f, &text).unwrap();
    let out = csdci(d.path(), &["job", "check", f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{}:5:", f.display())),
        "{stderr}"
    );
    assert!(stderr.contains("keep one of them"), "{stderr}");
    // Alone, the script beside the job file is found.
    std::fs::write(&f, format!("{BASE}run: ./check.sh\n")).unwrap();
    let out = csdci(d.path(), &["job", "check", f.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_run_script_and_reference_and_zero_fixed_after() {
    assert_bad(
        "a.yaml",
        format!("{BASE}run: ./nope.sh\n").as_bytes(),
        5,
        &["run", "nope.sh"],
    );
    assert_bad(
        "b.yaml",
        format!("{BASE}reference: /nonexistent/linux\n").as_bytes(),
        5,
        &["reference", "not a local git repository"],
    );
    assert_bad(
        "c.yaml",
        format!("{BASE}fixed_after: 0\n").as_bytes(),
        5,
        &["fixed_after", "at least one clean night"],
    );
}

#[test]
fn job_run_names_an_unknown_job_and_needs_once() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("jobs")).unwrap();
    std::fs::write(d.path().join("jobs/a.yaml"), BASE).unwrap();
    let out = csdci(d.path(), &["job", "run", "tt", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no job `tt` in jobs: did you mean `t`?"),
        "{stderr}"
    );
    let out = csdci(d.path(), &["job", "run", "t"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("pass --once"), "{stderr}");
}

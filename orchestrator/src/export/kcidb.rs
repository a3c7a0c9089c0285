//! The nights as one KCIDB v5 document (the schema of the `kcidb-io` package,
//! `kcidb_io.schema.LATEST`, v5.3), for submission to the common kernel CI
//! database or any reader of its format.
//!
//! | KCIDB       | from the store | id |
//! |-------------|----------------|----|
//! | checkout    | a night that tested a head (not `unchanged`, with a head) | `<origin>:night-<id>` |
//! | build       | each cell of that night | `<origin>:night-<id>:<cell slug>` |
//! | test        | each run of the cell (`runs` rows), path [`TEST_PATH`] | `<origin>:run-<id>` |
//! | issue       | each regression, version 1 | `<origin>:regression-<id>` |
//! | incident    | a failing run (test regression) or a broken build (build regression) of a night that showed it | `<origin>:regression-<id>:run-<id>` / `…:build-<night>:<slug>` |
//!
//! Statuses: a test is `PASS` (verdict clean), `FAIL` (failed), `SKIP`
//! (untestable), `ERROR` (infra, or the run was interrupted), none while it
//! runs. A build is `FAIL` when the head did not compile for the cell,
//! `PASS` when it was tested, `ERROR` when the infrastructure lost the cell
//! before a kernel was built. v5 builds have no `valid` field: `status` says it.
//! KCIDB allows no `null`: missing facts are left out. Git URLs other than
//! `https://` (a path, `git://`) do not match the schema's
//! `git_repository_url` and go to the checkout's `misc.tree`.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::store::Store;
use crate::store::findings::StoredFinding;
use crate::store::nights::{Night, NightCell};
use crate::store::regressions::Regression;
use crate::store::runs::RunRow;

/// Major version of the KCIDB schema written.
pub const MAJOR: u64 = 5;
/// Minor version: what `kcidb_io.schema.LATEST` of kcidb-io 141 is (v5.3).
pub const MINOR: u64 = 3;
/// The origin when none is given.
pub const DEFAULT_ORIGIN: &str = "csdci";
/// The test path of every run: scftorture watched for CSD-lock and lockup
/// failures.
pub const TEST_PATH: &str = "csd.scftorture";
/// The schema's `maxLength` of every `log_excerpt`, in characters.
pub const EXCERPT_MAX: usize = 16384;
/// Console lines a test's `log_excerpt` holds from its first finding on.
const EXCERPT_LINES: usize = 40;
/// The issue version written (regressions are not versioned in the store).
pub const ISSUE_VERSION: u64 = 1;

/// What to export and how to name it.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Only nights started at or after this time (all when none); issues for
    /// regressions those nights showed or fixed.
    pub since: Option<DateTime<Utc>>,
    /// The CI system's name: the prefix of every id (`[a-z0-9_]+`).
    pub origin: &'a str,
    /// The dashboard's public URL: issues get `report_url`
    /// `<URL>/regressions/<id>`.
    pub public_url: Option<&'a str>,
}

/// The nights since `since` (all when none) as a KCIDB v5 document, ids
/// prefixed with `origin`.
pub fn export(store: &Store, since: Option<DateTime<Utc>>, origin: &str) -> crate::Result<Value> {
    export_with(
        store,
        &Options {
            since,
            origin,
            public_url: None,
        },
    )
}

/// Whether `origin` may prefix KCIDB ids (the schema's `^[a-z0-9_]+$`).
pub fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A cell's part of the export, kept to link incidents.
struct CellOut {
    build_id: String,
    status: String,
    titles: Vec<String>,
    /// (test id, verdict, normalised titles) of each run.
    runs: Vec<(String, Option<String>, Vec<String>)>,
}

/// [`export`] with every option.
pub fn export_with(store: &Store, opts: &Options<'_>) -> crate::Result<Value> {
    let origin = opts.origin;
    if !valid_origin(origin) {
        return Err(crate::Error::Usage(format!(
            "origin `{origin}`: KCIDB origins are lowercase letters, digits and `_` (e.g. csdci)"
        )));
    }
    let mut nights = store.nights(None, None, u32::MAX)?;
    nights.reverse();
    let nights: Vec<Night> = nights
        .into_iter()
        .filter(|n| match opts.since {
            None => true,
            Some(since) => parse_time(&n.started_at).is_some_and(|t| t >= since),
        })
        .collect();

    let (mut checkouts, mut builds, mut tests) = (Vec::new(), Vec::new(), Vec::new());
    let mut by_night: HashMap<i64, Vec<CellOut>> = HashMap::new();
    let mut seen_runs = BTreeSet::new();
    for night in &nights {
        if !tested_head(night) {
            continue;
        }
        let checkout_id = checkout_id(origin, night.id);
        checkouts.push(checkout(origin, night));
        let mut slugs = BTreeSet::new();
        let mut cells_out = Vec::new();
        for cell in store.cells(night.id)? {
            let mut local = format!("night-{}:{}", night.id, slug(&cell.cell));
            let base = local.clone();
            let mut k = 2;
            while !slugs.insert(local.clone()) {
                local = format!("{base}-{k}");
                k += 1;
            }
            let build_id = format!("{origin}:{local}");
            let mut runs = Vec::new();
            for id in &cell.run_ids {
                if seen_runs.insert(*id)
                    && let Some(r) = store.run(*id)?
                {
                    runs.push(r);
                }
            }
            builds.push(build(origin, &checkout_id, &build_id, night, &cell, &runs));
            let mut out = CellOut {
                build_id: build_id.clone(),
                status: cell.status.clone(),
                titles: cell.titles.iter().map(|t| t.title.clone()).collect(),
                runs: Vec::new(),
            };
            for r in &runs {
                let findings = store.run_findings(r.id)?;
                let console = r.console_log.as_deref().map(|p| {
                    let p = Path::new(p);
                    if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        store.data_dir().join(p)
                    }
                });
                let console = console.filter(|p| p.is_file());
                let excerpt = match (&console, findings.first()) {
                    (Some(p), Some(f)) if r.verdict.as_deref() == Some("failed") => {
                        console_excerpt(p, f)
                    }
                    _ => None,
                };
                let t = test(
                    origin,
                    &build_id,
                    &cell.cell,
                    r,
                    &findings,
                    console.as_deref(),
                    excerpt,
                );
                let norm = run_titles(r, &findings)
                    .iter()
                    .map(|t| csdci_console::title::normalize(t))
                    .collect();
                out.runs
                    .push((test_id(origin, r.id), r.verdict.clone(), norm));
                tests.push(t);
            }
            cells_out.push(out);
        }
        by_night.insert(night.id, cells_out);
    }

    let exported: BTreeSet<i64> = nights.iter().map(|n| n.id).collect();
    let trees: HashMap<i64, &Night> = nights.iter().map(|n| (n.id, n)).collect();
    let mut regressions = store.regressions(None, None)?;
    regressions.reverse();
    let (mut issues, mut incidents) = (Vec::new(), Vec::new());
    for r in &regressions {
        let linked = store.regression_nights(r.id)?;
        let shows = |n: &i64| exported.contains(n);
        let relevant = opts.since.is_none()
            || linked.iter().any(|(n, _, _)| shows(n))
            || shows(&r.first_night)
            || r.fixed_night.as_ref().is_some_and(shows);
        if !relevant {
            continue;
        }
        let tree = trees
            .get(&r.first_night)
            .map(|n| n.tree.clone())
            .or_else(|| store.night(r.first_night).ok().flatten().map(|n| n.tree));
        let issue_id = issue_id(origin, r.id);
        issues.push(issue(origin, r, tree.as_deref(), opts.public_url));
        let mut linked_ids = BTreeSet::new();
        for (night, _, _) in &linked {
            let Some(cells) = by_night.get(night) else {
                continue;
            };
            for (what, id) in incident_targets(r, cells) {
                if !linked_ids.insert(id.clone()) {
                    continue;
                }
                let mut m = Map::new();
                let local = id.split_once(':').map(|(_, l)| l).unwrap_or(&id);
                m.insert("id".into(), format!("{issue_id}:{local}").into());
                m.insert("origin".into(), origin.into());
                m.insert("issue_id".into(), issue_id.clone().into());
                m.insert("issue_version".into(), ISSUE_VERSION.into());
                m.insert(what.into(), id.into());
                m.insert("present".into(), true.into());
                m.insert(
                    "comment".into(),
                    text(&format!("night {night}: {}", r.title)).into(),
                );
                incidents.push(Value::Object(m));
            }
        }
    }

    Ok(json!({
        "version": {"major": MAJOR, "minor": MINOR},
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
        "issues": issues,
        "incidents": incidents,
    }))
}

/// What regression `r` links to in one night's cells: `("test_id", id)` for
/// each failing run showing its title (test regressions; when no run's own
/// titles match, the failing runs of cells whose counted titles do), or
/// `("build_id", id)` for each cell that did not build (build regressions).
fn incident_targets(r: &Regression, cells: &[CellOut]) -> Vec<(&'static str, String)> {
    if r.kind == "build" {
        return cells
            .iter()
            .filter(|c| c.status == "build_failed")
            .map(|c| ("build_id", c.build_id.clone()))
            .collect();
    }
    let failing = |c: &CellOut| -> Vec<(String, Vec<String>)> {
        c.runs
            .iter()
            .filter(|(_, v, _)| v.as_deref() == Some("failed"))
            .map(|(id, _, t)| (id.clone(), t.clone()))
            .collect()
    };
    let by_run: Vec<_> = cells
        .iter()
        .flat_map(failing)
        .filter(|(_, titles)| titles.contains(&r.title))
        .map(|(id, _)| ("test_id", id))
        .collect();
    if !by_run.is_empty() {
        return by_run;
    }
    cells
        .iter()
        .filter(|c| c.titles.contains(&r.title))
        .flat_map(failing)
        .map(|(id, _)| ("test_id", id))
        .collect()
}

/// Whether night `n` tested a head (a checkout to report).
pub fn tested_head(n: &Night) -> bool {
    n.head.is_some() && n.status != "unchanged"
}

fn checkout_id(origin: &str, night: i64) -> String {
    format!("{origin}:night-{night}")
}

fn test_id(origin: &str, run: i64) -> String {
    format!("{origin}:run-{run}")
}

fn issue_id(origin: &str, regression: i64) -> String {
    format!("{origin}:regression-{regression}")
}

/// A cell name as an id part: ASCII letters, digits, `_`, `-`, `.` and `=`
/// kept, anything else `_`.
pub fn slug(cell: &str) -> String {
    let s: String = cell
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "cell".into() } else { s }
}

/// A string as KCIDB accepts it (no NUL).
fn text(s: &str) -> String {
    s.replace('\0', "")
}

/// At most [`EXCERPT_MAX`] characters of `s`, the end kept (where a build
/// error or a crash report ends), without NUL.
fn excerpt(s: &str) -> String {
    let s = text(s);
    let n = s.chars().count();
    if n <= EXCERPT_MAX {
        return s;
    }
    s.chars().skip(n - EXCERPT_MAX).collect()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A stored time as KCIDB's `date-time` (RFC 3339, UTC); none when unreadable.
fn time(s: &str) -> Option<String> {
    parse_time(s).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false))
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `path` as a `file://` URL (bytes other than unreserved ones and `/`
/// percent-encoded), absolute.
pub fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut url = String::from("file://");
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The tree's short name: the last path part of its URL, without `.git`.
fn tree_name(tree: &str) -> Option<String> {
    let last = tree.trim_end_matches('/').rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then(|| text(name))
}

/// The object's entries that are not null (KCIDB has no nulls).
fn no_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        v => v,
    }
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(key.into(), v.into());
    }
}

/// The checkout of night `n`.
pub fn checkout(origin: &str, n: &Night) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), checkout_id(origin, n.id).into());
    m.insert("origin".into(), origin.into());
    put(&mut m, "tree_name", tree_name(&n.tree));
    if n.tree.starts_with("https://") {
        m.insert("git_repository_url".into(), text(&n.tree).into());
    }
    if let Some(h) = n.head.as_deref().filter(|h| is_sha1(h)) {
        m.insert("git_commit_hash".into(), h.into());
    }
    m.insert("git_repository_branch".into(), text(&n.branch).into());
    m.insert("patchset_hash".into(), "".into());
    put(&mut m, "start_time", time(&n.started_at));
    if n.status == "tested" {
        let end = n.finished_at.as_deref().and_then(time);
        put(&mut m, "origin_builds_finish_time", end.clone());
        put(&mut m, "origin_tests_finish_time", end);
    }
    m.insert("valid".into(), n.head.is_some().into());
    m.insert(
        "comment".into(),
        text(&format!("csdci job {} night {}", n.job, n.id)).into(),
    );
    let misc = json!({
        "job": n.job,
        "night_id": n.id,
        "night_status": n.status,
        "tree": n.tree,
        "head": n.head,
        "prev_head": n.prev_head,
        "reason": n.reason,
        "finished_at": n.finished_at,
    });
    m.insert("misc".into(), no_nulls(misc));
    Value::Object(m)
}

/// The build status of a cell: `FAIL` when the head did not compile, `PASS`
/// when a kernel was built (tested, or a run knows its build), `ERROR` when
/// the infrastructure lost it first, none while it is running unbuilt.
pub fn build_status(cell: &NightCell, runs: &[RunRow]) -> Option<&'static str> {
    let built = cell.artifact_id.is_some()
        || runs.iter().any(|r| {
            r.artifact_id.is_some() || r.build_seconds.is_some() || r.boot_seconds.is_some()
        });
    match cell.status.as_str() {
        "build_failed" => Some("FAIL"),
        "clean" | "failed" => Some("PASS"),
        _ if built => Some("PASS"),
        "infra" => Some("ERROR"),
        _ => None,
    }
}

/// The build of `cell` (night `night`), tested by `runs`.
pub fn build(
    origin: &str,
    checkout_id: &str,
    build_id: &str,
    night: &Night,
    cell: &NightCell,
    runs: &[RunRow],
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), build_id.into());
    m.insert("checkout_id".into(), checkout_id.into());
    m.insert("origin".into(), origin.into());
    put(&mut m, "start_time", time(&night.started_at));
    put(
        &mut m,
        "duration",
        runs.iter().find_map(|r| r.build_seconds),
    );
    m.insert("architecture".into(), "x86_64".into());
    m.insert("config_name".into(), text(&cell.cell).into());
    m.insert(
        "comment".into(),
        text(&format!("cell {}", cell.cell)).into(),
    );
    put(&mut m, "status", build_status(cell, runs));
    if cell.status == "build_failed" {
        put(
            &mut m,
            "log_excerpt",
            cell.build_error.as_deref().map(excerpt),
        );
    }
    let spec =
        serde_json::from_str::<Value>(&cell.spec).unwrap_or_else(|_| cell.spec.clone().into());
    let misc = json!({
        "cell": cell.cell,
        "cell_status": cell.status,
        "spec": spec,
        "runs": cell.runs,
        "fails": cell.fails,
        "infra_runs": cell.infra,
        "titles": cell.titles,
        "artifact_id": cell.artifact_id.clone().or_else(|| runs.iter().find_map(|r| r.artifact_id.clone())),
        "config_hash": runs.iter().find_map(|r| r.config_hash.clone()),
        "build_cached": runs.iter().find_map(|r| r.build_cached),
        "infra_reason": if cell.status == "infra" { cell.build_error.clone() } else { None },
    });
    m.insert("misc".into(), no_nulls(misc));
    Value::Object(m)
}

/// A run's KCIDB test status: clean `PASS`, failed `FAIL`, untestable `SKIP`,
/// infra or interrupted `ERROR`; none while running.
pub fn test_status(r: &RunRow) -> Option<&'static str> {
    match r.verdict.as_deref() {
        Some("clean") => Some("PASS"),
        Some("failed") => Some("FAIL"),
        Some("untestable") => Some("SKIP"),
        Some(_) => Some("ERROR"),
        None if r.status == "running" => None,
        None => Some("ERROR"),
    }
}

/// The titles of a run: its findings' (console order, each once), then the
/// run's own title when none of them is it.
pub fn run_titles(r: &RunRow, findings: &[StoredFinding]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in findings.iter().map(|f| &f.title).chain(r.title.as_ref()) {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The test of run `r` of cell `cell`, built as `build_id`; `console` is its
/// console log when it exists, `log_excerpt` the part from its first finding.
pub fn test(
    origin: &str,
    build_id: &str,
    cell: &str,
    r: &RunRow,
    findings: &[StoredFinding],
    console: Option<&Path>,
    log_excerpt: Option<String>,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), test_id(origin, r.id).into());
    m.insert("build_id".into(), build_id.into());
    m.insert("origin".into(), origin.into());
    m.insert("path".into(), TEST_PATH.into());
    put(&mut m, "status", test_status(r));
    put(&mut m, "start_time", time(&r.started_at));
    let duration = match (r.boot_seconds, r.test_seconds) {
        (None, None) => None,
        (b, t) => Some(b.unwrap_or(0.0) + t.unwrap_or(0.0)),
    };
    put(&mut m, "duration", duration);
    put(&mut m, "log_url", console.map(file_url));
    put(&mut m, "log_excerpt", log_excerpt.as_deref().map(excerpt));
    let titles = run_titles(r, findings);
    let params = if r.scftorture.is_empty() {
        "default parameters".to_string()
    } else {
        r.scftorture.clone()
    };
    let outcome = titles
        .first()
        .cloned()
        .or_else(|| r.verdict.clone())
        .unwrap_or_else(|| r.status.clone());
    m.insert(
        "comment".into(),
        text(&format!(
            "scftorture ({params}) for {} s: {outcome}",
            r.duration_s
        ))
        .into(),
    );
    let accel = r.accel.clone().unwrap_or_else(|| r.accel_requested.clone());
    m.insert(
        "environment".into(),
        json!({
            "comment": text(&format!("QEMU guest: {} vCPUs, {} MiB, {accel}", r.vcpus, r.memory_mb)),
            "misc": {"vcpus": r.vcpus, "memory_mb": r.memory_mb, "accel": accel},
        }),
    );
    let findings: Vec<Value> = findings
        .iter()
        .map(|f| json!({"kind": f.kind, "title": f.title, "line": f.first_line}))
        .collect();
    let misc = json!({
        "run_id": r.id,
        "cell": cell,
        "commit": r.commit,
        "verdict": r.verdict,
        "run_status": r.status,
        "titles": titles,
        "findings": findings,
        "reason": r.reason,
        "vm_exit": r.vm_exit,
        "scftorture": r.scftorture,
        "duration_s": r.duration_s,
        "config_hash": r.config_hash,
        "artifact_id": r.artifact_id,
        "finished_at": r.finished_at,
    });
    m.insert("misc".into(), no_nulls(misc));
    Value::Object(m)
}

/// The issue of regression `r` (first seen on `tree`).
pub fn issue(origin: &str, r: &Regression, tree: Option<&str>, public_url: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), issue_id(origin, r.id).into());
    m.insert("version".into(), ISSUE_VERSION.into());
    m.insert("origin".into(), origin.into());
    m.insert("comment".into(), text(&r.title).into());
    if let Some(url) = public_url {
        m.insert(
            "report_url".into(),
            format!("{}/regressions/{}", url.trim_end_matches('/'), r.id).into(),
        );
    }
    let place = match tree {
        Some(t) => format!("{t}/{}", r.branch),
        None => r.branch.clone(),
    };
    m.insert(
        "report_subject".into(),
        text(&format!("[csdci] {} in {place}", r.title)).into(),
    );
    // A night's regression is the kernel's fault: infrastructure failures are
    // never regressions, and a build regression is the code not compiling.
    m.insert(
        "culprit".into(),
        json!({"code": true, "tool": false, "harness": false}),
    );
    let mut misc = no_nulls(serde_json::to_value(r).unwrap_or_default());
    if let Value::Object(o) = &mut misc {
        o.remove("id");
        o.remove("title");
        if let Some(c) = o.remove("culprit") {
            o.insert("culprit_commit".into(), c);
        }
    }
    m.insert("misc".into(), misc);
    Value::Object(m)
}

/// Up to [`EXCERPT_LINES`] lines of the console at `path` from finding `f`'s
/// first line on (lossy UTF-8, at most [`EXCERPT_MAX`] characters): read from
/// its stored byte range ([`csdci_console::excerpt`]), a few KiB whatever the
/// console's size.
fn console_excerpt(path: &Path, f: &StoredFinding) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let lines = match f.bytes() {
        Some(range) => {
            let e = csdci_console::excerpt::around(&mut file, range, EXCERPT_LINES, EXCERPT_LINES)
                .ok()?;
            let mut lines = e.lines;
            lines.extend(e.after);
            lines.truncate(EXCERPT_LINES);
            lines
        }
        None => from_first_line(file, f.first_line)?,
    };
    if lines.is_empty() {
        return None;
    }
    let mut out = String::new();
    for l in &lines {
        out.push_str(l);
        out.push('\n');
        if out.len() > EXCERPT_MAX * 4 {
            break;
        }
    }
    let s = text(&out);
    Some(s.chars().take(EXCERPT_MAX).collect())
}

/// The fallback of [`console_excerpt`] for runs stored before findings had
/// byte positions: up to [`EXCERPT_LINES`] lines from 1-based line `first`
/// on, read line by line.
fn from_first_line(f: std::fs::File, first: u64) -> Option<Vec<String>> {
    // A console is bounded by the guest's run; read at most 64 MiB of it.
    let mut rd = BufReader::new(f.take(64 << 20));
    let mut line = Vec::new();
    let mut out = Vec::new();
    let mut n: u64 = 0;
    loop {
        line.clear();
        if rd.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        n += 1;
        if n < first.max(1) {
            continue;
        }
        let l = line.strip_suffix(b"\n").unwrap_or(&line);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        out.push(String::from_utf8_lossy(l).into_owned());
        if out.len() >= EXCERPT_LINES {
            break;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::nights::TitleCount;

    fn night() -> Night {
        Night {
            id: 7,
            job: "csd-nightly".into(),
            branch: "master".into(),
            tree: "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git".into(),
            head: Some("a".repeat(40)),
            prev_head: None,
            status: "tested".into(),
            reason: None,
            started_at: "2026-12-01T02:00:00.000Z".into(),
            finished_at: Some("2026-12-01T03:00:00+00:00".into()),
        }
    }

    fn cell(status: &str) -> NightCell {
        NightCell {
            night_id: 7,
            cell: "vcpus=4 scftorture=nthreads=4".into(),
            spec: r#"{"vcpus":4}"#.into(),
            status: status.into(),
            runs: 2,
            fails: 1,
            infra: 0,
            titles: vec![TitleCount {
                title: "csd lock timeout".into(),
                runs: 1,
            }],
            run_ids: vec![1, 2],
            build_error: Some("error: expected ';'".into()),
            artifact_id: None,
        }
    }

    fn run(verdict: Option<&str>, status: &str) -> RunRow {
        RunRow {
            id: 3,
            repo: "/linux".into(),
            commit: "a".repeat(40),
            tree_id: None,
            config_hash: Some("cfg".into()),
            artifact_id: Some("art".into()),
            vcpus: 4,
            memory_mb: 2048,
            accel_requested: "auto".into(),
            accel: Some("kvm".into()),
            scftorture: "nthreads=4".into(),
            duration_s: 30,
            build_seconds: Some(100.5),
            build_cached: Some(false),
            boot_seconds: Some(2.0),
            test_seconds: Some(30.0),
            verdict: verdict.map(Into::into),
            title: Some("csd lock timeout".into()),
            findings: None,
            vm_exit: None,
            reason: None,
            console_log: None,
            artifacts: None,
            run_dir: None,
            status: status.into(),
            started_at: "2026-12-01T02:10:00+00:00".into(),
            finished_at: None,
        }
    }

    fn no_null_anywhere(v: &Value) {
        match v {
            Value::Null => panic!("null in KCIDB output"),
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| k.as_str() != "misc")
                .for_each(|(_, v)| no_null_anywhere(v)),
            Value::Array(a) => a.iter().for_each(no_null_anywhere),
            _ => {}
        }
    }

    #[test]
    fn a_night_is_a_checkout_of_its_head() {
        let c = checkout("csdci", &night());
        assert_eq!(c["id"], "csdci:night-7");
        assert_eq!(c["origin"], "csdci");
        assert_eq!(c["git_commit_hash"], "a".repeat(40));
        assert_eq!(c["git_repository_branch"], "master");
        assert_eq!(c["tree_name"], "linux");
        assert_eq!(c["valid"], true);
        assert_eq!(c["start_time"], "2026-12-01T02:00:00.000+00:00");
        assert_eq!(
            c["origin_tests_finish_time"],
            "2026-12-01T03:00:00.000+00:00"
        );
        assert!(
            c["git_repository_url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        no_null_anywhere(&c);
        // A path or git:// tree is no KCIDB repository URL: it goes to misc.
        let mut n = night();
        n.tree = "/srv/git/linux".into();
        n.head = Some("abc".into());
        let c = checkout("csdci", &n);
        assert!(c.get("git_repository_url").is_none());
        assert!(c.get("git_commit_hash").is_none());
        assert_eq!(c["misc"]["tree"], "/srv/git/linux");
        assert_eq!(c["misc"]["head"], "abc");
        assert!(c["misc"].get("reason").is_none());
    }

    #[test]
    fn build_status_follows_the_cell() {
        let runs = [run(Some("clean"), "done")];
        assert_eq!(build_status(&cell("clean"), &runs), Some("PASS"));
        assert_eq!(build_status(&cell("failed"), &runs), Some("PASS"));
        assert_eq!(build_status(&cell("build_failed"), &[]), Some("FAIL"));
        assert_eq!(build_status(&cell("infra"), &[]), Some("ERROR"));
        assert_eq!(build_status(&cell("infra"), &runs), Some("PASS"));
        assert_eq!(build_status(&cell("running"), &[]), None);
        let b = build(
            "csdci",
            "csdci:night-7",
            "csdci:night-7:x",
            &night(),
            &cell("build_failed"),
            &[],
        );
        assert_eq!(b["status"], "FAIL");
        assert_eq!(b["architecture"], "x86_64");
        assert_eq!(b["config_name"], "vcpus=4 scftorture=nthreads=4");
        assert_eq!(b["log_excerpt"], "error: expected ';'");
        assert_eq!(b["misc"]["spec"]["vcpus"], 4);
        assert!(b.get("valid").is_none(), "v5 builds say it with status");
        let b = build(
            "csdci",
            "csdci:night-7",
            "csdci:night-7:x",
            &night(),
            &cell("clean"),
            &runs,
        );
        assert_eq!(b["duration"], 100.5);
        assert!(b.get("log_excerpt").is_none());
        no_null_anywhere(&b);
    }

    #[test]
    fn a_run_is_a_test_with_its_verdict() {
        let st = |v: Option<&str>, s: &str| test_status(&run(v, s));
        assert_eq!(st(Some("clean"), "done"), Some("PASS"));
        assert_eq!(st(Some("failed"), "done"), Some("FAIL"));
        assert_eq!(st(Some("untestable"), "done"), Some("SKIP"));
        assert_eq!(st(Some("infra"), "done"), Some("ERROR"));
        assert_eq!(st(None, "interrupted"), Some("ERROR"));
        assert_eq!(st(None, "running"), None);
        let f = StoredFinding {
            ordinal: 0,
            kind: "csd_lock".into(),
            title: "csd lock timeout".into(),
            first_line: 12,
            last_line: None,
            start_byte: None,
            end_byte: None,
            cpu: None,
            task: None,
            corrupted: false,
            crash_report: false,
        };
        let t = test(
            "csdci",
            "csdci:night-7:x",
            "c",
            &run(Some("failed"), "done"),
            &[f],
            Some(Path::new("/var/lib/csdci/runs/3/console log.txt")),
            Some("line\0 12".into()),
        );
        assert_eq!(t["id"], "csdci:run-3");
        assert_eq!(t["path"], TEST_PATH);
        assert_eq!(t["status"], "FAIL");
        assert_eq!(t["duration"], 32.0);
        assert_eq!(
            t["log_url"],
            "file:///var/lib/csdci/runs/3/console%20log.txt"
        );
        assert_eq!(t["log_excerpt"], "line 12");
        assert_eq!(t["misc"]["titles"], json!(["csd lock timeout"]));
        assert_eq!(t["misc"]["findings"][0]["line"], 12);
        assert_eq!(t["environment"]["misc"]["accel"], "kvm");
        no_null_anywhere(&t);
    }

    #[test]
    fn a_regression_is_an_issue() {
        let r = Regression {
            id: 2,
            job: "csd-nightly".into(),
            branch: "master".into(),
            cell: "c".into(),
            title: "csd lock timeout".into(),
            kind: "test".into(),
            status: "open".into(),
            good: None,
            bad: "b".repeat(40),
            first_night: 7,
            last_seen_night: 7,
            last_bad_head: "b".repeat(40),
            runs_seen: 2,
            clean_nights: 0,
            bisection_id: None,
            culprit: Some("c".repeat(40)),
            detail: None,
            fixed_night: None,
            fixed_head: None,
            fixed_range: None,
            created_at: "x".into(),
            updated_at: "y".into(),
        };
        let i = issue(
            "csdci",
            &r,
            Some("https://example.org/linux.git"),
            Some("https://ci.example.org/"),
        );
        assert_eq!(i["id"], "csdci:regression-2");
        assert_eq!(i["version"], 1);
        assert_eq!(i["comment"], "csd lock timeout");
        assert_eq!(i["report_url"], "https://ci.example.org/regressions/2");
        assert_eq!(
            i["report_subject"],
            "[csdci] csd lock timeout in https://example.org/linux.git/master"
        );
        assert_eq!(i["culprit"]["code"], true);
        assert_eq!(i["misc"]["culprit_commit"], "c".repeat(40));
        assert!(i["misc"].get("good").is_none());
        assert!(issue("csdci", &r, None, None).get("report_url").is_none());
    }

    #[test]
    fn incidents_link_failing_runs_with_the_title_or_broken_builds() {
        let out = |status: &str, runs: Vec<(String, Option<String>, Vec<String>)>| CellOut {
            build_id: format!("csdci:night-1:{status}"),
            status: status.into(),
            titles: vec!["t1".into()],
            runs,
        };
        let f =
            |id: &str, v: &str, t: &str| (id.to_string(), Some(v.to_string()), vec![t.to_string()]);
        let cells = [
            out(
                "failed",
                vec![
                    f("csdci:run-1", "clean", "t1"),
                    f("csdci:run-2", "failed", "t1"),
                    f("csdci:run-3", "failed", "t2"),
                ],
            ),
            out("build_failed", vec![]),
        ];
        let mut r = issue_reg("test", "t1");
        assert_eq!(
            incident_targets(&r, &cells),
            [("test_id", "csdci:run-2".to_string())]
        );
        r.title = "t3".into();
        assert!(incident_targets(&r, &cells).is_empty());
        let b = issue_reg("build", "build error: x");
        assert_eq!(
            incident_targets(&b, &cells),
            [("build_id", "csdci:night-1:build_failed".to_string())]
        );
    }

    fn issue_reg(kind: &str, title: &str) -> Regression {
        Regression {
            branch: "b".into(),
            cell: "c".into(),
            good: None,
            runs_seen: 1,
            ..Regression::sample(1, title, kind)
        }
    }

    #[test]
    fn ids_and_text_fit_the_schema() {
        assert!(valid_origin("csdci"));
        assert!(valid_origin("my_ci2"));
        assert!(!valid_origin("CSDCI"));
        assert!(!valid_origin("my-ci"));
        assert!(!valid_origin(""));
        assert_eq!(
            slug("vcpus=4 scftorture=nthreads=4,x"),
            "vcpus=4_scftorture=nthreads=4_x"
        );
        assert_eq!(slug(""), "cell");
        let long = "é".repeat(EXCERPT_MAX + 5);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_MAX);
        assert_eq!(tree_name("git://h/linux.git/"), Some("linux".into()));
        assert_eq!(tree_name("/srv/git/next"), Some("next".into()));
    }
}

//! Rendering and the action's checks, against a fake dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(2)>";

#[derive(Default)]
struct Fake {
    reruns: AtomicU32,
    /// Runs, bisections and cancels the actions started.
    started: AtomicU32,
    cancels: AtomicU32,
}

fn run_row() -> RunRow {
    RunRow {
        id: 7,
        commit: "0123456789abcdef".into(),
        status: "done".into(),
        verdict: Some("failed".into()),
        title: Some(format!("BUG: {SCRIPT}")),
        started_at: "2025-01-01T00:00:00Z".into(),
    }
}

fn series_row() -> SeriesRow {
    SeriesRow {
        id: 9,
        job: "smp-bot".into(),
        title: format!("smp: {SCRIPT}"),
        version: 2,
        total: 2,
        author: format!("Eve {IMG} <eve@example.org>"),
        status: "done".into(),
        result: Some("regression".into()),
        summary: Some(format!("patch 2/2 introduces a failure {IMG}")),
        ..Default::default()
    }
}

impl Dashboard for Fake {
    fn overview(&self) -> Result<Overview, WebError> {
        Ok(Overview {
            jobs: vec![JobRow {
                job: format!("job{IMG}"),
                branch: "master".into(),
                night_id: 3,
                head: Some("abcdef0123456789".into()),
                status: "done".into(),
                started_at: "2025-01-02".into(),
                cells: vec![CellResult {
                    cell: "vcpus=4".into(),
                    status: "failed".into(),
                    runs: 5,
                    fails: 2,
                    titles: vec![IMG.into()],
                    run_ids: vec![7],
                }],
            }],
            regressions: vec![Regression {
                id: 1,
                job: "nightly".into(),
                title: format!("csd: {IMG}"),
                status: "open".into(),
                bisection_id: Some(4),
                ..Default::default()
            }],
            runs: vec![run_row()],
            bisections: vec![BisectionRow {
                id: 4,
                summary: format!("culprit {SCRIPT}"),
                status: "done".into(),
                ..Default::default()
            }],
            series: vec![series_row()],
        })
    }
    fn series(&self, id: i64) -> Result<SeriesPage, WebError> {
        if id != 9 {
            return Err(WebError::NotFound(format!("no series #{id}")));
        }
        Ok(SeriesPage {
            series: series_row(),
            head_message_id: format!("cover.{IMG}@example.org"),
            base: Some("0123456789abcdef".into()),
            patches: vec![
                SeriesPatch {
                    idx: 1,
                    title: format!("smp: {SCRIPT}"),
                    build: Some("ok".into()),
                    runs: 1,
                    ..Default::default()
                },
                SeriesPatch {
                    idx: 2,
                    title: "smp: break it".into(),
                    build: Some("ok".into()),
                    runs: 2,
                    fails: 2,
                    guilty: true,
                    ..Default::default()
                },
            ],
            guilty: Some(2),
            excerpt: Some(format!("[  1.0] {IMG}")),
            reply: Some(SeriesReply {
                subject: format!("Re: [PATCH 0/2] {SCRIPT}"),
                body: format!("Hi,\n\n{SCRIPT} {IMG}\n"),
                status: "dry_run".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
    fn job(&self, name: &str) -> Result<JobHistory, WebError> {
        if name != "nightly" {
            return Err(WebError::NotFound(format!("no job {name}")));
        }
        Ok(JobHistory {
            job: name.into(),
            nights: vec![NightRow {
                id: 1,
                runs: 4,
                fails: 1,
                status: "done".into(),
                ..Default::default()
            }],
            cancellable: false,
        })
    }
    fn run(&self, id: i64) -> Result<RunPage, WebError> {
        Ok(RunPage {
            id,
            commit: "0123456789abcdef".into(),
            title: Some(SCRIPT.into()),
            findings: vec![Finding {
                ordinal: 0,
                kind: "csd_lock".into(),
                title: IMG.into(),
                first_line: 120,
                last_line: 120,
            }],
            has_console: true,
            ..Default::default()
        })
    }
    fn console(&self, run_id: i64, from: u64, count: u32) -> Result<ConsoleWindow, WebError> {
        let lines = (from..from + count as u64)
            .take_while(|n| *n <= 300)
            .map(|n| ConsoleLine {
                n,
                text: if n == 120 {
                    format!("[  1.0] {SCRIPT} {IMG}")
                } else {
                    format!("line {n}")
                },
                finding: (n == 120).then_some(0),
            })
            .collect();
        Ok(ConsoleWindow {
            run_id,
            from,
            lines,
            total_lines: 300,
            findings: self.run(run_id)?.findings,
        })
    }
    fn download(&self, _: i64, _: Download) -> Result<PathBuf, WebError> {
        Err(WebError::NotFound("no file".into()))
    }
    fn bisection(&self, id: i64) -> Result<BisectionPage, WebError> {
        Ok(BisectionPage {
            id,
            predicate: SCRIPT.into(),
            steps: vec![BisectStep {
                id: 1,
                kind: "run".into(),
                commit: "abc".into(),
                titles: vec![IMG.into()],
                confidence: Some(0.5),
                candidates: vec![
                    Candidate {
                        commit: SCRIPT.into(),
                        p: 0.5,
                    },
                    Candidate {
                        commit: "def".into(),
                        p: 0.2,
                    },
                ],
                ..Default::default()
            }],
            report: Some(BisectReport {
                culprit_subject: Some(SCRIPT.into()),
                revert_check: "confirmed".into(),
                ..Default::default()
            }),
            fix_validations: vec![FixCheck {
                commit: "f1f1f1f1f1f1f1f1".into(),
                runs: 5,
                fails: 0,
                failure_rate_upper_95: 0.45,
                regression_rate: 0.9,
                p_pass_if_unfixed: 1e-5,
                verdict: "fixed".into(),
                finished_at: "2025-01-03T00:00:00Z".into(),
            }],
            cancellable: id == 4,
            ..Default::default()
        })
    }
    fn search(&self, q: &str) -> Result<SearchResults, WebError> {
        Ok(SearchResults {
            query: q.into(),
            runs: vec![run_row()],
            ..Default::default()
        })
    }
    fn pulse(&self) -> Result<Pulse, WebError> {
        Ok(Pulse::default())
    }
    fn rerun_job(&self, name: &str) -> Result<ActionResult, WebError> {
        self.reruns.fetch_add(1, Ordering::SeqCst);
        Ok(ActionResult {
            ok: true,
            message: format!("night of {name} started"),
            url: None,
        })
    }
    fn actions(&self) -> Result<ActionsPage, WebError> {
        Ok(ActionsPage {
            jobs: vec![format!("job{IMG}")],
            running: vec![RunningWork {
                kind: "bisection".into(),
                what: "bisection #4".into(),
                url: Some("/bisections/4".into()),
            }],
            max_guests: 2,
            ..Default::default()
        })
    }
    fn start_run(&self, req: &StartRun) -> Result<ActionResult, WebError> {
        if req.spec.vcpus.trim() == "0" {
            return Err(WebError::BadRequest("--vcpus 0: must be at least 1".into()));
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(ActionResult {
            ok: true,
            message: format!("run of {} started", req.commit),
            url: Some("/".into()),
        })
    }
    fn start_bisection(&self, req: &StartBisection) -> Result<ActionResult, WebError> {
        if req.good.trim().is_empty() {
            return Err(WebError::BadRequest(
                "good: give at least one good revision".into(),
            ));
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(ActionResult {
            ok: true,
            message: "bisection #5 started".into(),
            url: Some("/bisections/5".into()),
        })
    }
    fn cancel_bisection(&self, id: i64) -> Result<ActionResult, WebError> {
        if id != 4 {
            return Err(WebError::BadRequest(format!(
                "bisection #{id} does not run in this csdci serve"
            )));
        }
        self.cancels.fetch_add(1, Ordering::SeqCst);
        Ok(ActionResult {
            ok: true,
            message: "bisection #4 stops".into(),
            url: Some("/bisections/4".into()),
        })
    }
}

fn app(fake: Arc<Fake>) -> Router {
    router(
        fake,
        Options {
            token: Some("s3cret".into()),
            poll: None,
        },
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let r = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = r.status();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (code, String::from_utf8(body.to_vec()).unwrap())
}

async fn post(app: &Router, uri: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut b = Request::post(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    app.clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

fn assert_escaped(page: &str, html: &str) {
    for bad in ["<script>alert", "<img src=x", "\"><img"] {
        assert!(!html.contains(bad), "{page} holds raw {bad:?}:\n{html}");
    }
}

#[tokio::test]
async fn untrusted_text_renders_as_text() {
    let app = app(Arc::default());
    for page in [
        "/",
        "/runs/7",
        "/runs/7/console?from=100",
        "/bisections/4",
        "/series/9",
        "/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
    ] {
        let (code, html) = get(&app, page).await;
        assert_eq!(code, StatusCode::OK, "{page}");
        assert_escaped(page, &html);
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{page}: {html}"
        );
    }
    let (_, console) = get(&app, "/runs/7/console?from=100").await;
    assert!(
        console.contains("id=\"L120\" class=\"line hit\""),
        "{console}"
    );
    assert!(console.contains("href=\"/runs/7/console?from=80&amp;count=500#L120\""));
}

#[tokio::test]
async fn pages_name_no_external_url() {
    let app = app(Arc::default());
    for page in [
        "/",
        "/runs/7",
        "/jobs/nightly",
        "/bisections/4",
        "/series/9",
        "/static/csdci.js",
        "/static/csdci.css",
    ] {
        let (_, body) = get(&app, page).await;
        for ext in ["https://", "http://", "//cdn"] {
            let hits: Vec<_> = body.match_indices(ext).collect();
            // The one allowed: the SVG namespace name in the script.
            assert!(
                hits.iter()
                    .all(|(i, _)| body[*i..].starts_with("http://www.w3.org/2000/svg")),
                "{page} names an external URL"
            );
        }
    }
}

#[tokio::test]
async fn json_is_the_html_data() {
    let app = app(Arc::default());
    let (_, json) = get(&app, "/api/v1/overview").await;
    let o: Overview = serde_json::from_str(&json).unwrap();
    assert_eq!(o, Fake::default().overview().unwrap());
    let (_, html) = get(&app, "/").await;
    assert!(html.contains("href=\"/runs/7\""));
    assert!(html.contains("href=\"/bisections/4\""));
    assert!(html.contains("vcpus=4: 2/5"));
    let (_, json) = get(&app, "/api/v1/runs/7").await;
    let r: RunPage = serde_json::from_str(&json).unwrap();
    assert_eq!(r, Fake::default().run(7).unwrap());
    let (_, json) = get(&app, "/api/v1/runs/7/console?from=118&count=5").await;
    let w: ConsoleWindow = serde_json::from_str(&json).unwrap();
    assert_eq!(w.lines.len(), 5);
    assert_eq!(w.lines[2].finding, Some(0));
    let (_, json) = get(&app, "/api/v1/jobs/nightly").await;
    let h: JobHistory = serde_json::from_str(&json).unwrap();
    assert_eq!(h, Fake::default().job("nightly").unwrap());
    let (code, _) = get(&app, "/api/v1/jobs/other").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = get(&app, "/runs/notanumber").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(html.contains("href=\"/series/9\""));
    let (_, json) = get(&app, "/api/v1/series/9").await;
    let p: SeriesPage = serde_json::from_str(&json).unwrap();
    assert_eq!(p, Fake::default().series(9).unwrap());
    let (_, html) = get(&app, "/series/9").await;
    assert!(html.contains("id=\"patch-2\" class=\"guilty\""), "{html}");
    assert!(html.contains("Guilty: patch 2/2"), "{html}");
    assert!(html.contains("dry run: written, not sent"), "{html}");
    let (code, _) = get(&app, "/series/8").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = get(&app, "/api/v1/series/8").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn action_needs_token_and_same_origin() {
    let fake = Arc::new(Fake::default());
    let app = app(fake.clone());
    let uri = "/api/v1/jobs/nightly/rerun";
    assert_eq!(post(&app, uri, &[]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&app, uri, &[("x-csdci-token", "s3creT")]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, uri, &[("authorization", "Bearer s3cre")]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.reruns.load(Ordering::SeqCst), 0);
    // Cross-site with the right token: refused.
    for h in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        assert_eq!(
            post(
                &app,
                uri,
                &[h, ("host", "127.0.0.1:8080"), ("x-csdci-token", "s3cret")]
            )
            .await,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(fake.reruns.load(Ordering::SeqCst), 0);
    assert_eq!(
        post(
            &app,
            uri,
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
                ("authorization", "Bearer s3cret")
            ]
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(fake.reruns.load(Ordering::SeqCst), 1);
    // A GET does not run it.
    let (code, _) = get(&app, uri).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    // No token configured: refused even with one.
    let off = router(fake.clone(), Options::default());
    assert_eq!(
        post(&off, uri, &[("x-csdci-token", "")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(fake.reruns.load(Ordering::SeqCst), 1);
}

#[test]
fn constant_time_compare() {
    use crate::security::constant_time_eq as eq;
    assert!(eq(b"abc", b"abc"));
    assert!(!eq(b"abc", b"abd"));
    assert!(!eq(b"abc", b"ab"));
    assert!(!eq(b"", b"a"));
    assert!(eq(b"", b""));
}

/// A POST with a JSON body; the status and the parsed answer.
async fn post_json(
    app: &Router,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut b = Request::post(uri).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = app
        .clone()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let code = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

const SAME: &[(&str, &str)] = &[
    ("origin", "http://127.0.0.1:8080"),
    ("host", "127.0.0.1:8080"),
    ("sec-fetch-site", "same-origin"),
    ("x-csdci-token", "s3cret"),
];

const BISECT: &str =
    r#"{"good":"v1","bad":"v2","tree":"/src/repo","command":"./test.sh","spec":{}}"#;

#[tokio::test]
async fn start_and_cancel_need_token_and_same_origin() {
    let fake = Arc::new(Fake::default());
    let app = app(fake.clone());
    for (uri, body) in [
        ("/api/v1/bisections", BISECT),
        ("/api/v1/runs", r#"{"commit":"HEAD","tree":"/src/linux"}"#),
        ("/api/v1/bisections/4/cancel", ""),
        ("/api/v1/jobs/nightly/cancel", ""),
    ] {
        // No token, a wrong one: 401; cross-site with the token: 403.
        let (code, v) = post_json(&app, uri, &[], body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{uri}: {v}");
        assert_eq!(v["ok"], false, "{uri}: {v}");
        let (code, _) = post_json(&app, uri, &[("x-csdci-token", "s3creT")], body).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{uri}");
        for h in [
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let (code, v) = post_json(
                &app,
                uri,
                &[h, ("host", "127.0.0.1:8080"), ("x-csdci-token", "s3cret")],
                body,
            )
            .await;
            assert_eq!(code, StatusCode::FORBIDDEN, "{uri} {h:?}: {v}");
        }
        // No token configured: every action is refused.
        let off = router(fake.clone(), Options::default());
        let (code, _) = post_json(&off, uri, &[("x-csdci-token", "s3cret")], body).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{uri}");
        // A GET starts nothing either.
        let (code, _) = get(&app, uri).await;
        assert!(
            code == StatusCode::METHOD_NOT_ALLOWED || code == StatusCode::OK,
            "{uri}: {code}"
        );
    }
    assert_eq!(fake.started.load(Ordering::SeqCst), 0);
    assert_eq!(fake.cancels.load(Ordering::SeqCst), 0);
    // Refused before the body is read: a malformed body is still a 401.
    let (code, _) = post_json(&app, "/api/v1/bisections", &[], "{not json").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);

    // Same origin with the token: started, with the page of what started.
    let (code, v) = post_json(&app, "/api/v1/bisections", SAME, BISECT).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["url"], "/bisections/5");
    let (code, v) = post_json(
        &app,
        "/api/v1/runs",
        SAME,
        r#"{"commit":"HEAD","tree":"/src/linux","spec":{"vcpus":"2"}}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(fake.started.load(Ordering::SeqCst), 2);
    let (code, v) = post_json(&app, "/api/v1/bisections/4/cancel", SAME, "").await;
    assert_eq!(code, StatusCode::ACCEPTED, "{v}");
    assert_eq!(fake.cancels.load(Ordering::SeqCst), 1);
    // Nothing to cancel: 400 with why; a bad id: 404; the default for a
    // night that does not run here: 400.
    let (code, v) = post_json(&app, "/api/v1/bisections/8/cancel", SAME, "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("does not run"),
        "{v}"
    );
    let (code, _) = post_json(&app, "/api/v1/bisections/x/cancel", SAME, "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, v) = post_json(&app, "/api/v1/jobs/nightly/cancel", SAME, "").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(fake.cancels.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalid_fields_are_a_400_with_the_message_never_a_500() {
    let fake = Arc::new(Fake::default());
    let app = app(fake.clone());
    let cases = [
        (
            "/api/v1/runs",
            r#"{"commit":"HEAD","tree":"/l","spec":{"vcpus":"0"}}"#,
            "--vcpus 0: must be at least 1",
        ),
        (
            "/api/v1/bisections",
            r#"{"good":"","bad":"v2","tree":"/l"}"#,
            "good: give at least one good revision",
        ),
        (
            "/api/v1/bisections",
            r#"{"good":"v1","colour":"red"}"#,
            "unknown field `colour`",
        ),
        (
            "/api/v1/runs",
            r#"{"commit":"HEAD","spec":{"vcpu":"2"}}"#,
            "unknown field `vcpu`",
        ),
        ("/api/v1/runs", r#"{"commit":7}"#, "invalid type"),
        ("/api/v1/bisections", "{not json", "the request"),
    ];
    for (uri, body, want) in cases {
        let (code, v) = post_json(&app, uri, SAME, body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
        assert_eq!(v["ok"], false);
        let m = v["message"].as_str().unwrap_or_default();
        assert!(m.contains(want), "{uri} {body}: {m:?} lacks {want:?}");
    }
    let big = format!(r#"{{"good":"{}"}}"#, "a".repeat(crate::actions::MAX_BODY));
    let (code, _) = post_json(&app, "/api/v1/bisections", SAME, &big).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(fake.started.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn actions_page_forms_and_fix_validation() {
    let fake = Arc::new(Fake::default());
    let app = app(fake.clone());
    let (code, html) = get(&app, "/actions").await;
    assert_eq!(code, StatusCode::OK);
    assert_escaped("/actions", &html);
    for want in [
        "id=\"start-bisection\"",
        "id=\"start-run\"",
        "name=\"vcpus\"",
        "name=\"command\"",
        "href=\"/bisections/4\"",
        "at most 2 guests",
    ] {
        assert!(html.contains(want), "/actions lacks {want}");
    }
    assert!(!html.contains("actions-off"), "the token is configured");
    let (_, json) = get(&app, "/api/v1/actions").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["enabled"], true);
    assert_eq!(v["running"][0]["what"], "bisection #4");
    let off = router(fake.clone(), Options::default());
    let (_, html) = get(&off, "/actions").await;
    assert!(html.contains("actions-off"));

    // The bisection page: the fix beside the revert check, its table, and
    // the cancel button only while it runs here.
    let (_, html) = get(&app, "/bisections/4").await;
    assert!(html.contains("revert check"));
    assert!(html.contains("id=\"fix-validations\""));
    assert!(html.contains("f1f1f1f1f1f1"));
    assert!(html.contains("FIXED: 0 failures in 5 runs"), "{html}");
    assert!(html.contains("id=\"cancel\""));
    let (_, html) = get(&app, "/bisections/3").await;
    assert!(!html.contains("id=\"cancel\""));
    let (_, json) = get(&app, "/api/v1/bisections/4").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["fix_validations"][0]["verdict"], "fixed");
    assert_eq!(v["fix_validations"][0]["runs"], 5);
    assert_eq!(v["cancellable"], true);
}

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
                ..Default::default()
            }),
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

//! csdci's web dashboard: the routes (axum), the pages (askama templates,
//! auto-escaped) and the live-update stream, over a [`Dashboard`] that the
//! orchestrator implements on its store. This crate knows nothing of the
//! store: it renders the view models of [`model`].
//!
//! Every page at `/…` has its data at `/api/v1/…` as JSON. Static assets are
//! compiled in; no page names an external URL. The actions (re-running a
//! job's night, starting a run or a bisection, cancelling a bisection or a
//! night; see [`actions`]) are POSTs that need the token and a same-origin
//! request.

mod actions;
pub mod model;
mod pages;
mod security;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub use model::*;

/// Why a page could not be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebError {
    /// No such run, job, bisection … (404).
    NotFound(String),
    /// A malformed request (400).
    BadRequest(String),
    /// The store failed (500).
    Internal(String),
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::NotFound(m) | WebError::BadRequest(m) | WebError::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for WebError {}

/// What the dashboard shows, one method per page. Methods block (they read
/// the store); the server calls them off its event loop.
pub trait Dashboard: Send + Sync + 'static {
    fn overview(&self) -> Result<Overview, WebError>;
    fn job(&self, name: &str) -> Result<JobHistory, WebError>;
    fn run(&self, id: i64) -> Result<RunPage, WebError>;
    /// Lines `from_line ..` (1-based), at most `count`, of a run's console.
    fn console(&self, run_id: i64, from_line: u64, count: u32) -> Result<ConsoleWindow, WebError>;
    /// The 1-based line of a run's console holding byte `byte` (a finding's
    /// stored offset), found without reading the console whole.
    fn console_line_at(&self, run_id: i64, byte: u64) -> Result<u64, WebError> {
        let _ = byte;
        Err(WebError::NotFound(format!(
            "run #{run_id}: no byte positions"
        )))
    }
    /// The file behind a download of a run.
    fn download(&self, run_id: i64, what: Download) -> Result<PathBuf, WebError>;
    fn bisection(&self, id: i64) -> Result<BisectionPage, WebError>;
    fn search(&self, q: &str) -> Result<SearchResults, WebError>;
    /// A patch-bot series: its patches, builds, runs, guilty patch, reply.
    fn series(&self, id: i64) -> Result<SeriesPage, WebError> {
        Err(WebError::NotFound(format!("no series #{id}")))
    }
    /// A cheap summary that changes whenever a run or a bisection step is
    /// added (the live-update stream polls it).
    fn pulse(&self) -> Result<Pulse, WebError>;
    /// Re-runs a job's night now (the caller checked the token).
    fn rerun_job(&self, name: &str) -> Result<ActionResult, WebError>;
    /// What the actions page offers and what runs now (`enabled` is set by
    /// the server).
    fn actions(&self) -> Result<ActionsPage, WebError> {
        Ok(ActionsPage::default())
    }
    /// Starts a run (the caller checked the token); an invalid field is a
    /// [`WebError::BadRequest`] naming it.
    fn start_run(&self, req: &StartRun) -> Result<ActionResult, WebError> {
        let _ = req;
        Err(WebError::BadRequest(
            "this dashboard cannot start runs".into(),
        ))
    }
    /// Starts (or resumes the unfinished same) bisection (the caller checked
    /// the token); an invalid field is a [`WebError::BadRequest`] naming it.
    fn start_bisection(&self, req: &StartBisection) -> Result<ActionResult, WebError> {
        let _ = req;
        Err(WebError::BadRequest(
            "this dashboard cannot start bisections".into(),
        ))
    }
    /// Stops bisection `id` running in this server, leaving it to resume.
    fn cancel_bisection(&self, id: i64) -> Result<ActionResult, WebError> {
        Err(WebError::BadRequest(format!(
            "bisection #{id} does not run in this server"
        )))
    }
    /// Stops the running night of job `name`, leaving it to resume.
    fn cancel_night(&self, name: &str) -> Result<ActionResult, WebError> {
        Err(WebError::BadRequest(format!(
            "no night of {name} runs in this server"
        )))
    }
    /// A run's live console: its last `tail` lines, findings so far, the
    /// bisection it belongs to.
    fn live(&self, run_id: i64, tail: u32) -> Result<LivePage, WebError> {
        let _ = tail;
        Err(WebError::NotFound(format!(
            "run #{run_id} has no live console"
        )))
    }
    /// The stream of a run's new console lines from byte `offset` (the end
    /// of the last complete line before it; `u64::MAX`: the current end).
    fn live_stream(&self, run_id: i64, offset: u64) -> Result<Box<dyn ConsoleStream>, WebError> {
        let _ = offset;
        Err(WebError::NotFound(format!(
            "run #{run_id} has no live console"
        )))
    }
}

/// A live console being followed: each call reads what the guest wrote
/// since the last one (bounded), with the findings it brought.
pub trait ConsoleStream: Send + 'static {
    fn next_chunk(&mut self) -> Result<LiveChunk, WebError>;
}

/// Server options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The token actions need; no token: every action is refused.
    pub token: Option<String>,
    /// How often the live-update stream polls [`Dashboard::pulse`].
    pub poll: Option<Duration>,
}

/// Console lines one window shows at most.
pub const MAX_WINDOW: u32 = 2000;
/// Console lines a window shows by default.
pub const DEFAULT_WINDOW: u32 = 500;
/// Console lines the live page opens with.
pub const LIVE_TAIL: u32 = 200;

#[derive(Clone)]
struct App {
    dash: Arc<dyn Dashboard>,
    token: Option<Arc<str>>,
    poll: Duration,
    stop: Arc<AtomicBool>,
}

/// The dashboard's routes.
pub fn router(dash: Arc<dyn Dashboard>, opts: Options) -> Router {
    router_with_stop(dash, opts, Arc::new(AtomicBool::new(false)))
}

fn router_with_stop(dash: Arc<dyn Dashboard>, opts: Options, stop: Arc<AtomicBool>) -> Router {
    let app = App {
        dash,
        token: opts.token.map(Arc::from),
        poll: opts.poll.unwrap_or(Duration::from_secs(1)),
        stop,
    };
    Router::new()
        .route("/", get(overview))
        .route("/api/v1/overview", get(overview_json))
        .route("/jobs/{name}", get(job))
        .route("/api/v1/jobs/{name}", get(job_json))
        .route("/api/v1/jobs/{name}/rerun", post(rerun))
        .route("/api/v1/jobs/{name}/cancel", post(actions::cancel_night))
        .route("/actions", get(actions::page))
        .route("/api/v1/actions", get(actions::page_json))
        .route("/api/v1/runs", post(actions::start_run))
        .route("/api/v1/bisections", post(actions::start_bisection))
        .route(
            "/api/v1/bisections/{id}/cancel",
            post(actions::cancel_bisection),
        )
        .route("/runs/{id}", get(run))
        .route("/api/v1/runs/{id}", get(run_json))
        .route("/runs/{id}/console", get(console))
        .route("/api/v1/runs/{id}/console", get(console_json))
        .route("/runs/{id}/live", get(live))
        .route("/api/v1/runs/{id}/live", get(live_json))
        .route("/api/v1/runs/{id}/live/events", get(live_events))
        .route("/runs/{id}/console.log", get(raw_console))
        .route("/runs/{id}/config", get(raw_config))
        .route("/runs/{id}/qemu-cmdline", get(raw_qemu))
        .route("/bisections/{id}", get(bisection))
        .route("/api/v1/bisections/{id}", get(bisection_json))
        .route("/series/{id}", get(series))
        .route("/api/v1/series/{id}", get(series_json))
        .route("/search", get(search))
        .route("/api/v1/search", get(search_json))
        .route("/api/v1/events", get(events))
        .route("/static/csdci.css", get(css))
        .route("/static/csdci.js", get(js))
        .fallback(not_found)
        .with_state(app)
}

/// Serves the dashboard on `listener` until `stop` is set: blocks, running
/// its own tokio runtime in the calling thread.
pub fn serve(
    listener: std::net::TcpListener,
    dash: Arc<dyn Dashboard>,
    opts: Options,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = router_with_stop(dash, opts, stop.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
    })?;
    rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// Binds `addr` (a plain std listener: the caller sees a bind error before it
/// starts the server thread).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
}

/// Runs a blocking dashboard call off the event loop.
async fn call<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn Dashboard) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let dash = app.dash.clone();
    tokio::task::spawn_blocking(move || f(&*dash))
        .await
        .unwrap_or_else(|e| Err(WebError::Internal(format!("dashboard call failed: {e}"))))
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let code = match &self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (code, pages::error_page(code, &self.to_string())).into_response()
    }
}

/// A JSON error body for `/api/v1/…`.
pub(crate) struct JsonError(WebError);

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let code = match &self.0 {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            code,
            axum::Json(serde_json::json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

type Page = Result<pages::Html, WebError>;
type Api<T> = Result<axum::Json<T>, JsonError>;

fn api<T>(r: Result<T, WebError>) -> Api<T> {
    r.map(axum::Json).map_err(JsonError)
}

fn parse_id(s: &str) -> Result<i64, WebError> {
    s.parse()
        .map_err(|_| WebError::NotFound(format!("no such id: {s}")))
}

async fn overview(State(app): State<App>) -> Page {
    Ok(pages::overview(&call(&app, |d| d.overview()).await?))
}

async fn overview_json(State(app): State<App>) -> Api<Overview> {
    api(call(&app, |d| d.overview()).await)
}

async fn job(State(app): State<App>, Path(name): Path<String>) -> Page {
    Ok(pages::job(&call(&app, move |d| d.job(&name)).await?))
}

async fn job_json(State(app): State<App>, Path(name): Path<String>) -> Api<JobHistory> {
    api(call(&app, move |d| d.job(&name)).await)
}

async fn run(State(app): State<App>, Path(id): Path<String>) -> Page {
    let id = parse_id(&id)?;
    Ok(pages::run(&call(&app, move |d| d.run(id)).await?))
}

async fn run_json(State(app): State<App>, Path(id): Path<String>) -> Api<RunPage> {
    let id = parse_id(&id).map_err(JsonError)?;
    api(call(&app, move |d| d.run(id)).await)
}

#[derive(Debug, Deserialize)]
struct WindowQuery {
    from: Option<u64>,
    count: Option<u32>,
    /// A byte offset in the console: the window opens at its line.
    byte: Option<u64>,
}

fn window(q: &WindowQuery) -> (u64, u32) {
    (
        q.from.unwrap_or(1).max(1),
        q.count.unwrap_or(DEFAULT_WINDOW).clamp(1, MAX_WINDOW),
    )
}

async fn console(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let (from, count) = window(&q);
    if let Some(byte) = q.byte {
        // The page of that line, scrolled to it.
        let line = call(&app, move |d| d.console_line_at(id, byte)).await?;
        let to = format!(
            "/runs/{id}/console?from={}&count={count}#L{line}",
            pages::window_start(line)
        );
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    }
    let w = call(&app, move |d| d.console(id, from, count)).await?;
    Ok(pages::console(&w, count).into_response())
}

async fn console_json(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Api<ConsoleWindow> {
    let id = parse_id(&id).map_err(JsonError)?;
    let (mut from, count) = window(&q);
    if let Some(byte) = q.byte {
        from = call(&app, move |d| d.console_line_at(id, byte))
            .await
            .map_err(JsonError)?;
    }
    api(call(&app, move |d| d.console(id, from, count)).await)
}

async fn live(State(app): State<App>, Path(id): Path<String>) -> Page {
    let id = parse_id(&id)?;
    Ok(pages::live(
        &call(&app, move |d| d.live(id, LIVE_TAIL)).await?,
    ))
}

async fn live_json(State(app): State<App>, Path(id): Path<String>) -> Api<LivePage> {
    let id = parse_id(&id).map_err(JsonError)?;
    api(call(&app, move |d| d.live(id, LIVE_TAIL)).await)
}

#[derive(Debug, Deserialize)]
struct LiveQuery {
    offset: Option<u64>,
}

/// How often a live console is read when nothing was waiting.
const LIVE_POLL: Duration = Duration::from_millis(300);

/// `GET /api/v1/runs/ID/live/events?offset=N`: server-sent events, a
/// `console` event (JSON [`LiveChunk`], its id the byte offset reached) each
/// time the guest wrote lines or the run's state changed, `end` once the run
/// is over and its console read. A reconnecting browser's `Last-Event-ID`
/// resumes where it stopped; no offset: from the console's current end.
async fn live_events(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Response, JsonError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let id = parse_id(&id).map_err(JsonError)?;
    let offset = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(q.offset)
        .unwrap_or(u64::MAX);
    let stream = call(&app, move |d| d.live_stream(id, offset))
        .await
        .map_err(JsonError)?;
    let poll = app.poll.min(LIVE_POLL);
    // (app, the stream (none: ended), the last status sent, sleep first)
    type Live = (App, Option<Box<dyn ConsoleStream>>, Option<String>, bool);
    let init: Live = (app, Some(stream), None, false);
    let events =
        futures_util::stream::unfold(init, move |(app, s, mut status, mut wait)| async move {
            let mut s = s?;
            loop {
                if app.stop.load(Ordering::Relaxed) {
                    return None;
                }
                if wait {
                    tokio::time::sleep(poll).await;
                }
                let (back, got) = tokio::task::spawn_blocking(move || {
                    let r = s.next_chunk();
                    (s, r)
                })
                .await
                .ok()?;
                s = back;
                let chunk = match got {
                    Ok(c) => c,
                    Err(e) => {
                        let ev = Event::default().event("error").data(e.to_string());
                        return Some((
                            Ok::<_, std::convert::Infallible>(ev),
                            (app, None, status, false),
                        ));
                    }
                };
                wait = !chunk.more;
                let changed = status.is_none()
                    || !chunk.lines.is_empty()
                    || !chunk.marks.is_empty()
                    || chunk.bisection.is_some()
                    || chunk.done
                    || status.as_deref() != Some(chunk.status.as_str());
                if changed {
                    status = Some(chunk.status.clone());
                    let data = serde_json::to_string(&chunk).unwrap_or_else(|_| "{}".into());
                    let ev = Event::default()
                        .event(if chunk.done { "end" } else { "console" })
                        .id(chunk.offset.to_string())
                        .data(data);
                    let next = (!chunk.done).then_some(s);
                    return Some((Ok(ev), (app, next, status, wait)));
                }
            }
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn raw(app: App, id: String, what: Download) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    let path = call(&app, move |d| d.download(id, what)).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| WebError::NotFound(format!("cannot open the file: {e}")))?;
    let name = match what {
        Download::Console => format!("run-{id}-console.log"),
        Download::Config => format!("run-{id}.config"),
        Download::QemuCmdline => format!("run-{id}-qemu-cmdline.txt"),
    };
    let body = axum::body::Body::from_stream(pages::file_stream(file));
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("inline; filename=\"{name}\""))
            .unwrap_or(HeaderValue::from_static("inline")),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

async fn raw_console(State(app): State<App>, Path(id): Path<String>) -> Result<Response, WebError> {
    raw(app, id, Download::Console).await
}

async fn raw_config(State(app): State<App>, Path(id): Path<String>) -> Result<Response, WebError> {
    raw(app, id, Download::Config).await
}

async fn raw_qemu(State(app): State<App>, Path(id): Path<String>) -> Result<Response, WebError> {
    raw(app, id, Download::QemuCmdline).await
}

async fn bisection(State(app): State<App>, Path(id): Path<String>) -> Page {
    let id = parse_id(&id)?;
    Ok(pages::bisection(
        &call(&app, move |d| d.bisection(id)).await?,
    ))
}

async fn bisection_json(State(app): State<App>, Path(id): Path<String>) -> Api<BisectionPage> {
    let id = parse_id(&id).map_err(JsonError)?;
    api(call(&app, move |d| d.bisection(id)).await)
}

async fn series(State(app): State<App>, Path(id): Path<String>) -> Page {
    let id = parse_id(&id)?;
    Ok(pages::series(&call(&app, move |d| d.series(id)).await?))
}

async fn series_json(State(app): State<App>, Path(id): Path<String>) -> Api<SeriesPage> {
    let id = parse_id(&id).map_err(JsonError)?;
    api(call(&app, move |d| d.series(id)).await)
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// Longest search query.
const MAX_QUERY: usize = 200;

fn query(q: SearchQuery) -> String {
    q.q.unwrap_or_default().chars().take(MAX_QUERY).collect()
}

async fn search(State(app): State<App>, Query(q): Query<SearchQuery>) -> Page {
    let q = query(q);
    Ok(pages::search(&call(&app, move |d| d.search(&q)).await?))
}

async fn search_json(State(app): State<App>, Query(q): Query<SearchQuery>) -> Api<SearchResults> {
    let q = query(q);
    api(call(&app, move |d| d.search(&q)).await)
}

/// `POST /api/v1/jobs/NAME/rerun`: refused (403) cross-site or with no token
/// configured, (401) without the right token.
async fn rerun(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<ActionResult>, Response> {
    security::authorize(&headers, app.token.as_deref()).map_err(|(code, msg)| {
        (
            code,
            axum::Json(ActionResult {
                ok: false,
                message: msg.to_string(),
                url: None,
            }),
        )
            .into_response()
    })?;
    call(&app, move |d| d.rerun_job(&name))
        .await
        .map(axum::Json)
        .map_err(|e| JsonError(e).into_response())
}

/// One message of the live-update stream.
#[derive(Debug, Serialize)]
struct Change {
    pulse: Pulse,
}

/// `GET /api/v1/events`: server-sent events; a `change` event each time the
/// pulse changes (and once at the start), a comment every 15 s otherwise.
async fn events(State(app): State<App>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures_util::stream::unfold((app, None::<Pulse>), |(app, last)| async move {
        loop {
            if app.stop.load(Ordering::Relaxed) {
                return None;
            }
            if last.is_some() {
                tokio::time::sleep(app.poll).await;
            }
            match call(&app, |d| d.pulse()).await {
                Ok(p) if Some(p) != last => {
                    let data =
                        serde_json::to_string(&Change { pulse: p }).unwrap_or_else(|_| "{}".into());
                    let ev = Event::default().event("change").data(data);
                    return Some((Ok::<_, std::convert::Infallible>(ev), (app, Some(p))));
                }
                Ok(_) => {}
                Err(e) => {
                    let ev = Event::default().event("error").data(e.to_string());
                    return Some((Ok(ev), (app, last)));
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../static/csdci.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../static/csdci.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> WebError {
    WebError::NotFound("no such page".into())
}

#[cfg(test)]
mod tests;

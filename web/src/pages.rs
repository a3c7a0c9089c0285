//! The HTML pages: one askama template per page (auto-escaped: every `{{ }}`
//! is HTML-escaped), served with a Content-Security-Policy that allows only
//! csdci's own scripts and styles.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::*;

/// A rendered page.
pub struct Html(pub String);

/// What every page is sent with: only this server's scripts, styles and
/// images; no framing; no sniffing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        r
    }
}

fn render(t: &impl Template) -> Html {
    Html(
        t.render()
            .unwrap_or_else(|e| format!("<!doctype html><p>template error: {e}</p>")),
    )
}

/// Console lines shown before a finding when jumping to it.
const CONTEXT: u64 = 40;

fn window_start(line: u64) -> u64 {
    line.saturating_sub(CONTEXT).max(1)
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewTpl<'a> {
    o: &'a Overview,
}

pub fn overview(o: &Overview) -> Html {
    render(&OverviewTpl { o })
}

struct Bar {
    night: i64,
    runs: u32,
    fails: u32,
    x: u32,
    runs_y: u32,
    runs_h: u32,
    fails_y: u32,
    fails_h: u32,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobTpl<'a> {
    h: &'a JobHistory,
    bars: Vec<Bar>,
    chart_width: u32,
}

/// The history chart: one bar pair (runs, failing runs) per night, oldest
/// on the left, scaled to the night with the most runs.
fn bars(h: &JobHistory) -> Vec<Bar> {
    let max = h.nights.iter().map(|n| n.runs).max().unwrap_or(0).max(1);
    let scale = |v: u32| v * 100 / max;
    h.nights
        .iter()
        .rev()
        .enumerate()
        .map(|(i, n)| {
            let (rh, fh) = (scale(n.runs), scale(n.fails.min(n.runs)));
            Bar {
                night: n.id,
                runs: n.runs,
                fails: n.fails,
                x: 4 + 10 * i as u32,
                runs_y: 105 - rh,
                runs_h: rh,
                fails_y: 105 - fh,
                fails_h: fh,
            }
        })
        .collect()
}

pub fn job(h: &JobHistory) -> Html {
    let bars = bars(h);
    let chart_width = (8 + 10 * bars.len() as u32).max(200);
    render(&JobTpl {
        h,
        bars,
        chart_width,
    })
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunTpl<'a> {
    r: &'a RunPage,
}

impl RunTpl<'_> {
    fn window_start(&self, line: &u64) -> u64 {
        window_start(*line)
    }
}

pub fn run(r: &RunPage) -> Html {
    render(&RunTpl { r })
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsoleTpl<'a> {
    w: &'a ConsoleWindow,
    count: u32,
}

impl ConsoleTpl<'_> {
    fn window_start(&self, line: &u64) -> u64 {
        window_start(*line)
    }

    fn last(&self) -> u64 {
        self.w.lines.last().map_or(self.w.from, |l| l.n)
    }

    fn prev(&self) -> Option<u64> {
        (self.w.from > 1).then(|| self.w.from.saturating_sub(self.count as u64).max(1))
    }

    fn next(&self) -> Option<u64> {
        let last = self.w.lines.last()?.n;
        (last < self.w.total_lines).then_some(last + 1)
    }
}

pub fn console(w: &ConsoleWindow, count: u32) -> Html {
    render(&ConsoleTpl { w, count })
}

#[derive(Template)]
#[template(path = "bisection.html")]
struct BisectionTpl<'a> {
    b: &'a BisectionPage,
}

pub fn bisection(b: &BisectionPage) -> Html {
    render(&BisectionTpl { b })
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchTpl<'a> {
    s: &'a SearchResults,
}

pub fn search(s: &SearchResults) -> Html {
    render(&SearchTpl { s })
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTpl<'a> {
    code: String,
    message: &'a str,
}

pub fn error_page(code: StatusCode, message: &str) -> Html {
    render(&ErrorTpl {
        code: code.to_string(),
        message,
    })
}

/// A file as a stream of 64 KiB chunks (a download never sits in memory
/// whole).
pub fn file_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[derive(Template)]
#[template(path = "live.html")]
struct LiveTpl<'a> {
    l: &'a LivePage,
}

pub fn live(l: &LivePage) -> Html {
    render(&LiveTpl { l })
}

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

/// The first line of the window that shows line `line` with context.
pub(crate) fn window_start(line: u64) -> u64 {
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

    /// Extra classes of a line of a finding: `hit-first` on a multi-line
    /// finding's first line, `hit-last` on its last (every line of it is a
    /// `hit`; the ends are marked).
    fn edges(&self, l: &ConsoleLine) -> &'static str {
        let Some(f) = l
            .finding
            .and_then(|o| self.w.findings.iter().find(|f| f.ordinal == o))
        else {
            return "";
        };
        if f.last_line <= f.first_line {
            // One line: nothing to mark.
            ""
        } else if l.n == f.first_line {
            " hit-first"
        } else if l.n == f.last_line {
            " hit-last"
        } else {
            ""
        }
    }

    /// `line N` or `lines N–M` of a finding.
    fn span(&self, f: &Finding) -> String {
        if f.last_line > f.first_line {
            format!("lines {}–{}", f.first_line, f.last_line)
        } else {
            format!("line {}", f.first_line)
        }
    }
}

pub fn console(w: &ConsoleWindow, count: u32) -> Html {
    render(&ConsoleTpl { w, count })
}

#[derive(Template)]
#[template(path = "bisection.html")]
struct BisectionTpl<'a> {
    b: &'a BisectionPage,
    heat: Heatmap,
}

pub fn bisection(b: &BisectionPage) -> Html {
    render(&BisectionTpl {
        b,
        heat: heatmap(b),
    })
}

/// The posterior over the commits after each step, as an SVG heatmap: one
/// column per step that journalled a posterior, one row per commit that was
/// ever among the leading candidates (the most likely at their best first),
/// each cell as dark as the commit's probability after that step.
struct Heatmap {
    width: u32,
    height: u32,
    rows: Vec<HeatRow>,
    cells: Vec<HeatCell>,
    /// Step ids under some columns (every few).
    ticks: Vec<(u32, i64)>,
}

struct HeatRow {
    y: u32,
    commit: String,
}

struct HeatCell {
    x: u32,
    y: u32,
    w: u32,
    /// Fill opacity, 0.03–1.
    opacity: String,
    title: String,
}

/// Rows of the heatmap at most.
const HEAT_ROWS: usize = 12;
const HEAT_LABEL: u32 = 100;
const HEAT_ROW: u32 = 14;

fn heatmap(b: &BisectionPage) -> Heatmap {
    let cols: Vec<&BisectStep> = b
        .steps
        .iter()
        .filter(|s| !s.candidates.is_empty())
        .collect();
    let mut best: Vec<(String, f64)> = Vec::new();
    for s in &cols {
        for c in &s.candidates {
            match best.iter_mut().find(|(sha, _)| *sha == c.commit) {
                Some((_, p)) => *p = p.max(c.p),
                None => best.push((c.commit.clone(), c.p)),
            }
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    best.truncate(HEAT_ROWS);
    let w = if cols.is_empty() {
        1
    } else {
        (560 / cols.len() as u32).clamp(2, 24)
    };
    let rows: Vec<HeatRow> = best
        .iter()
        .enumerate()
        .map(|(i, (sha, _))| HeatRow {
            y: 4 + HEAT_ROW * i as u32,
            commit: sha.chars().take(12).collect(),
        })
        .collect();
    let mut cells = Vec::new();
    for (i, s) in cols.iter().enumerate() {
        let x = HEAT_LABEL + w * i as u32;
        for c in &s.candidates {
            if let Some(r) = best.iter().position(|(sha, _)| *sha == c.commit) {
                let p = c.p.clamp(0.0, 1.0);
                cells.push(HeatCell {
                    x,
                    y: 4 + HEAT_ROW * r as u32,
                    w: w.saturating_sub(1).max(1),
                    opacity: format!("{:.3}", p.max(0.03)),
                    title: format!(
                        "step {}: {} {:.1} %",
                        s.id,
                        c.commit.chars().take(12).collect::<String>(),
                        p * 100.0
                    ),
                });
            }
        }
    }
    let every = (40 / w.max(1)).max(1) as usize;
    let ticks = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, s)| (HEAT_LABEL + w * i as u32, s.id))
        .collect();
    Heatmap {
        width: (HEAT_LABEL + w * cols.len() as u32 + 10).max(300),
        height: 4 + HEAT_ROW * rows.len() as u32 + 16,
        rows,
        cells,
        ticks,
    }
}

#[derive(Template)]
#[template(path = "series.html")]
struct SeriesTpl<'a> {
    p: &'a SeriesPage,
}

pub fn series(p: &SeriesPage) -> Html {
    render(&SeriesTpl { p })
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

#[derive(Template)]
#[template(path = "actions.html")]
struct ActionsTpl<'a> {
    a: &'a ActionsPage,
}

pub fn actions(a: &ActionsPage) -> Html {
    render(&ActionsTpl { a })
}

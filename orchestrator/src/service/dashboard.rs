//! The web dashboard's data: [`StoreDashboard`] implements
//! [`csdci_web::Dashboard`] on the store of a data directory. Each call opens
//! the store read-only (a SQLite connection is not `Sync`; opening is cheap),
//! reads what one page shows and turns it into the web crate's view models.
//!
//! Consoles are read in windows: a sparse line index (the byte offset of
//! every [`STRIDE`]th line) is built once per console file and cached, and a
//! window seeks to the nearest indexed line and reads only its lines (each cut
//! at [`MAX_LINE`] bytes). A 50 MB console never sits in memory whole. The
//! findings and their lines come from the store, and so do the CSD-group table
//! and the scftorture statistics (the run's stored summary,
//! [`store::runs::RunSummary`]). Only a run still going and a run stored before
//! summaries were (schema version 7) have the console analysed here
//! (streamed, once per finished run, cached).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use csdci_web::{
    ActionResult, ActionsPage, BisectProgress, BisectReport, BisectStep, BisectionPage,
    BisectionRow, Candidate, CellResult, ConsoleLine, ConsoleStream, ConsoleWindow, CsdGroupRow,
    Dashboard, Download, Field, Finding, FixCheck, JobHistory, JobRow, LiveChunk, LiveMark,
    LivePage, NightRow, Overview, Pulse, Regression, RunPage, RunRow, RunningWork, SearchResults,
    SeriesPage, SeriesPatch, SeriesReply, SeriesRow, StartBisection, StartRun, WebError,
};

use crate::events::short;
use crate::store::{self, Store};

/// Lines between two entries of a console's line index.
pub const STRIDE: u64 = 1024;
/// Bytes of one console line shown at most (the rest is cut).
pub const MAX_LINE: usize = 4096;
/// Rows of the overview's lists.
const RECENT: u32 = 25;
/// Nights of a job's history page.
const HISTORY: u32 = 120;
/// Results of each kind a search returns at most.
const FOUND: usize = 50;

/// The dashboard over the store in `data_dir`.
pub struct StoreDashboard {
    data_dir: PathBuf,
    /// Where `rerun_job` finds the job files (none: the action is off).
    jobs_dir: Option<PathBuf>,
    /// The csdci executable that runs a re-run night.
    exe: PathBuf,
    indexes: Mutex<HashMap<PathBuf, Arc<LineIndex>>>,
    analyses: Mutex<HashMap<i64, Arc<Analysis>>>,
    /// Starting and cancelling work in this process (none: those actions
    /// are off).
    actions: Option<crate::service::actions::Actions>,
}

/// What the run page shows from the console analyzer.
#[derive(Debug, Default)]
struct Analysis {
    csd: Vec<CsdGroupRow>,
    scftorture: Vec<Field>,
}

impl Analysis {
    /// The run page's CSD-group rows and scftorture fields.
    fn of(groups: &[csdci_console::CsdGroup], s: &csdci_console::ScfStats) -> Analysis {
        let csd = groups
            .iter()
            .map(|g| CsdGroupRow {
                id: g.id,
                waiter_cpu: g.waiter_cpu,
                target_cpu: g.target_cpu,
                func: g.func.clone(),
                csd: g.csd.clone(),
                max_wait_s: g.max_wait_ns.map(|ns| ns as f64 / 1e9),
                resent: g.resent,
                reports: g.reports,
                shared_with: g.shared_with.clone(),
            })
            .collect();
        let mut scftorture = Vec::new();
        if s.started || s.stats_lines > 0 || s.result.is_some() {
            let mut f = |name: &str, value: String| {
                scftorture.push(Field {
                    name: name.into(),
                    value,
                })
            };
            f("result", s.result.clone().unwrap_or_else(|| "none".into()));
            if let Some(n) = s.invocations {
                f("invocations", n.to_string());
            }
            f("statistics lines", s.stats_lines.to_string());
            f(
                "errors (ste/stnmie/stnmoe/staf)",
                format!(
                    "{}/{}/{}/{}",
                    s.errors.ste, s.errors.stnmie, s.errors.stnmoe, s.errors.staf
                ),
            );
            f(
                "memory-ordering failures",
                s.memory_ordering_failures.to_string(),
            );
            if let Some(o) = &s.onoff {
                f(
                    "CPU hotplug (online/attempts, offline/attempts)",
                    format!(
                        "{}/{}, {}/{}",
                        o.online, o.online_attempts, o.offline, o.offline_attempts
                    ),
                );
            }
            if s.cpus_offlined > 0 || s.cpus_onlined > 0 {
                f(
                    "CPUs taken offline / brought online",
                    format!("{} / {}", s.cpus_offlined, s.cpus_onlined),
                );
            }
        }
        Analysis { csd, scftorture }
    }
}

/// A console's sparse line index.
#[derive(Debug)]
pub struct LineIndex {
    /// The file's size when indexed (a growing console is indexed again).
    size: u64,
    /// Lines in the file (a last line without a newline counts).
    lines: u64,
    /// `offsets[k]`: byte offset of line `k * STRIDE + 1`.
    offsets: Vec<u64>,
}

impl LineIndex {
    /// Indexes `path` reading it in 64 KiB chunks.
    pub fn build(path: &Path) -> std::io::Result<LineIndex> {
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut offsets = vec![0u64];
        let (mut pos, mut lines, mut last) = (0u64, 0u64, b'\n');
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                if b == b'\n' {
                    lines += 1;
                    if lines % STRIDE == 0 {
                        offsets.push(pos + i as u64 + 1);
                    }
                }
            }
            last = buf[n - 1];
            pos += n as u64;
        }
        if last != b'\n' {
            lines += 1;
        }
        // An entry for a line past the end is of no use.
        if offsets.len() as u64 > lines.div_ceil(STRIDE).max(1) {
            offsets.pop();
        }
        Ok(LineIndex {
            size: pos,
            lines,
            offsets,
        })
    }

    /// Lines in the file.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The 1-based line holding byte `byte` (a finding's stored offset): seeks
    /// to the nearest indexed line before it and counts the newlines between
    /// (at most [`STRIDE`] lines are read). A byte past the end gives the last
    /// line.
    pub fn line_at(&self, path: &Path, byte: u64) -> std::io::Result<u64> {
        let byte = byte.min(self.size.saturating_sub(1));
        let k = self
            .offsets
            .partition_point(|&o| o <= byte)
            .saturating_sub(1);
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(self.offsets[k]))?;
        let mut left = byte - self.offsets[k];
        let mut n = k as u64 * STRIDE + 1;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let got = f.read(&mut buf[..want])?;
            if got == 0 {
                break;
            }
            n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
            left -= got as u64;
        }
        Ok(n.min(self.lines.max(1)))
    }

    /// Reads lines `from..` (1-based), at most `count`, each cut at
    /// [`MAX_LINE`] bytes.
    pub fn read(&self, path: &Path, from: u64, count: u32) -> std::io::Result<Vec<(u64, String)>> {
        let from = from.max(1);
        let mut out = Vec::new();
        if from > self.lines {
            return Ok(out);
        }
        let k = ((from - 1) / STRIDE) as usize;
        let k = k.min(self.offsets.len() - 1);
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(self.offsets[k]))?;
        let mut r = BufReader::with_capacity(64 * 1024, f);
        let mut n = k as u64 * STRIDE + 1;
        let mut line = Vec::new();
        while out.len() < count as usize {
            line.clear();
            if !read_line_bounded(&mut r, &mut line, MAX_LINE)? {
                break;
            }
            if n >= from {
                out.push((n, text(&line)));
            }
            n += 1;
        }
        Ok(out)
    }
}

/// Reads through the next newline, keeping at most `max` bytes of the line;
/// false at the end of the file.
fn read_line_bounded(
    r: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let keep = used - usize::from(done);
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&buf[..keep.min(room)]);
        r.consume(used);
        if done {
            return Ok(true);
        }
    }
}

/// A console line as text: invalid UTF-8 replaced, a trailing `\r` and
/// other control characters (but tabs) dropped.
fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

/// An action's error: the user's mistake (400, its message naming the
/// field), else the server's (500).
fn action_error(e: crate::Error) -> WebError {
    match e {
        crate::Error::Store(e) => internal(e),
        e => WebError::BadRequest(e.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> WebError {
    WebError::Internal(e.to_string())
}

impl StoreDashboard {
    /// The dashboard of `data_dir`; `jobs_dir` enables re-running a job's
    /// night.
    pub fn new(data_dir: &Path, jobs_dir: Option<&Path>) -> StoreDashboard {
        StoreDashboard {
            data_dir: data_dir.to_path_buf(),
            jobs_dir: jobs_dir.map(Path::to_path_buf),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("csdci")),
            indexes: Mutex::new(HashMap::new()),
            analyses: Mutex::new(HashMap::new()),
            actions: None,
        }
    }

    /// Turns on starting runs and bisections in this process and
    /// cancelling its bisections and nights, through `work`.
    /// A re-run night runs in this process too (mails link to
    /// `public_url`).
    pub fn with_work(
        mut self,
        work: Arc<crate::service::work::Work>,
        public_url: Option<String>,
    ) -> StoreDashboard {
        self.actions = Some(crate::service::actions::Actions::new(
            &self.data_dir,
            self.jobs_dir.as_deref(),
            work,
            public_url,
        ));
        self
    }

    fn actions_or_off(&self) -> Result<&crate::service::actions::Actions, WebError> {
        self.actions.as_ref().ok_or_else(|| {
            WebError::BadRequest("this dashboard does not start or cancel work".into())
        })
    }

    fn is_running(&self, key: &crate::service::work::Key) -> bool {
        self.actions
            .as_ref()
            .is_some_and(|a| a.work().is_running(key))
    }

    /// Whether the jobs directory holds a valid job `name`.
    fn has_job(&self, name: &str) -> bool {
        self.jobs_dir.as_ref().is_some_and(|d| {
            crate::jobs::load_paths(std::slice::from_ref(d))
                .into_iter()
                .any(|(_, j)| j.is_ok_and(|j| j.name == name))
        })
    }

    fn store(&self) -> Result<Store, WebError> {
        Store::open_read_only(&self.data_dir).map_err(internal)
    }

    /// The cached line index of `path`, built again when the file grew.
    fn index(&self, path: &Path) -> Result<Arc<LineIndex>, WebError> {
        let size = std::fs::metadata(path)
            .map_err(|e| WebError::NotFound(format!("console log {}: {e}", path.display())))?
            .len();
        if let Some(ix) = self.indexes.lock().unwrap().get(path)
            && ix.size == size
        {
            return Ok(ix.clone());
        }
        let ix = Arc::new(LineIndex::build(path).map_err(internal)?);
        let mut map = self.indexes.lock().unwrap();
        if map.len() > 256 {
            map.clear();
        }
        map.insert(path.to_path_buf(), ix.clone());
        Ok(ix)
    }

    /// The run's CSD groups and scftorture statistics: the summary stored
    /// with its finish; for a run still going, or one stored before summaries
    /// were, the console analysed ([`Self::analyse_console`]).
    fn analysis(&self, store: &Store, run: &store::runs::RunRow) -> Arc<Analysis> {
        if let Some(a) = self.analyses.lock().unwrap().get(&run.id) {
            return a.clone();
        }
        let a = match store.run_summary(run.id) {
            Ok(Some(s)) => Arc::new(Analysis::of(&s.csd, &s.scftorture)),
            _ => Self::analyse_console(run),
        };
        if run.status != "running" {
            self.analyses.lock().unwrap().insert(run.id, a.clone());
        }
        a
    }

    /// The fallback of [`Self::analysis`] for a run without a stored summary
    /// (still running, or stored before schema version 7): the analyzer fed
    /// its console log in chunks.
    fn analyse_console(run: &store::runs::RunRow) -> Arc<Analysis> {
        let Some(path) = run.console_log.as_deref().map(Path::new) else {
            return Arc::default();
        };
        let Ok(mut f) = std::fs::File::open(path) else {
            return Arc::default();
        };
        let mut an = csdci_console::Analyzer::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            an.feed(&buf[..n]);
        }
        let a = an.finish();
        Arc::new(Analysis::of(&a.csd, &a.scftorture))
    }

    fn console_path(run: &store::runs::RunRow) -> Option<PathBuf> {
        run.console_log
            .as_deref()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    }

    fn config_path(run: &store::runs::RunRow) -> Option<PathBuf> {
        run.artifacts
            .as_deref()
            .map(|d| Path::new(d).join("config"))
            .filter(|p| p.is_file())
    }

    fn qemu_path(run: &store::runs::RunRow) -> Option<PathBuf> {
        run.run_dir
            .as_deref()
            .map(|d| Path::new(d).join("qemu-cmdline.txt"))
            .filter(|p| p.is_file())
    }

    fn get_run(store: &Store, id: i64) -> Result<store::runs::RunRow, WebError> {
        store
            .run(id)
            .map_err(internal)?
            .ok_or_else(|| WebError::NotFound(format!("no run #{id}")))
    }
}

fn run_row(r: &store::runs::RunRow) -> RunRow {
    RunRow {
        id: r.id,
        commit: r.commit.clone(),
        status: r.status.clone(),
        verdict: r.verdict.clone(),
        title: r.title.clone(),
        started_at: r.started_at.clone(),
    }
}

fn cell(c: &store::nights::NightCell) -> CellResult {
    CellResult {
        cell: c.cell.clone(),
        status: c.status.clone(),
        runs: c.runs,
        fails: c.fails,
        titles: c.titles.iter().map(|t| t.title.clone()).collect(),
        run_ids: c.run_ids.clone(),
    }
}

fn finding(f: &store::findings::StoredFinding) -> Finding {
    Finding {
        ordinal: f.ordinal,
        kind: f.kind.clone(),
        title: f.title.clone(),
        first_line: f.first_line,
        last_line: f.last_line.unwrap_or(f.first_line).max(f.first_line),
    }
}

/// A finished bisection's report, from its stored JSON.
fn report(result: Option<&str>) -> Option<crate::bisect::Report> {
    serde_json::from_str(result?).ok()
}

fn summary(b: &store::bisect::Bisection) -> String {
    match (b.status.as_str(), report(b.result.as_deref())) {
        (_, Some(r)) => match &r.culprit {
            Some(c) => format!(
                "{} {} ({:.0} %) {}",
                r.status,
                short(&c.sha),
                r.confidence * 100.0,
                c.subject
            ),
            None => r.status.clone(),
        },
        ("failed", None) => b.error.clone().unwrap_or_else(|| "failed".into()),
        (s, None) => s.to_string(),
    }
}

fn bisection_row(b: &store::bisect::Bisection) -> BisectionRow {
    BisectionRow {
        id: b.id,
        repo: b.repo.clone(),
        good: b.good.clone(),
        bad: b.bad.clone(),
        status: b.status.clone(),
        summary: summary(b),
        updated_at: b.updated_at.clone(),
    }
}

fn regression(store: &Store, r: &store::regressions::Regression) -> Result<Regression, WebError> {
    let bisection_status = match r.bisection_id {
        Some(id) => store.bisect_get(id).map_err(internal)?.map(|b| b.status),
        None => None,
    };
    Ok(Regression {
        id: r.id,
        job: r.job.clone(),
        branch: r.branch.clone(),
        cell: r.cell.clone(),
        title: r.title.clone(),
        status: r.status.clone(),
        first_night: r.first_night,
        bisection_id: r.bisection_id,
        bisection_status,
        culprit: r.culprit.clone(),
    })
}

/// The newest `limit` bisections (without reading every row of the table).
fn recent_bisections(store: &Store, limit: u32) -> Result<Vec<store::bisect::Bisection>, WebError> {
    let ids: Vec<i64> = {
        let mut st = store
            .conn()
            .prepare_cached("SELECT id FROM bisections ORDER BY id DESC LIMIT ?1")
            .map_err(internal)?;
        st.query_map([limit], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(internal)?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(b) = store.bisect_get(id).map_err(internal)? {
            out.push(b);
        }
    }
    Ok(out)
}

/// Whether the store has the patch bot's tables (a store older than
/// schema 5, opened read-only, has not).
fn has_series(store: &Store) -> bool {
    store
        .conn()
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'series_replies'",
            [],
            |_| Ok(()),
        )
        .is_ok()
}

fn series_row(s: &store::series::SeriesRow) -> SeriesRow {
    SeriesRow {
        id: s.id,
        job: s.job.clone(),
        title: s.title.clone(),
        version: s.version,
        total: s.total,
        author: s.author.clone(),
        status: s.status.clone(),
        result: s.result.clone(),
        summary: s.summary.clone(),
        first_seen: s.first_seen.clone(),
        updated_at: s.updated_at.clone(),
    }
}

/// The newest `limit` series of the patch bot.
fn recent_series(store: &Store, limit: u32) -> Result<Vec<SeriesRow>, WebError> {
    if !has_series(store) {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = {
        let mut st = store
            .conn()
            .prepare_cached("SELECT id FROM series ORDER BY id DESC LIMIT ?1")
            .map_err(internal)?;
        st.query_map([limit], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(internal)?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = store.series_by_id(id).map_err(internal)? {
            out.push(series_row(&s));
        }
    }
    Ok(out)
}

fn field(name: &str, value: impl Into<String>) -> Field {
    Field {
        name: name.into(),
        value: value.into(),
    }
}

/// A series' page: its row, patches, what its result rests on, its reply.
fn series_page(store: &Store, id: i64) -> Result<SeriesPage, WebError> {
    use crate::bot::test::Outcome as O;
    let s = store
        .series_by_id(id)
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no series #{id}")))?;
    let facts: Option<crate::bot::Facts> = s
        .report
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let (mut guilty, mut details, mut excerpt) = (None, Vec::new(), None);
    if let Some(f) = &facts {
        match &f.outcome {
            O::DoesNotApply { message } => details.push(field("git am -3", message.clone())),
            O::BaseUntestable { reason } => details.push(field("base untestable", reason.clone())),
            O::BuildFailed { patch, errors } => {
                guilty = Some(*patch);
                details.push(field("compiler errors", errors.join("\n")));
            }
            O::Clean { runs } => details.push(field("tip runs", format!("{runs}, no failure"))),
            O::Regression {
                guilty: g,
                tip_fails,
                base_fails,
                runs,
                excerpt: e,
            } => {
                guilty = Some(*g);
                details.push(field("tip failures", format!("{tip_fails}/{runs}")));
                details.push(field("base failures", format!("{base_fails}/{runs}")));
                excerpt = Some(e.clone()).filter(|e| !e.is_empty());
            }
            O::Fixes {
                runs,
                base_fails,
                base_runs,
                upper_95,
            } => {
                details.push(field(
                    "bound",
                    format!("0 failures in {runs} runs: rate < {upper_95:.3} at 95%"),
                ));
                details.push(field("base failures", format!("{base_fails}/{base_runs}")));
            }
            O::StillFails {
                base_fails,
                tip_fails,
                runs,
                excerpt: e,
            } => {
                details.push(field("tip failures", format!("{tip_fails}/{runs}")));
                details.push(field("base failures", format!("{base_fails}/{runs}")));
                excerpt = Some(e.clone()).filter(|e| !e.is_empty());
            }
            O::Infra { reason } => details.push(field("infrastructure", reason.clone())),
        }
    }
    let patches = store
        .series_patches(id)
        .map_err(internal)?
        .into_iter()
        .map(|p| SeriesPatch {
            guilty: guilty == Some(p.idx),
            idx: p.idx,
            title: p.title,
            message_id: p.message_id,
            commit: p.commit_sha,
            build: p.build,
            build_error: p.build_error,
            runs: p.runs,
            fails: p.fails,
        })
        .collect();
    let reply = store
        .series_reply(id)
        .map_err(internal)?
        .map(|r| SeriesReply {
            message_id: r.message_id,
            in_reply_to: r.in_reply_to,
            from: r.sender,
            to: r.recipients,
            subject: r.subject,
            body: r.body,
            status: r.status,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        });
    let mut versions: Vec<SeriesRow> = store
        .series_list(Some(&s.job))
        .map_err(internal)?
        .iter()
        .filter(|o| o.topic == s.topic && o.id != s.id)
        .map(series_row)
        .collect();
    versions.reverse();
    Ok(SeriesPage {
        head_message_id: s.head_mid.clone(),
        base: s.base.clone(),
        base_from_trailer: facts.as_ref().map(|f| f.from_trailer),
        branch: facts.as_ref().map(|f| f.branch.clone()),
        series: series_row(&s),
        patches,
        guilty,
        details,
        excerpt,
        reply,
        versions,
    })
}

fn scalar(store: &Store, sql: &str) -> Result<i64, WebError> {
    store
        .conn()
        .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .map(|v| v.unwrap_or(0))
        .map_err(internal)
}

/// `s` as a LIKE pattern matching it anywhere (`%`, `_`, `\` escaped).
fn like(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A bisection's page: its journal with the posterior after each run, its report.
fn bisection_page(store: &Store, id: i64) -> Result<BisectionPage, WebError> {
    let b = store
        .bisect_get(id)
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no bisection #{id}")))?;
    let posteriors: HashMap<i64, store::bisect::PosteriorRow> = store
        .bisect_posteriors(id)
        .map_err(internal)?
        .into_iter()
        .collect();
    let steps = store
        .bisect_steps(id, false)
        .map_err(internal)?
        .into_iter()
        .map(|s| {
            let p = posteriors.get(&s.id);
            // `top` is `[[sha, probability], …]`, most likely first.
            let candidates: Vec<Candidate> = p
                .and_then(|p| serde_json::from_str::<Vec<(String, f64)>>(&p.top).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|(commit, p)| Candidate { commit, p })
                .collect();
            BisectStep {
                id: s.id,
                kind: s.kind,
                commit: s.commit,
                attempt: s.attempt,
                status: s.status,
                outcome: s.outcome,
                artifact: s
                    .same_as
                    .map(|x| format!("same as {}", short(&x)))
                    .or(s.artifact_id.map(|a| short(&a).to_string())),
                titles: s.titles,
                seconds: s.seconds,
                run_id: s.run_id,
                top: candidates.first().map(|c| c.commit.clone()),
                confidence: p.map(|p| p.confidence),
                candidates,
            }
        })
        .collect();
    let report = report(b.result.as_deref()).map(|r| BisectReport {
        status: r.status.clone(),
        doubt: r.doubt.clone(),
        culprit: r.culprit.as_ref().map(|c| c.sha.clone()),
        culprit_subject: r.culprit.as_ref().map(|c| c.subject.clone()),
        culprit_author: r.culprit.as_ref().map(|c| c.author.clone()),
        confidence: r.confidence,
        fixes: r.fixes.clone(),
        revert_check: match (&r.revert_check.message, r.revert_check.commit.as_deref()) {
            (Some(m), _) => format!("{}: {m}", r.revert_check.status),
            (None, Some(c)) => format!(
                "{}: revert {} failed {} of {} runs",
                r.revert_check.status,
                short(c),
                r.revert_check.fails,
                r.revert_check.runs
            ),
            (None, None) => r.revert_check.status.clone(),
        },
        fix_validation: r.tip_check.as_ref().map(|t| {
            format!(
                "tip {}: {} of {} runs failed",
                short(&t.commit),
                t.fails,
                t.runs
            )
        }),
        runs: r.runs,
        builds: r.builds,
        titles: r.titles.clone(),
    });
    Ok(BisectionPage {
        id,
        repo: b.repo,
        good: b.good,
        bad: b.bad,
        predicate: b.predicate,
        tester: b.tester,
        status: b.status,
        error: b.error,
        steps,
        report,
        created_at: b.created_at,
        updated_at: b.updated_at,
        fix_validations: store
            .fix_validations(id)
            .map_err(internal)?
            .into_iter()
            .map(|f| FixCheck {
                commit: f.fix_commit,
                runs: f.runs,
                fails: f.fails,
                failure_rate_upper_95: f.failure_rate_upper_95,
                regression_rate: f.regression_rate,
                p_pass_if_unfixed: f.p_pass_if_unfixed,
                verdict: f.status,
                finished_at: f.finished_at,
            })
            .collect(),
        cancellable: false,
    })
}

/// Bytes of console one live event carries at most.
pub const LIVE_CHUNK: usize = 64 * 1024;
/// Steps of a bisection the live page shows.
const LIVE_STEPS: usize = 8;

/// A run's console followed as it grows: the byte offset reached (always
/// just past a newline, but for a line longer than [`LIVE_CHUNK`]), the
/// number of the next line, and the console analyzer fed everything before
/// the offset, whose new findings mark their lines.
pub struct LiveTail {
    data_dir: PathBuf,
    run_id: i64,
    file: std::fs::File,
    offset: u64,
    next_line: u64,
    analyzer: csdci_console::Analyzer,
    /// Findings already sent.
    marked: usize,
    bisection: Option<i64>,
    /// The bisection's (step count, done steps, status) last sent.
    bisect_key: Option<(u32, u32, String)>,
}

impl LiveTail {
    /// Follows `path` (run `run_id`'s console) from `offset`, moved back to
    /// the end of the last complete line before it (`u64::MAX`: the end).
    /// Everything before is read once, in chunks, through the analyzer.
    pub fn open(
        data_dir: &Path,
        run_id: i64,
        path: &Path,
        offset: u64,
        bisection: Option<i64>,
    ) -> std::io::Result<LiveTail> {
        let mut file = std::fs::File::open(path)?;
        let mut analyzer = csdci_console::Analyzer::new();
        let mut buf = vec![0u8; LIVE_CHUNK];
        let (mut pos, mut fed, mut lines) = (0u64, 0u64, 0u64);
        // Bytes after the last newline, not yet fed.
        let mut pending: Vec<u8> = Vec::new();
        while pos < offset {
            let want = (offset - pos).min(buf.len() as u64) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            pos += n as u64;
            match chunk.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    analyzer.feed(&pending);
                    analyzer.feed(&chunk[..=i]);
                    lines += pending
                        .iter()
                        .chain(&chunk[..=i])
                        .filter(|&&b| b == b'\n')
                        .count() as u64;
                    fed += (pending.len() + i + 1) as u64;
                    pending.clear();
                    pending.extend_from_slice(&chunk[i + 1..]);
                }
                None => pending.extend_from_slice(chunk),
            }
        }
        file.seek(SeekFrom::Start(fed))?;
        Ok(LiveTail {
            data_dir: data_dir.to_path_buf(),
            run_id,
            file,
            offset: fed,
            next_line: lines + 1,
            analyzer,
            marked: 0,
            bisection,
            bisect_key: None,
        })
    }

    /// The findings not sent yet.
    fn new_marks(&mut self) -> Vec<LiveMark> {
        let all = self.analyzer.findings();
        let marks = all[self.marked.min(all.len())..]
            .iter()
            .enumerate()
            .map(|(i, f)| LiveMark {
                line: f.line,
                ordinal: (self.marked + i) as u32,
                kind: f.kind.as_str().to_string(),
                title: f.title.clone(),
            })
            .collect();
        self.marked = all.len();
        marks
    }

    /// The bisection's progress when it changed since the last call.
    fn progress(&mut self, store: &Store) -> Result<Option<BisectProgress>, WebError> {
        let Some(id) = self.bisection else {
            return Ok(None);
        };
        let p = bisect_progress(store, id)?;
        let done = p.steps.iter().filter(|s| s.status == "done").count() as u32;
        let key = (p.step_count, done, p.status.clone());
        if self.bisect_key.as_ref() == Some(&key) {
            return Ok(None);
        }
        self.bisect_key = Some(key);
        Ok(Some(p))
    }
}

impl ConsoleStream for LiveTail {
    fn next_chunk(&mut self) -> Result<LiveChunk, WebError> {
        let store = Store::open_read_only(&self.data_dir).map_err(internal)?;
        let status = StoreDashboard::get_run(&store, self.run_id)?.status;
        let running = status == "running";
        let size = self.file.metadata().map_err(internal)?.len();
        let mut buf = vec![0u8; LIVE_CHUNK];
        let mut n = 0;
        while n < buf.len() {
            let k = self.file.read(&mut buf[n..]).map_err(internal)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        buf.truncate(n);
        // Whole lines only, but for an overlong line or the end of a
        // finished run's console.
        let take = match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if n == LIVE_CHUNK || !running => n,
            None => 0,
        };
        self.file
            .seek(SeekFrom::Start(self.offset + take as u64))
            .map_err(internal)?;
        let got = &buf[..take];
        self.analyzer.feed(got);
        let mut lines = Vec::new();
        if !got.is_empty() {
            let body = got.strip_suffix(b"\n").unwrap_or(got);
            for l in body.split(|&b| b == b'\n') {
                lines.push(ConsoleLine {
                    n: self.next_line,
                    text: text(&l[..l.len().min(MAX_LINE)]),
                    finding: None,
                });
                self.next_line += 1;
            }
        }
        self.offset += take as u64;
        let marks = self.new_marks();
        for m in &marks {
            if let Some(l) = lines.iter_mut().find(|l| l.n == m.line) {
                l.finding = Some(m.ordinal);
            }
        }
        let more = take > 0 && self.offset < size;
        Ok(LiveChunk {
            offset: self.offset,
            lines,
            marks,
            bisection: self.progress(&store)?,
            more,
            done: !running && self.offset >= size,
            status,
        })
    }
}

/// A bisection's status and latest steps.
fn bisect_progress(store: &Store, id: i64) -> Result<BisectProgress, WebError> {
    let mut b = bisection_page(store, id)?;
    let count = b.steps.len();
    let steps = b.steps.split_off(count.saturating_sub(LIVE_STEPS));
    Ok(BisectProgress {
        id,
        status: b.status,
        step_count: count as u32,
        steps,
    })
}

/// The bisection run `run` belongs to: the step that recorded it, or else a
/// running bisection testing the run's commit now.
fn run_bisection(store: &Store, run: &store::runs::RunRow) -> Result<Option<i64>, WebError> {
    use rusqlite::OptionalExtension;
    let by_step = store
        .conn()
        .query_row(
            "SELECT bisection_id FROM bisect_steps WHERE run_id = ?1 LIMIT 1",
            [run.id],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(internal)?;
    if by_step.is_some() || run.status != "running" {
        return Ok(by_step);
    }
    store
        .conn()
        .query_row(
            "SELECT s.bisection_id FROM bisect_steps s JOIN bisections b ON b.id = s.bisection_id
             WHERE b.status = 'running' AND s.status = 'started' AND s.commit_sha = ?1
             ORDER BY s.id DESC LIMIT 1",
            [&run.commit],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(internal)
}

impl Dashboard for StoreDashboard {
    fn overview(&self) -> Result<Overview, WebError> {
        let store = self.store()?;
        let mut seen = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for n in store.nights(None, None, 400).map_err(internal)? {
            if !seen.insert((n.job.clone(), n.branch.clone())) {
                continue;
            }
            let cells = store.cells(n.id).map_err(internal)?;
            jobs.push(JobRow {
                job: n.job,
                branch: n.branch,
                night_id: n.id,
                head: n.head,
                status: n.status,
                started_at: n.started_at,
                cells: cells.iter().map(cell).collect(),
            });
        }
        jobs.sort_by(|a, b| (&a.job, &a.branch).cmp(&(&b.job, &b.branch)));
        let regressions = store
            .regressions(None, Some("open"))
            .map_err(internal)?
            .iter()
            .take(RECENT as usize)
            .map(|r| regression(&store, r))
            .collect::<Result<_, _>>()?;
        let runs = store
            .recent_runs(RECENT)
            .map_err(internal)?
            .iter()
            .map(run_row)
            .collect();
        let bisections = recent_bisections(&store, RECENT)?
            .iter()
            .map(bisection_row)
            .collect();
        Ok(Overview {
            jobs,
            regressions,
            runs,
            bisections,
            series: recent_series(&store, RECENT)?,
        })
    }

    fn job(&self, name: &str) -> Result<JobHistory, WebError> {
        let store = self.store()?;
        let nights = store.nights(Some(name), None, HISTORY).map_err(internal)?;
        if nights.is_empty() && !self.has_job(name) {
            return Err(WebError::NotFound(format!("job {name} has run no night")));
        }
        let mut rows = Vec::with_capacity(nights.len());
        for n in nights {
            let cells: Vec<CellResult> = store
                .cells(n.id)
                .map_err(internal)?
                .iter()
                .map(cell)
                .collect();
            rows.push(NightRow {
                id: n.id,
                branch: n.branch,
                head: n.head,
                status: n.status,
                started_at: n.started_at,
                runs: cells.iter().map(|c| c.runs).sum(),
                fails: cells.iter().map(|c| c.fails).sum(),
                cells,
            });
        }
        Ok(JobHistory {
            job: name.to_string(),
            nights: rows,
            cancellable: self.is_running(&crate::service::work::Key::Night(name.to_string())),
        })
    }

    fn run(&self, id: i64) -> Result<RunPage, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, id)?;
        let findings = store
            .run_findings(id)
            .map_err(internal)?
            .iter()
            .map(finding)
            .collect();
        let a = self.analysis(&store, &r);
        let mut spec = vec![
            Field {
                name: "vCPUs".into(),
                value: r.vcpus.to_string(),
            },
            Field {
                name: "memory".into(),
                value: format!("{} MiB", r.memory_mb),
            },
            Field {
                name: "accel".into(),
                value: match &r.accel {
                    Some(a) => format!("{a} (asked: {})", r.accel_requested),
                    None => r.accel_requested.clone(),
                },
            },
            Field {
                name: "duration".into(),
                value: format!("{} s", r.duration_s),
            },
            Field {
                name: "scftorture".into(),
                value: r.scftorture.clone(),
            },
        ];
        for (name, v) in [
            ("tree id", &r.tree_id),
            ("config sha256", &r.config_hash),
            ("artifact", &r.artifact_id),
            ("guest exit", &r.vm_exit),
        ] {
            if let Some(v) = v {
                spec.push(Field {
                    name: name.into(),
                    value: v.clone(),
                });
            }
        }
        Ok(RunPage {
            id,
            has_console: Self::console_path(&r).is_some(),
            has_config: Self::config_path(&r).is_some(),
            has_qemu_cmdline: Self::qemu_path(&r).is_some(),
            repo: r.repo,
            commit: r.commit,
            status: r.status,
            verdict: r.verdict,
            title: r.title,
            reason: r.reason,
            spec,
            build_seconds: r.build_seconds,
            build_cached: r.build_cached,
            boot_seconds: r.boot_seconds,
            test_seconds: r.test_seconds,
            started_at: r.started_at,
            finished_at: r.finished_at,
            findings,
            csd: a.csd.clone(),
            scftorture: a.scftorture.clone(),
        })
    }

    fn console(&self, run_id: i64, from: u64, count: u32) -> Result<ConsoleWindow, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, run_id)?;
        let path = Self::console_path(&r)
            .ok_or_else(|| WebError::NotFound(format!("run #{run_id} has no console log")))?;
        let findings: Vec<Finding> = store
            .run_findings(run_id)
            .map_err(internal)?
            .iter()
            .map(finding)
            .collect();
        let ix = self.index(&path)?;
        let lines = ix
            .read(&path, from, count)
            .map_err(internal)?
            .into_iter()
            .map(|(n, text)| ConsoleLine {
                n,
                text,
                finding: findings
                    .iter()
                    .find(|f| f.first_line <= n && n <= f.last_line)
                    .map(|f| f.ordinal),
            })
            .collect();
        Ok(ConsoleWindow {
            run_id,
            from,
            lines,
            total_lines: ix.lines(),
            findings,
        })
    }

    fn console_line_at(&self, run_id: i64, byte: u64) -> Result<u64, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, run_id)?;
        let path = Self::console_path(&r)
            .ok_or_else(|| WebError::NotFound(format!("run #{run_id} has no console log")))?;
        self.index(&path)?.line_at(&path, byte).map_err(internal)
    }

    fn download(&self, run_id: i64, what: Download) -> Result<PathBuf, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, run_id)?;
        let (path, name) = match what {
            Download::Console => (Self::console_path(&r), "console log"),
            Download::Config => (Self::config_path(&r), ".config"),
            Download::QemuCmdline => (Self::qemu_path(&r), "QEMU command line"),
        };
        path.ok_or_else(|| WebError::NotFound(format!("run #{run_id} has no {name} on file")))
    }

    fn bisection(&self, id: i64) -> Result<BisectionPage, WebError> {
        let mut page = bisection_page(&self.store()?, id)?;
        page.cancellable = self.is_running(&crate::service::work::Key::Bisection(id));
        Ok(page)
    }

    fn series(&self, id: i64) -> Result<SeriesPage, WebError> {
        series_page(&self.store()?, id)
    }

    fn search(&self, q: &str) -> Result<SearchResults, WebError> {
        let q = q.trim();
        let mut out = SearchResults {
            query: q.to_string(),
            ..Default::default()
        };
        if q.is_empty() {
            return Ok(out);
        }
        let store = self.store()?;
        let ids: Vec<i64> = {
            let mut st = store
                .conn()
                .prepare_cached(
                    "SELECT id FROM runs WHERE title LIKE ?1 ESCAPE '\\'
                     OR commit_sha LIKE ?2 ESCAPE '\\' OR repo LIKE ?1 ESCAPE '\\'
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(internal)?;
            let prefix = format!("{}%", like(q).trim_start_matches('%'));
            st.query_map(rusqlite::params![like(q), prefix, FOUND as i64], |r| {
                r.get(0)
            })
            .and_then(|rows| rows.collect())
            .map_err(internal)?
        };
        for id in ids {
            if let Some(r) = store.run(id).map_err(internal)? {
                out.runs.push(run_row(&r));
            }
        }
        let ql = q.to_lowercase();
        let has = |s: &str| s.to_lowercase().contains(&ql);
        for r in store.regressions(None, None).map_err(internal)? {
            if out.regressions.len() < FOUND
                && (has(&r.title)
                    || has(&r.job)
                    || has(&r.bad)
                    || r.culprit.as_deref().is_some_and(has))
            {
                out.regressions.push(regression(&store, &r)?);
            }
        }
        for b in store.bisect_list().map_err(internal)? {
            if out.bisections.len() < FOUND
                && (has(&b.bad)
                    || b.good.iter().any(|g| has(g))
                    || has(&b.repo)
                    || b.result.as_deref().is_some_and(has))
            {
                out.bisections.push(bisection_row(&b));
            }
        }
        Ok(out)
    }

    fn pulse(&self) -> Result<Pulse, WebError> {
        let store = self.store()?;
        Ok(Pulse {
            max_run_id: scalar(&store, "SELECT max(id) FROM runs")?,
            max_step_id: scalar(&store, "SELECT max(id) FROM bisect_steps")?,
            max_bisection_id: scalar(&store, "SELECT max(id) FROM bisections")?,
            bisection_updates: scalar(
                &store,
                "SELECT (SELECT count(*) FROM bisect_steps WHERE status = 'done')
                      + (SELECT count(*) FROM bisections WHERE status != 'running') * 1000003",
            )?,
            run_updates: scalar(
                &store,
                "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL",
            )?,
            max_night_id: scalar(&store, "SELECT max(id) FROM nights")?,
            night_updates: scalar(
                &store,
                "SELECT count(*) FROM nights WHERE finished_at IS NOT NULL",
            )?,
            series_updates: if has_series(&store) {
                scalar(
                    &store,
                    "SELECT (SELECT count(*) FROM series)
                          + (SELECT count(*) FROM series WHERE status NOT IN ('waiting', 'testing')) * 1009
                          + (SELECT count(*) FROM series WHERE status = 'testing') * 101
                          + (SELECT count(*) FROM series_replies) * 1000003
                          + (SELECT count(*) FROM series_replies WHERE status = 'sent') * 7919",
                )?
            } else {
                0
            },
        })
    }

    fn live(&self, run_id: i64, tail: u32) -> Result<LivePage, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, run_id)?;
        let path = Self::console_path(&r)
            .ok_or_else(|| WebError::NotFound(format!("run #{run_id} has no console log yet")))?;
        let bisection = run_bisection(&store, &r)?;
        let mut t =
            LiveTail::open(&self.data_dir, run_id, &path, u64::MAX, bisection).map_err(internal)?;
        let findings = t.new_marks();
        let total = t.next_line - 1;
        let from = total.saturating_sub(tail as u64) + 1;
        let ix = self.index(&path)?;
        let lines = ix
            .read(&path, from, (total + 1 - from) as u32)
            .map_err(internal)?
            .into_iter()
            .map(|(n, text)| ConsoleLine {
                n,
                text,
                finding: findings.iter().find(|f| f.line == n).map(|f| f.ordinal),
            })
            .collect();
        Ok(LivePage {
            run_id,
            commit: r.commit,
            status: r.status,
            lines,
            total_lines: total,
            offset: t.offset,
            findings,
            bisection: bisection
                .map(|id| bisect_progress(&store, id))
                .transpose()?,
        })
    }

    fn live_stream(&self, run_id: i64, offset: u64) -> Result<Box<dyn ConsoleStream>, WebError> {
        let store = self.store()?;
        let r = Self::get_run(&store, run_id)?;
        let path = Self::console_path(&r)
            .ok_or_else(|| WebError::NotFound(format!("run #{run_id} has no console log yet")))?;
        let bisection = run_bisection(&store, &r)?;
        let mut t =
            LiveTail::open(&self.data_dir, run_id, &path, offset, bisection).map_err(internal)?;
        // The findings before the offset are on the page already.
        t.marked = t.analyzer.findings().len();
        Ok(Box::new(t))
    }

    fn rerun_job(&self, name: &str) -> Result<ActionResult, WebError> {
        let Some(dir) = &self.jobs_dir else {
            return Err(WebError::BadRequest(
                "this csdci serve has no --jobs directory".into(),
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(WebError::BadRequest(format!("not a job name: {name:?}")));
        }
        if !self.has_job(name) {
            return Err(WebError::NotFound(format!(
                "no valid job {name} in {}",
                dir.display()
            )));
        }
        if let Some(a) = &self.actions {
            a.rerun(name).map_err(action_error)?;
            return Ok(ActionResult {
                ok: true,
                message: format!("night of {name} started in this csdci serve"),
                url: Some(format!("/jobs/{name}")),
            });
        }
        let child = std::process::Command::new(&self.exe)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["job", "run", name, "--once", "--jobs"])
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| internal(format!("cannot start csdci job run: {e}")))?;
        let pid = child.id();
        // Reaped in the background; the night's state is in the store.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        Ok(ActionResult {
            ok: true,
            message: format!("night of {name} started (process {pid})"),
            url: Some(format!("/jobs/{name}")),
        })
    }

    fn actions(&self) -> Result<ActionsPage, WebError> {
        use crate::service::work::Key;
        let Some(a) = &self.actions else {
            return Ok(ActionsPage::default());
        };
        let mut running: Vec<RunningWork> = a
            .work()
            .running()
            .into_iter()
            .map(|k| RunningWork {
                kind: match &k {
                    Key::Bisection(_) => "bisection",
                    Key::Night(_) => "night",
                    Key::Run(_) => "run",
                }
                .into(),
                what: k.to_string(),
                url: match &k {
                    Key::Bisection(id) => Some(format!("/bisections/{id}")),
                    Key::Night(job) => Some(format!("/jobs/{job}")),
                    Key::Run(_) => None,
                },
            })
            .collect();
        running.sort_by(|x, y| x.what.cmp(&y.what));
        Ok(ActionsPage {
            enabled: false,
            jobs: a.jobs().into_iter().map(|j| j.name).collect(),
            running,
            max_guests: a.work().guests().max() as u32,
        })
    }

    fn start_run(&self, req: &StartRun) -> Result<ActionResult, WebError> {
        let commit = self
            .actions_or_off()?
            .start_run(req)
            .map_err(action_error)?;
        Ok(ActionResult {
            ok: true,
            message: format!(
                "run of {} started; it shows under the recent runs",
                short(&commit)
            ),
            url: Some("/".into()),
        })
    }

    fn start_bisection(&self, req: &StartBisection) -> Result<ActionResult, WebError> {
        let (id, resumed) = self
            .actions_or_off()?
            .start_bisection(req)
            .map_err(action_error)?;
        Ok(ActionResult {
            ok: true,
            message: if resumed {
                format!("bisection #{id} resumed")
            } else {
                format!("bisection #{id} started")
            },
            url: Some(format!("/bisections/{id}")),
        })
    }

    fn cancel_bisection(&self, id: i64) -> Result<ActionResult, WebError> {
        if !self.actions_or_off()?.cancel_bisection(id) {
            return Err(WebError::BadRequest(format!(
                "bisection #{id} does not run in this csdci serve"
            )));
        }
        Ok(ActionResult {
            ok: true,
            message: format!(
                "bisection #{id} stops; start it again (or csdci bisect --resume {id}) to resume it"
            ),
            url: Some(format!("/bisections/{id}")),
        })
    }

    fn cancel_night(&self, name: &str) -> Result<ActionResult, WebError> {
        if !self.actions_or_off()?.cancel_night(name) {
            return Err(WebError::BadRequest(format!(
                "no night of {name} runs in this csdci serve"
            )));
        }
        Ok(ActionResult {
            ok: true,
            message: format!("the night of {name} stops; it resumes on its next start"),
            url: Some(format!("/jobs/{name}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_a_console() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("console.log");
        let mut s = String::new();
        for i in 1..=5000 {
            s.push_str(&format!("line {i}\n"));
        }
        s.push_str(&"x".repeat(10_000));
        s.push_str("\nlast");
        std::fs::write(&p, &s).unwrap();
        let ix = LineIndex::build(&p).unwrap();
        assert_eq!(ix.lines(), 5002);
        let w = ix.read(&p, 2047, 4).unwrap();
        let got: Vec<_> = w.iter().map(|(n, t)| format!("{n}:{t}")).collect();
        assert_eq!(
            got,
            [
                "2047:line 2047",
                "2048:line 2048",
                "2049:line 2049",
                "2050:line 2050"
            ]
        );
        let w = ix.read(&p, 5000, 10).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w[1].1.len(), MAX_LINE);
        assert_eq!(w[2], (5002, "last".to_string()));
        assert!(ix.read(&p, 6000, 10).unwrap().is_empty());
        assert_eq!(ix.read(&p, 1, 1).unwrap(), [(1, "line 1".to_string())]);
        // Byte offsets to lines: at a line's start, inside it, past the index
        // stride, past the end.
        let at = |n: usize| s.find(&format!("line {n}\n")).unwrap() as u64;
        assert_eq!(ix.line_at(&p, 0).unwrap(), 1);
        assert_eq!(ix.line_at(&p, at(2)).unwrap(), 2);
        assert_eq!(ix.line_at(&p, at(2) + 3).unwrap(), 2);
        assert_eq!(ix.line_at(&p, at(3000)).unwrap(), 3000);
        assert_eq!(ix.line_at(&p, at(4096) - 1).unwrap(), 4095);
        assert_eq!(ix.line_at(&p, u64::MAX).unwrap(), 5002);
    }

    /// A console with a stuck CSD lock and scftorture's stats with hotplug.
    const CSD_CONSOLE: &str = "[    1.0] scftorture: --- Start of test: nthreads=4\n\
[    2.0] smp: csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5000155348 ns for CPU#00 scf_handler_1+0x0/0x21 [scftorture](0xffff888003c1b4a0).\n\
[    2.0] smp:     csd: CSD lock (#1) handling prior scf_handler_1+0x0/0x21 [scftorture](0x0) request.\n\
[    3.0] smp: csd: CSD lock (#1) got unstuck on CPU#03, CPU#00 released the lock.\n";

    /// A finished run of `console` in the store of `dir`, its summary
    /// stored or not (a run stored before summaries were).
    fn finished_run(dir: &Path, with_summary: bool) -> (i64, PathBuf) {
        let store = Store::open(dir).unwrap();
        let log = dir.join("console.log");
        std::fs::write(&log, CSD_CONSOLE).unwrap();
        let id = store
            .insert_run(&store::runs::NewRun {
                repo: "/linux".into(),
                commit: "abc".into(),
                vcpus: 4,
                memory_mb: 512,
                accel_requested: "tcg".into(),
                duration_s: 10,
                console_log: Some(log.display().to_string()),
                ..Default::default()
            })
            .unwrap();
        let mut an = csdci_console::Analyzer::new();
        an.feed(CSD_CONSOLE.as_bytes());
        let a = an.finish();
        assert_eq!(a.csd.len(), 1, "{a:?}");
        let mut finish = crate::testers::local::finish_record(
            &crate::verdict::Verdict::Failed {
                title: "csd".into(),
                findings: a.findings.clone(),
            },
            None,
            Some(&a),
        );
        if !with_summary {
            finish.summary = None;
        }
        store.finish_run(id, &finish).unwrap();
        (id, log)
    }

    #[test]
    fn the_run_page_shows_the_stored_summary_without_the_console() {
        let d = tempfile::tempdir().unwrap();
        let (id, log) = finished_run(d.path(), true);
        std::fs::remove_file(&log).unwrap();
        let page = StoreDashboard::new(d.path(), None).run(id).unwrap();
        assert_eq!(page.csd.len(), 1, "{:?}", page.csd);
        assert_eq!(page.csd[0].waiter_cpu, Some(3));
        assert_eq!(page.csd[0].target_cpu, Some(0));
        assert_eq!(page.csd[0].func.as_deref(), Some("scf_handler_1"));
        let started = page
            .scftorture
            .iter()
            .find(|f| f.name == "statistics lines");
        assert!(started.is_some(), "{:?}", page.scftorture);
    }

    #[test]
    fn an_old_run_without_a_summary_falls_back_to_its_console() {
        let d = tempfile::tempdir().unwrap();
        let (id, log) = finished_run(d.path(), false);
        let page = StoreDashboard::new(d.path(), None).run(id).unwrap();
        assert_eq!(page.csd.len(), 1, "{:?}", page.csd);
        // Without the summary and without the console there is nothing.
        std::fs::remove_file(&log).unwrap();
        let page = StoreDashboard::new(d.path(), None).run(id).unwrap();
        assert!(page.csd.is_empty(), "{:?}", page.csd);
    }

    #[test]
    fn like_patterns_escape() {
        assert_eq!(like("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}

//! The pages' data: plain serde structs the [`crate::Dashboard`] fills. Each
//! page renders one of them as HTML and serves the same value as JSON under
//! `/api/v1/…`, so the two never disagree.

use serde::{Deserialize, Serialize};

/// The front page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Overview {
    /// The last night of every job and branch.
    pub jobs: Vec<JobRow>,
    /// Open regressions, newest first.
    pub regressions: Vec<Regression>,
    /// The latest runs, newest first.
    pub runs: Vec<RunRow>,
    /// The latest bisections, newest first.
    pub bisections: Vec<BisectionRow>,
    /// The patch bot's latest series, newest first.
    #[serde(default)]
    pub series: Vec<SeriesRow>,
}

/// One series the patch bot read, in a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesRow {
    pub id: i64,
    /// The bot job that read it.
    pub job: String,
    /// The series' title (the cover letter's subject, else patch 1's).
    pub title: String,
    pub version: u32,
    /// Patches in the series.
    pub total: u32,
    /// The sender (`From:`).
    pub author: String,
    /// `waiting`, `testing`, `done`, `superseded`, `incomplete`, `ignored`.
    pub status: String,
    /// `clean`, `regression`, `fixes`, `still_fails`, `build_failed`,
    /// `does_not_apply`, … (once tested).
    pub result: Option<String>,
    /// The result in one line.
    pub summary: Option<String>,
    /// When the bot first saw it and last changed it (RFC 3339).
    pub first_seen: String,
    pub updated_at: String,
}

/// A series: its patches with their build and runs, the guilty patch, the
/// reply.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesPage {
    pub series: SeriesRow,
    /// The Message-ID replies go to (cover letter, else patch 1).
    pub head_message_id: String,
    /// The base commit tested on, and whether the series' `base-commit:`
    /// named it (else the branch head).
    pub base: Option<String>,
    pub base_from_trailer: Option<bool>,
    pub branch: Option<String>,
    pub patches: Vec<SeriesPatch>,
    /// The index of the patch that breaks the build or introduces the
    /// failure.
    pub guilty: Option<u32>,
    /// What the result rests on (git's message, compiler errors, the
    /// failing console excerpt, the bound of a fix), as lines.
    pub details: Vec<Field>,
    /// The console excerpt of the failure, when there is one.
    pub excerpt: Option<String>,
    /// The reply sent (or, dry run, written).
    pub reply: Option<SeriesReply>,
    /// Other versions of the same series (the same topic), newest first.
    pub versions: Vec<SeriesRow>,
}

/// One patch of a series.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesPatch {
    /// 1..=K.
    pub idx: u32,
    pub title: String,
    pub message_id: String,
    /// The commit `git am` made of it.
    pub commit: Option<String>,
    /// `ok`, `failed`, `not_built`.
    pub build: Option<String>,
    /// The first compiler errors.
    pub build_error: Option<String>,
    /// Test runs of its commit and failures among them.
    pub runs: u32,
    pub fails: u32,
    /// This is the guilty patch.
    pub guilty: bool,
}

/// The bot's reply to a series.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeriesReply {
    pub message_id: String,
    pub in_reply_to: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    /// `dry_run`, `queued`, `sent`, `failed`.
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// A job's branch and its last night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobRow {
    pub job: String,
    pub branch: String,
    pub night_id: i64,
    pub head: Option<String>,
    pub status: String,
    pub started_at: String,
    /// The last result per matrix cell.
    pub cells: Vec<CellResult>,
}

/// One matrix cell of one night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    pub cell: String,
    pub status: String,
    pub runs: u32,
    pub fails: u32,
    pub titles: Vec<String>,
    /// The run ids of the cell (the first links to its run page).
    pub run_ids: Vec<i64>,
}

/// A regression a job found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Regression {
    pub id: i64,
    pub job: String,
    pub branch: String,
    pub cell: String,
    pub title: String,
    pub status: String,
    pub first_night: i64,
    /// The bisection started for it, and that bisection's status.
    pub bisection_id: Option<i64>,
    pub bisection_status: Option<String>,
    pub culprit: Option<String>,
}

/// One run in a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub commit: String,
    pub status: String,
    pub verdict: Option<String>,
    pub title: Option<String>,
    pub started_at: String,
}

/// One bisection in a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BisectionRow {
    pub id: i64,
    pub repo: String,
    pub good: Vec<String>,
    pub bad: String,
    pub status: String,
    /// "culprit abc123 (97 %)", "running", the error …
    pub summary: String,
    pub updated_at: String,
}

/// A job's history: one row per night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobHistory {
    pub job: String,
    pub nights: Vec<NightRow>,
    /// A night of it runs in this `csdci serve` now: the dashboard can
    /// cancel it.
    #[serde(default)]
    pub cancellable: bool,
}

/// One night of a job's branch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NightRow {
    pub id: i64,
    pub branch: String,
    pub head: Option<String>,
    pub status: String,
    pub started_at: String,
    /// Runs and failing runs over all cells (the chart).
    pub runs: u32,
    pub fails: u32,
    pub cells: Vec<CellResult>,
}

/// A run: what was tested, how long it took, what it found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunPage {
    pub id: i64,
    pub repo: String,
    pub commit: String,
    pub status: String,
    pub verdict: Option<String>,
    pub title: Option<String>,
    pub reason: Option<String>,
    /// The RunSpec fields, in order.
    pub spec: Vec<Field>,
    pub build_seconds: Option<f64>,
    pub build_cached: Option<bool>,
    pub boot_seconds: Option<f64>,
    pub test_seconds: Option<f64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub findings: Vec<Finding>,
    /// CSD-lock groups (waiter, target, function …).
    pub csd: Vec<CsdGroupRow>,
    /// scftorture statistics.
    pub scftorture: Vec<Field>,
    /// Whether the console log, the .config and the QEMU command line can be
    /// downloaded.
    pub has_console: bool,
    pub has_config: bool,
    pub has_qemu_cmdline: bool,
}

/// A named value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// One finding of a run, with its console lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub ordinal: u32,
    pub kind: String,
    pub title: String,
    /// 1-based first console line.
    pub first_line: u64,
    /// 1-based last console line (the first when unknown).
    pub last_line: u64,
}

/// One CSD-lock group of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CsdGroupRow {
    pub id: u64,
    pub waiter_cpu: Option<u32>,
    pub target_cpu: Option<u32>,
    pub func: Option<String>,
    pub csd: Option<String>,
    /// Longest wait, in seconds.
    pub max_wait_s: Option<f64>,
    pub resent: bool,
    pub reports: u32,
    /// Other groups waiting on the same CSD.
    pub shared_with: Vec<u64>,
}

/// A window of a run's console.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConsoleWindow {
    pub run_id: i64,
    /// 1-based number of the first line shown.
    pub from: u64,
    pub lines: Vec<ConsoleLine>,
    /// Lines in the whole log.
    pub total_lines: u64,
    /// Every finding of the run (jump links), whether in the window or not.
    pub findings: Vec<Finding>,
}

/// One console line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConsoleLine {
    pub n: u64,
    pub text: String,
    /// The ordinal of the finding this line belongs to.
    pub finding: Option<u32>,
}

/// A bisection: its journal, the posterior's course and the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BisectionPage {
    pub id: i64,
    pub repo: String,
    pub good: Vec<String>,
    pub bad: String,
    pub predicate: String,
    pub tester: String,
    pub status: String,
    pub error: Option<String>,
    pub steps: Vec<BisectStep>,
    pub report: Option<BisectReport>,
    pub created_at: String,
    pub updated_at: String,
    /// Fixes of its culprit validated (`csdci demo`, `csdci bisect
    /// --validate-fix`), latest first.
    #[serde(default)]
    pub fix_validations: Vec<FixCheck>,
    /// It runs in this `csdci serve` now: the dashboard can cancel it.
    #[serde(default)]
    pub cancellable: bool,
}

/// A fix of a bisection's culprit, run K times.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FixCheck {
    /// The fix commit.
    pub commit: String,
    /// Runs that counted, and failures among them.
    pub runs: u32,
    pub fails: u32,
    /// One-sided 95% upper bound on the fix's per-run failure rate.
    pub failure_rate_upper_95: f64,
    /// The per-run failure rate of the regression.
    pub regression_rate: f64,
    /// Probability that an unfixed kernel passes all runs.
    pub p_pass_if_unfixed: f64,
    /// `fixed` or `not_fixed`.
    pub verdict: String,
    pub finished_at: String,
}

/// One journalled step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BisectStep {
    pub id: i64,
    /// `build`, `run`, …
    pub kind: String,
    pub commit: String,
    pub attempt: Option<u32>,
    pub status: String,
    pub outcome: Option<String>,
    /// Built, taken from the cache, or the same tree as another commit.
    pub artifact: Option<String>,
    pub titles: Vec<String>,
    pub seconds: Option<f64>,
    pub run_id: Option<i64>,
    /// The leading candidate after this step and its posterior.
    pub top: Option<String>,
    pub confidence: Option<f64>,
    /// The leading candidates after this step (at most 5), most likely
    /// first.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
}

/// A candidate culprit and its posterior probability.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    pub commit: String,
    pub p: f64,
}

/// A finished bisection's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BisectReport {
    pub status: String,
    pub doubt: Option<String>,
    pub culprit: Option<String>,
    pub culprit_subject: Option<String>,
    pub culprit_author: Option<String>,
    pub confidence: f64,
    pub fixes: Option<String>,
    pub revert_check: String,
    pub fix_validation: Option<String>,
    pub runs: u32,
    pub builds: u32,
    pub titles: Vec<String>,
}

/// What a search found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SearchResults {
    pub query: String,
    pub runs: Vec<RunRow>,
    pub regressions: Vec<Regression>,
    pub bisections: Vec<BisectionRow>,
}

/// What the live-update stream compares: when any of it changes, the pages
/// showing it refresh.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pulse {
    pub max_run_id: i64,
    pub max_step_id: i64,
    pub max_bisection_id: i64,
    /// The bisections table's latest update (changes when one finishes).
    pub bisection_updates: i64,
    /// Finished runs (changes when a run ends).
    pub run_updates: i64,
    pub max_night_id: i64,
    /// Finished nights (changes when a night ends).
    pub night_updates: i64,
    /// The bot's series and replies (changes when one is read, tested or
    /// answered).
    #[serde(default)]
    pub series_updates: i64,
}

/// The answer to an action.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActionResult {
    pub ok: bool,
    pub message: String,
    /// The page of what it started (`/bisections/12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The RunSpec fields of an action, as typed into its form: each empty
/// field keeps csdci's default; each is checked as the command line checks
/// its flag (`--vcpus`, `--memory`, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpecForm {
    /// `--vcpus`.
    pub vcpus: String,
    /// `--memory` (`2G`, `512M`).
    pub memory: String,
    /// `--duration`, seconds.
    pub duration: String,
    /// `--scftorture` module parameters.
    pub scftorture: String,
    /// `--accel`: `auto`, `kvm`, `tcg`.
    pub accel: String,
    /// `--cmdline-extra`.
    pub cmdline_extra: String,
    /// `--silence-timeout`, seconds.
    pub silence_timeout: String,
    /// `--grace`, seconds.
    pub grace: String,
    /// `--stop-after-crash`, seconds.
    pub stop_after_crash: String,
    /// `--predicate`: `any`, `csd`, `title:REGEX`.
    pub predicate: String,
    /// `--config-fragment` files on the server, separated by spaces.
    pub config_fragments: String,
}

/// Start one run of the QEMU pipeline: a commit of a tree (a path on the
/// server) or of a job's tree, tested as the spec says (a job's first cell
/// when a job is named and no field is given).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StartRun {
    /// The commit or revision.
    pub commit: String,
    /// The git tree (path on the server).
    pub tree: String,
    /// Or a job of `--jobs`: its tree, and its spec for empty fields.
    pub job: String,
    pub spec: SpecForm,
}

/// Start a bisection: good and bad revisions of a tree (or a job's tree),
/// tested by a `--run`-style command, by the QEMU pipeline with the spec, or
/// by a job's test.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StartBisection {
    /// Good revisions, separated by spaces.
    pub good: String,
    pub bad: String,
    /// The git tree (path on the server).
    pub tree: String,
    /// Or a job of `--jobs`: its tree and its test.
    pub job: String,
    /// `--run CMD` (empty: the QEMU pipeline, or the job's test).
    pub command: String,
    /// `--timeout` of the command, seconds.
    pub timeout: String,
    /// `--deterministic`.
    pub deterministic: bool,
    /// `--confidence`.
    pub confidence: String,
    /// `--max-runs`.
    pub max_runs: String,
    /// `--verify-bad`.
    pub verify_bad: String,
    /// `--no-revert-check`.
    pub no_revert_check: bool,
    pub spec: SpecForm,
}

/// The actions page: what can be started, and what runs now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActionsPage {
    /// The server has a token: actions are on.
    pub enabled: bool,
    /// The jobs of `--jobs` (their tree and test can be used).
    pub jobs: Vec<String>,
    /// The work this `csdci serve` runs now.
    pub running: Vec<RunningWork>,
    /// Guests running at once at most (`--max-guests`).
    pub max_guests: u32,
}

/// One piece of work running in `csdci serve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunningWork {
    /// `bisection`, `night`, `run`.
    pub kind: String,
    /// What it is (`bisection #4`).
    pub what: String,
    /// Its page.
    pub url: Option<String>,
}

/// The files of a run that can be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Download {
    Console,
    Config,
    QemuCmdline,
}

/// The live console of a run: its tail when the page opened, the findings
/// so far, and where the stream of new lines resumes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LivePage {
    pub run_id: i64,
    pub commit: String,
    pub status: String,
    /// The console's last lines (complete lines only).
    pub lines: Vec<ConsoleLine>,
    /// Lines in the console so far (complete lines).
    pub total_lines: u64,
    /// Byte offset just past the last line shown: the stream starts there.
    pub offset: u64,
    /// Findings so far (from the console analyzer, fed as the guest writes).
    pub findings: Vec<LiveMark>,
    /// The bisection this run belongs to, with its latest steps.
    pub bisection: Option<BisectProgress>,
}

/// A finding of a live console: the line it starts on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LiveMark {
    pub line: u64,
    pub ordinal: u32,
    pub kind: String,
    pub title: String,
}

/// A running bisection's progress: its status and latest steps.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BisectProgress {
    pub id: i64,
    pub status: String,
    /// Steps journalled so far.
    pub step_count: u32,
    /// The latest steps, oldest first.
    pub steps: Vec<BisectStep>,
}

/// One event of a live console stream: the lines written since the last one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LiveChunk {
    /// Byte offset just past the last line sent (the event's id: a
    /// reconnecting browser resumes there).
    pub offset: u64,
    pub lines: Vec<ConsoleLine>,
    /// Findings that appeared with these lines (their first line may be in
    /// an earlier chunk).
    pub marks: Vec<LiveMark>,
    pub status: String,
    /// The bisection's progress, when it changed.
    pub bisection: Option<BisectProgress>,
    /// More bytes are waiting: the next chunk is read at once.
    pub more: bool,
    /// The run is over and its console read to the end.
    pub done: bool,
}

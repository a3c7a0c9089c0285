//! Typed progress events: what a bisection, a build and a run are doing now.
//! The layers below emit them; each front end draws them its own way (the
//! command line with indicatif on a terminal and as log lines otherwise; the
//! web will stream them; the bot ignores them).

use std::sync::Arc;

use serde::Serialize;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A line for a person about what is happening.
    Note { text: String },
    /// The bisection tests a commit: step `step` (counting runs), the run's
    /// kind (`run`, `merge_base_run`, `tip_run`, `revert_run`), and the
    /// leading candidate with its posterior probability before the run.
    Step {
        step: u32,
        kind: String,
        commit: String,
        subject: String,
        attempt: u32,
        leader: Option<String>,
        leader_p: f64,
        candidates: usize,
    },
    /// Preparing (building, checking out) a commit started.
    BuildStarted { commit: String },
    /// Preparing it ended: `ready`, `untestable`, `infra` or `same_as <sha>`.
    BuildFinished {
        commit: String,
        outcome: String,
        seconds: f64,
    },
    /// A stage of a build or run (`compiling`, `booting`, `testing`, ...).
    Stage { name: String },
    /// The workload started and runs this long at most.
    Workload { seconds: u64 },
    /// A line of build output or of the console.
    Output { line: String },
    /// A crash finding appeared on the console.
    Finding { title: String },
    /// One run ended (`pass`, `fail`, `other`, `skip`, `infra`).
    RunFinished {
        kind: String,
        commit: String,
        attempt: u32,
        outcome: String,
        seconds: f64,
    },
}

/// Receives events (from any thread).
pub trait Events: Send + Sync {
    /// Handles one event.
    fn emit(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Events for F {
    fn emit(&self, event: &Event) {
        self(event)
    }
}

/// A shared event receiver.
pub type Sink = Arc<dyn Events>;

/// A receiver that drops every event.
pub fn ignore() -> Sink {
    Arc::new(|_: &Event| {})
}

/// A receiver that writes the events a service log wants (notes, builds,
/// runs, findings) as `tracing` lines starting with `what`; the rest at debug.
pub fn log_lines(what: String) -> Sink {
    Arc::new(move |e: &Event| match e {
        Event::Note { text } => tracing::info!("{what}: {text}"),
        Event::RunFinished {
            commit,
            attempt,
            outcome,
            seconds,
            ..
        } => tracing::info!(
            "{what}: run {attempt} of {}: {outcome} ({seconds:.0} s)",
            short(commit)
        ),
        Event::Finding { title } => tracing::info!("{what}: finding: {title}"),
        Event::BuildFinished {
            commit,
            outcome,
            seconds,
            ..
        } => tracing::info!(
            "{what}: build of {}: {outcome} ({seconds:.0} s)",
            short(commit)
        ),
        other => tracing::debug!("{what}: {other:?}"),
    })
}

/// The first 12 characters of a sha, as commits are shown.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

//! Drawing progress [`Event`]s: on a terminal, two live lines under the log
//! (where the bisection is and what the current build or run is doing, with
//! the workload's seconds left); otherwise plain lines, one per note.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, Events, Sink, short};

/// Where plain lines go.
#[derive(Debug, Clone, Copy)]
pub enum Out {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What the live lines show now.
#[derive(Default)]
struct Now {
    /// "step 4: testing 3f2a1c1b2c3d (run 2)".
    step: String,
    /// "culprit 0785029e0b4a at 91%".
    leader: String,
    /// The stage of the current build or run.
    stage: String,
    /// When the workload started, and how long it lasts.
    workload: Option<(Instant, u64)>,
    /// Finding titles already shown for the current run.
    shown: HashSet<String>,
}

/// Draws events (see the module documentation).
pub struct Draw {
    prefix: String,
    out: Out,
    live: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    now: Mutex<Now>,
}

impl Draw {
    /// A drawer prefixing plain lines with `prefix`; live lines when `out`'s
    /// stream and standard error are terminals.
    pub fn new(prefix: impl Into<String>, out: Out) -> Arc<Self> {
        let tty = std::io::stderr().is_terminal()
            && match out {
                Out::Stdout => std::io::stdout().is_terminal(),
                Out::Stderr => true,
            };
        let live = tty.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let status = multi.add(ProgressBar::new_spinner().with_style(style));
            let detail = multi.add(
                ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("    {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            );
            status.enable_steady_tick(Duration::from_millis(200));
            (multi, status, detail)
        });
        Arc::new(Draw {
            prefix: prefix.into(),
            out,
            live,
            now: Mutex::new(Now::default()),
        })
    }

    /// The drawer as an event sink.
    pub fn sink(self: &Arc<Self>) -> Sink {
        self.clone()
    }

    /// Prints a line above the live lines (or plainly).
    pub fn line(&self, text: &str) {
        let line = format!("{}{text}", self.prefix);
        match &self.live {
            Some((multi, ..)) => {
                let _ = multi.println(line);
            }
            None => match self.out {
                Out::Stdout => println!("{line}"),
                Out::Stderr => eprintln!("{line}"),
            },
        }
    }

    /// Removes the live lines (before the final report is printed).
    pub fn finish(&self) {
        if let Some((multi, status, detail)) = &self.live {
            status.finish_and_clear();
            detail.finish_and_clear();
            let _ = multi.clear();
        }
    }

    fn status(&self, now: &Now) -> String {
        match (now.step.is_empty(), now.leader.is_empty()) {
            (true, _) => now.stage.clone(),
            (false, true) => now.step.clone(),
            (false, false) => format!("{} · {}", now.step, now.leader),
        }
    }

    fn detail(&self, now: &Now, line: &str) -> String {
        let line: String = line.trim().chars().take(100).collect();
        match now.workload {
            Some((t, secs)) => {
                let left = secs.saturating_sub(t.elapsed().as_secs());
                format!("{}: {left} s of {secs} s left | {line}", now.stage)
            }
            None => format!("{}: {line}", now.stage),
        }
    }
}

impl Events for Draw {
    fn emit(&self, event: &Event) {
        let Ok(mut now) = self.now.lock() else {
            return;
        };
        match event {
            Event::Note { text } => self.line(text),
            Event::Finding { title } => {
                // Once per title and run: a CSD storm prints dozens.
                if now.shown.insert(title.clone()) {
                    self.line(&format!("finding: {title}"));
                }
            }
            Event::Step {
                step,
                kind,
                commit,
                attempt,
                leader,
                leader_p,
                candidates,
                ..
            } => {
                let what = match kind.as_str() {
                    "run" => "testing",
                    "merge_base_run" => "testing the merge base",
                    "tip_run" => "running the bad tip",
                    "revert_run" => "testing the revert",
                    _ => "running",
                };
                now.step = format!(
                    "step {step}: {what} {} (run {})",
                    short(commit),
                    attempt + 1
                );
                now.leader = match leader {
                    Some(l) if *leader_p >= 0.01 => format!(
                        "culprit {} at {:.0}% of {candidates} candidates",
                        short(l),
                        leader_p * 100.0
                    ),
                    _ => String::new(),
                };
                now.workload = None;
                now.shown.clear();
            }
            Event::BuildStarted { commit } => {
                now.stage = format!("preparing {}", short(commit));
                if !now.step.is_empty() {
                    now.step = format!("preparing {}", short(commit));
                }
                now.workload = None;
            }
            Event::Stage { name } => {
                now.stage = name.clone();
                if name != "testing" {
                    now.workload = None;
                }
            }
            Event::Workload { seconds } => now.workload = Some((Instant::now(), *seconds)),
            Event::Output { line } => {
                if let Some((_, _, detail)) = &self.live {
                    detail.set_message(self.detail(&now, line));
                }
            }
            Event::BuildFinished { .. } | Event::RunFinished { .. } => {
                now.workload = None;
            }
        }
        if let Some((_, status, _)) = &self.live {
            status.set_message(self.status(&now));
        } else if let Event::Step { .. } = event {
            tracing::debug!("{}", self.status(&now));
        }
    }
}

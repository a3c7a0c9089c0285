//! The patch bot inside `csdci serve`: one thread polls the `kind: bot` job
//! files of the jobs directory, each job at its `poll` interval, beside the
//! nightly scheduler. Between cycles the thread waits on a condition
//! variable with a timeout (the next job's due time), so it does not spin
//! and a [`Control::stop`] (SIGTERM) or [`Control::reload`] (SIGHUP) wakes
//! it at once. A reload reads the job files again: an invalid file is
//! logged (`FILE:LINE:COLUMN: field: message`) and the job read from it
//! before is kept; a new job is polled at once, a kept one at its time.
//!
//! A cycle that is testing a series is not cut short by `stop`: the builds
//! and runs in the sandbox watch csdci's interrupt flag (set by SIGTERM),
//! and the series, left `testing`, is tested again on the next start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::jobs::bot::BotJob;
use crate::store::Store;

/// Stops or reloads a running [`run`].
#[derive(Debug, Default)]
pub struct Control {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    stop: bool,
    reload: bool,
}

/// Why [`Control::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woken {
    Stop,
    Reload,
    Due,
}

impl Control {
    /// A control to hand to [`run`] (and to whoever takes the signals).
    pub fn new() -> Arc<Control> {
        Arc::new(Control::default())
    }

    /// Ends [`run`] once its current cycle is over.
    pub fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        self.wake.notify_all();
    }

    /// Makes [`run`] read the job files again.
    pub fn reload(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).reload = true;
        self.wake.notify_all();
    }

    /// Whether [`Control::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop
    }

    /// Waits until `deadline` (none: for ever), a stop or a reload.
    fn wait(&self, deadline: Option<Instant>) -> Woken {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.stop {
                return Woken::Stop;
            }
            if std::mem::take(&mut st.reload) {
                return Woken::Reload;
            }
            match deadline {
                None => st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Woken::Due;
                    }
                    st = self
                        .wake
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// Whether `jobs_dir` is a directory holding a `kind: bot` job file.
pub fn has_bot_jobs(jobs_dir: &Path) -> bool {
    jobs_dir.is_dir() && !crate::jobs::bot::load_dir(jobs_dir).is_empty()
}

/// Reads the bot job files of `dir` into `jobs` (file → job); an invalid
/// file is logged and its previous job, if any, kept.
fn load(dir: &Path, jobs: &mut Vec<(PathBuf, BotJob)>) {
    let mut fresh = Vec::new();
    let files = if dir.is_dir() {
        crate::jobs::bot::load_dir(dir)
    } else {
        Vec::new()
    };
    for (file, r) in files {
        match r {
            Ok(j) => fresh.push((file, j)),
            Err(errs) => {
                for e in errs {
                    tracing::error!("bot: {e}");
                }
                if let Some(old) = jobs.iter().find(|(f, _)| *f == file) {
                    tracing::warn!(
                        "bot job {}: {} is invalid; keeping the version read before",
                        old.1.name,
                        file.display()
                    );
                    fresh.push(old.clone());
                }
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    fresh.retain(|(f, j)| {
        let new = names.insert(j.name.clone());
        if !new {
            tracing::error!(
                "bot: {}: a second job named {}; ignored",
                f.display(),
                j.name
            );
        }
        new
    });
    *jobs = fresh;
}

/// Polls the bot jobs of `jobs_dir` with the store of `data_dir` until
/// `control` is stopped (or csdci is interrupted). Replies go out through
/// each job's `reply.smtp` (none: they are only queued in the store).
pub fn run(data_dir: &Path, jobs_dir: &Path, control: &Control) -> crate::Result<()> {
    // Opened once there is a job (a serve without bot jobs leaves the
    // store to the scheduler).
    let mut store: Option<Store> = None;
    let opts = crate::bot::Options { dry_run: false };
    let mut jobs = Vec::new();
    load(jobs_dir, &mut jobs);
    announce(&jobs, false, 0);
    let mut next: HashMap<String, Instant> = HashMap::new();
    loop {
        for (_, job) in &jobs {
            if control.stopped() || crate::interrupt::interrupted() {
                return Ok(());
            }
            if next.get(&job.name).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            let st = match &store {
                Some(s) => s,
                None => store.insert(Store::open(data_dir)?),
            };
            let mut out = Vec::new();
            match crate::bot::cycle(st, job, &opts, &mut out) {
                Ok(c) => tracing::info!(
                    "bot {}: {} new mails ({} skipped), {} series tested, {} replies{}",
                    c.job,
                    c.new_mails,
                    c.skipped,
                    c.tested.len(),
                    c.replies,
                    c.poll_error
                        .map(|e| format!("; poll failed: {e}"))
                        .unwrap_or_default()
                ),
                Err(e) => tracing::error!("bot {}: {e}", job.name),
            }
            for line in String::from_utf8_lossy(&out).lines() {
                tracing::info!("bot {line}");
            }
            next.insert(job.name.clone(), Instant::now() + job.poll);
        }
        let due = jobs
            .iter()
            .map(|(_, j)| next.get(&j.name).copied().unwrap_or_else(Instant::now))
            .min();
        match control.wait(due) {
            Woken::Stop => return Ok(()),
            Woken::Reload => {
                let before = jobs.len();
                load(jobs_dir, &mut jobs);
                next.retain(|name, _| jobs.iter().any(|(_, j)| j.name == *name));
                announce(&jobs, true, before);
            }
            Woken::Due => {}
        }
    }
}

/// Logs the bot jobs in effect (nothing while there are none and were none).
fn announce(jobs: &[(PathBuf, BotJob)], reload: bool, before: usize) {
    if jobs.is_empty() && before == 0 {
        return;
    }
    let names: Vec<&str> = jobs.iter().map(|(_, j)| j.name.as_str()).collect();
    tracing::info!(
        "bot: {}{} job{}{}{}",
        if reload {
            "job files read again: "
        } else {
            "polling "
        },
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" },
        if names.is_empty() { "" } else { ": " },
        names.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_wakes_on_stop_reload_and_deadline() {
        let c = Control::new();
        let t = Instant::now();
        assert_eq!(
            c.wait(Some(t + Duration::from_millis(20))),
            Woken::Due,
            "deadline"
        );
        c.reload();
        assert_eq!(c.wait(None), Woken::Reload);
        let c2 = c.clone();
        let h = std::thread::spawn(move || c2.wait(None));
        std::thread::sleep(Duration::from_millis(20));
        c.stop();
        assert_eq!(h.join().unwrap(), Woken::Stop);
        assert!(c.stopped());
    }
}

//! The scheduler of `csdci serve`: fires each job's nights by its cron
//! schedule, one thread per night, never two nights of one job at once.
//!
//! # Slots
//! A *slot* is a time the schedule names (`0 2 * * *`: 02:00 every day, in
//! the job's time zone). The store keeps the last slot each job fired for
//! (`job_state.last_slot`, written *before* the night starts, so a crash
//! never fires the same slot twice). At any time the job's *due* slot is
//! [`due_slot`]: the **latest** slot after the last one and not after now.
//! So:
//! - after downtime the missed nights run **once**, for the newest missed
//!   slot (not one night per missed slot);
//! - a job that never fired counts from when this scheduler first saw it (at
//!   start, or the reload that added it): it does not fire for slots before
//!   that, and a job whose first slot is in the future waits for it. (The
//!   store only learns about a job when it first fires, so a job that never
//!   fired has nothing to catch up after a restart either.)
//! - a slot that falls due while the job's previous night still runs waits
//!   for that night to end, then fires once (however many slots passed);
//! - daylight saving time follows croner (see [`crate::jobs::schedule`]): a
//!   02:30 job in Europe/Berlin fires once on the spring-forward day (03:00
//!   CEST) and once on the fall-back day (the first 02:30).
//!
//! # The loop
//! [`Scheduler::run`] loads the job files, then waits on one channel with a
//! timeout to the next slot (at most [`MAX_SLEEP`], so a wall clock step or a
//! suspend is noticed): no polling. Messages are a night's end, a reload
//! (SIGHUP: the job files are read again; an invalid file is reported and the
//! previous version of its job kept) and a stop (SIGTERM/SIGINT: nothing more
//! fires; the running nights stop by themselves through the process's
//! interrupt flag, see [`crate::interrupt`], and are joined). Each night runs
//! [`night::run_job`] on its own thread with its own [`Store`] (a SQLite
//! connection is not `Sync`), all of them sharing one [`Slots`] bound on
//! guests. `run_job` takes a per-job lock, so another csdci process running
//! the job is refused (reported as busy), and resumes an unfinished night:
//! at start, a job whose night was left `running` (csdci stopped or crashed
//! during it) fires at once without a new slot.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;

use crate::events::Sink;
use crate::jobs::{Job, Schedule, load_paths};
use crate::service::night::{self, JobNight};
use crate::service::slots::Slots;
use crate::store::Store;

/// The longest the loop sleeps without looking at the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(300);

/// How far before croner's backward answer the forward walk of [`due_slot`]
/// starts: more than any daylight-saving shift (2 h at most).
const DST_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(3);

/// A slot as the store keeps it: RFC 3339, UTC, whole seconds.
pub fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a slot the store keeps (`None` when it is not RFC 3339).
pub fn parse_slot(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a job's slots count from: its last slot, or when this scheduler
/// first saw it when it never fired (or the stored slot is unreadable).
pub fn since(last_slot: Option<&str>, first_seen: DateTime<Utc>) -> DateTime<Utc> {
    last_slot.and_then(parse_slot).unwrap_or(first_seen)
}

/// The slot due at `now`: the latest slot of `schedule` after `since` and not
/// after `now`; `None` when there is none (the job waits).
///
/// Slots are the forward sequence of [`Schedule::next_after`] (the rule the
/// rest of csdci shows users). To find the latest without walking every slot
/// since a long downtime, the walk starts [`DST_MARGIN`] before croner's
/// backward search's answer (the two searches may disagree about times a
/// clock change skips or repeats, never by more than the shift).
pub fn due_slot(
    schedule: &Schedule,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let first = schedule.next_after(since)?.with_timezone(&Utc);
    if first > now {
        return None;
    }
    let walk = |from: DateTime<Utc>| {
        let mut at = from;
        let mut due = None;
        while let Some(n) = schedule.next_after(at).map(|n| n.with_timezone(&Utc)) {
            if n > now {
                break;
            }
            due = Some(n);
            at = n;
        }
        due
    };
    let hint = previous(schedule, now)
        .map(|p| (p - DST_MARGIN).max(since))
        .filter(|h| *h > since);
    hint.and_then(walk).or_else(|| walk(since))
}

/// croner's last match at or before `now` (a hint for [`due_slot`]).
fn previous(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(&schedule.expr)
        .ok()?;
    cron.find_previous_occurrence(&now.with_timezone(&schedule.tz), true)
        .ok()
        .map(|p| p.with_timezone(&Utc))
}

/// The next time the loop has to look at `schedule`: its first slot after
/// `now` (`None`: the schedule names no future time).
pub fn next_wake(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(now).map(|n| n.with_timezone(&Utc))
}

/// How long to sleep at `now` until `wake` (none: [`MAX_SLEEP`]), at most
/// [`MAX_SLEEP`].
pub fn sleep_for(wake: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    wake.map_or(MAX_SLEEP, |w| {
        (w - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)
    })
}

/// How the scheduler runs nights.
#[derive(Debug, Clone)]
pub struct Options {
    /// Guests running at once across all jobs (`--max-guests`).
    pub max_guests: usize,
    /// The dashboard's public URL, for links in mails.
    pub public_url: Option<String>,
    /// The work of this `csdci serve` (the dashboard's bisections and runs):
    /// nights share its guest slots and can be cancelled through it.
    pub work: Option<Arc<crate::service::work::Work>>,
}

/// How a night ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// It ran (each branch's status is in the night).
    Done { night: JobNight },
    /// Another csdci process runs this job's night now.
    Busy,
    /// Stopped by SIGTERM/SIGINT; the night resumes on the next start.
    Interrupted,
    /// It could not run.
    Failed { error: String },
}

/// What the scheduler reports (the front end draws it; see `csdci serve`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// The jobs in effect, after the start or a reload.
    Jobs {
        /// Each job and its next slot (RFC 3339, UTC; none: never).
        jobs: Vec<(String, Option<String>)>,
        /// Jobs new since the last load.
        added: Vec<String>,
        /// Jobs gone since the last load.
        removed: Vec<String>,
        /// True for a reload (SIGHUP), false at the start.
        reload: bool,
    },
    /// A problem in a job file: `FILE:LINE:COLUMN: field: message`.
    Invalid {
        /// The file.
        file: PathBuf,
        /// The line, as `csdci job check` prints it.
        line: String,
    },
    /// A job's file became invalid; its previous version stays in effect.
    KeptPrevious {
        /// The job.
        job: String,
        /// Its file.
        file: PathBuf,
    },
    /// The job directory could not be read at a reload; every job is kept.
    KeptAll {
        /// Why.
        reason: String,
    },
    /// A night started.
    Fired {
        /// The job.
        job: String,
        /// The slot it runs for (none: it resumes a night left running).
        slot: Option<String>,
        /// Seconds between the slot and the start (downtime, or the
        /// previous night running late).
        late_s: i64,
    },
    /// A slot fell due while the job's previous night still runs; it fires
    /// when that night ends.
    Queued {
        /// The job.
        job: String,
        /// The slot.
        slot: String,
    },
    /// A night ended.
    Finished {
        /// The job.
        job: String,
        /// How.
        outcome: Outcome,
    },
    /// Stopping: no more nights fire; these still run and are waited for.
    Stopping {
        /// Jobs whose nights still run.
        running: Vec<String>,
    },
    /// Something failed outside a night (the store).
    Error {
        /// The job concerned, if any.
        job: Option<String>,
        /// What.
        message: String,
    },
}

/// Where the scheduler's notices and each night's events go.
pub trait Observer: Send + Sync {
    /// Handles one notice.
    fn notice(&self, notice: &Notice);
    /// The event sink of a night of `job`.
    fn night_events(&self, job: &str) -> Sink;
}

enum Msg {
    Reload,
    Stop,
    Done { job: String, outcome: Outcome },
}

/// Asks a running scheduler to reload or stop (from any thread: the signal
/// thread of `csdci serve`, a test).
#[derive(Clone)]
pub struct Control(Sender<Msg>);

impl Control {
    /// Reads the job files again (SIGHUP).
    pub fn reload(&self) {
        let _ = self.0.send(Msg::Reload);
    }

    /// Fires nothing more; waits for the running nights and returns.
    pub fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

/// The receiving end of a [`Control`], handed to [`Scheduler::run`].
pub struct Inbox {
    rx: Receiver<Msg>,
    tx: Sender<Msg>,
}

/// A control and its inbox.
pub fn control() -> (Control, Inbox) {
    let (tx, rx) = mpsc::channel();
    (Control(tx.clone()), Inbox { rx, tx })
}

/// A job in effect.
#[derive(Debug, Clone)]
struct Entry {
    job: Job,
    /// When this scheduler first saw the job (what a job that never fired
    /// counts its slots from).
    first_seen: DateTime<Utc>,
}

/// The jobs in effect and the file each came from: what a reload changes.
#[derive(Debug, Default)]
pub struct JobSet {
    jobs: BTreeMap<String, Entry>,
    /// File → the name of the job last read from it.
    files: HashMap<PathBuf, String>,
}

impl JobSet {
    /// The jobs' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.jobs.keys().cloned().collect()
    }

    /// Job `name`.
    pub fn get(&self, name: &str) -> Option<&Job> {
        self.jobs.get(name).map(|e| &e.job)
    }

    /// When job `name` was first seen.
    pub fn first_seen(&self, name: &str) -> Option<DateTime<Utc>> {
        self.jobs.get(name).map(|e| e.first_seen)
    }

    /// The number of jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when there is no job.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Reads `dir` again at `now`: valid files replace their jobs; an
    /// invalid file is reported and the job last read from it kept; jobs of
    /// files that are gone are dropped. A directory that cannot be read (or
    /// holds no job file) keeps every job when there were some. Returns what
    /// happened, the [`Notice::Jobs`] last.
    pub fn reload(&mut self, dir: &Path, now: DateTime<Utc>, reload: bool) -> Vec<Notice> {
        let mut notices = Vec::new();
        let loaded = load_paths(&[dir.to_path_buf()]);
        let dir_error = loaded.len() == 1 && loaded[0].0 == dir && loaded[0].1.is_err();
        let mut jobs: BTreeMap<String, Entry> = BTreeMap::new();
        let mut files = HashMap::new();
        let mut kept = Vec::new();
        for (file, r) in loaded {
            match r {
                Ok(job) => {
                    let first_seen = self.jobs.get(&job.name).map_or(now, |e| e.first_seen);
                    files.insert(file, job.name.clone());
                    jobs.insert(job.name.clone(), Entry { job, first_seen });
                }
                Err(errors) => {
                    for e in &errors {
                        notices.push(Notice::Invalid {
                            file: file.clone(),
                            line: e.line_text(),
                        });
                    }
                    if let Some(old) = self.files.get(&file).and_then(|n| self.jobs.get(n)) {
                        kept.push((file, old.clone()));
                    }
                }
            }
        }
        if dir_error && !self.jobs.is_empty() {
            notices.push(Notice::KeptAll {
                reason: format!("{} holds no readable job file", dir.display()),
            });
            notices.push(self.jobs_notice(now, Vec::new(), Vec::new(), reload));
            return notices;
        }
        for (file, old) in kept {
            // A valid file may have taken the name meanwhile: it wins.
            if jobs.contains_key(&old.job.name) {
                continue;
            }
            notices.push(Notice::KeptPrevious {
                job: old.job.name.clone(),
                file: file.clone(),
            });
            files.insert(file, old.job.name.clone());
            jobs.insert(old.job.name.clone(), old);
        }
        let added = jobs
            .keys()
            .filter(|n| !self.jobs.contains_key(*n))
            .cloned()
            .collect();
        let removed = self
            .jobs
            .keys()
            .filter(|n| !jobs.contains_key(*n))
            .cloned()
            .collect();
        self.jobs = jobs;
        self.files = files;
        notices.push(self.jobs_notice(now, added, removed, reload));
        notices
    }

    fn jobs_notice(
        &self,
        now: DateTime<Utc>,
        added: Vec<String>,
        removed: Vec<String>,
        reload: bool,
    ) -> Notice {
        Notice::Jobs {
            jobs: self
                .jobs
                .values()
                .map(|e| {
                    let next = next_wake(&e.job.schedule, now).map(slot_text);
                    (e.job.name.clone(), next)
                })
                .collect(),
            added,
            removed,
            reload,
        }
    }
}

/// The scheduler loop (see the module documentation).
pub struct Scheduler {
    data_dir: PathBuf,
    jobs_dir: PathBuf,
    store: Store,
    jobs: JobSet,
    night_opts: night::Options,
    observer: Arc<dyn Observer>,
    inbox: Inbox,
    running: HashMap<String, JoinHandle<()>>,
    /// The slot last reported as queued, per running job.
    queued: HashMap<String, DateTime<Utc>>,
    /// Where its nights are registered (cancellable from the dashboard).
    work: Option<Arc<crate::service::work::Work>>,
}

impl Scheduler {
    /// Runs the scheduler on the job files of `jobs_dir` with the store in
    /// `data_dir` until [`Control::stop`]; returns once every night it
    /// started has ended. A `jobs_dir` that is not a directory, or holds no
    /// valid job, is a usage error (each problem reported first).
    pub fn run(
        data_dir: &Path,
        jobs_dir: &Path,
        opts: &Options,
        inbox: Inbox,
        observer: Arc<dyn Observer>,
    ) -> crate::Result<()> {
        if !jobs_dir.is_dir() {
            return Err(crate::Error::Usage(format!(
                "--jobs {}: not a directory of job files (jobs/*.yaml)",
                jobs_dir.display()
            )));
        }
        let mut jobs = JobSet::default();
        let notices = jobs.reload(jobs_dir, Utc::now(), false);
        if jobs.is_empty() {
            for n in &notices {
                if !matches!(n, Notice::Jobs { .. }) {
                    observer.notice(n);
                }
            }
            return Err(crate::Error::Usage(format!(
                "{}: no valid job file (see the errors above; `csdci job check {}` shows them too)",
                jobs_dir.display(),
                jobs_dir.display()
            )));
        }
        let store = Store::open(data_dir)?;
        for n in &notices {
            observer.notice(n);
        }
        let mut s = Scheduler {
            data_dir: data_dir.to_path_buf(),
            jobs_dir: jobs_dir.to_path_buf(),
            store,
            jobs,
            night_opts: night::Options {
                public_url: opts.public_url.clone(),
                guests: Some(
                    opts.work
                        .as_ref()
                        .map_or_else(|| Arc::new(Slots::new(opts.max_guests)), |w| w.guests()),
                ),
            },
            work: opts.work.clone(),
            observer,
            inbox,
            running: HashMap::new(),
            queued: HashMap::new(),
        };
        s.resume_unfinished();
        s.serve();
        Ok(())
    }

    /// At start: fires each job with a night left running (and no slot due:
    /// a due slot fires below and its night resumes the unfinished one).
    fn resume_unfinished(&mut self) {
        let now = Utc::now();
        for name in self.jobs.names() {
            let Some(job) = self.jobs.get(&name).cloned() else {
                continue;
            };
            if self.due(&job, now).is_some() {
                continue;
            }
            let unfinished = job
                .branches
                .iter()
                .any(|b| matches!(self.store.night_unfinished(&name, b), Ok(Some(_))));
            if unfinished {
                self.fire(&job, None, now);
            }
        }
    }

    /// The slot due for `job` at `now`, from the store's last slot.
    fn due(&self, job: &Job, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let last = match self.store.job_last_slot(&job.name) {
            Ok(l) => l,
            Err(e) => {
                self.observer.notice(&Notice::Error {
                    job: Some(job.name.clone()),
                    message: format!("reading its last slot: {e}"),
                });
                return None;
            }
        };
        let first_seen = self.jobs.first_seen(&job.name).unwrap_or(now);
        due_slot(&job.schedule, since(last.as_deref(), first_seen), now)
    }

    fn serve(&mut self) {
        loop {
            let now = Utc::now();
            let mut wake: Option<DateTime<Utc>> = None;
            for name in self.jobs.names() {
                let Some(job) = self.jobs.get(&name).cloned() else {
                    continue;
                };
                if let Some(slot) = self.due(&job, now) {
                    if self.running.contains_key(&name) {
                        if self.queued.get(&name) != Some(&slot) {
                            self.queued.insert(name.clone(), slot);
                            self.observer.notice(&Notice::Queued {
                                job: name.clone(),
                                slot: slot_text(slot),
                            });
                        }
                    } else {
                        self.fire(&job, Some(slot), now);
                    }
                }
                if let Some(n) = next_wake(&job.schedule, now) {
                    wake = Some(wake.map_or(n, |w| w.min(n)));
                }
            }
            let msg = match self.inbox.rx.recv_timeout(sleep_for(wake, Utc::now())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                // Unreachable: the inbox holds a sender itself.
                Err(RecvTimeoutError::Disconnected) => Msg::Stop,
            };
            match msg {
                Msg::Done { job, outcome } => self.ended(job, outcome),
                Msg::Reload => {
                    for n in self.jobs.reload(&self.jobs_dir, Utc::now(), true) {
                        self.observer.notice(&n);
                    }
                }
                Msg::Stop => break,
            }
        }
        let mut running: Vec<String> = self.running.keys().cloned().collect();
        running.sort();
        self.observer.notice(&Notice::Stopping { running });
        while !self.running.is_empty() {
            match self.inbox.rx.recv() {
                Ok(Msg::Done { job, outcome }) => self.ended(job, outcome),
                Ok(Msg::Reload | Msg::Stop) => {}
                Err(_) => break,
            }
        }
    }

    fn ended(&mut self, job: String, outcome: Outcome) {
        if let Some(h) = self.running.remove(&job) {
            let _ = h.join();
        }
        self.queued.remove(&job);
        self.observer.notice(&Notice::Finished { job, outcome });
    }

    /// Records `slot` (before anything runs) and starts a night of `job`.
    fn fire(&mut self, job: &Job, slot: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        if let Some(s) = slot
            && let Err(e) = self.store.job_set_slot(&job.name, &slot_text(s))
        {
            self.observer.notice(&Notice::Error {
                job: Some(job.name.clone()),
                message: format!("recording slot {}: {e}; not firing it", slot_text(s)),
            });
            return;
        }
        self.observer.notice(&Notice::Fired {
            job: job.name.clone(),
            slot: slot.map(slot_text),
            late_s: slot.map_or(0, |s| (now - s).num_seconds().max(0)),
        });
        let data_dir = self.data_dir.clone();
        let opts = self.night_opts.clone();
        let events = self.observer.night_events(&job.name);
        let tx = self.inbox.tx.clone();
        let night_job = job.clone();
        let work = self.work.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("night {}", job.name))
            .spawn(move || {
                let night = || run_night(&data_dir, &night_job, &opts, &events);
                let outcome = match &work {
                    Some(w) => w.run_here(
                        crate::service::work::Key::Night(night_job.name.clone()),
                        night,
                    ),
                    None => night(),
                };
                let _ = tx.send(Msg::Done {
                    job: night_job.name.clone(),
                    outcome,
                });
            });
        match spawned {
            Ok(h) => {
                self.running.insert(job.name.clone(), h);
            }
            Err(e) => self.observer.notice(&Notice::Error {
                job: Some(job.name.clone()),
                message: format!("starting its night's thread: {e}"),
            }),
        }
    }
}

/// One night on the calling thread, with its own store.
fn run_night(data_dir: &Path, job: &Job, opts: &night::Options, events: &Sink) -> Outcome {
    let store = match Store::open(data_dir) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Failed {
                error: format!("store: {e}"),
            };
        }
    };
    match night::run_job(&store, job, opts, events) {
        Ok(n) => {
            let _ = store.job_set_finished(&job.name);
            Outcome::Done { night: n }
        }
        Err(e) if e.is_busy() => Outcome::Busy,
        Err(e) if e.is_interrupt() => Outcome::Interrupted,
        Err(e) => {
            let _ = store.job_set_finished(&job.name);
            Outcome::Failed {
                error: e.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_slot(s).unwrap()
    }

    fn sched(expr: &str, tz: Tz) -> Schedule {
        Schedule::parse(expr, tz).unwrap()
    }

    /// Simulates the loop from `start` to `end`, waking every minute (more
    /// often than it does), recording each fired slot as the store would.
    fn simulate(s: &Schedule, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut last: Option<DateTime<Utc>> = None;
        let mut fired = Vec::new();
        let mut now = start;
        while now <= end {
            if let Some(d) = due_slot(s, last.unwrap_or(start), now) {
                fired.push(d);
                last = Some(d);
            }
            now += chrono::TimeDelta::seconds(37);
        }
        fired
    }

    #[test]
    fn catch_up_after_downtime_fires_the_latest_slot_once() {
        let s = sched("0 2 * * *", Tz::UTC);
        let last = utc("2026-01-01T02:00:00Z");
        let now = utc("2026-06-10T12:00:00Z");
        assert_eq!(due_slot(&s, last, now), Some(utc("2026-06-10T02:00:00Z")));
        // Once recorded, nothing more is due until tomorrow's slot.
        let last = utc("2026-06-10T02:00:00Z");
        assert_eq!(due_slot(&s, last, now), None);
        assert_eq!(due_slot(&s, last, utc("2026-06-11T01:59:59Z")), None);
        assert_eq!(
            due_slot(&s, last, utc("2026-06-11T02:00:00Z")),
            Some(utc("2026-06-11T02:00:00Z"))
        );
        assert_eq!(next_wake(&s, now), Some(utc("2026-06-11T02:00:00Z")));
    }

    #[test]
    fn a_minutely_job_years_behind_fires_once_for_the_current_minute() {
        let s = sched("* * * * *", Tz::UTC);
        let last = utc("2016-03-01T00:00:00Z");
        let now = utc("2026-03-01T10:20:30Z");
        assert_eq!(due_slot(&s, last, now), Some(utc("2026-03-01T10:20:00Z")));
        assert_eq!(due_slot(&s, utc("2026-03-01T10:20:00Z"), now), None);
    }

    #[test]
    fn a_sparse_schedule_far_behind() {
        // Every minute of January only, looked at in December: the latest
        // slot is the last minute of January.
        let s = sched("* * * 1 *", Tz::UTC);
        let last = utc("2020-01-05T00:00:00Z");
        let now = utc("2026-12-01T00:00:00Z");
        assert_eq!(due_slot(&s, last, now), Some(utc("2026-01-31T23:59:00Z")));
        // Leap days only.
        let s = sched("0 0 29 2 *", Tz::UTC);
        let now = utc("2031-01-01T00:00:00Z");
        assert_eq!(
            due_slot(&s, utc("2001-01-01T00:00:00Z"), now),
            Some(utc("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn first_start_does_not_fire_slots_before_it_and_waits_for_the_first() {
        let s = sched("0 12 * * *", Tz::UTC);
        let started = utc("2026-06-10T12:00:30Z");
        let first_seen = since(None, started);
        assert_eq!(first_seen, started);
        assert_eq!(due_slot(&s, first_seen, utc("2026-06-10T12:05:00Z")), None);
        assert_eq!(next_wake(&s, started), Some(utc("2026-06-11T12:00:00Z")));
        assert_eq!(
            due_slot(&s, first_seen, utc("2026-06-11T12:00:00Z")),
            Some(utc("2026-06-11T12:00:00Z"))
        );
        // A slot exactly at the start counts as before it.
        let started = utc("2026-06-10T12:00:00Z");
        assert_eq!(due_slot(&s, started, utc("2026-06-10T12:00:10Z")), None);
    }

    #[test]
    fn a_stored_slot_wins_and_a_bad_one_is_ignored() {
        let seen = utc("2026-06-10T12:00:00Z");
        assert_eq!(
            since(Some("2026-06-01T02:00:00Z"), seen),
            utc("2026-06-01T02:00:00Z")
        );
        assert_eq!(since(Some("yesterday"), seen), seen);
        assert_eq!(
            slot_text(utc("2026-06-01T02:00:00.5Z")),
            "2026-06-01T02:00:00Z"
        );
        // A last slot in the future (the clock went back) waits for it.
        let s = sched("* * * * *", Tz::UTC);
        assert_eq!(
            due_slot(&s, utc("2026-06-10T13:00:00Z"), utc("2026-06-10T12:30:00Z")),
            None
        );
    }

    #[test]
    fn a_slot_due_while_the_night_runs_fires_once_after_it() {
        // The night of 02:00 runs 50 hours: when it ends, the slots of the
        // next two days are both past; one fires, the latest.
        let s = sched("0 2 * * *", Tz::UTC);
        let last = utc("2026-06-10T02:00:00Z");
        let ended = utc("2026-06-12T04:00:00Z");
        assert_eq!(due_slot(&s, last, ended), Some(utc("2026-06-12T02:00:00Z")));
    }

    #[test]
    fn berlin_spring_forward_fires_once_that_day() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = sched("30 2 * * *", Tz::Europe__Berlin);
        let fired = simulate(&s, utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"));
        assert_eq!(
            fired,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST: the gap's end
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Coming up after downtime on the day itself finds that slot.
        let last = utc("2026-03-28T01:30:00Z");
        assert_eq!(
            due_slot(&s, last, utc("2026-03-29T06:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn berlin_fall_back_fires_once_that_day() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice
        // (00:30 and 01:30 UTC). The job fires at the first only.
        let s = sched("30 2 * * *", Tz::Europe__Berlin);
        let fired = simulate(&s, utc("2026-10-23T12:00:00Z"), utc("2026-10-27T12:00:00Z"));
        assert_eq!(
            fired,
            vec![
                utc("2026-10-24T00:30:00Z"), // 02:30 CEST
                utc("2026-10-25T00:30:00Z"), // the first 02:30 (CEST)
                utc("2026-10-26T01:30:00Z"), // 02:30 CET
                utc("2026-10-27T01:30:00Z"),
            ]
        );
        // Looked at just after the second 02:30, with the first not yet
        // recorded: the first is due (croner's backward search answers the
        // second; the forward walk from before it decides).
        let last = utc("2026-10-24T00:30:00Z");
        assert_eq!(
            due_slot(&s, last, utc("2026-10-25T01:45:00Z")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            due_slot(&s, utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:45:00Z")),
            None
        );
    }

    #[test]
    fn hourly_in_berlin_across_both_changes() {
        // A wildcard-hour job: the spring day has 23 slots, the autumn 25.
        let s = sched("15 * * * *", Tz::Europe__Berlin);
        let spring = simulate(&s, utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
        assert_eq!(spring.len(), 23, "{spring:?}");
        let autumn = simulate(&s, utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"));
        assert_eq!(autumn.len(), 25, "{autumn:?}");
        let mut sorted = autumn.clone();
        sorted.dedup();
        assert_eq!(sorted, autumn);
    }

    #[test]
    fn sleeps_until_the_next_slot_at_most_max_sleep() {
        let now = utc("2026-06-10T12:00:00Z");
        assert_eq!(
            sleep_for(Some(utc("2026-06-10T12:00:42Z")), now),
            Duration::from_secs(42)
        );
        assert_eq!(sleep_for(Some(utc("2026-06-11T12:00:00Z")), now), MAX_SLEEP);
        assert_eq!(
            sleep_for(Some(utc("2026-06-10T11:00:00Z")), now),
            Duration::ZERO
        );
        assert_eq!(sleep_for(None, now), MAX_SLEEP);
    }

    fn job_text(name: &str, schedule: &str) -> String {
        format!("name: {name}\ntree: /tmp\nbranch: main\nschedule: \"{schedule}\"\n")
    }

    #[test]
    fn reload_keeps_the_previous_version_of_an_invalid_file() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::write(dir.join("a.yaml"), job_text("a", "0 2 * * *")).unwrap();
        std::fs::write(dir.join("b.yaml"), job_text("b", "0 3 * * *")).unwrap();
        let t0 = utc("2026-06-10T12:00:00Z");
        let mut set = JobSet::default();
        let n = set.reload(dir, t0, false);
        assert_eq!(set.names(), ["a", "b"]);
        assert!(
            matches!(&n[..], [Notice::Jobs { added, removed, reload: false, .. }]
                if added == &["a", "b"] && removed.is_empty()),
            "{n:?}"
        );

        // a breaks, b goes, c comes.
        std::fs::write(
            dir.join("a.yaml"),
            "name: a\ntree: /tmp\nbranch: main\nschedule: \"0 25 * * *\"\n",
        )
        .unwrap();
        std::fs::remove_file(dir.join("b.yaml")).unwrap();
        std::fs::write(dir.join("c.yaml"), job_text("c", "0 4 * * *")).unwrap();
        let t1 = utc("2026-06-10T13:00:00Z");
        let n = set.reload(dir, t1, true);
        assert_eq!(set.names(), ["a", "c"]);
        assert_eq!(set.get("a").unwrap().schedule.expr, "0 2 * * *");
        assert_eq!(set.first_seen("a"), Some(t0));
        assert_eq!(set.first_seen("c"), Some(t1));
        let invalid: Vec<&String> = n
            .iter()
            .filter_map(|x| match x {
                Notice::Invalid { line, .. } => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(invalid.len(), 1, "{n:?}");
        let want = format!("{}:4:", dir.join("a.yaml").display());
        assert!(invalid[0].starts_with(&want), "{}", invalid[0]);
        assert!(
            invalid[0].contains("hour 25 out of range"),
            "{}",
            invalid[0]
        );
        assert!(
            n.iter()
                .any(|x| matches!(x, Notice::KeptPrevious { job, .. } if job == "a"))
        );
        assert!(
            matches!(n.last(), Some(Notice::Jobs { added, removed, reload: true, .. })
                if added == &["c"] && removed == &["b"]),
            "{n:?}"
        );

        // Fixed again: the new version takes over.
        std::fs::write(dir.join("a.yaml"), job_text("a", "0 5 * * *")).unwrap();
        set.reload(dir, t1, true);
        assert_eq!(set.get("a").unwrap().schedule.expr, "0 5 * * *");

        // Every file gone: the directory error keeps the jobs.
        std::fs::remove_file(dir.join("a.yaml")).unwrap();
        std::fs::remove_file(dir.join("c.yaml")).unwrap();
        let n = set.reload(dir, t1, true);
        assert_eq!(set.names(), ["a", "c"]);
        assert!(
            n.iter().any(|x| matches!(x, Notice::KeptAll { .. })),
            "{n:?}"
        );
    }

    #[test]
    fn a_new_file_taking_a_broken_files_name_wins() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::write(dir.join("a.yaml"), job_text("a", "0 2 * * *")).unwrap();
        let mut set = JobSet::default();
        set.reload(dir, utc("2026-06-10T12:00:00Z"), false);
        std::fs::write(dir.join("a.yaml"), "name: a\nbogus: 1\n").unwrap();
        std::fs::write(dir.join("z.yaml"), job_text("a", "0 6 * * *")).unwrap();
        set.reload(dir, utc("2026-06-10T12:00:00Z"), true);
        assert_eq!(set.names(), ["a"]);
        assert_eq!(set.get("a").unwrap().schedule.expr, "0 6 * * *");
    }
}

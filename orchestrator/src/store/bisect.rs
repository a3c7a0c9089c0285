//! The bisection journal: one `bisections` row per bisection, one `bisect_steps`
//! row per build or run (inserted as `started` before the tester is called,
//! finished after), one `bisect_posteriors` row after each finished run. The
//! engine's state is rebuilt by replaying the finished steps, so `kill -9` at any
//! point loses nothing that finished and repeats nothing that finished. The
//! tables are made by [`super::migrations`].

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A bisection as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Bisection {
    /// Row id (the `--resume` id).
    pub id: i64,
    /// Repository path.
    pub repo: String,
    /// Good shas.
    pub good: Vec<String>,
    /// Bad sha.
    pub bad: String,
    /// First-parent mode.
    pub first_parent: bool,
    /// Predicate as given (`any`, `csd`, `title:REGEX`).
    pub predicate: String,
    /// How commits are tested (e.g. `run: ./test.sh`), JSON.
    pub tester: String,
    /// Engine and driver settings, JSON.
    pub settings: String,
    /// `running` (a csdci process drives it now), `stopped` (it was running when
    /// its process died: resume it), `done` or `failed`.
    pub status: String,
    /// Final report (JSON), when done.
    pub result: Option<String>,
    /// Why it stopped, when failed.
    pub error: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last update, RFC 3339.
    pub updated_at: String,
}

/// Fields of a new bisection.
#[derive(Debug, Clone)]
pub struct NewBisection<'a> {
    /// Repository path.
    pub repo: &'a str,
    /// Good shas.
    pub good: &'a [String],
    /// Bad sha.
    pub bad: &'a str,
    /// First-parent mode.
    pub first_parent: bool,
    /// Predicate as given.
    pub predicate: &'a str,
    /// Tester description, JSON.
    pub tester: &'a str,
    /// Settings, JSON.
    pub settings: &'a str,
}

/// One build or run of a bisection.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Row id (global order).
    pub id: i64,
    /// `build`, `run`, `revert_build`, `revert_run`, `merge_base_build`,
    /// `merge_base_run`, `tip_build` or `tip_run`.
    pub kind: String,
    /// Commit tested.
    pub commit: String,
    /// Run attempt (runs only).
    pub attempt: Option<u32>,
    /// `started`, `done` or `interrupted`.
    pub status: String,
    /// Builds: `ready`, `untestable`; runs: `pass`, `fail`, `skip`, `infra`.
    pub outcome: Option<String>,
    /// Built artifact id (builds).
    pub artifact_id: Option<String>,
    /// Commit whose artifact this build's equals (noop commit), if any.
    pub same_as: Option<String>,
    /// Why (untestable, skip, infra).
    pub reason: Option<String>,
    /// Every finding title of the run (JSON list).
    pub titles: Vec<String>,
    /// Console / output log.
    pub console_log: Option<String>,
    /// Row in the `runs` table, when the tester records one.
    pub run_id: Option<i64>,
    /// Wall-clock seconds.
    pub seconds: Option<f64>,
    /// Runs: seconds of workload the run ran (boot not counted), when the
    /// tester measured it.
    pub exposure_s: Option<f64>,
    /// Runs: seconds after the workload started when it first failed.
    pub failed_at_s: Option<f64>,
}

/// How a step finished.
#[derive(Debug, Clone, Default)]
pub struct Finish<'a> {
    /// Outcome (see [`Step::outcome`]).
    pub outcome: &'a str,
    /// Artifact id (builds).
    pub artifact_id: Option<&'a str>,
    /// Same artifact as this commit (builds).
    pub same_as: Option<&'a str>,
    /// Why.
    pub reason: Option<&'a str>,
    /// Finding titles.
    pub titles: &'a [String],
    /// Log path.
    pub console_log: Option<&'a str>,
    /// `runs` row.
    pub run_id: Option<i64>,
    /// Seconds.
    pub seconds: Option<f64>,
    /// Runs: workload seconds (see [`Step::exposure_s`]).
    pub exposure_s: Option<f64>,
    /// Runs: first failure (see [`Step::failed_at_s`]).
    pub failed_at_s: Option<f64>,
}

/// The posterior after a run, as journalled.
#[derive(Debug, Clone, Serialize)]
pub struct PosteriorRow {
    /// Stage (0: first-parent chain; then one per merge descended into).
    pub stage: u32,
    /// Probability of the most likely culprit (or set).
    pub confidence: f64,
    /// Most likely culprits, `[[sha, probability], ...]` JSON.
    pub top: String,
    /// Posterior mean of the per-run failure probability.
    pub fail_rate: f64,
    /// Posterior mean of the false-failure rate.
    pub false_fail: f64,
}

const BISECTION_COLS: &str = "id, repo, good, bad, first_parent, predicate, tester, settings, status, result, error, created_at, updated_at";

fn bisection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bisection> {
    let good: String = r.get(2)?;
    Ok(Bisection {
        id: r.get(0)?,
        repo: r.get(1)?,
        good: serde_json::from_str(&good).unwrap_or_default(),
        bad: r.get(3)?,
        first_parent: r.get::<_, i64>(4)? != 0,
        predicate: r.get(5)?,
        tester: r.get(6)?,
        settings: r.get(7)?,
        status: r.get(8)?,
        result: r.get(9)?,
        error: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

const STEP_COLS: &str = "id, kind, commit_sha, attempt, status, outcome, artifact_id, same_as, reason, titles, console_log, run_id, seconds";

/// The exposure columns (schema version 8), or NULLs for an older database.
fn exposure_cols(version: u32) -> &'static str {
    if version >= super::migrations::STEP_EXPOSURE_SINCE {
        "exposure_s, failed_at_s"
    } else {
        "NULL, NULL"
    }
}

fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Step> {
    let titles: Option<String> = r.get(9)?;
    Ok(Step {
        id: r.get(0)?,
        kind: r.get(1)?,
        commit: r.get(2)?,
        attempt: r.get(3)?,
        status: r.get(4)?,
        outcome: r.get(5)?,
        artifact_id: r.get(6)?,
        same_as: r.get(7)?,
        reason: r.get(8)?,
        titles: titles
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        console_log: r.get(10)?,
        run_id: r.get(11)?,
        seconds: r.get(12)?,
        exposure_s: r.get(13)?,
        failed_at_s: r.get(14)?,
    })
}

/// Held while a process drives a bisection: `<data-dir>/bisections/<id>.lock`
/// under `flock` (see [`crate::lockfile`]), so the kernel releases it when the
/// process ends, even by SIGKILL.
pub struct BisectLock {
    _lock: crate::lockfile::Lock,
}

impl Store {
    /// Takes bisection `id`'s lock; `None` when another process holds it.
    pub fn bisect_lock(&self, id: i64) -> Result<Option<BisectLock>, Error> {
        let path = self
            .data_dir()
            .join("bisections")
            .join(format!("{id}.lock"));
        crate::lockfile::try_lock(&path)
            .map(|held| held.map(|lock| BisectLock { _lock: lock }))
            .map_err(|source| Error::Lock { path, source })
    }

    /// Records a new bisection; returns its id.
    pub fn bisect_create(&self, b: &NewBisection<'_>) -> Result<i64, Error> {
        let t = now();
        self.conn().execute(
            "INSERT INTO bisections (repo, good, bad, first_parent, predicate, tester, settings, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?8)",
            params![
                b.repo,
                serde_json::to_string(b.good).unwrap_or_default(),
                b.bad,
                b.first_parent,
                b.predicate,
                b.tester,
                b.settings,
                t
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// `b` as it is now: `running` in the table but with nobody holding its lock
    /// means its process died (SIGKILL, power loss) before it could say so.
    fn live(&self, mut b: Bisection) -> Result<Bisection, Error> {
        if b.status == "running" && !self.bisect_lock_held(b.id)? {
            b.status = "stopped".into();
        }
        Ok(b)
    }

    /// Whether a process holds bisection `id`'s lock now. Probes with a shared
    /// lock on the file opened read-only and creates nothing, so it also works
    /// in a read-only data directory (no lock file: nobody holds it).
    fn bisect_lock_held(&self, id: i64) -> Result<bool, Error> {
        use nix::fcntl::{Flock, FlockArg};
        let path = self
            .data_dir()
            .join("bisections")
            .join(format!("{id}.lock"));
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(Error::Lock { path, source }),
        };
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(_probe) => Ok(false),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
            Err((_, e)) => Err(Error::Lock {
                path,
                source: e.into(),
            }),
        }
    }

    /// One bisection.
    pub fn bisect_get(&self, id: i64) -> Result<Option<Bisection>, Error> {
        self.conn()
            .query_row(
                &format!("SELECT {BISECTION_COLS} FROM bisections WHERE id = ?1"),
                [id],
                bisection_row,
            )
            .optional()?
            .map(|b| self.live(b))
            .transpose()
    }

    /// Every bisection, newest first.
    pub fn bisect_list(&self) -> Result<Vec<Bisection>, Error> {
        let mut st = self.conn().prepare(&format!(
            "SELECT {BISECTION_COLS} FROM bisections ORDER BY id DESC"
        ))?;
        let rows = st.query_map([], bisection_row)?;
        rows.map(|b| self.live(b?)).collect()
    }

    /// Marks a bisection finished (`done` with its report, or `failed` with why).
    pub fn bisect_finish(
        &self,
        id: i64,
        status: &str,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE bisections SET status = ?2, result = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, status, result, error, now()],
        )?;
        Ok(())
    }

    /// Replaces a bisection's stored settings (`--resume` with a new
    /// confidence or run budget).
    pub fn bisect_update_settings(&self, id: i64, settings: &str) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE bisections SET settings = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, settings, now()],
        )?;
        Ok(())
    }

    /// Marks a bisection running again (resume).
    pub fn bisect_reopen(&self, id: i64) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE bisections SET status = 'running', error = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        // Steps a killed csdci left behind did not finish: they are not evidence.
        self.conn().execute(
            "UPDATE bisect_steps SET status = 'interrupted', finished_at = ?2 WHERE bisection_id = ?1 AND status = 'started'",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Journals the start of a step (before the tester is called); returns its id.
    pub fn bisect_step_start(
        &self,
        bisection: i64,
        kind: &str,
        commit: &str,
        attempt: Option<u32>,
    ) -> Result<i64, Error> {
        self.conn().execute(
            "INSERT INTO bisect_steps (bisection_id, kind, commit_sha, attempt, status, started_at)
             VALUES (?1, ?2, ?3, ?4, 'started', ?5)",
            params![bisection, kind, commit, attempt, now()],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Journals how a step finished.
    pub fn bisect_step_finish(&self, step: i64, f: &Finish<'_>) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE bisect_steps SET status = 'done', outcome = ?2, artifact_id = ?3, same_as = ?4, reason = ?5,
                 titles = ?6, console_log = ?7, run_id = ?8, seconds = ?9, finished_at = ?10,
                 exposure_s = ?11, failed_at_s = ?12 WHERE id = ?1",
            params![
                step,
                f.outcome,
                f.artifact_id,
                f.same_as,
                f.reason,
                serde_json::to_string(f.titles).unwrap_or_default(),
                f.console_log,
                f.run_id,
                f.seconds,
                now(),
                f.exposure_s,
                f.failed_at_s
            ],
        )?;
        Ok(())
    }

    /// Every step of a bisection, in order (`done_only`: finished ones only).
    pub fn bisect_steps(&self, bisection: i64, done_only: bool) -> Result<Vec<Step>, Error> {
        let filter = if done_only { "AND status = 'done'" } else { "" };
        let mut st = self.conn().prepare(&format!(
            "SELECT {STEP_COLS}, {} FROM bisect_steps WHERE bisection_id = ?1 {filter} ORDER BY id",
            exposure_cols(self.version)
        ))?;
        let rows = st.query_map([bisection], step_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Journals the posterior after step `step`.
    pub fn bisect_posterior(
        &self,
        bisection: i64,
        step: i64,
        p: &PosteriorRow,
    ) -> Result<(), Error> {
        self.conn().execute(
            "INSERT OR REPLACE INTO bisect_posteriors (step_id, bisection_id, stage, confidence, top, fail_rate, false_fail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![step, bisection, p.stage, p.confidence, p.top, p.fail_rate, p.false_fail],
        )?;
        Ok(())
    }

    /// Journalled posteriors of a bisection, keyed by step id, in order.
    pub fn bisect_posteriors(&self, bisection: i64) -> Result<Vec<(i64, PosteriorRow)>, Error> {
        let mut st = self.conn().prepare(
            "SELECT step_id, stage, confidence, top, fail_rate, false_fail FROM bisect_posteriors
             WHERE bisection_id = ?1 ORDER BY step_id",
        )?;
        let rows = st.query_map([bisection], |r| {
            Ok((
                r.get(0)?,
                PosteriorRow {
                    stage: r.get(1)?,
                    confidence: r.get(2)?,
                    top: r.get(3)?,
                    fail_rate: r.get(4)?,
                    false_fail: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

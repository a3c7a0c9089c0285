//! Nightly jobs: `job_state` (the last schedule slot each job ran for),
//! `nights` (one row per job, branch and night, `running` until it ends so a
//! restarted csdci resumes it) and `night_cells` (one row per matrix cell of a
//! night, its counters written after every run, so a finished cell is never
//! run again). The tables are made by [`super::migrations`] (version 4).

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Error, Store, migrations};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One night of one branch of a job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Night {
    /// Row id.
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// The branch.
    pub branch: String,
    /// The tree it was fetched from.
    pub tree: String,
    /// The branch head tested (none when the fetch failed).
    pub head: Option<String>,
    /// The head the night before tested (none on the first night).
    pub prev_head: Option<String>,
    /// `running`, `unchanged` (nothing new: no build), `tested`, `infra`
    /// (could not fetch or test; retried next night), `interrupted`.
    pub status: String,
    /// Why, for `infra` and `interrupted`.
    pub reason: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once it ended.
    pub finished_at: Option<String>,
}

/// How often one title was seen in a cell's runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TitleCount {
    /// The crash title.
    pub title: String,
    /// Runs that showed it.
    pub runs: u32,
}

/// One matrix cell of a night.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NightCell {
    /// The night.
    pub night_id: i64,
    /// The cell's name (its key within the job: `vcpus=4 scftorture=...`).
    pub cell: String,
    /// The cell's `RunSpec`, JSON.
    pub spec: String,
    /// `running`, `clean`, `failed` (the predicate matched in some run),
    /// `build_failed`, `infra` (could not be tested).
    pub status: String,
    /// Runs that counted (pass or fail).
    pub runs: u32,
    /// Of those, failures.
    pub fails: u32,
    /// Runs the infrastructure lost (never evidence).
    pub infra: u32,
    /// Titles seen, each with the runs that showed it.
    pub titles: Vec<TitleCount>,
    /// The `runs` table rows of this cell's runs, in order.
    pub run_ids: Vec<i64>,
    /// The compiler error, when the head did not build.
    pub build_error: Option<String>,
    /// The built kernel's artifact id.
    pub artifact_id: Option<String>,
}

impl NightCell {
    /// Whether the cell is finished (not running).
    pub fn done(&self) -> bool {
        self.status != "running"
    }
}

const NIGHT_COLS: &str =
    "id, job, branch, tree, head, prev_head, status, reason, started_at, finished_at";

fn night_row(r: &Row<'_>) -> rusqlite::Result<Night> {
    Ok(Night {
        id: r.get(0)?,
        job: r.get(1)?,
        branch: r.get(2)?,
        tree: r.get(3)?,
        head: r.get(4)?,
        prev_head: r.get(5)?,
        status: r.get(6)?,
        reason: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

const CELL_COLS: &str =
    "night_id, cell, spec, status, runs, fails, infra, titles, run_ids, build_error, artifact_id";

fn cell_row(r: &Row<'_>) -> rusqlite::Result<NightCell> {
    let titles: String = r.get(7)?;
    let run_ids: String = r.get(8)?;
    Ok(NightCell {
        night_id: r.get(0)?,
        cell: r.get(1)?,
        spec: r.get(2)?,
        status: r.get(3)?,
        runs: r.get(4)?,
        fails: r.get(5)?,
        infra: r.get(6)?,
        titles: serde_json::from_str(&titles).unwrap_or_default(),
        run_ids: serde_json::from_str(&run_ids).unwrap_or_default(),
        build_error: r.get(9)?,
        artifact_id: r.get(10)?,
    })
}

impl Store {
    fn has_nights(&self) -> bool {
        self.version >= migrations::NIGHTS_SINCE
    }

    /// The schedule slot (RFC 3339, UTC) job `job` last ran for.
    pub fn job_last_slot(&self, job: &str) -> Result<Option<String>, Error> {
        if !self.has_nights() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT last_slot FROM job_state WHERE job = ?1",
                [job],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Records that job `job` runs for schedule slot `slot` (written before
    /// the night starts: a crash does not fire the same slot twice).
    pub fn job_set_slot(&self, job: &str, slot: &str) -> Result<(), Error> {
        self.conn().execute(
            "INSERT INTO job_state (job, last_slot, last_started) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET last_slot = ?2, last_started = ?3",
            params![job, slot, now()],
        )?;
        Ok(())
    }

    /// Records that a night of job `job` ended.
    pub fn job_set_finished(&self, job: &str) -> Result<(), Error> {
        self.conn().execute(
            "INSERT INTO job_state (job, last_finished) VALUES (?1, ?2)
             ON CONFLICT (job) DO UPDATE SET last_finished = ?2",
            params![job, now()],
        )?;
        Ok(())
    }

    /// Starts a night of `job`/`branch` testing `head`.
    pub fn night_start(
        &self,
        job: &str,
        branch: &str,
        tree: &str,
        head: Option<&str>,
        prev_head: Option<&str>,
    ) -> Result<i64, Error> {
        self.conn().execute(
            "INSERT INTO nights (job, branch, tree, head, prev_head, status, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
            params![job, branch, tree, head, prev_head, now()],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Ends night `id` with `status` (`unchanged`, `tested`, `infra`,
    /// `interrupted`).
    pub fn night_finish(&self, id: i64, status: &str, reason: Option<&str>) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE nights SET status = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1",
            params![id, status, reason, now()],
        )?;
        Ok(())
    }

    /// Night `id`.
    pub fn night(&self, id: i64) -> Result<Option<Night>, Error> {
        if !self.has_nights() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {NIGHT_COLS} FROM nights WHERE id = ?1"),
                [id],
                night_row,
            )
            .optional()?)
    }

    /// The unfinished night of `job`/`branch` (a csdci stopped during it).
    pub fn night_unfinished(&self, job: &str, branch: &str) -> Result<Option<Night>, Error> {
        if !self.has_nights() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {NIGHT_COLS} FROM nights
                     WHERE job = ?1 AND branch = ?2 AND status = 'running'
                     ORDER BY id DESC LIMIT 1"
                ),
                [job, branch],
                night_row,
            )
            .optional()?)
    }

    /// The head the last finished `tested` night of `job`/`branch` tested.
    pub fn last_tested_head(&self, job: &str, branch: &str) -> Result<Option<String>, Error> {
        if !self.has_nights() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT head FROM nights
                 WHERE job = ?1 AND branch = ?2 AND status = 'tested' AND head IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                [job, branch],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Nights, newest first: of `job` when given, started at or after `since`
    /// (RFC 3339) when given, at most `limit`.
    pub fn nights(
        &self,
        job: Option<&str>,
        since: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Night>, Error> {
        if !self.has_nights() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(&format!(
            "SELECT {NIGHT_COLS} FROM nights
             WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR started_at >= ?2)
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = st.query_map(params![job, since, limit], night_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds cell `cell` to night `night` as `running` (kept as it is when
    /// already there).
    pub fn cell_start(&self, night: i64, cell: &str, spec: &str) -> Result<NightCell, Error> {
        self.conn().execute(
            "INSERT OR IGNORE INTO night_cells (night_id, cell, spec, status)
             VALUES (?1, ?2, ?3, 'running')",
            params![night, cell, spec],
        )?;
        Ok(self.conn().query_row(
            &format!("SELECT {CELL_COLS} FROM night_cells WHERE night_id = ?1 AND cell = ?2"),
            params![night, cell],
            cell_row,
        )?)
    }

    /// Writes a cell's status and counters.
    pub fn cell_update(&self, c: &NightCell) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE night_cells SET status = ?3, runs = ?4, fails = ?5, infra = ?6, titles = ?7,
                 run_ids = ?8, build_error = ?9, artifact_id = ?10
             WHERE night_id = ?1 AND cell = ?2",
            params![
                c.night_id,
                c.cell,
                c.status,
                c.runs,
                c.fails,
                c.infra,
                serde_json::to_string(&c.titles).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&c.run_ids).unwrap_or_else(|_| "[]".into()),
                c.build_error,
                c.artifact_id
            ],
        )?;
        Ok(())
    }

    /// The cells of night `night`, in the order they were started.
    pub fn cells(&self, night: i64) -> Result<Vec<NightCell>, Error> {
        if !self.has_nights() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(&format!(
            "SELECT {CELL_COLS} FROM night_cells WHERE night_id = ?1 ORDER BY rowid"
        ))?;
        let rows = st.query_map([night], cell_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last finished night of `job`/`branch` before night `before` that
    /// tested cell `cell` (clean, failed or did not build), with that cell.
    pub fn last_cell_before(
        &self,
        job: &str,
        branch: &str,
        cell: &str,
        before: i64,
    ) -> Result<Option<(Night, NightCell)>, Error> {
        self.cell_query(
            job,
            branch,
            cell,
            before,
            "c.status IN ('clean', 'failed', 'build_failed')",
        )
    }

    /// The last finished night of `job`/`branch` before night `before` that
    /// ran cell `cell` (clean or failed: its head built), with that cell.
    pub fn last_ran_before(
        &self,
        job: &str,
        branch: &str,
        cell: &str,
        before: i64,
    ) -> Result<Option<(Night, NightCell)>, Error> {
        self.cell_query(job, branch, cell, before, "c.status IN ('clean', 'failed')")
    }

    /// The last night of `job`/`branch` before night `before` on which cell
    /// `cell` was clean.
    pub fn last_clean_before(
        &self,
        job: &str,
        branch: &str,
        cell: &str,
        before: i64,
    ) -> Result<Option<(Night, NightCell)>, Error> {
        self.cell_query(job, branch, cell, before, "c.status = 'clean'")
    }

    fn cell_query(
        &self,
        job: &str,
        branch: &str,
        cell: &str,
        before: i64,
        cond: &str,
    ) -> Result<Option<(Night, NightCell)>, Error> {
        if !self.has_nights() {
            return Ok(None);
        }
        let cols: String = NIGHT_COLS
            .split(", ")
            .map(|c| format!("n.{c}"))
            .chain(CELL_COLS.split(", ").map(|c| format!("c.{c}")))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM nights n JOIN night_cells c ON c.night_id = n.id
             WHERE n.job = ?1 AND n.branch = ?2 AND c.cell = ?3 AND n.id < ?4 AND {cond}
             ORDER BY n.id DESC LIMIT 1"
        );
        Ok(self
            .conn()
            .query_row(&sql, params![job, branch, cell, before], |r| {
                let n = night_row(r)?;
                let c = NightCell {
                    night_id: r.get(10)?,
                    cell: r.get(11)?,
                    spec: r.get(12)?,
                    status: r.get(13)?,
                    runs: r.get(14)?,
                    fails: r.get(15)?,
                    infra: r.get(16)?,
                    titles: serde_json::from_str(&r.get::<_, String>(17)?).unwrap_or_default(),
                    run_ids: serde_json::from_str(&r.get::<_, String>(18)?).unwrap_or_default(),
                    build_error: r.get(19)?,
                    artifact_id: r.get(20)?,
                };
                Ok((n, c))
            })
            .optional()?)
    }
}

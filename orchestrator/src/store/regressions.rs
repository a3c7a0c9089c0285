//! What the nights found: `regressions` (one row per problem of a job's
//! branch; while open, one per normalised title, so a second night showing
//! the same title is attached instead of bisected again) and
//! `regression_nights` (each night that showed it, with its runs and fails).
//! The tables are made by [`super::migrations`] (version 4).

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{Error, Store, migrations};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A regression as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Regression {
    /// Row id.
    pub id: i64,
    /// The job.
    pub job: String,
    /// The branch.
    pub branch: String,
    /// The matrix cell it was first seen in.
    pub cell: String,
    /// Normalised title (the dedup key).
    pub title: String,
    /// `test` (the kernel failed) or `build` (it did not compile).
    pub kind: String,
    /// `open` or `fixed`.
    pub status: String,
    /// The last head before it that was clean (the bisection's good end).
    pub good: Option<String>,
    /// The first head it was seen on.
    pub bad: String,
    /// The night that first showed it.
    pub first_night: i64,
    /// The last night that showed it.
    pub last_seen_night: i64,
    /// The last head that showed it.
    pub last_bad_head: String,
    /// Most runs a night needed to show it (a clean night counts towards
    /// "fixed" only with at least this many runs).
    pub runs_seen: u32,
    /// Clean nights in a row since it was last seen.
    pub clean_nights: u32,
    /// The bisection started for it.
    pub bisection_id: Option<i64>,
    /// The culprit the bisection named.
    pub culprit: Option<String>,
    /// The compiler error (build regressions) or other detail.
    pub detail: Option<String>,
    /// The night it was marked fixed.
    pub fixed_night: Option<i64>,
    /// The first clean head.
    pub fixed_head: Option<String>,
    /// Where the fix is: `LAST_BAD..FIRST_CLEAN`.
    pub fixed_range: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

#[cfg(test)]
impl Regression {
    /// An open regression of job `j`, branch `master`, cell `default`, seen
    /// on night 1 in 3 runs (for tests of the logic that reads them).
    pub(crate) fn sample(id: i64, title: &str, kind: &str) -> Self {
        Regression {
            id,
            job: "j".into(),
            branch: "master".into(),
            cell: "default".into(),
            title: title.into(),
            kind: kind.into(),
            status: "open".into(),
            good: Some("a".into()),
            bad: "b".into(),
            first_night: 1,
            last_seen_night: 1,
            last_bad_head: "b".into(),
            runs_seen: 3,
            clean_nights: 0,
            bisection_id: None,
            culprit: None,
            detail: None,
            fixed_night: None,
            fixed_head: None,
            fixed_range: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
}

/// A new regression.
#[derive(Debug, Clone)]
pub struct NewRegression<'a> {
    pub job: &'a str,
    pub branch: &'a str,
    pub cell: &'a str,
    pub title: &'a str,
    /// `test` or `build`.
    pub kind: &'a str,
    pub good: Option<&'a str>,
    pub bad: &'a str,
    pub night: i64,
    pub runs: u32,
    pub fails: u32,
    pub detail: Option<&'a str>,
}

const COLS: &str = "id, job, branch, cell, title, kind, status, good, bad, first_night, \
    last_seen_night, last_bad_head, runs_seen, clean_nights, bisection_id, culprit, detail, \
    fixed_night, fixed_head, fixed_range, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Regression> {
    Ok(Regression {
        id: r.get(0)?,
        job: r.get(1)?,
        branch: r.get(2)?,
        cell: r.get(3)?,
        title: r.get(4)?,
        kind: r.get(5)?,
        status: r.get(6)?,
        good: r.get(7)?,
        bad: r.get(8)?,
        first_night: r.get(9)?,
        last_seen_night: r.get(10)?,
        last_bad_head: r.get(11)?,
        runs_seen: r.get(12)?,
        clean_nights: r.get(13)?,
        bisection_id: r.get(14)?,
        culprit: r.get(15)?,
        detail: r.get(16)?,
        fixed_night: r.get(17)?,
        fixed_head: r.get(18)?,
        fixed_range: r.get(19)?,
        created_at: r.get(20)?,
        updated_at: r.get(21)?,
    })
}

impl Store {
    fn has_regressions(&self) -> bool {
        self.version >= migrations::NIGHTS_SINCE
    }

    /// The open regression of `job`/`branch` with normalised title `title`.
    pub fn regression_open(
        &self,
        job: &str,
        branch: &str,
        title: &str,
    ) -> Result<Option<Regression>, Error> {
        if !self.has_regressions() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {COLS} FROM regressions
                     WHERE job = ?1 AND branch = ?2 AND title = ?3 AND status = 'open'"
                ),
                [job, branch, title],
                row,
            )
            .optional()?)
    }

    /// Records a new open regression and the night that showed it.
    pub fn regression_insert(&self, n: &NewRegression<'_>) -> Result<i64, Error> {
        let t = now();
        self.conn().execute(
            "INSERT INTO regressions (job, branch, cell, title, kind, status, good, bad,
                 first_night, last_seen_night, last_bad_head, runs_seen, detail, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?8, ?7, ?9, ?10, ?11, ?11)",
            params![
                n.job, n.branch, n.cell, n.title, n.kind, n.good, n.bad, n.night, n.runs,
                n.detail, t
            ],
        )?;
        let id = self.conn().last_insert_rowid();
        self.regression_seen(id, n.night, n.bad, n.runs, n.fails)?;
        Ok(id)
    }

    /// Night `night` (testing `head`) showed regression `id` again.
    pub fn regression_seen(
        &self,
        id: i64,
        night: i64,
        head: &str,
        runs: u32,
        fails: u32,
    ) -> Result<(), Error> {
        self.conn().execute(
            "INSERT OR REPLACE INTO regression_nights (regression_id, night_id, runs, fails)
             VALUES (?1, ?2, ?3, ?4)",
            params![id, night, runs, fails],
        )?;
        self.conn().execute(
            "UPDATE regressions SET last_seen_night = ?2, last_bad_head = ?3, clean_nights = 0,
                 runs_seen = MAX(runs_seen, ?4), updated_at = ?5
             WHERE id = ?1",
            params![id, night, head, runs, now()],
        )?;
        Ok(())
    }

    /// The nights that showed regression `id`: `(night, runs, fails)`, oldest first.
    pub fn regression_nights(&self, id: i64) -> Result<Vec<(i64, u32, u32)>, Error> {
        if !self.has_regressions() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(
            "SELECT night_id, runs, fails FROM regression_nights
             WHERE regression_id = ?1 ORDER BY night_id",
        )?;
        let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A clean night for regression `id`; returns the clean nights in a row.
    pub fn regression_clean_night(&self, id: i64) -> Result<u32, Error> {
        self.conn().execute(
            "UPDATE regressions SET clean_nights = clean_nights + 1, updated_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(self.conn().query_row(
            "SELECT clean_nights FROM regressions WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Records the bisection started for regression `id` (before it runs).
    pub fn regression_set_bisection(&self, id: i64, bisection: i64) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE regressions SET bisection_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, bisection, now()],
        )?;
        Ok(())
    }

    /// Records the culprit of regression `id`.
    pub fn regression_set_culprit(&self, id: i64, culprit: Option<&str>) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE regressions SET culprit = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, culprit, now()],
        )?;
        Ok(())
    }

    /// Marks regression `id` fixed on night `night`, first clean at `head`;
    /// `range` is where the fix is (`LAST_BAD..FIRST_CLEAN`).
    pub fn regression_fixed(
        &self,
        id: i64,
        night: i64,
        head: &str,
        range: Option<&str>,
    ) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE regressions SET status = 'fixed', fixed_night = ?2, fixed_head = ?3,
                 fixed_range = ?4, updated_at = ?5
             WHERE id = ?1",
            params![id, night, head, range, now()],
        )?;
        Ok(())
    }

    /// Regression `id`.
    pub fn regression(&self, id: i64) -> Result<Option<Regression>, Error> {
        if !self.has_regressions() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM regressions WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Regressions, newest first: of `job` when given, with `status` when given.
    pub fn regressions(
        &self,
        job: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Regression>, Error> {
        if !self.has_regressions() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(&format!(
            "SELECT {COLS} FROM regressions
             WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY id DESC"
        ))?;
        let rows = st.query_map(params![job, status], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

//! Fix validations: a fix commit of a bisection's regression, run K times,
//! kept with the bisection so its page shows it beside the revert check. The
//! table is made by [`super::migrations`] (version 6); an older store reads
//! as having none.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{Error, Store, migrations};

/// A stored fix validation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FixValidationRow {
    /// Row id.
    pub id: i64,
    /// The bisection whose culprit the commit fixes.
    pub bisection_id: i64,
    /// The fix commit (full sha).
    pub fix_commit: String,
    /// Runs that counted.
    pub runs: u32,
    /// Failures among them.
    pub fails: u32,
    /// One-sided 95% upper bound on the per-run failure rate.
    pub failure_rate_upper_95: f64,
    /// The per-run failure rate the bisection measured on bad commits.
    pub regression_rate: f64,
    /// Probability that an unfixed kernel passes every run.
    pub p_pass_if_unfixed: f64,
    /// `fixed` (no failure in at least one run) or `not_fixed`.
    pub status: String,
    /// RFC 3339.
    pub finished_at: String,
}

/// A fix validation to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFixValidation<'a> {
    pub bisection_id: i64,
    pub fix_commit: &'a str,
    pub runs: u32,
    pub fails: u32,
    pub failure_rate_upper_95: f64,
    pub regression_rate: f64,
    pub p_pass_if_unfixed: f64,
    pub fixed: bool,
}

const COLUMNS: &str = "id, bisection_id, fix_commit, runs, fails, failure_rate_upper_95, \
     regression_rate, p_pass_if_unfixed, status, finished_at";

fn row(r: &Row<'_>) -> rusqlite::Result<FixValidationRow> {
    Ok(FixValidationRow {
        id: r.get(0)?,
        bisection_id: r.get(1)?,
        fix_commit: r.get(2)?,
        runs: r.get(3)?,
        fails: r.get(4)?,
        failure_rate_upper_95: r.get(5)?,
        regression_rate: r.get(6)?,
        p_pass_if_unfixed: r.get(7)?,
        status: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

impl Store {
    fn has_fix_validations(&self) -> bool {
        self.version >= migrations::FIX_VALIDATIONS_SINCE
    }

    /// Stores a fix validation of bisection `v.bisection_id` (replacing an
    /// earlier one of the same fix commit); returns its row id.
    pub fn fix_validation_put(&self, v: &NewFixValidation<'_>) -> Result<i64, Error> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id = self.conn.query_row(
            "INSERT INTO fix_validations (bisection_id, fix_commit, runs, fails,
                 failure_rate_upper_95, regression_rate, p_pass_if_unfixed, status, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (bisection_id, fix_commit) DO UPDATE SET
                 runs = excluded.runs, fails = excluded.fails,
                 failure_rate_upper_95 = excluded.failure_rate_upper_95,
                 regression_rate = excluded.regression_rate,
                 p_pass_if_unfixed = excluded.p_pass_if_unfixed,
                 status = excluded.status, finished_at = excluded.finished_at
             RETURNING id",
            params![
                v.bisection_id,
                v.fix_commit,
                v.runs,
                v.fails,
                v.failure_rate_upper_95,
                v.regression_rate,
                v.p_pass_if_unfixed,
                if v.fixed { "fixed" } else { "not_fixed" },
                now
            ],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// The fix validations of bisection `id`, latest first.
    pub fn fix_validations(&self, bisection_id: i64) -> Result<Vec<FixValidationRow>, Error> {
        if !self.has_fix_validations() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM fix_validations WHERE bisection_id = ?1
             ORDER BY finished_at DESC, id DESC"
        ))?;
        let rows = st.query_map([bisection_id], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Fix validation `id`.
    pub fn fix_validation_get(&self, id: i64) -> Result<Option<FixValidationRow>, Error> {
        if !self.has_fix_validations() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM fix_validations WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_validation_round_trips_and_a_new_one_replaces_it() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO bisections (id, repo, good, bad, first_parent, predicate, tester,
                     settings, status, created_at, updated_at)
                 VALUES (3, '/l', '[]', 'b', 0, 'any', '{}', '{}', 'done', 't', 't');",
            )
            .unwrap();
        let new = NewFixValidation {
            bisection_id: 3,
            fix_commit: "f1x",
            runs: 5,
            fails: 0,
            failure_rate_upper_95: 0.45,
            regression_rate: 0.9,
            p_pass_if_unfixed: 1e-5,
            fixed: true,
        };
        let id = store.fix_validation_put(&new).unwrap();
        let got = store.fix_validation_get(id).unwrap().unwrap();
        assert_eq!(got.bisection_id, 3);
        assert_eq!(got.fix_commit, "f1x");
        assert_eq!((got.runs, got.fails), (5, 0));
        assert_eq!(got.failure_rate_upper_95, 0.45);
        assert_eq!(got.regression_rate, 0.9);
        assert_eq!(got.p_pass_if_unfixed, 1e-5);
        assert_eq!(got.status, "fixed");
        assert!(!got.finished_at.is_empty());
        // The same fix validated again replaces the row.
        let again = store
            .fix_validation_put(&NewFixValidation {
                runs: 4,
                fails: 2,
                fixed: false,
                ..new
            })
            .unwrap();
        assert_eq!(again, id);
        let all = store.fix_validations(3).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].runs, all[0].fails), (4, 2));
        assert_eq!(all[0].status, "not_fixed");
        assert!(store.fix_validations(4).unwrap().is_empty());
    }
}

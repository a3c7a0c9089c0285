//! The `findings` table: the console analyzer's findings of each run, with their
//! positions in the console, written in the same transaction as the run's
//! finish (see [`Store::finish_run`]). Reports, the web's console viewer and
//! dedup read them here: a console is analysed once, while it streams.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Error, Store, migrations};

/// One finding of a run, as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoredFinding {
    /// Position in the run's findings (console order, from 0).
    pub ordinal: u32,
    /// Finding kind, snake case (`csd_lock`, `soft_lockup`, ...).
    pub kind: String,
    /// syzkaller-style title.
    pub title: String,
    /// 1-based console line where the finding starts.
    pub first_line: u64,
    /// 1-based console line where it ends (not reported by the analyzer yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_line: Option<u64>,
    /// Byte offset in the console log where it starts (not reported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_byte: Option<u64>,
    /// Byte offset just past its end (not reported yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_byte: Option<u64>,
    /// CPU the report names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Task the report names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The report is truncated or garbled.
    pub corrupted: bool,
    /// A kernel crash report (not a CSD-lock or scftorture line).
    pub crash_report: bool,
}

impl StoredFinding {
    /// The analyzer's findings (in their order) as rows.
    pub fn from_console(findings: &[csdci_console::Finding]) -> Vec<StoredFinding> {
        findings
            .iter()
            .enumerate()
            .map(|(i, f)| StoredFinding {
                ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                kind: f.kind.as_str().to_string(),
                title: f.title.clone(),
                first_line: f.line,
                last_line: None,
                start_byte: None,
                end_byte: None,
                cpu: f.cpu,
                task: f.task.clone(),
                corrupted: f.corrupted,
                crash_report: f.crash_report,
            })
            .collect()
    }
}

const COLS: &str = "ordinal, kind, title, first_line, last_line, start_byte, end_byte, cpu, task, corrupted, crash_report";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFinding> {
    Ok(StoredFinding {
        ordinal: r.get(0)?,
        kind: r.get(1)?,
        title: r.get(2)?,
        first_line: r.get::<_, i64>(3)?.max(0) as u64,
        last_line: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
        start_byte: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
        end_byte: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u64),
        cpu: r.get(7)?,
        task: r.get(8)?,
        corrupted: r.get(9)?,
        crash_report: r.get(10)?,
    })
}

/// Replaces run `run_id`'s findings (inside the caller's transaction).
pub(super) fn write(conn: &Connection, run_id: i64, rows: &[StoredFinding]) -> Result<(), Error> {
    conn.execute("DELETE FROM findings WHERE run_id = ?1", [run_id])?;
    let mut st = conn.prepare_cached(&format!(
        "INSERT INTO findings (run_id, {COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    for f in rows {
        st.execute(params![
            run_id,
            f.ordinal,
            f.kind,
            f.title,
            int(Some(f.first_line)),
            int(f.last_line),
            int(f.start_byte),
            int(f.end_byte),
            f.cpu,
            f.task,
            f.corrupted,
            f.crash_report,
        ])?;
    }
    Ok(())
}

impl Store {
    /// Whether this database has the findings table (a read-only store of an
    /// older schema may not).
    fn has_findings(&self) -> bool {
        self.version >= migrations::FINDINGS_SINCE
    }

    /// Every finding of run `run_id`, in console order (empty for runs that
    /// found nothing, did not boot, or are unknown).
    pub fn run_findings(&self, run_id: i64) -> Result<Vec<StoredFinding>, Error> {
        if !self.has_findings() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare_cached(&format!(
            "SELECT {COLS} FROM findings WHERE run_id = ?1 ORDER BY ordinal"
        ))?;
        let rows = st.query_map([run_id], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The first finding of run `run_id` in console order.
    pub fn first_finding(&self, run_id: i64) -> Result<Option<StoredFinding>, Error> {
        if !self.has_findings() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM findings WHERE run_id = ?1 ORDER BY ordinal LIMIT 1"),
                [run_id],
                row,
            )
            .optional()?)
    }
}

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
    /// 1-based console line where it ends (NULL for runs stored before the
    /// analyzer reported it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_line: Option<u64>,
    /// Byte offset in the console log where its first line starts (NULL for
    /// runs stored before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_byte: Option<u64>,
    /// Byte offset just past its last line, newline included (NULL for runs
    /// stored before).
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
    /// The analyzer's findings (in their order) as rows, with their positions
    /// (none for findings of an older analyzer, read back from JSON without
    /// them: their `end_byte` is 0).
    pub fn from_console(findings: &[csdci_console::Finding]) -> Vec<StoredFinding> {
        findings
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let known = f.end_byte > f.start_byte;
                StoredFinding {
                    ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                    kind: f.kind.as_str().to_string(),
                    title: f.title.clone(),
                    first_line: f.line,
                    last_line: known.then_some(f.last_line.max(f.line)),
                    start_byte: known.then_some(f.start_byte),
                    end_byte: known.then_some(f.end_byte),
                    cpu: f.cpu,
                    task: f.task.clone(),
                    corrupted: f.corrupted,
                    crash_report: f.crash_report,
                }
            })
            .collect()
    }

    /// Its last line: the first when not known (runs stored before positions).
    pub fn last_line_or_first(&self) -> u64 {
        self.last_line
            .unwrap_or(self.first_line)
            .max(self.first_line)
    }

    /// Its byte range in the console, when stored.
    pub fn bytes(&self) -> Option<std::ops::Range<u64>> {
        match (self.start_byte, self.end_byte) {
            (Some(s), Some(e)) if e > s => Some(s..e),
            _ => None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::runs::{Finish, NewRun};

    fn new_run() -> NewRun {
        NewRun {
            repo: "/linux".into(),
            commit: "abc".into(),
            vcpus: 8,
            memory_mb: 2048,
            accel_requested: "auto".into(),
            scftorture: "nthreads=4".into(),
            duration_s: 30,
            ..Default::default()
        }
    }

    #[test]
    fn a_finished_run_keeps_its_findings_in_console_order() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let console = b"[    1.0] smp: Bringing up secondary CPUs ...\n\
[   30.1] smp: csd: Detected non-responsive CSD lock (#1) on CPU#2, waiting 5000000000 ns for CPU#03 scf_handler_1+0x0/0x50(0xffff888000c6e0c0).\n\
[   31.0] watchdog: BUG: soft lockup - CPU#2 stuck for 26s! [scftorture:91]\n";
        let analysis = csdci_console::analyze(console);
        assert!(analysis.findings.len() >= 2, "{:?}", analysis.findings);
        let rows = StoredFinding::from_console(&analysis.findings);
        let id = store.insert_run(&new_run()).unwrap();
        store
            .finish_run(
                id,
                &Finish {
                    verdict: "failed".into(),
                    console_findings: rows.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        let stored = store.run_findings(id).unwrap();
        assert_eq!(stored, rows);
        assert_eq!(stored[0].ordinal, 0);
        assert_eq!(stored[0].kind, "csd_lock");
        assert_eq!(stored[0].first_line, 2);
        assert_eq!(stored[1].first_line, 3);
        // Positions: the byte range of each finding is its lines.
        for f in &stored {
            let r = f.bytes().expect("positions stored");
            let text = std::str::from_utf8(&console[r.start as usize..r.end as usize]).unwrap();
            assert_eq!(
                text.lines().count() as u64,
                f.last_line_or_first() - f.first_line + 1
            );
            assert!(text.ends_with('\n'));
        }
        assert!(stored[0].bytes().unwrap().start > 0);
        assert!(stored[1].title.contains("soft lockup"), "{stored:?}");
        assert!(
            std::str::from_utf8(&console[stored[1].bytes().unwrap().start as usize..])
                .unwrap()
                .contains("BUG: soft lockup")
        );
        assert_eq!(store.first_finding(id).unwrap(), Some(rows[0].clone()));
        // Nothing for a run that found nothing, or an unknown one.
        let clean = store.insert_run(&new_run()).unwrap();
        store
            .finish_run(
                clean,
                &Finish {
                    verdict: "clean".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(store.run_findings(clean).unwrap().is_empty());
        assert_eq!(store.first_finding(999).unwrap(), None);
    }

    /// Findings read back from the JSON of an older analyzer (no positions)
    /// are stored with NULL positions and read as one line.
    #[test]
    fn findings_without_positions_store_nulls() {
        let old: Vec<csdci_console::Finding> = serde_json::from_str(
            r#"[{"kind":"warning","title":"WARNING in f","line":7,"corrupted":false,"crash_report":true}]"#,
        )
        .unwrap();
        let rows = StoredFinding::from_console(&old);
        assert_eq!(
            (rows[0].last_line, rows[0].start_byte, rows[0].end_byte),
            (None, None, None)
        );
        assert_eq!(rows[0].last_line_or_first(), 7);
        assert_eq!(rows[0].bytes(), None);
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = store.insert_run(&new_run()).unwrap();
        store
            .finish_run(
                id,
                &Finish {
                    verdict: "failed".into(),
                    console_findings: rows.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(store.run_findings(id).unwrap(), rows);
    }

    /// The run's finish and its findings are one transaction: when the
    /// findings cannot be written the run is not `done` either.
    #[test]
    fn finish_and_findings_commit_together() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = store.insert_run(&new_run()).unwrap();
        let f = StoredFinding {
            ordinal: 0,
            kind: "warning".into(),
            title: "WARNING in f".into(),
            first_line: 7,
            last_line: None,
            start_byte: None,
            end_byte: None,
            cpu: Some(1),
            task: None,
            corrupted: false,
            crash_report: true,
        };
        // Two findings with one ordinal: the second insert fails.
        let err = store.finish_run(
            id,
            &Finish {
                verdict: "failed".into(),
                console_findings: vec![f.clone(), f.clone()],
                ..Default::default()
            },
        );
        assert!(err.is_err());
        let run = store.run(id).unwrap().unwrap();
        assert_eq!(run.status, "running");
        assert_eq!(run.verdict, None);
        assert!(store.run_findings(id).unwrap().is_empty());
        // Finishing again replaces, never duplicates.
        for _ in 0..2 {
            store
                .finish_run(
                    id,
                    &Finish {
                        verdict: "failed".into(),
                        console_findings: vec![f.clone()],
                        ..Default::default()
                    },
                )
                .unwrap();
        }
        assert_eq!(store.run_findings(id).unwrap(), [f]);
        assert_eq!(store.run(id).unwrap().unwrap().status, "done");
    }
}

//! The `runs` table: one row per `csdci run` / tested commit. A row is inserted
//! as `running` before the guest starts and updated when the run ends; rows left
//! `running` by a csdci that was killed become `interrupted` at the next open.
//! The table is made by [`super::migrations`]; a run's console findings go to
//! [`super::findings`] with its finish, and what the run page shows of its
//! console analysis (CSD groups, scftorture statistics) to `runs.summary`
//! ([`RunSummary`]), so no page analyses a stored console again.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::findings::StoredFinding;
use super::{Error, Store};

/// Start time (clock ticks since boot) of a process, from `/proc/PID/stat`.
fn process_start(pid: u32) -> Option<i64> {
    crate::procfs::stat(pid).and_then(|s| i64::try_from(s.start_time).ok())
}

/// Marks rows of dead csdci processes `interrupted` (at every writing open).
pub(super) fn mark_stale(conn: &Connection) -> Result<(), Error> {
    let mut stmt = conn.prepare("SELECT id, pid, pid_start FROM runs WHERE status = 'running'")?;
    let rows: Vec<(i64, Option<i64>, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, pid, start) in rows {
        let alive = match (pid, start) {
            (Some(pid), Some(start)) => {
                u32::try_from(pid).ok().and_then(process_start) == Some(start)
            }
            _ => false,
        };
        if !alive {
            conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?2,
                 reason = COALESCE(reason, 'csdci was killed during the run')
                 WHERE id = ?1 AND status = 'running'",
                params![id, chrono::Utc::now().to_rfc3339()],
            )?;
        }
    }
    Ok(())
}

/// What is known when a run starts.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// The user's git tree.
    pub repo: String,
    /// Full commit sha.
    pub commit: String,
    /// `git rev-parse <commit>^{tree}`.
    pub tree_id: Option<String>,
    /// sha256 of the final .config.
    pub config_hash: Option<String>,
    /// sha256 over vmlinux + modules.
    pub artifact_id: Option<String>,
    /// vCPUs.
    pub vcpus: u32,
    /// Guest RAM, MiB.
    pub memory_mb: u64,
    /// `auto`, `kvm` or `tcg`.
    pub accel_requested: String,
    /// scftorture module parameters.
    pub scftorture: String,
    /// Test duration, seconds.
    pub duration_s: u64,
    /// Seconds the build step took.
    pub build_seconds: Option<f64>,
    /// Whether the kernel came from the build cache.
    pub build_cached: Option<bool>,
    /// Artifact folder (cache entry) or build log.
    pub artifacts: Option<String>,
    /// The run's folder.
    pub run_dir: Option<String>,
    /// The console log's path.
    pub console_log: Option<String>,
}

/// What is known when a run ends.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Accelerator actually used.
    pub accel: Option<String>,
    /// Seconds until the guest's init ran.
    pub boot_seconds: Option<f64>,
    /// Seconds the guest ran.
    pub test_seconds: Option<f64>,
    /// `clean`, `failed`, `untestable` or `infra`.
    pub verdict: String,
    /// Title of the first finding (or the reason).
    pub title: Option<String>,
    /// Findings as JSON (console findings, or an untestable build's errors).
    pub findings: Option<String>,
    /// How the VM ended.
    pub vm_exit: Option<String>,
    /// Why the run could not test (untestable/infra).
    pub reason: Option<String>,
    /// The console analyzer's findings, with their positions: stored in the
    /// `findings` table with the finish (see [`StoredFinding::from_console`]).
    pub console_findings: Vec<StoredFinding>,
    /// The console analysis' CSD groups and scftorture statistics, stored
    /// as `runs.summary` (none: the run did not boot, or was not analysed).
    pub summary: Option<RunSummary>,
}

/// What the run page (and anything else after a run) needs of its console
/// analysis besides the findings: stored with the finish as JSON, read back
/// by [`Store::run_summary`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The CSD-lock groups (one per stuck lock).
    #[serde(default)]
    pub csd: Vec<csdci_console::CsdGroup>,
    /// scftorture's counters and result, with its CPU hotplug counts.
    #[serde(default)]
    pub scftorture: csdci_console::ScfStats,
}

impl RunSummary {
    /// The summary of a console analysis.
    pub fn of(a: &csdci_console::Analysis) -> RunSummary {
        RunSummary {
            csd: a.csd.clone(),
            scftorture: a.scftorture.clone(),
        }
    }
}

/// One row of `runs`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub repo: String,
    pub commit: String,
    pub tree_id: Option<String>,
    pub config_hash: Option<String>,
    pub artifact_id: Option<String>,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub accel_requested: String,
    pub accel: Option<String>,
    pub scftorture: String,
    pub duration_s: i64,
    pub build_seconds: Option<f64>,
    pub build_cached: Option<bool>,
    pub boot_seconds: Option<f64>,
    pub test_seconds: Option<f64>,
    pub verdict: Option<String>,
    pub title: Option<String>,
    pub findings: Option<String>,
    pub vm_exit: Option<String>,
    pub reason: Option<String>,
    pub console_log: Option<String>,
    pub artifacts: Option<String>,
    pub run_dir: Option<String>,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, repo, commit_sha, tree_id, config_hash, artifact_id, vcpus, memory_mb,
    accel_requested, accel, scftorture, duration_s, build_seconds, build_cached, boot_seconds,
    test_seconds, verdict, title, findings, vm_exit, reason, console_log, artifacts, run_dir,
    status, started_at, finished_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        repo: r.get(1)?,
        commit: r.get(2)?,
        tree_id: r.get(3)?,
        config_hash: r.get(4)?,
        artifact_id: r.get(5)?,
        vcpus: r.get(6)?,
        memory_mb: r.get(7)?,
        accel_requested: r.get(8)?,
        accel: r.get(9)?,
        scftorture: r.get(10)?,
        duration_s: r.get(11)?,
        build_seconds: r.get(12)?,
        build_cached: r.get(13)?,
        boot_seconds: r.get(14)?,
        test_seconds: r.get(15)?,
        verdict: r.get(16)?,
        title: r.get(17)?,
        findings: r.get(18)?,
        vm_exit: r.get(19)?,
        reason: r.get(20)?,
        console_log: r.get(21)?,
        artifacts: r.get(22)?,
        run_dir: r.get(23)?,
        status: r.get(24)?,
        started_at: r.get(25)?,
        finished_at: r.get(26)?,
    })
}

impl Store {
    /// Inserts a `running` row and returns its id.
    pub fn insert_run(&self, n: &NewRun) -> Result<i64, Error> {
        let pid = std::process::id();
        self.conn().execute(
            "INSERT INTO runs (repo, commit_sha, tree_id, config_hash, artifact_id, vcpus,
                memory_mb, accel_requested, scftorture, duration_s, build_seconds, build_cached,
                artifacts, run_dir, console_log, status, pid, pid_start, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                'running', ?16, ?17, ?18)",
            params![
                n.repo,
                n.commit,
                n.tree_id,
                n.config_hash,
                n.artifact_id,
                n.vcpus,
                n.memory_mb as i64,
                n.accel_requested,
                n.scftorture,
                n.duration_s as i64,
                n.build_seconds,
                n.build_cached,
                n.artifacts,
                n.run_dir,
                n.console_log,
                pid,
                process_start(pid),
                chrono::Utc::now().to_rfc3339(),
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Sets the run directory and console log of a row.
    pub fn set_run_paths(&self, id: i64, run_dir: &str, console_log: &str) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE runs SET run_dir = ?2, console_log = ?3 WHERE id = ?1",
            params![id, run_dir, console_log],
        )?;
        Ok(())
    }

    /// Records the end of a run (`done`) and its console findings, in one
    /// transaction: a run is never `done` without its findings.
    pub fn finish_run(&self, id: i64, f: &Finish) -> Result<(), Error> {
        let tx = rusqlite::Transaction::new_unchecked(
            self.conn(),
            rusqlite::TransactionBehavior::Immediate,
        )?;
        tx.execute(
            "UPDATE runs SET accel = ?2, boot_seconds = ?3, test_seconds = ?4, verdict = ?5,
                title = ?6, findings = ?7, vm_exit = ?8, reason = ?9, status = 'done',
                finished_at = ?10, summary = ?11
             WHERE id = ?1",
            params![
                id,
                f.accel,
                f.boot_seconds,
                f.test_seconds,
                f.verdict,
                f.title,
                f.findings,
                f.vm_exit,
                f.reason,
                chrono::Utc::now().to_rfc3339(),
                f.summary
                    .as_ref()
                    .map(|s| serde_json::to_string(s).expect("a summary serialises")),
            ],
        )?;
        super::findings::write(&tx, id, &f.console_findings)?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a run `interrupted` (Ctrl-C).
    pub fn interrupt_run(&self, id: i64, reason: &str) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE runs SET status = 'interrupted', reason = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, reason, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    /// The console summary stored with run `id`'s finish: none for a run
    /// not finished, not analysed, stored before summaries were (schema
    /// version 7), or whose summary does not read.
    pub fn run_summary(&self, id: i64) -> Result<Option<RunSummary>, Error> {
        if self.version < super::migrations::RUN_SUMMARY_SINCE {
            return Ok(None);
        }
        let json: Option<String> = self
            .conn()
            .query_row("SELECT summary FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(json.and_then(|j| match serde_json::from_str(&j) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("store: run #{id}'s summary does not read: {e}");
                None
            }
        }))
    }

    /// One run by id.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>, Error> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Runs of a commit, oldest first.
    pub fn runs_for_commit(&self, commit: &str) -> Result<Vec<RunRow>, Error> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM runs WHERE commit_sha = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([commit], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The latest `limit` runs, newest first.
    pub fn recent_runs(&self, limit: u32) -> Result<Vec<RunRow>, Error> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_finish_and_stale_rows() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let new = NewRun {
            repo: "/linux".into(),
            commit: "abc".into(),
            vcpus: 8,
            memory_mb: 2048,
            accel_requested: "auto".into(),
            scftorture: "nthreads=4".into(),
            duration_s: 30,
            ..Default::default()
        };
        let done = store.insert_run(&new).unwrap();
        store
            .finish_run(
                done,
                &Finish {
                    verdict: "clean".into(),
                    accel: Some("tcg".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let live = store.insert_run(&new).unwrap();
        let dead = store.insert_run(&new).unwrap();
        store
            .conn()
            .execute("UPDATE runs SET pid = 999999999 WHERE id = ?1", [dead])
            .unwrap();
        drop(store);
        let store = Store::open(d.path()).unwrap();
        assert_eq!(store.run(done).unwrap().unwrap().status, "done");
        assert_eq!(
            store.run(done).unwrap().unwrap().verdict.as_deref(),
            Some("clean")
        );
        assert_eq!(store.run(live).unwrap().unwrap().status, "running");
        assert_eq!(store.run(dead).unwrap().unwrap().status, "interrupted");
        assert_eq!(store.runs_for_commit("abc").unwrap().len(), 3);
    }

    #[test]
    fn a_summary_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = store
            .insert_run(&NewRun {
                repo: "/linux".into(),
                commit: "abc".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.run_summary(id).unwrap(), None);
        let summary = RunSummary {
            csd: vec![csdci_console::CsdGroup {
                id: 1,
                waiter_cpu: Some(3),
                target_cpu: Some(0),
                func: Some("scf_handler_1".into()),
                max_wait_ns: Some(5_000_155_348),
                reports: 2,
                ..Default::default()
            }],
            scftorture: csdci_console::ScfStats {
                result: Some("SUCCESS".into()),
                stats_lines: 4,
                onoff: Some(csdci_console::ScfOnoff {
                    online: 3,
                    online_attempts: 3,
                    offline: 2,
                    offline_attempts: 4,
                }),
                cpus_offlined: 2,
                cpus_onlined: 5,
                ..Default::default()
            },
        };
        store
            .finish_run(
                id,
                &Finish {
                    verdict: "failed".into(),
                    summary: Some(summary.clone()),
                    ..Default::default()
                },
            )
            .unwrap();
        drop(store);
        let store = Store::open_read_only(d.path()).unwrap();
        assert_eq!(store.run_summary(id).unwrap(), Some(summary));
        assert_eq!(store.run_summary(id + 1).unwrap(), None);
    }
}

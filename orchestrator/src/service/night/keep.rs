//! `keep:`: a job's run logs (console logs, QEMU and virtiofsd logs, the
//! `run:` command's output) are deleted once their night is older than the
//! job keeps them; what the nights found stays in the store. Logs of nights
//! that showed a regression still open are kept, whatever their age.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::jobs::Job;
use crate::store::Store;

/// Removes `path` when it is inside `data_dir` (never anything else).
fn remove_inside(data_dir: &Path, path: &Path) -> bool {
    let (Ok(d), Ok(p)) = (data_dir.canonicalize(), path.canonicalize()) else {
        return false;
    };
    p.starts_with(&d) && p != d && std::fs::remove_dir_all(&p).is_ok()
}

/// Deletes the logs of `job`'s nights that started before `now - keep`;
/// returns how many folders were removed.
pub fn prune(store: &Store, job: &Job, now: DateTime<Utc>) -> crate::Result<u32> {
    let Ok(keep) = chrono::Duration::from_std(job.keep) else {
        return Ok(0);
    };
    let cutoff = now - keep;
    let mut wanted: HashSet<i64> = HashSet::new();
    for r in store.regressions(Some(&job.name), Some("open"))? {
        wanted.extend(
            store
                .regression_nights(r.id)?
                .into_iter()
                .map(|(n, _, _)| n),
        );
    }
    let data_dir = store.data_dir().to_path_buf();
    let mut removed = 0;
    for night in store.nights(Some(&job.name), None, u32::MAX)? {
        let started =
            DateTime::parse_from_rfc3339(&night.started_at).map(|t| t.with_timezone(&Utc));
        if wanted.contains(&night.id) || !started.is_ok_and(|t| t < cutoff) {
            continue;
        }
        for cell in store.cells(night.id)? {
            for id in &cell.run_ids {
                if let Some(dir) = store.run(*id)?.and_then(|r| r.run_dir) {
                    removed += u32::from(remove_inside(&data_dir, Path::new(&dir)));
                }
            }
        }
        let logs = data_dir.join("nights").join(night.id.to_string());
        removed += u32::from(logs.exists() && remove_inside(&data_dir, &logs));
    }
    Ok(removed)
}

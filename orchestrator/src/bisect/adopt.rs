//! Runs made before a bisection started, journalled as its own evidence: a
//! nightly cell ran the head it found failing `runs` times with the same
//! RunSpec and kernel, so the bisection of that head need not run it again
//! to learn that it fails and how often (syzbot reuses a crash's
//! reproduction the same way). Only runs of the bisection's bad tip with the
//! same kernel artifact are taken, classified by the bisection's own
//! predicate, and only into a bisection that has no step yet.

use csdci_console::FindingKind;

use super::Error;
use super::driver::Settings;
use super::outcome::RunObs;
use super::predicate::Predicate;
use crate::store::Store;
use crate::store::bisect::Finish;
use crate::store::findings::StoredFinding;
use crate::store::runs::RunRow;

/// What [`adopt_runs`] took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Runs journalled as the bad tip's.
    pub runs: u32,
    /// Of those, failures the predicate counts.
    pub fails: u32,
}

/// How a stored run counts for `predicate`: `None` when it is no evidence
/// (unfinished, lost by the infrastructure, untestable).
fn classify(predicate: &Predicate, run: &RunRow, findings: &[StoredFinding]) -> Option<RunObs> {
    match run.verdict.as_deref()? {
        "clean" => Some(RunObs::Pass),
        "failed" => {
            let hit = findings.iter().any(|f| {
                serde_json::from_value::<FindingKind>(serde_json::Value::String(f.kind.clone()))
                    .is_ok_and(|k| predicate.matches_title(&f.title, k))
            }) || matches!(predicate, Predicate::Title(re)
                if run.title.as_deref().is_some_and(|t| re.is_match(t)));
            Some(if hit { RunObs::Fail } else { RunObs::Other })
        }
        _ => None,
    }
}

/// Distinct finding titles, in the order they first appeared.
fn titles(findings: &[StoredFinding]) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for f in findings {
        if !t.contains(&f.title) {
            t.push(f.title.clone());
        }
    }
    t
}

/// Journals the `runs` rows `run_ids` (runs of `commit`, built as
/// `artifact_id`) as steps of bisection `id`, before it has any: a build step
/// with that kernel, then one run step per run that counts. Returns what was
/// taken; nothing when the bisection already has steps, `commit` is not its
/// bad tip, or a run is of another kernel.
pub fn adopt_runs(
    store: &Store,
    id: i64,
    commit: &str,
    artifact_id: &str,
    run_ids: &[i64],
) -> crate::Result<Adopted> {
    let b = store.bisect_get(id)?.ok_or(Error::NotFound(id))?;
    if b.bad != commit || !store.bisect_steps(id, false)?.is_empty() {
        return Ok(Adopted::default());
    }
    let settings: Settings = serde_json::from_str(&b.settings).map_err(|e| Error::Settings {
        id,
        msg: e.to_string(),
    })?;
    let predicate =
        Predicate::parse(&settings.predicate).map_err(|msg| Error::Settings { id, msg })?;
    let mut taken = Vec::new();
    for &r in run_ids {
        let Some(run) = store.run(r)? else { continue };
        if run.commit != commit || run.artifact_id.as_deref() != Some(artifact_id) {
            continue;
        }
        let findings = store.run_findings(r)?;
        if let Some(obs) = classify(&predicate, &run, &findings) {
            taken.push((run, titles(&findings), obs));
        }
    }
    let mut adopted = Adopted::default();
    if taken.is_empty() {
        return Ok(adopted);
    }
    let step = store.bisect_step_start(id, "build", commit, None)?;
    store.bisect_step_finish(
        step,
        &Finish {
            outcome: "ready",
            artifact_id: Some(artifact_id),
            ..Finish::default()
        },
    )?;
    for (run, titles, obs) in taken {
        let step = store.bisect_step_start(id, "run", commit, Some(adopted.runs))?;
        store.bisect_step_finish(
            step,
            &Finish {
                outcome: obs.as_str(),
                titles: &titles,
                console_log: run.console_log.as_deref(),
                run_id: Some(run.id),
                seconds: run.test_seconds,
                ..Finish::default()
            },
        )?;
        adopted.runs += 1;
        adopted.fails += u32::from(obs == RunObs::Fail);
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bisect::NewBisection;
    use crate::store::runs::{Finish as RunFinish, NewRun};

    fn finding(kind: &str, title: &str) -> StoredFinding {
        StoredFinding {
            ordinal: 0,
            kind: kind.into(),
            title: title.into(),
            first_line: 1,
            last_line: None,
            start_byte: None,
            end_byte: None,
            cpu: None,
            task: None,
            corrupted: false,
            crash_report: false,
        }
    }

    fn run(store: &Store, commit: &str, artifact: &str, verdict: &str, f: &[StoredFinding]) -> i64 {
        let id = store
            .insert_run(&NewRun {
                repo: "/linux".into(),
                commit: commit.into(),
                artifact_id: Some(artifact.into()),
                ..NewRun::default()
            })
            .unwrap();
        store
            .finish_run(
                id,
                &RunFinish {
                    verdict: verdict.into(),
                    test_seconds: Some(25.0),
                    title: f.first().map(|x| x.title.clone()),
                    console_findings: f
                        .iter()
                        .enumerate()
                        .map(|(i, x)| StoredFinding {
                            ordinal: i as u32,
                            ..x.clone()
                        })
                        .collect(),
                    ..RunFinish::default()
                },
            )
            .unwrap();
        id
    }

    #[test]
    fn the_bad_tips_runs_of_its_kernel_become_its_first_steps() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let settings = Settings {
            predicate: "csd".into(),
            ..Settings::default()
        };
        let id = store
            .bisect_create(&NewBisection {
                repo: "/linux",
                good: &["good".to_string()],
                bad: "bad",
                first_parent: false,
                predicate: "csd",
                tester: "{}",
                settings: &serde_json::to_string(&settings).unwrap(),
            })
            .unwrap();
        let csd = finding("csd_lock", "csd: non-responsive CSD lock in scf_handler");
        let soft = finding("soft_lockup", "BUG: soft lockup in smp_call_function");
        let runs = [
            run(&store, "bad", "k1", "clean", &[]),
            run(&store, "bad", "k1", "failed", &[soft.clone(), csd.clone()]),
            // Failed, but not as --predicate csd asks: a run, not a failure.
            run(&store, "bad", "k1", "failed", &[soft]),
            // Another kernel, a lost run, another commit: no evidence.
            run(&store, "bad", "k2", "failed", std::slice::from_ref(&csd)),
            run(&store, "bad", "k1", "infra", &[]),
            run(&store, "other", "k1", "failed", &[csd]),
        ];
        // Not the bad tip: nothing.
        assert_eq!(
            adopt_runs(&store, id, "good", "k1", &runs).unwrap(),
            Adopted::default()
        );
        let a = adopt_runs(&store, id, "bad", "k1", &runs).unwrap();
        assert_eq!(a, Adopted { runs: 3, fails: 1 });
        let steps = store.bisect_steps(id, true).unwrap();
        let seen: Vec<_> = steps
            .iter()
            .map(|s| (s.kind.as_str(), s.attempt, s.outcome.as_deref(), s.run_id))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("build", None, Some("ready"), None),
                ("run", Some(0), Some("pass"), Some(runs[0])),
                ("run", Some(1), Some("fail"), Some(runs[1])),
                ("run", Some(2), Some("other"), Some(runs[2])),
            ]
        );
        assert_eq!(steps[0].artifact_id.as_deref(), Some("k1"));
        assert_eq!(steps[2].titles.len(), 2, "{:?}", steps[2].titles);
        // Once only: a bisection with steps takes nothing more.
        assert_eq!(
            adopt_runs(&store, id, "bad", "k1", &runs).unwrap(),
            Adopted::default()
        );
    }
}

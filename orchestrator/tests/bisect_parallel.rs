//! Parallel bisection end to end (`csdci bisect --run CMD --max-guests W`): a
//! real git history, a flaky script run as real processes, several at once,
//! each in its own checkout; the timestamps it logs show the overlap.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::repo::*;
use serde_json::Value;

/// `flaky_script(50)` (fails half the runs of a bad commit), logging
/// `start|end COMMIT ATTEMPT WORKER SECONDS` around a `sleep`.
fn timed_script(log: &Path, sleep: f64) -> String {
    timed(log, sleep, &flaky_script(50))
}

/// `test`, logging `start|end COMMIT ATTEMPT WORKER SECONDS` around a `sleep`.
fn timed(log: &Path, sleep: f64, test: &str) -> String {
    let log = log.display();
    format!(
        "echo \"start $CSDCI_COMMIT $CSDCI_ATTEMPT $CSDCI_WORKER $(date +%s.%N)\" >> {log}; \
         sleep {sleep}; ( {test} ); rc=$?; \
         echo \"end $CSDCI_COMMIT $CSDCI_ATTEMPT $CSDCI_WORKER $(date +%s.%N)\" >> {log}; exit $rc"
    )
}

/// One run seen in the log: when it started and (if it did) ended.
#[derive(Debug, Clone)]
struct Interval {
    key: (String, u32),
    start: f64,
    end: Option<f64>,
}

/// The runs in the log, in start order (a run started again after a kill
/// is a second interval).
fn intervals(log: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: Vec<Interval> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [what, commit, attempt, _worker, t] = f[..] else {
            panic!("bad log line {l:?}")
        };
        let key = (commit.to_string(), attempt.parse().unwrap());
        let t: f64 = t.parse().unwrap();
        match what {
            "start" => out.push(Interval {
                key,
                start: t,
                end: None,
            }),
            "end" => {
                let open = out
                    .iter_mut()
                    .rev()
                    .find(|i| i.key == key && i.end.is_none())
                    .unwrap_or_else(|| panic!("end without start: {l}"));
                open.end = Some(t);
            }
            _ => panic!("bad log line {l:?}"),
        }
    }
    out
}

/// Wall-clock rounds: groups of finished runs that overlap in time.
fn rounds(runs: &[Interval]) -> usize {
    let mut done: Vec<(f64, f64)> = runs
        .iter()
        .filter_map(|i| i.end.map(|e| (i.start, e)))
        .collect();
    done.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rounds = 0;
    let mut until = f64::NEG_INFINITY;
    for (s, e) in done {
        if s >= until {
            rounds += 1;
        }
        until = until.max(e);
    }
    rounds
}

fn bisect(r: &Repo, script: &str, extra: &[&str]) -> Value {
    let (code, v) = r.bisect_json("base", "main", script, extra);
    assert_eq!(code, 0, "{v}");
    v
}

#[test]
fn four_guests_bisect_a_flaky_test_in_fewer_rounds() {
    let (r, shas) = Repo::linear(32, 20, |_| false);
    let dir = r.path.parent().unwrap().to_path_buf();
    let (log4, log1) = (dir.join("runs-4.log"), dir.join("runs-1.log"));
    let v4 = bisect(
        &r,
        &timed_script(&log4, 0.3),
        &["--max-guests", "4", "--no-revert-check"],
    );
    assert_eq!(v4["culprit"]["sha"], shas[19], "{v4}");
    let runs4 = intervals(&log4);
    assert!(runs4.iter().all(|i| i.end.is_some()), "{runs4:?}");
    assert_eq!(runs4.len() as u64, v4["runs"].as_u64().unwrap(), "{v4}");
    // The runs overlapped: some round ran several at once, and never more
    // than four (one per worktree).
    let overlap = |a: &Interval, b: &Interval| a.start < b.end.unwrap() && b.start < a.end.unwrap();
    let most = runs4
        .iter()
        .map(|a| runs4.iter().filter(|b| overlap(a, b)).count())
        .max()
        .unwrap();
    assert!(most >= 3, "at most {most} runs at once");
    let at_once = |t: f64| {
        runs4
            .iter()
            .filter(|i| i.start <= t && t < i.end.unwrap())
            .count()
    };
    assert!(runs4.iter().all(|i| at_once(i.start) <= 4));
    // Each run had a worktree of its own.
    let text = std::fs::read_to_string(&log4).unwrap();
    let workers: HashSet<&str> = text
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(workers.len(), 4, "{workers:?}");
    // The same bisection one run at a time takes more rounds.
    let v1 = bisect(&r, &timed_script(&log1, 0.05), &["--no-revert-check"]);
    assert_eq!(v1["culprit"]["sha"], shas[19], "{v1}");
    let (r4, r1) = (rounds(&runs4), rounds(&intervals(&log1)));
    assert_eq!(r1 as u64, v1["runs"].as_u64().unwrap());
    assert!(
        r4 < r1,
        "4 guests took {r4} rounds ({} runs), 1 guest {r1}",
        runs4.len()
    );
    eprintln!(
        "4 guests: {r4} rounds, {} runs; 1 guest: {r1} rounds",
        runs4.len()
    );
}

#[test]
fn kill_9_mid_round_then_resume_repeats_no_finished_run() {
    let (r, shas) = Repo::linear(32, 11, |_| false);
    let log = r.path.parent().unwrap().join("runs.log");
    let script = timed_script(&log, 0.5);
    let tree = r.path.to_string_lossy().to_string();
    let mut child = Command::new(CSDCI)
        .arg("--data-dir")
        .arg(&r.data)
        .args([
            "bisect",
            "base",
            "main",
            "--tree",
            &tree,
            "--run",
            &script,
            "--max-guests",
            "4",
            "--no-revert-check",
            "--json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let finished = |l: &[Interval]| l.iter().filter(|i| i.end.is_some()).count();
    let start = Instant::now();
    // Wait for a round in flight after at least 6 finished runs.
    loop {
        let l = intervals(&log);
        // A round just started: runs in flight, all begun after the last end.
        let last_end = l.iter().filter_map(|i| i.end).fold(0.0, f64::max);
        let open: Vec<&Interval> = l.iter().filter(|i| i.end.is_none()).collect();
        if finished(&l) >= 6 && !open.is_empty() && open.iter().all(|i| i.start > last_end) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "no runs: {l:?}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Mid-round: its scripts are sleeping.
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The round's scripts die with csdci: nothing ends after the kill.
    std::thread::sleep(Duration::from_millis(800));
    let killed = intervals(&log);
    let unfinished = killed.iter().filter(|i| i.end.is_none()).count();
    assert!(unfinished >= 1, "{killed:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(intervals(&log).len(), killed.len(), "a killed run went on");
    let out = r.csdci(&["bisect", "--resume", "1", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["culprit"]["sha"], shas[10], "{v}");
    // No finished run was run again, and every finished run is evidence.
    let all = intervals(&log);
    let mut ended: HashMap<(String, u32), usize> = HashMap::new();
    for i in all.iter().filter(|i| i.end.is_some()) {
        *ended.entry(i.key.clone()).or_default() += 1;
    }
    assert!(ended.values().all(|&n| n == 1), "repeated: {ended:?}");
    assert_eq!(ended.len() as u64, v["runs"].as_u64().unwrap(), "{v}");
    // The resumed part ran in parallel too.
    let after: Vec<Interval> = all[killed.len()..].to_vec();
    assert!(rounds(&after) < after.len(), "{after:?}");
    // The journal marks the runs the kill cut short.
    let out = r.csdci(&["bisect", "log", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"));
}

#[test]
fn a_deterministic_test_with_three_guests_is_a_four_way_search() {
    // 64 candidates: git bisect's 6 rounds; cut in four per round, 3.
    let (r, shas) = Repo::linear(64, 37, |_| false);
    let log = r.path.parent().unwrap().join("runs.log");
    let v = bisect(
        &r,
        &timed(&log, 0.2, DETERMINISTIC),
        &["--deterministic", "--max-guests", "3", "--no-revert-check"],
    );
    assert_eq!(v["culprit"]["sha"], shas[36], "{v}");
    let runs = intervals(&log);
    assert!(rounds(&runs) <= 3, "{} rounds: {runs:?}", rounds(&runs));
    // One run per commit, as with git bisect.
    let commits: HashSet<&String> = runs.iter().map(|i| &i.key.0).collect();
    assert_eq!(commits.len(), runs.len(), "{runs:?}");
}

#[test]
fn max_guests_is_kept_for_resume_and_checked() {
    let (r, _) = Repo::linear(8, 3, |_| false);
    let out = r.csdci(&[
        "bisect",
        "base",
        "main",
        "--tree",
        &r.path.to_string_lossy(),
        "--run",
        DETERMINISTIC,
        "--max-guests",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-guests"));
    let (code, v) = r.bisect_json("base", "main", DETERMINISTIC, &["--max-guests", "3"]);
    assert_eq!(code, 0, "{v}");
    let out = r.csdci(&["bisect", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tester: Value = serde_json::from_str(list[0]["tester"].as_str().unwrap()).unwrap();
    assert_eq!(tester["max_guests"], 3, "{tester}");
}

/// A lab of three devices through the driver's library API: commit index
/// (1-based) ≥ `culprit` fails. In round `infra_round` the first request
/// hits an infrastructure failure; from round `down_from` on the lab is down
/// (every request an error).
struct Lab {
    index: HashMap<String, usize>,
    culprit: usize,
    round: usize,
    infra_round: Option<usize>,
    down_from: Option<usize>,
    batches: Vec<usize>,
}

impl Lab {
    fn new(shas: &[String], culprit: usize) -> Self {
        Lab {
            index: shas
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), i + 1))
                .collect(),
            culprit,
            round: 0,
            infra_round: None,
            down_from: None,
            batches: Vec::new(),
        }
    }
}

fn report(outcome: csdci::testers::RunOutcome) -> csdci::testers::RunReport {
    csdci::testers::RunReport {
        outcome,
        analysis: None,
        console_log: None,
        run_id: None,
        seconds: 0.0,
        exposure: None,
    }
}

impl csdci::testers::Tester for Lab {
    fn prepare(&mut self, commit: &str) -> csdci::Result<csdci::testers::Prepared> {
        let i = self.index.get(commit).copied().unwrap_or(0);
        Ok(csdci::testers::Prepared::Ready {
            artifact_id: Some(format!("kernel-{i}")),
        })
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> csdci::Result<csdci::testers::RunReport> {
        let req = csdci::testers::RunRequest {
            commit: commit.to_string(),
            attempt,
        };
        self.run_batch(&[req]).pop().unwrap()
    }

    fn workers(&self) -> usize {
        3
    }

    fn run_batch(
        &mut self,
        runs: &[csdci::testers::RunRequest],
    ) -> Vec<csdci::Result<csdci::testers::RunReport>> {
        use csdci::testers::RunOutcome;
        self.round += 1;
        self.batches.push(runs.len());
        let round = self.round;
        runs.iter()
            .enumerate()
            .map(|(k, r)| {
                if self.down_from.is_some_and(|d| round >= d) {
                    return Err(csdci::Error::io(
                        "lava",
                        std::io::Error::other("connection refused"),
                    ));
                }
                if self.infra_round == Some(round) && k == 0 {
                    return Ok(report(RunOutcome::Infra {
                        reason: "device offline".into(),
                    }));
                }
                // Not a candidate (the reverted tip): clean.
                let bad = self
                    .index
                    .get(&r.commit)
                    .is_some_and(|&i| i >= self.culprit);
                Ok(report(if bad {
                    RunOutcome::Fail
                } else {
                    RunOutcome::Pass
                }))
            })
            .collect()
    }
}

fn lab_start(dir: &Path) -> csdci::bisect::Start {
    csdci::bisect::Start {
        tree: dir.to_path_buf(),
        good: vec!["base".into()],
        bad: "main".into(),
        first_parent: false,
        settings: csdci::bisect::Settings::default(),
        tester: serde_json::json!({"kind": "lab"}),
    }
}

#[test]
fn a_round_with_an_infra_failure_or_a_lab_down_records_no_verdict() {
    use csdci::bisect::driver;
    use csdci::store::Store;
    let (r, shas) = Repo::linear(40, 23, |_| false);
    let store = Store::open(&r.data).unwrap();
    // One request of round 2 fails for infrastructure reasons: not evidence,
    // the round's other runs are.
    let mut lab = Lab::new(&shas, 23);
    lab.infra_round = Some(2);
    let id = driver::create(&store, &lab_start(&r.path)).unwrap();
    let rep = driver::run(&store, id, &mut lab, &|_: &csdci::events::Event| {}).unwrap();
    assert_eq!(rep.culprit.as_ref().unwrap().sha, shas[22]);
    assert_eq!(rep.infra_failures, 1);
    assert_eq!(rep.tested.iter().map(|x| x.runs).sum::<u32>(), rep.runs);
    assert!(lab.batches.iter().all(|&b| b <= 3), "{:?}", lab.batches);
    assert_eq!(lab.batches[0], 3, "{:?}", lab.batches);
    // The lab goes down in round 2: the bisection stops after the retries,
    // with no verdict, and finishes once it is back.
    let mut lab = Lab::new(&shas, 23);
    lab.down_from = Some(2);
    let id = driver::create(&store, &lab_start(&r.path)).unwrap();
    let err = driver::run(&store, id, &mut lab, &|_: &csdci::events::Event| {}).unwrap_err();
    assert!(
        matches!(
            err,
            csdci::Error::Bisect(csdci::bisect::Error::Infra { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("connection refused"), "{err}");
    let b = store.bisect_get(id).unwrap().unwrap();
    assert_eq!((b.status.as_str(), b.result.as_deref()), ("failed", None));
    let steps = store.bisect_steps(id, false).unwrap();
    let evidence = |steps: &[csdci::store::bisect::Step]| {
        steps
            .iter()
            .filter(|s| s.kind == "run" && matches!(s.outcome.as_deref(), Some("pass" | "fail")))
            .count()
    };
    assert_eq!(evidence(&steps), 3, "only round 1 is evidence");
    assert!(
        steps
            .iter()
            .filter(|s| s.outcome.as_deref() == Some("infra"))
            .count()
            >= 4
    );
    let mut lab = Lab::new(&shas, 23);
    let rep = driver::run(&store, id, &mut lab, &|_: &csdci::events::Event| {}).unwrap();
    assert_eq!(rep.culprit.as_ref().unwrap().sha, shas[22]);
    let steps = store.bisect_steps(id, false).unwrap();
    assert_eq!(evidence(&steps) as u32, rep.runs);
}

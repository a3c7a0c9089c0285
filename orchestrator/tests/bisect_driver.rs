//! The bisection driver through its library API with a scripted tester: noop
//! (identical-kernel) commits reuse evidence, infrastructure failures are never
//! evidence, and the predicate decides which crashes count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use csdci::bisect::{self, Settings, Start, driver};
use csdci::events::Event;
use csdci::store::Store;
use csdci::testers::{Prepared, RunOutcome, RunReport, Tester};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A linear repository of `n` commits after tag `base`; returns their shas.
fn repo(dir: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("f0"), "0").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "base"]);
    git(dir, &["tag", "base"]);
    (1..=n)
        .map(|i| {
            std::fs::write(dir.join(format!("f{i}")), format!("{i}")).unwrap();
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-qm", &format!("commit {i}")]);
            git(dir, &["rev-parse", "HEAD"])
        })
        .collect()
}

const CSD: &str = "smp: csd: Detected non-responsive CSD lock (#1) on CPU#3, waiting 5000155348 ns for CPU#00 scf_handler_1+0x0/0x21 [scftorture](0xffff888003c1b4a0).\n";
const WARN: &str = "------------[ cut here ]------------\nWARNING: CPU: 1 PID: 7 at mm/slub.c:100 kfree+0x10/0x20\nModules linked in:\n---[ end trace 0000000000000000 ]---\n";

/// Scripted tester: commit index (1-based) ≥ `culprit` fails with a CSD-lock
/// report; every commit below `other_below` crashes with an unrelated WARNING;
/// `infra` runs fail for infrastructure reasons first; `artifact` maps commits to
/// kernel ids.
struct Script {
    index: HashMap<String, usize>,
    culprit: usize,
    other_below: usize,
    infra_left: u32,
    /// Runs after which csdci is "interrupted" (Ctrl-C during the next run).
    interrupt_after: Option<usize>,
    artifact: Box<dyn Fn(usize) -> String>,
    runs: Vec<String>,
    prepares: Vec<String>,
    logs: PathBuf,
}

impl Tester for Script {
    fn prepare(&mut self, commit: &str) -> csdci::Result<Prepared> {
        self.prepares.push(commit.to_string());
        let i = self.index.get(commit).copied().unwrap_or(0);
        Ok(Prepared::Ready {
            artifact_id: Some((self.artifact)(i)),
        })
    }

    fn run_once(&mut self, commit: &str, _attempt: u32) -> csdci::Result<RunReport> {
        if self.interrupt_after == Some(self.runs.len()) {
            return Err(csdci::Error::Interrupted);
        }
        if self.infra_left > 0 {
            self.infra_left -= 1;
            return Ok(RunReport {
                outcome: RunOutcome::Infra {
                    reason: "qemu died".into(),
                },
                analysis: None,
                console_log: None,
                run_id: None,
                seconds: 0.0,
                exposure: None,
            });
        }
        self.runs.push(commit.to_string());
        // Not a candidate (the reverted tip): clean.
        let i = self.index.get(commit).copied();
        let console = match i {
            Some(i) if i >= self.culprit => CSD,
            Some(i) if i < self.other_below => WARN,
            _ => "scftorture: End of test: SUCCESS\n",
        };
        let log = self
            .logs
            .join(format!("{}-{}.log", &commit[..8], self.runs.len()));
        std::fs::write(&log, console).unwrap();
        let analysis = csdci_console::analyze(console.as_bytes());
        Ok(RunReport {
            outcome: if analysis.findings.is_empty() {
                RunOutcome::Pass
            } else {
                RunOutcome::Fail
            },
            analysis: Some(analysis),
            console_log: Some(log),
            run_id: None,
            seconds: 0.0,
            exposure: None,
        })
    }
}

fn setup(n: usize) -> (tempfile::TempDir, PathBuf, Vec<String>, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let shas = repo(&dir, n);
    let store = Store::open(&tmp.path().join("data")).unwrap();
    (tmp, dir, shas, store)
}

fn script(shas: &[String], culprit: usize, logs: &Path) -> Script {
    Script {
        index: shas
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i + 1))
            .collect(),
        culprit,
        other_below: 0,
        infra_left: 0,
        interrupt_after: None,
        artifact: Box::new(|i| format!("kernel-{i}")),
        runs: Vec::new(),
        prepares: Vec::new(),
        logs: logs.to_path_buf(),
    }
}

fn start(dir: &Path, predicate: &str) -> Start {
    Start {
        tree: dir.to_path_buf(),
        good: vec!["base".into()],
        bad: "main".into(),
        first_parent: false,
        settings: Settings {
            predicate: predicate.into(),
            ..Settings::default()
        },
        tester: serde_json::json!({"kind": "script"}),
    }
}

#[test]
fn noop_commits_reuse_evidence_and_csd_predicate_ignores_other_crashes() {
    let (tmp, dir, shas, store) = setup(40);
    let mut t = script(&shas, 25, tmp.path());
    // Commits 20..=30 build the very same kernel as commit 19, except the culprit.
    t.artifact = Box::new(|i| {
        if (20..=30).contains(&i) && i != 25 {
            if i < 25 {
                "kernel-19".into()
            } else {
                "kernel-25".into()
            }
        } else {
            format!("kernel-{i}")
        }
    });
    t.other_below = 10;
    let id = driver::create(&store, &start(&dir, "csd")).unwrap();
    let r = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap();
    assert_eq!(r.culprit.as_ref().unwrap().sha, shas[24]);
    // Commits below 10 crashed, but not with a CSD lock: counted as passes, and said.
    let different: Vec<_> = r
        .tested
        .iter()
        .filter(|x| !x.crashed_differently.is_empty())
        .collect();
    for x in &different {
        assert!(x.crashed_differently[0].contains("WARNING"), "{x:?}");
        assert_eq!(x.fails, 0);
    }
    assert!(r.titles.iter().any(|t| t.contains("CSD")), "{:?}", r.titles);
    // Of commits building the same kernel only one was ever run: the others
    // reused its evidence.
    for group in [19..=24, 25..=30] {
        let run: std::collections::HashSet<&String> = group
            .clone()
            .map(|i| &shas[i - 1])
            .filter(|s| t.runs.contains(s))
            .collect();
        assert!(run.len() <= 1, "{group:?}: {} commits run", run.len());
    }
    assert!(
        r.tested.iter().any(|x| x.same_as.is_some()),
        "{:?}",
        r.tested
    );
    assert_eq!(r.revert_check.status, "fixes");
    assert!(
        r.first_failure
            .as_ref()
            .unwrap()
            .excerpt
            .iter()
            .any(|l| l.contains("CSD lock"))
    );
}

#[test]
fn infrastructure_failures_are_retried_and_never_evidence() {
    let (tmp, dir, shas, store) = setup(30);
    let mut t = script(&shas, 12, tmp.path());
    t.infra_left = 3;
    let id = driver::create(&store, &start(&dir, "any")).unwrap();
    let r = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap();
    assert_eq!(r.culprit.as_ref().unwrap().sha, shas[11]);
    assert_eq!(r.infra_failures, 3);
    let runs: u32 = r.tested.iter().map(|x| x.runs).sum();
    assert_eq!(runs, r.runs);

    // Infra without end: a clear error after the retries, resumable.
    let mut t = script(&shas, 12, tmp.path());
    t.infra_left = u32::MAX;
    let id = driver::create(&store, &start(&dir, "any")).unwrap();
    let err = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, csdci::Error::Bisect(bisect::Error::Infra { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("qemu died") && msg.contains("--resume"),
        "{msg}"
    );
    let b = store.bisect_get(id).unwrap().unwrap();
    assert_eq!(b.status, "failed");
    // Resume with a working tester finishes the job.
    let mut t = script(&shas, 12, tmp.path());
    let r = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap();
    assert_eq!(r.culprit.as_ref().unwrap().sha, shas[11]);
}

#[test]
fn an_interrupt_stops_the_bisection_at_once_and_resume_finishes_it() {
    let (tmp, dir, shas, store) = setup(30);
    let mut t = script(&shas, 9, tmp.path());
    t.interrupt_after = Some(3);
    let id = driver::create(&store, &start(&dir, "any")).unwrap();
    let err = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap_err();
    assert!(err.is_interrupt(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("csdci bisect --resume {id}")),
        "{err}"
    );
    assert_eq!(t.runs.len(), 3, "no run after the interrupt");
    // Not an infrastructure failure, and the run it cut is no evidence.
    let steps = store.bisect_steps(id, false).unwrap();
    assert!(steps.iter().all(|s| s.outcome.as_deref() != Some("infra")));
    assert_eq!(store.bisect_get(id).unwrap().unwrap().status, "failed");
    // The same bisection asked for again is found to resume; other settings are not.
    assert_eq!(
        driver::unfinished(&store, &start(&dir, "any")).unwrap(),
        Some(id)
    );
    assert_eq!(
        driver::unfinished(&store, &start(&dir, "csd")).unwrap(),
        None
    );
    let mut t = script(&shas, 9, tmp.path());
    let r = driver::run(&store, id, &mut t, &|_: &Event| {}).unwrap();
    assert_eq!(r.culprit.as_ref().unwrap().sha, shas[8]);
    assert_eq!(r.infra_failures, 0);
    assert_eq!(
        driver::unfinished(&store, &start(&dir, "any")).unwrap(),
        None
    );
}

//! The driver: candidates from the commit graph, engine steps, tester calls, the
//! journal, the revert check.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use csdci_bisect::{BatchStep, Conclusion, Config, Engine, Obs, StopReason, TimedConfig};
use serde::{Deserialize, Serialize};

use super::outcome::RunObs;
use super::policy::{Next, Policy, StageEngine, replay_timed};
use super::report::{self, Report};
use super::{Error, Predicate};
use crate::events::{Event, Events, short};
use crate::store::Store;
use crate::store::bisect::{BisectLock, Finish, NewBisection, PosteriorRow, Step};
use crate::testers::{Prepared, RunOutcome, RunPlan, RunReport, RunRequest, Tester};
use crate::vcs::graph::Graph;
use crate::vcs::revert::{Revert, revert_on_tip};

/// Settings of a bisection (stored with it, so `--resume` uses the same).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Engine settings (confidence, run budget, failure-rate grids, costs).
    pub engine: Config,
    /// Which failures count: `any`, `csd` or `title:REGEX`.
    pub predicate: String,
    /// Infrastructure failures in a row tolerated before stopping.
    pub infra_retries: u32,
    /// After isolating the culprit, test the bad tip with the culprit reverted.
    pub revert_check: bool,
    /// The test is deterministic (`--deterministic`): one run per commit, as
    /// `git bisect run`; results that contradict each other end the bisection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deterministic: bool,
    /// With `--policy timed`: the failure-time engine's settings (absent:
    /// `--policy runs`, the engine above alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed: Option<TimedConfig>,
}

impl Settings {
    /// The policy these settings bisect with.
    pub fn policy(&self) -> Policy {
        if self.timed.is_some() {
            Policy::Timed
        } else {
            Policy::Runs
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: Config::default(),
            predicate: "any".into(),
            infra_retries: 3,
            revert_check: true,
            deterministic: false,
            timed: None,
        }
    }
}

/// What to bisect.
#[derive(Debug, Clone)]
pub struct Start {
    /// A path inside the git repository.
    pub tree: PathBuf,
    /// Good revisions (at least one).
    pub good: Vec<String>,
    /// The bad revision.
    pub bad: String,
    /// Follow first parents only (never descend into merged branches).
    pub first_parent: bool,
    /// Settings.
    pub settings: Settings,
    /// How commits are tested, as JSON the caller can rebuild the tester from on
    /// `--resume` (e.g. `{"kind": "run", "cmd": "./t.sh"}`).
    pub tester: serde_json::Value,
}

fn usage(msg: impl Into<String>) -> crate::Error {
    crate::Error::Usage(msg.into())
}

/// `start`'s repository, good shas and bad sha, checked.
fn resolve(start: &Start) -> crate::Result<(PathBuf, Vec<String>, String)> {
    if start.good.is_empty() {
        return Err(usage("csdci bisect: give at least one good revision"));
    }
    start
        .settings
        .engine
        .validate()
        .map_err(|e| usage(format!("csdci bisect: {e}")))?;
    if let Some(t) = &start.settings.timed {
        t.validate()
            .map_err(|e| usage(format!("csdci bisect: --policy timed: {e}")))?;
    }
    Predicate::parse(&start.settings.predicate).map_err(usage)?;
    let repo = crate::vcs::open_tree(&start.tree)?;
    let graph = Graph::open(&repo)?;
    let bad = graph.resolve(&start.bad)?;
    let good: Vec<String> = start
        .good
        .iter()
        .map(|g| graph.resolve(g))
        .collect::<Result<_, _>>()?;
    for g in &good {
        if graph.is_ancestor(&bad, g)? {
            return Err(usage(format!(
                "csdci bisect: the bad revision {} is an ancestor of (or equal to) the good revision {} (swap them?)",
                start.bad,
                &g[..12]
            )));
        }
    }
    graph
        .candidates(&good, &bad)
        .map_err(|e| usage(e.to_string()))?;
    Ok((repo, good, bad))
}

fn settings_json(start: &Start) -> String {
    serde_json::to_string(&start.settings).unwrap_or_default()
}

/// Checks `start`, resolves its revisions and records the bisection; returns its
/// id. Nothing is tested yet.
pub fn create(store: &Store, start: &Start) -> crate::Result<i64> {
    let (repo, good, bad) = resolve(start)?;
    let id = store.bisect_create(&NewBisection {
        repo: &repo.to_string_lossy(),
        good: &good,
        bad: &bad,
        first_parent: start.first_parent,
        predicate: &start.settings.predicate,
        tester: &start.tester.to_string(),
        settings: &settings_json(start),
    })?;
    Ok(id)
}

/// The newest bisection of exactly `start` (same repository, revisions, tester
/// and settings) that has not finished: interrupted, killed or stopped by an
/// infrastructure failure, and not being driven by another process now.
/// Resuming it reuses every finished step.
pub fn unfinished(store: &Store, start: &Start) -> crate::Result<Option<i64>> {
    let (repo, good, bad) = resolve(start)?;
    let (repo, tester, settings) = (
        repo.to_string_lossy().to_string(),
        start.tester.to_string(),
        settings_json(start),
    );
    Ok(store
        .bisect_list()?
        .into_iter()
        .find(|b| {
            // Not finished, and no process drives it now (that would be
            // `running`: the store checks its lock).
            matches!(b.status.as_str(), "stopped" | "failed")
                && b.repo == repo
                && b.good == good
                && b.bad == bad
                && b.first_parent == start.first_parent
                && b.tester == tester
                && b.settings == settings
        })
        .map(|b| b.id))
}

/// A stage: one linear candidate list (see [`crate::vcs::graph`]).
struct Stage {
    number: u32,
    candidates: Vec<String>,
    engine: StageEngine,
}

/// What one run showed, after the predicate.
struct Classified {
    outcome: RunObs,
    reason: Option<String>,
    titles: Vec<String>,
}

fn classify(predicate: &Predicate, r: &RunReport) -> Classified {
    let titles: Vec<String> = r
        .analysis
        .as_ref()
        .map(|a| {
            // Distinct titles, in the order they first appeared.
            let mut t: Vec<String> = Vec::new();
            for f in &a.findings {
                if !t.contains(&f.title) {
                    t.push(f.title.clone());
                }
            }
            if t.is_empty()
                && let Some(x) = &a.title
            {
                t.push(x.clone());
            }
            t
        })
        .unwrap_or_default();
    let (outcome, reason) = RunObs::classify(predicate, &r.outcome, r.analysis.as_ref());
    Classified {
        outcome,
        reason,
        titles,
    }
}

/// Rebuilds the engine of one candidate list from the journal.
fn replay(cfg: &Config, candidates: &[String], steps: &[Step]) -> crate::Result<Engine> {
    let index: HashMap<&str, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut e = Engine::new(candidates.len(), cfg.clone()).map_err(Error::from)?;
    for s in steps.iter().filter(|s| s.status == "done") {
        let Some(&i) = index.get(s.commit.as_str()) else {
            continue;
        };
        let obs = match (s.kind.as_str(), s.outcome.as_deref()) {
            ("build", Some("untestable")) => Some(Obs::Skip),
            ("build", Some("ready")) => s
                .same_as
                .as_deref()
                .and_then(|c| index.get(c))
                .map(|&k| Obs::SameAs(k)),
            ("run", o) => RunObs::of(o).and_then(RunObs::obs),
            _ => None,
        };
        if let Some(o) = obs {
            e.observe(i, o).map_err(Error::from)?;
        }
    }
    Ok(e)
}

fn counted_run(s: &Step) -> bool {
    s.kind == "run"
        && s.status == "done"
        && RunObs::of(s.outcome.as_deref()).is_some_and(RunObs::counts)
}

/// The journal's built kernels: commit to artifact id.
fn ready_artifacts(steps: &[Step]) -> HashMap<String, String> {
    steps
        .iter()
        .filter(|s| s.kind == "build" && s.outcome.as_deref() == Some("ready"))
        .filter_map(|s| s.artifact_id.clone().map(|a| (s.commit.clone(), a)))
        .collect()
}

/// The candidates already run: only they can lend their evidence to a noop
/// commit.
fn already_run(steps: &[Step], candidates: &[String]) -> Vec<String> {
    let run: HashSet<&str> = steps
        .iter()
        .filter(|s| counted_run(s))
        .map(|s| s.commit.as_str())
        .collect();
    candidates
        .iter()
        .filter(|c| run.contains(c.as_str()))
        .cloned()
        .collect()
}

/// A bisection being driven.
struct Driver<'a> {
    store: &'a Store,
    id: i64,
    repo: PathBuf,
    good: Vec<String>,
    bad: String,
    first_parent: bool,
    settings: Settings,
    predicate: Predicate,
    graph: Graph,
    events: &'a dyn Events,
    /// The leading candidate and its posterior before the next run, and how
    /// many candidates there are (for progress events).
    leader: (Option<String>, f64, usize),
    /// The commit the tester has prepared now, and its artifact id.
    prepared: Option<(String, Option<String>)>,
    infra_streak: u32,
    /// In a parallel bisection: the commits prepared for the round before.
    ready: HashSet<String>,
    /// With `--deterministic`: why the results contradict each other, once they do.
    inconsistent: Option<String>,
    /// With the timed policy: the length of a control run (merge base, tip,
    /// reverted tip), never stopped early.
    control_length: Option<f64>,
}

impl Driver<'_> {
    /// Under --deterministic, the engine asked to run `again` a second
    /// time: the results contradict each other, so the stage ends with what
    /// it has and the report says why.
    fn contradicted(&mut self, stage: Stage, again: &str) -> (Stage, Conclusion) {
        let (best, confidence) = stage.engine.best();
        self.inconsistent = Some(format!(
            "the test is not deterministic: its results contradict each other (the engine asked to run {} again); bisect without --deterministic",
            short(again)
        ));
        let conclusion = Conclusion {
            candidates: best,
            confidence,
            reason: StopReason::NothingToTest,
        };
        (stage, conclusion)
    }

    fn say(&mut self, text: String) {
        self.events.emit(&Event::Note { text });
    }

    /// The stage the journal is in now: the first-parent chain, then (unless
    /// first-parent mode) the branch of each merge found as culprit.
    fn stage(&self, steps: &[Step]) -> crate::Result<Stage> {
        let mut candidates = self.graph.candidates(&self.good, &self.bad)?;
        let mut descended: HashSet<String> = HashSet::new();
        let mut number = 0;
        loop {
            let mut cfg = self.settings.engine.clone();
            if number > 0 {
                // A merged branch's list ends with the merge, which stage 0
                // already found bad: its tip needs no verification.
                cfg.verify_bad_runs = 0;
            }
            if let Some(max) = cfg.max_runs {
                let inside: HashSet<&str> = candidates.iter().map(String::as_str).collect();
                let outside = steps
                    .iter()
                    .filter(|s| counted_run(s) && !inside.contains(s.commit.as_str()))
                    .count() as u32;
                cfg.max_runs = Some(max.saturating_sub(outside));
            }
            let engine = match &self.settings.timed {
                None => StageEngine::Runs(replay(&cfg, &candidates, steps)?),
                Some(t) => {
                    let t = TimedConfig {
                        verify_bad_runs: cfg.verify_bad_runs.min(t.verify_bad_runs),
                        max_runs: cfg.max_runs,
                        confidence: cfg.confidence,
                        ..t.clone()
                    };
                    StageEngine::Timed(replay_timed(&t, &candidates, steps)?)
                }
            };
            if !self.first_parent
                && let Next::Done(c) = engine.next()
                && let Some(i) = c.culprit()
                && !descended.contains(&candidates[i])
                && let Some(branch) = self.graph.branch_of_merge(&self.good, &candidates[i])?
            {
                descended.insert(candidates[i].clone());
                candidates = branch;
                number += 1;
                continue;
            }
            return Ok(Stage {
                number,
                candidates,
                engine,
            });
        }
    }

    fn infra(&mut self, commit: &str, reason: String) -> crate::Result<()> {
        self.infra_streak += 1;
        self.prepared = None;
        self.say(format!(
            "infrastructure failure at {} ({}/{}): {reason}",
            short(commit),
            self.infra_streak,
            self.settings.infra_retries + 1
        ));
        if self.infra_streak > self.settings.infra_retries {
            return Err(Error::Infra {
                id: self.id,
                commit: commit.to_string(),
                attempts: self.infra_streak,
                reason,
            }
            .into());
        }
        Ok(())
    }

    /// Errors that end the bisection at once rather than count as an
    /// infrastructure failure: the `--run` command aborted, or csdci was asked
    /// to stop (SIGINT/SIGTERM).
    fn is_abort(e: &crate::Error) -> bool {
        matches!(
            e,
            crate::Error::Bisect(Error::Aborted { .. }) | crate::Error::Interrupted
        )
    }

    /// Prepares `commit` (journalled as `kind`); returns `Some(artifact)` when ready,
    /// `None` when untestable or an infrastructure failure was journalled.
    fn prepare(
        &mut self,
        tester: &mut dyn Tester,
        kind: &str,
        commit: &str,
        noop_among: &[String],
        artifacts: &HashMap<String, String>,
    ) -> crate::Result<Option<(Option<String>, Option<String>)>> {
        let step = self.store.bisect_step_start(self.id, kind, commit, None)?;
        let subject = self
            .graph
            .info(commit)
            .map(|i| i.subject)
            .unwrap_or_default();
        self.say(format!("preparing {} {subject}", short(commit)));
        self.events.emit(&Event::BuildStarted {
            commit: commit.to_string(),
        });
        let started = std::time::Instant::now();
        let prepared = tester.prepare(commit);
        let took = started.elapsed().as_secs_f64();
        let seconds = Some(took);
        self.events.emit(&Event::BuildFinished {
            commit: commit.to_string(),
            outcome: match &prepared {
                Ok(Prepared::Ready { .. }) => "ready",
                Ok(Prepared::Untestable { .. }) => "untestable",
                Err(_) => "infra",
            }
            .into(),
            seconds: took,
        });
        match prepared {
            Ok(Prepared::Untestable { reason }) => {
                self.store.bisect_step_finish(
                    step,
                    &Finish {
                        outcome: "untestable",
                        reason: Some(&reason),
                        seconds,
                        ..Finish::default()
                    },
                )?;
                self.say(format!("{} cannot be tested: {reason}", short(commit)));
                self.prepared = None;
                self.infra_streak = 0;
                Ok(None)
            }
            Ok(Prepared::Ready { artifact_id }) => {
                let same_as = artifact_id.as_ref().and_then(|a| {
                    noop_among
                        .iter()
                        .find(|c| c.as_str() != commit && artifacts.get(c.as_str()) == Some(a))
                        .cloned()
                });
                self.store.bisect_step_finish(
                    step,
                    &Finish {
                        outcome: "ready",
                        artifact_id: artifact_id.as_deref(),
                        same_as: same_as.as_deref(),
                        seconds,
                        ..Finish::default()
                    },
                )?;
                if let Some(s) = &same_as {
                    self.say(format!(
                        "{} builds the same kernel as {}: reusing its evidence",
                        short(commit),
                        short(s)
                    ));
                }
                self.prepared = Some((commit.to_string(), artifact_id.clone()));
                Ok(Some((artifact_id, same_as)))
            }
            Err(e) if Self::is_abort(&e) => Err(e),
            Err(e) => {
                self.infra_step(step, commit, &e)?;
                Ok(None)
            }
        }
    }

    /// Journals `step` as an infrastructure failure of the tester (never
    /// evidence) and counts it towards the retry limit.
    fn infra_step(&mut self, step: i64, commit: &str, e: &crate::Error) -> crate::Result<()> {
        let reason = e.to_string();
        self.store.bisect_step_finish(
            step,
            &Finish {
                outcome: "infra",
                reason: Some(&reason),
                ..Finish::default()
            },
        )?;
        self.infra(commit, reason)
    }

    /// Runs the prepared commit once, journalled as `kind` under `commit` (which
    /// may be a commit with the same artifact as the one prepared); with a
    /// `plan` (the timed policy), for as long as it says.
    fn run_once(
        &mut self,
        tester: &mut dyn Tester,
        kind: &str,
        commit: &str,
        attempt: u32,
        plan: Option<&RunPlan<'_>>,
    ) -> crate::Result<Option<(i64, &'static str)>> {
        let physical = self
            .prepared
            .as_ref()
            .map(|p| p.0.clone())
            .unwrap_or_else(|| commit.to_string());
        let step = self.start_run(kind, commit, attempt)?;
        let report = match plan {
            Some(plan) => tester.run_planned(&physical, attempt, plan),
            None => tester.run_once(&physical, attempt),
        };
        self.finish_run(step, kind, commit, attempt, report)
    }

    /// Announces a run and journals its start; returns the step's id.
    fn start_run(&mut self, kind: &str, commit: &str, attempt: u32) -> crate::Result<i64> {
        let done = self
            .store
            .bisect_steps(self.id, true)?
            .iter()
            .filter(|s| s.kind.ends_with("run"))
            .count() as u32;
        let (leader, leader_p, candidates) = self.leader.clone();
        self.events.emit(&Event::Step {
            step: done + 1,
            kind: kind.to_string(),
            commit: commit.to_string(),
            subject: self
                .graph
                .info(commit)
                .map(|i| i.subject)
                .unwrap_or_default(),
            attempt,
            leader,
            leader_p,
            candidates,
        });
        Ok(self
            .store
            .bisect_step_start(self.id, kind, commit, Some(attempt))?)
    }

    /// Journals the result of the run started as `step`: the tester's error
    /// as an infrastructure failure (an abort ends the bisection, the step
    /// left unfinished), a report as what it showed.
    fn finish_run(
        &mut self,
        step: i64,
        kind: &str,
        commit: &str,
        attempt: u32,
        report: crate::Result<RunReport>,
    ) -> crate::Result<Option<(i64, &'static str)>> {
        let report = match report {
            Ok(r) => r,
            Err(e) if Self::is_abort(&e) => return Err(e),
            Err(e) => {
                self.infra_step(step, commit, &e)?;
                return Ok(None);
            }
        };
        let c = classify(&self.predicate, &report);
        self.events.emit(&Event::RunFinished {
            kind: kind.to_string(),
            commit: commit.to_string(),
            attempt,
            outcome: c.outcome.as_str().to_string(),
            seconds: report.seconds,
        });
        let log = report
            .console_log
            .as_ref()
            .map(|p| p.to_string_lossy().to_string());
        self.store.bisect_step_finish(
            step,
            &Finish {
                outcome: c.outcome.as_str(),
                reason: c.reason.as_deref(),
                titles: &c.titles,
                console_log: log.as_deref(),
                run_id: report.run_id,
                seconds: Some(report.seconds),
                exposure_s: report.exposure.map(|x| x.exposure_s),
                failed_at_s: report.exposure.and_then(|x| x.failed_at_s),
                ..Finish::default()
            },
        )?;
        if c.outcome == RunObs::Infra {
            self.infra(commit, c.reason.unwrap_or_default())?;
            return Ok(None);
        }
        self.infra_streak = 0;
        if c.outcome == RunObs::Skip {
            self.prepared = None;
        }
        let shown = match c.outcome {
            RunObs::Other => format!("crashed differently ({})", c.titles.join("; ")),
            o => o.as_str().to_uppercase(),
        };
        self.say(format!(
            "run {} of {}: {shown} ({:.1} s)",
            attempt + 1,
            short(commit),
            report.seconds
        ));
        Ok(Some((step, c.outcome.as_str())))
    }

    /// After a finished run (the last of a round): journals the posterior
    /// and names the leading candidate once it is more likely than not.
    fn after_run(&mut self, step: i64) -> crate::Result<()> {
        let steps = self.store.bisect_steps(self.id, true)?;
        let stage = self.stage(&steps)?;
        self.journal_posterior(step, &stage)?;
        let (best, conf) = stage.engine.best();
        if let [i] = best.as_slice()
            && conf >= 0.5
        {
            self.say(format!(
                "most likely culprit {} ({:.1}%)",
                short(&stage.candidates[*i]),
                conf * 100.0
            ));
        }
        Ok(())
    }

    fn journal_posterior(&self, step: i64, stage: &Stage) -> crate::Result<()> {
        let post = stage.engine.posterior();
        let mut order: Vec<usize> = (0..post.len()).collect();
        order.sort_by(|&a, &b| post[b].total_cmp(&post[a]));
        let top: Vec<(String, f64)> = order
            .iter()
            .take(5)
            .map(|&i| (stage.candidates[i].clone(), post[i]))
            .collect();
        let (fail_rate, false_fail) = stage.engine.rates();
        self.store.bisect_posterior(
            self.id,
            step,
            &PosteriorRow {
                stage: stage.number,
                confidence: stage.engine.best().1,
                top: serde_json::to_string(&top).unwrap_or_default(),
                fail_rate,
                false_fail,
            },
        )?;
        Ok(())
    }

    /// Whether the merge bases are tested now: first, as `git bisect` does, but
    /// after the bad tip's verification runs (which tell whether there is a
    /// failure at all, and how often it fails).
    fn merge_base_turn(&self, stage: &Stage) -> Turn {
        let (verify_runs, verify_fails) = stage.engine.verify();
        let (runs, fails) = stage.engine.counts(stage.candidates.len() - 1);
        let verified = stage.number > 0 || verify_runs == 0 || fails >= verify_fails;
        if verified || (runs >= verify_runs && fails > 0) {
            Turn::Now
        } else if runs >= verify_runs {
            Turn::Never
        } else {
            Turn::Later
        }
    }

    /// One engine step; returns the conclusion when the engine is done.
    fn step(&mut self, tester: &mut dyn Tester) -> crate::Result<Option<(Stage, Conclusion)>> {
        let steps = self.store.bisect_steps(self.id, true)?;
        let stage = self.stage(&steps)?;
        let (index, max_exposure_s) = match stage.engine.next() {
            Next::Done(c) => return Ok(Some((stage, c))),
            Next::Test {
                index,
                max_exposure_s,
            } => (index, max_exposure_s),
        };
        let commit = stage.candidates[index].clone();
        if self.settings.deterministic && stage.engine.counts(index).0 > 0 {
            // One run per commit: the engine asks again only when results
            // contradict each other.
            return Ok(Some(self.contradicted(stage, &commit)));
        }
        let artifacts = ready_artifacts(&steps);
        let ready = match &self.prepared {
            Some((p, _)) if *p == commit => true,
            Some((_, Some(a))) => artifacts.get(&commit) == Some(a),
            _ => false,
        };
        if !ready {
            let among = already_run(&steps, &stage.candidates);
            match self.prepare(tester, "build", &commit, &among, &artifacts)? {
                Some((_, None)) => {}
                // Untestable, infra, or a noop commit: let the engine decide anew.
                _ => return Ok(None),
            }
        }
        let attempt = steps
            .iter()
            .filter(|s| s.commit == commit && counted_run(s))
            .count() as u32;
        let (best, p) = stage.engine.best();
        self.leader = (
            match best.as_slice() {
                [i] => Some(stage.candidates[*i].clone()),
                _ => None,
            },
            p,
            stage.candidates.len(),
        );
        let should_stop = |elapsed: f64| {
            max_exposure_s.is_some_and(|m| stage.engine.should_stop(index, m, elapsed))
        };
        let predicate = self.predicate.clone();
        let plan = max_exposure_s.map(|m| RunPlan {
            max_exposure_s: m,
            should_stop: &should_stop,
            ends_on: Some(&predicate),
        });
        if let Some((step, _)) = self.run_once(tester, "run", &commit, attempt, plan.as_ref())? {
            self.after_run(step)?;
        }
        Ok(None)
    }

    /// One round of a parallel bisection with `workers` testers: the engine's
    /// batch, its commits prepared one after another (an untestable or noop
    /// commit, or an infrastructure failure, sends the round back to the
    /// engine), then its runs at once ([`Tester::run_batch`]), each journalled
    /// as it would be alone: started before the batch, finished with its own
    /// result, so a kill mid-round loses only the unfinished runs.
    fn batch_step(
        &mut self,
        tester: &mut dyn Tester,
        workers: usize,
    ) -> crate::Result<Option<(Stage, Conclusion)>> {
        let steps = self.store.bisect_steps(self.id, true)?;
        let stage = self.stage(&steps)?;
        let runs = match stage.engine.next_batch(workers) {
            BatchStep::Done(c) => return Ok(Some((stage, c))),
            BatchStep::Test { runs } => runs,
        };
        if self.settings.deterministic
            && let Some(&again) = runs.iter().find(|&&i| stage.engine.counts(i).0 > 0)
        {
            let again = stage.candidates[again].clone();
            return Ok(Some(self.contradicted(stage, &again)));
        }
        let mut distinct = runs.clone();
        distinct.dedup();
        let commits: Vec<String> = distinct
            .iter()
            .map(|&i| stage.candidates[i].clone())
            .collect();
        // Commits of the round before that this one runs again stay prepared.
        self.ready.retain(|c| commits.contains(c));
        let artifacts = ready_artifacts(&steps);
        let among = already_run(&steps, &stage.candidates);
        for commit in &commits {
            if self.ready.contains(commit) {
                continue;
            }
            match self.prepare(tester, "build", commit, &among, &artifacts)? {
                Some((_, None)) => {
                    self.ready.insert(commit.clone());
                }
                // Untestable, infra, or a noop commit: let the engine decide anew.
                _ => return Ok(None),
            }
        }
        let (best, p) = stage.engine.best();
        self.leader = (
            match best.as_slice() {
                [i] => Some(stage.candidates[*i].clone()),
                _ => None,
            },
            p,
            stage.candidates.len(),
        );
        self.say(format!(
            "round of {} run{} on {} commit{} at once",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            commits.len(),
            if commits.len() == 1 { "" } else { "s" }
        ));
        let mut requests = Vec::with_capacity(runs.len());
        let mut started = Vec::with_capacity(runs.len());
        let mut again: HashMap<usize, u32> = HashMap::new();
        for &i in &runs {
            let commit = stage.candidates[i].clone();
            let before = steps
                .iter()
                .filter(|s| s.commit == commit && counted_run(s))
                .count() as u32;
            let k = again.entry(i).or_insert(0);
            let attempt = before + *k;
            *k += 1;
            let step = self.start_run("run", &commit, attempt)?;
            requests.push(RunRequest {
                commit: commit.clone(),
                attempt,
            });
            started.push((step, commit, attempt));
        }
        let mut results: Vec<Option<crate::Result<RunReport>>> =
            tester.run_batch(&requests).into_iter().map(Some).collect();
        results.resize_with(started.len(), || {
            Some(Err(crate::Error::Usage(
                "the tester returned fewer results than runs asked for".into(),
            )))
        });
        // Infrastructure failures first, then the runs that worked: one run
        // that worked in the round ends the streak of failures.
        let infra = |r: &crate::Result<RunReport>| match r {
            Ok(r) => matches!(r.outcome, RunOutcome::Infra { .. }),
            Err(e) => !Self::is_abort(e),
        };
        let mut order: Vec<usize> = (0..started.len()).collect();
        order.sort_by_key(|&k| !results[k].as_ref().is_some_and(infra));
        let (mut abort, mut infra_err, mut hard) = (None, None, None);
        let mut last = None;
        for k in order {
            let (step, commit, attempt) = &started[k];
            let Some(result) = results[k].take() else {
                continue;
            };
            match result {
                Err(e) if Self::is_abort(&e) => {
                    abort.get_or_insert(e);
                }
                result => match self.finish_run(*step, "run", commit, *attempt, result) {
                    Ok(Some(done)) => {
                        infra_err = None;
                        last = last.max(Some(done.0));
                    }
                    Ok(None) => {}
                    Err(e @ crate::Error::Bisect(Error::Infra { .. })) => {
                        infra_err.get_or_insert(e);
                    }
                    Err(e) => {
                        hard.get_or_insert(e);
                    }
                },
            }
        }
        if let Some(step) = last {
            self.after_run(step)?;
        }
        match abort.or(hard).or(infra_err) {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Runs that make a failure of a still-bad kernel likely at 99%, at the
    /// estimated per-run failure probability (one with `--deterministic`).
    fn planned_runs(&self, fail_rate: f64) -> u32 {
        if self.settings.deterministic {
            return 1;
        }
        let p = fail_rate.clamp(0.05, 0.99);
        ((0.01f64).ln() / (1.0 - p).ln()).ceil().clamp(2.0, 30.0) as u32
    }

    /// Tests a commit outside the candidate list (a merge base, the bad tip as a
    /// control, the reverted tip), journalled as `kinds`: runs it until it fails
    /// or has passed as often as [`Driver::planned_runs`] says at `fail_rate`.
    /// Resumes from the journal.
    fn control(
        &mut self,
        tester: &mut dyn Tester,
        kinds: Kinds,
        commit: &str,
        fail_rate: f64,
    ) -> crate::Result<report::Check> {
        let planned = self.planned_runs(fail_rate);
        let check = |runs, fails, untestable| report::Check {
            commit: commit.to_string(),
            runs,
            fails,
            untestable,
        };
        loop {
            let steps = self.store.bisect_steps(self.id, true)?;
            let mine = |k: &'static str| {
                steps
                    .iter()
                    .filter(move |s| s.kind == k && s.commit == commit)
            };
            if let Some(s) = mine(kinds.build).find(|s| s.outcome.as_deref() == Some("untestable"))
            {
                return Ok(check(0, 0, Some(s.reason.clone().unwrap_or_default())));
            }
            if let Some(s) =
                mine(kinds.run).find(|s| RunObs::of(s.outcome.as_deref()) == Some(RunObs::Skip))
            {
                return Ok(check(0, 0, Some(s.reason.clone().unwrap_or_default())));
            }
            let runs = mine(kinds.run)
                .filter(|s| RunObs::of(s.outcome.as_deref()).is_some_and(RunObs::counts))
                .count() as u32;
            let fails = mine(kinds.run)
                .filter(|s| RunObs::of(s.outcome.as_deref()) == Some(RunObs::Fail))
                .count() as u32;
            if fails > 0 || runs >= planned {
                return Ok(check(runs, fails, None));
            }
            if self.prepared.as_ref().map(|p| p.0.as_str()) != Some(commit)
                && self
                    .prepare(tester, kinds.build, commit, &[], &HashMap::new())?
                    .is_none()
            {
                continue;
            }
            let never = |_: f64| false;
            let predicate = self.predicate.clone();
            let plan = self.control_length.map(|m| RunPlan {
                max_exposure_s: m,
                should_stop: &never,
                ends_on: Some(&predicate),
            });
            self.run_once(tester, kinds.run, commit, runs, plan.as_ref())?;
        }
    }

    /// The merge bases of the bad revision and the good ones that are not good
    /// revisions themselves: like `git bisect`, they must be shown good before
    /// the candidates between them and the bad revision can be trusted.
    fn merge_bases(&self) -> crate::Result<Vec<String>> {
        let mut args = vec!["merge-base", "--all", self.bad.as_str()];
        args.extend(self.good.iter().map(String::as_str));
        let out = crate::vcs::git(&self.repo, &args).unwrap_or_default();
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !self.good.iter().any(|g| g == l))
            .map(str::to_string)
            .collect())
    }

    /// Tests every merge base (see [`Driver::merge_bases`]); returns the checks.
    fn check_merge_bases(
        &mut self,
        tester: &mut dyn Tester,
        fail_rate: f64,
    ) -> crate::Result<Vec<report::Check>> {
        let mut checks = Vec::new();
        for mb in self.merge_bases()? {
            self.say(format!(
                "testing the merge base {} of the good and bad revisions first",
                short(&mb)
            ));
            let check = self.control(tester, MERGE_BASE, &mb, fail_rate)?;
            let bad = check.fails > 0;
            checks.push(check);
            if bad {
                break;
            }
        }
        Ok(checks)
    }

    /// Reverts the culprit on the bad tip and tests that; returns the check.
    fn revert_check(
        &mut self,
        tester: &mut dyn Tester,
        culprit: &str,
        fail_rate: f64,
        data_dir: &Path,
    ) -> crate::Result<report::RevertCheck> {
        let steps = self.store.bisect_steps(self.id, true)?;
        let build = steps.iter().rev().find(|s| s.kind == REVERT.build);
        let revert_sha = match build {
            Some(s) if s.outcome.as_deref() == Some("does_not_apply") => {
                return Ok(report::RevertCheck::does_not_apply(
                    s.reason.clone().unwrap_or_default(),
                ));
            }
            Some(s) => s.commit.clone(),
            None => {
                let is_merge = self.graph.info(culprit)?.parents > 1;
                let scratch = data_dir
                    .join("worktrees")
                    .join(format!("bisect-{}-revert", self.id));
                self.say(format!(
                    "reverting {} on the bad tip {}",
                    short(culprit),
                    short(&self.bad)
                ));
                match revert_on_tip(&self.repo, &scratch, &self.bad, culprit, is_merge)? {
                    Revert::DoesNotApply { message } => {
                        let step =
                            self.store
                                .bisect_step_start(self.id, REVERT.build, culprit, None)?;
                        self.store.bisect_step_finish(
                            step,
                            &Finish {
                                outcome: "does_not_apply",
                                reason: Some(&message),
                                ..Finish::default()
                            },
                        )?;
                        return Ok(report::RevertCheck::does_not_apply(message));
                    }
                    Revert::Applied { sha, .. } => {
                        self.prepared = None;
                        sha
                    }
                }
            }
        };
        let c = self.control(tester, REVERT, &revert_sha, fail_rate)?;
        Ok(match c.untestable {
            None => report::RevertCheck::tested(&revert_sha, c.runs, c.fails),
            Some(why) => report::RevertCheck::untestable(
                &revert_sha,
                format!("the reverted tip cannot be tested: {why}"),
            ),
        })
    }
}

/// Journal kinds of a commit tested outside the candidate list.
#[derive(Clone, Copy)]
struct Kinds {
    build: &'static str,
    run: &'static str,
}

/// A merge base of the good and bad revisions, tested before bisecting.
const MERGE_BASE: Kinds = Kinds {
    build: "merge_base_build",
    run: "merge_base_run",
};
/// The bad tip, run as a control when nothing else showed it fails.
const TIP: Kinds = Kinds {
    build: "tip_build",
    run: "tip_run",
};
/// The bad tip with the culprit reverted.
const REVERT: Kinds = Kinds {
    build: "revert_build",
    run: "revert_run",
};

/// How a bisection ended, before the report.
enum Ending {
    /// The engine concluded (a culprit, a set, or nothing).
    Concluded(Stage, Conclusion),
    /// A merge base fails: the regression is older than the good revision.
    MergeBaseBad(Stage),
}

/// Takes bisection `id`'s lock: one process drives a bisection at a time (two
/// would journal the same attempts twice). Take it before the tester touches
/// the bisection's worktrees; [`Error::Busy`] when another process holds it.
pub fn lock(store: &Store, id: i64) -> crate::Result<BisectLock> {
    store.bisect_get(id)?.ok_or(Error::NotFound(id))?;
    Ok(store.bisect_lock(id)?.ok_or(Error::Busy(id))?)
}

/// Runs (or resumes) bisection `id` with `tester` until it concludes; journals
/// every step and stores the report. `events` receives what happens as it does.
pub fn run(
    store: &Store,
    id: i64,
    tester: &mut dyn Tester,
    events: &dyn Events,
) -> crate::Result<Report> {
    let lock = lock(store, id)?;
    run_locked(store, &lock, id, tester, events)
}

/// [`run`] with the bisection's lock already held (see [`lock`]).
pub fn run_locked(
    store: &Store,
    _lock: &BisectLock,
    id: i64,
    tester: &mut dyn Tester,
    events: &dyn Events,
) -> crate::Result<Report> {
    let b = store.bisect_get(id)?.ok_or(Error::NotFound(id))?;
    let settings: Settings = serde_json::from_str(&b.settings).map_err(|e| Error::Settings {
        id,
        msg: e.to_string(),
    })?;
    let predicate =
        Predicate::parse(&settings.predicate).map_err(|msg| Error::Settings { id, msg })?;
    store.bisect_reopen(id)?;
    let repo = PathBuf::from(&b.repo);
    let graph = Graph::open(&repo)?;
    let mut d = Driver {
        store,
        id,
        repo,
        good: b.good.clone(),
        bad: b.bad.clone(),
        first_parent: b.first_parent,
        settings,
        predicate,
        graph,
        events,
        leader: (None, 0.0, 0),
        prepared: None,
        infra_streak: 0,
        ready: HashSet::new(),
        inconsistent: None,
        control_length: None,
    };
    d.control_length = d.settings.timed.as_ref().map(|t| t.max_exposure_s);
    let outcome = (|| -> crate::Result<Report> {
        let mut merge_bases: Option<Vec<report::Check>> = None;
        let ending = loop {
            if merge_bases.is_none() {
                let steps = store.bisect_steps(id, true)?;
                let stage = d.stage(&steps)?;
                match d.merge_base_turn(&stage) {
                    Turn::Now => {
                        let rate = stage.engine.rates().0;
                        let checks = d.check_merge_bases(tester, rate)?;
                        let bad = checks.iter().any(|c| c.fails > 0);
                        merge_bases = Some(checks);
                        if bad {
                            break Ending::MergeBaseBad(stage);
                        }
                    }
                    Turn::Never => merge_bases = Some(Vec::new()),
                    Turn::Later => {}
                }
            }
            let workers = tester.workers();
            let step = if workers > 1 && d.settings.policy() == Policy::Runs {
                d.batch_step(tester, workers)?
            } else {
                d.step(tester)?
            };
            if let Some((stage, c)) = step {
                break Ending::Concluded(stage, c);
            }
        };
        let merge_bases = merge_bases.unwrap_or_default();
        let (stage, conclusion, verdict) = match ending {
            Ending::MergeBaseBad(stage) => {
                let c = Conclusion {
                    candidates: Vec::new(),
                    confidence: 0.0,
                    reason: StopReason::NothingToTest,
                };
                (stage, c, Some(report::Verdict::MergeBaseBad))
            }
            Ending::Concluded(stage, c) => (stage, c, None),
        };
        let mut culprit = match verdict {
            None => conclusion.culprit().map(|i| stage.candidates[i].clone()),
            Some(_) => None,
        };
        let rate = stage.engine.rates().0;
        // A culprit at the bad tip may rest on no observed failure at all (the
        // tip is trusted with --run): run the tip before believing it.
        let mut tip_check = None;
        if let Some(c) = &culprit
            && *c == d.bad
            && stage.number == 0
            && stage.engine.counts(stage.candidates.len() - 1).1 == 0
        {
            d.say(format!(
                "the culprit is the bad tip {}, which has not been seen failing: running it",
                short(&d.bad)
            ));
            let bad = d.bad.clone();
            tip_check = Some(d.control(tester, TIP, &bad, rate)?);
        }
        let tip_passes = tip_check
            .as_ref()
            .is_some_and(|t| t.untestable.is_none() && t.fails == 0);
        if tip_passes {
            culprit = None;
        }
        let revert = match (&culprit, d.settings.revert_check) {
            (Some(c), true) => d.revert_check(tester, c, rate, store.data_dir())?,
            _ => report::RevertCheck::not_run(),
        };
        let verdict = verdict.or(tip_passes.then_some(report::Verdict::NotReproduced));
        let steps = store.bisect_steps(id, true)?;
        report::build(&report::Input {
            id,
            graph: &d.graph,
            good: &d.good,
            bad: &d.bad,
            predicate: &d.predicate.to_string(),
            candidates: &stage.candidates,
            conclusion: &conclusion,
            rates: stage.engine.rates(),
            steps: &steps,
            revert,
            verdict,
            merge_bases,
            tip_check,
            inconsistent: d.inconsistent.clone(),
            deterministic: d.settings.deterministic,
            first_finding: &|run| store.first_finding(run).ok().flatten(),
            policy: (d.settings.policy(), stage.engine.mttf_s()),
        })
    })();
    match outcome {
        Ok(r) => {
            let json = serde_json::to_string(&r).unwrap_or_default();
            store.bisect_finish(id, "done", Some(&json), None)?;
            Ok(r)
        }
        Err(e) => {
            let e = match e {
                crate::Error::Interrupted => Error::Interrupted { id }.into(),
                e => e,
            };
            store.bisect_finish(id, "failed", None, Some(&e.to_string()))?;
            Err(e)
        }
    }
}

/// When the merge bases are tested.
enum Turn {
    /// Now: before the next engine step.
    Now,
    /// After the bad tip's verification runs.
    Later,
    /// Not at all (the tip never failed; the engine stops).
    Never,
}

/// True when the engine stopped because it was confident.
pub fn confident(c: &Conclusion) -> bool {
    c.reason == StopReason::Confident
}

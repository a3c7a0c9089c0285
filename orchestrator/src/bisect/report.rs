//! The bisection report: a JSON object (`--json`) and human text in the style of
//! the 0-day robot and syzbot.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use csdci_bisect::{Conclusion, StopReason};
use serde::{Deserialize, Serialize};

use super::guest_time::GuestTime;
use super::outcome::RunObs;
use crate::events::short;
use crate::store::bisect::Step;
use crate::store::findings::StoredFinding;
use crate::vcs::graph::{CommitInfo, Graph};

/// One tested commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tested {
    /// Full sha.
    pub commit: String,
    /// Subject line.
    pub subject: String,
    /// Runs that counted as evidence.
    pub runs: u32,
    /// Of those, runs that failed as the predicate asks.
    pub fails: u32,
    /// Every distinct finding title seen on this commit.
    pub titles: Vec<String>,
    /// Titles of runs that failed but not as the predicate asks (counted as passes).
    pub crashed_differently: Vec<String>,
    /// Why it could not be tested, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untestable: Option<String>,
    /// The commit it builds the same kernel as, if any (noop commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

/// Testing the bad tip with the culprit reverted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevertCheck {
    /// `fixes`, `does_not_fix`, `does_not_apply`, `untestable` or `not_run`.
    pub status: String,
    /// The reverted tip's sha, when the revert applied.
    pub commit: Option<String>,
    /// Runs of the reverted tip.
    pub runs: u32,
    /// Of those, failures.
    pub fails: u32,
    /// Details (why it does not apply, ...).
    pub message: Option<String>,
}

impl RevertCheck {
    /// The revert does not apply.
    pub fn does_not_apply(message: String) -> Self {
        RevertCheck {
            status: "does_not_apply".into(),
            commit: None,
            runs: 0,
            fails: 0,
            message: Some(message),
        }
    }

    /// The reverted tip cannot be tested.
    pub fn untestable(commit: &str, message: String) -> Self {
        RevertCheck {
            status: "untestable".into(),
            commit: Some(commit.into()),
            runs: 0,
            fails: 0,
            message: Some(message),
        }
    }

    /// The reverted tip was tested.
    pub fn tested(commit: &str, runs: u32, fails: u32) -> Self {
        RevertCheck {
            status: if fails == 0 { "fixes" } else { "does_not_fix" }.into(),
            commit: Some(commit.into()),
            runs,
            fails,
            message: None,
        }
    }

    /// No culprit, or the check is turned off.
    pub fn not_run() -> Self {
        RevertCheck {
            status: "not_run".into(),
            commit: None,
            runs: 0,
            fails: 0,
            message: None,
        }
    }
}

/// A commit tested outside the candidate list: a merge base of the good and
/// bad revisions (tested first, as `git bisect` does when a good revision is
/// not an ancestor of the bad one), or the bad tip run as a control when the
/// culprit is the tip and nothing had shown it failing (trusted with `--run`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Full sha.
    pub commit: String,
    /// Runs that counted.
    pub runs: u32,
    /// Of those, failures as the predicate asks.
    pub fails: u32,
    /// Why it could not be tested, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untestable: Option<String>,
}

/// What the driver found beyond the engine's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A merge base fails: the regression is older than the good revision.
    MergeBaseBad,
    /// The bad tip was run and never failed.
    NotReproduced,
}

/// The first failing run's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstFailure {
    /// Commit.
    pub commit: String,
    /// Log path.
    pub log: String,
    /// Its first finding's lines with a few lines of context (else the
    /// console's last lines).
    pub excerpt: Vec<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Bisection id.
    pub id: i64,
    /// `culprit`; `doubtful` (a culprit that a check contradicts: see `doubt`);
    /// `not_isolated` (a set of candidates); `not_reproduced` (the bad tip was
    /// run and never failed); `merge_base_bad` (a merge base of the good and
    /// bad revisions fails: the regression is older than the good revision);
    /// or `inconclusive`.
    pub status: String,
    /// Why a culprit is `doubtful`, or why the test was found not deterministic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doubt: Option<String>,
    /// The culprit, when isolated with the requested confidence.
    pub culprit: Option<CommitInfo>,
    /// Posterior probability of the culprit (or of the candidate set).
    pub confidence: f64,
    /// The candidate set, when the culprit is not isolated.
    pub candidates: Vec<CommitInfo>,
    /// Why the engine stopped: `confident`, `budget_spent`, `nothing_to_test` or
    /// `not_reproduced`.
    pub stop_reason: StopReason,
    /// Good shas.
    pub good: Vec<String>,
    /// Bad sha.
    pub bad: String,
    /// Predicate.
    pub predicate: String,
    /// Posterior mean of the per-run failure probability of a bad commit.
    pub fail_rate: f64,
    /// Posterior mean of the false-failure rate.
    pub false_fail_rate: f64,
    /// Tested commits, in the order first tested.
    pub tested: Vec<Tested>,
    /// Commits prepared (built or checked out), untestable ones included.
    pub builds: u32,
    /// Runs that counted as evidence.
    pub runs: u32,
    /// Infrastructure failures (never evidence).
    pub infra_failures: u32,
    /// Every distinct finding title seen in the bisection.
    pub titles: Vec<String>,
    /// The revert check.
    pub revert_check: RevertCheck,
    /// Merge bases tested before bisecting (empty when every good revision is
    /// an ancestor of the bad one).
    #[serde(default)]
    pub merge_bases: Vec<Check>,
    /// The bad tip run as a control (see [`Check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_check: Option<Check>,
    /// Runs `git bisect run` would have needed for the same answer with a
    /// deterministic test (its midpoints, the merge bases, no repeats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_bisect_runs: Option<u32>,
    /// Output of the first failing run.
    pub first_failure: Option<FirstFailure>,
    /// `Fixes: <12-char sha> ("subject")`, when a culprit is isolated.
    pub fixes: Option<String>,
    /// Guest time the runs took (and their workload seconds, where measured).
    #[serde(default)]
    pub guest_time: GuestTime,
}

/// What the report is built from.
pub struct Input<'a> {
    /// Bisection id.
    pub id: i64,
    /// The repository.
    pub graph: &'a Graph,
    /// Good shas.
    pub good: &'a [String],
    /// Bad sha.
    pub bad: &'a str,
    /// Predicate text.
    pub predicate: &'a str,
    /// Candidates of the final stage.
    pub candidates: &'a [String],
    /// The engine's conclusion.
    pub conclusion: &'a Conclusion,
    /// Posterior means (failure rate, false-failure rate).
    pub rates: (f64, f64),
    /// Finished journal steps.
    pub steps: &'a [Step],
    /// Revert check.
    pub revert: RevertCheck,
    /// What the driver found beyond the engine's conclusion.
    pub verdict: Option<Verdict>,
    /// Merge bases tested.
    pub merge_bases: Vec<Check>,
    /// The bad tip run as a control.
    pub tip_check: Option<Check>,
    /// With `--deterministic`: why the results contradict each other.
    pub inconsistent: Option<String>,
    /// `--deterministic`.
    pub deterministic: bool,
    /// A recorded run's first finding, with its position, from the store.
    pub first_finding: &'a dyn Fn(i64) -> Option<StoredFinding>,
    /// The policy bisected with, and (timed) the mean time to failure.
    pub policy: (super::Policy, Option<f64>),
}

/// Context lines quoted before and after a finding.
const CONTEXT: usize = 5;
/// Lines of a finding quoted at most.
const FINDING_LINES: usize = 60;
/// Lines quoted from a run whose first finding's end is not stored.
const FROM_FIRST_LINE: usize = 30;
/// Last lines quoted from a run without findings.
const TAIL: usize = 20;

/// The lines of `log` of its first finding as the store has it (the console is
/// never analysed again): its byte range read with a few lines of context
/// around; for runs stored before positions were, the lines from its first
/// line; without a finding, the console's last lines. Reads a few KiB
/// whatever the console's size.
fn excerpt(log: &str, first: Option<&StoredFinding>) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let got = match first {
        Some(fd) => match fd.bytes() {
            Some(r) => {
                csdci_console::excerpt::around(&mut f, r, CONTEXT, FINDING_LINES).map(|e| e.all())
            }
            None => from_line(f, fd.first_line),
        },
        None => csdci_console::excerpt::tail(&mut f, TAIL),
    };
    got.unwrap_or_default()
}

/// Lines `first - CONTEXT ..` of a console, read line by line (runs stored
/// without byte positions).
fn from_line(f: std::fs::File, first: u64) -> std::io::Result<Vec<String>> {
    use std::io::BufRead;
    let from = first.saturating_sub(CONTEXT as u64).max(1);
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line?;
        let n = n as u64 + 1;
        if n < from {
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        out.push(String::from_utf8_lossy(line).into_owned());
        if out.len() >= CONTEXT + FROM_FIRST_LINE {
            break;
        }
    }
    Ok(out)
}

/// Builds the report.
pub fn build(i: &Input<'_>) -> crate::Result<Report> {
    let info = |sha: &str| -> crate::Result<CommitInfo> { Ok(i.graph.info(sha)?) };
    let culprit = match i.conclusion.culprit() {
        Some(c) => Some(info(&i.candidates[c])?),
        None => None,
    };
    let culprit = culprit.filter(|_| i.verdict.is_none());
    let candidates = if culprit.is_none()
        && i.verdict.is_none()
        && i.conclusion.reason != StopReason::NotReproduced
    {
        i.conclusion
            .candidates
            .iter()
            .map(|&c| info(&i.candidates[c]))
            .collect::<crate::Result<_>>()?
    } else {
        Vec::new()
    };
    let doubt = doubt(i);
    let status = match (i.verdict, &culprit, i.conclusion.reason) {
        (Some(Verdict::MergeBaseBad), _, _) => "merge_base_bad",
        (Some(Verdict::NotReproduced), _, _) | (None, None, StopReason::NotReproduced) => {
            "not_reproduced"
        }
        (None, Some(_), _) if doubt.is_some() => "doubtful",
        (None, Some(_), _) => "culprit",
        (None, None, StopReason::Confident) => "not_isolated",
        _ => "inconclusive",
    };
    let mut tested: Vec<Tested> = Vec::new();
    let mut all_titles = BTreeSet::new();
    let (mut builds, mut runs, mut infra) = (0, 0, 0);
    let mut first_failure = None;
    for s in i
        .steps
        .iter()
        .filter(|s| s.kind == "build" || s.kind == "run")
    {
        let pos = match tested.iter().position(|t| t.commit == s.commit) {
            Some(p) => p,
            None => {
                tested.push(Tested {
                    commit: s.commit.clone(),
                    subject: i
                        .graph
                        .info(&s.commit)
                        .map(|c| c.subject)
                        .unwrap_or_default(),
                    runs: 0,
                    fails: 0,
                    titles: Vec::new(),
                    crashed_differently: Vec::new(),
                    untestable: None,
                    same_as: None,
                });
                tested.len() - 1
            }
        };
        let t = &mut tested[pos];
        for title in &s.titles {
            all_titles.insert(title.clone());
            if !t.titles.contains(title) {
                t.titles.push(title.clone());
            }
        }
        match (s.kind.as_str(), s.outcome.as_deref()) {
            ("build", Some("ready")) => {
                builds += 1;
                if s.same_as.is_some() {
                    t.same_as = s.same_as.clone();
                }
            }
            ("build", Some("untestable")) => {
                builds += 1;
                t.untestable = s.reason.clone();
            }
            (_, Some("infra")) => infra += 1,
            ("run", Some("skip")) => t.untestable = s.reason.clone(),
            ("run", o) if RunObs::of(o).is_some_and(RunObs::counts) => {
                let o = RunObs::of(o);
                runs += 1;
                t.runs += 1;
                if o == Some(RunObs::Fail) {
                    t.fails += 1;
                    if first_failure.is_none()
                        && let Some(log) = &s.console_log
                    {
                        first_failure = Some(FirstFailure {
                            commit: s.commit.clone(),
                            log: log.clone(),
                            excerpt: excerpt(log, s.run_id.and_then(i.first_finding).as_ref()),
                        });
                    }
                }
                if o == Some(RunObs::Other) {
                    for title in &s.titles {
                        if !t.crashed_differently.contains(title) {
                            t.crashed_differently.push(title.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    tested.retain(|t| t.runs > 0 || t.untestable.is_some() || t.same_as.is_some());
    let git_bisect_runs = culprit.as_ref().and_then(|c| {
        let at = i.candidates.iter().position(|x| *x == c.sha)?;
        let untestable: Vec<bool> = i
            .candidates
            .iter()
            .map(|x| {
                tested
                    .iter()
                    .any(|t| t.commit == *x && t.untestable.is_some())
            })
            .collect();
        Some(git_bisect_runs(at, &untestable)? + i.merge_bases.len() as u32)
    });
    let fixes = culprit.as_ref().filter(|_| doubt.is_none()).map(|c| {
        format!(
            "Fixes: {} (\"{}\")",
            &c.sha[..12.min(c.sha.len())],
            c.subject
        )
    });
    Ok(Report {
        id: i.id,
        status: status.into(),
        culprit,
        confidence: i.conclusion.confidence,
        candidates,
        stop_reason: i.conclusion.reason,
        good: i.good.to_vec(),
        bad: i.bad.to_string(),
        predicate: i.predicate.to_string(),
        fail_rate: i.rates.0,
        false_fail_rate: i.rates.1,
        tested,
        builds,
        runs,
        infra_failures: infra,
        titles: all_titles.into_iter().collect(),
        revert_check: i.revert.clone(),
        merge_bases: i.merge_bases.clone(),
        tip_check: i.tip_check.clone(),
        git_bisect_runs,
        first_failure,
        fixes,
        doubt: doubt.or_else(|| i.inconsistent.clone()),
        guest_time: GuestTime::of(i.steps, i.policy.0, i.policy.1),
    })
}

/// Why a culprit is not to be believed: a check that contradicts it.
fn doubt(i: &Input<'_>) -> Option<String> {
    if i.conclusion.culprit().is_none() || i.verdict.is_some() {
        return None;
    }
    let rc = &i.revert;
    if rc.status == "does_not_fix" {
        return Some(format!(
            "reverting it on the bad tip does not fix the failure ({}/{} runs of the reverted tip failed): the failure has another cause too, or the culprit is wrong",
            rc.fails, rc.runs
        ));
    }
    if let Some(t) = &i.tip_check
        && let Some(why) = &t.untestable
    {
        return Some(format!(
            "the bad tip, named as culprit, has never been seen failing and cannot be tested: {why}"
        ));
    }
    if let Some(m) = i.merge_bases.iter().find(|m| m.untestable.is_some()) {
        return Some(format!(
            "the merge base {} of the good and bad revisions cannot be tested ({}): the culprit assumes it is good, as git does when it must skip it",
            short(&m.commit),
            m.untestable.as_deref().unwrap_or("")
        ));
    }
    None
}

/// Runs `git bisect run` needs with a deterministic test on a linear list
/// whose culprit is at index `culprit` (the commit before index 0 is good,
/// the last is the bad tip), skipping untestable commits as it does (the
/// nearest testable one instead). `None` when it could not isolate it.
pub fn git_bisect_runs(culprit: usize, untestable: &[bool]) -> Option<u32> {
    let n = untestable.len() as i64;
    let (mut lo, mut hi) = (-1i64, n - 1);
    let mut runs = 0;
    while hi - lo > 1 {
        // git tests the commit that splits the remaining candidates most evenly.
        let nr = hi - lo;
        let m = ((lo + 1)..hi)
            .filter(|&m| !untestable[m as usize])
            .max_by_key(|&m| (std::cmp::min(m - lo, nr - (m - lo)), -(m - lo)))?;
        runs += 1;
        if m as usize >= culprit {
            hi = m;
        } else {
            lo = m;
        }
    }
    (hi as usize == culprit).then_some(runs)
}

/// Human text, 0-day / syzbot style.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let goods: Vec<&str> = r.good.iter().map(|g| short(g)).collect();
    let _ = writeln!(
        o,
        "csdci bisection #{} (good {}, bad {}, predicate {})",
        r.id,
        goods.join(" "),
        short(&r.bad),
        r.predicate
    );
    let _ = writeln!(o);
    match (&r.culprit, r.status.as_str()) {
        (Some(c), "doubtful") => {
            let _ = writeln!(
                o,
                "DOUBTFUL: the most likely first bad commit is {} ({:.1}%), but a check contradicts it:",
                c.sha,
                r.confidence * 100.0
            );
            let _ = writeln!(o, "    {}", c.subject);
            let _ = writeln!(o, "{}", r.doubt.as_deref().unwrap_or(""));
        }
        (_, "merge_base_bad") => {
            let mb = r.merge_bases.iter().find(|m| m.fails > 0);
            let _ = writeln!(
                o,
                "the merge base is bad: {} ({} of {} runs failed), a common ancestor of the good and bad revisions",
                mb.map_or("?", |m| m.commit.as_str()),
                mb.map_or(0, |m| m.fails),
                mb.map_or(0, |m| m.runs)
            );
            let _ = writeln!(
                o,
                "the regression is older than GOOD: it was fixed between the merge base and GOOD, not introduced between GOOD and BAD"
            );
            let _ = writeln!(
                o,
                "(bisect the merge base's history instead, e.g. with an older good revision that is an ancestor of it)"
            );
        }
        (Some(c), _) => {
            let _ = writeln!(
                o,
                "first bad commit: {} (confidence {:.1}%)",
                c.sha,
                r.confidence * 100.0
            );
            let _ = writeln!(o, "    {}", c.subject);
            let _ = writeln!(o, "Author: {}", c.author);
            let _ = writeln!(o, "Date:   {}", c.date);
        }
        (None, "not_isolated") => {
            let _ = writeln!(
                o,
                "the culprit could not be isolated: untestable commits leave {} candidates ({:.1}%):",
                r.candidates.len(),
                r.confidence * 100.0
            );
            for c in &r.candidates {
                let _ = writeln!(o, "  {} {}", short(&c.sha), c.subject);
            }
        }
        (None, "not_reproduced") => {
            let tip = r.tested.iter().find(|t| t.commit == r.bad);
            let runs = tip.map_or(0, |t| t.runs) + r.tip_check.as_ref().map_or(0, |t| t.runs);
            let _ = writeln!(
                o,
                "the bad revision {} did not fail in {} runs: nothing to bisect",
                short(&r.bad),
                runs
            );
            let _ = writeln!(
                o,
                "(is it really bad here? a rarer failure needs longer runs, more vCPUs or --verify-bad with more runs; check --predicate)"
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "inconclusive ({}): the most likely culprit has only {:.1}%:",
                match r.stop_reason {
                    _ if r.doubt.is_some() => "the test is not deterministic",
                    StopReason::BudgetSpent => "run budget spent",
                    StopReason::NothingToTest => "nothing left to test",
                    StopReason::Confident => "confident",
                    StopReason::NotReproduced => "not reproduced",
                },
                r.confidence * 100.0
            );
            for c in &r.candidates {
                let _ = writeln!(o, "  {} {}", short(&c.sha), c.subject);
            }
        }
    }
    let _ = writeln!(
        o,
        "\nestimated failure probability per run of a bad commit: {:.2}; false failures: {:.3}",
        r.fail_rate, r.false_fail_rate
    );
    let _ = writeln!(
        o,
        "{} builds, {} runs, {} infrastructure failures (not evidence)",
        r.builds, r.runs, r.infra_failures
    );
    let _ = writeln!(o, "{}", r.guest_time.line());
    if let Some(g) = r.git_bisect_runs {
        let _ = writeln!(
            o,
            "git bisect run would have needed {g} runs with a deterministic test (csdci: {} runs; --deterministic runs each commit once, as git)",
            r.runs + r.merge_bases.iter().map(|m| m.runs).sum::<u32>()
        );
    }
    if r.status == "inconclusive"
        && let Some(d) = &r.doubt
    {
        let _ = writeln!(o, "{d}");
    }
    for m in &r.merge_bases {
        let what = match &m.untestable {
            Some(why) => format!("untestable: {why}"),
            None => format!("{}/{} failed", m.fails, m.runs),
        };
        let _ = writeln!(o, "merge base {}: {what}", short(&m.commit));
    }
    if let Some(t) = &r.tip_check {
        let what = match &t.untestable {
            Some(why) => format!("untestable: {why}"),
            None => format!("{}/{} runs failed", t.fails, t.runs),
        };
        let _ = writeln!(o, "bad tip run as a control: {what}");
    }
    let _ = writeln!(o, "\ntested commits (failed/runs):");
    for t in &r.tested {
        let what = match (&t.untestable, &t.same_as) {
            (Some(why), _) => format!("untestable: {why}"),
            (None, Some(s)) => format!("same kernel as {}", short(s)),
            _ => format!("{:>3}/{:<3}", t.fails, t.runs),
        };
        let tip = if t.commit == r.bad { " (bad tip)" } else { "" };
        let _ = writeln!(o, "  {} {:<9} {}{tip}", short(&t.commit), what, t.subject);
        if !t.crashed_differently.is_empty() {
            let _ = writeln!(
                o,
                "      crashed differently: {}",
                t.crashed_differently.join("; ")
            );
        }
    }
    if !r.titles.is_empty() {
        let _ = writeln!(o, "\ncrash titles seen:");
        for t in &r.titles {
            let _ = writeln!(o, "  {t}");
        }
    }
    let rc = &r.revert_check;
    let line = match rc.status.as_str() {
        "fixes" => format!(
            "reverting it on the bad tip fixes the failure: {}/{} runs of {} failed",
            rc.fails,
            rc.runs,
            short(rc.commit.as_deref().unwrap_or(""))
        ),
        "does_not_fix" => format!(
            "reverting it on the bad tip does NOT fix the failure: {}/{} runs of {} failed",
            rc.fails,
            rc.runs,
            short(rc.commit.as_deref().unwrap_or(""))
        ),
        "does_not_apply" => format!(
            "the revert does not apply on the bad tip: {}",
            rc.message.as_deref().unwrap_or("")
        ),
        "untestable" => format!(
            "the reverted tip could not be tested: {}",
            rc.message.as_deref().unwrap_or("")
        ),
        _ => "revert check: not run".to_string(),
    };
    let _ = writeln!(o, "\n{line}");
    if let Some(f) = &r.first_failure {
        let _ = writeln!(
            o,
            "\noutput of the first failing run ({}, {}):",
            short(&f.commit),
            f.log
        );
        for l in &f.excerpt {
            let _ = writeln!(o, "  | {l}");
        }
    }
    if let Some(f) = &r.fixes {
        let _ = writeln!(o, "\n{f}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(first_line: u64, last_line: Option<u64>, bytes: Option<(u64, u64)>) -> StoredFinding {
        StoredFinding {
            ordinal: 0,
            kind: "soft_lockup".into(),
            title: "BUG: soft lockup in f".into(),
            first_line,
            last_line,
            start_byte: bytes.map(|b| b.0),
            end_byte: bytes.map(|b| b.1),
            cpu: None,
            task: None,
            corrupted: false,
            crash_report: true,
        }
    }

    #[test]
    fn excerpt_is_the_stored_first_finding_with_context_else_the_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("console.log");
        let text: String = (1..=200).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, &text).unwrap();
        let log = log.to_string_lossy();
        // Lines 100..=140 by their bytes: 5 lines before, the 41 lines, 5 after.
        let start = text.find("line 100\n").unwrap() as u64;
        let end = text.find("line 141\n").unwrap() as u64;
        let around = excerpt(&log, Some(&stored(100, Some(140), Some((start, end)))));
        assert_eq!(around.first().map(String::as_str), Some("line 95"));
        assert_eq!(around.get(5).map(String::as_str), Some("line 100"));
        assert!(around.contains(&"line 140".to_string()));
        assert_eq!(around.last().map(String::as_str), Some("line 145"));
        assert_eq!(around.len(), 51);
        // Stored before positions: from its first line.
        let old = excerpt(&log, Some(&stored(100, None, None)));
        assert_eq!(old.first().map(String::as_str), Some("line 95"));
        assert_eq!(old.len(), 35);
        let tail = excerpt(&log, None);
        assert_eq!(tail.first().map(String::as_str), Some("line 181"));
        assert_eq!(tail.last().map(String::as_str), Some("line 200"));
        // A stale position past the end gives little or nothing, never a panic.
        assert!(excerpt(&log, Some(&stored(10_000, None, None))).is_empty());
        assert!(
            excerpt(
                &log,
                Some(&stored(10_000, Some(10_001), Some((90_000, 90_100))))
            )
            .len()
                <= 5
        );
    }

    #[test]
    fn git_bisect_runs_follow_gits_midpoints() {
        let none = vec![false; 64];
        assert_eq!(git_bisect_runs(36, &none), Some(6));
        assert_eq!(git_bisect_runs(63, &none), Some(6));
        assert_eq!(git_bisect_runs(0, &[false; 1]), Some(0));
        // The culprit inside an untestable stretch cannot be isolated.
        let mut skip = vec![false; 64];
        skip[30..40].iter_mut().for_each(|x| *x = true);
        assert_eq!(git_bisect_runs(35, &skip), None);
        assert!(git_bisect_runs(50, &skip).is_some());
    }
}

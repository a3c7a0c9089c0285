//! Validating a fix: run the fixed commit K times and say what no failure in
//! K runs proves against the failure rate the regression showed.

use serde::Serialize;

use crate::store::Store;
use crate::store::fix_validations::NewFixValidation;
use crate::testers::{Prepared, RunOutcome, Tester};

/// Infrastructure failures in a row tolerated before the validation stops.
const INFRA_RETRIES: u32 = 3;

/// A fix's validation: K runs, failures, and what 0 failures proves.
#[derive(Debug, Clone, Serialize)]
pub struct FixValidation {
    /// The fixed commit.
    pub commit: String,
    /// Runs that counted.
    pub runs: u32,
    /// Of those, failures.
    pub fails: u32,
    /// One-sided 95% upper bound on the per-run failure rate (exact binomial).
    pub failure_rate_upper_95: f64,
    /// Per-run failure rate the bisection measured on bad commits.
    pub regression_failure_rate: f64,
    /// Probability that an unfixed kernel passes all runs, at that rate.
    pub p_pass_if_unfixed: f64,
    /// No failure in at least one run.
    pub passed: bool,
}

/// One-sided 95% upper bound on a failure rate after `fails` = 0 in `runs`
/// runs (Clopper–Pearson: 1 - 0.05^(1/n)); with failures, the observed rate.
pub fn upper_95(runs: u32, fails: u32) -> f64 {
    match (runs, fails) {
        (0, _) => 1.0,
        (n, 0) => 1.0 - 0.05f64.powf(1.0 / f64::from(n)),
        (n, f) => f64::from(f) / f64::from(n),
    }
}

/// Runs `commit` `runs` times with `tester`; `regression_rate` is the per-run
/// failure rate of the regression it fixes. Untestable or infrastructure runs
/// are not counted (three infrastructure failures in a row end it).
pub fn validate(
    tester: &mut dyn Tester,
    commit: &str,
    runs: u32,
    regression_rate: f64,
    progress: &mut dyn FnMut(&str),
) -> crate::Result<FixValidation> {
    if let Prepared::Untestable { reason } = tester.prepare(commit)? {
        return Err(crate::Error::Usage(format!(
            "the fix {} does not build: {reason}",
            crate::events::short(commit)
        )));
    }
    let (mut done, mut fails, mut streak) = (0, 0, 0);
    while done < runs {
        let r = tester.run_once(commit, done)?;
        match r.outcome {
            RunOutcome::Pass => done += 1,
            RunOutcome::Fail => {
                done += 1;
                fails += 1;
            }
            RunOutcome::Skip { reason } | RunOutcome::Infra { reason } => {
                streak += 1;
                progress(&format!("fix run not counted: {reason}"));
                if streak >= INFRA_RETRIES {
                    return Err(crate::Error::Usage(format!(
                        "the fix could not be tested {streak} times in a row: {reason}"
                    )));
                }
                continue;
            }
        }
        streak = 0;
        progress(&format!("fix run {done}/{runs}: {fails} failures so far"));
    }
    let p = regression_rate.clamp(0.0, 1.0);
    Ok(FixValidation {
        commit: commit.to_string(),
        runs,
        fails,
        failure_rate_upper_95: upper_95(runs, fails),
        regression_failure_rate: p,
        p_pass_if_unfixed: (1.0 - p).powi(runs as i32),
        passed: fails == 0 && runs > 0,
    })
}

/// Keeps `v` with bisection `bisection_id` (its page shows it beside the
/// revert check); returns the row id.
pub fn record(store: &Store, bisection_id: i64, v: &FixValidation) -> crate::Result<i64> {
    Ok(store.fix_validation_put(&NewFixValidation {
        bisection_id,
        fix_commit: &v.commit,
        runs: v.runs,
        fails: v.fails,
        failure_rate_upper_95: v.failure_rate_upper_95,
        regression_rate: v.regression_failure_rate,
        p_pass_if_unfixed: v.p_pass_if_unfixed,
        fixed: v.passed,
    })?)
}

/// Validates `commit` as a fix of bisection `bisection_id`'s culprit (at the
/// failure rate its report measured) and stores the result with it.
pub fn validate_and_record(
    store: &Store,
    bisection_id: i64,
    tester: &mut dyn Tester,
    commit: &str,
    runs: u32,
    regression_rate: f64,
    progress: &mut dyn FnMut(&str),
) -> crate::Result<FixValidation> {
    let v = validate(tester, commit, runs, regression_rate, progress)?;
    record(store, bisection_id, &v)?;
    Ok(v)
}

/// Validates `rev` as the fix of finished bisection `id`'s culprit: `runs`
/// runs with the tester the bisection used, against the failure rate its
/// report measured; stores the result with the bisection (`csdci bisect
/// --validate-fix REV`).
pub fn validate_bisection(
    store: &Store,
    id: i64,
    rev: &str,
    runs: u32,
    events: &crate::events::Sink,
    progress: &mut dyn FnMut(&str),
) -> crate::Result<FixValidation> {
    use crate::bisect::Error as BisectError;
    let b = store.bisect_get(id)?.ok_or(BisectError::NotFound(id))?;
    let report: crate::bisect::Report = b
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(|| {
            crate::Error::Usage(format!(
                "--validate-fix: bisection #{id} has not finished; there is no culprit to validate a fix of"
            ))
        })?;
    let Some(culprit) = report
        .culprit
        .as_ref()
        .filter(|_| report.status == "culprit")
    else {
        return Err(crate::Error::Usage(format!(
            "--validate-fix: bisection #{id} named no culprit ({}); there is nothing a fix could fix",
            report.status
        )));
    };
    let repo = std::path::PathBuf::from(&b.repo);
    let commit = crate::vcs::resolve(&repo, rev)
        .map_err(|e| crate::Error::Usage(format!("--validate-fix: {e}")))?;
    if commit == culprit.sha {
        return Err(crate::Error::Usage(format!(
            "--validate-fix {rev}: that is the culprit itself"
        )));
    }
    let _lock = crate::bisect::driver::lock(store, id)?;
    let spec = crate::service::bisect::tester_of(store, id)?;
    let mut tester = spec.build(
        &crate::testers::Context {
            data_dir: store.data_dir(),
            id,
            repo: &repo,
        },
        events.clone(),
    )?;
    validate_and_record(
        store,
        id,
        tester.as_mut(),
        &commit,
        runs,
        report.fail_rate,
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(upper_95(0, 0), 1.0);
        assert!((upper_95(5, 0) - 0.4507).abs() < 1e-3);
        assert_eq!(upper_95(4, 1), 0.25);
    }
}

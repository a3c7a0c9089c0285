//! Sweeping settings on one commit with real guests: each run is a `csdci
//! run` of the arm's spec (built once, then from the build cache), judged
//! with the sweep's predicate, recorded in the store like any run.

use std::path::Path;

use crate::bisect::predicate::Predicate;
use crate::sweep::{self, Arm, Observed, Plan, Sweep};
use crate::testers::local::{Reporter, RunResult};
use crate::verdict::Verdict;

/// Runs `plan` on revision `plan.commit` of `tree` (csdci's data in
/// `data_dir`), writing `sweep.json` and `sweep.svg` into `out` after every
/// run; `announce` hears each arm before it runs and each result after.
pub fn run(
    tree: &Path,
    data_dir: &Path,
    plan: &Plan,
    out: &Path,
    reporter: &mut dyn Reporter,
    announce: &mut dyn FnMut(&Arm, Option<&Observed>),
) -> crate::Result<Sweep> {
    let mut run = |arm: &Arm| -> crate::Result<Observed> {
        if crate::interrupt::interrupted() {
            return Ok(Observed {
                interrupted: true,
                ..Observed::default()
            });
        }
        announce(arm, None);
        let predicate = Predicate::parse(&arm.spec.predicate).map_err(crate::Error::Usage)?;
        let r = crate::service::run::test_commit(
            tree,
            data_dir,
            &plan.commit,
            arm.spec.clone(),
            reporter,
        )?;
        let o = observed(&r, &predicate);
        announce(arm, Some(&o));
        Ok(o)
    };
    let mut failed_write = None;
    let s = sweep::sweep(plan, &mut run, &mut |s| {
        if let Err(e) = sweep::report::write(s, out) {
            failed_write.get_or_insert(e);
        }
    })?;
    if let Some(e) = failed_write {
        return Err(e);
    }
    sweep::report::write(&s, out)?;
    Ok(s)
}

/// What a run shows the sweep (its wall time without the build): a failure that `predicate` counts, at its
/// first finding's time; another crash ends the workload early (a clean
/// run of that length: the setting did not show the failure asked for).
pub fn observed(r: &RunResult, predicate: &Predicate) -> Observed {
    let t = &r.timings;
    let mut o = Observed {
        run_id: Some(r.run_id),
        // What the run costs again: its kernel comes from the build cache
        // from the second run on, so the one-off build is not the setting's.
        wall_s: (t.total - t.build).max(0.0),
        workload_s: t.workload,
        boot_s: t.boot,
        invocations: r.analysis.as_ref().and_then(|a| a.scftorture.invocations),
        interrupted: r.interrupted,
        ..Observed::default()
    };
    match &r.verdict {
        Verdict::Clean => {}
        Verdict::Failed { title, .. } => {
            let counts = r.analysis.as_ref().is_some_and(|a| predicate.matches(a));
            let at = t.first_finding.or(t.workload);
            if counts {
                o.failed_at_s = at;
                o.title = Some(title.clone());
            } else {
                o.other_failure = Some(title.clone());
                if let (Some(at), Some(w)) = (at, t.workload) {
                    o.workload_s = Some(at.min(w));
                }
            }
        }
        Verdict::Untestable { reason } | Verdict::Infra { reason } => o.lost = Some(reason.clone()),
    }
    if o.workload_s.is_none() && o.lost.is_none() {
        o.lost = Some("the workload never started".into());
    }
    o
}

//! Testing the cells of a night: one tester per cell (the QEMU pipeline with
//! the cell's spec, or the job's `run` command), the head built once per
//! kernel configuration (the build cache shares it between cells), then
//! `runs` runs, the cell's counters written after each one.

use std::path::Path;

use crate::bisect::predicate::Predicate;
use crate::events::{Event, Sink};
use crate::jobs::Job;
use crate::spec::RunSpec;
use crate::store::Store;
use crate::store::nights::{NightCell, TitleCount};
use crate::testers::command::CommandTester;
use crate::testers::local::{EventReporter, LocalTester, RunOptions};
use crate::testers::{Prepared, RunOutcome, Tester};

use super::Options;

/// Lost runs in a row after which a cell is given up as `infra`.
const INFRA_RETRIES: u32 = 3;

/// The title of a failure of the job's `run` command (it has no console).
pub const COMMAND_FAILED: &str = "run: the job's test command failed";

/// The tester of one cell: the job's `run` command, or the QEMU pipeline
/// with `spec` (on the job's LAVA lab when it has `lab:`).
pub fn tester(
    job: &Job,
    tree: &Path,
    data_dir: &Path,
    spec: &RunSpec,
    night: i64,
    events: &Sink,
) -> crate::Result<Box<dyn Tester>> {
    match &job.command {
        Some(cmd) => {
            let wt = data_dir.join("worktrees").join(format!("job-{}", job.name));
            let logs = data_dir.join("nights").join(night.to_string());
            Ok(Box::new(CommandTester::new(tree, &wt, &logs, cmd)?))
        }
        None => {
            let opts = RunOptions::new(tree, data_dir, spec.clone())?;
            crate::interrupt::install_interrupt_handler();
            let reporter = EventReporter::new(events.clone(), spec.duration_s);
            if let Some(lab) = &job.lab {
                return Ok(Box::new(
                    crate::testers::lava::LavaTester::new(opts, lab.clone())?
                        .with_reporter(Box::new(reporter)),
                ));
            }
            Ok(Box::new(
                LocalTester::new(opts)?.with_reporter(Box::new(reporter)),
            ))
        }
    }
}

fn count_title(cell: &mut NightCell, title: &str) {
    match cell.titles.iter_mut().find(|t| t.title == title) {
        Some(t) => t.runs += 1,
        None => cell.titles.push(TitleCount {
            title: title.to_string(),
            runs: 1,
        }),
    }
}

/// What every cell of one night is tested with.
pub struct CellRun<'a> {
    pub store: &'a Store,
    pub job: &'a Job,
    /// The failures that count.
    pub predicate: &'a Predicate,
    /// The branch head tested.
    pub head: &'a str,
    pub opts: &'a Options,
    pub events: &'a Sink,
}

/// Builds the head and runs cell `cell` until it has `job.runs` runs,
/// writing its counters after every run. Returns with the cell finished
/// (`clean`, `failed`, `build_failed` or `infra`), or with an error
/// (interrupted: the cell stays `running` and the next night resumes it).
pub fn test_cell(
    run: &CellRun<'_>,
    tester: &mut dyn Tester,
    cell: &mut NightCell,
) -> crate::Result<()> {
    let CellRun {
        store,
        job,
        predicate,
        head,
        opts,
        events,
    } = *run;
    let note = |text: String| events.emit(&Event::Note { text });
    note(format!(
        "{} {}: building {}",
        job.name,
        cell.cell,
        crate::events::short(head)
    ));
    match tester.prepare(head)? {
        Prepared::Ready { artifact_id } => cell.artifact_id = artifact_id,
        Prepared::Untestable { reason } => {
            cell.status = "build_failed".into();
            cell.build_error = Some(reason);
            store.cell_update(cell)?;
            return Ok(());
        }
    }
    let mut streak = 0;
    while cell.runs < job.runs {
        if crate::interrupt::interrupted() {
            return Err(crate::Error::Interrupted);
        }
        let attempt = cell.runs + cell.infra;
        let report = {
            let _slot = match &opts.guests {
                Some(g) => Some(
                    g.acquire_unless(crate::interrupt::interrupted)
                        .ok_or(crate::Error::Interrupted)?,
                ),
                None => None,
            };
            tester.run_once(head, attempt)?
        };
        if let Some(id) = report.run_id {
            cell.run_ids.push(id);
        }
        match &report.outcome {
            RunOutcome::Pass => {
                cell.runs += 1;
                streak = 0;
            }
            RunOutcome::Fail => {
                cell.runs += 1;
                streak = 0;
                match &report.analysis {
                    Some(a) if predicate.matches(a) => {
                        cell.fails += 1;
                        // Every distinct title the run showed counts once: a
                        // flaky failure shows its findings in varying order,
                        // and a later night must still match the regression.
                        let mut seen: Vec<String> = a
                            .findings
                            .iter()
                            .filter(|f| predicate.matches_title(&f.title, f.kind))
                            .map(|f| csdci_console::title::normalize(&f.title))
                            .collect();
                        if seen.is_empty() {
                            seen.push(csdci_console::title::normalize(
                                a.title
                                    .as_deref()
                                    .unwrap_or("kernel failure without a title"),
                            ));
                        }
                        let mut counted: Vec<&String> = Vec::new();
                        for t in &seen {
                            if !counted.contains(&t) {
                                count_title(cell, t);
                                counted.push(t);
                            }
                        }
                    }
                    // Failed, but not as the job's predicate asks: a run, not a failure.
                    Some(_) => {}
                    None => {
                        cell.fails += 1;
                        count_title(cell, COMMAND_FAILED);
                    }
                }
            }
            RunOutcome::Skip { reason } | RunOutcome::Infra { reason } => {
                cell.infra += 1;
                streak += 1;
                note(format!(
                    "{} {}: run not counted: {reason}",
                    job.name, cell.cell
                ));
                if streak >= INFRA_RETRIES {
                    cell.status = "infra".into();
                    cell.build_error = Some(reason.clone());
                    store.cell_update(cell)?;
                    return Ok(());
                }
            }
        }
        store.cell_update(cell)?;
        note(format!(
            "{} {}: run {}/{}: {} failures",
            job.name, cell.cell, cell.runs, job.runs, cell.fails
        ));
    }
    cell.status = if cell.fails > 0 { "failed" } else { "clean" }.into();
    store.cell_update(cell)?;
    Ok(())
}

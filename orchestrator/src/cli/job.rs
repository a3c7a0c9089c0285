//! `csdci job check [PATH…]` and `csdci job list [--jobs DIR] [--json]`: the
//! job files of `jobs/` (see `jobs/README.md`).
//!
//! `check` prints `ok: FILE (job NAME, N cells, next run …)` per valid job and
//! `FILE:LINE:COLUMN: field: message` per problem; exit 0 when all are valid,
//! 3 when any is not. `list` shows each valid job; the last result per cell
//! and open regressions come from the nightly runs, which do not exist yet:
//! it says `never run` and `none`.

use std::path::PathBuf;

use chrono::Utc;
use serde::Serialize;

use super::{Cli, EXIT_CLEAN, EXIT_USAGE};
use crate::jobs::{Job, load_paths};

/// Arguments of `csdci job`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: JobCommand,
}

/// `csdci job` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Validate job files (default: jobs/ of the current directory); exit 3 on any error.
    Check {
        /// Job files or directories of them.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show each job: tree, branches, schedule, next run, cells.
    List {
        /// The directory of job files.
        #[arg(long, value_name = "DIR", default_value = "jobs")]
        jobs: PathBuf,
        /// Print one JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn next_run(job: &Job) -> (String, String) {
    match job.schedule.next() {
        Some(n) => (
            n.with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            n.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        ),
        None => ("never".into(), "never".into()),
    }
}

/// Runs `csdci job`.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    match &args.command {
        JobCommand::Check { paths } => Ok(check(paths)),
        JobCommand::List { jobs, json } => Ok(list(jobs, *json)),
    }
}

fn check(paths: &[PathBuf]) -> u8 {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("jobs")]
    } else {
        paths.to_vec()
    };
    let mut code = EXIT_CLEAN;
    for (file, r) in load_paths(&paths) {
        match r {
            Ok(job) => {
                let (utc, local) = next_run(&job);
                let tz = job.schedule.tz.name();
                let next = if tz == "UTC" {
                    utc
                } else {
                    format!("{utc}, {local} {tz}")
                };
                println!(
                    "ok: {} (job {}, {} cell{}, next run {next})",
                    file.display(),
                    job.name,
                    job.cells.len(),
                    if job.cells.len() == 1 { "" } else { "s" }
                );
            }
            Err(errors) => {
                code = EXIT_USAGE;
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
    }
    code
}

#[derive(Serialize)]
struct CellRow {
    cell: String,
    spec: crate::spec::RunSpec,
    last_result: &'static str,
}

#[derive(Serialize)]
struct JobRow {
    name: String,
    file: String,
    tree: String,
    branches: Vec<String>,
    schedule: String,
    timezone: String,
    next_run_utc: String,
    next_run_local: String,
    runs: u32,
    cells: Vec<CellRow>,
    open_regressions: Vec<String>,
}

fn list(dir: &std::path::Path, json: bool) -> u8 {
    let mut code = EXIT_CLEAN;
    let mut rows = Vec::new();
    for (_, r) in load_paths(&[dir.to_path_buf()]) {
        match r {
            Ok(job) => {
                let (utc, local) = next_run(&job);
                rows.push(JobRow {
                    name: job.name.clone(),
                    file: job.file.display().to_string(),
                    tree: job.tree.clone(),
                    branches: job.branches.clone(),
                    schedule: job.schedule.expr.clone(),
                    timezone: job.schedule.tz.name().to_string(),
                    next_run_utc: utc,
                    next_run_local: local,
                    runs: job.runs,
                    cells: job
                        .cells
                        .iter()
                        .map(|c| CellRow {
                            cell: c.label(),
                            spec: c.spec.clone(),
                            last_result: "never run",
                        })
                        .collect(),
                    open_regressions: Vec::new(),
                });
            }
            Err(errors) => {
                code = EXIT_USAGE;
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return code;
    }
    for j in &rows {
        println!("{}  ({})", j.name, j.file);
        println!("  tree:     {} [{}]", j.tree, j.branches.join(", "));
        println!("  schedule: {} ({})", j.schedule, j.timezone);
        println!(
            "  next run: {} UTC, {} {}",
            j.next_run_utc, j.next_run_local, j.timezone
        );
        println!(
            "  cells ({} run{} each):",
            j.runs,
            if j.runs == 1 { "" } else { "s" }
        );
        for c in &j.cells {
            println!("    {}: {}", c.cell, c.last_result);
        }
        println!("  open regressions: none");
    }
    code
}

//! `csdci job check [PATH…]`, `csdci job list [--jobs DIR] [--json]` and
//! `csdci job run NAME --once`: the job files of `jobs/` (see `jobs/README.md`).
//!
//! `check` prints `ok: FILE (job NAME, N cells, next run …)` per valid job and
//! `FILE:LINE:COLUMN: field: message` per problem; exit 0 when all are valid,
//! 3 when any is not. `list` shows each valid job with its next run, the last
//! result per cell and the open regressions (from the store). `run --once`
//! runs one night of a job now, as the scheduler would: exit 0 when every
//! cell was clean (or nothing was new), 1 when a cell failed or did not
//! build, 2 when the night could not test (fetch or infrastructure failure),
//! 75 when another csdci runs the job.

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
    /// Run one night of a job now: fetch, build, run its cells, compare,
    /// bisect new regressions, send the mails.
    Run {
        /// The job's name.
        name: String,
        /// One night, then exit (the scheduler is `csdci serve`).
        #[arg(long)]
        once: bool,
        /// The directory of job files.
        #[arg(long, value_name = "DIR", default_value = "jobs")]
        jobs: PathBuf,
        /// The dashboard's public URL, linked from mails.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Print the night as JSON on standard output.
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
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    match &args.command {
        JobCommand::Check { paths } => Ok(check(paths)),
        JobCommand::List { jobs, json } => Ok(list(cli, jobs, *json)),
        JobCommand::Run {
            name,
            once,
            jobs,
            public_url,
            json,
        } => {
            if !once {
                return Err(crate::Error::Usage(format!(
                    "`csdci job run {name}` runs one night: pass --once (the scheduler that runs jobs by their schedule is `csdci serve --jobs {}`)",
                    jobs.display()
                )));
            }
            run(cli, jobs, name, public_url.clone(), *json)
        }
    }
}

/// Finds job `name` in `dir` (its errors printed when its file is invalid).
fn find_job(dir: &std::path::Path, name: &str) -> crate::Result<Job> {
    let mut known = Vec::new();
    for (file, r) in load_paths(&[dir.to_path_buf()]) {
        match r {
            Ok(job) if job.name == name => return Ok(job),
            Ok(job) => known.push(job.name),
            Err(errors) => {
                let stem = file.file_stem().map(|s| s.to_string_lossy().to_string());
                if stem.as_deref() == Some(name) {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    return Err(crate::Error::Usage(format!(
                        "job file {} is invalid; fix it (`csdci job check {}`)",
                        file.display(),
                        file.display()
                    )));
                }
            }
        }
    }
    let hint = match crate::jobs::suggest(name, known.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => format!("{} has no valid job files", dir.display()),
        None => format!("known jobs: {}", known.join(", ")),
    };
    Err(crate::Error::Usage(format!(
        "no job `{name}` in {}: {hint}",
        dir.display()
    )))
}

fn run(
    cli: &Cli,
    dir: &std::path::Path,
    name: &str,
    public_url: Option<String>,
    json: bool,
) -> crate::Result<u8> {
    let job = find_job(dir, name)?;
    let store = crate::store::Store::open(&cli.data_dir())?;
    let draw =
        super::progress::Draw::new(format!("csdci job {name}: "), super::progress::Out::Stderr);
    let opts = crate::service::night::Options {
        public_url,
        guests: None,
    };
    let result = crate::service::night::run_job(&store, &job, &opts, &draw.sink());
    draw.finish();
    let night = result?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&night).unwrap_or_default()
        );
    } else {
        print_night(&night);
    }
    let statuses: Vec<&str> = night
        .branches
        .iter()
        .flat_map(|b| b.cells.iter().map(|c| c.status.as_str()))
        .collect();
    Ok(
        if statuses
            .iter()
            .any(|s| matches!(*s, "failed" | "build_failed"))
        {
            super::EXIT_FAILED
        } else if night.branches.iter().any(|b| b.status == "infra") || statuses.contains(&"infra")
        {
            super::EXIT_UNTESTABLE
        } else {
            EXIT_CLEAN
        },
    )
}

fn print_night(n: &crate::service::night::JobNight) {
    use crate::events::short;
    for b in &n.branches {
        let head = b.head.as_deref().map(short).unwrap_or("-");
        match b.status.as_str() {
            "unchanged" => println!("{} {}: unchanged at {head}: not tested", n.job, b.branch),
            "infra" => println!(
                "{} {}: could not test: {}",
                n.job,
                b.branch,
                b.reason.as_deref().unwrap_or("")
            ),
            _ => {
                println!(
                    "{} {}: tested {head} (night {})",
                    n.job, b.branch, b.night_id
                );
                for c in &b.cells {
                    let titles: Vec<String> = c
                        .titles
                        .iter()
                        .map(|t| format!("{} ({}x)", t.title, t.runs))
                        .collect();
                    println!(
                        "  {}: {} ({} runs, {} failed{}){}",
                        c.cell,
                        c.status,
                        c.runs,
                        c.fails,
                        if c.infra > 0 {
                            format!(", {} lost", c.infra)
                        } else {
                            String::new()
                        },
                        if titles.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", titles.join("; "))
                        }
                    );
                }
            }
        }
        for id in &b.opened {
            println!("  new regression #{id}");
        }
        for id in &b.attached {
            println!("  seen again: regression #{id}");
        }
        for id in &b.fixed {
            println!("  fixed: regression #{id}");
        }
        for x in &b.bisected {
            println!(
                "  regression #{}: bisection {} ended: {}{}",
                x.regression,
                x.bisection,
                x.status,
                x.culprit
                    .as_deref()
                    .map(|c| format!(" {}", short(c)))
                    .unwrap_or_default()
            );
        }
    }
    if n.mails_sent + n.mails_failed > 0 {
        println!(
            "mail: {} sent, {} kept to retry",
            n.mails_sent, n.mails_failed
        );
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
    /// Per branch: `BRANCH: STATUS at SHA (F/N failed, DATE)` or `never run`.
    last_result: String,
}

#[derive(Serialize)]
struct OpenRegression {
    id: i64,
    branch: String,
    title: String,
    kind: String,
    since: String,
    culprit: Option<String>,
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
    last_night: Option<String>,
    open_regressions: Vec<OpenRegression>,
}

/// The last result of each cell of `job`, per branch, from the store.
fn last_results(store: Option<&crate::store::Store>, job: &Job, cell: &str) -> String {
    let Some(store) = store else {
        return "never run".into();
    };
    let mut parts = Vec::new();
    for branch in &job.branches {
        if let Ok(Some((n, c))) = store.last_cell_before(&job.name, branch, cell, i64::MAX) {
            parts.push(format!(
                "{branch}: {} at {} ({}/{} failed, {})",
                c.status,
                n.head.as_deref().map(crate::events::short).unwrap_or("-"),
                c.fails,
                c.runs,
                n.started_at.get(..16).unwrap_or(&n.started_at)
            ));
        }
    }
    if parts.is_empty() {
        "never run".into()
    } else {
        parts.join("; ")
    }
}

fn list(cli: &Cli, dir: &std::path::Path, json: bool) -> u8 {
    let store = crate::store::Store::open_read_only(&cli.data_dir()).ok();
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
                            last_result: last_results(store.as_ref(), &job, &c.label()),
                        })
                        .collect(),
                    last_night: store
                        .as_ref()
                        .and_then(|s| s.nights(Some(&job.name), None, 1).ok())
                        .and_then(|n| n.into_iter().next())
                        .map(|n| format!("{} {} ({})", n.branch, n.status, n.started_at)),
                    open_regressions: store
                        .as_ref()
                        .and_then(|s| s.regressions(Some(&job.name), Some("open")).ok())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| OpenRegression {
                            id: r.id,
                            branch: r.branch,
                            title: r.title,
                            kind: r.kind,
                            since: r.bad,
                            culprit: r.culprit,
                        })
                        .collect(),
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
        if let Some(n) = &j.last_night {
            println!("  last night: {n}");
        }
        if j.open_regressions.is_empty() {
            println!("  open regressions: none");
        } else {
            println!("  open regressions:");
            for r in &j.open_regressions {
                println!(
                    "    #{} [{}] {} ({}, since {}{})",
                    r.id,
                    r.branch,
                    r.title,
                    r.kind,
                    crate::events::short(&r.since),
                    r.culprit
                        .as_deref()
                        .map(|c| format!(", culprit {}", crate::events::short(c)))
                        .unwrap_or_default()
                );
            }
        }
    }
    code
}

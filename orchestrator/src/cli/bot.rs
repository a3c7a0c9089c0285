//! `csdci bot run --jobs DIR [--once] [--dry-run]`: the patch bot over the
//! `kind: bot` job files of DIR (see [`crate::bot`]). `--once` polls every
//! job once, tests what is complete and exits; otherwise it polls each job
//! at its `poll` interval until SIGINT/SIGTERM. `--dry-run` writes replies
//! to the store and stdout instead of sending them. Exit 0, or 3 when a job
//! file is invalid (`FILE:LINE:COLUMN: field: message` on stderr).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Cli, EXIT_CLEAN, EXIT_USAGE};

/// Arguments of `csdci bot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: BotCommand,
}

/// `csdci bot` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BotCommand {
    /// Watch the lists of the bot jobs, test their series, reply.
    Run {
        /// The directory of job files (only `kind: bot` files are read).
        #[arg(long, value_name = "DIR", default_value = "jobs")]
        jobs: PathBuf,
        /// One poll of every job, then exit.
        #[arg(long)]
        once: bool,
        /// Write replies to the store and stdout; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs `csdci bot`.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    let BotCommand::Run {
        jobs,
        once,
        dry_run,
    } = &args.command;
    let mut valid = Vec::new();
    let mut bad = false;
    for (_, r) in crate::jobs::bot::load_dir(jobs) {
        match r {
            Ok(j) => valid.push(j),
            Err(errs) => {
                bad = true;
                for e in errs {
                    eprintln!("{e}");
                }
            }
        }
    }
    if bad {
        return Ok(EXIT_USAGE);
    }
    if valid.is_empty() {
        eprintln!("csdci: no `kind: bot` job files in {}", jobs.display());
        return Ok(EXIT_USAGE);
    }
    let store = crate::store::Store::open(&cli.data_dir())?;
    let opts = crate::bot::Options { dry_run: *dry_run };
    crate::interrupt::install_interrupt_handler();
    let mut next: Vec<Instant> = vec![Instant::now(); valid.len()];
    let mut stdout = std::io::stdout();
    loop {
        for (i, job) in valid.iter().enumerate() {
            if crate::interrupt::interrupted() {
                return Ok(EXIT_CLEAN);
            }
            if Instant::now() < next[i] {
                continue;
            }
            let c = crate::bot::cycle(&store, job, &opts, &mut stdout)?;
            tracing::info!(
                "{}: {} new mails ({} skipped), {} series tested, {} replies{}",
                c.job,
                c.new_mails,
                c.skipped,
                c.tested.len(),
                c.replies,
                c.poll_error
                    .map(|e| format!("; poll failed: {e}"))
                    .unwrap_or_default()
            );
            next[i] = Instant::now() + job.poll;
        }
        if *once {
            return Ok(EXIT_CLEAN);
        }
        let wake = next.iter().min().copied().unwrap_or_else(Instant::now);
        while Instant::now() < wake {
            if crate::interrupt::interrupted() {
                return Ok(EXIT_CLEAN);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

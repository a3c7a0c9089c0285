//! The `csdci` command line: one submodule per subcommand. Exit codes: 0 clean,
//! 1 the kernel failed, 2 could not test (build broke, infra error), 3 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod bisect;
pub mod bot;
pub mod completions;
pub mod demo;
pub mod export;
pub mod job;
pub mod man;
pub mod parse;
pub mod progress;
pub mod run;
pub mod serve;
pub mod sweep;

/// What `csdci --version` prints after the name: the version and the git commit
/// it was built from (`unknown` outside a checkout; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CSDCI_GIT_COMMIT"),
    ")"
);

/// Exit code: the kernel tested clean.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: the kernel failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: could not test (build broke, infra error).
pub const EXIT_UNTESTABLE: u8 = 2;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 3;
/// Exit code of `csdci bisect`: a merge base of the good and bad revisions
/// fails, so the regression is older than GOOD.
pub const EXIT_MERGE_BASE_BAD: u8 = 4;
/// Exit code: refused because another csdci process is driving the same
/// bisection (sysexits' EX_TEMPFAIL: try again later).
pub const EXIT_BUSY: u8 = 75;
/// Exit code: stopped by SIGINT/SIGTERM (what a shell reports for SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Find Linux kernel concurrency regressions and name the commit that caused them.
#[derive(Debug, Parser)]
#[command(name = "csdci", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Where csdci keeps its database, logs, build cache and worktrees.
    #[arg(long, global = true, env = "CSDCI_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The data directory in effect.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(crate::store::Store::default_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, boot and torture one kernel commit.
    Run(run::Args),
    /// Analyse kernel console logs.
    Parse(parse::Args),
    /// Find the commit that introduced a failure.
    Bisect(bisect::Args),
    /// Make a real kernel history with a CSD-lock regression and bisect it.
    Demo(demo::Args),
    /// Find the setting (vCPUs, threads, hotplug, load, length) that reproduces a failure fastest.
    Sweep(sweep::Args),
    /// Check and list nightly job files (jobs/*.yaml).
    Job(job::Args),
    /// Export the nights for other systems (KCIDB v5 JSON).
    Export(export::Args),
    /// Run the nightly scheduler: fire each job of --jobs by its schedule (SIGHUP reloads).
    Serve(serve::Args),
    /// The patch bot: test series posted to a list, reply with the result.
    Bot(bot::Args),
    /// Benchmarks that print ratios.
    Bench(bench::Args),
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions(completions::Args),
    /// Print the manual page csdci.1 (or write all pages with --dir).
    Man(man::Args),
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Entry point of the `csdci` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose);
    let result = match &cli.command {
        Command::Run(args) => run::exec(&cli, args),
        Command::Parse(args) => parse::exec(&cli, args),
        Command::Bisect(args) => bisect::exec(&cli, args),
        Command::Demo(args) => demo::exec(&cli, args),
        Command::Sweep(args) => sweep::exec(&cli, args),
        Command::Job(args) => job::exec(&cli, args),
        Command::Export(args) => export::exec(&cli, args),
        Command::Serve(args) => serve::exec(&cli, args),
        Command::Bot(args) => bot::exec(&cli, args),
        Command::Bench(args) => bench::exec(&cli, args),
        Command::Completions(args) => completions::exec(&cli, args),
        Command::Man(args) => man::exec(&cli, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("csdci: error: {shown}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Wrapper variants already print their source's message.
                let text = s.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                    shown.push_str(&text);
                }
                source = s.source();
            }
            ExitCode::from(if e.is_usage() {
                EXIT_USAGE
            } else if e.is_busy() {
                EXIT_BUSY
            } else if e.is_interrupt() {
                EXIT_INTERRUPTED
            } else {
                EXIT_UNTESTABLE
            })
        }
    }
}

//! `csdci bench ...`: benchmarks that print ratios (never timed assertions).
//! One submodule per benchmark.

use super::Cli;

pub mod bisect_sim;
pub mod corpus;
pub mod demo;
pub mod parse;
pub mod serve_idle;
pub mod web;

/// Arguments of `csdci bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub which: Which,
}

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Which {
    /// Bayesian bisection vs syzbot's policy vs plain bisection on synthetic histories.
    BisectSim(bisect_sim::Args),
    /// Console analysis throughput vs the kernel's console-badness.sh, and memory.
    Parse(parse::Args),
    /// Console analyzer vs syzkaller's crash-report corpus, per category.
    Corpus(corpus::Args),
    /// A finished pipeline bisection (the demo's) vs its lower bound.
    Demo(demo::Args),
    /// Memory and wakeups of an idle `csdci serve` with 20 job files.
    ServeIdle(serve_idle::Args),
    /// Server time of the dashboard's pages on a store of 10,000 runs and 500 bisections.
    Web(web::Args),
}

/// Runs `csdci bench`; returns the exit code.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    match &args.which {
        Which::BisectSim(a) => bisect_sim::exec(cli, a),
        Which::Parse(a) => parse::exec(cli, a),
        Which::Corpus(a) => corpus::exec(cli, a),
        Which::Demo(a) => demo::exec(cli, a),
        Which::ServeIdle(a) => serve_idle::exec(cli, a),
        Which::Web(a) => web::exec(cli, a),
    }
}

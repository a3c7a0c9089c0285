//! `csdci bench ...`: benchmarks that print ratios (never timed assertions).
//! One submodule per benchmark.

use super::Cli;

/// Arguments of `csdci bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub which: Which,
}

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Which {}

/// Runs `csdci bench`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    match args.which {}
}

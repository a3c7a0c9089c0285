//! `csdci parse`.

use super::Cli;

/// Arguments of `csdci parse`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `csdci parse`; returns the exit code.
pub fn exec(_cli: &Cli, _args: &Args) -> crate::Result<u8> {
    Err(crate::Error::Usage("csdci parse: not built yet".into()))
}

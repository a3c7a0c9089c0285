//! `csdci demo`.

use super::Cli;

/// Arguments of `csdci demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `csdci demo`; returns the exit code.
pub fn exec(_cli: &Cli, _args: &Args) -> crate::Result<u8> {
    Err(crate::Error::Usage("csdci demo: not built yet".into()))
}

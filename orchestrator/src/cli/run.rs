//! `csdci run`.

use super::Cli;

/// Arguments of `csdci run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `csdci run`; returns the exit code.
pub fn exec(_cli: &Cli, _args: &Args) -> crate::Result<u8> {
    Err(crate::Error::Usage("csdci run: not built yet".into()))
}

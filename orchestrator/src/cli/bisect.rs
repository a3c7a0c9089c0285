//! `csdci bisect`.

use super::Cli;

/// Arguments of `csdci bisect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `csdci bisect`; returns the exit code.
pub fn exec(_cli: &Cli, _args: &Args) -> crate::Result<u8> {
    Err(crate::Error::Usage("csdci bisect: not built yet".into()))
}

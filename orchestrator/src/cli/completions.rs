//! `csdci completions SHELL`: a completion script for SHELL, generated from the
//! clap definitions, on standard output.

use std::io::Write;

use clap::CommandFactory;

use super::Cli;

/// Arguments of `csdci completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:
  bash: csdci completions bash > /usr/share/bash-completion/completions/csdci
  zsh:  csdci completions zsh > /usr/local/share/zsh/site-functions/_csdci
  fish: csdci completions fish > ~/.config/fish/completions/csdci.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `shell` to `out`.
pub fn write(shell: clap_complete::Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "csdci", out);
}

/// Runs `csdci completions`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let mut out = Vec::new();
    write(args.shell, &mut out);
    to_stdout(&out)
}

/// Writes `bytes` to standard output; a reader that went away (`| head`) is no
/// error.
pub(crate) fn to_stdout(bytes: &[u8]) -> crate::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(crate::Error::io("standard output", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_the_subcommands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            write(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in [
                "run",
                "parse",
                "bisect",
                "demo",
                "bench",
                "completions",
                "man",
            ] {
                assert!(text.contains(sub), "{shell:?} completion lacks {sub}");
            }
            assert!(text.contains("data-dir"), "{shell:?} lacks --data-dir");
        }
    }
}

//! `csdci man`: the manual page `csdci.1`, generated from the clap definitions,
//! on standard output (`csdci man > csdci.1`), or with `--dir DIR` that page and
//! one per subcommand (`csdci-run.1`, `csdci-bisect-list.1`, ...) written there.

use std::path::PathBuf;

use clap::CommandFactory;

use super::Cli;

/// Arguments of `csdci man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install, for example:
  csdci man --dir /usr/local/share/man/man1 && mandb -q
  man csdci")]
pub struct Args {
    /// Write csdci.1 and a page for every subcommand into DIR (created if
    /// missing) instead of printing csdci.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The roff source of `csdci.1`.
pub fn page() -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .expect("writing to memory cannot fail");
    out
}

/// Runs `csdci man`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let Some(dir) = &args.dir else {
        return super::completions::to_stdout(&page());
    };
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(|e| crate::Error::io(dir, e))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_documents_the_subcommands_and_version() {
        let text = String::from_utf8(page()).unwrap();
        assert!(text.starts_with(".ie"), "not roff: {}", &text[..40]);
        assert!(text.contains(".TH csdci 1"), "no title line");
        for sub in [
            "run",
            "parse",
            "bisect",
            "demo",
            "sweep",
            "bench",
            "completions",
            "man",
        ] {
            assert!(
                text.contains(&format!("csdci\\-{sub}(1)")),
                "no {sub} in SUBCOMMANDS"
            );
        }
        assert!(
            text.contains(env!("CSDCI_GIT_COMMIT")),
            "no commit in the version"
        );
    }

    #[test]
    fn dir_gets_a_page_per_subcommand() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("share/man/man1");
        let cli = <Cli as clap::Parser>::try_parse_from([
            "csdci".as_ref(),
            "man".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
        ])
        .unwrap();
        let super::super::Command::Man(args) = &cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(exec(&cli, args).unwrap(), 0);
        for name in [
            "csdci.1",
            "csdci-run.1",
            "csdci-bisect.1",
            "csdci-bench-corpus.1",
        ] {
            assert!(dir.join(name).is_file(), "{name} not written");
        }
    }
}

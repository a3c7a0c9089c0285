//! `csdci export kcidb [--since T] [--origin NAME] [--public-url URL] [-o FILE]`:
//! the nights as a KCIDB v5 document (see [`crate::export::kcidb`]), on
//! standard output or in FILE. Reads the store only. Exit codes: 0 written,
//! 2 the store or FILE could not be read or written, 3 usage error.

use std::io::Write;
use std::path::PathBuf;

use super::{Cli, EXIT_CLEAN};
use crate::export::{self, kcidb};
use crate::store::Store;

/// Arguments of `csdci export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub format: Format,
}

/// Export formats.
#[derive(Debug, clap::Subcommand)]
pub enum Format {
    /// The nights as KCIDB v5 JSON: checkouts, builds, tests, issues, incidents.
    Kcidb(KcidbArgs),
}

/// Arguments of `csdci export kcidb`.
#[derive(Debug, clap::Args)]
pub struct KcidbArgs {
    /// Only nights started at or after T: RFC 3339 (2026-12-01T06:00:00Z), a
    /// date (2026-12-01, midnight UTC) or a time back from now (7d, 12h, 2w).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,

    /// The CI system's name, the prefix of every id (lowercase letters,
    /// digits, `_`).
    #[arg(long, value_name = "NAME", default_value = kcidb::DEFAULT_ORIGIN)]
    pub origin: String,

    /// The dashboard's public URL: each issue's report_url is
    /// URL/regressions/ID.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,

    /// Write the JSON to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `csdci export`.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    match &args.format {
        Format::Kcidb(a) => exec_kcidb(cli, a),
    }
}

fn usage(msg: String) -> crate::Error {
    crate::Error::Usage(msg)
}

fn exec_kcidb(cli: &Cli, a: &KcidbArgs) -> crate::Result<u8> {
    let since = match &a.since {
        None => None,
        Some(t) => Some(export::parse_since(t, chrono::Utc::now()).map_err(|e| {
            usage(format!(
                "--since {e}; give e.g. --since 2026-12-01, --since 2026-12-01T06:00:00Z or --since 7d"
            ))
        })?),
    };
    if !kcidb::valid_origin(&a.origin) {
        return Err(usage(format!(
            "--origin `{}`: lowercase letters, digits and `_` only (e.g. --origin csdci)",
            a.origin
        )));
    }
    if let Some(u) = &a.public_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(usage(format!(
            "--public-url `{u}`: an http:// or https:// URL (e.g. --public-url https://ci.example.org)"
        )));
    }
    let store = Store::open_read_only(&cli.data_dir())?;
    let doc = kcidb::export_with(
        &store,
        &kcidb::Options {
            since,
            origin: &a.origin,
            public_url: a.public_url.as_deref(),
        },
    )?;
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    match &a.output {
        Some(path) => {
            // Written beside FILE, then renamed: a reader never sees half a document.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp =
                tempfile::NamedTempFile::new_in(dir).map_err(|e| crate::Error::io(dir, e))?;
            tmp.write_all(text.as_bytes())
                .map_err(|e| crate::Error::io(path, e))?;
            // A report to share, not a secret (the temporary file is 0600).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(|e| crate::Error::io(path, e))?;
            tmp.persist(path)
                .map_err(|e| crate::Error::io(path, e.error))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| crate::Error::io("<stdout>", e))?;
        }
    }
    Ok(EXIT_CLEAN)
}

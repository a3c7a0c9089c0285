//! `csdci parse [--json] FILE...`: analyse kernel console logs ('-' reads stdin).
//!
//! Exit code 0 when every console is clean or incomplete, 1 when any shows a crash,
//! 3 when a file cannot be read; 0 and no message when stdout is closed early
//! (`| head -1`).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

use csdci_console::{Analysis, Analyzer, Verdict};
use serde::Serialize;

use super::{Cli, EXIT_CLEAN, EXIT_FAILED, EXIT_USAGE};

/// Arguments of `csdci parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object per file (one per line) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Console logs to analyse; '-' reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// One file's analysis, as printed by `--json`.
#[derive(Serialize)]
struct FileReport<'a> {
    file: &'a str,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

/// Streams a file (or stdin) through the analyzer in 1 MiB chunks.
fn analyse(path: &std::path::Path) -> std::io::Result<Analysis> {
    let mut input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path)?)
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut a = Analyzer::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        a.feed(&buf[..n]);
    }
    Ok(a.finish())
}

/// The reader of stdout went away (`csdci parse BIG.log | head -1`): not an
/// error, csdci ends quietly with exit 0 as a SIGPIPE'd filter would.
fn stdout_closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Runs `csdci parse`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let mut any_crash = false;
    let mut unreadable = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let name = path.display().to_string();
        let analysis = match analyse(path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!(
                    "csdci: error: cannot read {name}: {e} (give a readable console log, or '-' for stdin)"
                );
                unreadable += 1;
                continue;
            }
        };
        any_crash |= analysis.verdict == Verdict::Crash;
        let text = if args.json {
            let mut s = serde_json::to_string(&FileReport {
                file: &name,
                analysis: &analysis,
            })
            .unwrap_or_else(|e| format!("{{\"file\":{name:?},\"error\":\"{e}\"}}"));
            s.push('\n');
            s
        } else {
            human(&name, &analysis)
        };
        match out.write_all(text.as_bytes()) {
            Err(e) if stdout_closed(&e) => return Ok(EXIT_CLEAN),
            r => r.map_err(|e| crate::Error::io("<stdout>", e))?,
        }
    }
    match out.flush() {
        Err(e) if stdout_closed(&e) => return Ok(EXIT_CLEAN),
        r => r.map_err(|e| crate::Error::io("<stdout>", e))?,
    }
    Ok(if unreadable > 0 {
        EXIT_USAGE
    } else if any_crash {
        EXIT_FAILED
    } else {
        EXIT_CLEAN
    })
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Crash => "crash",
        Verdict::Clean => "clean",
        Verdict::Incomplete => "incomplete",
    }
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// The text report of one file.
fn human(name: &str, a: &Analysis) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{name}: {} ({} lines){}",
        verdict_name(a.verdict),
        a.lines,
        if a.panicked { ", kernel panic" } else { "" }
    );
    if let Some(t) = &a.title {
        let _ = writeln!(
            s,
            "  title: {t}{}",
            if a.corrupted { " [corrupted]" } else { "" }
        );
    }
    for f in &a.findings {
        let mut who = String::new();
        if let Some(c) = f.cpu {
            let _ = write!(who, "cpu {c}");
        }
        if let Some(t) = &f.task {
            if !who.is_empty() {
                who.push(' ');
            }
            who.push_str(t);
        }
        let _ = writeln!(
            s,
            "  line {:<7} {:<20} {:<22} {}{}",
            f.line,
            f.kind.as_str(),
            who,
            f.title,
            if f.corrupted { " [corrupted]" } else { "" }
        );
    }
    if a.dropped_findings > 0 {
        let _ = writeln!(
            s,
            "  ... {} more findings (counted only)",
            a.dropped_findings
        );
    }
    if !a.csd.is_empty() {
        let _ = writeln!(s, "  CSD locks:");
        let _ = writeln!(
            s,
            "    {:<6} {:>6} {:>6}  {:<20} {:<20} {:>12}  {:<6} {:<7} {:>7}  shared with",
            "id", "waiter", "target", "func", "csd", "max wait", "resent", "unstuck", "reports"
        );
        for g in &a.csd {
            let wait = g
                .max_wait_ns
                .map(|ns| format!("{:.3} s", ns as f64 / 1e9))
                .unwrap_or_else(|| "-".into());
            let shared: Vec<String> = g.shared_with.iter().map(|i| format!("#{i}")).collect();
            let _ = writeln!(
                s,
                "    {:<6} {:>6} {:>6}  {:<20} {:<20} {:>12}  {:<6} {:<7} {:>7}  {}",
                format!("#{}", g.id),
                or_dash(g.waiter_cpu),
                or_dash(g.target_cpu),
                g.func.as_deref().unwrap_or("-"),
                g.csd.as_deref().unwrap_or("-"),
                wait,
                if g.resent { "yes" } else { "no" },
                if g.unstuck { "yes" } else { "no" },
                g.reports,
                if shared.is_empty() {
                    "-".to_string()
                } else {
                    shared.join(" ")
                }
            );
        }
    }
    let scf = &a.scftorture;
    if scf.started || scf.result.is_some() || scf.invocations.is_some() {
        let e = &scf.errors;
        let _ = writeln!(
            s,
            "  scftorture: result {}, {} invocations, errors ste {} stnmie {} stnmoe {} staf {}{}",
            scf.result.as_deref().unwrap_or("none (not finished)"),
            or_dash(scf.invocations),
            e.ste,
            e.stnmie,
            e.stnmoe,
            e.staf,
            if scf.memory_ordering_failures > 0 {
                format!(
                    ", {} memory-ordering failures",
                    scf.memory_ordering_failures
                )
            } else {
                String::new()
            }
        );
    }
    s
}

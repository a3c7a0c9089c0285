//! `csdci bench corpus`: the console analyzer against syzkaller's Linux crash-report
//! corpus: per category, crash/no-crash agreement, exact title agreement and
//! corruption agreement.

use std::path::PathBuf;
use std::time::Instant;

use csdci_console::corpus;

use crate::cli::Cli;

/// Arguments of `csdci bench corpus`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The corpus `report/` folder (files named N with a KEY: value header).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also list every disagreement.
    #[arg(long)]
    pub mismatches: bool,
}

/// Runs `csdci bench corpus`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let dir = super::parse::corpus_dir(args.dir.as_deref())?;
    let cases = corpus::read_dir(&dir).map_err(|e| crate::Error::Usage(e.to_string()))?;
    if cases.is_empty() {
        return Err(crate::Error::Usage(format!(
            "no corpus files (named by digits) in {}",
            dir.display()
        )));
    }
    let start = Instant::now();
    let score = corpus::score(&cases);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "corpus: {} ({} files, analysed in {secs:.2} s)",
        dir.display(),
        cases.len()
    );
    print!("{}", score.table());
    let f = score.figures();
    println!(
        "targets: crash/no-crash >= 99% (got {:.1}%), exact title >= 90% (got {:.1}%), soft lockup / RCU stall / hung task titles >= 95% (got {:.1}% / {:.1}% / {:.1}%)",
        f.crash_agreement,
        f.title_agreement,
        f.soft_lockup_title,
        f.rcu_stall_title,
        f.hung_task_title
    );
    if args.mismatches {
        println!("disagreements:");
        for m in &score.mismatches {
            println!(
                "  {:>5}: expected {:?}{} got {:?}{}",
                m.name,
                m.expected.as_deref().unwrap_or("(no crash)"),
                if m.expected_corrupted {
                    " [corrupted]"
                } else {
                    ""
                },
                m.got.as_deref().unwrap_or("(no crash)"),
                if m.got_corrupted { " [corrupted]" } else { "" },
            );
        }
    }
    Ok(0)
}

//! `csdci demo`: make (or reuse) a real kernel history with a planted CSD-lock
//! regression, bisect it with the real pipeline, print the culprit report, then
//! validate the `fix` branch.

use std::path::PathBuf;

use serde::Serialize;

use super::Cli;
use super::bisect::PolicyArg;
use super::progress::{Draw, Out};
use super::run::RunArgs;
use crate::bisect::report;
use crate::demo::{self, History};
use crate::events::short;
use crate::service::bisect::{self as bisect_service, Request};
use crate::service::fix::{self, FixValidation};
use crate::store::Store;
use crate::testers::TesterSpec;
use crate::testers::local::{LocalTester, RunOptions};

/// Default `--stop-after-crash` of the demo, in seconds.
pub const DEFAULT_STOP_AFTER_CRASH_S: u64 = 20;

/// Arguments of `csdci demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo's kernel git repository lives (made from the tarball once).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// Commits on top of the imported 6.12 tree (fillers, the regression, a
    /// commit that does not compile and its fix).
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub commits: usize,
    /// Seed that places the regression and shapes the history (same seed, same history).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Keep csdci's worktrees and build directories of the demo when it ends
    /// (default: remove them; the artifact cache and ccache keep reruns fast).
    #[arg(long)]
    pub keep: bool,
    /// Only make the history; do not bisect.
    #[arg(long)]
    pub prepare_only: bool,
    /// Kernel source tarball to import.
    #[arg(long, default_value = demo::import::TARBALL, value_name = "FILE")]
    pub tarball: PathBuf,
    /// Runs of the `fix` branch for its validation.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub fix_runs: u32,
    /// Stop the bisection when the most likely culprit has this probability.
    #[arg(long, default_value_t = 0.99)]
    pub confidence: f64,
    /// How the bisection weighs its runs (`csdci bisect --policy`): `timed`
    /// (failure-time evidence, run lengths chosen by the engine, failing
    /// runs ended once the report is out; on this history 1.03x its lower
    /// bound in `csdci bench demo`, against 2.06x with `runs`) or `runs`
    /// (pass or fail).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = PolicyArg::Timed)]
    pub policy: PolicyArg,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `csdci demo --json` prints.
#[derive(Debug, Serialize)]
pub struct DemoResult {
    pub history: History,
    pub bisection: Option<report::Report>,
    pub culprit_matches_regression: Option<bool>,
    pub fix_validation: Option<FixValidation>,
}

/// Runs `csdci demo`; returns the exit code.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    let data_dir = cli.data_dir();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.join("demo").join("linux"));
    super::bisect::check_budget(Some(args.confidence), None)?;
    let mut spec = args.run.spec()?;
    // Bisection speed: a failing run has shown what it has to show once the
    // first crash is in the console for a while (the CSD report comes ~5 s
    // into the test, the soft lockup ~45 s later).
    spec.stop_after_crash_s
        .get_or_insert(DEFAULT_STOP_AFTER_CRASH_S);
    let spec = spec.absolute()?;
    let opts = RunOptions::new(&dir, data_dir.clone(), spec.clone())?;
    let history = demo::prepare(&dir, &args.tarball, args.commits, args.seed)?;
    if !args.json {
        println!(
            "demo history in {}: {} commits, seed {}; demo-good {} .. demo-bad {}",
            dir.display(),
            history.commits,
            history.seed,
            short(&history.good),
            short(&history.bad)
        );
    }
    if args.prepare_only {
        let result = DemoResult {
            history,
            bisection: None,
            culprit_matches_regression: None,
            fix_validation: None,
        };
        print_json_if(args.json, &result);
        return Ok(0);
    }

    let store = Store::open(&data_dir)?;
    let req = Request {
        tree: dir.clone(),
        good: vec![demo::history::GOOD_TAG.into()],
        bad: demo::history::BAD_TAG.into(),
        first_parent: false,
        tester: TesterSpec::Local {
            spec,
            max_guests: None,
        },
        confidence: Some(args.confidence),
        max_runs: None,
        verify_bad: None,
        deterministic: false,
        revert_check: true,
        predicate: "any".into(),
        policy: args.policy.into(),
        max_exposure_s: None,
    };
    // An interrupted demo (Ctrl-C, kill, a failed guest) goes on where it stopped.
    let (id, resumed) = bisect_service::start_or_resume(&store, &req)?;
    let json = args.json;
    // With --json, stdout carries only the JSON; progress goes to stderr.
    let draw = Draw::new("  ", if json { Out::Stderr } else { Out::Stdout });
    if resumed {
        draw.line(&format!("resuming the unfinished demo bisection #{id}"));
    }
    // Ctrl-C stops the guest and journals the run as interrupted; running
    // `csdci demo` again resumes (a second Ctrl-C kills csdci outright).
    crate::interrupt::install_interrupt_handler();
    let report = bisect_service::drive(&store, id, &mut |_| Ok(()), &draw.sink());
    draw.finish();
    let report = report?;
    if !json {
        println!();
        println!("{}", report::render(&report));
    }
    // Only a culprit the checks do not contradict counts (not a doubtful one).
    let matches = report
        .culprit
        .as_ref()
        .filter(|_| report.status == "culprit")
        .map(|c| c.sha == history.regression);
    if !json {
        match matches {
            Some(true) => println!(
                "The culprit is the planted regression {}.",
                short(&history.regression)
            ),
            Some(false) => println!(
                "The culprit is NOT the planted regression {} (see the journal: csdci bisect log {id}).",
                short(&history.regression)
            ),
            None => println!(
                "The culprit was not isolated ({}; see: csdci bisect log {id}).",
                report.status
            ),
        }
    }

    let mut tester = LocalTester::new(opts)?;
    let fix = fix::validate_and_record(
        &store,
        id,
        &mut tester,
        &history.fix,
        args.fix_runs,
        report.fail_rate,
        &mut |line: &str| draw.line(line),
    )?;
    if !json {
        println!(
            "Fix validation ({}): {} failures in {} runs => per-run failure rate < {:.2} at 95%; \
             the regression failed {:.0}% of runs, so an unfixed kernel would pass all {} with probability {:.1e}: {}",
            short(&fix.commit),
            fix.fails,
            fix.runs,
            fix.failure_rate_upper_95,
            fix.regression_failure_rate * 100.0,
            fix.runs,
            fix.p_pass_if_unfixed,
            if fix.passed { "FIXED" } else { "NOT FIXED" }
        );
    }
    drop(tester);
    if !args.keep {
        remove_worktree(&data_dir, &dir);
    }
    let ok = matches == Some(true) && fix.passed;
    let result = DemoResult {
        history,
        bisection: Some(report),
        culprit_matches_regression: matches,
        fix_validation: Some(fix),
    };
    print_json_if(args.json, &result);
    Ok(if ok {
        super::EXIT_CLEAN
    } else {
        super::EXIT_FAILED
    })
}

/// Removes csdci's worktree (and its build directory) of the demo repository;
/// the artifact cache and ccache keep a rerun fast.
fn remove_worktree(data_dir: &std::path::Path, repo: &std::path::Path) {
    let wt = crate::build::worktree_dir(data_dir, repo);
    if wt.exists() {
        let p = wt.to_string_lossy();
        let removed = crate::vcs::mirror::Mirror::beside(&wt, repo)
            .and_then(|m| crate::vcs::git(m.path(), &["worktree", "remove", "--force", &p]));
        if let Err(e) = removed {
            tracing::warn!("could not remove {}: {e}", wt.display());
        }
    }
}

fn print_json_if(json: bool, value: &impl Serialize) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("csdci: cannot print JSON: {e}"),
        }
    }
}

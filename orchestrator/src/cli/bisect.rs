//! `csdci bisect <good> <bad>`, `csdci bisect --resume ID`, `csdci bisect log ID`,
//! `csdci bisect list`. Exit codes: 0 culprit found, 1 not isolated or
//! inconclusive, 2 infrastructure error, 3 usage error.

use std::path::PathBuf;

use super::Cli;
use super::progress::{Draw, Out};
use crate::bisect::{self, report};
use crate::events::short;
use crate::service::bisect::{self as service, Request};
use crate::spec::RunSpec;
use crate::store::Store;
use crate::testers::TesterSpec;
use crate::testers::command::OnTimeout;

/// Arguments of `csdci bisect`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,

    /// Revisions: `<good> <bad>`, or only `<bad>` when --good is given.
    #[arg(value_name = "REV", num_args = 0..=2)]
    pub revs: Vec<String>,

    /// A known good revision (repeatable, as in git).
    #[arg(long = "good", value_name = "REV")]
    pub good: Vec<String>,

    /// The git tree to bisect (never modified: csdci tests in its own worktrees).
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub tree: PathBuf,

    /// Test with a command, like `git bisect run`: `sh -c CMD` in csdci's own
    /// checkout of the commit (never your working tree); exit 0 good, 125
    /// untestable, 1..124 bad; 126/127 (not executable / not found), 128 or
    /// more, or a signal abort. A relative script path (`./t.sh`) is resolved
    /// against the directory csdci is started from, so an untracked script
    /// works; it is checked before anything is tested.
    #[arg(long, value_name = "CMD")]
    pub run: Option<String>,

    /// With --run: stop a run after this many seconds (killing the command and
    /// everything it started); --on-timeout says what a timeout means.
    #[arg(long, value_name = "SECONDS", requires = "run")]
    pub timeout: Option<u64>,

    /// With --timeout: `skip` (the commit cannot be tested, like exit 125) or
    /// `abort` (stop the bisection; --resume continues). Never counted as bad.
    #[arg(
        long,
        value_name = "WHAT",
        default_value = "abort",
        requires = "timeout"
    )]
    pub on_timeout: OnTimeoutArg,

    /// Run up to W tests at once (a parallel bisection: each round the
    /// engine picks W runs, several commits or repeats of one, that together
    /// tell most; fewer rounds). With --run, each in a checkout of its own;
    /// with the QEMU pipeline, W guests boot at once (a round's kernels are
    /// built one after another first), and W × --memory must fit in 80% of
    /// the host's available memory. Not with --lab lava (the lab's free
    /// devices set W there).
    #[arg(long, value_name = "W",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_guests: Option<u32>,

    /// The test is deterministic: run each commit once, as `git bisect run`
    /// does (with the journal, --resume, skips and the revert check); results
    /// that contradict each other end the bisection as inconclusive.
    #[arg(long)]
    pub deterministic: bool,

    /// Stop when the most likely culprit has this posterior probability
    /// (default 0.99; with --resume, changes it for the rest of the bisection).
    #[arg(long, value_name = "P")]
    pub confidence: Option<f64>,

    /// Stop after this many runs in total (with --resume, changes the budget).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u32>,

    /// Which failures count: any (any crash finding), csd (a CSD-lock finding) or
    /// title:REGEX (a finding whose title matches).
    #[arg(long, default_value = "any", value_name = "PRED")]
    pub predicate: String,

    /// First make sure the bad revision fails: run it until it has failed 3 times
    /// or been run N times, and stop if it never fails (0: trust it, as `git
    /// bisect` does). Default: 20 with the QEMU pipeline, 0 with --run.
    #[arg(long, value_name = "N")]
    pub verify_bad: Option<u32>,

    /// How runs are weighed: `runs` (each run passes or fails) or `timed`
    /// (failure-time evidence: a failure rate per second of workload; the
    /// engine chooses each run's length, as the scftorture duration or, with
    /// --run, in CSDCI_MAX_EXPOSURE_S, and stops a clean run once it has shown
    /// enough; each run's exposure and first-failure time are journalled).
    /// Default: runs.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PolicyArg>,

    /// With --policy timed: the longest run the engine asks for, in seconds
    /// of workload (default: --duration with the QEMU pipeline; --timeout or
    /// 600 with --run).
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_exposure: Option<u32>,

    /// Follow only first parents (do not descend into merged branches).
    #[arg(long)]
    pub first_parent: bool,

    /// Do not test the bad tip with the culprit reverted.
    #[arg(long)]
    pub no_revert_check: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// After the culprit, validate that REV fixes it (as `csdci demo` does):
    /// run REV --fix-runs times with the same test and say what no failure
    /// proves at the regression's failure rate; kept with the bisection
    /// (its dashboard page shows it).
    #[arg(long, value_name = "REV")]
    pub validate_fix: Option<String>,

    /// Runs of the --validate-fix commit.
    #[arg(long, value_name = "K", default_value_t = 5, requires = "validate_fix",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub fix_runs: u32,

    /// How the QEMU pipeline tests a commit (when --run is not given).
    #[command(flatten)]
    pub pipeline: super::run::RunArgs,

    /// Where the QEMU pipeline's commits are tested: here, or on a LAVA lab.
    #[command(flatten)]
    pub lab: super::run::LabArgs,

    /// Continue bisection ID where it stopped (after a crash, kill or infra
    /// error), testing as it was started; only --confidence and --max-runs
    /// may be changed.
    #[arg(long, value_name = "ID", conflicts_with_all = [
        "revs", "good", "run", "timeout", "max_guests", "deterministic", "predicate", "verify_bad",
        "policy", "max_exposure",
        "first_parent", "no_revert_check", "tree", "RunArgs", "LabArgs",
    ])]
    pub resume: Option<i64>,
}

/// What a `--run` timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnTimeoutArg {
    /// The commit cannot be tested (like exit 125).
    Skip,
    /// Stop the bisection (`--resume` continues it).
    Abort,
}

/// `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// Each run passes or fails (a per-run failure probability).
    Runs,
    /// Failure-time evidence (rate per second of workload).
    Timed,
}

impl From<PolicyArg> for bisect::Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Runs => bisect::Policy::Runs,
            PolicyArg::Timed => bisect::Policy::Timed,
        }
    }
}

/// `csdci bisect log|list`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Show the journal of a bisection: every build, run and posterior.
    Log {
        /// Bisection id.
        id: i64,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List bisections, newest first.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Appends one formatted line to a string.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(s: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn usage(msg: impl Into<String>) -> crate::Error {
    crate::Error::Usage(msg.into())
}

/// How commits are tested, from the arguments of a new bisection.
fn tester_spec(args: &Args) -> crate::Result<TesterSpec> {
    match &args.run {
        Some(cmd) if cmd.trim().is_empty() => Err(usage("csdci bisect: --run needs a command")),
        Some(_) if args.lab.lab != super::run::LabKind::Local => Err(usage(
            "csdci bisect: --run tests commits with your command on this host; it cannot be combined with --lab lava",
        )),
        Some(cmd) => {
            let cwd = std::env::current_dir().map_err(|e| crate::Error::io(".", e))?;
            let cmd = crate::bisect::command::resolve(cmd, &cwd, &args.tree)
                .map_err(|e| usage(format!("csdci bisect: --run: {e}")))?;
            if args.timeout == Some(0) {
                return Err(usage("csdci bisect: --timeout must be at least 1 second"));
            }
            Ok(TesterSpec::Command {
                cmd,
                timeout_s: args.timeout,
                on_timeout: match args.on_timeout {
                    OnTimeoutArg::Skip => OnTimeout::Skip,
                    OnTimeoutArg::Abort => OnTimeout::Abort,
                },
                max_guests: args.max_guests.filter(|&w| w > 1),
            })
        }
        None => {
            let tree = crate::vcs::open_tree(&args.tree)?;
            if !(tree.join("Kconfig").is_file() && tree.join("kernel").is_dir()) {
                return Err(usage(format!(
                    "csdci bisect: {} is not a Linux kernel tree (no Kconfig, kernel/); give --run CMD to bisect with your own test",
                    tree.display()
                )));
            }
            let spec = RunSpec {
                predicate: args.predicate.clone(),
                ..args.pipeline.spec()?
            }
            .absolute()?;
            match args.lab.lava()? {
                None => {
                    spec.validate()?;
                    let max_guests = args.max_guests.filter(|&w| w > 1);
                    if let Some(w) = max_guests {
                        crate::testers::local::check_memory(
                            w as usize,
                            spec.memory_mb,
                            crate::testers::local::available_memory_mb(),
                        )
                        .map_err(|e| usage(format!("csdci bisect: {e}")))?;
                    }
                    Ok(TesterSpec::Local { spec, max_guests })
                }
                Some(_) if args.max_guests.is_some() => Err(usage(
                    "csdci bisect: --max-guests runs guests on this host; with --lab lava the lab's free devices run at once (drop --max-guests)",
                )),
                Some(lab) => {
                    let spec = RunSpec {
                        root: crate::vm::RootKind::Initramfs,
                        ..spec
                    };
                    spec.validate()?;
                    Ok(TesterSpec::Lava { spec, lab })
                }
            }
        }
    }
}

/// Runs `csdci bisect`; returns the exit code.
pub fn exec(cli: &Cli, args: &Args) -> crate::Result<u8> {
    let data_dir = cli.data_dir();
    match &args.action {
        Some(Action::Log { id, json }) => {
            return log(&Store::open_read_only(&data_dir)?, *id, *json);
        }
        Some(Action::List { json }) => return list(&Store::open_read_only(&data_dir)?, *json),
        None => {}
    }
    check_budget(args.confidence, args.max_runs)?;
    let store = Store::open(&data_dir)?;
    let id = match args.resume {
        Some(id) => id,
        None => {
            let (good, bad) = match (args.revs.as_slice(), args.good.is_empty()) {
                ([g, b], _) => {
                    let mut good = vec![g.clone()];
                    good.extend(args.good.iter().cloned());
                    (good, b.clone())
                }
                ([b], false) => (args.good.clone(), b.clone()),
                _ => {
                    return Err(usage(
                        "csdci bisect: give <good> <bad> (or --good REV ... <bad>), or --resume ID",
                    ));
                }
            };
            if args.deterministic && args.verify_bad.is_some_and(|n| n > 0) {
                return Err(usage(
                    "csdci bisect: --deterministic runs each commit once; it cannot verify the bad revision with --verify-bad runs",
                ));
            }
            bisect::Predicate::parse(&args.predicate)
                .map_err(|e| usage(format!("csdci bisect: {e}")))?;
            let req = Request {
                tree: args.tree.clone(),
                good,
                bad,
                first_parent: args.first_parent,
                tester: tester_spec(args)?,
                confidence: args.confidence,
                max_runs: args.max_runs,
                verify_bad: args.verify_bad,
                deterministic: args.deterministic,
                revert_check: !args.no_revert_check,
                predicate: args.predicate.clone(),
                policy: args.policy.unwrap_or(PolicyArg::Runs).into(),
                max_exposure_s: args.max_exposure.map(f64::from),
            };
            if req.policy == bisect::Policy::Runs && args.max_exposure.is_some() {
                return Err(usage(
                    "csdci bisect: --max-exposure sets the longest run of --policy timed; add --policy timed or drop it",
                ));
            }
            if args.deterministic && req.policy == bisect::Policy::Timed {
                return Err(usage(
                    "csdci bisect: --deterministic runs each commit once; it cannot be combined with --policy timed",
                ));
            }
            let id = service::start(&store, &req)?;
            eprintln!(
                "csdci bisect: bisection #{id} (continue after an interruption with 'csdci bisect --resume {id}')"
            );
            id
        }
    };
    // Under the bisection's lock: a new budget for a resumed bisection.
    let mut before = |store: &Store| -> crate::Result<()> {
        if args.resume.is_none() || (args.confidence.is_none() && args.max_runs.is_none()) {
            return Ok(());
        }
        let s = service::change_budget(store, id, args.confidence, args.max_runs)?;
        eprintln!(
            "csdci bisect: bisection #{id} goes on with confidence {} and {}",
            s.engine.confidence,
            s.engine
                .max_runs
                .map_or("no run budget".to_string(), |m| format!(
                    "a budget of {m} runs in all"
                ))
        );
        Ok(())
    };
    let draw = Draw::new(format!("csdci bisect #{id}: "), Out::Stderr);
    let r = service::drive(&store, id, &mut before, &draw.sink());
    draw.finish();
    let r = r?;
    let fix = match &args.validate_fix {
        Some(rev) => {
            let draw = Draw::new(format!("csdci bisect #{id} fix: "), Out::Stderr);
            let v = crate::service::fix::validate_bisection(
                &store,
                id,
                rev,
                args.fix_runs,
                &draw.sink(),
                &mut |line: &str| draw.line(line),
            );
            draw.finish();
            Some(v?)
        }
        None => None,
    };
    if args.json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        if let (Some(f), Some(o)) = (&fix, v.as_object_mut()) {
            o.insert(
                "fix_validation".into(),
                serde_json::to_value(f).unwrap_or_default(),
            );
        }
        emit(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
    } else {
        emit(&report::render(&r));
        if let Some(f) = &fix {
            emit(&format!(
                "Fix validation ({}): {} failures in {} runs => per-run failure rate < {:.2} at 95%; \
                 the regression failed {:.0}% of runs, so an unfixed kernel would pass all {} with probability {:.1e}: {}\n",
                crate::events::short(&f.commit),
                f.fails,
                f.runs,
                f.failure_rate_upper_95,
                f.regression_failure_rate * 100.0,
                f.runs,
                f.p_pass_if_unfixed,
                if f.passed { "FIXED" } else { "NOT FIXED" }
            ));
        }
    }
    if fix.as_ref().is_some_and(|f| !f.passed) {
        return Ok(super::EXIT_FAILED);
    }
    Ok(exit_code(&r))
}

/// The exit code of a finished bisection: 0 culprit, 4 the merge base is bad
/// (the regression is older than GOOD), 1 anything else (doubtful, not
/// isolated, not reproduced, inconclusive).
pub fn exit_code(r: &bisect::Report) -> u8 {
    match r.status.as_str() {
        "culprit" => super::EXIT_CLEAN,
        "merge_base_bad" => super::EXIT_MERGE_BASE_BAD,
        _ => super::EXIT_FAILED,
    }
}

/// `--confidence` and `--max-runs`, checked (`csdci bisect` and `csdci demo`).
pub fn check_budget(confidence: Option<f64>, max_runs: Option<u32>) -> crate::Result<()> {
    if let Some(c) = confidence
        && !(c > 0.5 && c < 1.0)
    {
        return Err(usage(format!(
            "csdci bisect: --confidence must be between 0.5 and 1 (exclusive), got {c}"
        )));
    }
    if max_runs == Some(0) {
        return Err(usage("csdci bisect: --max-runs must be at least 1"));
    }
    Ok(())
}

fn log(store: &Store, id: i64, json: bool) -> crate::Result<u8> {
    let mut out = String::new();
    let b = store.bisect_get(id)?.ok_or(bisect::Error::NotFound(id))?;
    let steps = store.bisect_steps(id, false)?;
    let posteriors = store.bisect_posteriors(id)?;
    if json {
        let v = serde_json::json!({
            "bisection": b,
            "steps": steps,
            "posteriors": posteriors.iter().map(|(s, p)| serde_json::json!({"step": s, "posterior": p})).collect::<Vec<_>>(),
            "report": b.result.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
        });
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        emit(&out);
        return Ok(0);
    }
    outln!(
        out,
        "bisection #{} [{}] in {}: good {} bad {} predicate {}{}",
        b.id,
        b.status,
        b.repo,
        b.good
            .iter()
            .map(|g| short(g))
            .collect::<Vec<_>>()
            .join(" "),
        short(&b.bad),
        b.predicate,
        if b.first_parent {
            " --first-parent"
        } else {
            ""
        }
    );
    outln!(out, "tester: {}", b.tester);
    let post: std::collections::HashMap<i64, _> = posteriors.into_iter().collect();
    for s in &steps {
        let mut line = format!("#{:<5} {:<12} {} ", s.id, s.kind, short(&s.commit));
        if let Some(a) = s.attempt {
            line += &format!("attempt {a} ");
        }
        line += &match (s.status.as_str(), s.outcome.as_deref()) {
            ("done", Some(o)) => o.to_uppercase(),
            (st, _) => st.to_string(),
        };
        if let Some(x) = &s.same_as {
            line += &format!(" (same kernel as {})", short(x));
        }
        if let Some(r) = &s.reason {
            line += &format!(" ({r})");
        }
        if !s.titles.is_empty() {
            line += &format!(" [{}]", s.titles.join("; "));
        }
        outln!(out, "{line}");
        if let Some(p) = post.get(&s.id) {
            let top: Vec<(String, f64)> = serde_json::from_str(&p.top).unwrap_or_default();
            let shown: Vec<String> = top
                .iter()
                .take(3)
                .map(|(c, x)| format!("{} {:.1}%", short(c), x * 100.0))
                .collect();
            outln!(
                out,
                "        posterior: {}  (p≈{:.2}, false≈{:.3})",
                shown.join(", "),
                p.fail_rate,
                p.false_fail
            );
        }
    }
    if let Some(e) = &b.error {
        outln!(out, "stopped: {e}");
    }
    if let Some(r) = b
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<report::Report>(r).ok())
    {
        out.push('\n');
        out.push_str(&report::render(&r));
    }
    emit(&out);
    Ok(0)
}

fn list(store: &Store, json: bool) -> crate::Result<u8> {
    let mut out = String::new();
    let all = store.bisect_list()?;
    if json {
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        );
        emit(&out);
        return Ok(0);
    }
    outln!(
        out,
        "{:>4}  {:<8} {:<25} {:<40} repo",
        "id",
        "status",
        "updated",
        "result"
    );
    for b in all {
        let result = b
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .map(|v| {
                // A doubtful culprit is listed as doubtful, never as "culprit".
                let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("?");
                match v
                    .get("culprit")
                    .and_then(|c| c.get("sha"))
                    .and_then(|s| s.as_str())
                {
                    Some(s) => format!(
                        "{status} {} ({:.1}%)",
                        short(s),
                        v.get("confidence").and_then(|c| c.as_f64()).unwrap_or(0.0) * 100.0
                    ),
                    None => status.to_string(),
                }
            })
            .or(b.error.clone())
            .unwrap_or_default();
        let result: String = result.chars().take(40).collect();
        outln!(
            out,
            "{:>4}  {:<8} {:<25} {:<40} {}",
            b.id,
            b.status,
            &b.updated_at[..b.updated_at.len().min(25)],
            result,
            b.repo
        );
    }
    emit(&out);
    Ok(0)
}

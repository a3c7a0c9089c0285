//! `csdci sweep`: find the setting that reproduces a failure fastest.

use std::path::PathBuf;

use super::Cli;
use crate::image::Load;
use crate::spec::RunSpec;
use crate::sweep::{self, Axes, Plan, Policy, Threads};
use crate::{Error, Result};

/// Arguments of `csdci sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kernel git tree (default with --demo: the demo's).
    #[arg(long, value_name = "PATH")]
    pub tree: Option<PathBuf>,
    /// The failing commit (any git revision).
    #[arg(long, value_name = "REV")]
    pub commit: Option<String>,
    /// Sweep the demo's bad commit (`csdci demo --prepare-only` first when
    /// the demo history is not there yet).
    #[arg(long, conflicts_with = "commit")]
    pub demo: bool,
    /// Guest vCPU counts to try (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,4,8,16",
        value_name = "LIST"
    )]
    pub vcpus: Vec<u32>,
    /// scftorture nthreads to try: vcpus (one per vCPU), Nx (N per vCPU) or a count.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "vcpus,4x",
        value_name = "LIST"
    )]
    pub nthreads: Vec<Threads>,
    /// scftorture weights to try (repeatable; one value each, e.g.
    /// 'weight_single=1 weight_single_wait=1'; default: scftorture's own).
    #[arg(long = "weights", value_name = "PARAMS")]
    pub weights: Vec<String>,
    /// CPU hotplug through scftorture's onoff_* to try: off, on or off,on.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "off,on",
        value_name = "LIST"
    )]
    pub hotplug: Vec<OnOff>,
    /// Background loads to try (none, tlb, tlb:N; comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,tlb",
        value_name = "LIST"
    )]
    pub load: Vec<String>,
    /// Seconds of workload per run to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "60", value_name = "LIST")]
    pub duration: Vec<u64>,
    /// Wall-clock time the sweep may spend (e.g. 90m, 2h, 600s).
    #[arg(long, default_value = "60m", value_name = "TIME")]
    pub budget: String,
    /// Runs per setting at most.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_runs: usize,
    /// Failures the last setting standing needs before the sweep stops early.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub min_failures: u64,
    /// Runs a setting gets before it may be dropped as clearly worse.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub min_runs: usize,
    /// Which failures count: any, csd or title:REGEX.
    #[arg(long, default_value = "any", value_name = "PREDICATE")]
    pub predicate: String,
    /// Guest RAM (e.g. 2G, 512M).
    #[arg(long, default_value = "2G", value_name = "SIZE")]
    pub memory: String,
    /// Accelerator: auto (probe KVM once, else TCG), kvm or tcg.
    #[arg(long, default_value = "auto", value_name = "ACCEL")]
    pub accel: String,
    /// scftorture parameters every setting gets (before its own).
    #[arg(long, default_value = "", value_name = "PARAMS")]
    pub scftorture: String,
    /// Extra kernel config fragment, applied after csdci's own (repeatable).
    #[arg(long = "config-fragment", value_name = "FILE")]
    pub config_fragment: Vec<PathBuf>,
    /// Stop a guest this many seconds after its first crash finding (the
    /// sweep needs only the time of the first one).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub stop_after_crash: u64,
    /// Where sweep.json and sweep.svg go (default: <data-dir>/sweeps/<commit>-<time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `off` or `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    /// Without.
    Off,
    /// With.
    On,
}

impl Args {
    fn base(&self) -> Result<RunSpec> {
        let usage = |flag: &str, e: String| Error::Usage(format!("{flag}: {e}"));
        crate::bisect::predicate::Predicate::parse(&self.predicate).map_err(Error::Usage)?;
        RunSpec {
            memory_mb: crate::spec::parse_memory(&self.memory).map_err(|e| usage("--memory", e))?,
            accel: self.accel.parse().map_err(|e| usage("--accel", e))?,
            scftorture: self.scftorture.clone(),
            config_fragments: self.config_fragment.clone(),
            predicate: self.predicate.clone(),
            stop_after_crash_s: Some(self.stop_after_crash),
            ..RunSpec::default()
        }
        .absolute()
    }

    fn axes(&self) -> Result<Axes> {
        let load = self
            .load
            .iter()
            .map(|l| {
                l.parse::<Load>()
                    .map_err(|e| Error::Usage(format!("--load: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut hotplug: Vec<bool> = self.hotplug.iter().map(|h| *h == OnOff::On).collect();
        hotplug.dedup();
        let weights = if self.weights.is_empty() {
            vec![String::new()]
        } else {
            self.weights.clone()
        };
        Ok(Axes {
            vcpus: self.vcpus.clone(),
            threads: self.nthreads.clone(),
            weights,
            hotplug,
            load,
            duration_s: self.duration.clone(),
        })
    }
}

/// Runs `csdci sweep`; returns the exit code: 0 a setting reproduced the
/// failure (the recommendation), 2 none did within the budget.
pub fn exec(cli: &Cli, args: &Args) -> Result<u8> {
    let data_dir = cli.data_dir();
    let budget =
        crate::jobs::parse_keep(&args.budget).map_err(|e| Error::Usage(format!("--budget {e}")))?;
    if args.max_runs == 0 || args.min_failures == 0 {
        return Err(Error::Usage(
            "--max-runs and --min-failures must be at least 1".into(),
        ));
    }
    let (arms, skipped) = sweep::grid::arms(&args.base()?, &args.axes()?);
    if arms.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("  {}: {}", s.label, s.reason))
            .collect();
        return Err(Error::Usage(format!(
            "no setting of the grid can run:\n{}",
            why.join("\n")
        )));
    }
    let (tree, rev) = if args.demo {
        let dir = args
            .tree
            .clone()
            .unwrap_or_else(|| data_dir.join("demo").join("linux"));
        let h = crate::demo::prepare(
            &dir,
            std::path::Path::new(crate::demo::import::TARBALL),
            60,
            1,
        )?;
        (dir, h.bad)
    } else {
        match (&args.tree, &args.commit) {
            (Some(t), Some(c)) => (t.clone(), c.clone()),
            _ => {
                return Err(Error::Usage(
                    "give --tree PATH --commit REV (a failing commit), or --demo".into(),
                ));
            }
        }
    };
    let commit = crate::vcs::resolve(&crate::vcs::open_tree(&tree)?, &rev)?;
    let plan = Plan {
        commit: commit.clone(),
        arms,
        skipped,
        budget_s: budget.as_secs_f64(),
        policy: Policy {
            max_runs: args.max_runs,
            min_failures: args.min_failures,
            min_runs: args.min_runs,
            ..Policy::default()
        },
    };
    let out = args.out.clone().unwrap_or_else(|| {
        data_dir.join("sweeps").join(format!(
            "{}-{}",
            crate::events::short(&commit),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    crate::interrupt::install_interrupt_handler();
    if !args.json {
        println!(
            "sweeping {} settings on {} within {}; results in {}",
            plan.arms.len(),
            crate::events::short(&commit),
            sweep::policy::secs(plan.budget_s),
            out.display()
        );
    }
    let mut log = crate::testers::local::LogReporter;
    let quiet = args.json;
    let mut announce = |arm: &sweep::Arm, o: Option<&sweep::Observed>| {
        if quiet {
            return;
        }
        match o {
            None => println!("run  {}", arm.label),
            Some(o) => println!("     {}", describe(o)),
        }
    };
    let s = crate::service::sweep::run(&tree, &data_dir, &plan, &out, &mut log, &mut announce)?;
    if args.json {
        let json = serde_json::to_string_pretty(&s).map_err(|e| Error::Usage(e.to_string()))?;
        println!("{json}");
    } else {
        print!("{}", sweep::report::table(&s));
        println!("json  {}", out.join("sweep.json").display());
        println!("plot  {}", out.join("sweep.svg").display());
    }
    if s.stopped == "interrupted" {
        return Ok(super::EXIT_INTERRUPTED);
    }
    Ok(if s.recommended.is_some() {
        super::EXIT_CLEAN
    } else {
        super::EXIT_UNTESTABLE
    })
}

/// One run's line.
fn describe(o: &sweep::Observed) -> String {
    let wall = sweep::policy::secs(o.wall_s);
    match (&o.lost, o.failed_at_s, &o.title) {
        (Some(why), _, _) => format!("lost after {wall}: {why}"),
        (None, Some(t), title) => format!(
            "failed {t:.1} s into the workload ({wall} in all): {}",
            title.as_deref().unwrap_or("")
        ),
        (None, None, _) if o.other_failure.is_some() => format!(
            "clean for {:.1} s of workload, then a failure the predicate does not count ({wall} in all): {}",
            o.workload_s.unwrap_or(0.0),
            o.other_failure.as_deref().unwrap_or("")
        ),
        (None, None, _) => format!(
            "clean for {:.0} s of workload ({wall} in all)",
            o.workload_s.unwrap_or(0.0)
        ),
    }
}

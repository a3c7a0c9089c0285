//! `csdci run`: build, boot and torture one kernel commit.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Cli;
use crate::spec::RunSpec;
use crate::testers::local::{self as pipeline, Reporter, RunResult};
use crate::verdict::Verdict;
use crate::vm::Accel;
use crate::{Error, Result};

/// Arguments of `csdci run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kernel git tree (csdci tests in its own worktree; your checkout is untouched).
    #[arg(long, value_name = "PATH")]
    pub tree: PathBuf,
    /// The commit to test (any git revision).
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub commit: String,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub lab: LabArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How a commit is tested, as flags: shared by `csdci run`, `csdci bisect` and
/// `csdci demo`; they fill a [`RunSpec`].
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Guest vCPUs.
    #[arg(long, default_value_t = 8)]
    pub vcpus: u32,
    /// Guest RAM (e.g. 2G, 512M).
    #[arg(long, default_value = "2G", value_name = "SIZE")]
    pub memory: String,
    /// Seconds scftorture runs.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub duration: u64,
    /// scftorture module parameters (default: nthreads=<vcpus>).
    #[arg(long, value_name = "PARAMS", default_value = "")]
    pub scftorture: String,
    /// Extra kernel config fragment, applied after csdci's own (repeatable).
    #[arg(long = "config-fragment", value_name = "FILE")]
    pub config_fragment: Vec<PathBuf>,
    /// Accelerator: auto (probe KVM once, else TCG), kvm or tcg.
    #[arg(long, default_value = "auto", value_name = "ACCEL")]
    pub accel: String,
    /// Stop the guest this many seconds after the first crash finding (default:
    /// run until the kernel panics or the test ends).
    #[arg(long, value_name = "SECONDS")]
    pub stop_after_crash: Option<u64>,
    /// Guest root file system: virtiofs (a host folder) or initramfs (an
    /// archive in RAM, as a LAVA lab boots it; the same kernel boots both).
    #[arg(long, default_value = "virtiofs", value_name = "ROOT")]
    pub root: String,
    /// Background load in the guest beside scftorture: none, tlb (short-lived
    /// processes with a thread on every CPU that map, touch and unmap memory
    /// and exit: TLB shootdowns to every CPU) or tlb:N (N such processes at
    /// once). Runs at nice 19, as scftorture's invokers.
    #[arg(long, default_value = "none", value_name = "LOAD")]
    pub load: String,
}

/// Where commits are tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabKind {
    /// QEMU on this host.
    Local,
    /// A LAVA lab (--lava-url, --lava-token-file, --device-type, --lava-tag).
    Lava,
}

/// `--lab` and the LAVA lab's flags: shared by `csdci run` and `csdci bisect`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabArgs {
    /// Where commits are tested: local (QEMU on this host) or lava (a LAVA
    /// lab boots each kernel; csdci builds it and judges the console).
    #[arg(long, value_enum, default_value = "local", value_name = "LAB")]
    pub lab: LabKind,
    /// With --lab lava: the LAVA server (e.g. http://lava.example.org/).
    #[arg(long, value_name = "URL", env = "CSDCI_LAVA_URL")]
    pub lava_url: Option<String>,
    /// With --lab lava: a file holding the API token (default: the
    /// CSDCI_LAVA_TOKEN environment variable). The token is never stored.
    #[arg(long, value_name = "FILE")]
    pub lava_token_file: Option<PathBuf>,
    /// With --lab lava: the device type jobs ask for.
    #[arg(long, value_name = "TYPE", default_value = "qemu")]
    pub device_type: String,
    /// With --lab lava: a device tag the jobs need (repeatable).
    #[arg(long = "lava-tag", value_name = "TAG")]
    pub lava_tags: Vec<String>,
    /// With --lab lava: the URL under which <data-dir>/lava/artifacts is
    /// served to the lab's workers (default: file:// URLs, for a worker on
    /// this host).
    #[arg(long, value_name = "URL")]
    pub lava_artifacts_url: Option<String>,
}

impl LabArgs {
    /// The LAVA lab asked for (`None`: local).
    pub fn lava(&self) -> Result<Option<crate::testers::lava::Lab>> {
        if self.lab == LabKind::Local {
            if self.lava_token_file.is_some()
                || !self.lava_tags.is_empty()
                || self.lava_artifacts_url.is_some()
            {
                return Err(Error::Usage(
                    "--lava-token-file, --lava-tag and --lava-artifacts-url need --lab lava".into(),
                ));
            }
            return Ok(None);
        }
        let url = self.lava_url.clone().ok_or_else(|| {
            Error::Usage("--lab lava needs --lava-url URL (or CSDCI_LAVA_URL)".into())
        })?;
        crate::lava::client::base_url(&url)?;
        if let Some(a) = &self.lava_artifacts_url {
            crate::lava::client::base_url(a).map_err(|_| {
                Error::Usage(format!(
                    "--lava-artifacts-url '{a}': use an http:// or https:// URL"
                ))
            })?;
        }
        let mut lab = crate::testers::lava::Lab::new(url);
        lab.token_file = self
            .lava_token_file
            .as_deref()
            .map(crate::lava::client::absolute_token_file);
        lab.device_type = self.device_type.clone();
        lab.tags = self.lava_tags.clone();
        lab.artifacts_url = self.lava_artifacts_url.clone();
        Ok(Some(lab))
    }
}

impl RunArgs {
    /// The spec these flags ask for (checked later, in one place:
    /// [`RunSpec::validate`]).
    pub fn spec(&self) -> Result<RunSpec> {
        Ok(RunSpec {
            vcpus: self.vcpus,
            memory_mb: crate::spec::parse_memory(&self.memory)
                .map_err(|e| Error::Usage(format!("--memory: {e}")))?,
            duration_s: self.duration,
            scftorture: self.scftorture.clone(),
            config_fragments: self.config_fragment.clone(),
            accel: self
                .accel
                .parse::<Accel>()
                .map_err(|e| Error::Usage(format!("--accel: {e}")))?,
            stop_after_crash_s: self.stop_after_crash,
            root: self
                .root
                .parse()
                .map_err(|e| Error::Usage(format!("--root: {e}")))?,
            load: self
                .load
                .parse()
                .map_err(|e| Error::Usage(format!("--load: {e}")))?,
            ..RunSpec::default()
        })
    }
}

/// Progress on a terminal: one spinner line with the step and the latest
/// build or console line.
struct Spinner {
    bar: ProgressBar,
    stage: String,
}

impl Spinner {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Spinner {
            bar,
            stage: String::new(),
        }
    }
    fn detail(&self, line: &str) {
        let line: String = line.trim().chars().take(90).collect();
        self.bar.set_message(format!("{}: {line}", self.stage));
    }
}

impl Reporter for Spinner {
    fn stage(&mut self, stage: &str) {
        self.bar.println(format!("  {stage}"));
        self.stage = stage.to_string();
        self.bar.set_message(stage.to_string());
    }
    fn build_line(&mut self, line: &str) {
        self.detail(line);
    }
    fn console(&mut self, bytes: &[u8]) {
        if let Some(line) = String::from_utf8_lossy(bytes)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
        {
            self.detail(line);
        }
    }
}

/// Runs `csdci run`; returns the exit code.
pub fn exec(cli: &Cli, args: &Args) -> Result<u8> {
    let spec = args.run.spec()?;
    crate::interrupt::install_interrupt_handler();
    let mut spinner = (!args.json && std::io::stderr().is_terminal()).then(Spinner::new);
    let mut log = pipeline::LogReporter;
    let reporter: &mut dyn Reporter = match spinner.as_mut() {
        Some(s) => s,
        None => &mut log,
    };
    let result = match args.lab.lava()? {
        None => crate::service::run::test_commit(
            &args.tree,
            &cli.data_dir(),
            &args.commit,
            spec,
            reporter,
        ),
        Some(lab) => crate::service::run::test_commit_on_lava(
            &args.tree,
            &cli.data_dir(),
            &args.commit,
            spec,
            lab,
            reporter,
        ),
    };
    if let Some(s) = &spinner {
        s.bar.finish_and_clear();
    }
    let r = result?;
    if args.json {
        let json = serde_json::to_string_pretty(&r).map_err(|e| Error::Usage(e.to_string()))?;
        println!("{json}");
    } else {
        print_human(&r);
    }
    if r.interrupted {
        return Ok(super::EXIT_INTERRUPTED);
    }
    Ok(verdict_exit(&r.verdict))
}

fn print_human(r: &RunResult) {
    println!("run       #{}", r.run_id);
    println!("commit    {}", r.commit);
    let b = &r.build;
    if b.cached {
        println!("build     cached, no compile ({:.1} s)", b.seconds);
    } else if b.artifact_id.is_some() {
        println!("build     built in {:.0} s", b.seconds);
    } else {
        println!("build     no kernel ({:.0} s)", b.seconds);
    }
    if let Some(a) = &b.artifacts {
        println!("artifacts {}", a.display());
    }
    if let Some(l) = &b.log {
        println!("build log {}", l.display());
    }
    if let Some(vm) = &r.vm {
        match vm.boot_seconds {
            Some(s) => println!("boot      {s:.1} s ({})", vm.accel),
            None => println!("boot      did not reach init ({})", vm.accel),
        }
        println!("test      {:.1} s ({:?})", vm.seconds, vm.exit);
    }
    if let Some(line) = r
        .analysis
        .as_ref()
        .and_then(|a| hotplug_line(&a.scftorture))
    {
        println!("hotplug   {line}");
    }
    if let Some(c) = &r.console_log {
        println!("console   {}", c.display());
    }
    if r.interrupted {
        println!("verdict   interrupted");
        return;
    }
    match &r.verdict {
        Verdict::Clean => println!("verdict   clean"),
        Verdict::Failed { title, findings } => {
            println!("verdict   failed: {title}");
            for f in findings.iter().take(10) {
                println!("  line {:>6}  {}", f.line, f.title);
            }
        }
        Verdict::Untestable { reason } => {
            println!("verdict   untestable: {reason}");
            for e in &b.errors {
                println!("  {e}");
            }
        }
        Verdict::Infra { reason } => println!("verdict   infra: {reason}"),
    }
}

/// CPU hotplug in the run, when any was tried: the kernel's announcements
/// and scftorture's own counters (successes/attempts).
fn hotplug_line(s: &csdci_console::ScfStats) -> Option<String> {
    let tried = s
        .onoff
        .as_ref()
        .is_some_and(|o| o.online_attempts + o.offline_attempts > 0);
    if !tried && s.cpus_offlined + s.cpus_onlined == 0 {
        return None;
    }
    let mut line = format!(
        "{} CPUs went offline, {} online (console)",
        s.cpus_offlined, s.cpus_onlined
    );
    if let Some(o) = &s.onoff {
        line.push_str(&format!(
            "; scftorture: offline {}/{}, online {}/{}",
            o.offline, o.offline_attempts, o.online, o.online_attempts
        ));
    }
    Some(line)
}

/// The `csdci run` exit code for a verdict: 0 clean, 1 the kernel failed, 2 it
/// could not be tested (untestable or infrastructure).
pub fn verdict_exit(v: &Verdict) -> u8 {
    match v {
        Verdict::Clean => super::EXIT_CLEAN,
        Verdict::Failed { .. } => super::EXIT_FAILED,
        Verdict::Untestable { .. } | Verdict::Infra { .. } => super::EXIT_UNTESTABLE,
    }
}

#[cfg(test)]
mod verdict_exit_tests {
    use super::*;

    #[test]
    fn hotplug_is_reported_only_when_tried() {
        let mut s = csdci_console::ScfStats {
            onoff: Some(csdci_console::ScfOnoff::default()),
            ..Default::default()
        };
        assert_eq!(hotplug_line(&s), None);
        s.cpus_offlined = 4;
        s.cpus_onlined = 5;
        s.onoff = Some(csdci_console::ScfOnoff {
            online: 3,
            online_attempts: 3,
            offline: 4,
            offline_attempts: 5,
        });
        assert_eq!(
            hotplug_line(&s).unwrap(),
            "4 CPUs went offline, 5 online (console); scftorture: offline 4/5, online 3/3"
        );
    }

    #[test]
    fn verdicts_map_to_run_exit_codes() {
        let reason = || "r".to_string();
        assert_eq!(verdict_exit(&Verdict::Clean), 0);
        let failed = Verdict::Failed {
            title: "t".into(),
            findings: vec![],
        };
        assert_eq!(verdict_exit(&failed), 1);
        assert_eq!(verdict_exit(&Verdict::Untestable { reason: reason() }), 2);
        assert_eq!(verdict_exit(&Verdict::Infra { reason: reason() }), 2);
    }
}

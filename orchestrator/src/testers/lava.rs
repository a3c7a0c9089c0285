//! The LAVA tester: a commit's run as a job on a LAVA lab. csdci builds the
//! kernel as the local pipeline does ([`LocalTester::build`], the same cache),
//! packs the guest root into an initramfs ([`crate::image::initramfs`]; a
//! LAVA qemu device has no virtiofs), publishes kernel and initramfs where
//! the lab's workers fetch them (`file://` for a worker on this host, or
//! `<artifacts_url>/<sha>/<file>` for a web server that serves
//! `<data-dir>/lava/artifacts`), submits the job ([`crate::lava::job`]),
//! follows its log while it runs (the console goes to the same analyzer as a
//! local run's, so verdicts and titles are the same; csdci cancels the job
//! where the local pipeline would stop its guest: after a crash, a silent
//! console), and records the run in the store as a local run is recorded.
//!
//! Several runs go to the lab at once ([`Tester::run_batch`]); as many as the
//! device type has usable devices ([`Tester::workers`]). A device that fails
//! two infrastructure jobs in a row is avoided for the rest of this tester's
//! life (one bisection). While the lab is unreachable the runs wait (with
//! backoff, up to [`Lab::outage_s`]) and go on when it is back; nothing is
//! judged meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use csdci_console::Analyzer;
use serde::{Deserialize, Serialize};

use crate::build::{self, Built};
use crate::interrupt::interrupted;
use crate::lava::client::{Client, Job, Token};
use crate::lava::job::JobSpec;
use crate::lava::log::Log;
use crate::lava::states::{self, Ending, Meaning, Stop};
use crate::spec::RunSpec;
use crate::testers::local::{
    BuildInfo, LocalTester, LogReporter, Reporter, RunOptions, RunResult, Timings,
};
use crate::testers::{Prepared, RunReport, RunRequest, Tester};
use crate::verdict::{self, Verdict};
use crate::vm::{Accel, RootKind, VmExit, VmOutcome};
use crate::{Error, Result};

/// Where the lab is and what jobs ask of it: stored with a bisection (the
/// token itself never is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// The LAVA server (`http://lava.example.org/`).
    pub url: String,
    /// A file holding the API token; none: `$CSDCI_LAVA_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The device type jobs ask for.
    #[serde(default = "default_device_type")]
    pub device_type: String,
    /// Device tags jobs ask for (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// URL under which `<data-dir>/lava/artifacts` is served to the lab's
    /// workers; none: `file://` URLs (a worker on this host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_url: Option<String>,
    /// Seconds a job may wait for a device before it is canceled (an
    /// infrastructure failure).
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout_s: u64,
    /// Seconds the lab may stay unreachable while runs wait for it; past
    /// that they fail as infrastructure.
    #[serde(default = "default_outage")]
    pub outage_s: u64,
}

fn default_device_type() -> String {
    "qemu".into()
}

fn default_queue_timeout() -> u64 {
    1800
}

fn default_outage() -> u64 {
    6 * 3600
}

impl Lab {
    /// A lab at `url` with the defaults (device type `qemu`).
    pub fn new(url: impl Into<String>) -> Self {
        Lab {
            url: url.into(),
            token_file: None,
            device_type: default_device_type(),
            tags: Vec::new(),
            artifacts_url: None,
            queue_timeout_s: default_queue_timeout(),
            outage_s: default_outage(),
        }
    }
}

/// How often running jobs are polled.
const POLL: Duration = Duration::from_secs(2);
/// After a panic, how long the console is read on before the job is stopped
/// (as the local pipeline does).
const PANIC_LINGER: Duration = Duration::from_secs(3);
/// Infrastructure failures in a row after which a device is avoided.
const AVOID_AFTER: u32 = 2;
/// Times a job that landed on an avoided device is canceled and sent again.
const MAX_REROUTES: u32 = 3;

/// Device health over one tester's life (one bisection): infrastructure
/// failures in a row per device; [`AVOID_AFTER`] of them and the device is
/// avoided.
#[derive(Debug, Default)]
struct Health {
    streak: HashMap<String, u32>,
    avoided: BTreeSet<String>,
}

impl Health {
    /// Records a run on `device`; true when this made the device avoided.
    fn record(&mut self, device: &str, infra: bool) -> bool {
        let streak = self.streak.entry(device.to_string()).or_default();
        if !infra {
            *streak = 0;
            return false;
        }
        *streak += 1;
        *streak >= AVOID_AFTER && self.avoided.insert(device.to_string())
    }
}

/// One job in flight.
struct Watch {
    commit: String,
    attempt: u32,
    run_id: i64,
    run_dir: PathBuf,
    console_log: PathBuf,
    console: std::fs::File,
    lava_log: std::fs::File,
    built: Built,
    definition: String,
    job: u64,
    info: Option<Job>,
    log: Log,
    analyzer: Analyzer,
    seen_findings: usize,
    submitted: Instant,
    running_since: Option<Instant>,
    last_console: Option<Instant>,
    crashed_at: Option<Instant>,
    panicked_at: Option<Instant>,
    stop: Option<Stop>,
    finished_seen: Option<Instant>,
    reroutes: u32,
    said_testing: bool,
}

/// A prepared run: in flight, or already answered (untestable, build infra).
enum Started {
    Job(Box<Watch>),
    Done(Box<RunResult>),
}

/// The LAVA lab as a [`Tester`].
pub struct LavaTester {
    local: LocalTester,
    client: Client,
    lab: Lab,
    spec: RunSpec,
    data_dir: PathBuf,
    reporter: Box<dyn Reporter + Send>,
    health: Health,
    sums: HashMap<PathBuf, (u64, SystemTime, String)>,
}

impl LavaTester {
    /// Checks the token (a refused one is a usage error, exit 3) and that
    /// the lab has devices of the type and tags asked for; builds run as
    /// `opts` says (its root is made `initramfs`).
    pub fn new(mut opts: RunOptions, lab: Lab) -> Result<Self> {
        opts.spec.root = RootKind::Initramfs;
        let token = Token::load(lab.token_file.as_deref())?;
        let client = Client::new(&lab.url, token)?;
        let user = client.whoami()?;
        let devices = client.devices(&lab.device_type)?;
        let usable = devices
            .iter()
            .filter(|d| d.health != "Retired" && lab.tags.iter().all(|t| d.tags.contains(t)))
            .count();
        if usable == 0 {
            let known = client.device_types().unwrap_or_default().join(", ");
            return Err(crate::lava::Error::NoDevices {
                url: client.url().to_string(),
                device_type: lab.device_type.clone(),
                tags: if lab.tags.is_empty() {
                    String::new()
                } else {
                    format!(" with tags {}", lab.tags.join(", "))
                },
                known,
            }
            .into());
        }
        tracing::info!(
            "lava: {} as {user}, {usable} device(s) of type {}",
            client.url(),
            lab.device_type
        );
        let spec = opts.spec.clone();
        let data_dir = opts.data_dir.clone();
        Ok(LavaTester {
            local: LocalTester::new(opts)?,
            client,
            lab,
            spec,
            data_dir,
            reporter: Box::new(LogReporter),
            health: Health::default(),
            sums: HashMap::new(),
        })
    }

    /// Uses `reporter` for progress (default: tracing logs).
    pub fn with_reporter(mut self, reporter: Box<dyn Reporter + Send>) -> Self {
        self.reporter = reporter;
        self
    }

    /// Devices avoided after infrastructure failures.
    pub fn avoided(&self) -> &BTreeSet<String> {
        &self.health.avoided
    }

    /// Builds (or finds) and tests `commit` (a full sha) once on the lab,
    /// recording the run.
    pub fn run_full(&mut self, commit: &str, reporter: &mut dyn Reporter) -> Result<RunResult> {
        let mut out = self.run_many(&[(commit.to_string(), 0)], reporter);
        out.pop().unwrap_or(Err(Error::Interrupted))
    }

    /// Calls the lab, waiting through outages (with backoff, up to
    /// [`Lab::outage_s`]); other errors return at once.
    fn lab<T>(
        &self,
        reporter: &mut dyn Reporter,
        f: impl Fn(&Client) -> std::result::Result<T, crate::lava::Error>,
    ) -> Result<T> {
        let mut since: Option<Instant> = None;
        let mut wait = Duration::from_secs(1);
        loop {
            match f(&self.client) {
                Ok(v) => {
                    if since.is_some() {
                        reporter.stage("lava is back");
                    }
                    return Ok(v);
                }
                Err(e) if e.is_outage() => {
                    let t = *since.get_or_insert_with(|| {
                        reporter.stage(&format!("lava unreachable, waiting for it: {e}"));
                        Instant::now()
                    });
                    if t.elapsed() > Duration::from_secs(self.lab.outage_s) {
                        return Err(e.into());
                    }
                    tracing::warn!("{e}; trying again in {} s", wait.as_secs());
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        if interrupted() {
                            return Err(Error::Interrupted);
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The sha256 of a file (remembered by size and mtime).
    fn sha256(&mut self, path: &Path) -> Result<String> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime = meta.modified().map_err(|e| Error::io(path, e))?;
        if let Some((len, t, sum)) = self.sums.get(path)
            && *len == meta.len()
            && *t == mtime
        {
            return Ok(sum.clone());
        }
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
        let sum = hex::encode(sha2::Digest::finalize(h));
        self.sums
            .insert(path.to_path_buf(), (meta.len(), mtime, sum.clone()));
        Ok(sum)
    }

    /// Puts `path` under `<data-dir>/lava/artifacts/<sha>/<name>` (a hard
    /// link) and returns its URL for the lab and its sha256.
    fn publish(&mut self, path: &Path, name: &str) -> Result<(String, String)> {
        let sum = self.sha256(path)?;
        let dir = self.data_dir.join("lava/artifacts").join(&sum[..32]);
        let dest = dir.join(name);
        if !dest.is_file() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let tmp = dir.join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            if std::fs::hard_link(path, &tmp).is_err() {
                std::fs::copy(path, &tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        }
        let url = match &self.lab.artifacts_url {
            Some(prefix) => format!("{}/{}/{name}", prefix.trim_end_matches('/'), &sum[..32]),
            None => {
                let abs = std::path::absolute(&dest).map_err(|e| Error::io(&dest, e))?;
                format!("file://{}", abs.display())
            }
        };
        Ok((url, sum))
    }

    /// Builds `commit` and, when it built, records the run and submits its
    /// job.
    fn start(
        &mut self,
        commit: &str,
        attempt: u32,
        reporter: &mut dyn Reporter,
    ) -> Result<Started> {
        let built = match self.local.build(commit, reporter) {
            Ok(Ok(b)) => b,
            // Recorded as the local pipeline records it (no guest is started
            // for a commit that does not build).
            Ok(Err(_)) => {
                return Ok(Started::Done(Box::new(
                    self.local.run_full(commit, reporter)?,
                )));
            }
            Err(Error::Build(build::Error::Cancelled)) => return Err(Error::Interrupted),
            Err(Error::Build(e)) => {
                let mut n = self.local.new_run(commit);
                n.accel_requested = "lava".into();
                let id = self.local.store().insert_run(&n)?;
                let verdict = Verdict::Infra {
                    reason: format!("build: {e}"),
                };
                self.record(id, &verdict, None, None)?;
                return Ok(Started::Done(Box::new(RunResult {
                    run_id: id,
                    commit: commit.into(),
                    verdict,
                    build: BuildInfo::default(),
                    vm: None,
                    analysis: None,
                    console_log: None,
                    run_dir: None,
                    timings: Timings::default(),
                    interrupted: false,
                })));
            }
            Err(e) => return Err(e),
        };
        let info = BuildInfo::from_built(&built);
        let mut n = self.local.new_built_run(commit, &info);
        n.accel_requested = "lava".into();
        let id = self.local.store().insert_run(&n)?;
        let run_dir = self.data_dir.join("runs").join(id.to_string());
        let console_log = run_dir.join("console.log");
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, e))?;
        self.local.store().set_run_paths(
            id,
            &run_dir.display().to_string(),
            &console_log.display().to_string(),
        )?;
        let infra = |this: &mut Self, reason: String| -> Result<Started> {
            let verdict = Verdict::Infra { reason };
            this.record(id, &verdict, None, None)?;
            Ok(Started::Done(Box::new(RunResult {
                run_id: id,
                commit: commit.into(),
                verdict,
                build: info.clone(),
                vm: None,
                analysis: None,
                console_log: None,
                run_dir: Some(run_dir.clone()),
                timings: Timings::default(),
                interrupted: false,
            })))
        };
        reporter.stage("preparing guest root");
        let boot = match crate::image::initramfs::boot(&self.data_dir, &built.entry, &self.spec) {
            Ok(b) => b,
            Err(e) => return infra(self, format!("guest root: {e}")),
        };
        let (kernel_url, kernel_sha256) = self.publish(&boot.kernel, "vmlinux")?;
        let (ramdisk_url, ramdisk_sha256) = self.publish(&boot.initramfs, "initramfs.cpio.gz")?;
        let spec = &self.spec;
        let job = JobSpec {
            name: format!("csdci {} #{attempt}", &commit[..commit.len().min(12)]),
            device_type: self.lab.device_type.clone(),
            tags: self.lab.tags.clone(),
            kernel_url,
            kernel_sha256,
            ramdisk_url,
            ramdisk_sha256,
            cmdline: boot.cmdline.clone(),
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            boot_timeout_s: spec.silence_timeout_s.max(120) + 60,
            test_timeout_s: spec.duration_s + spec.grace_s,
        };
        let definition = job.definition().map_err(crate::lava::Error::from)?;
        let path = run_dir.join("lava-job.json");
        std::fs::write(&path, &definition).map_err(|e| Error::io(&path, e))?;
        reporter.stage("submitting to lava");
        let job_id = match self.lab(reporter, |c| c.submit(&definition)) {
            Ok(j) => j,
            Err(Error::Lava(e)) if !e.is_usage() => return infra(self, format!("lava: {e}")),
            Err(e) => {
                let _ = self.record(
                    id,
                    &Verdict::Infra {
                        reason: e.to_string(),
                    },
                    None,
                    None,
                );
                return Err(e);
            }
        };
        reporter.stage(&format!(
            "queued as lava job {job_id} ({})",
            self.client.job_url(job_id)
        ));
        let open = |p: &Path| std::fs::File::create(p).map_err(|e| Error::io(p, e));
        Ok(Started::Job(Box::new(Watch {
            commit: commit.to_string(),
            attempt,
            run_id: id,
            console: open(&console_log)?,
            lava_log: open(&run_dir.join("lava-log.yaml"))?,
            run_dir,
            console_log,
            built,
            definition,
            job: job_id,
            info: None,
            log: Log::new(),
            analyzer: Analyzer::new(),
            seen_findings: 0,
            submitted: Instant::now(),
            running_since: None,
            last_console: None,
            crashed_at: None,
            panicked_at: None,
            stop: None,
            finished_seen: None,
            reroutes: 0,
            said_testing: false,
        })))
    }

    /// Sends `w`'s job again (it landed on an avoided device).
    fn reroute(&mut self, w: &mut Watch, reporter: &mut dyn Reporter) -> Result<()> {
        let device = w
            .info
            .as_ref()
            .and_then(|i| i.actual_device.clone())
            .unwrap_or_default();
        let _ = self.client.cancel(w.job);
        let def = w.definition.clone();
        let job = self.lab(reporter, |c| c.submit(&def))?;
        reporter.stage(&format!(
            "lava job {} landed on avoided device {device}: canceled, sent again as job {job}",
            w.job
        ));
        w.job = job;
        w.reroutes += 1;
        w.info = None;
        w.log = Log::new();
        w.analyzer = Analyzer::new();
        w.seen_findings = 0;
        w.running_since = None;
        w.last_console = None;
        w.console =
            std::fs::File::create(&w.console_log).map_err(|e| Error::io(&w.console_log, e))?;
        Ok(())
    }

    /// One look at a job: new log lines, its state, whether csdci should
    /// stop it. True once it has finished and its log is complete.
    fn poll(&mut self, w: &mut Watch, reporter: &mut dyn Reporter) -> Result<bool> {
        let id = w.job;
        let info = self.lab(reporter, |c| c.job(id))?;
        if w.running_since.is_none() && info.state == "Running" {
            w.running_since = Some(Instant::now());
            reporter.stage(&format!(
                "booting on {} (lava job {id})",
                info.actual_device.as_deref().unwrap_or("?")
            ));
        }
        let landed = info.actual_device.clone();
        w.info = Some(info.clone());
        if let Some(d) = &landed
            && self.health.avoided.contains(d)
            && !info.finished()
            && !w.log.kernel_output()
            && w.reroutes < MAX_REROUTES
        {
            self.reroute(w, reporter)?;
            return Ok(false);
        }
        // New log lines (none yet: None).
        let pos = w.log.position();
        if let Some(text) = self.lab(reporter, |c| c.logs(id, pos))? {
            let _ = w.lava_log.write_all(text.as_bytes());
            let bytes = w.log.feed(&text);
            if !bytes.is_empty() {
                w.last_console = Some(Instant::now());
                let _ = w.console.write_all(&bytes);
                w.analyzer.feed(&bytes);
                reporter.console(&bytes);
                for f in &w.analyzer.findings()[w.seen_findings..] {
                    reporter.finding(&f.title);
                }
                w.seen_findings = w.analyzer.findings().len();
                if !w.said_testing && w.log.boot_seconds().is_some() {
                    w.said_testing = true;
                    reporter.stage("testing");
                }
            }
        }
        if info.finished() {
            // The last lines may reach the server after the state: wait for
            // the dispatcher's result line (a few polls at most).
            let since = *w.finished_seen.get_or_insert_with(Instant::now);
            return Ok(w.log.job_result().is_some() || since.elapsed() > Duration::from_secs(20));
        }
        if w.stop.is_none()
            && let Some(stop) = self.should_stop(w)
        {
            w.stop = Some(stop);
            tracing::info!("stopping lava job {id}: {stop:?}");
            let _ = self.lab(reporter, |c| c.cancel(id));
        }
        Ok(false)
    }

    /// Where the local pipeline would stop the guest.
    fn should_stop(&self, w: &mut Watch) -> Option<Stop> {
        let Some(running) = w.running_since else {
            return (w.submitted.elapsed() > Duration::from_secs(self.lab.queue_timeout_s))
                .then_some(Stop::Queue);
        };
        if let Some(linger) = self.spec.stop_after_crash_s
            && !w.analyzer.findings().is_empty()
            && w.crashed_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(linger)
        {
            return Some(Stop::Crash);
        }
        if w.analyzer.panicked()
            && w.panicked_at.get_or_insert_with(Instant::now).elapsed() > PANIC_LINGER
        {
            return Some(Stop::Crash);
        }
        if let Some(t) = w.last_console
            && t.elapsed() > Duration::from_secs(self.spec.silence_timeout_s)
        {
            return Some(Stop::Silent);
        }
        let limit =
            self.spec.duration_s + self.spec.grace_s + self.spec.silence_timeout_s.max(120) + 300;
        (running.elapsed() > Duration::from_secs(limit)).then_some(Stop::Deadline)
    }

    /// Judges a finished job and records the run.
    fn finish(&mut self, w: Box<Watch>, reporter: &mut dyn Reporter) -> Result<RunResult> {
        let w = *w;
        reporter.stage("analysing");
        let analysis = w.analyzer.finish();
        let info = w.info.clone();
        let health = info
            .as_ref()
            .map(|i| i.health.as_str())
            .unwrap_or("Unknown");
        let device = info
            .as_ref()
            .and_then(|i| i.actual_device.clone())
            .unwrap_or_else(|| "no device".into());
        let crash =
            !analysis.findings.is_empty() || analysis.verdict == csdci_console::Verdict::Crash;
        let meaning = states::meaning(&Ending {
            health,
            job: w.log.job_result(),
            kernel_output: w.log.kernel_output(),
            end_marker: w.log.end_marker_seen(),
            lava_panic: w.log.lava_panic().is_some(),
            crash_found: crash,
            stopped: w.stop,
        });
        let accel = match w.log.boot_command() {
            Some(c) if c.contains("-enable-kvm") || c.contains("accel=kvm") => Accel::Kvm,
            _ => Accel::Tcg,
        };
        let vm = VmOutcome {
            exit: match &meaning {
                Meaning::Console(e) => e.clone(),
                Meaning::Infra(r) => VmExit::QemuDied(r.clone()),
            },
            accel,
            boot_seconds: w.log.boot_seconds(),
            seconds: w.log.console_seconds().unwrap_or(0.0),
        };
        let verdict = match &meaning {
            Meaning::Console(_) => verdict::judge(&analysis, &vm, None),
            Meaning::Infra(r) => Verdict::Infra {
                reason: format!("lava job {} on {device}: {r}", w.job),
            },
        };
        // Device health: two infrastructure failures in a row, and it is
        // avoided for the rest of this bisection.
        if device != "no device"
            && self
                .health
                .record(&device, matches!(verdict, Verdict::Infra { .. }))
        {
            reporter.stage(&format!(
                "avoiding lava device {device}: {AVOID_AFTER} infrastructure failures in a row"
            ));
        }
        let meta = serde_json::json!({
            "job": w.job,
            "url": self.client.job_url(w.job),
            "device": device,
            "state": info.as_ref().map(|i| i.state.clone()),
            "health": health,
            "submit_time": info.as_ref().and_then(|i| i.submit_time.clone()),
            "start_time": info.as_ref().and_then(|i| i.start_time.clone()),
            "end_time": info.as_ref().and_then(|i| i.end_time.clone()),
            "error_type": w.log.job_result().and_then(|r| r.error_type.clone()),
            "error_msg": w.log.job_result().and_then(|r| r.error_msg.clone()),
            "stopped_by_csdci": w.stop.map(|s| format!("{s:?}")),
        });
        let p = w.run_dir.join("lava.json");
        let _ = std::fs::write(&p, serde_json::to_string_pretty(&meta).unwrap_or_default());
        let vm = (!matches!(meaning, Meaning::Infra(_))).then_some(vm);
        self.record(w.run_id, &verdict, vm.as_ref(), Some(&analysis))?;
        tracing::info!(
            "lava job {} on {device}: {} -> {}",
            w.job,
            health,
            verdict.name()
        );
        let _ = w.attempt;
        Ok(RunResult {
            run_id: w.run_id,
            commit: w.commit,
            timings: Timings {
                build: w.built.seconds,
                boot: vm.as_ref().and_then(|v| v.boot_seconds),
                test: vm.as_ref().map(|v| v.seconds),
                total: w.submitted.elapsed().as_secs_f64(),
                workload: None,
                first_finding: None,
            },
            verdict,
            build: BuildInfo::from_built(&w.built),
            vm,
            analysis: Some(analysis),
            console_log: Some(w.console_log),
            run_dir: Some(w.run_dir),
            interrupted: false,
        })
    }

    fn record(
        &self,
        id: i64,
        verdict: &Verdict,
        vm: Option<&VmOutcome>,
        analysis: Option<&csdci_console::Analysis>,
    ) -> Result<()> {
        self.local.store().finish_run(
            id,
            &crate::testers::local::finish_record(verdict, vm, analysis),
        )?;
        Ok(())
    }

    /// Runs several (commit, attempt) pairs at once on the lab: all jobs
    /// submitted, then followed together. One result per pair, in order.
    pub fn run_many(
        &mut self,
        runs: &[(String, u32)],
        reporter: &mut dyn Reporter,
    ) -> Vec<Result<RunResult>> {
        let mut out: Vec<Option<Result<RunResult>>> = runs.iter().map(|_| None).collect();
        let mut flying: Vec<(usize, Box<Watch>)> = Vec::new();
        for (i, (commit, attempt)) in runs.iter().enumerate() {
            match self.start(commit, *attempt, reporter) {
                Ok(Started::Job(w)) => flying.push((i, w)),
                Ok(Started::Done(r)) => out[i] = Some(Ok(*r)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        while !flying.is_empty() {
            if interrupted() {
                for (i, w) in flying.drain(..) {
                    let _ = self.client.cancel(w.job);
                    let _ = self
                        .local
                        .store()
                        .interrupt_run(w.run_id, "interrupted by the user");
                    out[i] = Some(Ok(RunResult {
                        run_id: w.run_id,
                        commit: w.commit.clone(),
                        verdict: Verdict::Infra {
                            reason: "interrupted".into(),
                        },
                        build: BuildInfo::from_built(&w.built),
                        vm: None,
                        analysis: None,
                        console_log: Some(w.console_log.clone()),
                        run_dir: Some(w.run_dir.clone()),
                        timings: Timings::default(),
                        interrupted: true,
                    }));
                }
                break;
            }
            let mut still = Vec::new();
            for (i, mut w) in flying.drain(..) {
                match self.poll(&mut w, reporter) {
                    Ok(false) => still.push((i, w)),
                    Ok(true) => out[i] = Some(self.finish(w, reporter)),
                    Err(e) => {
                        // Past the outage limit, or the lab refused us: the
                        // run is an infrastructure failure, never evidence.
                        let _ = self.client.cancel(w.job);
                        let _ = self.record(
                            w.run_id,
                            &Verdict::Infra {
                                reason: e.to_string(),
                            },
                            None,
                            None,
                        );
                        out[i] = Some(Err(e));
                    }
                }
            }
            flying = still;
            if !flying.is_empty() {
                std::thread::sleep(POLL);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(Error::Interrupted)))
            .collect()
    }

    fn reports(&mut self, runs: &[(String, u32)]) -> Vec<Result<RunReport>> {
        let mut reporter = std::mem::replace(&mut self.reporter, Box::new(LogReporter));
        let out = self.run_many(runs, reporter.as_mut());
        self.reporter = reporter;
        out.into_iter()
            .map(|r| r.and_then(RunResult::report))
            .collect()
    }
}

impl Tester for LavaTester {
    fn prepare(&mut self, commit: &str) -> Result<Prepared> {
        self.local.prepare(commit)
    }

    fn run_once(&mut self, commit: &str, attempt: u32) -> Result<RunReport> {
        self.reports(&[(commit.to_string(), attempt)])
            .pop()
            .unwrap_or(Err(Error::Interrupted))
    }

    fn workers(&self) -> usize {
        let devices = match self.client.devices(&self.lab.device_type) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("lava: cannot count devices: {e}");
                return 1;
            }
        };
        let online: Option<BTreeSet<String>> = self.client.workers().ok().map(|ws| {
            ws.into_iter()
                .filter(|w| w.state == "Online")
                .map(|w| w.hostname)
                .collect()
        });
        let n = devices
            .iter()
            .filter(|d| d.schedulable())
            .filter(|d| self.lab.tags.iter().all(|t| d.tags.contains(t)))
            .filter(|d| !self.health.avoided.contains(&d.hostname))
            .filter(|d| match (&online, &d.worker_host) {
                (Some(on), Some(w)) => on.contains(w),
                _ => true,
            })
            .count();
        n.max(1)
    }

    fn run_batch(&mut self, runs: &[RunRequest]) -> Vec<Result<RunReport>> {
        let pairs: Vec<(String, u32)> =
            runs.iter().map(|r| (r.commit.clone(), r.attempt)).collect();
        self.reports(&pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_avoided_after_two_infrastructure_failures_in_a_row() {
        let mut h = Health::default();
        assert!(!h.record("qemu01", true));
        assert!(!h.record("qemu01", false)); // a judged run ends the streak
        assert!(!h.record("qemu01", true));
        assert!(!h.record("qemu02", true)); // streaks are per device
        assert!(h.record("qemu01", true));
        assert!(!h.record("qemu01", true)); // said once
        assert_eq!(h.avoided.iter().collect::<Vec<_>>(), ["qemu01"]);
    }

    #[test]
    fn a_stored_lab_reads_back_with_its_defaults() {
        let lab: Lab = serde_json::from_str(r#"{"url":"http://lava/"}"#).unwrap();
        assert_eq!(lab, Lab::new("http://lava/"));
        assert_eq!(lab.device_type, "qemu");
        let json = serde_json::to_string(&lab).unwrap();
        assert!(
            !json.contains("token_file") && !json.contains("tags"),
            "{json}"
        );
        assert!(serde_json::from_str::<Lab>(r#"{"url":"x","token":"secret"}"#).is_err());
    }
}

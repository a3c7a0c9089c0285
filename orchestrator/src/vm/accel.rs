//! Choosing the accelerator. `Auto` probes KVM once per host (kernel build and
//! QEMU version) with a real tiny boot and caches the answer in
//! `<data_dir>/accel-probe.json`: `/dev/kvm` existing is not enough, because
//! nested KVM can be broken (`-cpu host` aborting on an MSR, guests crawling).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::process::OwnedChild;
use super::qemu::{self, Engine};
use super::{Accel, Error};

/// CPU models tried for KVM, best first.
const KVM_CPUS: &[&str] = &["host", "host,-arch-capabilities"];

/// A probe boot that has not reached the root mount after this long counts as
/// crawling (a healthy KVM boot gets there in about a second).
const PROBE_LIMIT: Duration = Duration::from_secs(25);

/// Kernel messages that show the probe boot got through to mounting root.
const BOOT_DONE: &[&str] = &[
    "Kernel panic",
    "VFS: Cannot open root device",
    "Run /sbin/init",
    "No working init found",
    "Freeing unused kernel",
];

/// Messages on QEMU's stderr that show KVM does not work.
const KVM_BROKEN: &[&str] = &[
    "KVM internal error",
    "kvm run failed",
    "Assertion",
    "error:",
    "failed to",
];

/// The cached probe result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeRecord {
    /// Host kernel release + build and QEMU version the probe ran under.
    pub key: String,
    /// The `-cpu` model KVM worked with, or `None` when KVM is unusable.
    pub kvm_cpu: Option<String>,
    /// Why KVM was rejected (or "ok").
    pub detail: String,
}

/// The cache key: host kernel and QEMU version.
pub fn host_key() -> String {
    let rd = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let qemu = Command::new(qemu::binary())
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "{} {} | {}",
        rd("/proc/sys/kernel/osrelease").trim(),
        rd("/proc/sys/kernel/version").trim(),
        qemu.trim()
    )
}

/// Resolves `requested` to the engine to run with (probing KVM when `Auto` and
/// nothing is cached for this host), and the [`Accel`] that is.
pub fn resolve(requested: Accel, kernel: &Path, data_dir: &Path) -> Result<(Engine, Accel), Error> {
    match requested {
        Accel::Tcg => Ok((Engine::Tcg, Accel::Tcg)),
        Accel::Kvm => {
            let cpu = cached(data_dir)
                .and_then(|r| r.kvm_cpu)
                .unwrap_or_else(|| "host".into());
            Ok((Engine::Kvm { cpu }, Accel::Kvm))
        }
        Accel::Auto => {
            let rec = match cached(data_dir) {
                Some(r) => r,
                None => {
                    let r = probe(kernel, data_dir)?;
                    let path = data_dir.join("accel-probe.json");
                    let json = serde_json::to_string_pretty(&r).unwrap_or_default();
                    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
                    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
                    r
                }
            };
            Ok(match rec.kvm_cpu {
                Some(cpu) => (Engine::Kvm { cpu }, Accel::Kvm),
                None => (Engine::Tcg, Accel::Tcg),
            })
        }
    }
}

/// The cached probe result for this host, if any.
pub fn cached(data_dir: &Path) -> Option<ProbeRecord> {
    let s = std::fs::read_to_string(data_dir.join("accel-probe.json")).ok()?;
    let r: ProbeRecord = serde_json::from_str(&s).ok()?;
    (r.key == host_key()).then_some(r)
}

/// Probes KVM now: boots `kernel` (no root file system) with every CPU model
/// at once and keeps the best one that reaches the root mount in time.
pub fn probe(kernel: &Path, data_dir: &Path) -> Result<ProbeRecord, Error> {
    let key = host_key();
    let kvm_ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_ok {
        return Ok(ProbeRecord {
            key,
            kvm_cpu: None,
            detail: "/dev/kvm cannot be opened".into(),
        });
    }
    let t = Instant::now();
    let mut boots = KVM_CPUS
        .iter()
        .map(|cpu| ProbeBoot::start(kernel, cpu, data_dir))
        .collect::<Result<Vec<_>, _>>()?;
    // Stop each boot as soon as it has a verdict: QEMU pauses (it does not
    // exit) on a KVM internal error.
    let end = t + PROBE_LIMIT;
    while Instant::now() < end && boots.iter_mut().any(|b| !b.decided()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut reasons = Vec::new();
    for b in &mut boots {
        match b.finish() {
            Ok(()) => {
                tracing::info!(
                    cpu = b.cpu,
                    secs = t.elapsed().as_secs_f64(),
                    "kvm probe: ok"
                );
                return Ok(ProbeRecord {
                    key,
                    kvm_cpu: Some(b.cpu.to_string()),
                    detail: "ok".into(),
                });
            }
            Err(why) => {
                tracing::info!(cpu = b.cpu, why, "kvm probe: rejected");
                reasons.push(format!("-cpu {}: {why}", b.cpu));
            }
        }
    }
    Ok(ProbeRecord {
        key,
        kvm_cpu: None,
        detail: reasons.join("; "),
    })
}

/// One probe boot in progress.
struct ProbeBoot {
    cpu: &'static str,
    child: OwnedChild,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    exited: bool,
}

impl ProbeBoot {
    fn start(kernel: &Path, cpu: &'static str, data_dir: &Path) -> Result<Self, Error> {
        let engine = Engine::Kvm { cpu: cpu.into() };
        let bin = qemu::binary();
        let mut cmd = Command::new(&bin);
        cmd.args(qemu::probe_argv(kernel, &engine))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let procs = super::process::procs_dir(data_dir);
        let mut child =
            OwnedChild::spawn(cmd, "qemu (kvm probe)", &procs).map_err(|e| Error::Spawn {
                program: bin.display().to_string(),
                source: e,
            })?;
        let out = collect(
            child
                .take_stdout()
                .map(|o| Box::new(o) as Box<dyn Read + Send>),
        );
        let err = collect(
            child
                .take_stderr()
                .map(|e| Box::new(e) as Box<dyn Read + Send>),
        );
        Ok(ProbeBoot {
            cpu,
            child,
            out,
            err,
            exited: false,
        })
    }

    fn texts(&self) -> (String, String) {
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
        };
        (text(&self.out), text(&self.err))
    }

    /// True once the boot has exited, reached the root mount, or failed.
    fn decided(&mut self) -> bool {
        if self.exited || matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
            self.exited = true;
            return true;
        }
        let (console, stderr) = self.texts();
        judge(true, &console, &stderr).is_ok() || KVM_BROKEN.iter().any(|b| stderr.contains(b))
    }

    /// Kills the boot and judges it.
    fn finish(&mut self) -> Result<(), String> {
        let in_time = self.decided();
        self.child.kill();
        // Give the reader threads a moment to see EOF after the kill.
        std::thread::sleep(Duration::from_millis(100));
        let (console, stderr) = self.texts();
        judge(in_time, &console, &stderr)
    }
}

/// Reads `r` to its end in a thread, into a shared buffer.
fn collect(r: Option<Box<dyn Read + Send>>) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let Some(mut r) = r else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = b.lock() {
                v.extend_from_slice(&chunk[..n]);
            }
        }
    });
    buf
}

/// Decides from a probe boot's output whether the accelerator works.
fn judge(exited_in_time: bool, console: &str, stderr: &str) -> Result<(), String> {
    if let Some(line) = stderr
        .lines()
        .find(|l| KVM_BROKEN.iter().any(|b| l.contains(b)))
    {
        return Err(line.trim().to_string());
    }
    if !console.contains("Linux version") {
        return Err(if exited_in_time {
            "qemu exited before the kernel printed anything".into()
        } else {
            format!("no kernel output within {} s", PROBE_LIMIT.as_secs())
        });
    }
    if !BOOT_DONE.iter().any(|m| console.contains(m)) {
        return Err(format!(
            "kernel did not reach the root mount within {} s (crawling)",
            PROBE_LIMIT.as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_accepts_a_boot_that_reaches_root_mount() {
        let c =
            "Linux version 6.12\n...\nKernel panic - not syncing: VFS: Unable to mount root fs\n";
        assert_eq!(judge(true, c, ""), Ok(()));
    }

    #[test]
    fn judge_rejects_kvm_errors_and_crawls() {
        let e = judge(
            true,
            "",
            "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0\nAssertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
        )
        .unwrap_err();
        assert!(e.contains("MSR 0x10a"), "{e}");
        let e = judge(false, "Linux version 6.12\nsmpboot: CPU0", "").unwrap_err();
        assert!(e.contains("crawling"), "{e}");
        let e = judge(true, "", "").unwrap_err();
        assert!(e.contains("before the kernel printed"), "{e}");
    }

    #[test]
    fn explicit_choices_do_not_probe() {
        let d = tempfile::tempdir().unwrap();
        let (e, a) = resolve(Accel::Tcg, Path::new("/nonexistent"), d.path()).unwrap();
        assert_eq!((e, a), (Engine::Tcg, Accel::Tcg));
        let (e, a) = resolve(Accel::Kvm, Path::new("/nonexistent"), d.path()).unwrap();
        assert_eq!(a, Accel::Kvm);
        assert_eq!(e, Engine::Kvm { cpu: "host".into() });
    }

    #[test]
    fn a_cached_answer_for_this_host_is_reused() {
        let d = tempfile::tempdir().unwrap();
        let rec = ProbeRecord {
            key: host_key(),
            kvm_cpu: None,
            detail: "test".into(),
        };
        std::fs::write(
            d.path().join("accel-probe.json"),
            serde_json::to_string(&rec).unwrap(),
        )
        .unwrap();
        // The kernel does not exist: a probe would fail to boot it, and a cached
        // "no KVM" must give TCG without probing.
        let (e, a) = resolve(Accel::Auto, Path::new("/nonexistent"), d.path()).unwrap();
        assert_eq!((e, a), (Engine::Tcg, Accel::Tcg));
    }
}

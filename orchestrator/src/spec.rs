//! [`RunSpec`]: how a commit is tested (guest size, workload, kernel config,
//! accelerator, timeouts, which failures count). One serde type read by clap
//! (`csdci run`, `csdci bisect`, `csdci demo`), by `jobs/*.yaml`, stored with
//! every bisection, and validated in one place, [`RunSpec::validate`], with one
//! message per rule.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::image::{GuestParams, Load};
use crate::kconfig::{self, Fragment};
use crate::vm::{Accel, RootKind};

/// How a commit is tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Guest vCPUs.
    pub vcpus: u32,
    /// Guest RAM in MiB; also read from sizes such as `"2G"` or `"512M"`.
    #[serde(alias = "memory", deserialize_with = "memory_mb")]
    pub memory_mb: u64,
    /// Seconds scftorture runs.
    #[serde(alias = "duration")]
    pub duration_s: u64,
    /// scftorture module parameters (empty: `nthreads=<vcpus>`).
    pub scftorture: String,
    /// Extra kernel config fragments, applied after csdci's own.
    #[serde(alias = "config_fragment")]
    pub config_fragments: Vec<PathBuf>,
    /// Accelerator: `auto` (probe KVM once, else TCG), `kvm` or `tcg`.
    #[serde(serialize_with = "accel_out", deserialize_with = "accel_in")]
    pub accel: Accel,
    /// Extra kernel command line options.
    pub cmdline_extra: String,
    /// Seconds without console output before the guest counts as hung.
    pub silence_timeout_s: u64,
    /// Seconds on top of the duration before the guest is stopped.
    pub grace_s: u64,
    /// Stop the guest this many seconds after the first crash finding (none:
    /// run until the kernel panics or the test ends).
    #[serde(alias = "stop_after_crash")]
    pub stop_after_crash_s: Option<u64>,
    /// Which failures count: `any` (any crash finding), `csd` (a CSD-lock
    /// finding) or `title:REGEX`.
    pub predicate: String,
    /// The guest's root file system: `virtiofs` (a host folder, the default)
    /// or `initramfs` (an archive in RAM, what a LAVA lab boots; the same
    /// kernel boots both). Left out of the stored form
    /// when `virtiofs`, so specs stored before the field read and hash the same.
    #[serde(
        skip_serializing_if = "is_virtiofs",
        serialize_with = "root_out",
        deserialize_with = "root_in"
    )]
    pub root: RootKind,
    /// Background load in the guest while scftorture runs: `none` (the
    /// default), `tlb` or `tlb:N` (N processes at once): short-lived
    /// processes with a thread pinned to each CPU that map, touch,
    /// write-protect and unmap memory for a few ms and exit, so TLB
    /// shootdowns go through `smp_call_function_many` to every CPU beside
    /// scftorture's IPIs (the seed's lockup). Runs at nice 19, as
    /// scftorture's invokers. Left out of the stored form when `none`, so
    /// specs stored before the field read and hash the same.
    #[serde(skip_serializing_if = "Load::is_none")]
    pub load: Load,
}

fn is_virtiofs(r: &RootKind) -> bool {
    *r == RootKind::Virtiofs
}

fn root_out<S: Serializer>(r: &RootKind, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(r)
}

fn root_in<'de, D: Deserializer<'de>>(d: D) -> Result<RootKind, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

impl Default for RunSpec {
    /// csdci's defaults: 8 vCPUs, 2 GiB, 60 s, `nthreads=<vcpus>`, any failure.
    fn default() -> Self {
        RunSpec {
            vcpus: 8,
            memory_mb: 2048,
            duration_s: 60,
            scftorture: String::new(),
            config_fragments: Vec::new(),
            accel: Accel::Auto,
            cmdline_extra: String::new(),
            silence_timeout_s: 90,
            grace_s: 240,
            stop_after_crash_s: None,
            predicate: "any".into(),
            root: RootKind::Virtiofs,
            load: Load::None,
        }
    }
}

/// A [`RunSpec`] rule that is broken: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The field (`vcpus`, `memory_mb`, ...); the CLI shows it as its flag.
    pub field: &'static str,
    /// What is wrong, starting with the value given.
    pub message: String,
}

impl SpecError {
    /// The command-line flag the field is set by (`--vcpus`, `--memory`).
    pub fn flag(&self) -> String {
        let f = match self.field {
            "memory_mb" => "memory",
            "duration_s" => "duration",
            "config_fragments" => "config-fragment",
            "stop_after_crash_s" => "stop-after-crash",
            f => f,
        };
        format!("--{}", f.replace('_', "-"))
    }
}

impl From<SpecError> for crate::Error {
    fn from(e: SpecError) -> Self {
        crate::Error::Usage(format!("{} {}", e.flag(), e.message))
    }
}

/// Parses a memory size: `2G`, `1.5G`, `512M`, `2048` (MiB).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let bad = || format!("bad memory size '{s}' (use e.g. 2G or 512M)");
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_uppercase() {
                'M' => 1.0,
                'G' => 1024.0,
                'T' => 1024.0 * 1024.0,
                _ => return Err(bad()),
            };
            (&t[..i], mult)
        }
        _ => (t, 1.0),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * mult).round() as u64)
}

fn memory_mb<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Mib(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Mib(n) => Ok(n),
        Size::Text(s) => parse_memory(&s).map_err(serde::de::Error::custom),
    }
}

fn accel_out<S: Serializer>(a: &Accel, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

fn accel_in<'de, D: Deserializer<'de>>(d: D) -> Result<Accel, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// This host's RAM in MiB.
fn host_memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}

impl RunSpec {
    /// The guest parameters (scftorture defaults to `nthreads=<vcpus>`).
    /// `weight_resched=0` is added unless given: csdci loads scftorture as a
    /// module, where the resched primitive is ignored anyway, and the default
    /// weight makes scftorture print a "!!! built as module, weight_resched
    /// ignored" error string; with 0 the test mix is the same without it.
    pub fn guest_params(&self) -> GuestParams {
        let mut scftorture = if self.scftorture.trim().is_empty() {
            format!("nthreads={}", self.vcpus)
        } else {
            self.scftorture
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !scftorture
            .split_whitespace()
            .any(|w| w.starts_with("weight_resched="))
        {
            scftorture.push_str(" weight_resched=0");
        }
        GuestParams {
            scftorture,
            duration_s: self.duration_s,
            load: self.load,
        }
    }

    /// The user's config fragments, read.
    pub fn fragments(&self) -> crate::Result<Vec<Fragment>> {
        self.config_fragments
            .iter()
            .map(|f| Fragment::load(f).map_err(Into::into))
            .collect()
    }

    /// Checks every rule and returns the user's fragments, read: the one
    /// place a spec is validated (each broken rule is one message).
    pub fn validate(&self) -> crate::Result<Vec<Fragment>> {
        let err = |field, message: String| -> crate::Result<Vec<Fragment>> {
            Err(SpecError { field, message }.into())
        };
        if self.vcpus == 0 {
            return err("vcpus", "0: must be at least 1".into());
        }
        // QEMU is asked only when the count could be over its limit: every
        // QEMU csdci supports takes 255 vCPUs on q35.
        if self.vcpus > 255 {
            let max = crate::vm::limits::max_vcpus(crate::vm::limits::MACHINE);
            if self.vcpus > max {
                return err(
                    "vcpus",
                    format!(
                        "{}: QEMU's {} machine supports at most {max} vCPUs",
                        self.vcpus,
                        crate::vm::limits::MACHINE
                    ),
                );
            }
        }
        let fragments = self.fragments()?;
        let mut nr_cpus = None;
        // The last lines setting CPU hotplug and SMP (which it depends on).
        let (mut hotplug_cpu, mut smp) = (None, None);
        for f in Fragment::defaults().iter().chain(&fragments) {
            for s in f.settings()? {
                if s.name == "NR_CPUS"
                    && let kconfig::Value::Num(n) = &s.value
                {
                    nr_cpus = n.parse::<u32>().ok().map(|n| (n, s.source.clone()));
                }
                match s.name.as_str() {
                    "HOTPLUG_CPU" => hotplug_cpu = Some(s.clone()),
                    "SMP" => smp = Some(s.clone()),
                    _ => {}
                }
            }
        }
        if let Some((n, src)) = nr_cpus
            && self.vcpus > n
        {
            return err(
                "vcpus",
                format!(
                    "{}: the guest kernel is configured for at most {n} CPUs (CONFIG_NR_CPUS={n} at {src}); add a fragment with a larger CONFIG_NR_CPUS",
                    self.vcpus
                ),
            );
        }
        if self.memory_mb < 128 {
            return err(
                "memory_mb",
                format!("{}M: the guest needs at least 128M", self.memory_mb),
            );
        }
        if let Some(host) = host_memory_mb()
            && self.memory_mb > host
        {
            return err(
                "memory_mb",
                format!("{}M: more than this host's {host}M of RAM", self.memory_mb),
            );
        }
        if self.duration_s == 0 {
            return err(
                "duration_s",
                "0: scftorture must run at least 1 second".into(),
            );
        }
        if self.silence_timeout_s == 0 {
            return err("silence_timeout_s", "0: must be at least 1 second".into());
        }
        if let Err(e) = self.guest_params().render() {
            return err("scftorture", format!("'{}': {e}", self.scftorture));
        }
        let param = |name: &str| {
            self.scftorture
                .split_whitespace()
                .filter_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .next_back()
        };
        let onoff_interval = param("onoff_interval");
        let hotplug = onoff_interval.is_some_and(|v| v.parse::<i64>().is_ok_and(|n| n > 0));
        if let Some(holdoff) = param("onoff_holdoff")
            && onoff_interval.is_none()
        {
            return err(
                "scftorture",
                format!(
                    "'{}': onoff_holdoff={holdoff} without onoff_interval does no CPU hotplug; add onoff_interval=N (jiffies between hotplug operations, e.g. onoff_interval=100)",
                    self.scftorture
                ),
            );
        }
        if hotplug && self.vcpus < 2 {
            return err(
                "scftorture",
                format!(
                    "'{}': CPU hotplug (onoff_interval) needs at least 2 vCPUs (the last CPU never goes offline); use --vcpus 2 or more",
                    self.scftorture
                ),
            );
        }
        let off = |s: &Option<kconfig::Setting>| {
            s.as_ref()
                .filter(|s| s.value == kconfig::Value::No)
                .map(|s| format!("{} sets CONFIG_{}=n", s.source, s.name))
        };
        if hotplug && let Some(why) = off(&smp).or_else(|| off(&hotplug_cpu)) {
            return err(
                "scftorture",
                format!(
                    "'{}': CPU hotplug (onoff_interval) needs CONFIG_HOTPLUG_CPU=y, but {why}; remove that line or drop onoff_interval",
                    self.scftorture
                ),
            );
        }
        if !self.load.is_none() && self.vcpus < 2 {
            return err(
                "load",
                format!(
                    "{}: TLB shootdowns need a second CPU to go to; use --vcpus 2 or more",
                    self.load
                ),
            );
        }
        if let Err(e) = crate::bisect::Predicate::parse(&self.predicate) {
            return err("predicate", format!("'{}': {e}", self.predicate));
        }
        if self.root == RootKind::Initramfs
            && let Some(w) = self
                .cmdline_extra
                .split_whitespace()
                .find(|w| w.starts_with("rdinit=") || w.starts_with("initrd="))
        {
            return err(
                "root",
                format!(
                    "initramfs: cmdline_extra sets '{w}', but the initramfs root runs csdci's /init from csdci's archive; remove it from cmdline_extra"
                ),
            );
        }
        Ok(fragments)
    }

    /// A spec whose stored form has every field (those left out at their
    /// default set otherwise): what lists the field names (`jobs` matrix keys).
    pub fn with_every_field() -> Self {
        RunSpec {
            root: RootKind::Initramfs,
            load: Load::Tlb { procs: 1 },
            ..RunSpec::default()
        }
    }

    /// The spec with fragment paths made absolute (stored specs work from any
    /// directory).
    pub fn absolute(mut self) -> crate::Result<Self> {
        for f in &mut self.config_fragments {
            *f = std::path::absolute(&*f).map_err(|e| crate::Error::io(f.clone(), e))?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("2G"), Ok(2048));
        assert_eq!(parse_memory("512M"), Ok(512));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1.5g"), Ok(1536));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("2X").is_err());
        assert!(parse_memory("-1G").is_err());
    }

    #[test]
    fn validation_errors_are_usage_errors() {
        let mut o = RunSpec {
            vcpus: 1000,
            ..RunSpec::default()
        };
        let e = o.validate().unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("288"), "{e}");
        o.vcpus = 100;
        let e = o.validate().unwrap_err();
        assert!(e.to_string().contains("CONFIG_NR_CPUS=64"), "{e}");
        o.vcpus = 8;
        o.memory_mb = 10;
        assert!(o.validate().unwrap_err().is_usage());
        o.memory_mb = 1024;
        o.scftorture = "a;b".into();
        assert!(o.validate().unwrap_err().is_usage());
        o.scftorture = "nthreads=2".into();
        o.validate().unwrap();
    }

    #[test]
    fn one_message_per_rule_named_by_flag() {
        let bad = |s: RunSpec| s.validate().unwrap_err().to_string();
        let d = RunSpec::default;
        assert!(bad(RunSpec { vcpus: 0, ..d() }).starts_with("--vcpus 0: must be at least 1"));
        assert!(bad(RunSpec { vcpus: 1000, ..d() }).contains("at most 288 vCPUs"));
        assert!(bad(RunSpec { vcpus: 65, ..d() }).contains("configured for at most 64 CPUs"));
        assert!(
            bad(RunSpec {
                memory_mb: 16,
                ..d()
            })
            .starts_with("--memory 16M")
        );
        assert!(
            bad(RunSpec {
                duration_s: 0,
                ..d()
            })
            .starts_with("--duration 0")
        );
        let p = RunSpec {
            predicate: "title:(".into(),
            ..d()
        };
        assert!(bad(p).starts_with("--predicate"));
        assert!(d().validate().is_ok());
    }

    #[test]
    fn the_stored_form_of_the_previous_csdci_still_reads() {
        // What bisections stored as their QEMU options before RunSpec.
        let old = r#"{"vcpus":4,"memory":"1G","duration":30,"scftorture":"","config_fragment":["/x.config"],"accel":"tcg","stop_after_crash":20}"#;
        let s: RunSpec = serde_json::from_str(old).unwrap();
        assert_eq!(s.vcpus, 4);
        assert_eq!(s.memory_mb, 1024);
        assert_eq!(s.duration_s, 30);
        assert_eq!(s.config_fragments, [PathBuf::from("/x.config")]);
        assert_eq!(s.accel, Accel::Tcg);
        assert_eq!(s.stop_after_crash_s, Some(20));
        assert_eq!(s.predicate, "any");
        let back: RunSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<RunSpec>(r#"{"vpcus":4}"#).is_err());
    }

    #[test]
    fn load_defaults_to_none_is_stored_only_when_set_and_reaches_the_guest() {
        let s: RunSpec = serde_json::from_str(r#"{"vcpus":4}"#).unwrap();
        assert_eq!(s.load, Load::None);
        assert!(!serde_json::to_string(&s).unwrap().contains("load"));
        let s: RunSpec = serde_json::from_str(r#"{"vcpus":4,"load":"tlb:2"}"#).unwrap();
        assert_eq!(s.load, Load::Tlb { procs: 2 });
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains(r#""load":"tlb:2""#)
        );
        assert_eq!(s.guest_params().load, Load::Tlb { procs: 2 });
        assert!(
            s.guest_params()
                .render()
                .unwrap()
                .contains("CSDCI_LOAD=tlb\n")
        );
        s.validate().unwrap();
        let e = serde_json::from_str::<RunSpec>(r#"{"load":"busy"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown background load 'busy'"), "{e}");
        let one = RunSpec {
            vcpus: 1,
            load: Load::Tlb { procs: 1 },
            ..RunSpec::default()
        };
        let e = one.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("--load tlb: TLB shootdowns need a second CPU"),
            "{e}"
        );
    }

    #[test]
    fn cpu_hotplug_needs_an_interval_two_cpus_and_hotplug_in_the_config() {
        let spec = |scf: &str| RunSpec {
            vcpus: 4,
            scftorture: scf.into(),
            ..RunSpec::default()
        };
        spec("nthreads=4 onoff_holdoff=5 onoff_interval=50")
            .validate()
            .unwrap();
        spec("onoff_interval=0 onoff_holdoff=5").validate().unwrap();
        let e = spec("onoff_holdoff=50").validate().unwrap_err().to_string();
        assert!(
            e.starts_with("--scftorture 'onoff_holdoff=50': onoff_holdoff=50 without onoff_interval does no CPU hotplug; add onoff_interval=N"),
            "{e}"
        );
        let one = RunSpec {
            vcpus: 1,
            ..spec("onoff_interval=100")
        };
        let e = one.validate().unwrap_err().to_string();
        assert!(e.contains("needs at least 2 vCPUs"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let frag = d.path().join("nohp.config");
        std::fs::write(&frag, "CONFIG_FOO=y\n# CONFIG_HOTPLUG_CPU is not set\n").unwrap();
        let off = RunSpec {
            config_fragments: vec![frag.clone()],
            ..spec("onoff_interval=100")
        };
        let e = off.validate().unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "needs CONFIG_HOTPLUG_CPU=y, but {}:2 sets CONFIG_HOTPLUG_CPU=n",
                frag.display()
            )),
            "{e}"
        );
        // Without hotplug asked for, the fragment is fine.
        RunSpec {
            config_fragments: vec![frag],
            ..spec("nthreads=4")
        }
        .validate()
        .unwrap();
        let smp = d.path().join("up.config");
        std::fs::write(&smp, "CONFIG_SMP=n\n").unwrap();
        let e = RunSpec {
            config_fragments: vec![smp],
            ..spec("onoff_interval=100")
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("up.config:1 sets CONFIG_SMP=n"), "{e}");
    }

    #[test]
    fn root_defaults_to_virtiofs_and_is_stored_only_when_initramfs() {
        let s: RunSpec = serde_json::from_str(r#"{"vcpus":4}"#).unwrap();
        assert_eq!(s.root, RootKind::Virtiofs);
        assert!(!serde_json::to_string(&s).unwrap().contains("root"));
        let s: RunSpec = serde_json::from_str(r#"{"root":"initramfs"}"#).unwrap();
        assert_eq!(s.root, RootKind::Initramfs);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""root":"initramfs""#), "{json}");
        let e = serde_json::from_str::<RunSpec>(r#"{"root":"nfs"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("use virtiofs or initramfs"), "{e}");
        let bad = RunSpec {
            root: RootKind::Initramfs,
            cmdline_extra: "quiet rdinit=/bin/sh".into(),
            ..RunSpec::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("--root initramfs: cmdline_extra sets 'rdinit=/bin/sh'"),
            "{e}"
        );
        let ok = RunSpec {
            root: RootKind::Initramfs,
            ..RunSpec::default()
        };
        ok.validate().unwrap();
    }
}

//! The settings a sweep tries: axes (vCPUs, scftorture threads and weights,
//! CPU hotplug, background load, run length), crossed into arms, each a
//! [`RunSpec`] checked by [`RunSpec::validate`].

use serde::Serialize;

use crate::image::Load;
use crate::spec::RunSpec;

/// scftorture's CPU hotplug when an arm asks for it: an operation every 100
/// jiffies after 2 s (the same parameters `csdci run --scftorture` takes).
pub const HOTPLUG_PARAMS: &str = "onoff_holdoff=2 onoff_interval=100";

/// scftorture threads: `vcpus` (one per vCPU, csdci's default), `Nx` (N per
/// vCPU) or a fixed count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threads {
    /// `N` threads per vCPU (`vcpus` is 1).
    PerVcpu(u32),
    /// A fixed count.
    Fixed(u32),
}

impl Threads {
    /// Threads for a guest of `vcpus` vCPUs.
    pub fn count(self, vcpus: u32) -> u32 {
        match self {
            Threads::PerVcpu(n) => n.saturating_mul(vcpus),
            Threads::Fixed(n) => n,
        }
    }
}

impl std::str::FromStr for Threads {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("'{s}': expected vcpus, Nx (N threads per vCPU) or a count such as 16");
        let n = |t: &str| t.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad);
        match s.trim() {
            "vcpus" => Ok(Threads::PerVcpu(1)),
            t => match t.strip_suffix('x') {
                Some(m) => n(m).map(Threads::PerVcpu),
                None => n(t).map(Threads::Fixed),
            },
        }
    }
}

impl std::fmt::Display for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threads::PerVcpu(1) => f.write_str("vcpus"),
            Threads::PerVcpu(n) => write!(f, "{n}x"),
            Threads::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// The axes of a sweep: every combination is one arm.
#[derive(Debug, Clone)]
pub struct Axes {
    /// Guest vCPUs.
    pub vcpus: Vec<u32>,
    /// scftorture `nthreads`.
    pub threads: Vec<Threads>,
    /// Extra scftorture parameters (weights, e.g. `weight_single=1`); empty:
    /// scftorture's defaults.
    pub weights: Vec<String>,
    /// CPU hotplug off and/or on ([`HOTPLUG_PARAMS`]).
    pub hotplug: Vec<bool>,
    /// Background load.
    pub load: Vec<Load>,
    /// Seconds of workload per run.
    pub duration_s: Vec<u64>,
}

/// One setting a sweep tries.
#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    /// A short name: `8 vCPUs, nthreads=8, hotplug, load tlb, 30 s`.
    pub label: String,
    /// Guest vCPUs.
    pub vcpus: u32,
    /// scftorture threads.
    pub nthreads: u32,
    /// Extra scftorture parameters (empty: scftorture's own weights).
    pub weights: String,
    /// CPU hotplug on.
    pub hotplug: bool,
    /// Background load (`none`, `tlb`, `tlb:N`).
    pub load: String,
    /// Seconds of workload per run.
    pub duration_s: u64,
    /// What a run of this arm is (the base spec with this arm's settings).
    #[serde(skip)]
    pub spec: RunSpec,
}

/// An arm left out: its settings and why (e.g. hotplug with one vCPU).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The arm's label.
    pub label: String,
    /// The rule it breaks.
    pub reason: String,
}

/// Crosses `axes` over `base` (its memory, accelerator, fragments,
/// predicate, ...): the arms that pass [`RunSpec::validate`] and the ones
/// that do not, with the reason. `base.scftorture` is kept in every arm,
/// before the arm's own parameters.
pub fn arms(base: &RunSpec, axes: &Axes) -> (Vec<Arm>, Vec<Skipped>) {
    let (mut ok, mut skipped) = (Vec::new(), Vec::new());
    for &vcpus in &axes.vcpus {
        for &threads in &axes.threads {
            for weights in &axes.weights {
                for &hotplug in &axes.hotplug {
                    for load in &axes.load {
                        for &duration_s in &axes.duration_s {
                            let arm =
                                arm(base, vcpus, threads, weights, hotplug, *load, duration_s);
                            match arm.spec.validate() {
                                Ok(_) => ok.push(arm),
                                Err(e) => skipped.push(Skipped {
                                    label: arm.label,
                                    reason: e.to_string(),
                                }),
                            }
                        }
                    }
                }
            }
        }
    }
    (ok, skipped)
}

fn arm(
    base: &RunSpec,
    vcpus: u32,
    threads: Threads,
    weights: &str,
    hotplug: bool,
    load: Load,
    duration_s: u64,
) -> Arm {
    let nthreads = threads.count(vcpus);
    let weights = weights.trim().to_string();
    let mut params = vec![
        base.scftorture.trim().to_string(),
        format!("nthreads={nthreads}"),
    ];
    params.push(weights.clone());
    if hotplug {
        params.push(HOTPLUG_PARAMS.into());
    }
    let scftorture = params
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut label = format!("{vcpus} vCPUs, nthreads={nthreads}");
    if !weights.is_empty() {
        label.push_str(&format!(", {weights}"));
    }
    if hotplug {
        label.push_str(", hotplug");
    }
    if !load.is_none() {
        label.push_str(&format!(", load {load}"));
    }
    label.push_str(&format!(", {duration_s} s"));
    Arm {
        label,
        vcpus,
        nthreads,
        weights,
        hotplug,
        load: load.to_string(),
        duration_s,
        spec: RunSpec {
            vcpus,
            duration_s,
            scftorture,
            load,
            ..base.clone()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes() -> Axes {
        Axes {
            vcpus: vec![1, 4],
            threads: vec![Threads::PerVcpu(1), Threads::PerVcpu(4)],
            weights: vec![String::new()],
            hotplug: vec![false, true],
            load: vec![Load::None, Load::Tlb { procs: 1 }],
            duration_s: vec![30],
        }
    }

    #[test]
    fn threads_parse_and_count() {
        assert_eq!("vcpus".parse(), Ok(Threads::PerVcpu(1)));
        assert_eq!("4x".parse::<Threads>().unwrap().count(8), 32);
        assert_eq!("16".parse::<Threads>().unwrap().count(2), 16);
        for bad in ["0", "x", "-3", "0x", "many"] {
            let e = bad.parse::<Threads>().unwrap_err();
            assert!(e.contains("expected vcpus, Nx"), "{e}");
        }
        assert_eq!(Threads::PerVcpu(4).to_string(), "4x");
    }

    #[test]
    fn the_grid_is_crossed_and_hotplug_on_one_vcpu_is_skipped() {
        let base = RunSpec {
            memory_mb: 512,
            scftorture: "verbose=1".into(),
            ..RunSpec::default()
        };
        let (arms, skipped) = arms(&base, &axes());
        // 2 vCPU counts x 2 threads x 2 hotplug x 2 loads, less the 6 arms
        // of hotplug or the TLB load on 1 vCPU.
        assert_eq!(arms.len(), 10, "{skipped:#?}");
        assert_eq!(skipped.len(), 6);
        assert!(
            skipped.iter().all(|s| s.label.starts_with("1 vCPUs")
                && (s.label.contains("hotplug") || s.label.contains("load tlb"))
                && s.reason.contains("use --vcpus 2 or more")),
            "{skipped:?}"
        );
        let a = arms
            .iter()
            .find(|a| a.vcpus == 4 && a.nthreads == 16 && a.hotplug && a.load == "tlb")
            .unwrap();
        assert_eq!(
            a.spec.scftorture,
            "verbose=1 nthreads=16 onoff_holdoff=2 onoff_interval=100"
        );
        assert_eq!(a.label, "4 vCPUs, nthreads=16, hotplug, load tlb, 30 s");
        assert_eq!(a.spec.memory_mb, 512);
        assert_eq!(a.spec.duration_s, 30);
    }
}

//! The shape of a demo history, chosen from a seed: which commit is the
//! regression, which stretch does not compile, and what every filler commit
//! changes. Pure and deterministic: the same (commits, seed) gives the same plan.

use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;

use super::Error;

/// A file a filler commit may touch, and whether the demo config compiles it.
struct Target {
    path: &'static str,
    prefix: &'static str,
    built: bool,
}

/// Files spread over the tree: most are built by the demo config (so their
/// commits cost a real incremental build), some are not (noop commits).
const TARGETS: &[Target] = &[
    Target {
        path: "kernel/fork.c",
        prefix: "fork",
        built: true,
    },
    Target {
        path: "kernel/exit.c",
        prefix: "exit",
        built: true,
    },
    Target {
        path: "kernel/sched/core.c",
        prefix: "sched/core",
        built: true,
    },
    Target {
        path: "kernel/smp.c",
        prefix: "smp",
        built: true,
    },
    Target {
        path: "kernel/cpu.c",
        prefix: "cpu/hotplug",
        built: true,
    },
    Target {
        path: "kernel/softirq.c",
        prefix: "softirq",
        built: true,
    },
    Target {
        path: "mm/memory.c",
        prefix: "mm/memory",
        built: true,
    },
    Target {
        path: "mm/mmap.c",
        prefix: "mm/mmap",
        built: true,
    },
    Target {
        path: "lib/string.c",
        prefix: "lib/string",
        built: true,
    },
    Target {
        path: "lib/vsprintf.c",
        prefix: "vsprintf",
        built: true,
    },
    Target {
        path: "lib/llist.c",
        prefix: "llist",
        built: true,
    },
    Target {
        path: "fs/open.c",
        prefix: "fs/open",
        built: true,
    },
    Target {
        path: "fs/namei.c",
        prefix: "namei",
        built: true,
    },
    Target {
        path: "fs/super.c",
        prefix: "fs/super",
        built: true,
    },
    Target {
        path: "drivers/base/core.c",
        prefix: "driver core",
        built: true,
    },
    Target {
        path: "drivers/virtio/virtio.c",
        prefix: "virtio",
        built: true,
    },
    Target {
        path: "arch/x86/kernel/setup.c",
        prefix: "x86/setup",
        built: true,
    },
    Target {
        path: "arch/x86/mm/fault.c",
        prefix: "x86/mm",
        built: true,
    },
    Target {
        path: "drivers/net/ethernet/intel/e1000/e1000_main.c",
        prefix: "e1000",
        built: false,
    },
    Target {
        path: "fs/btrfs/super.c",
        prefix: "btrfs",
        built: false,
    },
    Target {
        path: "fs/ext4/super.c",
        prefix: "ext4",
        built: false,
    },
    Target {
        path: "sound/core/pcm.c",
        prefix: "ALSA: pcm",
        built: false,
    },
    Target {
        path: "net/ipv4/tcp.c",
        prefix: "tcp",
        built: false,
    },
    Target {
        path: "drivers/usb/core/hub.c",
        prefix: "usb: hub",
        built: false,
    },
    Target {
        path: "drivers/gpu/drm/drm_file.c",
        prefix: "drm/file",
        built: false,
    },
];

const AUTHORS: &[(&str, &str)] = &[
    ("Ada Brennan", "ada.brennan@example.org"),
    ("Bartosz Wilk", "bwilk@example.org"),
    ("Chen Jiaqi", "jiaqi.chen@example.org"),
    ("Dmitri Orlov", "dorlov@example.org"),
    ("Emma Lindqvist", "emma.lindqvist@example.org"),
    ("Farid Haddad", "fhaddad@example.org"),
    ("Grace Okafor", "grace.okafor@example.org"),
    ("Hiroshi Tanaka", "htanaka@example.org"),
    ("Ines Moreau", "ines.moreau@example.org"),
    ("Jonas Becker", "jbecker@example.org"),
    ("Kavya Raman", "kavya.raman@example.org"),
    ("Luca Ferri", "luca.ferri@example.org"),
];

const TOPICS: &[&str] = &[
    "the locking rules",
    "memory ordering",
    "RCU protection of the list walk",
    "the error paths",
    "CPU hotplug interaction",
    "preemption requirements",
    "the fast path",
    "reference counting",
    "the return value",
    "interrupt context use",
];

/// Author of the regression (the demo's "culprit author").
pub const REGRESSION_AUTHOR: (&str, &str) = ("Mira Castell", "mira.castell@example.org");

/// What one planned commit changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Append `text` to `path` (comments or unused code that compiles).
    Append { path: String, text: String },
    /// Apply the CSD-lock regression to kernel/smp.c.
    Regression,
    /// Append a helper that does not compile (undeclared identifier).
    Break { path: String, text: String },
    /// Replace the broken helper's text with a compiling one.
    Unbreak {
        path: String,
        broken: String,
        fixed: String,
    },
}

/// One commit of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCommit {
    pub subject: String,
    pub body: String,
    pub author: (String, String),
    pub change: Change,
}

/// The demo history plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub commits: Vec<PlannedCommit>,
    /// Index of the regression commit.
    pub regression: usize,
    /// Index of the first commit that does not compile.
    pub broken: usize,
    /// Index of the commit that makes the tree compile again.
    pub unbroken: usize,
}

/// Smallest history that has a regression, a broken stretch and its fix.
pub const MIN_COMMITS: usize = 4;

/// Plans a history of `n` commits on top of the base from `seed`.
pub fn plan(n: usize, seed: u64) -> Result<Plan, Error> {
    if n < MIN_COMMITS {
        return Err(Error::TooFewCommits {
            asked: n,
            min: MIN_COMMITS,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The non-compiling stretch [broken, unbroken) and the regression outside it.
    let broken = rng.random_range(0..n - 1);
    let mut unbroken = (broken + 1 + rng.random_range(0..3usize)).min(n - 1);
    let outside = |unbroken: usize| -> Vec<usize> {
        (0..n).filter(|i| *i < broken || *i > unbroken).collect()
    };
    if outside(unbroken).is_empty() {
        unbroken = broken + 1;
    }
    let outside = outside(unbroken);
    let regression = *outside.choose(&mut rng).ok_or(Error::TooFewCommits {
        asked: n,
        min: MIN_COMMITS,
    })?;

    let built: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| t.built && t.path != "kernel/smp.c")
        .collect();
    let break_target = *built.choose(&mut rng).expect("built targets are not empty");
    let helper = format!(
        "{}_pending_{}",
        break_target.prefix.replace(['/', ' ', ':'], "_"),
        rng.random_range(100..1000)
    );
    let broken_text =
        format!("\nstatic int __maybe_unused {helper}(void)\n{{\n\treturn {helper}_count;\n}}\n");
    let fixed_text = format!(
        "\nstatic int {helper}_count;\n\nstatic int __maybe_unused {helper}(void)\n{{\n\treturn {helper}_count;\n}}\n"
    );

    let mut commits = Vec::with_capacity(n);
    for i in 0..n {
        let author = AUTHORS.choose(&mut rng).expect("authors");
        let author = (author.0.to_string(), author.1.to_string());
        let commit = if i == regression {
            PlannedCommit {
                subject: super::patches::REGRESSION_SUBJECT.into(),
                body: super::patches::REGRESSION_BODY.into(),
                author: (REGRESSION_AUTHOR.0.into(), REGRESSION_AUTHOR.1.into()),
                change: Change::Regression,
            }
        } else if i == broken {
            PlannedCommit {
                subject: format!("{}: Add {helper}() helper", break_target.prefix),
                body: format!(
                    "Add a helper that reports the number of pending {} requests.",
                    break_target.prefix
                ),
                author,
                change: Change::Break {
                    path: break_target.path.into(),
                    text: broken_text.clone(),
                },
            }
        } else if i == unbroken {
            PlannedCommit {
                subject: format!("{}: Fix build error in {helper}()", break_target.prefix),
                body: format!("{helper}_count was never declared, which breaks the build."),
                author,
                change: Change::Unbreak {
                    path: break_target.path.into(),
                    broken: broken_text.clone(),
                    fixed: fixed_text.clone(),
                },
            }
        } else {
            filler(&mut rng, i, author)
        };
        commits.push(commit);
    }
    Ok(Plan {
        commits,
        regression,
        broken,
        unbroken,
    })
}

fn filler(rng: &mut ChaCha8Rng, i: usize, author: (String, String)) -> PlannedCommit {
    let target = TARGETS.choose(rng).expect("targets");
    let topic = *TOPICS.choose(rng).expect("topics");
    let p = target.prefix;
    let (subject, text) = match rng.random_range(0..3u8) {
        0 => (
            format!("{p}: Clarify comment about {topic}"),
            format!(
                "\n/*\n * Note on {topic}: callers must follow the rules documented at the\n * top of this file (update {i}).\n */\n"
            ),
        ),
        1 => (
            format!("{p}: Document {topic}"),
            format!(
                "\n/*\n * {topic}: see Documentation/ for the full description (update {i}).\n */\n"
            ),
        ),
        _ => {
            let ident = format!("{}_doc_{i}", p.replace(['/', ' ', ':'], "_").to_lowercase());
            (
                format!("{p}: Record {topic} in the build notes"),
                format!("\nstatic const char {ident}[] __maybe_unused = \"{topic}\";\n"),
            )
        }
    };
    PlannedCommit {
        subject,
        body: format!(
            "Spell out {topic} so that the next reader does not have to\nreverse-engineer it from the code."
        ),
        author,
        change: Change::Append {
            path: target.path.into(),
            text,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        assert_eq!(plan(40, 7).unwrap(), plan(40, 7).unwrap());
        let positions: std::collections::BTreeSet<usize> =
            (0..20).map(|s| plan(40, s).unwrap().regression).collect();
        assert!(
            positions.len() > 5,
            "regression position should depend on the seed: {positions:?}"
        );
    }

    #[test]
    fn the_regression_compiles_and_the_break_is_fixed() {
        for seed in 0..200 {
            for n in [4, 5, 16, 60] {
                let p = plan(n, seed).unwrap();
                assert_eq!(p.commits.len(), n);
                assert!(p.broken < p.unbroken && p.unbroken < n);
                assert!(
                    !(p.broken..p.unbroken).contains(&p.regression),
                    "seed {seed} n {n}"
                );
                assert_ne!(p.regression, p.unbroken);
                assert_eq!(
                    p.commits
                        .iter()
                        .filter(|c| c.change == Change::Regression)
                        .count(),
                    1
                );
            }
        }
    }

    #[test]
    fn too_short_a_history_is_refused() {
        assert!(plan(3, 1).unwrap_err().to_string().contains("at least 4"));
    }
}

//! The guest's background load ([`Load`], RunSpec's `load`): what runs beside
//! scftorture, and the program that makes it, `images/tlbload.c`, compiled
//! statically on the host (`gcc -static -O2 -pthread`; the guest has no libc)
//! once per source under `<data_dir>/image/tlbload-<hash>/` and installed as
//! `/bin/csdci-tlbload` in the run's root (virtiofs folder or initramfs) only
//! when a run asks for it.
//!
//! `tlb` keeps short-lived multi-threaded processes running on every CPU:
//! each maps, touches, write-protects and unmaps memory for a few
//! milliseconds from one pinned thread per CPU and exits, so TLB shootdowns
//! (`flush_tlb_mm_range` → `smp_call_function_many`) go to every CPU while
//! scftorture's IPIs are in flight: the seed's lockup (a process exit's TLB
//! shootdown stuck on a CPU inside scftorture's handler). It runs at nice 19,
//! the nice of scftorture's invokers, so it never takes more than about an
//! invoker's share of a CPU.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::Error;
use super::base::has_interpreter;

/// The load program's source (`images/tlbload.c`).
pub const TLBLOAD_SOURCE: &str = include_str!("../../../images/tlbload.c");

/// Where the program is in the guest.
pub const TLBLOAD_GUEST_PATH: &str = "bin/csdci-tlbload";

/// Bump when the compile recipe changes without the source changing.
const RECIPE_VERSION: &str = "1";

/// Most load processes at once (`tlb:N`).
pub const MAX_PROCS: u32 = 64;

/// What runs in the guest beside scftorture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Load {
    /// Nothing (the default).
    #[default]
    None,
    /// TLB shootdowns on every CPU: `procs` short-lived processes at once,
    /// each with a thread per CPU mapping, touching and unmapping memory.
    Tlb {
        /// Processes running at once (1..=[`MAX_PROCS`]).
        procs: u32,
    },
}

impl Load {
    /// True for [`Load::None`].
    pub fn is_none(&self) -> bool {
        *self == Load::None
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::None => f.write_str("none"),
            Load::Tlb { procs: 1 } => f.write_str("tlb"),
            Load::Tlb { procs } => write!(f, "tlb:{procs}"),
        }
    }
}

impl FromStr for Load {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown background load '{s}' (use none, tlb, or tlb:N for N processes at once, 1 to {MAX_PROCS})"
            )
        };
        match s.trim() {
            "none" | "" => Ok(Load::None),
            "tlb" => Ok(Load::Tlb { procs: 1 }),
            t => {
                let n = t.strip_prefix("tlb:").ok_or_else(bad)?;
                match n.parse::<u32>() {
                    Ok(procs) if (1..=MAX_PROCS).contains(&procs) => Ok(Load::Tlb { procs }),
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl serde::Serialize for Load {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Load {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The C compiler (`CSDCI_CC` overrides `gcc`).
fn compiler() -> String {
    std::env::var("CSDCI_CC").unwrap_or_else(|_| "gcc".into())
}

/// Compiles `images/tlbload.c` if needed and returns the static binary,
/// cached under `<data_dir>/image/tlbload-<hash of source and recipe>/`.
pub fn ensure_tlbload(data_dir: &Path) -> Result<PathBuf, Error> {
    let cc = compiler();
    let mut h = Sha256::new();
    for part in [RECIPE_VERSION, &cc, TLBLOAD_SOURCE] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    let hash = hex::encode(h.finalize());
    let images = data_dir.join("image");
    let dir = images.join(format!("tlbload-{}", &hash[..16]));
    let bin = dir.join("csdci-tlbload");
    if bin.is_file() {
        return Ok(bin);
    }
    let tmp = images.join(format!(
        ".tmp-tlbload-{}-{}",
        &hash[..16],
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = compile(&cc, &tmp);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if !bin.is_file() {
        let _ = fs::remove_dir_all(&dir);
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            // A concurrent build that finished first is as good.
            if !bin.is_file() {
                return Err(Error::io(&dir, e));
            }
        }
    } else {
        let _ = fs::remove_dir_all(&tmp);
    }
    Ok(bin)
}

fn compile(cc: &str, dir: &Path) -> Result<(), Error> {
    let src = dir.join("tlbload.c");
    fs::write(&src, TLBLOAD_SOURCE).map_err(|e| Error::io(&src, e))?;
    let out_bin = dir.join("csdci-tlbload");
    let args = ["-static", "-O2", "-pthread", "-s", "-o"];
    let cmd = format!(
        "{cc} {} {} {}",
        args.join(" "),
        out_bin.display(),
        src.display()
    );
    let out = Command::new(cc)
        .args(args)
        .arg(&out_bin)
        .arg(&src)
        .output()
        .map_err(|e| Error::LoadCompile {
            cmd: cmd.clone(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = why.lines().rev().take(5).collect();
        return Err(Error::LoadCompile {
            cmd,
            why: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
        });
    }
    let bytes = fs::read(&out_bin).map_err(|e| Error::io(&out_bin, e))?;
    if has_interpreter(&bytes) {
        return Err(Error::LoadCompile {
            cmd,
            why: "the result is dynamically linked (the guest has no libc; install libc6-dev for libc.a)".into(),
        });
    }
    fs::set_permissions(&out_bin, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&out_bin, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_parse_and_print_back() {
        assert_eq!("none".parse::<Load>(), Ok(Load::None));
        assert_eq!("tlb".parse::<Load>(), Ok(Load::Tlb { procs: 1 }));
        assert_eq!("tlb:4".parse::<Load>(), Ok(Load::Tlb { procs: 4 }));
        for s in ["none", "tlb", "tlb:4"] {
            assert_eq!(s.parse::<Load>().unwrap().to_string(), s);
        }
        assert_eq!(Load::Tlb { procs: 1 }.to_string(), "tlb");
        for bad in ["cpu", "tlb:0", "tlb:65", "tlb:x", "tlb:"] {
            let e = bad.parse::<Load>().unwrap_err();
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains("tlb:N"),
                "{e}"
            );
        }
        let json = serde_json::to_string(&Load::Tlb { procs: 2 }).unwrap();
        assert_eq!(json, r#""tlb:2""#);
        assert_eq!(
            serde_json::from_str::<Load>(&json).unwrap(),
            Load::Tlb { procs: 2 }
        );
    }

    #[test]
    fn a_run_root_gets_the_program_only_with_a_load() {
        if !Path::new("/bin/busybox").exists() {
            eprintln!("skipping: /bin/busybox not installed (apt-get install busybox-static)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mods = d.path().join("mods");
        let rel = mods.join("lib/modules/6.12.0-test/kernel");
        fs::create_dir_all(&rel).unwrap();
        fs::write(rel.join("scftorture.ko"), b"scf").unwrap();
        let data = d.path().join("data");
        let mut params = super::super::GuestParams {
            scftorture: "nthreads=4".into(),
            duration_s: 20,
            load: Load::None,
        };
        let root =
            super::super::prepare_run_root(&data, &mods, &params, &d.path().join("r1")).unwrap();
        assert!(!root.join(TLBLOAD_GUEST_PATH).exists());
        params.load = Load::Tlb { procs: 3 };
        let root =
            super::super::prepare_run_root(&data, &mods, &params, &d.path().join("r2")).unwrap();
        let bin = root.join(TLBLOAD_GUEST_PATH);
        assert!(!has_interpreter(&fs::read(&bin).unwrap()));
        assert_eq!(
            fs::metadata(&bin).unwrap().permissions().mode() & 0o111,
            0o111
        );
        let p = fs::read_to_string(root.join("csdci/params")).unwrap();
        assert!(p.ends_with("CSDCI_LOAD=tlb\nCSDCI_LOAD_PROCS=3\n"), "{p}");
        // The init starts it when the params ask for it.
        assert!(
            super::super::INIT_SCRIPT.contains("/bin/csdci-tlbload -p \"${CSDCI_LOAD_PROCS:-1}\"")
        );
    }

    #[test]
    fn the_load_program_is_static_cached_and_runs() {
        let d = tempfile::tempdir().unwrap();
        let bin = match ensure_tlbload(d.path()) {
            Ok(b) => b,
            Err(e) if e.to_string().contains("No such file") => {
                eprintln!("skipping: no C compiler ({e}); apt-get install build-essential");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert!(!has_interpreter(&fs::read(&bin).unwrap()));
        let t = fs::metadata(&bin).unwrap().modified().unwrap();
        assert_eq!(ensure_tlbload(d.path()).unwrap(), bin);
        assert_eq!(fs::metadata(&bin).unwrap().modified().unwrap(), t);
        // No temporary folders left.
        let names: Vec<String> = fs::read_dir(d.path().join("image"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // One second of load on this host: it counts what it did.
        let out = Command::new(&bin)
            .args(["-d", "1", "-m", "5"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("csdci: background load started:"), "{text}");
        assert!(text.contains("nice 19"), "{text}");
        let done = text
            .lines()
            .find_map(|l| l.strip_prefix("csdci: background load done: "))
            .unwrap_or_else(|| panic!("{text}"));
        let processes: u64 = done.split(' ').next().unwrap().parse().unwrap();
        assert!(processes > 0, "{done}");
        let bad = Command::new(&bin).arg("-p0").output().unwrap();
        assert_eq!(bad.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("usage:"));
    }
}

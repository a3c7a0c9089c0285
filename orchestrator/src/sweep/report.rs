//! A sweep's output: the table on the terminal, `sweep.json` and the plot
//! `sweep.svg` (time to first failure per setting), written after every run
//! so an interrupted sweep keeps what it measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Sweep;
use super::plot::{self, Curve};
use super::policy::secs;
use crate::io_error::PathIo;

/// The table: one line per arm, best first where it matters (the order is
/// the grid's; the recommended arm is marked `*`, dropped ones `-`).
pub fn table(s: &Sweep) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "   {:<4} {:<48} {:>4} {:>4} {:>8} {:>22} {:>8} {:>6} {:>9} {:>24}",
        "arm",
        "setting",
        "runs",
        "fail",
        "exposure",
        "rate /h [95% CI]",
        "median",
        "boot",
        "scf inv/s",
        "to a failure [95% CI]"
    );
    for (i, a) in s.arms.iter().enumerate() {
        let mark = if Some(i) == s.recommended {
            '*'
        } else if a.dropped.is_some() {
            '-'
        } else {
            ' '
        };
        let r = &a.estimate.rate;
        let e = &a.estimate;
        let _ = writeln!(
            out,
            "{mark}  {:<4} {:<48} {:>4} {:>4} {:>8} {:>22} {:>8} {:>6} {:>9} {:>24}",
            i + 1,
            a.arm.label,
            a.runs,
            a.failures,
            secs(a.exposure_s),
            format!(
                "{:.0} [{:.0}, {}]",
                r.per_s * 3600.0,
                r.lower * 3600.0,
                if r.upper.is_finite() {
                    format!("{:.0}", r.upper * 3600.0)
                } else {
                    "∞".into()
                }
            ),
            a.median_s.map_or("-".into(), secs),
            a.boot_s.map_or("-".into(), |b| format!("{b:.1} s")),
            a.invocations_per_s
                .map_or("-".into(), |v| format!("{v:.0}")),
            format!(
                "{} [{}, {}]",
                secs(e.wall_s),
                secs(e.wall_lower_s),
                secs(e.wall_upper_s)
            ),
        );
    }
    for sk in &s.skipped {
        let _ = writeln!(out, "   skipped {}: {}", sk.label, sk.reason);
    }
    let _ = writeln!(
        out,
        "spent {} of {} ({})",
        secs(s.spent_s),
        secs(s.budget_s),
        s.stopped
    );
    match s.recommended {
        Some(i) => {
            let a = &s.arms[i];
            let _ = writeln!(
                out,
                "recommended: arm {} ({}): a first failure in {} of wall time, boot included",
                i + 1,
                a.arm.label,
                secs(a.estimate.wall_s)
            );
            let _ = writeln!(out, "  csdci run {}", run_flags(a));
            if let (Some(b), Some(x)) = (s.baseline, s.speedup) {
                let _ = writeln!(
                    out,
                    "  {x:.2}x faster than csdci's default (arm {}: {})",
                    b + 1,
                    secs(s.arms[b].estimate.wall_s)
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "recommended: none (no setting failed within the budget)"
            );
        }
    }
    out
}

/// The `csdci run` flags of an arm.
pub fn run_flags(a: &super::ArmResult) -> String {
    let mut f = format!(
        "--vcpus {} --duration {} --scftorture '{}'",
        a.arm.vcpus, a.arm.duration_s, a.arm.spec.scftorture
    );
    if a.arm.load != "none" {
        f.push_str(&format!(" --load {}", a.arm.load));
    }
    f
}

/// Settings the plot shows at most.
pub const PLOTTED: usize = 8;

/// Writes `sweep.json` and `sweep.svg` into `dir` (each replaced whole, so a
/// reader never sees half a file); returns their paths.
pub fn write(s: &Sweep, dir: &Path) -> crate::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| PathIo::new(dir, e))?;
    let json = dir.join("sweep.json");
    let text = serde_json::to_string_pretty(s)
        .map_err(|e| crate::Error::Usage(format!("sweep.json: {e}")))?;
    replace(&json, text.as_bytes())?;
    let svg = dir.join("sweep.svg");
    // The plot stays readable: the eight settings fastest to a failure
    // (the JSON has every curve).
    let mut shown: Vec<&super::ArmResult> = s
        .arms
        .iter()
        .filter(|a| a.failures > 0 && !a.km.points.is_empty())
        .collect();
    shown.sort_by(|a, b| a.estimate.wall_s.total_cmp(&b.estimate.wall_s));
    shown.truncate(PLOTTED);
    let curves: Vec<Curve<'_>> = shown
        .iter()
        .map(|a| Curve {
            label: &a.arm.label,
            km: &a.km,
            max_t: a
                .observed
                .iter()
                .filter_map(|o| o.workload_s)
                .fold(0.0, f64::max),
        })
        .collect();
    let title = format!("time to first failure, {}", crate::events::short(&s.commit));
    let image = plot::km_svg(&title, &curves)
        .map_err(|e| crate::Error::Usage(format!("sweep.svg: {e}")))?;
    replace(&svg, image.as_bytes())?;
    Ok((json, svg))
}

fn replace(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| PathIo::new(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| PathIo::new(path, e))?;
    Ok(())
}

//! `csdci bench parse`: console analysis throughput against the kernel's own
//! `tools/testing/selftests/rcutorture/bin/console-badness.sh` (a grep pipeline) on
//! the same large input, plus the analysis' peak memory on a part and on the whole
//! input (it must not grow with the input).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use csdci_console::{Analysis, Analyzer, corpus};

use crate::cli::Cli;

/// Arguments of `csdci bench parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Console log to analyse; default: corpus logs concatenated into a temporary
    /// file of at least --size-mb.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Size of the generated input, in MB.
    #[arg(long, default_value_t = 210)]
    pub size_mb: u64,
    /// Corpus folder the input is built from.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// console-badness.sh to compare with; default: extracted from
    /// /usr/src/linux-source-6.12.tar.xz.
    #[arg(long, value_name = "PATH")]
    pub badness: Option<PathBuf>,
    /// Timed runs of each side; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
}

const LINUX_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// Where the vendored syzkaller corpus lies in the repository, from its root.
pub const VENDORED_CORPUS: &str = "orchestrator/crates/console/testdata/syzkaller/report";

/// The corpus folder: the one given, else the repository's vendored copy, found
/// from the current directory (any folder of a checkout) or, failing that, in
/// the source tree this binary was built from.
pub fn corpus_dir(given: Option<&Path>) -> crate::Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    let cwd = std::env::current_dir().ok();
    // CARGO_MANIFEST_DIR is `<repository>/orchestrator`.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = manifest.parent().unwrap_or(manifest);
    find_corpus(cwd.as_deref(), built).map_err(crate::Error::Usage)
}

/// The vendored corpus under `start` or one of its ancestors, else under
/// `built`; an error naming everywhere it looked otherwise.
fn find_corpus(start: Option<&Path>, built: &Path) -> Result<PathBuf, String> {
    let mut looked = Vec::new();
    if let Some(start) = start {
        if let Some(p) = start
            .ancestors()
            .map(|d| d.join(VENDORED_CORPUS))
            .find(|p| p.is_dir())
        {
            return Ok(p);
        }
        looked.push(format!(
            "{VENDORED_CORPUS} in {} and every folder above it",
            start.display()
        ));
    }
    let p = built.join(VENDORED_CORPUS);
    if p.is_dir() {
        return Ok(p);
    }
    looked.push(format!(
        "{} (the source tree csdci was built from)",
        p.display()
    ));
    Err(format!(
        "corpus not found: looked for {}; run csdci inside a checkout of the csdci \
         repository, or pass --dir DIR (bench corpus) / --corpus DIR (bench parse)",
        looked.join(", and for ")
    ))
}

/// Writes corpus logs, repeated, until `size` bytes. NUL bytes are left out: GNU
/// grep treats input with NULs as binary and stops at its first match, which
/// would make the comparison meaningless (the analyzer itself copes with NULs).
fn build_input(dir: &Path, size: u64, out: &Path) -> crate::Result<u64> {
    let cases = corpus::read_dir(dir).map_err(|e| crate::Error::Usage(e.to_string()))?;
    let mut blob: Vec<u8> = Vec::new();
    for c in &cases {
        blob.extend(c.log.iter().filter(|&&b| b != 0));
        if blob.last() != Some(&b'\n') {
            blob.push(b'\n');
        }
    }
    if blob.is_empty() {
        return Err(crate::Error::Usage(format!(
            "no console logs in {}",
            dir.display()
        )));
    }
    let f = std::fs::File::create(out).map_err(|e| crate::Error::io(out, e))?;
    let mut w = BufWriter::new(f);
    let mut written = 0u64;
    while written < size {
        w.write_all(&blob).map_err(|e| crate::Error::io(out, e))?;
        written += blob.len() as u64;
    }
    w.flush().map_err(|e| crate::Error::io(out, e))?;
    Ok(written)
}

/// Extracts console-badness.sh from the Linux source tarball.
fn extract_badness(dir: &Path) -> crate::Result<PathBuf> {
    let out = Command::new("tar")
        .args([
            "-xJf",
            LINUX_TARBALL,
            "--wildcards",
            "*/console-badness.sh",
            "-O",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| crate::Error::io("tar", e))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(crate::Error::Usage(format!(
            "cannot extract console-badness.sh from {LINUX_TARBALL}; pass --badness PATH"
        )));
    }
    let p = dir.join("console-badness.sh");
    std::fs::write(&p, &out.stdout).map_err(|e| crate::Error::io(&p, e))?;
    Ok(p)
}

/// Streams `limit` bytes of `path` through the analyzer.
fn analyse(path: &Path, limit: u64) -> crate::Result<(Analysis, f64)> {
    let mut f = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = limit;
    let start = Instant::now();
    let mut a = Analyzer::new();
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = f
            .read(&mut buf[..want])
            .map_err(|e| crate::Error::io(path, e))?;
        if n == 0 {
            break;
        }
        a.feed(&buf[..n]);
        left -= n as u64;
    }
    let r = a.finish();
    Ok((r, start.elapsed().as_secs_f64()))
}

/// Runs console-badness.sh on the input; returns the seconds it took and the lines
/// it printed.
fn run_badness(script: &Path, input: &Path) -> crate::Result<(f64, u64)> {
    let stdin = std::fs::File::open(input).map_err(|e| crate::Error::io(input, e))?;
    let start = Instant::now();
    let mut child = Command::new("bash")
        .arg(script)
        .env("LC_ALL", "C")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| crate::Error::io(script, e))?;
    let mut lines = 0u64;
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = out
                .read(&mut buf)
                .map_err(|e| crate::Error::io(script, e))?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    child.wait().map_err(|e| crate::Error::io(script, e))?;
    Ok((start.elapsed().as_secs_f64(), lines))
}

/// Resets the process' peak-RSS counter (Linux); false if not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process' peak RSS in KiB (VmHWM).
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `csdci bench parse`; returns the exit code.
pub fn exec(_cli: &Cli, args: &Args) -> crate::Result<u8> {
    let tmp = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let input = match &args.input {
        Some(p) => p.clone(),
        None => {
            let dir = corpus_dir(args.corpus.as_deref())?;
            let p = tmp.path().join("console.log");
            eprintln!(
                "building a {} MB input from {} ...",
                args.size_mb,
                dir.display()
            );
            build_input(&dir, args.size_mb * 1_000_000, &p)?;
            p
        }
    };
    let size = std::fs::metadata(&input)
        .map_err(|e| crate::Error::io(&input, e))?
        .len();
    let script = match &args.badness {
        Some(p) => p.clone(),
        None => extract_badness(tmp.path())?,
    };
    let runs = args.runs.max(1);
    let mb = size as f64 / 1e6;

    // Memory: peak RSS of the analysis of an eighth of the input, then of all of it.
    let part = size / 8;
    let can_reset = reset_peak_rss();
    let base = peak_rss_kib();
    analyse(&input, part)?;
    let rss_part = peak_rss_kib();
    reset_peak_rss();
    let mut best_analysis = f64::INFINITY;
    let mut result = None;
    for _ in 0..runs {
        let (r, s) = analyse(&input, u64::MAX)?;
        best_analysis = best_analysis.min(s);
        result = Some(r);
    }
    let rss_full = peak_rss_kib();
    let mut best_grep = f64::INFINITY;
    let mut grep_lines = 0;
    for _ in 0..runs {
        let (s, n) = run_badness(&script, &input)?;
        best_grep = best_grep.min(s);
        grep_lines = n;
    }
    let r = result.expect("at least one run");
    let ours = mb / best_analysis;
    let theirs = mb / best_grep;
    println!("input: {} ({mb:.1} MB, {} lines)", input.display(), r.lines);
    println!(
        "csdci analysis:       {best_analysis:>7.3} s  {ours:>8.0} MB/s  ({} findings titled, {} more counted; verdict {:?})",
        r.findings.len(),
        r.dropped_findings,
        r.verdict
    );
    println!(
        "console-badness.sh:   {best_grep:>7.3} s  {theirs:>8.0} MB/s  ({grep_lines} lines printed; LC_ALL=C)"
    );
    println!("ratio (csdci / console-badness.sh): {:.2}", ours / theirs);
    let fmt = |k: Option<u64>| {
        k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "?".into())
    };
    if can_reset {
        println!(
            "peak RSS of the analysis: {} on {:.1} MB, {} on {mb:.1} MB (process baseline {})",
            fmt(rss_part),
            part as f64 / 1e6,
            fmt(rss_full),
            fmt(base)
        );
    } else {
        println!(
            "peak RSS of the process: {} (cannot reset the peak counter here)",
            fmt(rss_full)
        );
    }
    println!(
        "note: findings beyond {} are counted, not titled (bounded memory); the input is corpus crash logs back to back, so nearly every line belongs to a crash report.",
        csdci_console::MAX_FINDINGS
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_corpus_is_found_from_any_folder_of_a_checkout() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("clone");
        let corpus = repo.join(VENDORED_CORPUS);
        std::fs::create_dir_all(&corpus).unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        for start in [
            repo.clone(),
            repo.join("orchestrator/crates"),
            corpus.clone(),
        ] {
            assert_eq!(find_corpus(Some(&start), &elsewhere).unwrap(), corpus);
        }
        // Outside a checkout: the source tree it was built from.
        assert_eq!(find_corpus(Some(&elsewhere), &repo).unwrap(), corpus);
        let e = find_corpus(Some(&elsewhere), &elsewhere).unwrap_err();
        assert!(e.contains(&elsewhere.display().to_string()), "{e}");
        assert!(e.contains("the source tree csdci was built from"), "{e}");
        assert!(e.contains("--dir DIR"), "{e}");
    }
}

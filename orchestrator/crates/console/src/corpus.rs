//! Scoring the analyzer against syzkaller's Linux crash-report test corpus
//! (`pkg/report/testdata/linux/report/N`: a `KEY: value` header, an empty line, the
//! console log, optionally an expected `REPORT:` section).
//!
//! Used by the corpus test (with a ratchet of the figures reached) and by
//! `csdci bench corpus`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Verdict, analyze};

/// Errors reading the corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A header line is not `KEY: value`.
    #[error("{path}:{line}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
}

/// One test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// File name (a number).
    pub name: String,
    /// Expected title of the first crash; `None` when the log must not be a crash.
    pub title: Option<String>,
    /// Expected corruption verdict.
    pub corrupted: bool,
    /// The console log (carriage returns removed).
    pub log: Vec<u8>,
}

/// Reads one case file.
pub fn read_case(path: &Path) -> Result<Case, CorpusError> {
    let data = std::fs::read(path).map_err(|source| CorpusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let data: Vec<u8> = data.into_iter().filter(|&b| b != b'\r').collect();
    let mut title = None;
    let mut corrupted = false;
    let mut pos = 0;
    let mut lineno = 0;
    loop {
        lineno += 1;
        let end = memchr::memchr(b'\n', &data[pos..])
            .map(|p| pos + p)
            .unwrap_or(data.len());
        let line = String::from_utf8_lossy(&data[pos..end]);
        pos = (end + 1).min(data.len());
        if line.is_empty() || end >= data.len() {
            break;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(CorpusError::Format {
                path: path.to_path_buf(),
                line: lineno,
                msg: format!("header line {line:?} is not KEY: value"),
            });
        };
        let v = v.trim();
        match k {
            "TITLE" if !v.is_empty() => title = Some(v.to_string()),
            "CORRUPTED" => corrupted = v == "Y",
            _ => {}
        }
    }
    let mut log = data[pos..].to_vec();
    if let Some(p) = memchr::memmem::find(&log, b"\n\nREPORT:\n") {
        log.truncate(p + 1);
    } else if log.starts_with(b"REPORT:\n") {
        log.clear();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Case {
        name,
        title,
        corrupted,
        log,
    })
}

/// Reads all cases (files named by digits only) of a folder, sorted by number.
pub fn read_dir(dir: &Path) -> Result<Vec<Case>, CorpusError> {
    let rd = std::fs::read_dir(dir).map_err(|source| CorpusError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<(u64, PathBuf)> = Vec::new();
    for e in rd {
        let e = e.map_err(|source| CorpusError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            paths.push((name.parse().unwrap_or(u64::MAX), e.path()));
        }
    }
    paths.sort();
    paths.iter().map(|(_, p)| read_case(p)).collect()
}

/// Report category, from the expected title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// "BUG: soft lockup in F".
    SoftLockup,
    /// "INFO: rcu detected stall in F".
    RcuStall,
    /// "INFO: task hung in F" and friends.
    HungTask,
    /// "KASAN: ...".
    Kasan,
    /// "BUG: ..." and "kernel BUG ...".
    Bug,
    /// "WARNING ...".
    Warning,
    /// Panics.
    Panic,
    /// Everything else.
    Other,
    /// Negative tests: no crash expected.
    NoCrash,
}

impl Category {
    /// The category of an expected title.
    pub fn of(title: Option<&str>) -> Category {
        let Some(t) = title else {
            return Category::NoCrash;
        };
        if t.contains("soft lockup") {
            Category::SoftLockup
        } else if t.starts_with("INFO: rcu detected stall") {
            Category::RcuStall
        } else if t.starts_with("INFO: task hung")
            || t.starts_with("INFO: task can't die")
            || t.contains("hung_task")
        {
            Category::HungTask
        } else if t.starts_with("KASAN:") {
            Category::Kasan
        } else if t.starts_with("BUG") || t.starts_with("kernel BUG") {
            Category::Bug
        } else if t.starts_with("WARNING") {
            Category::Warning
        } else if t.to_ascii_lowercase().contains("panic") {
            Category::Panic
        } else {
            Category::Other
        }
    }

    /// Human name.
    pub fn name(self) -> &'static str {
        match self {
            Category::SoftLockup => "soft lockup",
            Category::RcuStall => "rcu stall",
            Category::HungTask => "hung task",
            Category::Kasan => "KASAN",
            Category::Bug => "BUG",
            Category::Warning => "WARNING",
            Category::Panic => "panic",
            Category::Other => "other",
            Category::NoCrash => "no-crash",
        }
    }
}

/// Agreement counts for one category (or overall).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Files.
    pub files: u64,
    /// Crash/no-crash verdict as expected.
    pub crash_agree: u64,
    /// Files where a crash is expected (title and corruption are scored on these).
    pub crashes: u64,
    /// Exact title as expected.
    pub title_agree: u64,
    /// Corruption verdict as expected.
    pub corrupted_agree: u64,
}

impl Counts {
    fn pct(n: u64, d: u64) -> f64 {
        if d == 0 {
            100.0
        } else {
            100.0 * n as f64 / d as f64
        }
    }
    /// Crash/no-crash agreement, percent of files.
    pub fn crash_pct(&self) -> f64 {
        Self::pct(self.crash_agree, self.files)
    }
    /// Exact title agreement, percent of expected crashes.
    pub fn title_pct(&self) -> f64 {
        Self::pct(self.title_agree, self.crashes)
    }
    /// Corruption agreement, percent of expected crashes.
    pub fn corrupted_pct(&self) -> f64 {
        Self::pct(self.corrupted_agree, self.crashes)
    }
}

/// A case where the analyzer disagrees.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    /// File name.
    pub name: String,
    /// Expected title.
    pub expected: Option<String>,
    /// Title found.
    pub got: Option<String>,
    /// Expected corruption.
    pub expected_corrupted: bool,
    /// Corruption found.
    pub got_corrupted: bool,
}

/// Scores of a corpus run.
#[derive(Clone, Debug, Default)]
pub struct Score {
    /// Per category.
    pub per: BTreeMap<Category, Counts>,
    /// All files.
    pub overall: Counts,
    /// Disagreements (title or crash verdict; corruption-only ones too).
    pub mismatches: Vec<Mismatch>,
}

/// Runs the analyzer over every case.
pub fn score(cases: &[Case]) -> Score {
    let mut s = Score::default();
    for c in cases {
        let a = analyze(&c.log);
        let crashed = a.verdict == Verdict::Crash;
        let cat = Category::of(c.title.as_deref());
        let expected_crash = c.title.is_some();
        for counts in [s.per.entry(cat).or_default(), &mut s.overall] {
            counts.files += 1;
            if crashed == expected_crash {
                counts.crash_agree += 1;
            }
            if expected_crash {
                counts.crashes += 1;
                if a.title == c.title {
                    counts.title_agree += 1;
                }
                if a.corrupted == c.corrupted {
                    counts.corrupted_agree += 1;
                }
            }
        }
        let title_ok = !expected_crash || a.title == c.title;
        let corrupted_ok = !expected_crash || a.corrupted == c.corrupted;
        if crashed != expected_crash || !title_ok || !corrupted_ok {
            s.mismatches.push(Mismatch {
                name: c.name.clone(),
                expected: c.title.clone(),
                got: if crashed { a.title.clone() } else { None },
                expected_corrupted: c.corrupted,
                got_corrupted: a.corrupted,
            });
        }
    }
    s
}

/// Headline figures, as kept in the ratchet file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// Crash/no-crash agreement over all files, percent.
    pub crash_agreement: f64,
    /// Exact title agreement over expected crashes, percent.
    pub title_agreement: f64,
    /// Corruption agreement over expected crashes, percent.
    pub corrupted_agreement: f64,
    /// Exact title agreement for soft lockups, percent.
    pub soft_lockup_title: f64,
    /// Exact title agreement for RCU stalls, percent.
    pub rcu_stall_title: f64,
    /// Exact title agreement for hung tasks, percent.
    pub hung_task_title: f64,
}

impl Score {
    /// The headline figures.
    pub fn figures(&self) -> Figures {
        let t = |c: Category| self.per.get(&c).map(|x| x.title_pct()).unwrap_or(100.0);
        Figures {
            crash_agreement: self.overall.crash_pct(),
            title_agreement: self.overall.title_pct(),
            corrupted_agreement: self.overall.corrupted_pct(),
            soft_lockup_title: t(Category::SoftLockup),
            rcu_stall_title: t(Category::RcuStall),
            hung_task_title: t(Category::HungTask),
        }
    }

    /// A plain-text table of the scores.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>16} {:>16} {:>16}",
            "category", "files", "crash/no-crash", "exact title", "corrupted"
        );
        let row = |out: &mut String, name: &str, c: &Counts| {
            let _ = writeln!(
                out,
                "{:<12} {:>6} {:>8}/{:<4}{:>5.1}% {:>8}/{:<4}{:>5.1}% {:>8}/{:<4}{:>5.1}%",
                name,
                c.files,
                c.crash_agree,
                c.files,
                c.crash_pct(),
                c.title_agree,
                c.crashes,
                c.title_pct(),
                c.corrupted_agree,
                c.crashes,
                c.corrupted_pct()
            );
        };
        for (cat, c) in &self.per {
            row(&mut out, cat.name(), c);
        }
        row(&mut out, "overall", &self.overall);
        out
    }
}

/// Where the vendored corpus lies relative to the workspace root.
pub const DEFAULT_DIR: &str = "orchestrator/crates/console/testdata/syzkaller/report";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_and_log() {
        let dir = std::env::temp_dir().join(format!("csdci-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("7");
        std::fs::write(
            &p,
            "TITLE: BUG: soft lockup in foo\nCORRUPTED: Y\n\n[ 1.0] line\r\n\nREPORT:\nx\n",
        )
        .unwrap();
        let c = read_case(&p).unwrap();
        assert_eq!(c.title.as_deref(), Some("BUG: soft lockup in foo"));
        assert!(c.corrupted);
        assert_eq!(c.log, b"[ 1.0] line\n");
        assert_eq!(Category::of(c.title.as_deref()), Category::SoftLockup);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

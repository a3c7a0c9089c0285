//! `jobs/*.yaml`: one nightly job per file. [`JobFile`] is the schema as
//! written (every struct denies unknown fields); [`load`] reads a file or a
//! directory into validated [`Job`]s, every problem a [`JobError`] with file,
//! line, column, the field and a fix; [`schedule`] parses cron expressions and
//! time zones; [`matrix`] expands `test:` × `matrix:` into cells, each a full
//! [`RunSpec`](crate::spec::RunSpec) checked by `RunSpec::validate`.
//!
//! This module knows nothing about HTTP, the scheduler or mail delivery: it
//! only says what a job is.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub mod bot;
pub mod load;
pub mod matrix;
pub mod schedule;

pub use load::{JobError, load_file, load_paths};
pub use matrix::Cell;
pub use schedule::Schedule;

/// An ordered YAML mapping of RunSpec field names to values, each with where
/// it was written (`test:` and `matrix:`).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(Spanned<String>, Spanned<serde_json::Value>)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of RunSpec fields (e.g. `vcpus: 8`)")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Fields, E> {
                Ok(Fields::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    let v = m.next_value::<Spanned<serde_json::Value>>()?;
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One branch or a list of branches.
#[derive(Debug, Clone, Default)]
pub struct Branches(pub Vec<String>);

impl<'de> Deserialize<'de> for Branches {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Branches;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a branch name or a list of branch names")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Branches, E> {
                Ok(Branches(vec![s.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Branches, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = s.next_element::<String>()? {
                    out.push(b);
                }
                Ok(Branches(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A job file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// `nightly` (the default); `bot` files are read by [`bot`] instead.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// The job's name (letters, digits, `-`, `_`, `.`); unique among the jobs.
    pub name: Spanned<String>,
    /// The kernel tree: a git URL (`https://`, `git://`, `ssh://`, `user@host:path`)
    /// or a local path (`~` is the home directory; relative to the job file).
    pub tree: Spanned<String>,
    /// The branch to test, or a list of branches; each is fetched every run.
    pub branch: Spanned<Branches>,
    /// A local clone of the same project whose objects csdci's clone borrows
    /// (as `git clone --reference`): a night's fetch then transfers only the
    /// new commits. Relative to the job file; `~` is the home directory.
    #[serde(default)]
    pub reference: Option<Spanned<String>>,
    /// When the job runs: a five-field cron expression (`0 2 * * *`) or a
    /// nickname (`@daily`), read in `timezone`.
    pub schedule: Spanned<String>,
    /// IANA time zone the schedule is read in (`Europe/Berlin`); UTC when absent.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// How each commit is tested: `RunSpec` fields (`vcpus`, `memory`,
    /// `duration`, `scftorture`, `config_fragments`, `accel`,
    /// `stop_after_crash_s`, `predicate`, ...); csdci's defaults for the rest.
    #[serde(default)]
    pub test: Option<Spanned<Fields>>,
    /// Lists of values for any `RunSpec` field: one cell per combination,
    /// each cell `test:` with those fields replaced.
    #[serde(default)]
    pub matrix: Option<Spanned<Fields>>,
    /// Runs per cell each night (default 1).
    #[serde(default)]
    pub runs: Option<Spanned<u32>>,
    /// A shell command that tests each commit instead of the QEMU pipeline,
    /// as `csdci bisect --run` does: run in csdci's checkout of the commit,
    /// exit 0 good, 125 cannot be tested, 1-127 otherwise bad. A relative
    /// script is found beside the job file. Replaces `test` and `matrix`.
    #[serde(default)]
    pub run: Option<Spanned<String>>,
    /// Clean nights in a row (each with at least as many runs as the nights
    /// that showed it) after which an open regression is marked fixed
    /// (default 3).
    #[serde(default)]
    pub fixed_after: Option<Spanned<u32>>,
    /// Whether and how a new failure is bisected.
    #[serde(default)]
    pub bisect: Option<BisectFile>,
    /// Who is told about new regressions.
    #[serde(default)]
    pub notify: Option<NotifyFile>,
    /// How long run logs are kept: a number and a unit, `s`, `m`, `h`, `d`
    /// or `w` (`30d`, `12h`); default `30d`.
    #[serde(default)]
    pub keep: Option<Spanned<String>>,
    /// Where commits are tested: a LAVA lab boots them instead of QEMU on
    /// this host (csdci still builds them and judges the console).
    #[serde(default)]
    pub lab: Option<LabFile>,
}

/// `lab:` as written. The API token never lives in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// The kind of lab: `lava`.
    pub kind: Spanned<String>,
    /// The LAVA server (`http://lava.example.org/`).
    pub url: Spanned<String>,
    /// A file holding the API token (relative to the job file; `~` is the
    /// home directory); none: the `CSDCI_LAVA_TOKEN` environment variable.
    #[serde(default)]
    pub token_file: Option<Spanned<String>>,
    /// The device type jobs ask for (default `qemu`).
    #[serde(default)]
    pub device_type: Option<Spanned<String>>,
    /// Device tags the jobs need.
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    /// The URL under which csdci's `<data-dir>/lava/artifacts` is served to
    /// the lab's workers (default: `file://` URLs, for a worker on this host).
    #[serde(default)]
    pub artifacts_url: Option<Spanned<String>>,
}

/// `bisect:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BisectFile {
    /// Bisect new failures (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Posterior probability at which the culprit is named, in (0.5, 1)
    /// (default 0.99, as `csdci bisect --confidence`).
    #[serde(default)]
    pub confidence: Option<Spanned<f64>>,
    /// Most test runs one bisection may spend (default 100).
    #[serde(default)]
    pub max_runs: Option<Spanned<u32>>,
    /// Runs of the failing head that verify it fails before bisecting
    /// (default: as `csdci bisect`, 20 with the QEMU pipeline, 0 with `run`).
    #[serde(default)]
    pub verify_runs: Option<Spanned<u32>>,
}

fn yes() -> bool {
    true
}

/// `notify:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    /// Mail recipients (`name@example.org` or `Name <name@example.org>`).
    pub to: Vec<Spanned<String>>,
    /// The sender address.
    pub from: Spanned<String>,
    /// The SMTP relay mail is sent through.
    pub smtp: SmtpFile,
}

/// `notify.smtp:` as written. Credentials never live in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpFile {
    /// The relay: `smtp://host:port` (port 25 when left out).
    pub url: Spanned<String>,
    /// Upgrade the connection with STARTTLS (default true); false sends in
    /// the clear (a relay on localhost).
    #[serde(default = "yes")]
    pub starttls: bool,
    /// User name to log in with (none: no login).
    #[serde(default)]
    pub user: Option<String>,
    /// Name of the environment variable that holds the password (the
    /// password itself is never written in a job file).
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// Line and column of the name in the file.
    pub name_at: (u64, u64),
    /// The tree: a URL, or a local path made absolute.
    pub tree: String,
    /// Branches fetched and tested every run.
    pub branches: Vec<String>,
    /// A local repository lending its objects to csdci's clone.
    pub reference: Option<PathBuf>,
    /// When it runs.
    pub schedule: Schedule,
    /// The matrix cells, each a full RunSpec (one cell without a matrix).
    pub cells: Vec<Cell>,
    /// Runs per cell.
    pub runs: u32,
    /// The `run` command (absolute script path), testing commits instead of
    /// the QEMU pipeline; the job then has one cell, `default`.
    pub command: Option<String>,
    /// Clean nights after which an open regression is fixed.
    pub fixed_after: u32,
    /// Bisection of new failures.
    pub bisect: BisectPolicy,
    /// Mail notification, if any.
    pub notify: Option<Notify>,
    /// How long run logs are kept.
    pub keep: Duration,
    /// The LAVA lab that boots the commits (none: QEMU on this host).
    pub lab: Option<crate::testers::lava::Lab>,
}

/// Validated `bisect:`.
#[derive(Debug, Clone, PartialEq)]
pub struct BisectPolicy {
    /// Bisect new failures.
    pub enabled: bool,
    /// Confidence at which the culprit is named.
    pub confidence: f64,
    /// Most runs per bisection.
    pub max_runs: u32,
    /// Runs verifying the failing head first (`None`: csdci bisect's default).
    pub verify_runs: Option<u32>,
}

impl Default for BisectPolicy {
    fn default() -> Self {
        BisectPolicy {
            enabled: true,
            confidence: 0.99,
            max_runs: 100,
            verify_runs: None,
        }
    }
}

/// Validated `notify:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// STARTTLS on.
    pub starttls: bool,
    /// Login user.
    pub user: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
}

/// The known names closest to `word` (Levenshtein distance at most a third
/// of the word's length, at least 1; case-insensitive), the closest first.
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    let max = (w.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(&w, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (a transposition counts as one edit).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Parses `keep:` (`30d`, `12h`, `2w`, `90m`, `3600s`).
pub fn parse_keep(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}`: use a number and a unit: s, m, h, d or w (e.g. `30d`)");
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("`{s}`: must be longer than 0"));
    }
    Ok(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["vcpus", "memory_mb", "duration_s", "scftorture"];
        assert_eq!(suggest("vpcus", known), Some("vcpus"));
        assert_eq!(suggest("vcpu", known), Some("vcpus"));
        assert_eq!(suggest("scftortur", known), Some("scftorture"));
        assert_eq!(suggest("banana", known), None);
    }

    #[test]
    fn keep_durations() {
        assert_eq!(parse_keep("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_keep("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_keep("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_keep("30").is_err());
        assert!(parse_keep("d").is_err());
        assert!(parse_keep("0d").is_err());
        assert!(parse_keep("3y").is_err());
    }
}

//! Patch-bot jobs: `jobs/*.yaml` files with `kind: bot` (see
//! [`crate::bot`] for what the bot does with them). [`BotFile`] is the
//! schema as written (unknown fields are errors), [`load_dir`] /
//! [`load_file`] give validated [`BotJob`]s or [`JobError`]s with line,
//! column and a fix. Nightly commands skip these files ([`is_bot_file`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::{Branches, Fields, JobError, SmtpFile, parse_keep};
use crate::bot::inbox::Source;
use crate::sandbox::Limits;

/// A bot job file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotFile {
    /// `bot`.
    pub kind: Spanned<String>,
    /// The job's name (letters, digits, `-`, `_`, `.`).
    pub name: Spanned<String>,
    /// A public-inbox URL (`https://lore.kernel.org/linux-kernel`).
    #[serde(default)]
    pub inbox: Option<Spanned<String>>,
    /// A local mbox file instead (relative to the job file).
    #[serde(default)]
    pub mbox: Option<Spanned<String>>,
    /// A local maildir instead (relative to the job file).
    #[serde(default)]
    pub maildir: Option<Spanned<String>>,
    /// The tree series are applied to: a git URL or a local path.
    pub tree: Spanned<String>,
    /// The base branch (the first is used when a series has no
    /// `base-commit:`).
    pub branch: Spanned<Branches>,
    /// A local clone lending its objects.
    #[serde(default)]
    pub reference: Option<Spanned<String>>,
    /// How often the inbox is polled (`5m`; default `10m`).
    #[serde(default)]
    pub poll: Option<Spanned<String>>,
    /// How long an incomplete series waits before it is reported as such
    /// (default `6h`).
    #[serde(default)]
    pub incomplete_after: Option<Spanned<String>>,
    /// Test only series touching one of these paths (globs:
    /// `kernel/smp.c`, `include/linux/smp*.h`).
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
    /// ... or whose subject contains one of these words (`smp:`,
    /// `scftorture`; case-insensitive). No `paths` and no `subjects`: every
    /// series.
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    /// Test series with the QEMU pipeline: RunSpec fields, as a nightly
    /// job's `test:` (`vcpus: 4`, `duration: 20`, `predicate: csd`). Each
    /// kernel build runs in the sandbox; the guest is QEMU. Instead of
    /// `build`/`run`.
    #[serde(default)]
    pub test: Option<Spanned<Fields>>,
    /// The build command, run in the sandbox from the tree's top
    /// (default `make`; with `run`, not with `test`).
    #[serde(default)]
    pub build: Option<Spanned<String>>,
    /// The test command, in the sandbox: exit 0 good, 125 cannot test,
    /// other bad (give `run` or `test`).
    #[serde(default)]
    pub run: Option<Spanned<String>>,
    /// Runs of the tip and of the base (default 3).
    #[serde(default)]
    pub runs: Option<Spanned<u32>>,
    /// The sandbox's limits.
    #[serde(default)]
    pub sandbox: Option<SandboxFile>,
    /// Replying.
    #[serde(default)]
    pub reply: Option<ReplyFile>,
}

/// `sandbox:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxFile {
    /// Wall time of one build or test (`30m`).
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Address space per process, MiB.
    #[serde(default)]
    pub memory_mb: Option<Spanned<u64>>,
    /// Processes at once.
    #[serde(default)]
    pub processes: Option<Spanned<u32>>,
    /// Largest file written, MiB.
    #[serde(default)]
    pub file_size_mb: Option<Spanned<u64>>,
}

/// `reply:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyFile {
    /// The sender.
    pub from: Spanned<String>,
    /// The list's address, copied on every reply.
    #[serde(default)]
    pub list: Option<Spanned<String>>,
    /// Add `Tested-by:` to clean and fixing results (default false).
    #[serde(default)]
    pub tested_by: bool,
    /// Most replies per hour (default 20).
    #[serde(default)]
    pub max_per_hour: Option<Spanned<u32>>,
    /// The SMTP relay (none: replies are only written to the store).
    #[serde(default)]
    pub smtp: Option<SmtpFile>,
}

/// How a bot job tests a series.
#[derive(Debug, Clone, PartialEq)]
pub enum Testing {
    /// `build:` and `run:` shell commands in the sandbox.
    Commands { build: String, run: String },
    /// The QEMU pipeline with this spec (`test:`); kernel builds in the
    /// sandbox.
    Qemu(crate::spec::RunSpec),
}

impl Testing {
    /// What the reply says was tested.
    pub fn describe(&self) -> String {
        match self {
            Testing::Commands { build, run } => format!("`{build}` then `{run}` in a sandbox"),
            Testing::Qemu(s) => format!(
                "QEMU, {} vCPUs, {} MiB, scftorture {} s{}, predicate {} (kernel builds in a sandbox)",
                s.vcpus,
                s.memory_mb,
                s.duration_s,
                if s.scftorture.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", s.scftorture)
                },
                s.predicate
            ),
        }
    }
}

/// Validated `reply:`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyPolicy {
    pub from: String,
    pub list: Option<String>,
    pub tested_by: bool,
    pub max_per_hour: u32,
    /// Where replies are sent.
    pub smtp: Option<super::Notify>,
}

/// A validated bot job.
#[derive(Debug, Clone)]
pub struct BotJob {
    pub file: PathBuf,
    pub name: String,
    pub source: Source,
    /// URL, or a local path made absolute.
    pub tree: String,
    pub branches: Vec<String>,
    pub reference: Option<PathBuf>,
    pub poll: Duration,
    pub incomplete_after: Duration,
    pub paths: Vec<glob::Pattern>,
    pub subjects: Vec<String>,
    /// The commands or the RunSpec series are tested with.
    pub testing: Testing,
    pub runs: u32,
    pub limits: Limits,
    pub reply: Option<ReplyPolicy>,
}

impl BotJob {
    /// Whether a series touching `paths` titled `subject` is for this job.
    pub fn wants(&self, paths: &[&str], subject: &str) -> bool {
        if self.paths.is_empty() && self.subjects.is_empty() {
            return true;
        }
        let s = subject.to_lowercase();
        self.paths
            .iter()
            .any(|p| paths.iter().any(|f| p.matches(f)))
            || self.subjects.iter().any(|w| s.contains(w.as_str()))
    }
}

#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    kind: Option<String>,
}

/// The `kind:` of a job file's text, if it says one.
pub fn kind_of(text: &str) -> Option<String> {
    serde_saphyr::from_str::<Peek>(text)
        .ok()?
        .kind
        .map(|k| k.trim().to_string())
}

/// Whether `path` is a `kind: bot` job file.
pub fn is_bot_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| kind_of(&t))
        .as_deref()
        == Some("bot")
}

/// Every `kind: bot` job file in `dir` (or `dir` itself, a file).
pub fn load_dir(dir: &Path) -> Vec<(PathBuf, Result<BotJob, Vec<JobError>>)> {
    let mut files: Vec<PathBuf> = if dir.is_dir() {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|f| {
                matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    && is_bot_file(f)
            })
            .collect()
    } else {
        vec![dir.to_path_buf()]
    };
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let r = load_file(&f);
            (f, r)
        })
        .collect()
}

struct Cx<'a> {
    file: &'a Path,
    errors: Vec<JobError>,
}

impl Cx<'_> {
    fn at(&mut self, loc: &Location, field: &str, message: impl Into<String>) {
        self.errors.push(JobError {
            file: self.file.to_path_buf(),
            line: loc.line().max(1),
            column: loc.column().max(1),
            field: field.into(),
            message: message.into(),
        });
    }
}

fn local(dir: &Path, p: &str) -> PathBuf {
    let p = p.trim();
    match p.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().map_or(PathBuf::from(p), |h| h.join(rest)),
        None => std::path::absolute(dir.join(p)).unwrap_or_else(|_| dir.join(p)),
    }
}

/// `test:` read as a RunSpec (field names and values checked, fragments
/// relative to the job file, [`crate::spec::RunSpec::validate`]).
fn test_spec(cx: &mut Cx<'_>, dir: &Path, t: &Spanned<Fields>) -> crate::spec::RunSpec {
    let mut map = serde_json::Map::new();
    for (k, v) in &t.value.0 {
        let field = format!("test.{}", k.value);
        let Some(c) = super::matrix::canonical(&k.value) else {
            cx.at(
                &k.referenced,
                &field,
                format!(
                    "unknown field `{}`: `test` takes RunSpec fields: {}",
                    k.value,
                    super::matrix::fields().join(", ")
                ),
            );
            continue;
        };
        let mut one = serde_json::Map::new();
        one.insert(c.clone(), v.value.clone());
        if let Err(e) = serde_json::from_value::<crate::spec::RunSpec>(one.into()) {
            cx.at(&v.referenced, &field, e.to_string());
            continue;
        }
        if map.insert(c.clone(), v.value.clone()).is_some() {
            cx.at(
                &k.referenced,
                &field,
                format!("`{c}` is set twice in `test`; keep one"),
            );
        }
    }
    let mut spec: crate::spec::RunSpec = serde_json::from_value(map.into()).unwrap_or_default();
    for frag in &mut spec.config_fragments {
        if frag.is_relative() {
            *frag = dir.join(&*frag);
        }
    }
    if let Err(e) = spec.validate() {
        cx.at(&t.referenced, "test", e.to_string());
    }
    spec
}

/// Reads and checks one bot job file.
pub fn load_file(path: &Path) -> Result<BotJob, Vec<JobError>> {
    let one = |m: String| {
        vec![JobError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: "file".into(),
            message: m,
        }]
    };
    let text = std::fs::read_to_string(path).map_err(|e| one(e.to_string()))?;
    let f: BotFile = serde_saphyr::from_str(&text)
        .map_err(|e| vec![super::load::yaml_error(path, &text, &e)])?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut cx = Cx {
        file: path,
        errors: Vec::new(),
    };
    if f.kind.value.trim() != "bot" {
        cx.at(
            &f.kind.referenced,
            "kind",
            "a bot job file says `kind: bot`",
        );
    }
    let name = f.name.value.trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        cx.at(
            &f.name.referenced,
            "name",
            format!("`{name}`: use letters, digits, `-`, `_` and `.` (e.g. `smp-bot`)"),
        );
    }
    let sources: Vec<(&Spanned<String>, &str)> = [
        (f.inbox.as_ref(), "inbox"),
        (f.mbox.as_ref(), "mbox"),
        (f.maildir.as_ref(), "maildir"),
    ]
    .into_iter()
    .filter_map(|(s, n)| s.map(|s| (s, n)))
    .collect();
    let source = match sources.as_slice() {
        [(s, "inbox")] => {
            let u = s.value.trim().trim_end_matches('/').to_string();
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                cx.at(
                    &s.referenced,
                    "inbox",
                    format!("`{u}`: give the public-inbox's http(s) URL (`https://lore.kernel.org/linux-kernel`)"),
                );
            }
            Source::PublicInbox(u)
        }
        [(s, "mbox")] => Source::Mbox(local(dir, &s.value)),
        [(s, _)] => Source::Maildir(local(dir, &s.value)),
        _ => {
            cx.at(
                &f.name.referenced,
                "inbox",
                "give exactly one of `inbox` (a public-inbox URL), `mbox` or `maildir`",
            );
            Source::Mbox(PathBuf::new())
        }
    };
    let tree = f.tree.value.trim().to_string();
    let tree = if tree.contains("://") || (tree.contains('@') && tree.contains(':')) {
        tree
    } else if tree.is_empty() {
        cx.at(
            &f.tree.referenced,
            "tree",
            "empty: give a git URL or a path",
        );
        tree
    } else {
        local(dir, &tree).display().to_string()
    };
    let branches: Vec<String> = f
        .branch
        .value
        .0
        .iter()
        .map(|b| b.trim().to_string())
        .collect();
    if branches.is_empty() || branches.iter().any(|b| b.is_empty() || b.contains(' ')) {
        cx.at(
            &f.branch.referenced,
            "branch",
            "give the base branch (`master`) or a list",
        );
    }
    let reference = f.reference.as_ref().map(|r| local(dir, &r.value));
    let mut dur = |v: &Option<Spanned<String>>, field: &str, default: u64| match v {
        Some(s) => parse_keep(&s.value).unwrap_or_else(|m| {
            cx.at(&s.referenced, field, m);
            Duration::from_secs(default)
        }),
        None => Duration::from_secs(default),
    };
    let poll = dur(&f.poll, "poll", 600);
    let incomplete_after = dur(&f.incomplete_after, "incomplete_after", 6 * 3600);
    let mut limits = Limits::default();
    if let Some(s) = &f.sandbox {
        limits.wall = dur(&s.timeout, "sandbox.timeout", 3600);
        limits.cpu_s = limits.wall.as_secs().max(1);
        if let Some(m) = &s.memory_mb {
            limits.memory = m.value.max(16) << 20;
        }
        if let Some(p) = &s.processes {
            limits.processes = p.value.max(4);
        }
        if let Some(m) = &s.file_size_mb {
            limits.file_size = m.value.max(1) << 20;
        }
    }
    let mut paths = Vec::new();
    for p in &f.paths {
        match glob::Pattern::new(p.value.trim()) {
            Ok(g) => paths.push(g),
            Err(e) => cx.at(&p.referenced, "paths", format!("`{}`: {e}", p.value)),
        }
    }
    let subjects = f
        .subjects
        .iter()
        .map(|s| s.value.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let testing = match (&f.test, &f.run) {
        (Some(t), None) => {
            if let Some(b) = &f.build {
                cx.at(
                    &b.referenced,
                    "build",
                    "with `test` the kernel is built by csdci; drop `build` (or use `run` instead of `test`)",
                );
            }
            Testing::Qemu(test_spec(&mut cx, dir, t))
        }
        (None, Some(r)) => {
            if r.value.trim().is_empty() {
                cx.at(
                    &r.referenced,
                    "run",
                    "empty: give the test command (`./run-tests`)",
                );
            }
            Testing::Commands {
                build: f
                    .build
                    .as_ref()
                    .map_or_else(|| "make".to_string(), |b| b.value.clone()),
                run: r.value.clone(),
            }
        }
        (Some(t), Some(_)) => {
            cx.at(
                &t.referenced,
                "test",
                "give `test` (the QEMU pipeline) or `run` (a command), not both",
            );
            Testing::Qemu(crate::spec::RunSpec::default())
        }
        (None, None) => {
            cx.at(
                &f.name.referenced,
                "test",
                "say how series are tested: `test:` (RunSpec fields, e.g. `{vcpus: 4, duration: 20}`) or `run:` (a command)",
            );
            Testing::Qemu(crate::spec::RunSpec::default())
        }
    };
    let runs = match &f.runs {
        Some(r) if r.value == 0 || r.value > 1000 => {
            cx.at(&r.referenced, "runs", "between 1 and 1000");
            3
        }
        Some(r) => r.value,
        None => 3,
    };
    let reply = f.reply.as_ref().map(|r| {
        let smtp = r.smtp.as_ref().and_then(|s| {
            let url = s.url.value.trim();
            let Some(hp) = url.strip_prefix("smtp://") else {
                cx.at(
                    &s.url.referenced,
                    "reply.smtp.url",
                    "use `smtp://host:port`",
                );
                return None;
            };
            let (host, port) = match hp.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().unwrap_or(25)),
                None => (hp.to_string(), 25),
            };
            Some(super::Notify {
                to: Vec::new(),
                from: r.from.value.clone(),
                host,
                port,
                starttls: s.starttls,
                user: s.user.clone(),
                password_env: s.password_env.as_ref().map(|p| p.value.clone()),
            })
        });
        if !r.from.value.contains('@') {
            cx.at(
                &r.from.referenced,
                "reply.from",
                "give an address (`csdci <ci@example.org>`)",
            );
        }
        ReplyPolicy {
            from: r.from.value.trim().to_string(),
            list: r.list.as_ref().map(|l| l.value.trim().to_string()),
            tested_by: r.tested_by,
            max_per_hour: r.max_per_hour.as_ref().map_or(20, |m| m.value),
            smtp,
        }
    });
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    Ok(BotJob {
        file: path.to_path_buf(),
        name,
        source,
        tree,
        branches,
        reference,
        poll,
        incomplete_after,
        paths,
        subjects,
        testing,
        runs,
        limits,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<BotJob, Vec<JobError>> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bot.yaml");
        std::fs::write(&f, text).unwrap();
        load_file(&f)
    }

    const HEAD: &str = "kind: bot\nname: smp-bot\ninbox: https://lore.kernel.org/linux-kernel\ntree: https://example.org/linux.git\nbranch: master\n";

    #[test]
    fn test_is_the_qemu_pipeline_with_a_checked_runspec() {
        let j = load(&format!(
            "{HEAD}paths: [kernel/smp.c, kernel/scftorture.c, \"include/linux/smp*.h\"]\ntest: {{vcpus: 8, duration: 60, scftorture: \"nthreads=16\", predicate: csd}}\nruns: 3\nincomplete_after: 6h\nreply: {{from: \"csdci bot <ci@example.org>\", list: linux-kernel@vger.kernel.org,\n        smtp: {{url: \"smtp://localhost:25\"}}}}\n"
        ))
        .unwrap();
        let Testing::Qemu(spec) = &j.testing else {
            panic!("{:?}", j.testing)
        };
        assert_eq!((spec.vcpus, spec.duration_s), (8, 60));
        assert_eq!(spec.predicate, "csd");
        assert_eq!(j.incomplete_after, Duration::from_secs(6 * 3600));
        assert!(j.testing.describe().starts_with("QEMU, 8 vCPUs"));
        // The default wait for missing patches.
        let j = load(&format!("{HEAD}run: ./t.sh\n")).unwrap();
        assert_eq!(j.incomplete_after, Duration::from_secs(6 * 3600));
        assert_eq!(
            j.testing,
            Testing::Commands {
                build: "make".into(),
                run: "./t.sh".into()
            }
        );
    }

    #[test]
    fn test_errors_name_the_field_and_the_fix() {
        let msg = |text: &str| {
            load(text)
                .unwrap_err()
                .iter()
                .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let m = msg(&format!("{HEAD}test: {{vcpu: 4}}\n"));
        assert!(m.contains("test.vcpu: unknown field `vcpu`"), "{m}");
        let m = msg(&format!("{HEAD}test: {{vcpus: 0}}\n"));
        assert!(m.contains("6:") && m.contains("test:"), "{m}");
        let m = msg(&format!("{HEAD}test: {{vcpus: 4}}\nrun: ./t.sh\n"));
        assert!(m.contains("not both"), "{m}");
        let m = msg(HEAD);
        assert!(m.contains("`test:`") && m.contains("`run:`"), "{m}");
        let m = msg(&format!("{HEAD}test: {{vcpus: 4}}\nbuild: make\n"));
        assert!(
            m.contains("build: with `test` the kernel is built by csdci"),
            "{m}"
        );
    }
}

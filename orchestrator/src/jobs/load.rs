//! Reading job files: bytes → UTF-8 → YAML (serde-saphyr, which gives every
//! error a line and column) → [`JobFile`] → checked [`Job`]. Every problem is
//! a [`JobError`] naming the file, line, column and field, with a fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_saphyr::{Location, Spanned};

use super::schedule::{Schedule, parse_tz};
use super::{BisectPolicy, Cell, Fields, Job, JobFile, Notify, matrix, parse_keep, suggest};
use crate::spec::RunSpec;

/// One problem in a job file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.line_text())]
pub struct JobError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file could not be read at all).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// The field (`test.vcpus`, `schedule`), `yaml` for a syntax error,
    /// `file` for a file that is empty or not text.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl JobError {
    /// `FILE:LINE:COLUMN: field: message`.
    pub fn line_text(&self) -> String {
        let f = self.file.display();
        if self.line == 0 {
            format!("{f}: {}: {}", self.field, self.message)
        } else {
            format!(
                "{f}:{}:{}: {}: {}",
                self.line, self.column, self.field, self.message
            )
        }
    }
}

struct Ctx<'a> {
    file: &'a Path,
    errors: Vec<JobError>,
}

impl Ctx<'_> {
    fn at(&mut self, loc: &Location, field: &str, message: impl Into<String>) {
        self.errors.push(JobError {
            file: self.file.to_path_buf(),
            line: loc.line().max(1),
            column: loc.column().max(1),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// Reads the job files named: a file, or a directory (its `*.yaml` and
/// `*.yml` files, sorted). Each file gives its job or its errors; a name used
/// by two files is an error in the second.
pub fn load_paths(paths: &[PathBuf]) -> Vec<(PathBuf, Result<Job, Vec<JobError>>)> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                files.push((
                    p.clone(),
                    Err(vec![JobError {
                        file: p.clone(),
                        line: 0,
                        column: 0,
                        field: "file".into(),
                        message: "no *.yaml job files in this directory".into(),
                    }]),
                ));
            }
            for f in found {
                // Patch-bot jobs (`kind: bot`) are read by `jobs::bot`.
                if super::bot::is_bot_file(&f) {
                    continue;
                }
                let r = load_file(&f);
                files.push((f, r));
            }
        } else {
            files.push((p.clone(), load_file(p)));
        }
    }
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (f, r) in &mut files {
        if let Ok(job) = r {
            if let Some(first) = seen.get(&job.name) {
                let (line, column) = job.name_at;
                *r = Err(vec![JobError {
                    file: f.clone(),
                    line,
                    column,
                    field: "name".into(),
                    message: format!(
                        "`{}` is already the name of the job in {}; give each job its own name",
                        job.name,
                        first.display()
                    ),
                }]);
            } else {
                seen.insert(job.name.clone(), f.clone());
            }
        }
    }
    files
}

/// Line and column (1-based) of byte offset `at` in `bytes`.
fn position(bytes: &[u8], at: usize) -> (u64, u64) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, (at - start) as u64 + 1)
}

/// Reads and checks one job file.
pub fn load_file(path: &Path) -> Result<Job, Vec<JobError>> {
    let whole = |line, column, field: &str, message: String| {
        vec![JobError {
            file: path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message,
        }]
    };
    let bytes = std::fs::read(path).map_err(|e| whole(0, 0, "file", e.to_string()))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let (line, column) = position(&bytes, at);
            return Err(whole(
                line,
                column,
                "file",
                format!(
                    "not UTF-8 text (byte 0x{:02x}); save the file as UTF-8",
                    bytes[at]
                ),
            ));
        }
    };
    let content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !content {
        return Err(whole(
            1,
            1,
            "file",
            "empty job file: a job needs at least `name`, `tree`, `branch` and `schedule` (see jobs/README.md)".into(),
        ));
    }
    match super::bot::kind_of(text).as_deref() {
        None | Some("nightly") => {}
        Some("bot") => {
            return Err(whole(
                1,
                1,
                "kind",
                "a patch-bot job (`kind: bot`): `csdci bot run --jobs DIR` reads it; nightly commands skip it".into(),
            ));
        }
        Some(k) => {
            return Err(whole(
                1,
                1,
                "kind",
                format!("`{k}`: use `nightly` (the default) or `bot`"),
            ));
        }
    }
    let file: JobFile =
        serde_saphyr::from_str(text).map_err(|e| vec![yaml_error(path, text, &e)])?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    check(path, dir, file)
}

/// The dotted path of the key written on `line` (1-based), from indentation.
fn key_path(text: &str, line: u64) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let key_of = |l: &str| -> Option<(usize, String)> {
        let trimmed = l.trim_start();
        let indent = l.len() - trimmed.len();
        let t = trimmed.trim_start_matches("- ");
        let indent = indent + (trimmed.len() - t.len());
        if t.starts_with('#') {
            return None;
        }
        let (k, _) = t.split_once(':')?;
        let k = k.trim().trim_matches(['"', '\'']);
        (!k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c)))
            .then(|| (indent, k.to_string()))
    };
    let (mut indent, key) = key_of(lines.get(idx)?)?;
    let mut path = vec![key];
    for l in lines[..idx].iter().rev() {
        if let Some((i, k)) = key_of(l)
            && i < indent
        {
            path.push(k);
            indent = i;
        }
        if indent == 0 {
            break;
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// Backticked words of `s`.
fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A parse error as a [`JobError`] with a fix.
pub(crate) fn yaml_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> JobError {
    let loc = e.location();
    let (line, column) = loc.map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    let plain = e.without_snippet().to_string();
    let mut msg = plain.lines().next().unwrap_or("").trim().to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    let msg = msg.trim_end_matches([',', '.']).to_string();
    let field_here = key_path(text, line);
    let serde_kind = [
        "unknown field",
        "missing field",
        "invalid type",
        "invalid value",
        "invalid length",
        "duplicate field",
        "unknown variant",
        "invalid ",
    ]
    .iter()
    .any(|k| msg.starts_with(k))
        || msg.contains(": `");
    let mut field = if serde_kind {
        field_here.clone().unwrap_or_else(|| "yaml".into())
    } else {
        "yaml".into()
    };
    let message = if let Some(rest) = msg.strip_prefix("unknown field ") {
        let unknown = backticked(rest).first().cloned().unwrap_or_default();
        let list = rest
            .split_once("expected one of ")
            .or_else(|| rest.split_once("expected "))
            .map_or("", |(_, l)| l);
        let expected: Vec<&str> = list
            .split(", ")
            .map(|w| w.trim().trim_matches('`'))
            .filter(|w| !w.is_empty())
            .collect();
        if unknown == "password" {
            "the password never goes in the job file: set `password_env: NAME` and put the password in the environment variable NAME".to_string()
        } else if let Some(s) = suggest(&unknown, expected.iter().copied()) {
            format!("unknown field `{unknown}`, did you mean `{s}`?")
        } else {
            format!(
                "unknown field `{unknown}`; the fields here are {}",
                expected
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    } else if let Some(rest) = msg.strip_prefix("missing field ") {
        let name = backticked(rest).first().cloned().unwrap_or_default();
        field = name.clone();
        let example = match name.as_str() {
            "name" => "name: csd-nightly",
            "tree" => "tree: https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git",
            "branch" => "branch: master",
            "schedule" => "schedule: \"0 2 * * *\"",
            "to" => "to: [maintainer@example.org]",
            "from" => "from: csdci@example.org",
            "smtp" => "smtp: {url: \"smtp://localhost:25\"}",
            "url" => "url: \"smtp://mail.example.org:587\"",
            _ => "",
        };
        if example.is_empty() {
            format!("missing field `{name}`")
        } else {
            format!("missing field `{name}`: add e.g. `{example}`")
        }
    } else if field == "yaml" {
        format!("{msg} (YAML syntax: check indentation, quoting and `key: value` pairs)")
    } else {
        // Name the value written there (`runs: lots` → "invalid u32: `lots`").
        let value = text
            .lines()
            .nth(usize::try_from(line).unwrap_or(1).saturating_sub(1))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty() && !msg.contains(*v));
        match value {
            Some(v) => format!("{msg}: `{v}`"),
            None => msg,
        }
    };
    JobError {
        file: path.to_path_buf(),
        line,
        column,
        field,
        message,
    }
}

/// A field of `test:`/`matrix:` checked: its RunSpec name, or an error.
fn spec_key(cx: &mut Ctx, section: &str, key: &Spanned<String>) -> Option<String> {
    match matrix::canonical(&key.value) {
        Some(c) => Some(c),
        None => {
            let names = matrix::names();
            let msg = match suggest(&key.value, names.iter().map(String::as_str)) {
                Some(s) => format!("unknown field `{}`, did you mean `{s}`?", key.value),
                None => format!(
                    "unknown field `{}`: `{section}` takes RunSpec fields: {}",
                    key.value,
                    matrix::fields().join(", ")
                ),
            };
            let field = format!("{section}.{}", key.value);
            cx.at(&key.referenced, &field, msg);
            None
        }
    }
}

/// A value of one RunSpec field read as that field (type errors located).
fn check_value(cx: &mut Ctx, field: &str, canon: &str, v: &Spanned<Value>) -> bool {
    let mut m = Map::new();
    m.insert(canon.to_string(), v.value.clone());
    match serde_json::from_value::<RunSpec>(Value::Object(m)) {
        Ok(_) => true,
        Err(e) => {
            cx.at(&v.referenced, field, e.to_string());
            false
        }
    }
}

/// The RunSpec field a `RunSpec::validate` message's flag names.
fn flag_field(msg: &str) -> Option<(String, String)> {
    let (flag, rest) = msg.split_once(' ')?;
    let f = flag.strip_prefix("--")?.replace('-', "_");
    let field = match f.as_str() {
        "memory" => "memory_mb".to_string(),
        "duration" => "duration_s".to_string(),
        "config_fragment" => "config_fragments".to_string(),
        "stop_after_crash" => "stop_after_crash_s".to_string(),
        _ => f,
    };
    Some((field, rest.to_string()))
}

fn check(path: &Path, dir: &Path, f: JobFile) -> Result<Job, Vec<JobError>> {
    let mut cx = Ctx {
        file: path,
        errors: Vec::new(),
    };
    let name = f.name.value.trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        cx.at(
            &f.name.referenced,
            "name",
            format!("`{name}`: use letters, digits, `-`, `_` and `.` (e.g. `csd-nightly`)"),
        );
    }
    let tree = f.tree.value.trim().to_string();
    let is_url = tree.contains("://") || (tree.contains('@') && tree.contains(':'));
    let tree = if tree.is_empty() {
        cx.at(
            &f.tree.referenced,
            "tree",
            "empty: give a git URL or a path to a kernel tree",
        );
        tree
    } else if is_url {
        tree
    } else if let Some(rest) = tree.strip_prefix("~/") {
        dirs::home_dir().map_or(tree.clone(), |h| h.join(rest).display().to_string())
    } else if Path::new(&tree).is_absolute() {
        tree
    } else {
        std::path::absolute(dir.join(&tree)).map_or(tree.clone(), |p| p.display().to_string())
    };
    let branches: Vec<String> = f
        .branch
        .value
        .0
        .iter()
        .map(|b| b.trim().to_string())
        .collect();
    if branches.is_empty()
        || branches
            .iter()
            .any(|b| b.is_empty() || b.contains(char::is_whitespace))
    {
        cx.at(&f.branch.referenced, "branch", "give a branch name (`master`) or a list (`[master, next]`) without empty names or spaces");
    }
    let reference = f.reference.as_ref().and_then(|r| {
        let t = r.value.trim();
        let p = match t.strip_prefix("~/") {
            Some(rest) => dirs::home_dir().map_or(PathBuf::from(t), |h| h.join(rest)),
            None => dir.join(t),
        };
        if p.join(".git").exists() || p.join("objects").is_dir() {
            Some(p)
        } else {
            cx.at(
                &r.referenced,
                "reference",
                format!(
                    "`{t}`: {} is not a local git repository; give the path of a clone of the tree, or leave `reference` out",
                    p.display()
                ),
            );
            None
        }
    });
    let tz = match &f.timezone {
        Some(t) => match parse_tz(t.value.trim()) {
            Ok(tz) => Some(tz),
            Err(m) => {
                cx.at(&t.referenced, "timezone", m);
                None
            }
        },
        None => Some(chrono_tz::Tz::UTC),
    };
    let schedule = match Schedule::parse(&f.schedule.value, tz.unwrap_or(chrono_tz::Tz::UTC)) {
        Ok(s) => Some(s),
        Err(m) => {
            cx.at(&f.schedule.referenced, "schedule", m);
            None
        }
    };
    let runs = match &f.runs {
        Some(r) if r.value == 0 => {
            cx.at(
                &r.referenced,
                "runs",
                "0: each cell runs at least once (e.g. `runs: 3`)",
            );
            1
        }
        Some(r) => r.value,
        None => 1,
    };
    let mut bisect = BisectPolicy::default();
    if let Some(b) = &f.bisect {
        bisect.enabled = b.enabled;
        if let Some(c) = &b.confidence {
            if c.value > 0.5 && c.value < 1.0 {
                bisect.confidence = c.value;
            } else {
                cx.at(
                    &c.referenced,
                    "bisect.confidence",
                    format!("{}: must be above 0.5 and below 1 (e.g. 0.99)", c.value),
                );
            }
        }
        if let Some(m) = &b.max_runs {
            if m.value == 0 {
                cx.at(
                    &m.referenced,
                    "bisect.max_runs",
                    "0: a bisection needs at least one run (e.g. 100)",
                );
            } else {
                bisect.max_runs = m.value;
            }
        }
        bisect.verify_runs = b.verify_runs.as_ref().map(|v| v.value);
    }
    let fixed_after = match &f.fixed_after {
        Some(n) if n.value == 0 => {
            cx.at(
                &n.referenced,
                "fixed_after",
                "0: a regression is fixed after at least one clean night (e.g. `fixed_after: 3`)",
            );
            3
        }
        Some(n) => n.value,
        None => 3,
    };
    let command = match &f.run {
        Some(r) => {
            for (given, other) in [(f.test.is_some(), "test"), (f.matrix.is_some(), "matrix")] {
                if given {
                    cx.at(
                        &r.referenced,
                        "run",
                        format!("`run` tests commits with a command and `{other}` is for the QEMU pipeline: keep one of them"),
                    );
                }
            }
            match crate::bisect::command::resolve(&r.value, dir, dir) {
                Ok(c) => Some(c),
                Err(m) => {
                    cx.at(&r.referenced, "run", m);
                    None
                }
            }
        }
        None => None,
    };
    let lab = f.lab.as_ref().and_then(|l| check_lab(&mut cx, l, dir));
    if let (Some(r), Some(l)) = (&f.run, &f.lab) {
        cx.at(
            &r.referenced,
            "run",
            format!(
                "`run` tests commits with a command on this host and `lab` ({}) boots them on a lab: keep one of them",
                l.kind.value
            ),
        );
    }
    let notify = f.notify.as_ref().and_then(|n| check_notify(&mut cx, n));
    let keep = match &f.keep {
        Some(k) => match parse_keep(&k.value) {
            Ok(d) => d,
            Err(m) => {
                cx.at(&k.referenced, "keep", m);
                std::time::Duration::ZERO
            }
        },
        None => std::time::Duration::from_secs(30 * 86_400),
    };

    // test: and matrix:
    let mut base = Map::new();
    let mut origin: HashMap<String, (Location, String)> = HashMap::new();
    let empty = Fields::default();
    let (test, test_at) = match &f.test {
        Some(t) => (&t.value, Some(t.referenced)),
        None => (&empty, None),
    };
    let mut ok = true;
    for (k, v) in &test.0 {
        let Some(c) = spec_key(&mut cx, "test", k) else {
            ok = false;
            continue;
        };
        let field = format!("test.{}", k.value);
        if base.contains_key(&c) {
            cx.at(
                &k.referenced,
                &field,
                format!("`{c}` is set twice in `test`; keep one"),
            );
            ok = false;
            continue;
        }
        ok &= check_value(&mut cx, &field, &c, v);
        base.insert(c.clone(), v.value.clone());
        origin.insert(c, (v.referenced, field));
    }
    let mut axes = Vec::new();
    if let Some(m) = &f.matrix {
        if m.value.0.is_empty() {
            cx.at(
                &m.referenced,
                "matrix",
                "empty: give lists of values (e.g. `vcpus: [4, 8]`) or leave `matrix` out",
            );
            ok = false;
        }
        for (k, v) in &m.value.0 {
            let Some(c) = spec_key(&mut cx, "matrix", k) else {
                ok = false;
                continue;
            };
            let field = format!("matrix.{}", k.value);
            if axes.iter().any(|(a, _)| *a == c) {
                cx.at(
                    &k.referenced,
                    &field,
                    format!("`{c}` is listed twice in `matrix`; keep one list"),
                );
                ok = false;
                continue;
            }
            let values = match &v.value {
                Value::Array(a) if !a.is_empty() => a.clone(),
                Value::Array(_) => {
                    cx.at(
                        &v.referenced,
                        &field,
                        "an empty list gives no cells: list at least one value",
                    );
                    ok = false;
                    continue;
                }
                other => {
                    cx.at(&v.referenced, &field, format!("{other}: a matrix entry is a list of values (e.g. `{}: [{other}, ...]`)", k.value));
                    ok = false;
                    continue;
                }
            };
            for val in &values {
                let sv = Spanned {
                    value: val.clone(),
                    referenced: v.referenced,
                    defined: v.defined,
                };
                ok &= check_value(&mut cx, &field, &c, &sv);
            }
            origin.insert(c.clone(), (v.referenced, field));
            axes.push((c, values));
        }
    }
    let mut cells = Vec::new();
    if ok {
        let default_at = test_at.unwrap_or(f.name.referenced);
        for (params, map) in matrix::expand(&base, &axes) {
            let mut spec: RunSpec = match serde_json::from_value(Value::Object(map)) {
                Ok(s) => s,
                Err(e) => {
                    cx.at(&default_at, "test", e.to_string());
                    break;
                }
            };
            for frag in &mut spec.config_fragments {
                if frag.is_relative() {
                    *frag = dir.join(&*frag);
                }
            }
            let cell = Cell { params, spec };
            if let Err(e) = cell.spec.validate() {
                let text = e.to_string();
                let (field, msg) = flag_field(&text).unwrap_or(("test".into(), text.clone()));
                let (at, name) = origin
                    .get(&field)
                    .cloned()
                    .unwrap_or((default_at, format!("test.{field}")));
                let msg = if cell.params.is_empty() {
                    msg
                } else {
                    format!("{msg} (in the cell {})", cell.label())
                };
                cx.at(&at, &name, msg);
                break;
            }
            cells.push(cell);
        }
    }
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    // A lab boots an initramfs root: every cell is built and run that way.
    if lab.is_some() {
        for c in &mut cells {
            c.spec.root = crate::vm::RootKind::Initramfs;
        }
    }
    Ok(Job {
        file: path.to_path_buf(),
        name,
        name_at: (
            f.name.referenced.line().max(1),
            f.name.referenced.column().max(1),
        ),
        tree,
        branches,
        reference,
        schedule: schedule.expect("no errors"),
        cells,
        runs,
        command,
        fixed_after,
        bisect,
        notify,
        keep,
        lab,
    })
}

fn check_lab(cx: &mut Ctx, l: &super::LabFile, dir: &Path) -> Option<crate::testers::lava::Lab> {
    let before = cx.errors.len();
    if l.kind.value != "lava" {
        cx.at(
            &l.kind.referenced,
            "lab.kind",
            format!(
                "`{}`: the only lab kind is `lava` (leave `lab` out to test on this host)",
                l.kind.value
            ),
        );
    }
    if let Err(e) = crate::lava::client::base_url(&l.url.value) {
        cx.at(&l.url.referenced, "lab.url", e.to_string());
    }
    let token_file = l.token_file.as_ref().map(|t| {
        let v = t.value.trim();
        let p = match v.strip_prefix("~/") {
            Some(rest) => dirs::home_dir().map_or(PathBuf::from(v), |h| h.join(rest)),
            None => dir.join(v),
        };
        if !p.is_file() {
            cx.at(
                &t.referenced,
                "lab.token_file",
                format!(
                    "`{v}`: {} is not a file; give the file holding the LAVA API token, or leave `token_file` out to use CSDCI_LAVA_TOKEN",
                    p.display()
                ),
            );
        }
        p
    });
    for t in &l.tags {
        if t.value.is_empty()
            || !t
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            cx.at(
                &t.referenced,
                "lab.tags",
                format!(
                    "`{}`: a device tag is letters, digits, '-', '_', '.'",
                    t.value
                ),
            );
        }
    }
    if let Some(a) = &l.artifacts_url
        && crate::lava::client::base_url(&a.value).is_err()
    {
        cx.at(
            &a.referenced,
            "lab.artifacts_url",
            format!("`{}`: use an http:// or https:// URL", a.value),
        );
    }
    if cx.errors.len() > before {
        return None;
    }
    let mut lab = crate::testers::lava::Lab::new(l.url.value.trim());
    lab.token_file = token_file;
    if let Some(d) = &l.device_type {
        lab.device_type = d.value.trim().to_string();
    }
    lab.tags = l.tags.iter().map(|t| t.value.clone()).collect();
    lab.artifacts_url = l.artifacts_url.as_ref().map(|a| a.value.trim().to_string());
    Some(lab)
}

fn check_notify(cx: &mut Ctx, n: &super::NotifyFile) -> Option<Notify> {
    let before = cx.errors.len();
    let addr_ok = |a: &str| {
        let a = a.trim();
        let inner = a
            .rsplit_once('<')
            .map_or(a, |(_, r)| r.trim_end_matches('>'));
        let (user, host) = inner.split_once('@').unwrap_or(("", ""));
        !user.is_empty() && host.contains('.') || host == "localhost"
    };
    if n.to.is_empty() {
        cx.errors.push(JobError {
            file: cx.file.to_path_buf(),
            line: n.from.referenced.line().max(1),
            column: 1,
            field: "notify.to".into(),
            message: "no recipients: list at least one address (`to: [maintainer@example.org]`)"
                .into(),
        });
    }
    for t in &n.to {
        if !addr_ok(&t.value) {
            cx.at(
                &t.referenced,
                "notify.to",
                format!(
                    "`{}` is not a mail address (e.g. `Name <name@example.org>`)",
                    t.value
                ),
            );
        }
    }
    if !addr_ok(&n.from.value) {
        cx.at(
            &n.from.referenced,
            "notify.from",
            format!(
                "`{}` is not a mail address (e.g. `csdci@example.org`)",
                n.from.value
            ),
        );
    }
    let url = n.smtp.url.value.trim();
    let mut host = String::new();
    let mut port = 25;
    match url.strip_prefix("smtp://") {
        Some(rest) => {
            let rest = rest.trim_end_matches('/');
            let (h, p) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            if h.is_empty() || h.contains(['/', '@']) {
                cx.at(&n.smtp.url.referenced, "notify.smtp.url", format!("`{url}`: write `smtp://host:port` (credentials go in `user` and `password_env`)"));
            }
            host = h.to_string();
            if let Some(p) = p {
                match p.parse::<u16>() {
                    Ok(p) if p > 0 => port = p,
                    _ => cx.at(&n.smtp.url.referenced, "notify.smtp.url", format!("`{url}`: port `{p}` is not a number 1–65535")),
                }
            }
        }
        None => cx.at(&n.smtp.url.referenced, "notify.smtp.url", format!("`{url}`: write `smtp://host:port` (e.g. `smtp://mail.example.org:587`; STARTTLS is `starttls: true`)")),
    }
    if let Some(p) = &n.smtp.password_env {
        let v = p.value.trim();
        if v.is_empty()
            || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || v.starts_with(|c: char| c.is_ascii_digit())
        {
            cx.at(&p.referenced, "notify.smtp.password_env", format!("`{v}`: the name of an environment variable (e.g. `CSDCI_SMTP_PASSWORD`), not the password"));
        }
    }
    (cx.errors.len() == before).then(|| Notify {
        to: n.to.iter().map(|t| t.value.trim().to_string()).collect(),
        from: n.from.value.trim().to_string(),
        host,
        port,
        starttls: n.smtp.starttls,
        user: n.smtp.user.clone(),
        password_env: n
            .smtp
            .password_env
            .as_ref()
            .map(|p| p.value.trim().to_string()),
    })
}

#[cfg(test)]
mod lab_tests {
    use super::*;

    const BASE: &str = "name: t\ntree: /tmp\nbranch: master\nschedule: \"0 2 * * *\"\n";

    fn load(text: &str) -> (tempfile::TempDir, Result<Job, Vec<JobError>>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("token"), "secret\n").unwrap();
        let f = d.path().join("j.yaml");
        std::fs::write(&f, text).unwrap();
        let r = load_file(&f);
        (d, r)
    }

    #[test]
    fn a_lava_lab_is_read_with_the_token_file_beside_the_job() {
        let (d, r) = load(&format!(
            "{BASE}test:\n  vcpus: 4\nlab:\n  kind: lava\n  url: http://lava.example.org/\n  token_file: token\n  tags: [big]\n"
        ));
        let job = r.unwrap();
        let lab = job.lab.expect("lab");
        assert_eq!(lab.url, "http://lava.example.org/");
        assert_eq!(lab.token_file, Some(d.path().join("token")));
        assert_eq!(lab.device_type, "qemu");
        assert_eq!(lab.tags, ["big"]);
        // A lab boots an initramfs root, so every cell is built for one.
        assert!(
            job.cells
                .iter()
                .all(|c| c.spec.root == crate::vm::RootKind::Initramfs)
        );
    }

    #[test]
    fn bad_labs_name_the_line_and_the_fix() {
        let (_d, r) = load(&format!(
            "{BASE}lab:\n  kind: lavva\n  url: lava.example.org\n  token_file: nope\n"
        ));
        let errs = r.unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.line_text()).collect();
        assert_eq!(errs.len(), 3, "{text:#?}");
        assert!(
            errs[0].line == 6 && errs[0].field == "lab.kind",
            "{text:#?}"
        );
        assert!(text[0].contains("the only lab kind is `lava`"), "{text:#?}");
        assert!(
            errs[1].line == 7 && text[1].contains("http://"),
            "{text:#?}"
        );
        assert!(
            errs[2].field == "lab.token_file" && text[2].contains("CSDCI_LAVA_TOKEN"),
            "{text:#?}"
        );
        let (_d, r) = load(&format!(
            "{BASE}lab:\n  kind: lava\n  url: http://l/\n  token: x\n"
        ));
        let e = r.unwrap_err()[0].line_text();
        assert!(e.contains("token"), "{e}");
        let (_d, r) = load(&format!(
            "{BASE}run: /bin/true\nlab:\n  kind: lava\n  url: http://l/\n"
        ));
        let e = r.unwrap_err()[0].line_text();
        assert!(e.contains("keep one of them"), "{e}");
    }
}

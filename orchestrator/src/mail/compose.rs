//! The text of csdci's mails, in the style kernel developers know from the
//! 0-day robot and syzbot: the report when a regression's bisection ends (or
//! a head stops building), and the threaded "fixed" follow-up.
//!
//! [`report`] and [`fixed`] are pure: they read plain facts
//! ([`ReportFacts`], [`FixedFacts`]) and return a [`Draft`]. Text that comes
//! from outside (console output, compiler errors, commit subjects, author
//! names) is cleaned first: control characters other than tab and newline
//! are dropped, lines are capped, excerpts are bounded.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::bisect::Report;
use crate::events::short;
use crate::spec::RunSpec;
use crate::store::Store;

/// Most console lines quoted from the first failing run.
pub const EXCERPT_LINES: usize = 40;
/// Most compiler error lines quoted for a build regression.
pub const BUILD_ERROR_LINES: usize = 60;
/// Longest line quoted from untrusted text (in characters).
pub const LINE_CHARS: usize = 200;

/// A composed mail: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// `Subject:`.
    pub subject: String,
    /// Plain-text body (`\n` line ends).
    pub body: String,
}

/// A commit named in a mail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Commit {
    /// Full sha.
    pub sha: String,
    /// Subject line.
    pub subject: String,
    /// `Name <email>` (empty when unknown).
    pub author: String,
    /// Author date (empty when unknown).
    pub date: String,
}

/// Runs of one commit, for the parent-vs-culprit table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// Full sha.
    pub commit: String,
    /// Runs that counted.
    pub runs: u32,
    /// Of those, runs that failed as the predicate asks.
    pub fails: u32,
}

/// One title of the parent-vs-culprit table: how many runs of each commit
/// showed it (`None`: the commit showed it, how often is not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleRow {
    /// The finding title.
    pub title: String,
    /// Runs of the parent that showed it.
    pub parent: Option<u32>,
    /// Runs of the culprit that showed it.
    pub culprit: Option<u32>,
}

/// Everything a report mail says, as plain values (no store types).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportFacts {
    /// The regression's id.
    pub regression_id: i64,
    /// A build regression (the head does not compile) rather than a test one.
    pub build: bool,
    /// Its (normalised) title.
    pub title: String,
    /// The job.
    pub job: String,
    /// The tree: a git URL or a path.
    pub tree: String,
    /// The branch.
    pub branch: String,
    /// The matrix cell that showed it.
    pub cell: String,
    /// The last clean head before it.
    pub good: Option<String>,
    /// The first head that showed it.
    pub bad: String,
    /// When the night that found it started (RFC 3339).
    pub found_at: String,
    /// Runs and fails of the cell on the bad head, when known.
    pub bad_runs: Option<(u32, u32)>,
    /// The bisection's id, when one ran.
    pub bisection_id: Option<i64>,
    /// The bisection's outcome: `culprit`, `doubtful`, `not_isolated`,
    /// `not_reproduced`, `merge_base_bad`, `inconclusive`; `None`: not bisected.
    pub status: Option<String>,
    /// Why the culprit is doubtful (or the test not deterministic).
    pub doubt: Option<String>,
    /// The commit the bisection named (also when doubtful).
    pub culprit: Option<Commit>,
    /// Posterior probability of the culprit (or of the candidate set).
    pub confidence: Option<f64>,
    /// The remaining candidates, when no single culprit was isolated.
    pub candidates: Vec<Commit>,
    /// The predicate (which failures count).
    pub predicate: String,
    /// Runs of the culprit's parent.
    pub parent: Option<Column>,
    /// Runs of the culprit.
    pub culprit_runs: Option<Column>,
    /// Titles of the parent-vs-culprit table.
    pub titles: Vec<TitleRow>,
    /// The first failing run's commit and console excerpt.
    pub excerpt_commit: Option<String>,
    /// The first failing run's console excerpt (raw; cleaned when composed).
    pub excerpt: Vec<String>,
    /// The compiler error (build regressions).
    pub build_error: Option<String>,
    /// How the cell tests a commit (`None`: unknown).
    pub spec: Option<RunSpec>,
    /// The job's `run` command, when it tests with a script instead of QEMU.
    pub command: Option<String>,
    /// The sender (`Reported-by:`): `ci@example.org` or `csdci <ci@example.org>`.
    pub sender: String,
    /// The dashboard's public URL (`Closes:` link), when set.
    pub public_url: Option<String>,
}

/// What the "fixed" follow-up says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedFacts {
    /// The regression's id.
    pub regression_id: i64,
    /// Its title.
    pub title: String,
    /// The tree.
    pub tree: String,
    /// The branch.
    pub branch: String,
    /// The report's subject (the follow-up's is `Re: ` and it).
    pub report_subject: String,
    /// The culprit the report named.
    pub culprit: Option<String>,
    /// The last head that showed it.
    pub last_bad_head: String,
    /// The first clean head.
    pub fixed_head: Option<String>,
    /// Where the fix is: `LAST_BAD..FIRST_CLEAN`.
    pub fixed_range: Option<String>,
    /// Clean nights in a row that closed it.
    pub clean_nights: u32,
    /// The dashboard's public URL, when set.
    pub public_url: Option<String>,
}

/// The tree's short name: its last path component without `.git`
/// (`https://git.kernel.org/.../torvalds/linux.git` → `linux`).
pub fn tree_name(tree: &str) -> String {
    let t = tree.trim_end_matches('/');
    let t = t.strip_suffix(".git").unwrap_or(t);
    let last = t.rsplit(['/', ':']).next().unwrap_or(t);
    if last.is_empty() {
        clean_line(tree)
    } else {
        clean_line(last)
    }
}

/// The report's subject: `[csdci] <title> in <tree>/<branch>`.
pub fn report_subject(title: &str, tree: &str, branch: &str) -> String {
    let title: String = clean_line(title).replace('\t', " ");
    format!(
        "[csdci] {} in {}/{}",
        cap(&title, 120),
        tree_name(tree),
        clean_line(branch)
    )
}

/// `text` without control characters (tab kept), at most `n` characters
/// (`...` marks a cut).
fn cap(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    let mut s: String = text.chars().take(n.saturating_sub(3)).collect();
    s.push_str("...");
    s
}

/// One line of untrusted text, safe to quote: control characters other
/// than tab are dropped (a carriage return too), at most [`LINE_CHARS`].
pub fn clean_line(line: &str) -> String {
    let s: String = line
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect();
    cap(s.trim_end(), LINE_CHARS)
}

/// Untrusted multi-line text as quoted lines: cleaned, at most `max` lines
/// (the first ones; a note says how many were left out).
pub fn clean_block(lines: &[String], max: usize, indent: &str) -> String {
    let mut out = String::new();
    let all: Vec<String> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(clean_line)
        .collect();
    for l in all.iter().take(max) {
        let _ = writeln!(out, "{indent}{l}");
    }
    if all.len() > max {
        let _ = writeln!(out, "{indent}[... {} more lines]", all.len() - max);
    }
    out
}

/// The bare address of `sender` (`Name <a@b>` → `a@b`).
pub fn address(sender: &str) -> &str {
    let s = sender.trim();
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s,
    }
}

/// A `Message-ID` (without angle brackets) for the mail of `kind` about
/// regression `regression_id`: `csdci.r42.report.<16 hex>@<sender's domain>`.
/// The hex part is a hash of the inputs and a random nonce, so two csdci
/// installations with the same sender never collide; the outbox stores the
/// id with the mail, so it is stable from then on (retries resend it).
pub fn message_id(regression_id: i64, kind: &str, sender: &str) -> String {
    let addr = address(sender);
    let domain = addr
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or("localhost");
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let nonce: u64 = rand::random();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let mut h = Sha256::new();
    h.update(format!("{regression_id}\0{kind}\0{addr}\0{now}\0{nonce}"));
    let hash = hex::encode(&h.finalize()[..8]);
    format!("csdci.r{regression_id}.{kind}.{hash}@{domain}")
}

/// Quotes `s` for a POSIX shell (as is when it needs no quoting).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ',' | ':' | '=' | '+' | '@' | '%')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether `tree` is a URL (cloned first in the reproduce lines).
fn is_url(tree: &str) -> bool {
    tree.contains("://") || (tree.contains('@') && tree.contains(':') && !tree.starts_with('/'))
}

/// The lines that reproduce the failure at `commit`: a clone when the tree
/// is a URL, then the `csdci run` line with the cell's spec as flags.
pub fn reproduce(
    tree: &str,
    commit: &str,
    spec: Option<&RunSpec>,
    command: Option<&str>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let local = if is_url(tree) {
        let dir = tree_name(tree);
        let dir = if dir.is_empty() {
            "linux".to_string()
        } else {
            dir
        };
        lines.push(format!(
            "git clone {} {}",
            shell_quote(tree),
            shell_quote(&dir)
        ));
        dir
    } else {
        tree.to_string()
    };
    if let Some(cmd) = command {
        lines.push(format!(
            "cd {} && git checkout {}",
            shell_quote(&local),
            shell_quote(commit)
        ));
        lines.push(shell_quote(cmd));
        return lines;
    }
    let mut args = vec![
        "csdci".to_string(),
        "run".into(),
        "--tree".into(),
        shell_quote(&local),
        "--commit".into(),
        shell_quote(commit),
    ];
    if let Some(s) = spec {
        let d = RunSpec::default();
        args.push(format!("--vcpus {}", s.vcpus));
        let mem = if s.memory_mb % 1024 == 0 {
            format!("{}G", s.memory_mb / 1024)
        } else {
            format!("{}M", s.memory_mb)
        };
        args.push(format!("--memory {mem}"));
        args.push(format!("--duration {}", s.duration_s));
        if !s.scftorture.trim().is_empty() {
            args.push(format!("--scftorture {}", shell_quote(s.scftorture.trim())));
        }
        for f in &s.config_fragments {
            args.push(format!(
                "--config-fragment {}",
                shell_quote(&f.to_string_lossy())
            ));
        }
        if s.accel != d.accel {
            args.push(format!("--accel {}", s.accel));
        }
        if let Some(n) = s.stop_after_crash_s {
            args.push(format!("--stop-after-crash {n}"));
        }
        if s.root != d.root {
            args.push(format!("--root {}", s.root));
        }
    }
    lines.push(args.join(" "));
    lines
}

fn percent(p: f64) -> String {
    let p = (p * 100.0).clamp(0.0, 100.0);
    if (99.95..100.0).contains(&p) {
        ">99.9%".into()
    } else {
        format!("{p:.1}%")
    }
}

fn status_words(status: &str) -> &'static str {
    match status {
        "doubtful" => "named a commit, but a check contradicts it",
        "not_isolated" => "narrowed it to several commits but could not isolate one",
        "not_reproduced" => "could not reproduce the failure on the bad head",
        "merge_base_bad" => {
            "found the failure already on a merge base of the good and bad heads: it is older than the last clean head"
        }
        _ => "ended without naming a culprit with confidence",
    }
}

/// The report mail of a regression.
pub fn report(f: &ReportFacts) -> Draft {
    let subject = report_subject(&f.title, &f.tree, &f.branch);
    let mut b = String::new();
    let tree = tree_name(&f.tree);
    let branch = clean_line(&f.branch);
    let conclusive = f.status.as_deref() == Some("culprit") && f.culprit.is_some();
    let _ = writeln!(b, "Hello,\n");
    if f.build {
        let _ = write!(b, "csdci found that {tree}/{branch} no longer builds");
    } else {
        let _ = write!(b, "csdci found a regression in {tree}/{branch}");
    }
    let _ = match f.status.as_deref() {
        Some("culprit") if f.culprit.is_some() => writeln!(b, " and bisected it to one commit."),
        Some(_) => writeln!(b, "; its bisection is not conclusive."),
        None => writeln!(b, "."),
    };
    let _ = writeln!(b);
    let _ = writeln!(b, "  title:      {}", clean_line(&f.title));
    let _ = writeln!(b, "  tree:       {}", clean_line(&f.tree));
    let _ = writeln!(b, "  branch:     {branch}");
    let _ = writeln!(
        b,
        "  job:        {} (cell {})",
        clean_line(&f.job),
        clean_line(&f.cell)
    );
    let _ = write!(b, "  bad head:   {}", short(&f.bad));
    if let Some((runs, fails)) = f.bad_runs {
        let _ = write!(b, " ({fails} of {runs} runs failed)");
    }
    let _ = writeln!(b);
    if let Some(g) = &f.good {
        let _ = writeln!(b, "  last clean: {}", short(g));
    }
    if !f.found_at.is_empty() {
        let _ = writeln!(b, "  found:      {}", clean_line(&f.found_at));
    }
    if !f.predicate.is_empty() && !f.build {
        let _ = writeln!(b, "  predicate:  {}", clean_line(&f.predicate));
    }
    let _ = writeln!(b);

    if let Some(c) = &f.culprit {
        if conclusive {
            let _ = write!(b, "The culprit");
            if let Some(p) = f.confidence {
                let _ = write!(b, " (confidence {})", percent(p));
            }
            let _ = writeln!(b, ":\n");
        } else {
            let _ = writeln!(
                b,
                "The bisection {}. It pointed at this commit, which is NOT a\nconfirmed culprit:\n",
                status_words(f.status.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(b, "  commit {}", clean_line(&c.sha));
        let _ = writeln!(b, "  subject: {}", clean_line(&c.subject));
        if !c.author.is_empty() {
            let _ = writeln!(b, "  author:  {}", clean_line(&c.author));
        }
        if !c.date.is_empty() {
            let _ = writeln!(b, "  date:    {}", clean_line(&c.date));
        }
        let _ = writeln!(b);
    } else if let Some(st) = f.status.as_deref() {
        let _ = writeln!(b, "The bisection {}.", status_words(st));
        if !f.candidates.is_empty() {
            let _ = write!(b, "The remaining candidates");
            if let Some(p) = f.confidence {
                let _ = write!(b, " (together {})", percent(p));
            }
            let _ = writeln!(b, ":");
            for c in f.candidates.iter().take(20) {
                let _ = writeln!(b, "  {} {}", short(&c.sha), clean_line(&c.subject));
            }
            if f.candidates.len() > 20 {
                let _ = writeln!(b, "  [... {} more]", f.candidates.len() - 20);
            }
        }
        let _ = writeln!(b);
    } else if f.build {
        let _ = writeln!(b, "It was not bisected.\n");
    }
    if let Some(d) = &f.doubt {
        let _ = writeln!(b, "Why it is in doubt: {}\n", clean_line(d));
    }
    if !conclusive && f.status.is_some() {
        let _ = writeln!(
            b,
            "No Fixes: tag is suggested: check the commits above by hand before blaming one.\n"
        );
    }

    let _ = writeln!(
        b,
        "If you fix the issue in a separate patch/commit (i.e. not just a new\nversion of the same patch/commit), kindly add the following tags:"
    );
    let _ = writeln!(
        b,
        "| Reported-by: csdci <{}>",
        clean_line(address(&f.sender))
    );
    if let Some(url) = public_link(f.public_url.as_deref(), f.regression_id) {
        let _ = writeln!(b, "| Closes: {url}");
    }
    if conclusive && let Some(c) = &f.culprit {
        let _ = writeln!(
            b,
            "| Fixes: {} (\"{}\")",
            short(&c.sha),
            clean_line(&c.subject).replace('"', "'")
        );
    }
    let _ = writeln!(b);

    if let Some(cul) = &f.culprit_runs {
        let _ = writeln!(b, "{}", table(f, cul));
    }

    if let Some(err) = &f.build_error {
        let lines: Vec<String> = err.lines().map(str::to_string).collect();
        let _ = writeln!(b, "The compiler error:\n");
        b.push_str(&clean_block(&lines, BUILD_ERROR_LINES, "  "));
        let _ = writeln!(b);
    }

    if !f.excerpt.is_empty() {
        let _ = match &f.excerpt_commit {
            Some(c) => writeln!(b, "The first failing console (commit {}):\n", short(c)),
            None => writeln!(b, "The first failing console:\n"),
        };
        b.push_str(&clean_block(&f.excerpt, EXCERPT_LINES, "  "));
        let _ = writeln!(b);
    }

    let at = f
        .culprit
        .as_ref()
        .filter(|_| conclusive)
        .map(|c| c.sha.as_str())
        .unwrap_or(&f.bad);
    let _ = writeln!(b, "To reproduce (commit {}):\n", short(at));
    for l in reproduce(&f.tree, at, f.spec.as_ref(), f.command.as_deref()) {
        let _ = writeln!(b, "  {l}");
    }
    let _ = writeln!(b);
    footer(&mut b, f.public_url.as_deref(), f.regression_id);
    Draft { subject, body: b }
}

/// The runs/fails table of the culprit and its parent.
fn table(f: &ReportFacts, cul: &Column) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let p = f.parent.as_ref();
    let cell = |c: Option<&Column>, get: fn(&Column) -> u32| {
        c.map(|c| get(c).to_string()).unwrap_or_else(|| "-".into())
    };
    rows.push((
        "commit".into(),
        p.map(|c| short(&c.commit).to_string())
            .unwrap_or_else(|| "-".into()),
        short(&cul.commit).to_string(),
    ));
    rows.push(("runs".into(), cell(p, |c| c.runs), cul.runs.to_string()));
    rows.push((
        "failed (predicate)".into(),
        cell(p, |c| c.fails),
        cul.fails.to_string(),
    ));
    let count = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "seen".into());
    for t in f.titles.iter().take(20) {
        rows.push((
            cap(&clean_line(&t.title).replace('\t', " "), 60),
            if p.is_some() {
                count(t.parent)
            } else {
                "-".into()
            },
            count(t.culprit),
        ));
    }
    let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0)
        .max("parent".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Runs of the culprit and its parent (runs that showed each title):\n"
    );
    let _ = writeln!(out, "  {:w$}  {:>w1$}  culprit", "", "parent");
    for (a, p, c) in rows {
        let pad = w - a.chars().count();
        let _ = writeln!(out, "  {a}{}  {p:>w1$}  {c}", " ".repeat(pad));
    }
    out
}

fn public_link(public_url: Option<&str>, id: i64) -> Option<String> {
    let u = public_url?.trim().trim_end_matches('/');
    (!u.is_empty()).then(|| format!("{}/regressions/{id}", clean_line(u)))
}

fn footer(b: &mut String, public_url: Option<&str>, id: i64) {
    let _ = writeln!(b, "-- ");
    match public_link(public_url, id) {
        Some(u) => {
            let _ = writeln!(b, "csdci, regression #{id}: {u}");
        }
        None => {
            let _ = writeln!(b, "csdci, regression #{id}");
        }
    }
}

/// The "fixed" follow-up (threaded under the report by the outbox).
pub fn fixed(f: &FixedFacts) -> Draft {
    let s = clean_line(&f.report_subject);
    let subject = if s.to_ascii_lowercase().starts_with("re:") {
        s
    } else {
        format!("Re: {s}")
    };
    let mut b = String::new();
    let _ = writeln!(b, "Hello,\n");
    let _ = writeln!(
        b,
        "the regression \"{}\" in {}/{} is fixed:",
        clean_line(&f.title),
        tree_name(&f.tree),
        clean_line(&f.branch)
    );
    let _ = write!(b, "csdci has not seen it for {} night", f.clean_nights);
    if f.clean_nights != 1 {
        b.push('s');
    }
    let _ = writeln!(b, " in a row.\n");
    let _ = writeln!(b, "  last bad head:    {}", short(&f.last_bad_head));
    if let Some(h) = &f.fixed_head {
        let _ = writeln!(b, "  first clean head: {}", short(h));
    }
    if let Some(c) = &f.culprit {
        let _ = writeln!(b, "  culprit:          {}", short(c));
    }
    let _ = writeln!(b);
    match &f.fixed_range {
        Some(r) => {
            let r = clean_line(r);
            let _ = writeln!(
                b,
                "The fix is in {r}:\n\n  git log --oneline {}\n",
                shell_quote(&r)
            );
        }
        None => {
            let _ = writeln!(b, "Where the fix is could not be told.\n");
        }
    }
    footer(&mut b, f.public_url.as_deref(), f.regression_id);
    Draft { subject, body: b }
}

impl ReportFacts {
    /// Gathers the facts of regression `regression_id` from the store: its
    /// row, the night that found it (tree, time), its cell's spec, its
    /// bisection's report and journal. `sender` and `command` are the job's:
    /// the caller fills them in.
    pub fn from_store(
        store: &Store,
        regression_id: i64,
        public_url: Option<&str>,
    ) -> crate::Result<ReportFacts> {
        let r = store.regression(regression_id)?.ok_or_else(|| {
            crate::Error::Usage(format!("regression #{regression_id} is not in the store"))
        })?;
        let night = store.night(r.first_night)?;
        let cell = store
            .cells(r.first_night)?
            .into_iter()
            .find(|c| c.cell == r.cell);
        let spec = cell
            .as_ref()
            .and_then(|c| serde_json::from_str::<RunSpec>(&c.spec).ok());
        let bad_runs = store
            .regression_nights(r.id)?
            .into_iter()
            .find(|(n, _, _)| *n == r.first_night)
            .map(|(_, runs, fails)| (runs, fails))
            .or_else(|| cell.as_ref().map(|c| (c.runs, c.fails)));
        let mut f = ReportFacts {
            regression_id: r.id,
            build: r.kind == "build",
            title: r.title.clone(),
            job: r.job.clone(),
            tree: night.as_ref().map(|n| n.tree.clone()).unwrap_or_default(),
            branch: r.branch.clone(),
            cell: r.cell.clone(),
            good: r.good.clone(),
            bad: r.bad.clone(),
            found_at: night.map(|n| n.started_at).unwrap_or_default(),
            bad_runs,
            bisection_id: r.bisection_id,
            predicate: spec
                .as_ref()
                .map(|s| s.predicate.clone())
                .unwrap_or_default(),
            build_error: r
                .detail
                .clone()
                .filter(|_| r.kind == "build")
                .or_else(|| cell.as_ref().and_then(|c| c.build_error.clone())),
            spec,
            public_url: public_url.map(str::to_string),
            ..ReportFacts::default()
        };
        let Some(bid) = r.bisection_id else {
            return Ok(f);
        };
        let Some(bisection) = store.bisect_get(bid)? else {
            return Ok(f);
        };
        let Some(report) = bisection
            .result
            .as_deref()
            .and_then(|j| serde_json::from_str::<Report>(j).ok())
        else {
            return Ok(f);
        };
        let steps = store.bisect_steps(bid, true).unwrap_or_default();
        let parent_sha = report.culprit.as_ref().and_then(|c| {
            crate::vcs::graph::Graph::open(std::path::Path::new(&bisection.repo))
                .and_then(|g| g.resolve(&format!("{}^", c.sha)))
                .ok()
        });
        f.absorb(&report, parent_sha.as_deref(), &steps);
        Ok(f)
    }

    /// Takes the bisection's outcome from its report; `parent` is the
    /// culprit's first parent when the repository could tell it, `steps`
    /// the journal's finished steps (per-title counts).
    pub fn absorb(
        &mut self,
        report: &Report,
        parent: Option<&str>,
        steps: &[crate::store::bisect::Step],
    ) {
        self.status = Some(report.status.clone());
        self.doubt = report.doubt.clone();
        self.confidence = Some(report.confidence);
        if self.predicate.is_empty() {
            self.predicate = report.predicate.clone();
        }
        self.culprit = report.culprit.as_ref().map(|c| Commit {
            sha: c.sha.clone(),
            subject: c.subject.clone(),
            author: c.author.clone(),
            date: c.date.clone(),
        });
        self.candidates = report
            .candidates
            .iter()
            .map(|c| Commit {
                sha: c.sha.clone(),
                subject: c.subject.clone(),
                author: c.author.clone(),
                date: c.date.clone(),
            })
            .collect();
        if let Some(ff) = &report.first_failure {
            self.excerpt_commit = Some(ff.commit.clone());
            self.excerpt = ff.excerpt.clone();
        }
        let Some(c) = &self.culprit else {
            return;
        };
        type Tested = crate::bisect::report::Tested;
        let tested = |sha: &str| report.tested.iter().find(|t| t.commit == sha);
        // A commit that builds the same kernel as one tested before shares
        // that commit's runs (the bisection did not run it again).
        let evidence = |t: &'_ Tested| -> Tested {
            t.same_as
                .as_deref()
                .and_then(|s| {
                    report
                        .tested
                        .iter()
                        .find(|o| o.commit == s || o.commit.starts_with(s))
                })
                .cloned()
                .unwrap_or_else(|| t.clone())
        };
        let Some(ct) = tested(&c.sha) else {
            return;
        };
        let ce = evidence(ct);
        // The parent: the repository's word, else the clean commit tested
        // last (where the bisection converged).
        let pt = match parent {
            Some(p) => tested(p),
            None => report.tested.iter().rev().find(|t| {
                let e = evidence(t);
                t.commit != c.sha && e.runs > 0 && e.fails == 0
            }),
        };
        let pe = pt.map(evidence);
        let col = |t: &Tested, e: &Tested| Column {
            commit: t.commit.clone(),
            runs: e.runs,
            fails: e.fails,
        };
        self.culprit_runs = Some(col(ct, &ce));
        self.parent = pt.zip(pe.as_ref()).map(|(t, e)| col(t, e));
        let counts = |sha: &str, title: &str, listed: bool| -> Option<u32> {
            let runs: Vec<_> = steps
                .iter()
                .filter(|s| s.kind == "run" && s.commit == sha)
                .collect();
            if runs.is_empty() {
                return if listed { None } else { Some(0) };
            }
            Some(
                runs.iter()
                    .filter(|s| s.titles.iter().any(|t| t == title))
                    .count() as u32,
            )
        };
        let mut titles: Vec<String> = ce.titles.clone();
        if let Some(p) = &pe {
            for t in &p.titles {
                if !titles.contains(t) {
                    titles.push(t.clone());
                }
            }
        }
        self.titles = titles
            .into_iter()
            .map(|t| TitleRow {
                parent: pe
                    .as_ref()
                    .map(|p| counts(&p.commit, &t, p.titles.contains(&t)))
                    .unwrap_or(Some(0)),
                culprit: counts(&ce.commit, &t, ce.titles.contains(&t)),
                title: t,
            })
            .collect();
    }
}

impl FixedFacts {
    /// Gathers the facts of fixed regression `regression_id` from the store
    /// (the report subject is composed again; the outbox uses the stored one).
    pub fn from_store(
        store: &Store,
        regression_id: i64,
        public_url: Option<&str>,
    ) -> crate::Result<FixedFacts> {
        let r = store.regression(regression_id)?.ok_or_else(|| {
            crate::Error::Usage(format!("regression #{regression_id} is not in the store"))
        })?;
        let tree = store
            .night(r.first_night)?
            .map(|n| n.tree)
            .unwrap_or_default();
        Ok(FixedFacts {
            regression_id: r.id,
            report_subject: report_subject(&r.title, &tree, &r.branch),
            title: r.title,
            tree,
            branch: r.branch,
            culprit: r.culprit,
            last_bad_head: r.last_bad_head,
            fixed_head: r.fixed_head,
            fixed_range: r.fixed_range,
            clean_nights: r.clean_nights,
            public_url: public_url.map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CULPRIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const PARENT: &str = "fedcba9876543210fedcba9876543210fedcba98";

    fn facts() -> ReportFacts {
        ReportFacts {
            regression_id: 42,
            title: "csd: CSD lock is stuck".into(),
            job: "csd-nightly".into(),
            tree: "https://git.example.org/pub/scm/linux/kernel/git/torvalds/linux.git".into(),
            branch: "master".into(),
            cell: "vcpus=4".into(),
            good: Some(PARENT.into()),
            bad: "1111111111112222222222223333333333334444".into(),
            found_at: "2026-01-02T03:04:05Z".into(),
            bad_runs: Some((10, 6)),
            bisection_id: Some(7),
            status: Some("culprit".into()),
            culprit: Some(Commit {
                sha: CULPRIT.into(),
                subject: "smp: make \"csd\" faster".into(),
                author: "Jane Dev <jane@example.org>".into(),
                date: "2026-01-01T00:00:00+00:00".into(),
            }),
            confidence: Some(0.995),
            predicate: "csd".into(),
            parent: Some(Column {
                commit: PARENT.into(),
                runs: 8,
                fails: 0,
            }),
            culprit_runs: Some(Column {
                commit: CULPRIT.into(),
                runs: 8,
                fails: 5,
            }),
            titles: vec![TitleRow {
                title: "csd: CSD lock is stuck".into(),
                parent: Some(0),
                culprit: Some(5),
            }],
            excerpt_commit: Some(CULPRIT.into()),
            excerpt: vec!["[   12.5] smp: csd: Detected non-responsive CSD lock".into()],
            spec: Some(RunSpec {
                vcpus: 4,
                scftorture: "nthreads=4 weight_single=1".into(),
                ..RunSpec::default()
            }),
            sender: "csdci <ci@example.org>".into(),
            public_url: Some("https://ci.example.org/".into()),
            ..ReportFacts::default()
        }
    }

    #[test]
    fn the_report_names_the_culprit_with_its_tags() {
        let d = report(&facts());
        assert_eq!(d.subject, "[csdci] csd: CSD lock is stuck in linux/master");
        let b = &d.body;
        assert!(b.contains(&format!("commit {CULPRIT}")), "{b}");
        assert!(b.contains("author:  Jane Dev <jane@example.org>"), "{b}");
        assert!(
            b.contains("| Fixes: 0123456789ab (\"smp: make 'csd' faster\")"),
            "{b}"
        );
        assert!(b.contains("| Reported-by: csdci <ci@example.org>"), "{b}");
        assert!(
            b.contains("| Closes: https://ci.example.org/regressions/42"),
            "{b}"
        );
        assert!(b.contains("confidence 99.5%"), "{b}");
        assert!(b.contains("Detected non-responsive CSD lock"), "{b}");
        assert!(b.contains(
            "  csdci run --tree linux --commit 0123456789abcdef0123456789abcdef01234567 --vcpus 4 --memory 2G --duration 60 --scftorture 'nthreads=4 weight_single=1'\n"
        ), "{b}");
        assert!(b.contains("git clone https://git.example.org/pub/scm/linux/kernel/git/torvalds/linux.git linux"), "{b}");
        assert!(b.is_ascii(), "{b}");
    }

    #[test]
    fn the_table_sets_parent_against_culprit() {
        let b = report(&facts()).body;
        let table: Vec<&str> = b
            .lines()
            .skip_while(|l| !l.starts_with("Runs of the culprit"))
            .skip(2)
            .take(5)
            .collect();
        assert_eq!(
            table[0].split_whitespace().collect::<Vec<_>>(),
            ["parent", "culprit"]
        );
        assert_eq!(
            table[1].split_whitespace().collect::<Vec<_>>(),
            ["commit", "fedcba987654", "0123456789ab"]
        );
        assert_eq!(
            table[2].split_whitespace().collect::<Vec<_>>(),
            ["runs", "8", "8"]
        );
        assert_eq!(
            table[3].split_whitespace().collect::<Vec<_>>(),
            ["failed", "(predicate)", "0", "5"]
        );
        assert!(
            table[4].trim_start().starts_with("csd: CSD lock is stuck"),
            "{b}"
        );
        assert!(table[4].ends_with(" 0  5"), "{b}");
    }

    /// Whether the text suggests a `Fixes:` tag (a line of the tag block).
    fn suggests_fixes(body: &str) -> bool {
        body.lines().any(|l| {
            l.trim_start_matches("| ")
                .trim_start()
                .starts_with("Fixes: ")
        })
    }

    #[test]
    fn a_doubtful_bisection_says_so_and_blames_nobody() {
        let mut f = facts();
        f.status = Some("doubtful".into());
        f.doubt = Some("reverting it on the bad tip does not fix the failure".into());
        let b = report(&f).body;
        let flat = b.replace('\n', " ");
        assert!(!suggests_fixes(&b), "{b}");
        assert!(flat.contains("NOT a confirmed culprit"), "{b}");
        assert!(b.contains("Why it is in doubt: reverting it"), "{b}");
        assert!(b.contains("No Fixes: tag is suggested"), "{b}");
        // The reproduce line tests the bad head, not the doubtful commit.
        assert!(
            b.contains("--commit 1111111111112222222222223333333333334444"),
            "{b}"
        );
    }

    #[test]
    fn an_unisolated_bisection_lists_its_candidates() {
        let mut f = facts();
        f.status = Some("not_isolated".into());
        f.culprit = None;
        f.culprit_runs = None;
        f.candidates = vec![
            Commit {
                sha: CULPRIT.into(),
                subject: "one".into(),
                ..Commit::default()
            },
            Commit {
                sha: PARENT.into(),
                subject: "two".into(),
                ..Commit::default()
            },
        ];
        let b = report(&f).body;
        assert!(!suggests_fixes(&b), "{b}");
        assert!(
            b.replace('\n', " ").contains("could not isolate one"),
            "{b}"
        );
        assert!(
            b.contains("  0123456789ab one\n  fedcba987654 two\n"),
            "{b}"
        );
        assert!(!b.contains("Runs of the culprit"), "{b}");
    }

    #[test]
    fn a_build_regression_quotes_the_compiler() {
        let mut f = facts();
        f.build = true;
        f.title = "build: kernel/smp.c:123: error: 'x' undeclared".into();
        f.build_error =
            Some("kernel/smp.c:123:5: error: 'x' undeclared\n  123 |     x = 1;".into());
        f.excerpt.clear();
        let d = report(&f);
        assert!(
            d.subject.starts_with("[csdci] build: kernel/smp.c:123"),
            "{}",
            d.subject
        );
        assert!(d.body.contains("no longer builds"), "{}", d.body);
        assert!(d.body.contains("The compiler error:\n\n  kernel/smp.c:123:5: error: 'x' undeclared\n    123 |     x = 1;\n"), "{}", d.body);
        assert!(!d.body.contains("predicate:"), "{}", d.body);
    }

    #[test]
    fn untrusted_text_is_cleaned_and_bounded() {
        let mut f = facts();
        f.excerpt = (0..100)
            .map(|i| {
                format!(
                    "line {i}\x1b[31m red\x07\r\tend{}",
                    "x".repeat(if i == 0 { 500 } else { 0 })
                )
            })
            .collect();
        let b = report(&f).body;
        assert!(
            !b.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{b:?}"
        );
        assert!(b.contains("  line 1[31m red\tend\n"), "{b}");
        assert!(b.contains("  [... 60 more lines]"), "{b}");
        assert!(!b.contains("line 40 "), "{b}");
        assert!(
            b.lines().all(|l| l.chars().count() <= LINE_CHARS + 2),
            "{b}"
        );
    }

    #[test]
    fn without_a_public_url_there_is_no_closes_line() {
        let mut f = facts();
        f.public_url = None;
        let b = report(&f).body;
        assert!(!b.contains("Closes:"), "{b}");
        assert!(b.ends_with("-- \ncsdci, regression #42\n"), "{b}");
    }

    #[test]
    fn a_local_tree_is_run_in_place() {
        let l = reproduce(
            "/srv/git/my tree",
            "abc",
            Some(&RunSpec {
                accel: crate::vm::Accel::Tcg,
                stop_after_crash_s: Some(5),
                ..RunSpec::default()
            }),
            None,
        );
        assert_eq!(
            l,
            [
                "csdci run --tree '/srv/git/my tree' --commit abc --vcpus 8 --memory 2G --duration 60 --accel tcg --stop-after-crash 5"
            ]
        );
        let l = reproduce("/srv/linux", "abc", None, Some("/jobs/test.sh"));
        assert_eq!(l, ["cd /srv/linux && git checkout abc", "/jobs/test.sh"]);
    }

    #[test]
    fn tree_names_and_quotes() {
        assert_eq!(tree_name("https://example.org/a/linux.git"), "linux");
        assert_eq!(
            tree_name("git@example.org:next/linux-next.git/"),
            "linux-next"
        );
        assert_eq!(tree_name("/srv/git/linux"), "linux");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("nthreads=4"), "nthreads=4");
    }

    #[test]
    fn message_ids_are_unique_and_in_the_senders_domain() {
        let a = message_id(42, "report", "csdci <ci@example.org>");
        let b = message_id(42, "report", "ci@example.org");
        assert!(a.starts_with("csdci.r42.report."), "{a}");
        assert!(a.ends_with("@example.org"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.len(), b.len());
        assert!(message_id(1, "fixed", "nobody").ends_with("@localhost"));
    }

    #[test]
    fn the_fixed_mail_answers_the_report() {
        let f = FixedFacts {
            regression_id: 42,
            title: "csd: CSD lock is stuck".into(),
            tree: "/srv/linux".into(),
            branch: "master".into(),
            report_subject: "[csdci] csd: CSD lock is stuck in linux/master".into(),
            culprit: Some(CULPRIT.into()),
            last_bad_head: "1111111111112222222222223333333333334444".into(),
            fixed_head: Some(PARENT.into()),
            fixed_range: Some(format!("111111111111..{}", &PARENT[..12])),
            clean_nights: 3,
            public_url: None,
        };
        let d = fixed(&f);
        assert_eq!(
            d.subject,
            "Re: [csdci] csd: CSD lock is stuck in linux/master"
        );
        assert!(
            d.body.contains("first clean head: fedcba987654"),
            "{}",
            d.body
        );
        assert!(d.body.contains("for 3 nights in a row"), "{}", d.body);
        assert!(
            d.body
                .contains("git log --oneline 111111111111..fedcba987654"),
            "{}",
            d.body
        );
        let d = fixed(&FixedFacts {
            report_subject: d.subject.clone(),
            fixed_range: None,
            ..f
        });
        assert!(!d.subject.starts_with("Re: Re:"), "{}", d.subject);
        assert!(d.body.contains("could not be told"), "{}", d.body);
    }
}

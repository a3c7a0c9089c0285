//! The patch bot: watches a mailing list, tests the series posted there in
//! a sandbox, names the patch that breaks something, and replies on the
//! list in the 0-day robot's style.
//!
//! # Pointing the bot at a list
//!
//! Write a job file with `kind: bot` beside your nightly jobs:
//!
//! ```yaml
//! kind: bot
//! name: smp-bot
//! inbox: https://lore.kernel.org/linux-kernel   # or mbox: FILE / maildir: DIR
//! tree: ~/src/linux                             # URL or path; csdci clones it
//! branch: master                                # base when a series has no base-commit:
//! poll: 10m                                     # default 10m; backs off on HTTP errors
//! incomplete_after: 6h                          # a series missing patches waits this long (default), then one reply names them
//! paths: [kernel/smp.c, kernel/scftorture.c, "include/linux/smp*.h"]
//! subjects: ["smp:", "scftorture"]              # either matches; none: every series
//! test: {vcpus: 8, duration: 60, predicate: csd} # the QEMU pipeline (a nightly job's RunSpec)
//! # or, instead of test:, commands:
//! # build: make -j2                             # in the sandbox, from the tree's top
//! # run: ./tools/testing/run-scf.sh             # in the sandbox: 0 good, 125 skip, else bad
//! runs: 3                                       # runs of the tip and of the base
//! sandbox: {timeout: 30m, memory_mb: 4096, processes: 512, file_size_mb: 2048}
//! reply:
//!   from: csdci bot <ci@example.org>
//!   list: linux-kernel@vger.kernel.org         # Cc'd on every reply
//!   tested_by: false                           # a Tested-by: line on clean/fixing series
//!   max_per_hour: 20
//!   smtp: {url: "smtp://localhost:25", starttls: false}
//! ```
//!
//! Then `csdci bot run --jobs jobs/ --dry-run --once` polls once, tests what
//! is complete and prints the replies it would send (they are kept in the
//! store); without `--dry-run` they go out through `reply.smtp`; without
//! `--once` it keeps polling until SIGINT/SIGTERM.
//!
//! # What happens to a series
//! 1. [`inbox`] reads new mail (`new.atom` + each new thread's
//!    `t.mbox.gz`; or the mbox/maildir); every mail is recorded by
//!    Message-ID in the store, kept or skipped with the reason.
//! 2. [`series`] assembles mails into series (b4's rules) and keeps only
//!    the newest version of each; an older one not yet tested is marked
//!    `superseded`. A series counts when all K patches are there.
//! 3. [`apply`] runs `git am -3` on the `base-commit:` (when the clone has
//!    it) or the branch head.
//! 4. [`test`] builds every patch in order, runs the tip and the base,
//!    bisects inside the series on a new failure, and bounds a fix — every
//!    build (and `run:` command) inside [`crate::sandbox`] (no network, host
//!    read-only). With `test:` it is [`qemu`]: the QEMU pipeline, the
//!    kernel's kconfig and make in the sandbox, the guest in QEMU; a base a
//!    nightly job already tested with the same RunSpec is not run again
//!    (its runs are the base's, and the reply says whose).
//! 5. [`reply`] writes the answer; one per series, rate-limited.
//!
//! Everything is in the store before it is acted on (tables of
//! [`crate::store::series`]), so a restart neither re-tests nor re-replies.

pub mod apply;
pub mod inbox;
pub mod qemu;
pub mod reply;
pub mod series;
pub mod serve;
pub mod test;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::jobs::bot::{BotJob, ReplyPolicy, Testing};
use crate::sandbox::Sandbox;
use crate::store::Store;
use crate::store::series::{InboxState, NewSeries, PatchRow, Reply};

/// How the bot runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write replies to the store and `out` instead of sending them.
    pub dry_run: bool,
}

/// What one cycle of a job did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Cycle {
    pub job: String,
    /// New mails read.
    pub new_mails: u32,
    /// Of those, skipped.
    pub skipped: u32,
    /// The poll's error, if it failed (the position is kept).
    pub poll_error: Option<String>,
    /// (series id, result) tested this cycle.
    pub tested: Vec<(i64, String)>,
    /// Replies written this cycle.
    pub replies: u32,
}

/// The domain of an address (`csdci <ci@example.org>` → `example.org`).
pub fn domain_of(addr: &str) -> String {
    addr.rsplit('@')
        .next()
        .unwrap_or("localhost")
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Polls the job's inbox (unless backing off) and records new mails.
fn read_inbox(store: &Store, job: &BotJob, cycle: &mut Cycle) -> crate::Result<()> {
    let key = job.source.key();
    let mut st = store.inbox_state(&job.name, &key)?;
    if let Some(next) = st
        .next_poll_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        && next > now()
    {
        cycle.poll_error = st.last_error.clone();
        return Ok(());
    }
    let agent = inbox::agent();
    let seen = |mid: &str| store.bot_mail_seen(&job.name, mid).unwrap_or(false);
    match inbox::poll(&agent, &job.source, st.position.as_deref(), &seen) {
        Ok(polled) => {
            for raw in &polled.mails {
                record_mail(store, job, raw, cycle)?;
            }
            st = InboxState {
                position: polled.position.or(st.position),
                failures: 0,
                next_poll_at: None,
                last_error: None,
            };
        }
        Err(e) => {
            tracing::warn!("{}: {e}", job.name);
            st.failures += 1;
            let wait = inbox::backoff(job.poll.min(Duration::from_secs(300)), st.failures);
            st.next_poll_at =
                Some((now() + chrono::Duration::from_std(wait).unwrap_or_default()).to_rfc3339());
            st.last_error = Some(e.clone());
            cycle.poll_error = Some(e);
        }
    }
    store.inbox_set(&job.name, &key, &st)?;
    Ok(())
}

fn record_mail(store: &Store, job: &BotJob, raw: &[u8], cycle: &mut Cycle) -> crate::Result<()> {
    let parsed = series::parse_mail(raw);
    let mid = match &parsed {
        Ok(p) => p.message_id.clone(),
        Err(_) => mail_parser::MessageParser::default()
            .parse_headers(raw)
            .and_then(|m| m.message_id().map(str::to_string))
            .unwrap_or_else(|| {
                use sha2::{Digest, Sha256};
                format!("no-message-id-{}", hex::encode(&Sha256::digest(raw)[..8]))
            }),
    };
    let new = match &parsed {
        Ok(p) => store.bot_mail_record(&job.name, &mid, Some(&p.subject_line), Ok(raw))?,
        Err(reason) => {
            let r = reason.to_string();
            let n = store.bot_mail_record(&job.name, &mid, None, Err(&r))?;
            if n {
                cycle.skipped += 1;
            }
            n
        }
    };
    if new {
        cycle.new_mails += 1;
    }
    Ok(())
}

/// One cycle of `job`: read the inbox, assemble, test every complete
/// series not tested yet, reply. Replies (dry run) are printed to `out`.
pub fn cycle(
    store: &Store,
    job: &BotJob,
    opts: &Options,
    out: &mut dyn Write,
) -> crate::Result<Cycle> {
    let mut cycle = Cycle {
        job: job.name.clone(),
        ..Default::default()
    };
    read_inbox(store, job, &mut cycle)?;
    let mails: Vec<series::PatchMail> = store
        .bot_mails_kept(&job.name)?
        .iter()
        .filter_map(|r| series::parse_mail(r).ok())
        .collect();
    let (current, old) = series::latest(series::assemble(&mails));
    for s in &old {
        let id = add_series(store, job, s)?;
        let row = store.series_by_id(id)?;
        if row.is_some_and(|r| r.status == "waiting") {
            store.series_set(
                id,
                "superseded",
                None,
                None,
                Some("a newer version was posted before it was tested"),
                None,
            )?;
        }
    }
    for s in &current {
        let id = add_series(store, job, s)?;
        let Some(row) = store.series_by_id(id)? else {
            continue;
        };
        if !matches!(row.status.as_str(), "waiting" | "testing") {
            continue;
        }
        if !job.wants(&s.paths(), &s.title) {
            store.series_set(
                id,
                "ignored",
                None,
                None,
                Some("touches none of the job's paths or subjects"),
                None,
            )?;
            continue;
        }
        if !s.complete() {
            let first = chrono::DateTime::parse_from_rfc3339(&row.first_seen)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|_| now());
            let waited = (now() - first).to_std().unwrap_or_default();
            if waited >= job.incomplete_after {
                let missing: Vec<String> = s
                    .missing()
                    .iter()
                    .map(|i| format!("{i}/{}", s.total))
                    .collect();
                let summary = format!("incomplete: patch {} never arrived", missing.join(", "));
                store.series_set(
                    id,
                    "incomplete",
                    None,
                    Some("incomplete"),
                    Some(&summary),
                    None,
                )?;
                writeln!(
                    out,
                    "{}: series {id} \"{}\" v{}: {summary}",
                    job.name, s.title, s.version
                )
                .ok();
                if reply_incomplete(store, job, s, id, opts, out)? {
                    cycle.replies += 1;
                }
            }
            continue;
        }
        let result = test_one(store, job, s, id, opts, out)?;
        cycle.tested.push((id, result.clone()));
        if reply_one(store, job, s, id, opts, out)? {
            cycle.replies += 1;
        }
    }
    if !opts.dry_run {
        flush_replies(store, job)?;
    }
    Ok(cycle)
}

fn add_series(store: &Store, job: &BotJob, s: &series::Series) -> crate::Result<i64> {
    let head = s
        .head_mail()
        .map(|m| m.message_id.clone())
        .unwrap_or_default();
    Ok(store.series_add(&NewSeries {
        job: &job.name,
        series_key: &s.key,
        topic: &s.topic,
        version: s.version,
        total: s.total,
        title: &s.title,
        author: &s.from,
        head_mid: &head,
    })?)
}

/// The folder under the data dir where the bot keeps job `name`'s files.
pub fn job_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("bot").join(name)
}

fn test_one(
    store: &Store,
    job: &BotJob,
    s: &series::Series,
    id: i64,
    _opts: &Options,
    out: &mut dyn Write,
) -> crate::Result<String> {
    store.series_set(id, "testing", None, None, None, None)?;
    let data = store.data_dir().to_path_buf();
    let remote = crate::vcs::fetch::Remote::ensure(
        &crate::service::night::trees_dir(&data),
        &job.tree,
        job.reference.as_deref(),
    )?;
    let branch = job
        .branches
        .first()
        .cloned()
        .unwrap_or_else(|| "master".into());
    let head = remote.fetch(&branch)?;
    // The other branches are fetched too: a series' base-commit may be there.
    for b in job.branches.iter().skip(1) {
        if let Err(e) = remote.fetch(b) {
            tracing::warn!("{}: fetch {b}: {e}", job.name);
        }
    }
    let (base, from_trailer) = match s
        .base_commit
        .as_deref()
        .and_then(|b| apply::resolve(remote.path(), b))
    {
        Some(b) => (b, true),
        None => (head, false),
    };
    let dir = job_dir(&data, &job.name);
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io(&dir, e))?;
    // With the QEMU pipeline the series is applied in a worktree beside the
    // kernel builds' (data/worktrees), so its commits are in their mirror.
    let wt_path = match &job.testing {
        Testing::Commands { .. } => dir.join("worktree"),
        Testing::Qemu(_) => data.join("worktrees").join(format!("bot-{}", job.name)),
    };
    let wt = crate::vcs::worktree::Worktree::ensure(remote.path(), &wt_path)?;
    let mut known: Option<test::KnownBase> = None;
    let log = dir.join(format!("series-{id}.log"));
    let _ = std::fs::remove_file(&log);
    writeln!(
        out,
        "{}: series {id} \"{}\" v{}: applying on {}",
        job.name,
        s.title,
        s.version,
        crate::events::short(&base)
    )
    .ok();
    let (outcome, patches) = match apply::apply(&wt, &base, &s.mbox())? {
        apply::Applied::DoesNotApply(message) => {
            (test::Outcome::DoesNotApply { message }, Vec::new())
        }
        apply::Applied::Commits(commits) => {
            let name = job.name.clone();
            let mut progress = |m: &str| tracing::info!("{name}: series {id}: {m}");
            match &job.testing {
                Testing::Commands { build, run } => {
                    let mut writable = vec![wt.path().to_path_buf()];
                    writable.extend(crate::sandbox::ccache_dir());
                    let sandbox = Sandbox {
                        writable,
                        limits: job.limits.clone(),
                    };
                    let mut tester =
                        test::CommandTester::new(wt.clone(), sandbox, build, run, &log);
                    test::test_series(&mut tester, &base, &commits, job.runs, None, &mut progress)?
                }
                Testing::Qemu(spec) => {
                    // make's source and object trees are added by the build;
                    // besides them only the ccache is writable.
                    let sandbox = Sandbox {
                        writable: crate::sandbox::ccache_dir().into_iter().collect(),
                        limits: job.limits.clone(),
                    };
                    known = nightly_base(store, &base, spec)?;
                    if let Some(k) = &known {
                        writeln!(out, "{}: series {id}: base: {}", job.name, k.source).ok();
                    }
                    let mut tester = qemu::QemuTester::new(remote.path(), &data, spec, sandbox)?;
                    test::test_series(
                        &mut tester,
                        &base,
                        &commits,
                        job.runs,
                        known.as_ref(),
                        &mut progress,
                    )?
                }
            }
        }
    };
    for p in &patches {
        let mail = s.patches.get(&p.idx);
        store.series_patch_put(&PatchRow {
            series_id: id,
            idx: p.idx,
            message_id: mail.map(|m| m.message_id.clone()).unwrap_or_default(),
            title: mail.map(|m| m.subject.title.clone()).unwrap_or_default(),
            commit_sha: Some(p.commit.clone()),
            build: Some(p.build.clone()),
            build_error: (!p.errors.is_empty()).then(|| p.errors.join("\n")),
            runs: p.runs,
            fails: p.fails,
        })?;
    }
    let facts = Facts {
        base: base.clone(),
        from_trailer,
        branch,
        outcome,
        patches,
    };
    let json = serde_json::to_string(&Report {
        facts: facts.clone(),
        known_base: known,
    })
    .unwrap_or_default();
    let summary = summary(&facts.outcome, s.total);
    store.series_set(
        id,
        "done",
        Some(&base),
        Some(facts.outcome.name()),
        Some(&summary),
        Some(&json),
    )?;
    writeln!(
        out,
        "{}: series {id} \"{}\" v{}: {summary}",
        job.name, s.title, s.version
    )
    .ok();
    Ok(facts.outcome.name().to_string())
}

/// What a test found, as stored in `series.report`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    pub base: String,
    pub from_trailer: bool,
    pub branch: String,
    pub outcome: test::Outcome,
    pub patches: Vec<test::PatchResult>,
}

/// `series.report`: the [`Facts`] (its fields at the top level, so a
/// reader of `Facts` reads it) and where the base's runs came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    #[serde(flatten)]
    pub facts: Facts,
    /// The base's runs when they came from a nightly job (not run again).
    #[serde(default)]
    pub known_base: Option<test::KnownBase>,
}

fn summary(o: &test::Outcome, total: u32) -> String {
    use test::Outcome as O;
    match o {
        O::DoesNotApply { .. } => "does not apply".into(),
        O::BaseUntestable { reason } => format!("base untestable: {reason}"),
        O::BuildFailed { patch, errors } => format!(
            "patch {patch}/{total} breaks the build: {}",
            errors.first().map(String::as_str).unwrap_or("")
        ),
        O::Clean { runs } => format!("clean ({runs} runs)"),
        O::Regression {
            guilty,
            tip_fails,
            runs,
            ..
        } => {
            format!("patch {guilty}/{total} introduces a failure (tip failed {tip_fails}/{runs})")
        }
        O::Fixes {
            runs,
            base_fails,
            base_runs,
            upper_95,
        } => format!(
            "fixes: 0 failures in {runs} runs: rate < {upper_95:.3} at 95%; base failed {base_fails}/{base_runs}"
        ),
        O::StillFails {
            base_fails,
            tip_fails,
            runs,
            ..
        } => {
            format!("still fails (base {base_fails}/{runs}, tip {tip_fails}/{runs})")
        }
        O::Infra { reason } => format!("infra: {reason}"),
    }
}

/// The job's reply policy when series `id` is still to be answered (the
/// job replies and the series has no reply yet).
fn unreplied<'j>(
    store: &Store,
    job: &'j BotJob,
    id: i64,
) -> crate::Result<Option<&'j ReplyPolicy>> {
    match &job.reply {
        Some(policy) if store.series_reply(id)?.is_none() => Ok(Some(policy)),
        _ => Ok(None),
    }
}

fn reply_one(
    store: &Store,
    job: &BotJob,
    s: &series::Series,
    id: i64,
    opts: &Options,
    out: &mut dyn Write,
) -> crate::Result<bool> {
    let Some(policy) = unreplied(store, job, id)? else {
        return Ok(false);
    };
    let Some(row) = store.series_by_id(id)? else {
        return Ok(false);
    };
    let Some(Report {
        facts, known_base, ..
    }) = row
        .report
        .as_deref()
        .and_then(|j| serde_json::from_str::<Report>(j).ok())
    else {
        return Ok(false);
    };
    let tested = job.testing.describe();
    let draft = reply::compose(
        &reply::Facts {
            series: s,
            tree: &job.tree,
            branch: &facts.branch,
            base: &facts.base,
            base_from_trailer: facts.from_trailer,
            tested: &tested,
            runs: job.runs,
            from: &policy.from,
            list: policy.list.as_deref(),
            tested_by: policy.tested_by,
            base_note: known_base.as_ref().map(|k| k.source.as_str()),
            base_runs: known_base.as_ref().map(|k| k.runs),
        },
        &facts.outcome,
        &facts.patches,
    );
    keep_reply(store, policy, id, &draft, opts, out)
}

/// The runs of a nightly job that tested `base` with `spec` (the newest
/// night's cell with an equal RunSpec), as the base's evidence.
fn nightly_base(
    store: &Store,
    base: &str,
    spec: &crate::spec::RunSpec,
) -> crate::Result<Option<test::KnownBase>> {
    for e in store.nightly_evidence(base)? {
        let Ok(theirs) = serde_json::from_str::<crate::spec::RunSpec>(&e.spec) else {
            continue;
        };
        if theirs != *spec {
            continue;
        }
        let day = e.at.get(..10).unwrap_or(&e.at);
        let what = if e.fails == 0 {
            format!("{} clean run{}", e.runs, if e.runs == 1 { "" } else { "s" })
        } else {
            format!("{} failures in {} runs", e.fails, e.runs)
        };
        return Ok(Some(test::KnownBase {
            runs: e.runs,
            fails: e.fails,
            source: format!(
                "{what} from the nightly job {} on {day} (night {})",
                e.job, e.night_id
            ),
        }));
    }
    Ok(None)
}

/// `6h`, `30m`, `45s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Queues (or, dry run, prints) the one reply to an incomplete series.
fn reply_incomplete(
    store: &Store,
    job: &BotJob,
    s: &series::Series,
    id: i64,
    opts: &Options,
    out: &mut dyn Write,
) -> crate::Result<bool> {
    let Some(policy) = unreplied(store, job, id)? else {
        return Ok(false);
    };
    let draft = reply::compose_incomplete(
        s,
        &s.missing(),
        &human(job.incomplete_after),
        &policy.from,
        policy.list.as_deref(),
    );
    keep_reply(store, policy, id, &draft, opts, out)
}

/// Stores `draft` as series `id`'s reply (queued, or printed on a dry run);
/// false when it has one already.
fn keep_reply(
    store: &Store,
    policy: &ReplyPolicy,
    id: i64,
    draft: &reply::Draft,
    opts: &Options,
    out: &mut dyn Write,
) -> crate::Result<bool> {
    let status = if opts.dry_run { "dry_run" } else { "queued" };
    let added = store.series_reply_add(&Reply {
        id: 0,
        series_id: id,
        message_id: draft.message_id.clone(),
        in_reply_to: draft.in_reply_to.clone(),
        refs: draft.references.join(" "),
        sender: policy.from.clone(),
        recipients: draft.to.clone(),
        subject: draft.subject.clone(),
        body: draft.body.clone(),
        status: status.into(),
        last_error: None,
        created_at: String::new(),
        sent_at: None,
    })?;
    if added.is_none() {
        return Ok(false);
    }
    if opts.dry_run {
        let refs: Vec<String> = draft.references.iter().map(|r| format!("<{r}>")).collect();
        writeln!(
            out,
            "From: {}\nTo: {}\nSubject: {}\nMessage-ID: <{}>\nIn-Reply-To: <{}>\nReferences: {}\n\n{}",
            policy.from,
            draft.to.join(", "),
            draft.subject,
            draft.message_id,
            draft.in_reply_to,
            refs.join(" "),
            draft.body
        )
        .ok();
    }
    Ok(true)
}

/// Sends the job's queued replies through `reply.smtp`, at most
/// `max_per_hour` an hour; a failure is kept and retried next cycle.
fn flush_replies(store: &Store, job: &BotJob) -> crate::Result<()> {
    let Some(policy) = &job.reply else {
        return Ok(());
    };
    let Some(smtp) = &policy.smtp else {
        return Ok(());
    };
    let hour_ago =
        (now() - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut budget = policy
        .max_per_hour
        .saturating_sub(store.series_replies_since(&hour_ago)?);
    for r in store.series_replies_unsent()? {
        let Some(row) = store.series_by_id(r.series_id)? else {
            continue;
        };
        if row.job != job.name {
            continue;
        }
        if budget == 0 {
            tracing::info!("{}: reply rate limit reached; the rest waits", job.name);
            break;
        }
        match send(smtp, &r) {
            Ok(()) => {
                store.series_reply_mark(r.id, None)?;
                budget -= 1;
            }
            Err(e) => {
                tracing::warn!("{}: reply {}: {e}", job.name, r.id);
                store.series_reply_mark(r.id, Some(&e))?;
            }
        }
    }
    Ok(())
}

/// Hands one reply to the relay (the same SMTP sending as every csdci mail).
fn send(n: &crate::jobs::Notify, r: &Reply) -> Result<(), String> {
    use crate::mail::smtp::{self, Outgoing, Relay};
    let bare = |s: &str| s.trim().trim_matches(|c| c == '<' || c == '>').to_string();
    smtp::send(
        &Relay::from_notify(n),
        &Outgoing {
            from: r.sender.clone(),
            to: r.recipients.clone(),
            subject: r.subject.clone(),
            body: r.body.clone(),
            message_id: bare(&r.message_id),
            in_reply_to: Some(bare(&r.in_reply_to)),
            references: r.refs.split_whitespace().map(bare).collect(),
        },
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_as_facts_and_keeps_the_known_base() {
        let r = Report {
            facts: Facts {
                base: "b".into(),
                from_trailer: true,
                branch: "main".into(),
                outcome: test::Outcome::Clean { runs: 3 },
                patches: Vec::new(),
            },
            known_base: Some(test::KnownBase {
                runs: 2,
                fails: 0,
                source: "2 clean runs from the nightly job n on 2026-12-03 (night 1)".into(),
            }),
        };
        let json = serde_json::to_string(&r).unwrap();
        let f: Facts = serde_json::from_str(&json).unwrap();
        assert_eq!(f.outcome, test::Outcome::Clean { runs: 3 });
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.known_base, r.known_base);
        // Reports stored before have no known base.
        let old: Report = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(old.known_base, None);
        assert_eq!(human(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(human(Duration::from_secs(90)), "90s");
    }
}

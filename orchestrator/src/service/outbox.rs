//! The outbox: a regression's mails are composed and written to the store
//! (`mails`) first, then [`flush`] hands every unsent one to its relay and
//! marks it sent, or failed and kept for the next flush. A mail is queued at
//! most once per regression and kind (`report`, `fixed`), so it is never sent
//! twice; the "fixed" follow-up answers the report (`In-Reply-To`).

use serde::Serialize;

use crate::jobs::Job;
use crate::mail::compose::{self, FixedFacts, ReportFacts};
use crate::mail::smtp::{self, Outgoing, Relay};
use crate::store::Store;
use crate::store::mails::NewMail;

/// The report mail's kind.
pub const REPORT: &str = "report";
/// The "fixed" follow-up's kind.
pub const FIXED: &str = "fixed";

/// What one [`flush`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flushed {
    /// Mails the relay took.
    pub sent: u32,
    /// Mails that failed (kept; retried by the next flush).
    pub failed: u32,
}

/// Composes and queues the report mail of regression `regression_id`; its
/// id, or `None` when the job mails nobody or the report is already queued
/// (or sent).
pub fn queue_report(
    store: &Store,
    job: &Job,
    regression_id: i64,
    public_url: Option<&str>,
) -> crate::Result<Option<i64>> {
    let Some(notify) = &job.notify else {
        return Ok(None);
    };
    if store.mail_of(regression_id, REPORT)?.is_some() {
        return Ok(None);
    }
    let mut facts = ReportFacts::from_store(store, regression_id, public_url)?;
    facts.sender = notify.from.clone();
    facts.command = job.command.clone();
    if facts.tree.is_empty() {
        facts.tree = job.tree.clone();
    }
    let draft = compose::report(&facts);
    let message_id = compose::message_id(regression_id, REPORT, &notify.from);
    let relay = Relay::from_notify(notify).to_json();
    let id = store.mail_queue(&NewMail {
        regression_id,
        kind: REPORT,
        message_id: &message_id,
        in_reply_to: None,
        sender: &notify.from,
        recipients: &notify.to,
        subject: &draft.subject,
        body: &draft.body,
        relay: &relay,
    })?;
    if let Some(id) = id {
        tracing::info!(regression = regression_id, mail = id, subject = %draft.subject, "report mail queued");
    }
    Ok(id)
}

/// Composes and queues the "fixed" follow-up of regression `regression_id`,
/// threaded under its report; `None` when the job mails nobody, no report
/// was queued for it (nobody was told of it), or the follow-up is already
/// queued.
pub fn queue_fixed(
    store: &Store,
    job: &Job,
    regression_id: i64,
    public_url: Option<&str>,
) -> crate::Result<Option<i64>> {
    let Some(notify) = &job.notify else {
        return Ok(None);
    };
    if store.mail_of(regression_id, FIXED)?.is_some() {
        return Ok(None);
    }
    let Some(report) = store.mail_of(regression_id, REPORT)? else {
        return Ok(None);
    };
    let mut facts = FixedFacts::from_store(store, regression_id, public_url)?;
    facts.report_subject = report.subject.clone();
    if facts.tree.is_empty() {
        facts.tree = job.tree.clone();
    }
    let draft = compose::fixed(&facts);
    let message_id = compose::message_id(regression_id, FIXED, &notify.from);
    let relay = Relay::from_notify(notify).to_json();
    let id = store.mail_queue(&NewMail {
        regression_id,
        kind: FIXED,
        message_id: &message_id,
        in_reply_to: Some(&report.message_id),
        sender: &notify.from,
        recipients: &notify.to,
        subject: &draft.subject,
        body: &draft.body,
        relay: &relay,
    })?;
    if let Some(id) = id {
        tracing::info!(regression = regression_id, mail = id, "fixed mail queued");
    }
    Ok(id)
}

/// Sends every unsent mail, oldest first, through the relay stored with it:
/// each is marked sent, or failed with why (kept for the next flush). Two
/// flushes never run at once (a lock in the data directory): while another
/// csdci process flushes, this one leaves the mails to it.
pub fn flush(store: &Store) -> crate::Result<Flushed> {
    let path = store.data_dir().join("outbox.lock");
    let Some(_lock) = crate::lockfile::try_lock(&path).map_err(|e| crate::Error::io(&path, e))?
    else {
        tracing::info!("another csdci process is sending the outbox");
        return Ok(Flushed::default());
    };
    let mut out = Flushed::default();
    for m in store.mails_unsent()? {
        let sent = Relay::from_json(&m.relay).and_then(|relay| {
            let refs: Vec<String> = m.in_reply_to.iter().cloned().collect();
            smtp::send(
                &relay,
                &Outgoing {
                    from: m.sender.clone(),
                    to: m.recipients.clone(),
                    subject: m.subject.clone(),
                    body: m.body.clone(),
                    message_id: m.message_id.clone(),
                    in_reply_to: m.in_reply_to.clone(),
                    references: refs,
                },
            )
        });
        match sent {
            Ok(()) => {
                store.mail_sent(m.id)?;
                out.sent += 1;
                tracing::info!(mail = m.id, regression = m.regression_id, kind = %m.kind, "mail sent");
            }
            Err(e) => {
                store.mail_failed(m.id, &e.to_string())?;
                out.failed += 1;
                tracing::warn!(mail = m.id, regression = m.regression_id, kind = %m.kind, attempts = m.attempts + 1, "mail not sent (kept for the next flush): {e}");
            }
        }
    }
    Ok(out)
}

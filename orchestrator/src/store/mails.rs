//! The outbox: every mail csdci sends is written to `mails` first and marked
//! sent after the relay took it, so a failed send is retried (and the mail is
//! never lost) and a mail is never sent twice: one per regression and kind
//! (`report`, `fixed`). The table is made by [`super::migrations`] (version 4).

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{Error, Store, migrations};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A mail as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mail {
    /// Row id.
    pub id: i64,
    /// The regression it is about.
    pub regression_id: i64,
    /// `report` (a bisection ended, or a build broke) or `fixed`.
    pub kind: String,
    /// `Message-ID` (without angle brackets).
    pub message_id: String,
    /// `In-Reply-To` (the report a follow-up answers).
    pub in_reply_to: Option<String>,
    /// `From`.
    pub sender: String,
    /// `To`.
    pub recipients: Vec<String>,
    /// `Subject`.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// How to reach the relay (JSON of the job's `notify.smtp`).
    pub relay: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once the relay accepted it.
    pub sent_at: Option<String>,
    /// Send attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub regression_id: i64,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub relay: &'a str,
}

const COLS: &str = "id, regression_id, kind, message_id, in_reply_to, sender, recipients, \
    subject, body, relay, created_at, sent_at, attempts, last_error";

fn row(r: &Row<'_>) -> rusqlite::Result<Mail> {
    let recipients: String = r.get(6)?;
    Ok(Mail {
        id: r.get(0)?,
        regression_id: r.get(1)?,
        kind: r.get(2)?,
        message_id: r.get(3)?,
        in_reply_to: r.get(4)?,
        sender: r.get(5)?,
        recipients: serde_json::from_str(&recipients).unwrap_or_default(),
        subject: r.get(7)?,
        body: r.get(8)?,
        relay: r.get(9)?,
        created_at: r.get(10)?,
        sent_at: r.get(11)?,
        attempts: r.get(12)?,
        last_error: r.get(13)?,
    })
}

impl Store {
    fn has_mails(&self) -> bool {
        self.version >= migrations::NIGHTS_SINCE
    }

    /// Queues a mail; `None` when one of this kind for this regression is
    /// already queued or sent (it is never sent twice).
    pub fn mail_queue(&self, m: &NewMail<'_>) -> Result<Option<i64>, Error> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO mails (regression_id, kind, message_id, in_reply_to, sender,
                 recipients, subject, body, relay, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                m.regression_id,
                m.kind,
                m.message_id,
                m.in_reply_to,
                m.sender,
                serde_json::to_string(m.recipients).unwrap_or_else(|_| "[]".into()),
                m.subject,
                m.body,
                m.relay,
                now()
            ],
        )?;
        Ok((n == 1).then(|| self.conn().last_insert_rowid()))
    }

    /// Mails not sent yet, oldest first.
    pub fn mails_unsent(&self) -> Result<Vec<Mail>, Error> {
        if !self.has_mails() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(&format!(
            "SELECT {COLS} FROM mails WHERE sent_at IS NULL ORDER BY id"
        ))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The mail of `kind` about regression `regression`.
    pub fn mail_of(&self, regression: i64, kind: &str) -> Result<Option<Mail>, Error> {
        if !self.has_mails() {
            return Ok(None);
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM mails WHERE regression_id = ?1 AND kind = ?2"),
                params![regression, kind],
                row,
            )
            .optional()?)
    }

    /// Every mail about regression `regression`, oldest first.
    pub fn mails_of(&self, regression: i64) -> Result<Vec<Mail>, Error> {
        if !self.has_mails() {
            return Ok(Vec::new());
        }
        let mut st = self.conn().prepare(&format!(
            "SELECT {COLS} FROM mails WHERE regression_id = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map([regression], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The relay accepted mail `id`.
    pub fn mail_sent(&self, id: i64) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE mails SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Sending mail `id` failed with `error` (it stays queued).
    pub fn mail_failed(&self, id: i64, error: &str) -> Result<(), Error> {
        self.conn().execute(
            "UPDATE mails SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }
}

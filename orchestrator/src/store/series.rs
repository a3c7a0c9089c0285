//! The patch bot's tables (schema version 5, see [`super::migrations`]):
//! its place in each inbox (`bot_inboxes`), every mail it read, kept or
//! skipped with the reason (`bot_mails`, keyed by Message-ID: a mail read
//! twice is one row, so dedup survives restarts), the series it assembled
//! (`series`, one row per job and thread root + version), their patches
//! (`series_patches`) and its replies (`series_replies`, at most one per
//! series).

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{Error, Store, migrations};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where the bot is in one inbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InboxState {
    /// The newest position read (an Atom `<updated>` time, or a mail count).
    pub position: Option<String>,
    /// Failed polls in a row.
    pub failures: u32,
    /// RFC 3339: do not poll before (backoff after failures).
    pub next_poll_at: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// A series as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesRow {
    pub id: i64,
    pub job: String,
    /// Thread root and version (`<root>#v<N>`).
    pub series_key: String,
    /// The same across versions (change-id, or author + title).
    pub topic: String,
    pub version: u32,
    pub total: u32,
    pub title: String,
    pub author: String,
    /// The mail replies go to (cover letter, else patch 1).
    pub head_mid: String,
    /// The base commit tested on.
    pub base: Option<String>,
    /// `waiting`, `testing`, `done`, `superseded`, `incomplete`, `ignored`.
    pub status: String,
    /// `clean`, `regression`, `fixes`, `still_fails`, `build_failed`,
    /// `does_not_apply`, `base_untestable`, `infra`.
    pub result: Option<String>,
    /// One line.
    pub summary: Option<String>,
    /// The result as JSON (see `bot::test::Outcome`).
    pub report: Option<String>,
    pub first_seen: String,
    pub updated_at: String,
}

fn series_row(r: &Row<'_>) -> rusqlite::Result<SeriesRow> {
    Ok(SeriesRow {
        id: r.get(0)?,
        job: r.get(1)?,
        series_key: r.get(2)?,
        topic: r.get(3)?,
        version: r.get(4)?,
        total: r.get(5)?,
        title: r.get(6)?,
        author: r.get(7)?,
        head_mid: r.get(8)?,
        base: r.get(9)?,
        status: r.get(10)?,
        result: r.get(11)?,
        summary: r.get(12)?,
        report: r.get(13)?,
        first_seen: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

const SERIES_COLS: &str = "id, job, series_key, topic, version, total, title, author, head_mid, base, status, result, summary, report, first_seen, updated_at";

/// A new series.
#[derive(Debug, Clone)]
pub struct NewSeries<'a> {
    pub job: &'a str,
    pub series_key: &'a str,
    pub topic: &'a str,
    pub version: u32,
    pub total: u32,
    pub title: &'a str,
    pub author: &'a str,
    pub head_mid: &'a str,
}

/// One patch's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchRow {
    pub series_id: i64,
    /// 1..=K.
    pub idx: u32,
    pub message_id: String,
    pub title: String,
    /// The commit `git am` made.
    pub commit_sha: Option<String>,
    /// `ok`, `failed`, `not_built`.
    pub build: Option<String>,
    pub build_error: Option<String>,
    /// Test runs of this commit and failures among them.
    pub runs: u32,
    pub fails: u32,
}

/// A reply as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub id: i64,
    pub series_id: i64,
    pub message_id: String,
    pub in_reply_to: String,
    /// References, space separated, without angle brackets.
    pub refs: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    /// `dry_run`, `queued`, `sent`, `failed`.
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

fn reply_row(r: &Row<'_>) -> rusqlite::Result<Reply> {
    let rcpt: String = r.get(6)?;
    Ok(Reply {
        id: r.get(0)?,
        series_id: r.get(1)?,
        message_id: r.get(2)?,
        in_reply_to: r.get(3)?,
        refs: r.get(4)?,
        sender: r.get(5)?,
        recipients: serde_json::from_str(&rcpt).unwrap_or_default(),
        subject: r.get(7)?,
        body: r.get(8)?,
        status: r.get(9)?,
        last_error: r.get(10)?,
        created_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

const REPLY_COLS: &str = "id, series_id, message_id, in_reply_to, refs, sender, recipients, subject, body, status, last_error, created_at, sent_at";

impl Store {
    fn has_series(&self) -> bool {
        self.version >= migrations::SERIES_SINCE
    }

    /// The bot's place in `inbox` for `job`.
    pub fn inbox_state(&self, job: &str, inbox: &str) -> Result<InboxState, Error> {
        if !self.has_series() {
            return Ok(InboxState::default());
        }
        Ok(self
            .conn
            .query_row(
                "SELECT position, failures, next_poll_at, last_error FROM bot_inboxes WHERE job = ?1 AND inbox = ?2",
                params![job, inbox],
                |r| {
                    Ok(InboxState {
                        position: r.get(0)?,
                        failures: r.get(1)?,
                        next_poll_at: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Writes the bot's place in `inbox`.
    pub fn inbox_set(&self, job: &str, inbox: &str, s: &InboxState) -> Result<(), Error> {
        self.conn.execute(
            "INSERT INTO bot_inboxes (job, inbox, position, failures, next_poll_at, last_error, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (job, inbox) DO UPDATE SET position = excluded.position,
               failures = excluded.failures, next_poll_at = excluded.next_poll_at,
               last_error = excluded.last_error, updated_at = excluded.updated_at",
            params![
                job,
                inbox,
                s.position,
                s.failures,
                s.next_poll_at,
                s.last_error,
                now()
            ],
        )?;
        Ok(())
    }

    /// Whether `job` has read the mail `message_id` already.
    pub fn bot_mail_seen(&self, job: &str, message_id: &str) -> Result<bool, Error> {
        if !self.has_series() {
            return Ok(false);
        }
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM bot_mails WHERE job = ?1 AND message_id = ?2",
                params![job, message_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a mail kept for assembly (`raw`) or skipped (`reason`); a
    /// mail already recorded is left as it is. Returns whether it was new.
    pub fn bot_mail_record(
        &self,
        job: &str,
        message_id: &str,
        subject: Option<&str>,
        kept: Result<&[u8], &str>,
    ) -> Result<bool, Error> {
        let (status, raw, reason) = match kept {
            Ok(raw) => ("kept", Some(raw), None),
            Err(reason) => ("skipped", None, Some(reason)),
        };
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO bot_mails (job, message_id, status, reason, subject, raw, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![job, message_id, status, reason, subject, raw, now()],
        )?;
        Ok(n == 1)
    }

    /// Every mail `job` kept, oldest first.
    pub fn bot_mails_kept(&self, job: &str) -> Result<Vec<Vec<u8>>, Error> {
        if !self.has_series() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(
            "SELECT raw FROM bot_mails WHERE job = ?1 AND status = 'kept' ORDER BY rowid",
        )?;
        let rows = st.query_map(params![job], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The mails `job` skipped: (Message-ID, reason).
    pub fn bot_mails_skipped(&self, job: &str) -> Result<Vec<(String, String)>, Error> {
        if !self.has_series() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(
            "SELECT message_id, COALESCE(reason, '') FROM bot_mails WHERE job = ?1 AND status = 'skipped' ORDER BY rowid",
        )?;
        let rows = st.query_map(params![job], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The series `key` of `job`.
    pub fn series_get(&self, job: &str, key: &str) -> Result<Option<SeriesRow>, Error> {
        if !self.has_series() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {SERIES_COLS} FROM series WHERE job = ?1 AND series_key = ?2"),
                params![job, key],
                series_row,
            )
            .optional()?)
    }

    /// The series of row `id`.
    pub fn series_by_id(&self, id: i64) -> Result<Option<SeriesRow>, Error> {
        if !self.has_series() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {SERIES_COLS} FROM series WHERE id = ?1"),
                params![id],
                series_row,
            )
            .optional()?)
    }

    /// Every series of `job` (all jobs: `None`), oldest first.
    pub fn series_list(&self, job: Option<&str>) -> Result<Vec<SeriesRow>, Error> {
        if !self.has_series() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(&format!(
            "SELECT {SERIES_COLS} FROM series WHERE ?1 IS NULL OR job = ?1 ORDER BY id"
        ))?;
        let rows = st.query_map(params![job], series_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds series `s` as `waiting` (or returns the existing row's id).
    pub fn series_add(&self, s: &NewSeries<'_>) -> Result<i64, Error> {
        let t = now();
        self.conn.execute(
            "INSERT OR IGNORE INTO series (job, series_key, topic, version, total, title, author, head_mid, status, first_seen, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'waiting', ?9, ?9)",
            params![
                s.job,
                s.series_key,
                s.topic,
                s.version,
                s.total,
                s.title,
                s.author,
                s.head_mid,
                t
            ],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM series WHERE job = ?1 AND series_key = ?2",
            params![s.job, s.series_key],
            |r| r.get(0),
        )?)
    }

    /// Sets a series' status and (when given) its base, result, summary
    /// and report.
    pub fn series_set(
        &self,
        id: i64,
        status: &str,
        base: Option<&str>,
        result: Option<&str>,
        summary: Option<&str>,
        report: Option<&str>,
    ) -> Result<(), Error> {
        self.conn.execute(
            "UPDATE series SET status = ?2, base = COALESCE(?3, base), result = COALESCE(?4, result),
               summary = COALESCE(?5, summary), report = COALESCE(?6, report), updated_at = ?7 WHERE id = ?1",
            params![id, status, base, result, summary, report, now()],
        )?;
        Ok(())
    }

    /// Writes one patch's row (replacing it).
    pub fn series_patch_put(&self, p: &PatchRow) -> Result<(), Error> {
        self.conn.execute(
            "INSERT OR REPLACE INTO series_patches (series_id, idx, message_id, title, commit_sha, build, build_error, runs, fails)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                p.series_id,
                p.idx,
                p.message_id,
                p.title,
                p.commit_sha,
                p.build,
                p.build_error,
                p.runs,
                p.fails
            ],
        )?;
        Ok(())
    }

    /// The patches of series `id`, by index.
    pub fn series_patches(&self, id: i64) -> Result<Vec<PatchRow>, Error> {
        if !self.has_series() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(
            "SELECT series_id, idx, message_id, title, commit_sha, build, build_error, runs, fails
             FROM series_patches WHERE series_id = ?1 ORDER BY idx",
        )?;
        let rows = st.query_map(params![id], |r| {
            Ok(PatchRow {
                series_id: r.get(0)?,
                idx: r.get(1)?,
                message_id: r.get(2)?,
                title: r.get(3)?,
                commit_sha: r.get(4)?,
                build: r.get(5)?,
                build_error: r.get(6)?,
                runs: r.get(7)?,
                fails: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the reply to series `r.series_id`; `None` when the series
    /// already has one (a series is never answered twice).
    pub fn series_reply_add(&self, r: &Reply) -> Result<Option<i64>, Error> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO series_replies (series_id, message_id, in_reply_to, refs, sender, recipients, subject, body, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.series_id,
                r.message_id,
                r.in_reply_to,
                r.refs,
                r.sender,
                serde_json::to_string(&r.recipients).unwrap_or_default(),
                r.subject,
                r.body,
                r.status,
                now()
            ],
        )?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// The reply to series `series_id`.
    pub fn series_reply(&self, series_id: i64) -> Result<Option<Reply>, Error> {
        if !self.has_series() {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {REPLY_COLS} FROM series_replies WHERE series_id = ?1"),
                params![series_id],
                reply_row,
            )
            .optional()?)
    }

    /// Replies not sent yet (`queued` or `failed`).
    pub fn series_replies_unsent(&self) -> Result<Vec<Reply>, Error> {
        if !self.has_series() {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(&format!(
            "SELECT {REPLY_COLS} FROM series_replies WHERE status IN ('queued', 'failed') ORDER BY id"
        ))?;
        let rows = st.query_map([], reply_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replies sent (or written, dry run) since `since` (RFC 3339).
    pub fn series_replies_since(&self, since: &str) -> Result<u32, Error> {
        if !self.has_series() {
            return Ok(0);
        }
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM series_replies WHERE COALESCE(sent_at, created_at) >= ?1 AND status IN ('sent', 'dry_run')",
            params![since],
            |r| r.get(0),
        )?)
    }

    /// Marks reply `id` sent, or failed with `error`.
    pub fn series_reply_mark(&self, id: i64, error: Option<&str>) -> Result<(), Error> {
        match error {
            None => self.conn.execute(
                "UPDATE series_replies SET status = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
                params![id, now()],
            )?,
            Some(e) => self.conn.execute(
                "UPDATE series_replies SET status = 'failed', last_error = ?2 WHERE id = ?1",
                params![id, e],
            )?,
        };
        Ok(())
    }
}

/// A nightly job's finished cell that tested a commit (evidence the bot
/// reuses for a series' base).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NightlyEvidence {
    /// The nightly job.
    pub job: String,
    /// Its night.
    pub night_id: i64,
    /// When that night ended (RFC 3339; its start while it runs).
    pub at: String,
    /// The cell's name and its RunSpec (JSON).
    pub cell: String,
    pub spec: String,
    /// Runs that counted and the failures among them.
    pub runs: u32,
    pub fails: u32,
    /// The `runs` rows.
    pub run_ids: Vec<i64>,
}

impl Store {
    /// Every finished cell (clean or failed, with runs) of a nightly job's
    /// night whose tested head is `commit`, newest first.
    pub fn nightly_evidence(&self, commit: &str) -> Result<Vec<NightlyEvidence>, Error> {
        if self.version < migrations::NIGHTS_SINCE {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare(
            "SELECT n.job, n.id, COALESCE(n.finished_at, n.started_at), c.cell, c.spec, c.runs, c.fails, c.run_ids
             FROM night_cells c JOIN nights n ON n.id = c.night_id
             WHERE n.head = ?1 AND c.status IN ('clean', 'failed') AND c.runs > 0
             ORDER BY n.id DESC",
        )?;
        let rows = st.query_map(params![commit], |r| {
            let ids: String = r.get(7)?;
            Ok(NightlyEvidence {
                job: r.get(0)?,
                night_id: r.get(1)?,
                at: r.get(2)?,
                cell: r.get(3)?,
                spec: r.get(4)?,
                runs: r.get(5)?,
                fails: r.get(6)?,
                run_ids: serde_json::from_str(&ids).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

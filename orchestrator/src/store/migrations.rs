//! The store's schema history: one ordered list of migrations keyed by SQLite's
//! `PRAGMA user_version`. Version N of the schema is what migrations 1..=N make;
//! a database records the last one applied in its header. `Store::open` applies
//! the missing ones in one `BEGIN IMMEDIATE` transaction together with the new
//! `user_version`, so a crash leaves the database at the old version or at the
//! new one, never between.
//!
//! Rules for whoever adds one:
//! - A migration's SQL is history: never edit a released one, add the next.
//! - Append to [`MIGRATIONS`]; its position is its version ([`LATEST`] follows).
//! - If the new schema cannot be read by code of the previous version's
//!   queries (a column renamed, a table dropped), raise [`OLDEST_READABLE`] so
//!   `Store::open_read_only` refuses older databases instead of misreading
//!   them.
//!
//! Done by hand rather than with `rusqlite_migration`: its releases for
//! rusqlite 0.37 (2.3.x) would pin an old line of it, and the three things it
//! would do here (read `user_version`, run the missing steps in a transaction,
//! write `user_version`) are the few lines of [`migrate`].

use rusqlite::Connection;

/// Version 1: the schema as csdci wrote it before schema versions (commit
/// caa16d9). Every statement is `IF NOT EXISTS`: a database of that csdci
/// (`user_version` 0 with the tables already there) passes through unchanged.
const V1_TABLES: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY,
    repo            TEXT NOT NULL,
    commit_sha      TEXT NOT NULL,
    tree_id         TEXT,
    config_hash     TEXT,
    artifact_id     TEXT,
    vcpus           INTEGER NOT NULL,
    memory_mb       INTEGER NOT NULL,
    accel_requested TEXT NOT NULL,
    accel           TEXT,
    scftorture      TEXT NOT NULL,
    duration_s      INTEGER NOT NULL,
    build_seconds   REAL,
    build_cached    INTEGER,
    boot_seconds    REAL,
    test_seconds    REAL,
    verdict         TEXT,
    title           TEXT,
    findings        TEXT,
    vm_exit         TEXT,
    reason          TEXT,
    console_log     TEXT,
    artifacts       TEXT,
    run_dir         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted')),
    pid             INTEGER,
    pid_start       INTEGER,
    started_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX IF NOT EXISTS runs_commit ON runs (commit_sha);
CREATE TABLE IF NOT EXISTS bisections (
    id            INTEGER PRIMARY KEY,
    repo          TEXT NOT NULL,
    good          TEXT NOT NULL,
    bad           TEXT NOT NULL,
    first_parent  INTEGER NOT NULL,
    predicate     TEXT NOT NULL,
    tester        TEXT NOT NULL,
    settings      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    result        TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bisect_steps (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bisection_id  INTEGER NOT NULL REFERENCES bisections(id),
    kind          TEXT NOT NULL CHECK (kind IN ('build', 'run', 'revert_build', 'revert_run')),
    commit_sha    TEXT NOT NULL,
    attempt       INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('started', 'done', 'interrupted')),
    outcome       TEXT,
    artifact_id   TEXT,
    same_as       TEXT,
    reason        TEXT,
    titles        TEXT,
    console_log   TEXT,
    run_id        INTEGER,
    seconds       REAL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX IF NOT EXISTS bisect_steps_bisection ON bisect_steps (bisection_id, id);
CREATE TABLE IF NOT EXISTS bisect_posteriors (
    step_id       INTEGER PRIMARY KEY REFERENCES bisect_steps(id),
    bisection_id  INTEGER NOT NULL REFERENCES bisections(id),
    stage         INTEGER NOT NULL,
    confidence    REAL NOT NULL,
    top           TEXT NOT NULL,
    fail_rate     REAL NOT NULL,
    false_fail    REAL NOT NULL
);
";

/// Version 2: `bisect_steps.kind` also takes merge-base and tip steps. A CHECK
/// constraint only changes by rebuilding the table: copy, drop, create, copy
/// back (ids kept, so posteriors still point at their steps; foreign keys are
/// checked at commit). Done whatever the old CHECK was, so a database of the
/// csdci that widened it without a version comes out the same.
const V2_STEP_KINDS: &str = "
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE bisect_steps_v1 AS
    SELECT id, bisection_id, kind, commit_sha, attempt, status, outcome, artifact_id, same_as,
           reason, titles, console_log, run_id, seconds, started_at, finished_at
    FROM bisect_steps;
DROP TABLE bisect_steps;
CREATE TABLE bisect_steps (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    bisection_id  INTEGER NOT NULL REFERENCES bisections(id),
    kind          TEXT NOT NULL CHECK (kind IN ('build', 'run', 'revert_build', 'revert_run', 'merge_base_build', 'merge_base_run', 'tip_build', 'tip_run')),
    commit_sha    TEXT NOT NULL,
    attempt       INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('started', 'done', 'interrupted')),
    outcome       TEXT,
    artifact_id   TEXT,
    same_as       TEXT,
    reason        TEXT,
    titles        TEXT,
    console_log   TEXT,
    run_id        INTEGER,
    seconds       REAL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
INSERT INTO bisect_steps (id, bisection_id, kind, commit_sha, attempt, status, outcome,
        artifact_id, same_as, reason, titles, console_log, run_id, seconds, started_at, finished_at)
    SELECT id, bisection_id, kind, commit_sha, attempt, status, outcome, artifact_id, same_as,
           reason, titles, console_log, run_id, seconds, started_at, finished_at
    FROM bisect_steps_v1;
DROP TABLE bisect_steps_v1;
CREATE INDEX bisect_steps_bisection ON bisect_steps (bisection_id, id);
";

/// Version 3: the console analyzer's findings of each run, one row per finding
/// in console order (`ordinal` is its index in the analysis), with where it is
/// in the console. Written with the run's finish; reports, the web and dedup
/// read these instead of analysing the console again. `last_line`,
/// `start_byte` and `end_byte` are NULL while the analyzer does not report
/// them. Runs finished before this version get their findings from the JSON
/// copy in `runs.findings` (build errors of untestable runs there are strings,
/// not findings, and are left out).
const V3_FINDINGS: &str = "
CREATE TABLE findings (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    ordinal       INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    first_line    INTEGER NOT NULL,
    last_line     INTEGER,
    start_byte    INTEGER,
    end_byte      INTEGER,
    cpu           INTEGER,
    task          TEXT,
    corrupted     INTEGER NOT NULL DEFAULT 0,
    crash_report  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, ordinal)
) WITHOUT ROWID;
WITH stored AS MATERIALIZED (
    SELECT id, findings FROM runs
    WHERE findings IS NOT NULL AND json_valid(findings) AND json_type(findings) = 'array'
)
INSERT INTO findings (run_id, ordinal, kind, title, first_line, cpu, task, corrupted, crash_report)
    SELECT stored.id, f.key,
           json_extract(f.value, '$.kind'), json_extract(f.value, '$.title'),
           json_extract(f.value, '$.line'), json_extract(f.value, '$.cpu'),
           json_extract(f.value, '$.task'),
           coalesce(json_extract(f.value, '$.corrupted'), 0),
           coalesce(json_extract(f.value, '$.crash_report'), 0)
    FROM stored, json_each(stored.findings) AS f
    WHERE f.type = 'object'
      AND json_type(f.value, '$.kind') = 'text'
      AND json_type(f.value, '$.title') = 'text'
      AND json_type(f.value, '$.line') = 'integer';
";

/// Version 4: nightly jobs. `job_state` is the scheduler's memory (the last
/// schedule slot each job ran for); `nights` one row per job, branch and
/// night (`running` until it ends, so a restart resumes it); `night_cells` one
/// row per matrix cell of a night, its counters updated after every run;
/// `regressions` what the nights found (deduplicated by job, branch and
/// normalised title while open), `regression_nights` which nights saw each;
/// `mails` the outbox: a mail is written here before it is sent and marked
/// sent after, once per regression and kind.
const V4_NIGHTS: &str = "
CREATE TABLE job_state (
    job           TEXT PRIMARY KEY,
    last_slot     TEXT,
    last_started  TEXT,
    last_finished TEXT
);
CREATE TABLE nights (
    id            INTEGER PRIMARY KEY,
    job           TEXT NOT NULL,
    branch        TEXT NOT NULL,
    tree          TEXT NOT NULL,
    head          TEXT,
    prev_head     TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'unchanged', 'tested', 'infra', 'interrupted')),
    reason        TEXT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX nights_job ON nights (job, branch, id);
CREATE TABLE night_cells (
    night_id      INTEGER NOT NULL REFERENCES nights(id),
    cell          TEXT NOT NULL,
    spec          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'clean', 'failed', 'build_failed', 'infra')),
    runs          INTEGER NOT NULL DEFAULT 0,
    fails         INTEGER NOT NULL DEFAULT 0,
    infra         INTEGER NOT NULL DEFAULT 0,
    titles        TEXT NOT NULL DEFAULT '[]',
    run_ids       TEXT NOT NULL DEFAULT '[]',
    build_error   TEXT,
    artifact_id   TEXT,
    PRIMARY KEY (night_id, cell)
);
CREATE TABLE regressions (
    id              INTEGER PRIMARY KEY,
    job             TEXT NOT NULL,
    branch          TEXT NOT NULL,
    cell            TEXT NOT NULL,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('test', 'build')),
    status          TEXT NOT NULL CHECK (status IN ('open', 'fixed')),
    good            TEXT,
    bad             TEXT NOT NULL,
    first_night     INTEGER NOT NULL REFERENCES nights(id),
    last_seen_night INTEGER NOT NULL REFERENCES nights(id),
    last_bad_head   TEXT NOT NULL,
    runs_seen       INTEGER NOT NULL DEFAULT 0,
    clean_nights    INTEGER NOT NULL DEFAULT 0,
    bisection_id    INTEGER REFERENCES bisections(id),
    culprit         TEXT,
    detail          TEXT,
    fixed_night     INTEGER REFERENCES nights(id),
    fixed_head      TEXT,
    fixed_range     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX regressions_open ON regressions (job, branch, title) WHERE status = 'open';
CREATE TABLE regression_nights (
    regression_id INTEGER NOT NULL REFERENCES regressions(id),
    night_id      INTEGER NOT NULL REFERENCES nights(id),
    runs          INTEGER NOT NULL,
    fails         INTEGER NOT NULL,
    PRIMARY KEY (regression_id, night_id)
) WITHOUT ROWID;
CREATE TABLE mails (
    id             INTEGER PRIMARY KEY,
    regression_id  INTEGER NOT NULL REFERENCES regressions(id),
    kind           TEXT NOT NULL CHECK (kind IN ('report', 'fixed')),
    message_id     TEXT NOT NULL UNIQUE,
    in_reply_to    TEXT,
    sender         TEXT NOT NULL,
    recipients     TEXT NOT NULL,
    subject        TEXT NOT NULL,
    body           TEXT NOT NULL,
    relay          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    sent_at        TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    UNIQUE (regression_id, kind)
);
";

/// Version 5: the patch bot: its place in each inbox, the mails it kept,
/// the mails it skipped (and why), series, their patches and its replies
/// (one per series: a series is never answered twice).
const V5_SERIES: &str = "
CREATE TABLE bot_inboxes (
    job            TEXT NOT NULL,
    inbox          TEXT NOT NULL,
    position       TEXT,
    failures       INTEGER NOT NULL DEFAULT 0,
    next_poll_at   TEXT,
    last_error     TEXT,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (job, inbox)
);
CREATE TABLE bot_mails (
    job            TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('kept', 'skipped')),
    reason         TEXT,
    subject        TEXT,
    raw            BLOB,
    received_at    TEXT NOT NULL,
    PRIMARY KEY (job, message_id)
);
CREATE TABLE series (
    id             INTEGER PRIMARY KEY,
    job            TEXT NOT NULL,
    series_key     TEXT NOT NULL,
    topic          TEXT NOT NULL,
    version        INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    title          TEXT NOT NULL,
    author         TEXT NOT NULL,
    head_mid       TEXT NOT NULL,
    base           TEXT,
    status         TEXT NOT NULL CHECK (status IN ('waiting', 'testing', 'done', 'superseded', 'incomplete', 'ignored')),
    result         TEXT,
    summary        TEXT,
    report         TEXT,
    first_seen     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (job, series_key)
);
CREATE TABLE series_patches (
    series_id      INTEGER NOT NULL REFERENCES series (id),
    idx            INTEGER NOT NULL,
    message_id     TEXT NOT NULL,
    title          TEXT NOT NULL,
    commit_sha     TEXT,
    build          TEXT,
    build_error    TEXT,
    runs           INTEGER NOT NULL DEFAULT 0,
    fails          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, idx)
);
CREATE TABLE series_replies (
    id             INTEGER PRIMARY KEY,
    series_id      INTEGER NOT NULL UNIQUE REFERENCES series (id),
    message_id     TEXT NOT NULL,
    in_reply_to    TEXT NOT NULL,
    refs           TEXT NOT NULL,
    sender         TEXT NOT NULL,
    recipients     TEXT NOT NULL,
    subject        TEXT NOT NULL,
    body           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('dry_run', 'queued', 'sent', 'failed')),
    last_error     TEXT,
    created_at     TEXT NOT NULL,
    sent_at        TEXT
);
";

/// Version 6: fix validations: a fix commit of a bisection's regression run
/// K times (`csdci demo`, `csdci bisect --validate-fix REV`), kept with the
/// bisection (one row per bisection and fix commit; a new validation of the
/// same fix replaces it).
const V6_FIX_VALIDATIONS: &str = "
CREATE TABLE fix_validations (
    id                    INTEGER PRIMARY KEY,
    bisection_id          INTEGER NOT NULL REFERENCES bisections (id),
    fix_commit            TEXT NOT NULL,
    runs                  INTEGER NOT NULL,
    fails                 INTEGER NOT NULL,
    failure_rate_upper_95 REAL NOT NULL,
    regression_rate       REAL NOT NULL,
    p_pass_if_unfixed     REAL NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('fixed', 'not_fixed')),
    finished_at           TEXT NOT NULL,
    UNIQUE (bisection_id, fix_commit)
);
";

/// Version 7: a finished run's console summary (`runs.summary`, JSON of
/// [`super::runs::RunSummary`]: CSD groups and scftorture statistics), so the
/// run page never analyses a stored console again. Runs stored before have
/// NULL there.
const V7_RUN_SUMMARY: &str = "
ALTER TABLE runs ADD COLUMN summary TEXT;
";

/// Version 8: a bisection run's exposure (`bisect_steps.exposure_s`: seconds
/// of workload it ran, boot not counted) and when it first failed
/// (`failed_at_s`, seconds since the workload started), so a bisection on
/// failure-time evidence (`--policy timed`) replays exactly. Steps stored
/// before have NULL there.
const V8_STEP_EXPOSURE: &str = "
ALTER TABLE bisect_steps ADD COLUMN exposure_s REAL;
ALTER TABLE bisect_steps ADD COLUMN failed_at_s REAL;
";

/// Every migration, in order: entry `i` makes version `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1_TABLES,
    V2_STEP_KINDS,
    V3_FINDINGS,
    V4_NIGHTS,
    V5_SERIES,
    V6_FIX_VALIDATIONS,
    V7_RUN_SUMMARY,
    V8_STEP_EXPOSURE,
];

/// The schema version this csdci writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// The oldest schema version `Store::open_read_only` reads as it is (older
/// ones must be migrated by a writing command first). Every migration so far
/// only adds (a wider CHECK, a new table), so every older database still reads:
/// what is missing reads as empty (a database before version 3 has no stored
/// findings).
pub const OLDEST_READABLE: u32 = 0;

/// Whether the findings table exists at schema `version`.
pub(crate) const FINDINGS_SINCE: u32 = 3;

/// Whether the nightly tables exist at schema `version`.
pub(crate) const NIGHTS_SINCE: u32 = 4;

/// Whether the patch bot's tables exist at schema `version`.
pub(crate) const SERIES_SINCE: u32 = 5;

/// Whether the fix validations table exists at schema `version`.
pub(crate) const FIX_VALIDATIONS_SINCE: u32 = 6;

/// Whether `runs.summary` exists at schema `version`.
pub(crate) const RUN_SUMMARY_SINCE: u32 = 7;

/// Whether `bisect_steps.exposure_s` and `failed_at_s` exist at schema `version`.
pub(crate) const STEP_EXPOSURE_SINCE: u32 = 8;

/// The database's schema version (`PRAGMA user_version`).
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// How a database's version compares with this csdci's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// Written by this csdci's schema.
    Current,
    /// Older, and readable as it is.
    Readable,
    /// Older than [`OLDEST_READABLE`]: a writing command must migrate it.
    TooOld,
    /// Written by a newer csdci.
    TooNew,
}

/// How schema `version` compares with `oldest_readable..=latest`.
pub fn compat(version: u32, oldest_readable: u32, latest: u32) -> Compat {
    if version > latest {
        Compat::TooNew
    } else if version == latest {
        Compat::Current
    } else if version >= oldest_readable {
        Compat::Readable
    } else {
        Compat::TooOld
    }
}

/// Outcome of [`migrate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// Brought from this version to [`LATEST`] (equal when nothing was to do).
    From(u32),
    /// The database is newer than this csdci; nothing was changed.
    TooNew(u32),
}

/// Applies the migrations after the database's version, up to `target`, and
/// records `target`. Must run inside a write transaction (the caller's
/// `BEGIN IMMEDIATE`), so the version read cannot change before it is
/// written and a failure rolls everything back.
pub fn migrate_to(conn: &Connection, target: u32) -> rusqlite::Result<Migrated> {
    let from = version(conn)?;
    if from > LATEST {
        return Ok(Migrated::TooNew(from));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(from as usize)
    {
        conn.execute_batch(sql)?;
        tracing::debug!("store: schema version {}", i + 1);
    }
    if target > from {
        conn.pragma_update(None, "user_version", target)?;
    }
    Ok(Migrated::From(from))
}

/// [`migrate_to`] the [`LATEST`] version.
pub fn migrate(conn: &Connection) -> rusqlite::Result<Migrated> {
    migrate_to(conn, LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn
    }

    fn in_tx(conn: &Connection, target: u32) -> Migrated {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let m = migrate_to(conn, target).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        m
    }

    #[test]
    fn a_new_database_gets_every_version() {
        let conn = open();
        assert_eq!(in_tx(&conn, LATEST), Migrated::From(0));
        assert_eq!(version(&conn).unwrap(), LATEST);
        assert_eq!(in_tx(&conn, LATEST), Migrated::From(LATEST));
    }

    /// Each intermediate version, with rows in it, migrates to the latest and
    /// keeps them.
    #[test]
    fn every_version_migrates_to_the_latest() {
        for v in 1..LATEST {
            let conn = open();
            in_tx(&conn, v);
            assert_eq!(version(&conn).unwrap(), v);
            conn.execute_batch(
                r#"INSERT INTO runs (id, repo, commit_sha, vcpus, memory_mb, accel_requested,
                       scftorture, duration_s, verdict, findings, status, started_at)
                   VALUES (7, '/l', 'a', 2, 512, 'auto', '', 1, 'failed',
                       '[{"kind":"warning","title":"WARNING in f","line":12,"cpu":1,"crash_report":true}]',
                       'done', 't');
                   INSERT INTO bisections (id, repo, good, bad, first_parent, predicate, tester,
                       settings, status, created_at, updated_at)
                   VALUES (1, '/l', '[]', 'a', 0, 'any', '{}', '{}', 'done', 't', 't');
                   INSERT INTO bisect_steps (id, bisection_id, kind, commit_sha, status, run_id, started_at)
                   VALUES (5, 1, 'run', 'a', 'done', 7, 't');
                   INSERT INTO bisect_posteriors VALUES (5, 1, 0, 0.5, '[]', 0.5, 0.0);"#,
            )
            .unwrap();
            assert_eq!(in_tx(&conn, LATEST), Migrated::From(v));
            assert_eq!(version(&conn).unwrap(), LATEST);
            let steps: i64 = conn
                .query_row(
                    "SELECT count(*) FROM bisect_steps WHERE run_id = 7",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(steps, 1, "from version {v}");
            let post: i64 = conn
                .query_row("SELECT step_id FROM bisect_posteriors", [], |r| r.get(0))
                .unwrap();
            assert_eq!(post, 5);
            // Findings are copied from `runs.findings` by the step that made
            // the table; a run written at version 3 or later stores them itself.
            if v < FINDINGS_SINCE {
                let f: (String, i64, bool) = conn
                    .query_row(
                        "SELECT kind, first_line, crash_report FROM findings WHERE run_id = 7",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!(f, ("warning".into(), 12, true));
            }
            // The nightly tables are there and empty.
            let nights: i64 = conn
                .query_row("SELECT count(*) FROM nights", [], |r| r.get(0))
                .unwrap();
            assert_eq!(nights, 0);
            let fk: i64 = conn
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(fk, 0);
        }
    }

    #[test]
    fn a_newer_database_is_left_alone() {
        let conn = open();
        in_tx(&conn, LATEST);
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        assert_eq!(in_tx(&conn, LATEST), Migrated::TooNew(LATEST + 1));
        assert_eq!(version(&conn).unwrap(), LATEST + 1);
    }

    #[test]
    fn compatibility() {
        assert_eq!(compat(3, 0, 3), Compat::Current);
        assert_eq!(compat(0, 0, 3), Compat::Readable);
        assert_eq!(compat(1, 2, 3), Compat::TooOld);
        assert_eq!(compat(4, 0, 3), Compat::TooNew);
    }
}

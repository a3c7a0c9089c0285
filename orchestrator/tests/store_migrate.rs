//! A data directory written by an older csdci opens with this one: its schema
//! is brought up to date (`PRAGMA user_version`, see `store::migrations`) and
//! every run, bisection, step and posterior is kept. A read-only open reads an
//! older database as it is; a database of a newer csdci is refused by both.

use std::path::Path;

use csdci::store::{Store, migrations};
use rusqlite::types::Value;

/// A data directory whose database is `sql` run on a new file.
fn data_dir(sql: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("csdci.sqlite3")).unwrap();
    conn.execute_batch(sql).unwrap();
    tmp
}

/// Every row of `table`, every column, in id order.
fn rows(conn: &rusqlite::Connection, table: &str) -> Vec<Vec<Value>> {
    let mut st = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
        .unwrap();
    let n = st.column_count();
    st.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const TABLES: [&str; 4] = ["runs", "bisections", "bisect_steps", "bisect_posteriors"];

fn user_version(dir: &Path) -> i64 {
    rusqlite::Connection::open(dir.join("csdci.sqlite3"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_store_of_the_previous_schema_opens_migrates_and_keeps_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("csdci.sqlite3");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("fixtures/store-v0.sql"))
            .unwrap();
        // The old schema refuses the step kinds this csdci journals.
        let refused = conn.execute(
            "INSERT INTO bisect_steps (bisection_id, kind, commit_sha, status, started_at) VALUES (1, 'tip_run', 'a', 'started', 'now')",
            [],
        );
        assert!(refused.is_err(), "the fixture is the old schema");
    }
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.schema_version(), migrations::LATEST);
    assert_eq!(user_version(tmp.path()), i64::from(migrations::LATEST));
    let b = store.bisect_get(1).unwrap().expect("the old bisection");
    assert_eq!(b.repo, "/home/ada/linux");
    assert_eq!(b.predicate, "csd");
    let steps = store.bisect_steps(1, false).unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.id, s.kind.as_str(), s.outcome.as_deref()))
            .collect::<Vec<_>>(),
        [
            (1, "build", Some("ready")),
            (2, "run", Some("fail")),
            (3, "revert_run", Some("pass"))
        ]
    );
    assert_eq!(
        steps[1].titles,
        ["csd: Detected non-responsive CSD lock in smp_call_function_single"]
    );
    let post = store.bisect_posteriors(1).unwrap();
    assert_eq!(post.len(), 1);
    assert_eq!(post[0].0, 2);
    let runs: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM runs WHERE verdict = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 1);
    // New kinds are accepted now, and ids go on after the old ones.
    let id = store.bisect_step_start(1, "tip_run", "a", Some(0)).unwrap();
    assert_eq!(id, 4);
    drop(store);
    // Opening again changes nothing.
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.bisect_steps(1, false).unwrap().len(), 4);
}

/// The database the csdci before schema versions wrote (user_version 0, the
/// widened step kinds, runs of the local tester with findings as JSON) opens,
/// migrates to the latest version and keeps every row as it was; the runs'
/// findings are in the findings table.
#[test]
fn a_store_of_the_csdci_before_versions_opens_migrates_and_keeps_every_row() {
    let tmp = data_dir(include_str!("fixtures/store-main.sql"));
    assert_eq!(user_version(tmp.path()), 0);
    let before: Vec<_> = {
        let conn = rusqlite::Connection::open(tmp.path().join("csdci.sqlite3")).unwrap();
        TABLES.iter().map(|t| rows(&conn, t)).collect()
    };
    assert_eq!(
        before.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 2, 6, 2]
    );
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.schema_version(), migrations::LATEST);
    let mut after: Vec<_> = TABLES.iter().map(|t| rows(store.conn(), t)).collect();
    // Columns a later version added (`runs.summary`) come last and are NULL
    // in the rows written before them.
    for (a, b) in after.iter_mut().zip(&before) {
        for (ra, rb) in a.iter_mut().zip(b) {
            let added = ra.split_off(rb.len().min(ra.len()));
            assert!(added.iter().all(|v| *v == Value::Null), "{added:?}");
        }
    }
    assert_eq!(after, before, "every row of every table, column for column");
    let fk: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0);
    // Through the store's own readers too.
    assert_eq!(store.bisect_list().unwrap().len(), 2);
    assert_eq!(store.bisect_get(2).unwrap().unwrap().status, "stopped");
    let steps = store.bisect_steps(1, false).unwrap();
    assert_eq!(
        steps.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        [
            "merge_base_build",
            "build",
            "run",
            "build",
            "tip_run",
            "run"
        ]
    );
    assert_eq!(steps[2].run_id, Some(1));
    assert_eq!(store.run(4).unwrap().unwrap().status, "interrupted");
    // The failed run's findings, from its JSON; the untestable run's build
    // errors and the clean run's empty list give none.
    let f = store.run_findings(1).unwrap();
    assert_eq!(
        f.iter()
            .map(|f| (f.ordinal, f.kind.as_str(), f.first_line, f.cpu))
            .collect::<Vec<_>>(),
        [
            (0, "csd_lock", 412, Some(3)),
            (1, "soft_lockup", 430, Some(3))
        ]
    );
    assert_eq!(f[1].task.as_deref(), Some("scftorture"));
    assert!(f[1].crash_report && !f[0].crash_report);
    assert_eq!(
        store.first_finding(1).unwrap().map(|f| f.first_line),
        Some(412)
    );
    assert!(store.run_findings(2).unwrap().is_empty());
    assert!(store.run_findings(3).unwrap().is_empty());
    // It goes on where it stopped.
    assert_eq!(
        store.bisect_step_start(1, "tip_run", "a", Some(1)).unwrap(),
        7
    );
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.bisect_steps(1, false).unwrap().len(), 7);
    assert_eq!(store.run_findings(1).unwrap().len(), 2);
    assert_eq!(user_version(tmp.path()), i64::from(migrations::LATEST));
}

/// `bisect list`/`log` on an older database read it as it is, changing
/// nothing (the data directory may be read-only); findings read as none.
#[test]
fn a_read_only_open_reads_an_older_store_without_migrating_it() {
    let tmp = data_dir(include_str!("fixtures/store-main.sql"));
    let store = Store::open_read_only(tmp.path()).unwrap();
    assert_eq!(store.schema_version(), 0);
    assert_eq!(store.bisect_list().unwrap().len(), 2);
    assert_eq!(store.bisect_steps(1, false).unwrap().len(), 6);
    assert!(store.run_findings(1).unwrap().is_empty());
    assert_eq!(store.first_finding(1).unwrap(), None);
    drop(store);
    assert_eq!(user_version(tmp.path()), 0);
    let conn = rusqlite::Connection::open(tmp.path().join("csdci.sqlite3")).unwrap();
    let findings: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'findings'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(findings, 0, "nothing was migrated");
}

/// A database of a newer csdci is refused by both opens, named, and left as
/// it is.
#[test]
fn a_store_of_a_newer_csdci_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let id = store
        .bisect_create(&csdci::store::bisect::NewBisection {
            repo: "/l",
            good: &["g".to_string()],
            bad: "b",
            first_parent: false,
            predicate: "any",
            tester: "{}",
            settings: "{}",
        })
        .unwrap();
    let newer = migrations::LATEST + 1;
    store
        .conn()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    drop(store);
    let before: Vec<_> = {
        let conn = rusqlite::Connection::open(tmp.path().join("csdci.sqlite3")).unwrap();
        TABLES.iter().map(|t| rows(&conn, t)).collect()
    };
    let db = tmp.path().join("csdci.sqlite3");
    for (how, e) in [
        ("open", Store::open(tmp.path()).err()),
        ("open_read_only", Store::open_read_only(tmp.path()).err()),
    ] {
        let e = e.unwrap_or_else(|| panic!("{how} opened a newer store"));
        assert!(
            matches!(e, csdci::store::Error::TooNew { found, .. } if found == newer),
            "{how}: {e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("written by a newer csdci"), "{how}: {msg}");
        assert!(msg.contains(&db.display().to_string()), "{how}: {msg}");
    }
    assert_eq!(user_version(tmp.path()), i64::from(newer));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let after: Vec<_> = TABLES.iter().map(|t| rows(&conn, t)).collect();
    assert_eq!(after, before);
    assert_eq!(after[1].len(), 1);
    assert_eq!(after[1][0][0], Value::Integer(id));
}

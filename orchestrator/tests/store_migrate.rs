//! A data directory written by an older csdci opens with this one: its schema
//! is brought up to date and every run, bisection, step and posterior is kept.

use csdci::store::Store;

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

//! The run is the same whatever the threads, the temporary files and the database's timing:
//! threads, small files, one snapshot, connect timeouts, runs kept as history.

use super::*;

// ---------------------------------------------------------------------------------------------
// 2. Threads

#[test]
fn one_and_four_threads_store_the_same_findings() {
    let data = data_set(21, 1_200);
    let k = Keyring::generate();
    let date = data.config.reference_date;
    let (db1, mut c1) = load(&data, &k, true);
    let (db4, mut c4) = load(&data, &k, true);
    let s1 = run(&db1, date, 1);
    let s4 = run(&db4, date, 4);
    let one = content(&findings(&mut c1));
    let four = content(&findings(&mut c4));
    assert!(one.len() > 50, "{}", one.len());
    assert_eq!(one, four);
    assert_eq!(s1.counts, s4.counts);
    assert_eq!(s1.linkages_checked, s4.linkages_checked);
    assert_eq!(run_row(&mut c4, s4.run_id).parameters["threads"], 4);

    // Re-running the first database on 4 threads changes nothing either.
    let again = run(&db1, date, 4);
    assert_eq!(again.merge.new, 0);
    assert_eq!(again.merge.resolved, 0);
    assert_eq!(content(&findings(&mut c1)), one);
}

#[test]
fn many_small_temporary_files_store_the_same_findings_as_one() {
    let data = data_set(22, 1_000);
    let k = Keyring::generate();
    let date = data.config.reference_date;
    let (db, mut conn) = load(&data, &k, true);
    let whole = run(&db, date, 2);
    let one = content(&findings(&mut conn));
    assert!(one.len() > 50, "{}", one.len());
    assert!(whole.counts.keys().any(|(kind, _)| kind == "number_shared"));
    // Some nine hundred linkages at 37 a file (by the planner's estimate): about twenty
    // files, so shared numbers and register records fall on both sides of file boundaries.
    let split = run_with_files(&db, date, 2, Some(37));
    assert_eq!(whole.files, 1);
    assert!(split.files >= 10, "{} files", split.files);
    assert_eq!(split.merge.new, 0);
    assert_eq!(split.merge.resolved, 0);
    assert_eq!(split.counts, whole.counts);
    assert_eq!(split.linkages_checked, whole.linkages_checked);
    assert_eq!(content(&findings(&mut conn)), one);
}

#[test]
fn the_streams_read_the_database_as_of_one_instant() {
    use shikaku_audit::runner::read::{read_registry, SharedSnapshot, StreamSource};
    let data = data_set(23, 300);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let count = |source: &StreamSource| {
        let mut n = 0u64;
        let read = read_registry(
            source,
            |_| {
                n += 1;
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(read, n);
        n
    };
    let snapshot = SharedSnapshot::open(db.url()).unwrap();
    let before = scalar(
        &mut conn,
        "SELECT count(*) AS n FROM linkages WHERE status <> 'revoked'",
    );
    assert!(before > 200, "{before}");
    // Committed after the snapshot was taken: the run must not see it, on any stream.
    diesel::sql_query("UPDATE linkages SET status = 'revoked'")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(count(&snapshot.source()), u64::try_from(before).unwrap());
    drop(snapshot);
    assert_eq!(count(&SharedSnapshot::open(db.url()).unwrap().source()), 0);
}

#[test]
fn a_database_url_with_a_connect_timeout_works() {
    // tokio-postgres needs the runtime's timers for connect_timeout: every stream thread must
    // have them.
    let data = data_set(25, 100);
    let k = Keyring::generate();
    let (db, _conn) = load(&data, &k, true);
    let sep = if db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}connect_timeout=10", db.url());
    let s = run_audit(
        &url,
        &AuditContext::new(data.config.reference_date),
        &RunOptions {
            threads: Some(1),
            actor: "test",
            progress: &no_run_progress,
            rows_per_file: None,
            standby: None,
        },
    )
    .unwrap();
    assert!(s.linkages_checked > 50, "{}", s.linkages_checked);
}

#[test]
fn audit_runs_are_history_and_cannot_be_deleted() {
    let data = data_set(24, 100);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    run(&db, data.config.reference_date, 1);
    // The application role has no DELETE or TRUNCATE at all; even the owner, who has, is
    // refused by the trigger.
    let mut owner = db.owner_conn();
    for sql in ["DELETE FROM audit_runs", "TRUNCATE audit_runs CASCADE"] {
        let err = diesel::sql_query(sql).execute(&mut conn).unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
        let err = diesel::sql_query(sql).execute(&mut owner).unwrap_err();
        assert!(
            err.to_string().contains("cannot be deleted"),
            "{sql}: {err}"
        );
    }
    assert_eq!(scalar(&mut conn, "SELECT count(*) AS n FROM audit_runs"), 1);
}

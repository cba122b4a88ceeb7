//! The least-privilege roles: every table has its privileges decided, the application role can
//! do its work and nothing more, the reader only reads.

use diesel::connection::SimpleConnection;
use shikaku_db::roles::{self, APP_PRIVILEGES, READER_TABLES};
use shikaku_db::testing::TestDb;

#[test]
fn every_table_has_its_privileges_decided() {
    let db = TestDb::new();
    let tables = roles::tables(&mut db.owner_conn()).unwrap();
    for t in &tables {
        assert!(
            APP_PRIVILEGES.iter().any(|(name, _)| name == t),
            "table {t} has no entry in roles::APP_PRIVILEGES: decide what the application may do"
        );
    }
    for (t, _) in APP_PRIVILEGES {
        assert!(
            tables.iter().any(|x| x == t),
            "{t} is listed but does not exist"
        );
    }
    for t in READER_TABLES {
        assert!(
            tables.iter().any(|x| x == t),
            "{t} is listed but does not exist"
        );
    }
}

#[test]
fn the_application_role_does_its_work_and_nothing_more() {
    let db = TestDb::new();
    let mut app = db.conn();
    let standing = roles::standing(&mut app).unwrap();
    assert!(standing.least_privileged(), "{standing:?}");
    assert!(standing.user.ends_with("_app"));
    app.batch_execute(
        "INSERT INTO insurers (insurer_number, name, kind) VALUES ('06130199', 'x', 'kumiai');
         UPDATE insurers SET name = 'y' WHERE insurer_number = '06130199';
         SELECT count(*) FROM persons;",
    )
    .unwrap();
    for sql in [
        "DELETE FROM insurers",
        "TRUNCATE persons",
        "DROP TABLE persons",
        "CREATE TABLE x (a int)",
        "ALTER TABLE persons ADD COLUMN x int",
        "DELETE FROM person_changes",
        "UPDATE person_changes SET actor = 'x'",
        "UPDATE resident_records SET name_kanji = 'x'",
        "CREATE ROLE evil",
        "ALTER TABLE access_log DISABLE TRIGGER USER",
    ] {
        let err = app.batch_execute(sql).unwrap_err().to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    // The owner is what the server refuses to run as.
    let owner = roles::standing(&mut db.owner_conn()).unwrap();
    assert!(owner.owns_tables && !owner.superuser, "{owner:?}");
    assert!(!owner.least_privileged());
}

#[test]
fn the_reader_reads_registry_and_log_but_not_secrets() {
    let db = TestDb::new();
    let url = db.owner_url().replace("_owner:", "_reader:");
    let mut reader = shikaku_db::connect(&url).unwrap();
    reader
        .batch_execute("SELECT count(*) FROM persons; SELECT count(*) FROM access_log;")
        .unwrap();
    for sql in [
        "SELECT count(*) FROM api_tokens",
        "SELECT count(*) FROM console_sessions",
        "INSERT INTO insurers (insurer_number, name, kind) VALUES ('06130199', 'x', 'kumiai')",
    ] {
        let err = reader.batch_execute(sql).unwrap_err().to_string();
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
}

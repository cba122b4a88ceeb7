//! The access log: entries for every answer, append-only in the database, and a chain that
//! `verify` proves intact and catches when an entry is edited, deleted or reordered.

use diesel::connection::SimpleConnection;
use serde_json::json;
use shikaku_db::access_log::{self, NewEntry};
use shikaku_db::tokens::Role;

use crate::*;

#[actix_web::test]
async fn answers_are_logged_and_the_table_refuses_changes() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "20",
        "1",
        "00",
        "1970-01-01",
        "ログ",
        &[("2000-01-01", None)],
    );
    let body = json!({ "insurer_number": KUMIAI, "symbol": "20", "number": "1", "branch": "00", "birth_date": "1970-01-01", "on": "2026-01-01" });
    app.post(Some(Role::Provider), "/v1/eligibility", body)
        .await;
    let log = app.access_log();
    assert_eq!(log.len(), 1);
    let e = &log[0];
    assert_eq!(e.action, "eligibility");
    assert_eq!(e.role, "provider");
    assert_eq!(e.actor, "test-provider");
    assert_eq!(e.request["number"], "1");
    assert_eq!(e.response["validity"], 1);

    let mut conn = app.conn();
    for sql in [
        "UPDATE access_log SET actor = 'x'",
        "DELETE FROM access_log",
        "TRUNCATE access_log",
    ] {
        let err = conn.batch_execute(sql).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert!(access_log::verify(&mut conn).unwrap().ok());
}

fn entries(n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            let mut e = NewEntry::now("tester", "admin", "person_read");
            e.subject = Some(format!("person:{i}"));
            e.request = json!({ "person_id": i, "nested": { "b": 1, "a": [1, 2] } });
            e.response = json!({ "found": true });
            e
        })
        .collect()
}

/// Runs `tamper` with the append-only trigger off (as a superuser could) and returns what
/// verify says.
fn tampered(app: &TestApp, tamper: &str) -> access_log::Verification {
    let mut conn = app.conn();
    access_log::append(&mut conn, &entries(3)).unwrap();
    access_log::append(&mut conn, &entries(2)).unwrap();
    assert!(access_log::verify(&mut conn).unwrap().ok());
    conn.batch_execute(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica; {tamper}; COMMIT;"
    ))
    .unwrap();
    access_log::verify(&mut conn).unwrap()
}

#[::core::prelude::v1::test]
fn verify_detects_edits_deletions_and_reordering() {
    let app = TestApp::new();
    let mut conn = app.conn();
    let intact = {
        access_log::append(&mut conn, &entries(4)).unwrap();
        access_log::verify(&mut conn).unwrap()
    };
    assert!(intact.ok());
    assert_eq!(intact.entries, 4);
    assert_eq!(intact.head.as_ref().unwrap().0, 4);

    let edited = tampered(
        &TestApp::new(),
        "UPDATE access_log SET response = '{\"found\": false}' WHERE seq = 2",
    );
    assert_eq!(edited.breaks[0].seq, 2);
    assert_eq!(edited.breaks[0].kind, "altered");

    let edited_reason = tampered(
        &TestApp::new(),
        "UPDATE access_log SET reason = 'x' WHERE seq = 5",
    );
    assert!(!edited_reason.ok());

    let deleted = tampered(&TestApp::new(), "DELETE FROM access_log WHERE seq = 3");
    assert!(
        deleted
            .breaks
            .iter()
            .any(|b| b.seq == 4 && b.kind == "missing"),
        "{deleted:?}"
    );
    assert!(deleted
        .breaks
        .iter()
        .any(|b| b.seq == 4 && b.kind == "relinked"));

    // Swap entries 2 and 3 with their hashes, renumbering them: every link still points
    // somewhere, but not to its predecessor.
    let reordered = tampered(
        &TestApp::new(),
        "UPDATE access_log SET seq = seq + 1000 WHERE seq IN (2, 3);
         UPDATE access_log SET seq = 3 WHERE seq = 1002;
         UPDATE access_log SET seq = 2 WHERE seq = 1003",
    );
    assert!(!reordered.ok(), "{reordered:?}");
    assert_eq!(reordered.breaks[0].seq, 2);
}

#[actix_web::test]
async fn concurrent_answers_form_one_chain() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "21",
        "1",
        "00",
        "1970-01-01",
        "ログ",
        &[("2000-01-01", None)],
    );
    let body = json!({ "insurer_number": KUMIAI, "symbol": "21", "number": "1", "birth_date": "1970-01-01" });
    let calls = (0..40).map(|_| app.post(Some(Role::Provider), "/v1/eligibility", body.clone()));
    let replies = futures_util::future::join_all(calls).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    let mut conn = app.conn();
    let v = access_log::verify(&mut conn).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.entries, 40);
}

//! The access log against insiders: the application role (which the service runs as) cannot
//! change, remove or unhook entries; what the owner or a superuser can still do (edit, delete,
//! cut the tail, append a forged entry) `verify` catches, with the keyed chain and the signed
//! checkpoints; and a change whose entry cannot be written does not happen.

use chrono::Utc;
use diesel::connection::SimpleConnection;
use serde_json::json;
use shikaku_db::access_log::checkpoint::{self, Checkpoint};
use shikaku_db::access_log::{self, BreakKind, NewEntry};
use shikaku_db::tokens::Role;
use shikaku_domain::Keyring;

use crate::*;

#[actix_web::test]
async fn answers_are_logged_and_the_application_role_cannot_touch_the_log() {
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
    assert_eq!(e.key_id, Some(1));

    // The service's role: no UPDATE, DELETE or TRUNCATE privilege, and no trigger control
    // (that takes ownership).
    let mut conn = app.conn();
    for sql in [
        "UPDATE access_log SET actor = 'x'",
        "DELETE FROM access_log",
        "TRUNCATE access_log",
        "ALTER TABLE access_log DISABLE TRIGGER USER",
        "ALTER TABLE access_log DROP CONSTRAINT access_log_keyed",
        "SET session_replication_role = replica",
    ] {
        let err = conn.batch_execute(sql).unwrap_err().to_string();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{sql}: {err}"
        );
    }
    // Even the owner meets the trigger.
    let mut owner = app.db.owner_conn();
    for sql in [
        "UPDATE access_log SET actor = 'x'",
        "DELETE FROM access_log",
    ] {
        let err = owner.batch_execute(sql).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let standing = shikaku_db::roles::standing(&mut conn).unwrap();
    assert!(standing.least_privileged(), "{standing:?}");
    assert!(access_log::verify(&mut conn, &app.keyring(), &[])
        .unwrap()
        .ok());
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

/// Five entries and a checkpoint of them; then `tamper` run by an insider with the owner's
/// rights (the trigger switched off, as an owner can); returns what verify says.
fn tampered(app: &TestApp, tamper: &str) -> access_log::Verification {
    let k = app.keyring();
    let mut conn = app.conn();
    access_log::append(&mut conn, &k, &entries(3)).unwrap();
    access_log::append(&mut conn, &k, &entries(2)).unwrap();
    let (seq, mac) = access_log::head(&mut conn).unwrap();
    let cp = Checkpoint::sign(&k, seq, &mac, Utc::now()).unwrap();
    assert!(access_log::verify(&mut conn, &k, std::slice::from_ref(&cp))
        .unwrap()
        .ok());
    app.db
        .owner_conn()
        .batch_execute(&format!(
            "BEGIN; ALTER TABLE access_log DISABLE TRIGGER USER; {tamper};
             ALTER TABLE access_log ENABLE TRIGGER USER; COMMIT;"
        ))
        .unwrap();
    access_log::verify(&mut conn, &k, &[cp]).unwrap()
}

#[::core::prelude::v1::test]
fn verify_detects_edits_deletions_reordering_a_cut_tail_and_forgeries() {
    let app = TestApp::new();
    let k = app.keyring();
    let mut conn = app.conn();
    access_log::append(&mut conn, &k, &entries(4)).unwrap();
    let intact = access_log::verify(&mut conn, &k, &[]).unwrap();
    assert!(intact.ok());
    assert_eq!(intact.entries, 4);
    assert_eq!(intact.head.as_ref().unwrap().0, 4);
    assert_eq!(intact.keyed_from, Some(1));

    let edited = tampered(
        &TestApp::new(),
        "UPDATE access_log SET response = '{\"found\": false}' WHERE seq = 2",
    );
    assert_eq!(edited.first_bad().unwrap().seq, 2);
    assert_eq!(edited.breaks[0].kind, BreakKind::Altered);

    let deleted = tampered(&TestApp::new(), "DELETE FROM access_log WHERE seq = 3");
    assert!(deleted
        .breaks
        .iter()
        .any(|b| b.seq == 4 && b.kind == BreakKind::Missing));
    assert!(deleted
        .breaks
        .iter()
        .any(|b| b.seq == 4 && b.kind == BreakKind::Relinked));

    // The newest entry removed: the chain left is valid, but the checkpoint names entry 5.
    let cut = tampered(
        &TestApp::new(),
        "DELETE FROM access_log WHERE seq = (SELECT max(seq) FROM access_log)",
    );
    assert_eq!(cut.entries, 4);
    assert_eq!(
        cut.breaks,
        vec![access_log::Break {
            seq: 5,
            kind: BreakKind::TailMissing
        }]
    );

    // The review's forgery: a next entry chained with plain SHA-256, as anyone with database
    // rights can compute. Without the log key it cannot verify.
    let forged = tampered(
        &TestApp::new(),
        "INSERT INTO access_log (seq, at, token_id, actor, role, action, subject, request,
                                 response, reason, prev_hash, hash, key_id)
         SELECT seq + 1, now(), NULL, 'forged', 'admin', 'number_reveal', 'person:1', '{}',
                '{}', 'x', hash, sha256(hash), 1
           FROM access_log ORDER BY seq DESC LIMIT 1",
    );
    assert_eq!(forged.first_bad().unwrap().seq, 6);
    assert_eq!(forged.breaks[0].kind, BreakKind::Altered);

    // The same with no key id at all, as entries from before the log was keyed look.
    let unkeyed = tampered(
        &TestApp::new(),
        "ALTER TABLE access_log DROP CONSTRAINT access_log_keyed;
         INSERT INTO access_log (seq, at, token_id, actor, role, action, subject, request,
                                 response, reason, prev_hash, hash)
         SELECT seq + 1, now(), NULL, 'forged', 'admin', 'number_reveal', 'person:1', '{}',
                '{}', 'x', hash, sha256(hash)
           FROM access_log ORDER BY seq DESC LIMIT 1",
    );
    assert_eq!(unkeyed.breaks[0].kind, BreakKind::Unkeyed);
    assert_eq!(unkeyed.breaks[0].seq, 6);

    // Entry 5 rewritten with a fresh chain link computed from a stolen copy of the table is
    // still caught by the checkpoint, even if the link were right.
    let rewritten = tampered(
        &TestApp::new(),
        "UPDATE access_log SET hash = sha256(hash) WHERE seq = 5",
    );
    assert!(rewritten
        .breaks
        .iter()
        .any(|b| b.seq == 5 && b.kind == BreakKind::Rewritten));
}

#[::core::prelude::v1::test]
fn forged_checkpoints_and_other_keys_are_refused() {
    let app = TestApp::new();
    let k = app.keyring();
    let mut conn = app.conn();
    access_log::append(&mut conn, &k, &entries(2)).unwrap();
    let (seq, mac) = access_log::head(&mut conn).unwrap();
    // Signed with another key file's key: not ours.
    let stranger = Checkpoint::sign(&Keyring::generate(), seq, &mac, Utc::now()).unwrap();
    let v = access_log::verify(&mut conn, &k, &[stranger]).unwrap();
    assert_eq!(v.breaks[0].kind, BreakKind::BadCheckpoint);
    // A log verified with another key file fails at its first entry.
    let v = access_log::verify(&mut conn, &Keyring::generate(), &[]).unwrap();
    assert_eq!(v.first_bad().unwrap().seq, 1);
}

#[::core::prelude::v1::test]
fn rotated_keys_and_entries_from_before_the_keyed_log_still_verify() {
    // A deployment from before the log was keyed, holding two entries as the log wrote them
    // then (plain SHA-256, no key id), is migrated: they stay as they are and still verify.
    let db = shikaku_db::testing::TestDb::before_migration("2026-12-01-000002_access_log_keyed");
    let mut k = Keyring::generate();
    let mut admin = db.owner_conn();
    let mut prev = access_log::GENESIS.to_vec();
    for (i, e) in entries(2).iter().enumerate() {
        let seq = i64::try_from(i).unwrap() + 1;
        let hash = access_log::legacy_hash(seq, &prev, e);
        diesel::sql_query(
            "INSERT INTO access_log (seq, at, actor, role, action, subject, request, response,
                                     prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind::<diesel::sql_types::BigInt, _>(seq)
        .bind::<diesel::sql_types::Timestamptz, _>(e.at)
        .bind::<diesel::sql_types::Text, _>(&e.actor)
        .bind::<diesel::sql_types::Text, _>(&e.role)
        .bind::<diesel::sql_types::Text, _>(&e.action)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(&e.subject)
        .bind::<diesel::sql_types::Jsonb, _>(&e.request)
        .bind::<diesel::sql_types::Jsonb, _>(&e.response)
        .bind::<diesel::sql_types::Bytea, _>(&prev)
        .bind::<diesel::sql_types::Bytea, _>(hash.as_slice())
        .execute(&mut admin)
        .unwrap();
        prev = hash.to_vec();
    }
    assert_eq!(
        db.migrate().first().map(String::as_str),
        Some("20261201000002")
    );
    let mut conn = db.conn();
    let v = access_log::verify(&mut conn, &k, &[]).unwrap();
    assert!(v.ok() && v.entries == 2 && v.keyed_from.is_none(), "{v:?}");
    access_log::append(&mut conn, &k, &entries(2)).unwrap();
    let (seq, mac) = access_log::head(&mut conn).unwrap();
    let old_checkpoint = Checkpoint::sign(&k, seq, &mac, Utc::now()).unwrap();
    // Both keys rotated: new entries and checkpoints use the new ones; the old ones stay.
    assert_eq!(k.rotate_log_key(), 2);
    assert_eq!(k.rotate_signing_key(), 2);
    access_log::append(&mut conn, &k, &entries(2)).unwrap();
    let (seq, mac) = access_log::head(&mut conn).unwrap();
    let new_checkpoint = Checkpoint::sign(&k, seq, &mac, Utc::now()).unwrap();
    assert_eq!(new_checkpoint.key_id, 2);
    let v = access_log::verify(&mut conn, &k, &[old_checkpoint, new_checkpoint]).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.keyed_from, Some(3));
    assert_eq!(v.entries, 6);
    let keys: Vec<Option<i32>> = access_log::recent(&mut conn, None, 10)
        .unwrap()
        .iter()
        .rev()
        .map(|e| e.key_id)
        .collect();
    assert_eq!(
        keys,
        [None, None, Some(1), Some(1), Some(2), Some(2)].to_vec()
    );
}

#[actix_web::test]
async fn a_change_whose_entry_cannot_be_written_does_not_happen() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "22",
        "1",
        "00",
        "1970-01-01",
        "ログ",
        &[("2000-01-01", None)],
    );
    let linkage = app.link(person, &my_number(22_000_000_001));
    // The review's check: make the log refuse exactly the suspension's entry.
    app.admin_conn()
        .batch_execute(
            "ALTER TABLE access_log ADD CONSTRAINT refuse_suspend
             CHECK (action <> 'linkage_suspend') NOT VALID",
        )
        .unwrap();
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "確認中" }),
        )
        .await;
    assert!(r.status.is_server_error(), "{} {}", r.status, r.text);
    let status = shikaku_db::linkages::get(&mut app.conn(), linkage)
        .unwrap()
        .status;
    assert_eq!(status, shikaku_domain::LinkageStatus::Active);
    // With the log writable again, the same change goes through with its entry.
    app.admin_conn()
        .batch_execute("ALTER TABLE access_log DROP CONSTRAINT refuse_suspend")
        .unwrap();
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "確認中" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(app
        .access_log()
        .iter()
        .any(|e| e.action == "linkage_suspend"
            && e.subject.as_deref() == Some(&format!("person:{person}")[..])));
}

#[actix_web::test]
async fn concurrent_answers_and_changes_form_one_chain() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "21",
        "1",
        "00",
        "1970-01-01",
        "ログ",
        &[("2000-01-01", None)],
    );
    let linkage = app.link(person, &my_number(21_000_000_001));
    let body = json!({ "insurer_number": KUMIAI, "symbol": "21", "number": "1", "birth_date": "1970-01-01" });
    let reads = (0..40).map(|_| app.post(Some(Role::Provider), "/v1/eligibility", body.clone()));
    let path = format!("/v1/linkages/{linkage}");
    let staff = (0..5).map(|_| app.get(Some(Role::Clerk), &path));
    let (replies, staff) = futures_util::future::join(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(staff),
    )
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert!(staff.iter().all(|r| r.status == StatusCode::OK));
    let mut conn = app.conn();
    let v = access_log::verify(&mut conn, &app.keyring(), &[]).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.entries, 45);
}

#[actix_web::test]
async fn a_refused_registration_is_logged_with_every_person_it_concerns() {
    let app = TestApp::new();
    let a = app.person(
        KUMIAI,
        "23",
        "1",
        "00",
        "1970-01-01",
        "イチ",
        &[("2000-01-01", None)],
    );
    let b = app.person(
        KUMIAI,
        "23",
        "2",
        "00",
        "1971-01-01",
        "ニ",
        &[("2000-01-01", None)],
    );
    let number = my_number(23_000_000_001);
    app.link(b, &number);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": number, "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // The answer names no one; the log names both.
    assert!(!r.text.contains(&format!("{b}")) || !r.text.contains("person"));
    let e = app
        .access_log()
        .into_iter()
        .find(|e| e.action == "linkage_register_refused")
        .expect("the refusal is logged");
    assert_eq!(e.subject.as_deref(), Some(&format!("person:{a}")[..]));
    assert_eq!(e.response["linked_to"], json!([b]));
    assert!(!e.request.to_string().contains(&number));
}

#[::core::prelude::v1::test]
fn checkpoints_taken_into_a_file_anchor_the_head() {
    let app = TestApp::new();
    let k = app.keyring();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.jsonl");
    let mut conn = app.conn();
    assert!(checkpoint::take(&mut conn, &k, &path).unwrap().is_none());
    access_log::append(&mut conn, &k, &entries(3)).unwrap();
    let c = checkpoint::take(&mut conn, &k, &path).unwrap().unwrap();
    assert_eq!(c.seq, 3);
    access_log::append(&mut conn, &k, &entries(1)).unwrap();
    checkpoint::take(&mut conn, &k, &path).unwrap();
    let cps = checkpoint::read_file(&path).unwrap();
    assert_eq!(cps.len(), 2);
    assert!(access_log::verify(&mut conn, &k, &cps).unwrap().ok());
    app.db
        .owner_conn()
        .batch_execute(
            "BEGIN; ALTER TABLE access_log DISABLE TRIGGER USER;
             DELETE FROM access_log WHERE seq = (SELECT max(seq) FROM access_log);
             ALTER TABLE access_log ENABLE TRIGGER USER; COMMIT;",
        )
        .unwrap();
    let v = access_log::verify(&mut conn, &k, &cps).unwrap();
    assert_eq!(v.first_bad().unwrap().seq, 4);
    assert_eq!(v.first_bad().unwrap().kind, BreakKind::TailMissing);
}

//! Review actions on one linkage (`shikaku_db::linkages`): suspend, confirm the identity, and
//! correct a wrong number; each recorded in `linkage_events` with its reason and actor.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Integer, Jsonb, Nullable, Text};
use shikaku_db::linkages::{self, LinkageView};
use shikaku_db::testing::TestDb;
use shikaku_db::DbError;
use shikaku_domain::{Keyring, MyNumber, SealedNumber};

use crate::util::*;

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct Event {
    #[diesel(sql_type = BigInt)]
    linkage_id: i64,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Jsonb)]
    details: serde_json::Value,
}

/// The events of the actions under test: not the set-up import's own (its linkages arrive
/// before any register extract, so each has an `identity_not_checked` event of the import).
fn events(conn: &mut PgConnection) -> Vec<Event> {
    diesel::sql_query(
        "SELECT linkage_id, action, reason, actor, details FROM linkage_events
          WHERE import_id IS NULL ORDER BY id",
    )
    .load(conn)
    .unwrap()
}

#[derive(QueryableByName, Debug)]
struct Secret {
    #[diesel(sql_type = Binary)]
    mn_blind: Vec<u8>,
    #[diesel(sql_type = Binary)]
    mn_sealed: Vec<u8>,
    #[diesel(sql_type = Integer)]
    mn_key_id: i32,
}

fn secret(conn: &mut PgConnection, id: i64) -> Secret {
    diesel::sql_query("SELECT mn_blind, mn_sealed, mn_key_id FROM linkages WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .unwrap()
}

/// The household, with the insured (p[0]) linked to MN1 and p[3] to MN2; returns the id of
/// p[0]'s linkage.
fn setup() -> (TestDb, PgConnection, Keyring, i64) {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let p = household();
    import_persons_ok(&mut conn, persons_csv(&p));
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[3], MN2, "jlis", "2024-02-20"),
        ]),
    );
    assert!(s.applied, "{issues:#?}");
    let id = linkage_of(&mut conn, &p[0]).id;
    (db, conn, k, id)
}

/// A register snapshot in which `number` is the household's insured, 山田 太郎 (p[0]), as the
/// register spells him; returns the snapshot id. A correction to that number is then confirmed
/// by the registration-time check.
fn register_knows_taro_as(conn: &mut PgConnection, k: &Keyring, number: &str) -> i64 {
    let (s, issues) = import_residents(
        conn,
        k,
        residents_csv([resident(
            number,
            "山田　太郎",
            "ヤマダ　タロウ",
            "1980-05-05",
            "1",
            "active",
        )]),
    );
    assert!(s.applied, "{issues:#?}");
    s.snapshot_id.unwrap()
}

/// The only linkage of person `p`.
fn linkage_of(conn: &mut PgConnection, p: &Person) -> LinkageView {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let person_id = diesel::sql_query(
        "SELECT id FROM persons WHERE insurer_number = $1 AND symbol = $2 AND number = $3
           AND branch = $4",
    )
    .bind::<Text, _>(&p.insurer_number)
    .bind::<Text, _>(&p.symbol)
    .bind::<Text, _>(&p.number)
    .bind::<Text, _>(&p.branch)
    .get_result::<Id>(conn)
    .unwrap()
    .id;
    let mut all = linkages::of_person(conn, person_id).unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.pop().unwrap()
}

#[test]
fn suspend_records_the_reason_and_only_applies_to_an_active_linkage() {
    let (_db, mut conn, _k, id) = setup();
    let before = linkages::get(&mut conn, id).unwrap();
    assert_eq!(before.status.as_str(), "active");

    // An empty (or blank) reason is refused and changes nothing.
    for reason in ["", "  \u{3000}"] {
        let err = linkages::suspend(&mut conn, id, reason, "reviewer").unwrap_err();
        assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    }
    assert_eq!(linkages::get(&mut conn, id).unwrap(), before);
    assert_eq!(events(&mut conn), vec![]);

    let v = linkages::suspend(&mut conn, id, "5 items disagree with J-LIS", "reviewer").unwrap();
    assert_eq!(v.id, id);
    assert_eq!(v.status.as_str(), "suspended");
    assert!(!v.identity_confirmed);
    assert_eq!(
        v,
        LinkageView {
            status: shikaku_domain::LinkageStatus::Suspended,
            ..before.clone()
        }
    );
    assert_eq!(linkages::get(&mut conn, id).unwrap(), v);
    assert_eq!(
        events(&mut conn),
        vec![Event {
            linkage_id: id,
            action: "suspended".into(),
            reason: Some("5 items disagree with J-LIS".into()),
            actor: "reviewer".into(),
            details: serde_json::json!({}),
        }]
    );

    // Suspending again fails and records nothing.
    let err = linkages::suspend(&mut conn, id, "again", "reviewer").unwrap_err();
    assert!(matches!(err, DbError::NotFound(_)), "{err:?}");
    assert_eq!(events(&mut conn).len(), 1);
    // So does an unknown linkage.
    let err = linkages::suspend(&mut conn, id + 1000, "x", "reviewer").unwrap_err();
    assert!(matches!(err, DbError::NotFound(_)), "{err:?}");
    assert_eq!(events(&mut conn).len(), 1);
}

#[test]
fn confirm_identity_sets_the_flag_and_reactivates_a_suspended_linkage() {
    let (_db, mut conn, _k, id) = setup();
    linkages::suspend(&mut conn, id, "check the 5 items", "reviewer-a").unwrap();

    let err = linkages::confirm_identity(&mut conn, id, " ", "reviewer-b").unwrap_err();
    assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    assert_eq!(
        linkages::get(&mut conn, id).unwrap().status.as_str(),
        "suspended"
    );

    let v = linkages::confirm_identity(&mut conn, id, "matched with J-LIS by phone", "reviewer-b")
        .unwrap();
    assert_eq!(v.status.as_str(), "active");
    assert!(v.identity_confirmed);
    assert_eq!(linkages::get(&mut conn, id).unwrap(), v);
    let ev = events(&mut conn);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert_eq!(
        ev[1],
        Event {
            linkage_id: id,
            action: "identity_confirmed".into(),
            reason: Some("matched with J-LIS by phone".into()),
            actor: "reviewer-b".into(),
            details: serde_json::json!({ "previous_status": "suspended" }),
        }
    );

    // Confirming an active linkage keeps it active and records the previous status.
    let again = linkages::confirm_identity(&mut conn, id, "re-checked", "reviewer-c").unwrap();
    assert_eq!(again, v);
    let ev = events(&mut conn);
    assert_eq!(ev.len(), 3);
    assert_eq!(
        ev[2].details,
        serde_json::json!({ "previous_status": "active" })
    );
}

#[test]
fn correct_revokes_the_wrong_number_and_links_the_right_one() {
    let (_db, mut conn, k, id) = setup();
    let old = linkages::get(&mut conn, id).unwrap();
    // The household's dependant p[2] has no linkage; give the insured the right number, which
    // the register knows as him.
    let right = my_number(11_111_111_111);
    let number = MyNumber::parse(&right).unwrap();
    let snapshot = register_knows_taro_as(&mut conn, &k, &right);

    let err = linkages::correct(
        &mut conn,
        &k,
        id,
        &number,
        shikaku_domain::records::LinkageSource::Jlis,
        "",
        None,
        "reviewer",
    )
    .unwrap_err();
    assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    assert_eq!(linkages::get(&mut conn, id).unwrap(), old);
    assert_eq!(count(&mut conn, "linkages"), 2);

    let new = linkages::correct(
        &mut conn,
        &k,
        id,
        &number,
        shikaku_domain::records::LinkageSource::Jlis,
        "employer sent a family member's number",
        None,
        "reviewer",
    )
    .unwrap();
    assert_ne!(new.id, id);
    assert_eq!(new.person_id, old.person_id);
    assert_eq!(new.status.as_str(), "active");
    assert!(new.identity_confirmed);
    assert!(new.check_digit_ok);
    assert_eq!(new.source.as_str(), "jlis");
    assert_eq!(new.mn_last4, &right[8..]);

    // The old linkage is kept as history, revoked.
    let old_after = linkages::get(&mut conn, id).unwrap();
    assert_eq!(
        old_after,
        LinkageView {
            status: shikaku_domain::LinkageStatus::Revoked,
            ..old.clone()
        }
    );
    let mut of_person = linkages::of_person(&mut conn, old.person_id).unwrap();
    of_person.sort_by_key(|l| l.id);
    assert_eq!(of_person, vec![old_after.clone(), new.clone()]);

    // The new number is sealed with the keyring and blind-indexed like an imported one.
    let s = secret(&mut conn, new.id);
    let opened = k
        .open(
            &SealedNumber {
                key_id: u32::try_from(s.mn_key_id).unwrap(),
                ciphertext: s.mn_sealed.clone(),
                bound: true,
            },
            &shikaku_domain::BlindIndex(s.mn_blind.clone().try_into().unwrap()),
        )
        .unwrap();
    assert_eq!(opened.as_str(), right);
    assert_eq!(s.mn_blind, k.blind_index(&right).as_bytes());
    assert_ne!(s.mn_blind, k.blind_index(MN1).as_bytes());
    // The old one still opens to the wrong number (nothing is lost).
    let s_old = secret(&mut conn, id);
    assert_eq!(s_old.mn_blind, k.blind_index(MN1).as_bytes());

    let reason = Some("employer sent a family member's number".to_string());
    assert_eq!(
        events(&mut conn),
        vec![
            Event {
                linkage_id: id,
                action: "revoked".into(),
                reason: reason.clone(),
                actor: "reviewer".into(),
                details: serde_json::json!({ "corrected_by": new.id }),
            },
            Event {
                linkage_id: new.id,
                action: "registered".into(),
                reason,
                actor: "reviewer".into(),
                details: serde_json::json!({ "corrects": id, "identity_check": "matched",
                                             "snapshot_id": snapshot, "not_compared": [] }),
            },
        ]
    );

    // A revoked linkage can be neither corrected nor confirmed, and nothing changes.
    let before = dump(&mut conn);
    let other = MyNumber::parse(&my_number(22_222_222_222)).unwrap();
    let err = linkages::correct(
        &mut conn,
        &k,
        id,
        &other,
        shikaku_domain::records::LinkageSource::Jlis,
        "again",
        None,
        "reviewer",
    )
    .unwrap_err();
    assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    let err = linkages::confirm_identity(&mut conn, id, "looks fine", "reviewer").unwrap_err();
    assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    let err = linkages::suspend(&mut conn, id, "block", "reviewer").unwrap_err();
    assert!(matches!(err, DbError::NotFound(_)), "{err:?}");
    assert_eq!(dump(&mut conn), before);
    assert_eq!(events(&mut conn).len(), 2);
}

#[test]
fn correct_a_suspended_linkage() {
    let (_db, mut conn, k, id) = setup();
    linkages::suspend(&mut conn, id, "wrong person", "reviewer").unwrap();
    let right = my_number(33_333_333_333);
    register_knows_taro_as(&mut conn, &k, &right);
    let new = linkages::correct(
        &mut conn,
        &k,
        id,
        &MyNumber::parse(&right).unwrap(),
        shikaku_domain::records::LinkageSource::Applicant,
        "applicant brought the card",
        None,
        "reviewer",
    )
    .unwrap();
    assert_eq!(new.source.as_str(), "applicant");
    assert_eq!(new.status.as_str(), "active");
    assert_eq!(
        linkages::get(&mut conn, id).unwrap().status.as_str(),
        "revoked"
    );
    let actions: Vec<(i64, String)> = events(&mut conn)
        .into_iter()
        .map(|e| (e.linkage_id, e.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            (id, "suspended".to_string()),
            (id, "revoked".to_string()),
            (new.id, "registered".to_string()),
        ]
    );
}

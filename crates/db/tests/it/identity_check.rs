//! The registration-time check (`shikaku_db::identity_check`) on every path that links a number:
//! registering, correcting and importing, against the latest register snapshot. Each outcome
//! (matched, not checked, refused, accepted with 理由付き疑いなし) with what it stores and records,
//! and that no refusal names a number, its last 4 digits or a register value.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
use shikaku_db::import::IssueLevel;
use shikaku_db::linkages::{self, LinkageView};
use shikaku_db::testing::TestDb;
use shikaku_db::DbError;
use shikaku_domain::records::LinkageSource;
use shikaku_domain::{Field, Keyring, MyNumber};

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
    #[diesel(sql_type = Nullable<BigInt>)]
    import_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    details: serde_json::Value,
}

fn events_of(conn: &mut PgConnection, linkage_id: i64) -> Vec<Event> {
    diesel::sql_query(
        "SELECT linkage_id, action, reason, actor, import_id, details FROM linkage_events
          WHERE linkage_id = $1 ORDER BY id",
    )
    .bind::<BigInt, _>(linkage_id)
    .load(conn)
    .unwrap()
}

fn person_id(conn: &mut PgConnection, p: &Person) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "SELECT id FROM persons WHERE insurer_number = $1 AND symbol = $2 AND number = $3
           AND branch = $4",
    )
    .bind::<Text, _>(&p.insurer_number)
    .bind::<Text, _>(&p.symbol)
    .bind::<Text, _>(&p.number)
    .bind::<Text, _>(&p.branch)
    .get_result::<Id>(conn)
    .unwrap()
    .id
}

fn linkages_of(conn: &mut PgConnection, p: &Person) -> Vec<LinkageView> {
    let id = person_id(conn, p);
    linkages::of_person(conn, id).unwrap()
}

/// A residents.csv row with the address given ("" for none).
fn record(
    my_number: &str,
    name_kanji: &str,
    name_kana: &str,
    birth_date: &str,
    sex: &str,
    address: &str,
) -> Vec<String> {
    let mut r = resident(my_number, name_kanji, name_kana, birth_date, sex, "active");
    r[5] = address.to_string();
    r
}

/// p[0] of the household (山田 太郎, ﾔﾏﾀﾞ ﾀﾛｳ, 1980-05-05, male, 東京都千代田区千代田1-1) as a
/// register would spell him: ● for a character outside its set, full-width kana, no space,
/// 丁目・番 notation without the prefecture.
fn taro_spelled_otherwise(my_number: &str) -> Vec<String> {
    record(
        my_number,
        "山●太郎",
        "ヤマダ　タロウ",
        "1980-05-05",
        "1",
        "千代田区千代田一丁目1番",
    )
}

/// Another human with p[0]'s kana, birth date and sex: the 2023 three-item lookup error.
fn taro_of_another_town(my_number: &str) -> Vec<String> {
    record(
        my_number,
        "山田　太朗",
        "ヤマダ　タロウ",
        "1980-05-05",
        "1",
        "神奈川県茅ヶ崎市新栄町4丁目5番6号",
    )
}

fn setup() -> (TestDb, PgConnection, Keyring, Vec<Person>) {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let p = household();
    import_persons_ok(&mut conn, persons_csv(&p));
    (db, conn, k, p)
}

fn snapshot(conn: &mut PgConnection, k: &Keyring, rows: Vec<Vec<String>>) -> i64 {
    let (s, issues) = import_residents(conn, k, residents_csv(rows));
    assert!(s.applied, "{issues:#?}");
    s.snapshot_id.unwrap()
}

fn register(
    conn: &mut PgConnection,
    k: &Keyring,
    p: &Person,
    number: &str,
    no_error_reason: Option<&str>,
) -> Result<LinkageView, DbError> {
    let id = person_id(conn, p);
    linkages::register(
        conn,
        k,
        id,
        &MyNumber::parse(number).unwrap(),
        LinkageSource::Applicant,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        None,
        no_error_reason,
        "clerk-a",
    )
}

/// Nothing a refusal says may hold the number, its last 4 digits or a register value.
fn assert_names_no_values(message: &str, number: &str, register_values: &[&str]) {
    assert!(!message.contains(number), "{message}");
    assert!(!message.contains(&number[8..]), "{message}");
    for v in register_values {
        assert!(!message.contains(v), "{message}");
    }
}

#[test]
fn a_person_matching_the_register_in_spelling_only_is_registered_confirmed() {
    let (_db, mut conn, k, p) = setup();
    let snap = snapshot(&mut conn, &k, vec![taro_spelled_otherwise(MN1)]);
    let v = register(&mut conn, &k, &p[0], MN1, None).unwrap();
    assert!(v.identity_confirmed);
    assert_eq!(v.status.as_str(), "active");
    let ev = events_of(&mut conn, v.id);
    assert_eq!(ev.len(), 1, "a match needs no event of its own: {ev:#?}");
    assert_eq!(ev[0].action, "registered");
    assert_eq!(ev[0].details["identity_check"], "matched");
    assert_eq!(ev[0].details["snapshot_id"], snap);
    assert_eq!(ev[0].details["not_compared"], serde_json::json!([]));
}

#[test]
fn a_number_the_register_lacks_is_stored_unconfirmed_and_said_so() {
    let (_db, mut conn, k, p) = setup();
    // No snapshot at all yet.
    let v = register(&mut conn, &k, &p[0], MN1, None).unwrap();
    assert!(!v.identity_confirmed);
    let ev = events_of(&mut conn, v.id);
    assert_eq!(
        ev.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["registered", "identity_not_checked"]
    );
    assert_eq!(ev[1].details["why"], "no_snapshot");
    assert_eq!(ev[1].details["snapshot_id"], serde_json::Value::Null);
    assert_eq!(
        (ev[1].actor.as_str(), ev[1].reason.as_ref()),
        ("clerk-a", None)
    );
    assert_eq!(ev[0].details["identity_check"], "not_checked");

    // A snapshot without the number.
    let snap = snapshot(&mut conn, &k, vec![taro_spelled_otherwise(MN1)]);
    let v = register(&mut conn, &k, &p[1], MN2, None).unwrap();
    assert!(!v.identity_confirmed);
    let ev = events_of(&mut conn, v.id);
    assert_eq!(ev[1].action, "identity_not_checked");
    assert_eq!(ev[1].details["why"], "no_record");
    assert_eq!(ev[1].details["snapshot_id"], snap);
}

#[test]
fn a_mismatch_is_refused_naming_only_the_items() {
    let (_db, mut conn, k, p) = setup();
    snapshot(&mut conn, &k, vec![taro_of_another_town(MN1)]);
    let before = dump(&mut conn);
    let err = register(&mut conn, &k, &p[0], MN1, None).unwrap_err();
    match &err {
        DbError::IdentityMismatch {
            differing,
            not_compared,
        } => {
            assert_eq!(differing, &[Field::NameKanji, Field::Address]);
            assert_eq!(not_compared, &[] as &[Field]);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("name_kanji;address"), "{message}");
    assert!(message.contains("理由付き疑いなし"), "{message}");
    assert_names_no_values(&message, MN1, &["太朗", "茅ヶ崎", "新栄町"]);
    assert_eq!(dump(&mut conn), before, "a refusal stores nothing");

    // Each item alone is refused too (a real mismatch per item, p[1] 山田 花子).
    let cases = [
        (
            record(MN2, "山田　花江", "ヤマダ　ハナコ", "1982-03-03", "2", ""),
            Field::NameKanji,
        ),
        (
            record(MN2, "山田　花子", "ヤマダ　ハナエ", "1982-03-03", "2", ""),
            Field::NameKana,
        ),
        (
            record(MN2, "山田　花子", "ヤマダ　ハナコ", "1982-03-04", "2", ""),
            Field::BirthDate,
        ),
        (
            record(MN2, "山田　花子", "ヤマダ　ハナコ", "1982-03-03", "1", ""),
            Field::Sex,
        ),
    ];
    for (row, field) in cases {
        snapshot(&mut conn, &k, vec![row]);
        match register(&mut conn, &k, &p[1], MN2, None).unwrap_err() {
            DbError::IdentityMismatch {
                differing,
                not_compared,
            } => {
                assert_eq!(differing, [field]);
                // The register gave no address: not compared, not a mismatch.
                assert_eq!(not_compared, [Field::Address]);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(linkages_of(&mut conn, &p[1]).is_empty());
}

#[test]
fn a_mismatch_with_a_reason_is_stored_unconfirmed_with_the_reason() {
    let (_db, mut conn, k, p) = setup();
    let snap = snapshot(&mut conn, &k, vec![taro_of_another_town(MN1)]);
    // A reason is free text: one holding a My Number is refused, and nothing is stored.
    let before = dump(&mut conn);
    let err = register(
        &mut conn,
        &k,
        &p[0],
        MN1,
        Some(&format!("番号 {MN2} で確認")),
    )
    .unwrap_err();
    assert!(matches!(err, DbError::Invalid(_)), "{err:?}");
    assert_eq!(dump(&mut conn), before);

    let reason = "住基の漢字が誤記（戸籍謄本で確認）";
    let v = register(&mut conn, &k, &p[0], MN1, Some(reason)).unwrap();
    assert!(!v.identity_confirmed, "the register does not vouch for it");
    assert_eq!(v.status.as_str(), "active");
    let ev = events_of(&mut conn, v.id);
    assert_eq!(
        ev.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["registered", "identity_mismatch_accepted"]
    );
    let accepted = &ev[1];
    assert_eq!(accepted.reason.as_deref(), Some(reason));
    assert_eq!(accepted.actor, "clerk-a");
    assert_eq!(
        accepted.details,
        serde_json::json!({ "identity_check": "mismatch_accepted", "snapshot_id": snap,
                            "differing": ["name_kanji", "address"], "not_compared": [] })
    );
    assert_eq!(ev[0].details["identity_check"], "mismatch_accepted");
}

#[test]
fn a_correction_is_checked_like_a_registration() {
    let (_db, mut conn, k, p) = setup();
    // p[0] was linked to a wrong number before the register extract arrived.
    let (s, _) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([link(&p[0], MN1, "employer", "2024-01-10")]),
    );
    assert!(s.applied);
    let old = linkages_of(&mut conn, &p[0]).pop().unwrap();
    let wrong_again = my_number(44_444_444_444);
    let right = my_number(55_555_555_555);
    snapshot(
        &mut conn,
        &k,
        vec![
            taro_of_another_town(&wrong_again),
            taro_spelled_otherwise(&right),
        ],
    );
    let correct = |conn: &mut PgConnection, id: i64, number: &str, no_error: Option<&str>| {
        linkages::correct(
            conn,
            &k,
            id,
            &MyNumber::parse(number).unwrap(),
            LinkageSource::Jlis,
            "employer sent another person's number",
            no_error,
            "reviewer",
        )
    };

    // The "right" number is another Taro's: refused, and the old linkage stays as it was.
    let before = dump(&mut conn);
    let err = correct(&mut conn, old.id, &wrong_again, None).unwrap_err();
    assert!(
        matches!(&err, DbError::IdentityMismatch { differing, .. }
            if differing == &[Field::NameKanji, Field::Address]),
        "{err:?}"
    );
    assert_names_no_values(&err.to_string(), &wrong_again, &["太朗", "茅ヶ崎"]);
    assert_eq!(dump(&mut conn), before);
    assert_eq!(linkages::get(&mut conn, old.id).unwrap(), old);

    // The right one matches: revoked and replaced, the new linkage confirmed by the register.
    let new = correct(&mut conn, old.id, &right, None).unwrap();
    assert!(new.identity_confirmed);
    assert_eq!(
        linkages::get(&mut conn, old.id).unwrap().status.as_str(),
        "revoked"
    );
    let ev = events_of(&mut conn, new.id);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].details["identity_check"], "matched");
    assert_eq!(ev[0].details["corrects"], old.id);

    // Correcting that one to the other Taro's number with a reason: stored, unconfirmed.
    let newer = correct(
        &mut conn,
        new.id,
        &wrong_again,
        Some("同一人物（改姓・転居を窓口で確認）"),
    )
    .unwrap();
    assert!(!newer.identity_confirmed);
    let actions: Vec<String> = events_of(&mut conn, newer.id)
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["registered", "identity_mismatch_accepted"]);
}

#[test]
fn the_record_is_found_under_the_index_key_of_the_snapshot() {
    let (_db, mut conn, mut k, p) = setup();
    // The extract was imported under index key 1; the linkages moved to key 2 since.
    snapshot(
        &mut conn,
        &k,
        vec![taro_spelled_otherwise(MN1), taro_of_another_town(MN2)],
    );
    assert_eq!(k.rotate_index_key(), 2);
    shikaku_db::keys::reindex(&mut conn, &k).unwrap();
    let v = register(&mut conn, &k, &p[0], MN1, None).unwrap();
    assert!(v.identity_confirmed, "matched through the old key's index");
    // The import compares under the snapshot's key too.
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([link(&p[2], MN2, "employer", "2024-01-10")]),
    );
    assert!(s.applied);
    assert_eq!(s.rejected, 1, "{issues:#?}");
}

#[test]
fn an_import_refuses_mismatching_rows_and_applies_the_rest() {
    let (_db, mut conn, k, p) = setup();
    let mn3 = my_number(33_333_333_333);
    let mn4 = my_number(44_444_444_444);
    // p[3] holds MN4 from before the register extract, which disagrees with him: stored
    // linkages are the audit's business, never dropped by an import.
    let (s, _) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([link(&p[3], &mn4, "employer", "2023-04-01")]),
    );
    assert!(s.applied);
    let kept = linkages_of(&mut conn, &p[3]).pop().unwrap();
    let snap = snapshot(
        &mut conn,
        &k,
        vec![
            taro_spelled_otherwise(MN1),
            // p[1] 山田 花子 with another birth date.
            record(
                MN2,
                "山田　花子",
                "ヤマダ　ハナコ",
                "1982-03-30",
                "2",
                "東京都千代田区千代田1-1",
            ),
            record(
                &mn4,
                "佐藤　一郎",
                "サトウ　イチロウ",
                "1950-01-02",
                "1",
                "",
            ),
        ],
    );
    let file = linkages_csv([
        link(&p[0], MN1, "employer", "2024-01-10"),
        link(&p[1], MN2, "employer", "2024-01-10"),
        link(&p[2], &mn3, "employer", "2024-01-10"),
        link(&p[3], &mn4, "employer", "2024-06-01"),
    ]);
    let (s, issues) = import_linkages(&mut conn, &k, &file);
    assert!(s.applied, "{issues:#?}");
    assert_eq!(
        (s.inserted, s.updated, s.unchanged, s.rejected, s.errors),
        (2, 1, 0, 1, 0),
        "{issues:#?}"
    );
    let rejected: Vec<_> = issues
        .iter()
        .filter(|i| i.level == IssueLevel::Rejected)
        .collect();
    assert_eq!(rejected.len(), 1, "{issues:#?}");
    assert_eq!(
        (rejected[0].line, rejected[0].column.as_str()),
        (3, "birth_date")
    );
    assert!(
        rejected[0].reason.contains("生年月日"),
        "{}",
        rejected[0].reason
    );
    assert_names_no_values(&rejected[0].reason, MN2, &["1982-03-30"]);
    assert_eq!(IssueLevel::Rejected.as_str(), "rejected");

    // Matched: confirmed, no event. Refused: nothing stored. Not in the register: unconfirmed
    // with its event. Already stored: updated, never checked again, never lost.
    let taro = linkages_of(&mut conn, &p[0]).pop().unwrap();
    assert!(taro.identity_confirmed);
    assert!(events_of(&mut conn, taro.id).is_empty());
    assert!(linkages_of(&mut conn, &p[1]).is_empty());
    let jiro = linkages_of(&mut conn, &p[2]).pop().unwrap();
    assert!(!jiro.identity_confirmed);
    let ev = events_of(&mut conn, jiro.id);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].action, "identity_not_checked");
    assert_eq!(ev[0].import_id, s.import_id);
    assert_eq!(ev[0].actor, "test");
    assert_eq!(ev[0].details["why"], "no_record");
    assert_eq!(ev[0].details["snapshot_id"], snap);
    let ichiro = linkages_of(&mut conn, &p[3]).pop().unwrap();
    assert_eq!(ichiro.id, kept.id);
    assert_eq!(ichiro.linked_on.to_string(), "2024-06-01");
    assert!(!ichiro.identity_confirmed);
    assert_eq!(
        text(
            &mut conn,
            &format!(
                "SELECT rows_rejected::text AS s FROM imports WHERE id = {}",
                s.import_id.unwrap()
            )
        ),
        "1"
    );

    // The same file again: the refused row is refused again, nothing else changes.
    let before = dump(&mut conn);
    let (s, issues) = import_linkages(&mut conn, &k, &file);
    assert!(s.applied);
    assert_eq!(
        (s.inserted, s.updated, s.unchanged, s.rejected),
        (0, 0, 3, 1),
        "{issues:#?}"
    );
    let after = dump(&mut conn);
    let strip = |d: &str| {
        d.lines()
            .filter(|l| !l.contains("linkages.csv") && !l.starts_with("== imports"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&after), strip(&before), "only the journal grew");

    // A check-only run reports the same and stores nothing.
    let before = dump(&mut conn);
    let mut sink = shikaku_db::import::CollectIssues::default();
    let checked = shikaku_db::import::run(
        &mut conn,
        shikaku_domain::FileKind::Linkages,
        &ctx("linkages.csv"),
        Some(&k),
        file.as_bytes(),
        &mut sink,
        true,
    )
    .unwrap();
    assert_eq!(checked.rejected, 1);
    assert_eq!(dump(&mut conn), before);
}

#[test]
fn before_any_extract_every_imported_linkage_is_stored_unchecked() {
    // The demo's order (persons, linkages, residents): its planted linkage errors are stored
    // unchecked and left to the audit, as linkages from before the 2023 rule are.
    let (_db, mut conn, k, p) = setup();
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[1], MN2, "employer", "2024-01-10"),
        ]),
    );
    assert!(s.applied);
    assert_eq!((s.inserted, s.rejected), (2, 0), "{issues:#?}");
    for person in &p[..2] {
        let l = linkages_of(&mut conn, person).pop().unwrap();
        assert!(!l.identity_confirmed);
        let ev = events_of(&mut conn, l.id);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].action.as_str(), &ev[0].details["why"]),
            ("identity_not_checked", &serde_json::json!("no_snapshot"))
        );
    }
}

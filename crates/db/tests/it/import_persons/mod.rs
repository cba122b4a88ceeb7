//! persons.csv import: storing, re-importing, history, periods, rejection of bad files, CSV
//! dialect (BOM, CRLF, quoting), and insurers first seen in a file.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Jsonb, Nullable, SmallInt, Text};
use serde_json::json;
use shikaku_db::insurers::{self, NewInsurer};
use shikaku_db::testing::TestDb;

use crate::util::*;

mod rejections;

#[derive(QueryableByName, Debug, PartialEq)]
struct Stored {
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = SmallInt)]
    relationship: i16,
    #[diesel(sql_type = Text)]
    name_kanji: String,
    #[diesel(sql_type = Text)]
    name_kana: String,
    #[diesel(sql_type = Text)]
    kana_key: String,
    #[diesel(sql_type = SmallInt)]
    sex: i16,
    #[diesel(sql_type = Nullable<Text>)]
    postal_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    copay_rate: Option<i16>,
}

fn stored(conn: &mut PgConnection) -> Vec<Stored> {
    diesel::sql_query(
        "SELECT insurer_number, symbol, number, branch, relationship, name_kanji, name_kana,
                kana_key, sex, postal_code, address, copay_rate
         FROM persons ORDER BY insurer_number DESC, branch",
    )
    .load(conn)
    .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Change {
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    import_id: Option<i64>,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Jsonb)]
    changes: serde_json::Value,
}

fn changes(conn: &mut PgConnection) -> Vec<Change> {
    diesel::sql_query(
        "SELECT p.number, p.branch, c.import_id, c.actor, c.action, c.changes
         FROM person_changes c JOIN persons p ON p.id = c.person_id
         ORDER BY c.id",
    )
    .load(conn)
    .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Period {
    #[diesel(sql_type = Date)]
    acquired_on: NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    lost_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    loss_reason: Option<String>,
}

fn periods(conn: &mut PgConnection, number: &str, branch: &str) -> Vec<Period> {
    diesel::sql_query(
        "SELECT q.acquired_on, q.lost_on, q.loss_reason
         FROM qualifications q JOIN persons p ON p.id = q.person_id
         WHERE p.number = $1 AND p.branch = $2 ORDER BY q.acquired_on",
    )
    .bind::<Text, _>(number)
    .bind::<Text, _>(branch)
    .load(conn)
    .unwrap()
}

/// The acquired_on of the period in force on `on` for the person, if any.
fn eligible_on(conn: &mut PgConnection, number: &str, on: &str) -> Option<NaiveDate> {
    #[derive(QueryableByName)]
    struct A {
        #[diesel(sql_type = Date)]
        acquired_on: NaiveDate,
    }
    let found = diesel::sql_query(
        "SELECT q.acquired_on FROM qualifications q JOIN persons p ON p.id = q.person_id
         WHERE p.number = $1 AND q.acquired_on <= $2 AND (q.lost_on IS NULL OR q.lost_on > $2)",
    )
    .bind::<Text, _>(number)
    .bind::<Date, _>(date(on))
    .load::<A>(conn)
    .unwrap()
    .into_iter()
    .map(|a| a.acquired_on)
    .collect::<Vec<_>>();
    assert!(found.len() <= 1, "two periods in force on {on}: {found:?}");
    found.first().copied()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn a_good_file_is_stored() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let (s, issues) = import_persons(&mut conn, persons_csv(&household()));
    assert!(s.applied, "{issues:#?}");
    assert_eq!(s.rows_read, 4);
    assert_eq!(s.inserted, 4);
    assert_eq!(s.updated, 0);
    assert_eq!(s.unchanged, 0);
    assert_eq!(s.errors, 0);
    // The only warnings: the two insurers were not registered yet.
    assert_eq!(s.warnings, 2, "{issues:#?}");
    assert!(s.import_id.is_some());
    assert_eq!(count(&mut conn, "persons"), 4);
    assert_eq!(count(&mut conn, "qualifications"), 4);
    assert_eq!(count(&mut conn, "person_changes"), 0);
    assert_eq!(
        text(
            &mut conn,
            "SELECT kind || ' ' || file_name || ' ' || actor || ' ' || rows_read || ' '
                    || rows_inserted || ' ' || rows_updated || ' ' || rows_unchanged || ' '
                    || warnings || ' ' || (finished_at IS NOT NULL) AS s FROM imports"
        ),
        "persons persons.csv test 4 4 0 0 2 true"
    );

    let rows = stored(&mut conn);
    let sato = &rows[3];
    assert_eq!(
        (
            sato.insurer_number.as_str(),
            sato.symbol.as_str(),
            sato.number.as_str()
        ),
        (INS_B, "", "5001")
    );
    // Absent 記号 and 枝番 are '' (never NULL, never '00').
    assert_eq!(sato.branch, "");
    assert_eq!(sato.kana_key, "サトウイチロウ");
    assert_eq!(
        (sato.postal_code.as_deref(), sato.address.as_deref()),
        (None, None)
    );
    assert_eq!(sato.copay_rate, None);

    let taro = &rows[0];
    assert_eq!(
        (taro.symbol.as_str(), taro.branch.as_str()),
        ("1234567", "00")
    );
    assert_eq!(taro.relationship, 1);
    assert_eq!(taro.name_kanji, "山田 太郎");
    // Stored as given; searched by a full-width katakana key without spaces.
    assert_eq!(taro.name_kana, "ﾔﾏﾀﾞ ﾀﾛｳ");
    assert_eq!(taro.kana_key, "ヤマダタロウ");
    assert_eq!(taro.postal_code.as_deref(), Some("1000001"));
    assert_eq!(taro.address.as_deref(), Some("東京都千代田区千代田1-1"));
    assert_eq!(taro.sex, 1);

    let hanako = &rows[1];
    assert_eq!(hanako.branch, "01");
    assert_eq!(hanako.relationship, 2);
    assert_eq!(hanako.sex, 2);
    assert_eq!(hanako.name_kana, "やまだ\u{3000}はなこ");
    assert_eq!(hanako.kana_key, "ヤマダハナコ");
    assert_eq!(hanako.postal_code.as_deref(), Some("1000001"));

    let jiro = &rows[2];
    assert_eq!(
        (jiro.branch.as_str(), jiro.kana_key.as_str()),
        ("02", "ヤマダジロウ")
    );

    assert_eq!(
        periods(&mut conn, "5001", ""),
        vec![Period {
            acquired_on: date("2019-10-01"),
            lost_on: None,
            loss_reason: None
        }]
    );
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let file = persons_csv(&household());
    import_persons_ok(&mut conn, &file);
    let before = text(
        &mut conn,
        "SELECT string_agg(p::text, E'\\n' ORDER BY id) AS s FROM persons p",
    );
    let (s, issues) = import_persons(&mut conn, &file);
    assert!(s.applied);
    assert_eq!(issues, vec![]);
    assert_eq!(
        (s.rows_read, s.inserted, s.updated, s.unchanged),
        (4, 0, 0, 4)
    );
    assert_eq!(count(&mut conn, "person_changes"), 0);
    assert_eq!(count(&mut conn, "persons"), 4);
    assert_eq!(count(&mut conn, "qualifications"), 4);
    assert_eq!(count(&mut conn, "imports"), 2);
    // Not even updated_at or import_id moved.
    let after = text(
        &mut conn,
        "SELECT string_agg(p::text, E'\\n' ORDER BY id) AS s FROM persons p",
    );
    assert_eq!(before, after);
}

#[test]
fn a_changed_address_and_a_loss_are_recorded_with_old_and_new_values() {
    let db = TestDb::new();
    let mut conn = db.conn();
    import_persons_ok(&mut conn, persons_csv(&household()));
    let mut next = household();
    next[0].address = "東京都港区芝公園4-2-8".into();
    next[0].lost_on = "2025-04-01".into();
    next[0].loss_reason = "03".into();
    let s = import_persons_ok(&mut conn, persons_csv(&next));
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 3));

    let c = changes(&mut conn);
    assert_eq!(c.len(), 2, "{c:#?}");
    let updated = c.iter().find(|c| c.action == "updated").unwrap();
    assert_eq!(
        (updated.number.as_str(), updated.branch.as_str()),
        ("89", "00")
    );
    assert_eq!(updated.import_id, s.import_id);
    assert_eq!(updated.actor, "test");
    assert_eq!(
        updated.changes,
        json!({"address": {"old": "東京都千代田区千代田1-1", "new": "東京都港区芝公園4-2-8"}})
    );
    let q = c
        .iter()
        .find(|c| c.action == "qualification_changed")
        .unwrap();
    assert_eq!((q.number.as_str(), q.branch.as_str()), ("89", "00"));
    assert_eq!(q.import_id, s.import_id);
    assert_eq!(
        q.changes,
        json!({
            "acquired_on": "2020-04-01",
            "lost_on": {"old": null, "new": "2025-04-01"},
            "loss_reason": {"old": null, "new": "03"}
        })
    );

    // The registry holds the new state; the old one lives on in the history above.
    assert_eq!(
        stored(&mut conn)[0].address.as_deref(),
        Some("東京都港区芝公園4-2-8")
    );
    assert_eq!(
        periods(&mut conn, "89", "00"),
        vec![Period {
            acquired_on: date("2020-04-01"),
            lost_on: Some(date("2025-04-01")),
            loss_reason: Some("03".into())
        }]
    );
    assert_eq!(count(&mut conn, "qualifications"), 4);
    assert_eq!(
        text(
            &mut conn,
            "SELECT rows_updated || '/' || rows_unchanged AS s FROM imports ORDER BY id DESC LIMIT 1"
        ),
        "1/3"
    );
}

/// A person whose only change is a recorded loss of qualification did change: the summary must
/// not call them unchanged (ImportSummary: "unchanged: records that existed and were
/// identical").
#[test]
fn a_loss_alone_counts_the_person_as_updated() {
    let db = TestDb::new();
    let mut conn = db.conn();
    import_persons_ok(&mut conn, persons_csv(&household()));
    let mut next = household();
    next[1].lost_on = "2024-10-01".into();
    next[1].loss_reason = "99".into();
    let s = import_persons_ok(&mut conn, persons_csv(&next));
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 3));
    let c = changes(&mut conn);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].action, "qualification_changed");
    assert_eq!(c[0].branch, "01");
}

#[test]
fn a_later_period_is_added_and_the_past_stays_answerable() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut first = household();
    first[3].lost_on = "2022-04-01".into();
    first[3].loss_reason = "03".into();
    import_persons_ok(&mut conn, persons_csv(&first));

    // The later file only carries the new period; the stored one is not repeated.
    let mut later = first[3].clone();
    later.acquired_on = "2023-01-01".into();
    later.lost_on = String::new();
    later.loss_reason = String::new();
    let s = import_persons_ok(&mut conn, persons_csv(&[later]));
    assert_eq!(
        (s.rows_read, s.inserted, s.updated, s.unchanged),
        (1, 0, 1, 0)
    );

    assert_eq!(
        periods(&mut conn, "5001", ""),
        vec![
            Period {
                acquired_on: date("2019-10-01"),
                lost_on: Some(date("2022-04-01")),
                loss_reason: Some("03".into())
            },
            Period {
                acquired_on: date("2023-01-01"),
                lost_on: None,
                loss_reason: None
            },
        ]
    );
    let c = changes(&mut conn);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].action, "qualification_added");
    assert_eq!(c[0].number, "5001");
    assert_eq!(
        c[0].changes,
        json!({"acquired_on": "2023-01-01", "lost_on": null, "loss_reason": null})
    );

    assert_eq!(eligible_on(&mut conn, "5001", "2019-09-30"), None);
    assert_eq!(
        eligible_on(&mut conn, "5001", "2021-06-01"),
        Some(date("2019-10-01"))
    );
    // lost_on is the first day without eligibility.
    assert_eq!(
        eligible_on(&mut conn, "5001", "2022-03-31"),
        Some(date("2019-10-01"))
    );
    assert_eq!(eligible_on(&mut conn, "5001", "2022-04-01"), None);
    assert_eq!(eligible_on(&mut conn, "5001", "2022-12-31"), None);
    assert_eq!(
        eligible_on(&mut conn, "5001", "2024-01-01"),
        Some(date("2023-01-01"))
    );
}

#[test]
fn closing_a_period_and_opening_the_next_in_one_file_is_accepted() {
    let db = TestDb::new();
    let mut conn = db.conn();
    import_persons_ok(&mut conn, persons_csv(&household()));
    let mut closed = household()[3].clone();
    closed.lost_on = "2023-04-01".into();
    closed.loss_reason = "03".into();
    let mut reopened = household()[3].clone();
    reopened.acquired_on = "2023-04-01".into();
    let s = import_persons_ok(&mut conn, persons_csv(&[closed, reopened]));
    assert_eq!((s.inserted, s.updated), (0, 1));
    let actions: Vec<String> = changes(&mut conn).into_iter().map(|c| c.action).collect();
    assert_eq!(actions, ["qualification_changed", "qualification_added"]);
    assert_eq!(
        eligible_on(&mut conn, "5001", "2023-03-31"),
        Some(date("2019-10-01"))
    );
    assert_eq!(
        eligible_on(&mut conn, "5001", "2023-04-01"),
        Some(date("2023-04-01"))
    );
}

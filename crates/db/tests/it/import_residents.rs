//! residents.csv import: one snapshot per import, each number once per snapshot.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};
use shikaku_db::testing::TestDb;
use shikaku_domain::Keyring;

use crate::util::*;

#[derive(QueryableByName, Debug)]
struct Record {
    #[diesel(sql_type = BigInt)]
    snapshot_id: i64,
    #[diesel(sql_type = Binary)]
    mn_blind: Vec<u8>,
    #[diesel(sql_type = Text)]
    mn_last4: String,
    #[diesel(sql_type = Bool)]
    check_digit_ok: bool,
    #[diesel(sql_type = Text)]
    name_kanji: String,
    #[diesel(sql_type = Nullable<Text>)]
    name_kana: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
}

fn records(conn: &mut PgConnection) -> Vec<Record> {
    diesel::sql_query(
        "SELECT snapshot_id, mn_blind, mn_last4, check_digit_ok, name_kanji, name_kana, status
         FROM resident_records ORDER BY snapshot_id, mn_last4",
    )
    .load(conn)
    .unwrap()
}

#[test]
fn each_import_is_a_new_snapshot() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let mn3 = my_number(11_111_111_111);
    let (s, issues) = import_residents(
        &mut conn,
        &k,
        residents_csv([
            resident(MN1, "山田 太郎", "ﾔﾏﾀﾞ ﾀﾛｳ", "1980-05-05", "1", "active"),
            resident(MN2, "髙橋 ●子", "", "1970-07-07", "2", "removed"),
            resident(
                &mn3,
                "佐藤 一郎",
                "サトウ イチロウ",
                "1950-01-01",
                "1",
                "active",
            ),
        ]),
    );
    assert!(s.applied, "{issues:#?}");
    assert_eq!(issues, vec![]);
    assert_eq!((s.rows_read, s.inserted), (3, 3));
    let first = s.snapshot_id.unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT id || ' ' || file_name || ' ' || rows || ' ' || (import_id IS NOT NULL) AS s
             FROM resident_snapshots"
        ),
        format!("{first} residents.csv 3 true")
    );
    let r = records(&mut conn);
    assert_eq!(r.len(), 3);
    let by_last4 = |l: &str| r.iter().find(|x| x.mn_last4 == l).unwrap();
    let taro = by_last4("9018");
    assert_eq!(taro.snapshot_id, first);
    assert_eq!(taro.mn_blind, k.blind_index(MN1).as_bytes());
    assert!(taro.check_digit_ok);
    assert_eq!(taro.name_kana.as_deref(), Some("ﾔﾏﾀﾞ ﾀﾛｳ"));
    let removed = by_last4("1093");
    assert_eq!(removed.name_kanji, "髙橋 ●子");
    assert_eq!(removed.name_kana, None);
    assert_eq!(removed.status, "removed");
    assert_eq!(by_last4(&mn3[8..]).mn_blind, k.blind_index(&mn3).as_bytes());
    assert!(!dump(&mut conn).contains(MN1));

    let (s, _) = import_residents(
        &mut conn,
        &k,
        residents_csv([resident(MN1, "山田 太郎", "", "1980-05-05", "1", "removed")]),
    );
    assert!(s.applied);
    let second = s.snapshot_id.unwrap();
    assert!(second > first);
    assert_eq!(count(&mut conn, "resident_snapshots"), 2);
    let r = records(&mut conn);
    assert_eq!(r.iter().filter(|x| x.snapshot_id == first).count(), 3);
    let latest: Vec<&Record> = r.iter().filter(|x| x.snapshot_id == second).collect();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (latest[0].mn_last4.as_str(), latest[0].status.as_str()),
        ("9018", "removed")
    );
}

#[test]
fn a_number_twice_in_one_file_names_the_first_line() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let (s, issues) = import_residents(
        &mut conn,
        &k,
        residents_csv([
            resident(MN1, "山田 太郎", "", "1980-05-05", "1", "active"),
            resident(MN2, "山田 花子", "", "1982-03-03", "2", "active"),
            resident(MN1, "山田 太朗", "", "1980-05-05", "1", "active"),
        ]),
    );
    assert!(!s.applied);
    assert_eq!(s.snapshot_id, None);
    assert_eq!(errors(&issues), vec![(4, "my_number".to_string())]);
    assert!(
        issues[0].reason.contains("already appears on line 2")
            && issues[0].reason.contains("9018")
            && !issues[0].reason.contains(MN1),
        "{}",
        issues[0].reason
    );
    for t in TABLES {
        assert_eq!(count(&mut conn, t), 0, "{t}");
    }
}

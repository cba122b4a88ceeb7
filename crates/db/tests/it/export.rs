//! persons.csv export: re-importing it changes nothing, and it is deterministic.

use shikaku_db::export::export_persons;
use shikaku_db::testing::TestDb;

use crate::util::*;

#[test]
fn export_then_reimport_changes_nothing_and_exports_identically() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut people = household();
    people[0].address = "東京都港区芝公園4-2-8, \"メゾン芝\" 101号".into();
    people[0].copay_rate = "30".into();
    people[2].copay_rate = "20".into();
    // 佐藤: a closed period and a later open one (two export rows).
    people[3].lost_on = "2022-04-01".into();
    people[3].loss_reason = "03".into();
    let mut again = people[3].clone();
    again.acquired_on = "2023-01-01".into();
    again.lost_on = String::new();
    again.loss_reason = String::new();
    people.push(again);
    people.extend((0..20).map(|i| generated_person(INS_C, i)));
    import_persons_ok(&mut conn, persons_csv(&people));

    let mut first = Vec::new();
    let written = export_persons(&mut conn, &mut first).unwrap();
    assert_eq!(written, 25);
    let text_out = String::from_utf8(first.clone()).unwrap();
    let lines: Vec<&str> = text_out.lines().collect();
    assert_eq!(lines.len(), 26);
    // The export carries the certificate columns too (empty here); the file imported had none.
    assert_eq!(
        lines[0],
        format!(
            "{},voluntary_until,residence_until,certificate_requested",
            PERSON_HEADER.join(",")
        )
    );
    // Every period, absent 記号/枝番 as empty cells, the quoted address quoted again.
    assert!(lines.contains(
        &"01040013,,5001,,insured,佐藤 一郎,サトウ イチロウ,1950-01-01,1,,,2019-10-01,2022-04-01,03,,,,"
    ));
    assert!(lines.contains(
        &"01040013,,5001,,insured,佐藤 一郎,サトウ イチロウ,1950-01-01,1,,,2023-01-01,,,,,,"
    ));
    assert!(lines.contains(
        &"33120015,1234567,89,00,insured,山田 太郎,ﾔﾏﾀﾞ ﾀﾛｳ,1980-05-05,1,1000001,\"東京都港区芝公園4-2-8, \"\"メゾン芝\"\" 101号\",2020-04-01,,,30,,,"
    ));
    assert!(lines.contains(
        &"33120015,1234567,89,01,dependent,山田 花子,やまだ\u{3000}はなこ,1982-03-03,2,1000001,東京都千代田区千代田1-1,2020-04-01,,,,,,"
    ));

    let before = dump(&mut conn);
    let (s, issues) = import_persons(&mut conn, &first);
    assert!(s.applied, "{issues:#?}");
    assert_eq!(errors(&issues), vec![]);
    assert_eq!(
        (s.rows_read, s.inserted, s.updated, s.unchanged),
        (25, 0, 0, 24)
    );
    assert_eq!(count(&mut conn, "person_changes"), 0);
    // Only the journal grew.
    let after = dump(&mut conn);
    let strip = |d: &str| d.split("== insurers").nth(1).unwrap().to_string();
    assert_eq!(strip(&before), strip(&after));

    let mut second = Vec::new();
    export_persons(&mut conn, &mut second).unwrap();
    assert_eq!(first, second);
}

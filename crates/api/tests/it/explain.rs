//! The eligibility lookup's plan on a registry of 20,000 persons: an index probe per key, never
//! a scan of persons or qualifications.

use diesel::prelude::*;
use diesel::sql_types::{Array, Date, Nullable, Text};

use crate::*;

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[::core::prelude::v1::test]
fn eligibility_lookup_uses_the_person_key_index() {
    let app = TestApp::new();
    let mut conn = app.conn();
    for sql in [
        format!(
            "INSERT INTO persons (insurer_number, symbol, number, branch, relationship, name_kanji,
                                  name_kana, kana_key, birth_date, sex)
             SELECT '{KUMIAI}', (g % 100)::text, g::text, '00', 1, '試験', 'シケン', 'シケン',
                    date '1950-01-01' + (g % 20000), 1
               FROM generate_series(1, 20000) g"
        ),
        "INSERT INTO qualifications (person_id, acquired_on) SELECT id, date '2000-01-01' FROM persons".into(),
        "INSERT INTO benefits (person_id, kind, value, valid_from)
         SELECT id, 'limit', 'A03', date '2020-01-01' FROM persons WHERE id % 10 = 0".into(),
        "ANALYZE persons".into(),
        "ANALYZE qualifications".into(),
        "ANALYZE benefits".into(),
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    let plan: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {}", shikaku_db::eligibility::LOOKUP))
        .bind::<Array<Text>, _>(vec![KUMIAI, KUMIAI])
        .bind::<Array<Text>, _>(vec!["7", "8"])
        .bind::<Array<Text>, _>(vec!["107", "208"])
        .bind::<Array<Nullable<Text>>, _>(vec![Some("00"), None])
        .bind::<Array<Date>, _>(vec![d("1950-04-18"), d("1950-07-27")])
        .bind::<Array<Date>, _>(vec![d("2026-01-01"), d("2026-01-01")])
        .load(&mut conn)
        .unwrap();
    let text: String = plan
        .iter()
        .map(|p| p.line.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("persons_key"), "{text}");
    assert!(text.contains("qualifications_person_acquired"), "{text}");
    assert!(!text.contains("Seq Scan on persons"), "{text}");
    assert!(!text.contains("Seq Scan on qualifications"), "{text}");
    // The benefits in force come from the person's records through the benefits key.
    assert!(text.contains("benefits_key"), "{text}");
    assert!(!text.contains("Seq Scan on benefits"), "{text}");
}

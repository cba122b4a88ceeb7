//! Rules the database enforces for every writer, not only for the import: overlapping
//! qualification periods are refused whether they arrive in one statement or in several.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use shikaku_db::testing::TestDb;

use crate::util::INS_A;

/// A person with no periods; returns its id.
fn person(conn: &mut PgConnection, number: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    conn.batch_execute(&format!(
        "INSERT INTO insurers (insurer_number) VALUES ('{INS_A}') ON CONFLICT DO NOTHING"
    ))
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO persons (insurer_number, number, relationship, name_kanji, name_kana,
                              kana_key, birth_date, sex)
         VALUES ('{INS_A}', '{number}', 1, '山田　太郎', 'ヤマダ　タロウ', 'ヤマダタロウ',
                 '1980-01-01', 1) RETURNING id"
    ))
    .get_result::<Id>(conn)
    .unwrap()
    .id
}

fn is_overlap_error(result: QueryResult<()>) -> bool {
    match result {
        Err(diesel::result::Error::DatabaseError(_, info)) => {
            info.constraint_name() == Some("qualifications_no_overlap")
                && info.message().contains("overlap")
        }
        _ => false,
    }
}

#[test]
fn overlapping_periods_are_refused_by_the_database() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let id = person(&mut conn, "1");

    // Adjacent periods are fine: lost_on is the first day without eligibility.
    conn.batch_execute(&format!(
        "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason)
         VALUES ({id}, '2020-04-01', '2021-04-01', '03');
         INSERT INTO qualifications (person_id, acquired_on) VALUES ({id}, '2021-04-01');"
    ))
    .unwrap();

    // A period inside a stored one, from a separate statement.
    assert!(is_overlap_error(conn.batch_execute(&format!(
        "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason)
         VALUES ({id}, '2020-06-01', '2020-07-01', '99')"
    ))));
    // Two overlapping periods in one statement, for a person with none stored.
    let other = person(&mut conn, "2");
    assert!(is_overlap_error(conn.batch_execute(&format!(
        "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason)
         VALUES ({other}, '2020-01-01', '2020-12-01', '03'), ({other}, '2020-11-01', NULL, NULL)"
    ))));
    // Reopening a closed period so that it runs into the next one.
    assert!(is_overlap_error(conn.batch_execute(&format!(
        "UPDATE qualifications SET lost_on = NULL, loss_reason = NULL
         WHERE person_id = {id} AND acquired_on = '2020-04-01'"
    ))));

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n = diesel::sql_query("SELECT count(*) AS n FROM qualifications")
        .get_result::<N>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(n, 2, "only the two adjacent periods are stored");
}

#[test]
fn the_same_periods_for_different_persons_do_not_clash() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let a = person(&mut conn, "1");
    let b = person(&mut conn, "2");
    conn.batch_execute(&format!(
        "INSERT INTO qualifications (person_id, acquired_on)
         VALUES ({a}, '2020-04-01'), ({b}, '2020-04-01')"
    ))
    .unwrap();
}

//! The lookups the API and the audit depend on use their indexes, on tables large enough that
//! the planner would rather scan if no index fitted (no `enable_seqscan = off`).

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Binary, Date, Json, Text};
use shikaku_db::testing::TestDb;
use shikaku_domain::Keyring;

use crate::util::*;

const PEOPLE: usize = 20_000;

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Json)]
    #[diesel(column_name = "QUERY PLAN")]
    plan: serde_json::Value,
}

/// Every (node type, index name) in a plan tree.
fn nodes(plan: &serde_json::Value, out: &mut Vec<(String, String)>) {
    let node_type = plan["Node Type"].as_str().unwrap_or_default().to_string();
    let index = plan["Index Name"].as_str().unwrap_or_default().to_string();
    out.push((node_type, index));
    if let Some(children) = plan["Plans"].as_array() {
        for c in children {
            nodes(c, out);
        }
    }
}

fn explain(
    conn: &mut PgConnection,
    query: BoxedSqlQuery<'_, Pg, SqlQuery>,
) -> Vec<(String, String)> {
    let plan: Plan = query.get_result(conn).unwrap();
    let mut out = Vec::new();
    nodes(&plan.plan[0]["Plan"], &mut out);
    out
}

fn assert_uses_index(what: &str, plan: &[(String, String)], index: &str) {
    assert!(
        !plan.iter().any(|(t, _)| t == "Seq Scan"),
        "{what}: sequential scan in {plan:?}"
    );
    assert!(
        plan.iter().any(|(t, i)| {
            ["Index Scan", "Index Only Scan", "Bitmap Index Scan"].contains(&t.as_str())
                && i == index
        }),
        "{what}: no scan of {index} in {plan:?}"
    );
}

#[test]
fn key_lookups_use_their_indexes() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let people: Vec<Person> = (0..PEOPLE).map(|i| generated_person(INS_A, i)).collect();
    let s = import_persons_ok(&mut conn, persons_csv(&people));
    assert_eq!(s.inserted, PEOPLE as u64);
    let k = Keyring::generate();
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv(people.iter().enumerate().map(|(i, p)| {
            link(
                p,
                &my_number(10_000_000_000 + i as u64),
                "jlis",
                "2024-01-10",
            )
        })),
    );
    assert!(s.applied, "{:?}", &issues[..issues.len().min(3)]);
    assert_eq!(s.inserted, PEOPLE as u64);
    conn.batch_execute("ANALYZE").unwrap();

    let target = &people[12_345];
    assert_eq!(target.branch, "00");

    // (a) The person key, bound as text the way diesel binds it.
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT * FROM persons
             WHERE insurer_number = $1 AND symbol = $2 AND number = $3 AND branch = $4",
        )
        .into_boxed()
        .bind::<Text, _>(target.insurer_number.clone())
        .bind::<Text, _>(target.symbol.clone())
        .bind::<Text, _>(target.number.clone())
        .bind::<Text, _>(target.branch.clone()),
    );
    assert_uses_index("person key", &plan, "persons_key");

    // (b) A linkage by blind index.
    let plan = explain(
        &mut conn,
        diesel::sql_query("EXPLAIN (FORMAT JSON) SELECT * FROM linkages WHERE mn_blind = $1")
            .into_boxed()
            .bind::<Binary, _>(
                k.blind_index(&my_number(10_000_012_345))
                    .as_bytes()
                    .to_vec(),
            ),
    );
    assert_uses_index("blind index", &plan, "linkages_blind");

    // (c) Kana name and birth date.
    let birth = NaiveDate::parse_from_str(&target.birth_date, "%Y-%m-%d").unwrap();
    let kana_key: String = target.name_kana.chars().filter(|c| *c != ' ').collect();
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT * FROM persons WHERE kana_key = $1 AND birth_date = $2",
        )
        .into_boxed()
        .bind::<Text, _>(kana_key.clone())
        .bind::<Date, _>(birth),
    );
    assert_uses_index("kana and birth date", &plan, "persons_kana_birth");
    // The lookup really finds the person.
    assert_eq!(
        text(
            &mut conn,
            &format!(
                "SELECT number AS s FROM persons WHERE kana_key = '{kana_key}' AND birth_date = '{birth}'"
            )
        ),
        target.number
    );

    // (d) The qualification in force on a date for a person.
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let person_id = diesel::sql_query("SELECT id FROM persons WHERE number = $1")
        .bind::<Text, _>(target.number.clone())
        .get_result::<Id>(&mut conn)
        .unwrap()
        .id;
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT * FROM qualifications
             WHERE person_id = $1 AND acquired_on <= $2 AND (lost_on IS NULL OR lost_on > $2)",
        )
        .into_boxed()
        .bind::<BigInt, _>(person_id)
        .bind::<Date, _>(NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()),
    );
    assert_uses_index(
        "eligibility on a date",
        &plan,
        "qualifications_person_acquired",
    );
}

/// The daily settlement and the monthly run's search for suspended linkages touch only the few
/// certificates ending or starting and the few suspended linkages, through partial indexes.
#[test]
fn certificate_settlement_and_suspended_linkages_use_their_indexes() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let people: Vec<Person> = (0..PEOPLE).map(|i| generated_person(INS_A, i)).collect();
    import_persons_ok(&mut conn, persons_csv(&people));
    let k = Keyring::generate();
    let (s, _) = import_linkages(
        &mut conn,
        &k,
        linkages_csv(people.iter().enumerate().map(|(i, p)| {
            link(
                p,
                &my_number(20_000_000_000 + i as u64),
                "jlis",
                "2024-01-10",
            )
        })),
    );
    assert!(s.applied);
    // A certificate per person ending over five years, every tenth with its renewal pending;
    // a handful of suspended linkages.
    conn.batch_execute(
        "INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on, valid_from,
                                   valid_until, valid_until_reason, printed, status)
         SELECT p.insurer_number, lpad(p.id::text, 10, '0'), p.id, 'ex_officio', '2026-01-05',
                '2026-01-05', DATE '2026-02-01' + (p.id % 1800)::int, 'policy', '{}', 'active'
           FROM persons p;
         INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on, valid_from,
                                   valid_until, valid_until_reason, printed, status)
         SELECT c.insurer_number, lpad((c.person_id + 5000000)::text, 10, '0'), c.person_id,
                'ex_officio', '2026-01-05', c.valid_until + 1, c.valid_until + 365, 'policy',
                '{}', 'pending'
           FROM certificates c WHERE c.person_id % 10 = 0;
         UPDATE linkages SET status = 'suspended' WHERE id % 2000 = 0;
         ANALYZE;",
    )
    .unwrap();
    let on = NaiveDate::from_ymd_opt(2026, 2, 10).unwrap();
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT id FROM certificates
              WHERE status IN ('active', 'pending') AND valid_until < $1",
        )
        .into_boxed()
        .bind::<Date, _>(on),
    );
    assert_uses_index("certificates ended", &plan, "certificates_expiring");
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT id FROM certificates
              WHERE status = 'pending' AND valid_from <= $1",
        )
        .into_boxed()
        .bind::<Date, _>(on),
    );
    assert_uses_index("renewals starting", &plan, "certificates_starting");
    let plan = explain(
        &mut conn,
        diesel::sql_query(
            "EXPLAIN (FORMAT JSON) SELECT DISTINCT l.person_id FROM linkages l
              WHERE l.status = 'suspended'
                AND NOT EXISTS (SELECT 1 FROM linkages a
                                 WHERE a.person_id = l.person_id AND a.status = 'active')",
        )
        .into_boxed(),
    );
    assert!(
        plan.iter()
            .any(|(t, i)| t.contains("Index") && i == "linkages_suspended"),
        "suspended linkages: {plan:?}"
    );
    // The settlement itself: the endings before the day expire, and the renewals that follow
    // them (every tenth) become active.
    let ended: u64 = text(
        &mut conn,
        "SELECT count(*)::text AS s FROM certificates WHERE valid_until < '2026-02-10'",
    )
    .parse()
    .unwrap();
    let settled = shikaku_db::certificates::expire(&mut conn, on, "batch").unwrap();
    assert_eq!(settled.expired, ended, "{settled:?}");
    assert!(
        settled.activated > 0 && settled.activated < settled.expired,
        "{settled:?}"
    );
}

//! Dated benefits against a real database: the benefits.csv import (line errors, overlaps in
//! the file and against stored records, replacement with history, the age-rule warning), the
//! export that imports back unchanged, the database refusing an overlap from any writer, staff
//! writes with history, and a change of co-pay cutting a 後期 member's certificate and the
//! monthly run issuing the replacement that supersedes it.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use shikaku_db::benefits::{self, BenefitInput};
use shikaku_db::certificates::{self, DueOptions, IssueOptions};
use shikaku_db::import::{self, CollectIssues, ImportSummary, Issue};
use shikaku_db::testing::TestDb;
use shikaku_domain::benefit::BenefitKind;
use shikaku_domain::CertificateKind as Kind;

use crate::util::{certificate_person as person, ctx, d, errors, warnings};

const KUMIAI: &str = "06130199";
const KOKI: &str = "39131016";
const HEADER: &str =
    "insurer_number,symbol,number,branch,kind,value,disease,valid_from,valid_until\n";

fn setup(conn: &mut PgConnection) {
    for (n, kind) in [(KUMIAI, "kumiai"), (KOKI, "koki")] {
        diesel::sql_query(
            "INSERT INTO insurers (insurer_number, name, kind, cert_policy)
             VALUES ($1, 'テスト', $2, 'yearly_july')",
        )
        .bind::<Text, _>(n)
        .bind::<Text, _>(kind)
        .execute(conn)
        .unwrap();
    }
}

fn import(conn: &mut PgConnection, body: &str) -> (ImportSummary, Vec<Issue>) {
    let mut sink = CollectIssues::default();
    let data = format!("{HEADER}{body}");
    let s = import::import_benefits(conn, &ctx("benefits.csv"), data.as_bytes(), &mut sink)
        .expect("the import must judge the file");
    (s, sink.0)
}

fn stored(conn: &mut PgConnection) -> Vec<(String, String, String, String)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        number: String,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        value: String,
        #[diesel(sql_type = Text)]
        dates: String,
    }
    diesel::sql_query(
        "SELECT p.number, b.kind, b.value,
                b.valid_from || '..' || coalesce(b.valid_until::text, '') AS dates
           FROM benefits b JOIN persons p ON p.id = b.person_id
          ORDER BY p.number, b.kind, b.disease, b.valid_from",
    )
    .load::<Row>(conn)
    .unwrap()
    .into_iter()
    .map(|r| (r.number, r.kind, r.value, r.dates))
    .collect()
}

#[test]
fn import_checks_lines_replaces_with_history_and_round_trips() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    person(&mut conn, KUMIAI, "1", "1954-05-10", None);
    person(&mut conn, KUMIAI, "2", "1980-01-01", None);
    person(&mut conn, KOKI, "3", "1946-02-02", None);

    // Every bad line named, nothing stored.
    let (s, issues) = import(
        &mut conn,
        &format!(
            "{KUMIAI},,1,,copay,25,,2026-08-01,\n\
             {KUMIAI},,1,,limit,A07,,2026-08-01,\n\
             {KUMIAI},,2,,copay,30,dialysis,2026-08-01,\n\
             {KUMIAI},,2,,specified_disease,10000,cancer,2026-08-01,\n\
             {KUMIAI},,2,,limit,A03,,2026-08-01,2026-07-01\n\
             {KUMIAI},,404,,limit,A03,,2026-08-01,\n\
             {KUMIAI},,2,,limit,A04,,2025-08-01,2026-07-31\n\
             {KUMIAI},,2,,limit,A05,,2026-01-01,\n\
             {KUMIAI},,2,,limit,A05,,2026-01-01,\n"
        ),
    );
    assert!(!s.applied);
    assert_eq!(
        errors(&issues),
        vec![
            (2, "value".into()),
            (3, "value".into()),
            (4, "disease".into()),
            (5, "disease".into()),
            (6, "valid_until".into()),
            (7, "number".into()),
            (9, "valid_from".into()),
            (10, "valid_from".into()),
            (10, "valid_from".into()),
        ],
        "{issues:#?}"
    );
    assert!(stored(&mut conn).is_empty());

    // A good file: a 72-year-old at 30% then 10% (warned: the age rules do not allow it).
    let file = format!(
        "{KUMIAI},,1,,copay,30,,2025-08-01,2026-07-31\n\
         {KUMIAI},,1,,copay,10,,2026-08-01,\n\
         {KUMIAI},,2,,limit,A04,,2025-08-01,2026-07-31\n\
         {KUMIAI},,2,,limit,A03,,2026-08-01,\n\
         {KUMIAI},,2,,specified_disease,20000,dialysis,2024-04-01,\n\
         {KOKI},,3,,copay,10,,2025-08-01,\n\
         {KOKI},,3,,specified_disease,10000,hemophilia,2020-04-01,\n\
         {KOKI},,3,,specified_disease,10000,hiv,2020-04-01,\n"
    );
    let (s, issues) = import(&mut conn, &file);
    assert!(s.applied, "{issues:#?}");
    assert_eq!(s.inserted, 8);
    let w = warnings(&issues);
    assert_eq!(w.len(), 1, "{issues:#?}");
    assert_eq!(w[0].line, 3);
    assert!(w[0].reason.contains("allowed: 20, 30"), "{}", w[0].reason);

    // Export, then import the export: nothing changes.
    let mut out = Vec::new();
    assert_eq!(benefits::export(&mut conn, &mut out).unwrap(), 8);
    let exported = String::from_utf8(out).unwrap();
    assert!(exported.starts_with(HEADER));
    let before = stored(&mut conn);
    let mut sink = CollectIssues::default();
    let again = import::import_benefits(
        &mut conn,
        &ctx("export.csv"),
        exported.as_bytes(),
        &mut sink,
    )
    .unwrap();
    assert!(again.applied, "{:#?}", sink.0);
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 8));
    assert_eq!(stored(&mut conn), before);

    // A new open-ended co-pay overlapping the stored open one is refused with its line...
    let (s, issues) = import(&mut conn, &format!("{KOKI},,3,,copay,20,,2026-10-01,\n"));
    assert!(!s.applied);
    assert_eq!(
        errors(&issues),
        vec![(2, "valid_from".into())],
        "{issues:#?}"
    );
    // ...and accepted when the file ends the stored one (same valid_from replaces it).
    let (s, issues) = import(
        &mut conn,
        &format!(
            "{KOKI},,3,,copay,10,,2025-08-01,2026-09-30\n\
             {KOKI},,3,,copay,20,,2026-10-01,\n"
        ),
    );
    assert!(s.applied, "{issues:#?}");
    assert_eq!((s.inserted, s.updated), (1, 1));
    let history = crate::util::text(
        &mut conn,
        "SELECT string_agg(action || ' ' || coalesce(changes -> 'old' ->> 'valid_until', '')
                           || '->' || coalesce(changes -> 'new' ->> 'valid_until', ''), ';') AS s
           FROM person_changes WHERE action LIKE 'benefit_%'",
    );
    assert_eq!(history, "benefit_changed ->2026-09-30");
    let koki: Vec<_> = stored(&mut conn)
        .into_iter()
        .filter(|r| r.0 == "3")
        .collect();
    assert_eq!(
        koki[0],
        (
            "3".into(),
            "copay".into(),
            "10".into(),
            "2025-08-01..2026-09-30".into()
        )
    );
    assert_eq!(
        koki[1],
        (
            "3".into(),
            "copay".into(),
            "20".into(),
            "2026-10-01..".into()
        )
    );
}

#[test]
fn the_database_refuses_overlaps_from_any_writer() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let id = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let insert = |conn: &mut PgConnection, kind: &str, value: &str, disease: &str, from: &str| {
        diesel::sql_query(
            "INSERT INTO benefits (person_id, kind, value, disease, valid_from)
             VALUES ($1, $2, $3, $4, $5::date)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(kind)
        .bind::<Text, _>(value)
        .bind::<Text, _>(disease)
        .bind::<Text, _>(from)
        .execute(conn)
    };
    insert(&mut conn, "limit", "A03", "", "2026-01-01").unwrap();
    let err = insert(&mut conn, "limit", "A04", "", "2026-06-01").unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    // Different diseases may overlap; the same disease may not; a bad value never stores.
    insert(
        &mut conn,
        "specified_disease",
        "10000",
        "hemophilia",
        "2026-01-01",
    )
    .unwrap();
    insert(&mut conn, "specified_disease", "10000", "hiv", "2026-01-01").unwrap();
    assert!(insert(&mut conn, "specified_disease", "10000", "hiv", "2026-03-01").is_err());
    assert!(insert(&mut conn, "copay", "15", "", "2020-01-01").is_err());
    assert!(insert(&mut conn, "limit", "A03", "dialysis", "2020-01-01").is_err());
}

/// `persons.has_benefits` (which lets the eligibility lookup skip the benefits table for most
/// persons) is set by the database on every insert, from staff writes, the import and plain
/// SQL alike; a person without records reads as none.
#[test]
fn every_writer_flags_the_person_whose_records_the_readers_then_see() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let by_sql = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let by_staff = person(&mut conn, KUMIAI, "2", "1980-01-01", None);
    let by_import = person(&mut conn, KUMIAI, "3", "1980-01-01", None);
    let without = person(&mut conn, KUMIAI, "4", "1980-01-01", None);
    let flagged = |conn: &mut PgConnection| -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query("SELECT id FROM persons WHERE has_benefits ORDER BY id")
            .load::<Row>(conn)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert!(flagged(&mut conn).is_empty());
    diesel::sql_query(
        "INSERT INTO benefits (person_id, kind, value, valid_from) VALUES ($1, 'limit', 'A03', '2026-01-01')",
    )
    .bind::<BigInt, _>(by_sql)
    .execute(&mut conn)
    .unwrap();
    let input = BenefitInput {
        kind: BenefitKind::Limit,
        value: "A04".into(),
        disease: None,
        valid_from: d("2026-04-01"),
        valid_until: None,
    };
    benefits::add(
        &mut conn,
        by_staff,
        &input,
        "clerk",
        "申請",
        d("2026-04-01"),
    )
    .unwrap();
    let (summary, issues) = import(&mut conn, &format!("{KUMIAI},,3,,limit,A05,,2026-05-01,\n"));
    assert!(errors(&issues).is_empty(), "{issues:?}");
    assert_eq!(summary.inserted, 1);
    assert_eq!(flagged(&mut conn), vec![by_sql, by_staff, by_import]);
    // What every reader parses: the records for a flagged person, none for the other.
    let json = |conn: &mut PgConnection, id: i64| -> String {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            json: String,
        }
        diesel::sql_query(format!(
            "SELECT ({})::text AS json FROM persons p WHERE p.id = $1",
            benefits::BENEFITS_JSON
        ))
        .bind::<BigInt, _>(id)
        .get_result::<Row>(conn)
        .unwrap()
        .json
    };
    assert!(json(&mut conn, by_import).contains("A05"));
    assert_eq!(json(&mut conn, without), "[]");
}

#[test]
fn a_koki_ten_to_twenty_change_cuts_the_certificate_and_the_monthly_run_replaces_it() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let id = person(&mut conn, KOKI, "7", "1945-04-10", None);
    let input = |value: &str, from: &str, until: Option<&str>| BenefitInput {
        kind: BenefitKind::Copay,
        value: value.into(),
        disease: None,
        valid_from: d(from),
        valid_until: until.map(d),
    };
    benefits::add(
        &mut conn,
        id,
        &input("10", "2025-08-01", None),
        "clerk",
        "所得判定",
        d("2026-08-01"),
    )
    .unwrap();
    let cert = certificates::issue(
        &mut conn,
        id,
        Kind::Application,
        d("2026-08-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    assert_eq!(cert.valid_until, d("2027-07-31"));
    assert_eq!(cert.printed.copay_percent, 10);

    // 20% (一定以上所得) from 1 October: end the 10% record, add the 20% one.
    let ten = benefits::of_person(&mut conn, id).unwrap()[0].id;
    let ended = benefits::end(
        &mut conn,
        ten,
        d("2026-09-30"),
        "clerk",
        "所得の再判定",
        d("2026-09-05"),
    )
    .unwrap();
    assert!(
        ended.certificates_cut.is_empty(),
        "ending alone hands back to the age rule: still 10%"
    );
    let added = benefits::add(
        &mut conn,
        id,
        &input("20", "2026-10-01", None),
        "clerk",
        "所得の再判定",
        d("2026-09-05"),
    )
    .unwrap();
    assert_eq!(added.certificates_cut, vec![cert.id]);
    let cut = certificates::get(&mut conn, cert.id).unwrap();
    assert_eq!(
        (cut.valid_until, cut.valid_until_reason.as_str()),
        (d("2026-09-30"), "benefit_change")
    );
    let history = crate::util::text(
        &mut conn,
        "SELECT string_agg(action, ',' ORDER BY id) AS s FROM person_changes
          WHERE action LIKE 'benefit_%'",
    );
    assert_eq!(history, "benefit_added,benefit_ended,benefit_added");
    let events = certificates::events(&mut conn, cert.id).unwrap();
    assert!(events.iter().any(|e| e.action == "shortened"), "{events:?}");

    // The monthly run on 5 September issues the replacement from 1 October, at 20%, which
    // supersedes the cut certificate.
    let file =
        format!("insurer_number,symbol,number,branch,card_status\n{KOKI},,7,,unregistered\n");
    let s = certificates::issue_due(
        &mut conn,
        "status.csv",
        file.as_bytes(),
        DueOptions {
            on: d("2026-09-05"),
            next_run: d("2026-10-05"),
            koki_until: d("2026-07-31"),
        },
        "batch",
    )
    .unwrap();
    assert_eq!(s.renewed, 1, "{s:?}");
    let next = certificates::get(&mut conn, s.certificate_ids[0]).unwrap();
    assert_eq!(next.valid_from, d("2026-10-01"));
    assert_eq!(next.valid_until, d("2027-07-31"));
    assert_eq!(next.printed.copay_percent, 20);
    assert_eq!(next.supersedes, Some(cert.id));
}

#[test]
fn an_import_that_grants_a_limit_category_cuts_the_certificate_once() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let id = person(&mut conn, KUMIAI, "8", "1980-01-01", None);
    let cert = certificates::issue(
        &mut conn,
        id,
        Kind::Application,
        d("2026-08-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    assert_eq!(cert.printed.limit_category, None);
    // A limit category granted from 1 November by import: the certificate ends on 31 October.
    let (s, issues) = import(&mut conn, &format!("{KUMIAI},,8,,limit,A03,,2026-11-01,\n"));
    assert!(s.applied, "{issues:#?}");
    assert_eq!(s.certificates_cut, vec![cert.id]);
    let cut = certificates::get(&mut conn, cert.id).unwrap();
    assert_eq!(cut.valid_until, d("2026-10-31"));
    // Re-importing the same file cuts nothing more.
    let (s, _) = import(&mut conn, &format!("{KUMIAI},,8,,limit,A03,,2026-11-01,\n"));
    assert!(s.certificates_cut.is_empty());
}

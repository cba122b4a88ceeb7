//! The ex-officio run (職権交付) against a real database: who gets a certificate from the
//! monthly card-registration status file, the 後期高齢者 rule before and after 2026-07-31,
//! renewals, idempotence, and a bad file storing nothing.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use shikaku_db::certificates::{self, DueError, DueOptions, IssueOptions};
use shikaku_db::testing::TestDb;
use shikaku_domain::CertificateKind as Kind;

use crate::util::{certificate_person as person, d};

const KUMIAI: &str = "06130199";
const KOKI: &str = "39131016";

fn setup(conn: &mut PgConnection) {
    for (n, kind) in [(KUMIAI, "kumiai"), (KOKI, "koki")] {
        diesel::sql_query(
            "INSERT INTO insurers (insurer_number, name, kind) VALUES ($1, 'テスト', $2)",
        )
        .bind::<Text, _>(n)
        .bind::<Text, _>(kind)
        .execute(conn)
        .unwrap();
    }
}

fn statuses(conn: &mut PgConnection) -> Vec<(i64, String, String)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        person_id: i64,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        status: String,
    }
    diesel::sql_query("SELECT person_id, kind, status FROM certificates ORDER BY id")
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| (r.person_id, r.kind, r.status))
        .collect()
}

fn options(on: &str) -> DueOptions {
    DueOptions {
        on: d(on),
        next_run: certificates::next_run_after(d(on)),
        koki_until: d("2026-07-31"),
    }
}

#[test]
fn issues_to_those_without_a_usable_card_once() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let unregistered = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let registered = person(&mut conn, KUMIAI, "2", "1980-01-01", None);
    let expired_cert = person(&mut conn, KUMIAI, "3", "1980-01-01", None);
    let returned = person(&mut conn, KUMIAI, "4", "1980-01-01", None);
    let cancelled = person(&mut conn, KUMIAI, "5", "1980-01-01", None);
    let lost = person(&mut conn, KUMIAI, "6", "1980-01-01", Some("2026-01-01"));
    let holding = person(&mut conn, KUMIAI, "7", "1980-01-01", None);
    let expiring = person(&mut conn, KUMIAI, "8", "1980-01-01", None);
    let absent = person(&mut conn, KUMIAI, "9", "1980-01-01", None);
    let koki_registered = person(&mut conn, KOKI, "10", "1945-01-01", None);
    // Holding a long certificate; holding one that expires within 30 days of the run.
    certificates::issue(
        &mut conn,
        holding,
        Kind::Application,
        d("2026-05-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    // An older certificate that runs out on 10 June (as if issued under a shorter policy).
    let old = certificates::issue(
        &mut conn,
        expiring,
        Kind::Application,
        d("2026-05-01"),
        &IssueOptions {
            sex_on_back: true,
            ..Default::default()
        },
        "t",
    )
    .unwrap();
    diesel::sql_query("UPDATE certificates SET valid_until = '2026-06-10' WHERE id = $1")
        .bind::<BigInt, _>(old.id)
        .execute(&mut conn)
        .unwrap();

    let file = format!(
        "insurer_number,symbol,number,branch,card_status\n\
         {KUMIAI},,1,,unregistered\n{KUMIAI},,2,,registered\n{KUMIAI},,3,,certificate_expired\n\
         {KUMIAI},,4,,card_returned\n{KUMIAI},,5,,registration_cancelled\n{KUMIAI},,6,,unregistered\n\
         {KUMIAI},,7,,unregistered\n{KUMIAI},,8,,unregistered\n{KOKI},,10,,registered\n\
         {KUMIAI},,99,,unregistered\n"
    );
    let s = certificates::issue_due(
        &mut conn,
        "status.csv",
        file.as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap();
    assert_eq!(s.status_rows, 10);
    assert_eq!(s.not_in_registry, 1);
    assert_eq!(s.issued_ex_officio, 4, "{s:?}");
    assert_eq!(s.issued_koki, 1, "{s:?}");
    assert_eq!(s.renewed, 1, "{s:?}");
    assert_eq!(s.already_holding, 1, "{s:?}");
    assert_eq!(s.certificate_ids.len(), 6);
    let got = statuses(&mut conn);
    let active: Vec<i64> = got
        .iter()
        .filter(|r| r.2 == "active")
        .map(|r| r.0)
        .collect();
    for p in [
        unregistered,
        expired_cert,
        returned,
        cancelled,
        holding,
        expiring,
        koki_registered,
    ] {
        assert!(
            active.contains(&p),
            "person {p} should hold an active certificate: {got:?}"
        );
    }
    for p in [registered, lost, absent] {
        assert!(!active.contains(&p), "person {p} should have none: {got:?}");
    }
    assert!(got
        .iter()
        .any(|r| r.0 == koki_registered && r.1 == "koki_automatic"));
    // The certificate ending on 10 June, before the next run, is followed now by one valid
    // from 11 June; the current one stays in force until then.
    let renewed = certificates::of_person(&mut conn, expiring).unwrap();
    assert_eq!(
        (
            renewed[0].status.as_str(),
            renewed[0].valid_from,
            renewed[0].issued_on
        ),
        ("pending", d("2026-06-11"), d("2026-06-01"))
    );
    assert_eq!(renewed[0].printed.valid_from, Some(d("2026-06-11")));
    assert_eq!(renewed[1].status.as_str(), "active");
    // The renewal keeps 裏面参照.
    assert_eq!(renewed[0].printed.sex, "裏面参照");

    // Idempotent: the same file again issues nothing.
    let again = certificates::issue_due(
        &mut conn,
        "status.csv",
        file.as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap();
    assert_eq!(
        (again.issued_ex_officio, again.issued_koki, again.renewed),
        (0, 0, 0),
        "{again:?}"
    );
    assert!(again.certificate_ids.is_empty());
    assert_eq!(statuses(&mut conn).len(), got.len());
}

#[test]
fn koki_rule_ends_after_2026_07_31() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let registered = person(&mut conn, KOKI, "1", "1945-01-01", None);
    let absent = person(&mut conn, KOKI, "2", "1945-01-01", None);
    let file = format!("insurer_number,symbol,number,branch,card_status\n{KOKI},,1,,registered\n");
    // Until 2026-07-31 every member gets one, whatever the card status, even absent from the file.
    let s = certificates::issue_due(
        &mut conn,
        "a.csv",
        file.as_bytes(),
        options("2026-07-31"),
        "batch",
    )
    .unwrap();
    assert_eq!(s.issued_koki, 2, "{s:?}");
    let got = statuses(&mut conn);
    assert!(got
        .iter()
        .any(|r| r.0 == registered && r.1 == "koki_automatic"));
    assert!(got.iter().any(|r| r.0 == absent && r.1 == "koki_automatic"));

    // From 1 August a registered card is usable for 後期 members too: a new member with one
    // gets nothing, one without gets a certificate ex officio.
    let with_card = person(&mut conn, KOKI, "3", "1945-01-01", None);
    let without = person(&mut conn, KOKI, "4", "1945-01-01", None);
    let file = format!(
        "insurer_number,symbol,number,branch,card_status\n{KOKI},,3,,registered\n{KOKI},,4,,unregistered\n"
    );
    let s = certificates::issue_due(
        &mut conn,
        "b.csv",
        file.as_bytes(),
        options("2026-08-01"),
        "batch",
    )
    .unwrap();
    assert_eq!((s.issued_koki, s.issued_ex_officio), (0, 1), "{s:?}");
    let got = statuses(&mut conn);
    assert!(!got.iter().any(|r| r.0 == with_card));
    assert!(got.iter().any(|r| r.0 == without && r.1 == "ex_officio"));
}

#[test]
fn a_bad_status_file_issues_nothing() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let file = format!(
        "insurer_number,symbol,number,branch,card_status\n{KUMIAI},,1,,unregistered\n12345678,,2,,unregistered\n{KUMIAI},,3,,lost\n"
    );
    let err = certificates::issue_due(
        &mut conn,
        "bad.csv",
        file.as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap_err();
    let DueError::File { file, errors, .. } = err else {
        panic!("expected a file error")
    };
    assert_eq!(file, "bad.csv");
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0].line, errors[0].column.as_str()),
        (3, "insurer_number")
    );
    assert_eq!(
        (errors[1].line, errors[1].column.as_str()),
        (4, "card_status")
    );
    assert!(statuses(&mut conn).is_empty());
    let err = certificates::issue_due(
        &mut conn,
        "h.csv",
        "a,b\n".as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap_err();
    assert!(matches!(err, DueError::File { .. }));
}

#[test]
fn an_imported_loss_revokes_the_active_certificate() {
    use crate::util::{import_persons_ok, persons_csv, Person};
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let p = Person::new(KUMIAI, "S", "1", "00");
    import_persons_ok(&mut conn, persons_csv(std::slice::from_ref(&p)));
    let id =
        certificates::person_id(&mut conn, &format!("{KUMIAI}:S:1:00").parse().unwrap()).unwrap();
    let cert = certificates::issue(
        &mut conn,
        id,
        Kind::Application,
        d("2026-06-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    assert_eq!(cert.status.as_str(), "active");
    // The next month's file records the loss.
    let lost = p.with(|p| {
        p.lost_on = "2026-09-01".into();
        p.loss_reason = "03".into();
    });
    import_persons_ok(&mut conn, persons_csv(&[lost]));
    let after = certificates::get(&mut conn, cert.id).unwrap();
    assert_eq!(after.status.as_str(), "revoked");
    let events = certificates::events(&mut conn, cert.id).unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("revoked", "system:qualification_lost")
    );
    assert!(last.reason.as_deref().unwrap().contains("2026-09-01"));
    // No new certificate can be issued after the loss.
    let err = certificates::issue(
        &mut conn,
        id,
        Kind::Application,
        d("2026-10-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap_err();
    assert!(err.to_string().contains("not insured"), "{err}");
}

#[test]
fn expired_certificates_are_marked_and_replaced_when_due() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let due = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let card = person(&mut conn, KUMIAI, "2", "1980-01-01", None);
    let short = IssueOptions {
        residence_until: Some(d("2026-03-31")),
        ..Default::default()
    };
    let a = certificates::issue(
        &mut conn,
        due,
        Kind::Application,
        d("2026-01-05"),
        &short,
        "t",
    )
    .unwrap();
    let b = certificates::issue(
        &mut conn,
        card,
        Kind::Application,
        d("2026-01-05"),
        &short,
        "t",
    )
    .unwrap();
    // The residence permit typed at the counter is stored on the person.
    let stored = shikaku_db::persons::get(&mut conn, due).unwrap();
    assert_eq!(stored.record.residence_until, Some(d("2026-03-31")));
    // It was renewed: the registry learns the new end (with history).
    shikaku_db::persons::set_certificate_facts(
        &mut conn,
        due,
        &shikaku_db::persons::CertificateFacts {
            residence_until: Some(d("2029-03-31")),
            ..Default::default()
        },
        "clerk",
    )
    .unwrap();
    let file = format!(
        "insurer_number,symbol,number,branch,card_status\n{KUMIAI},,1,,unregistered\n{KUMIAI},,2,,registered\n"
    );
    let s = certificates::issue_due(
        &mut conn,
        "s.csv",
        file.as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap();
    assert_eq!(s.expired, 2, "{s:?}");
    assert_eq!(s.issued_ex_officio, 1, "{s:?}");
    let new = &certificates::of_person(&mut conn, due).unwrap()[0];
    assert_eq!(
        (new.valid_until, new.valid_until_reason.as_str()),
        (d("2029-03-31"), "residence_permit")
    );
    assert_eq!(
        certificates::get(&mut conn, a.id).unwrap().status.as_str(),
        "expired"
    );
    assert_eq!(
        certificates::get(&mut conn, b.id).unwrap().status.as_str(),
        "expired"
    );
    let events = certificates::events(&mut conn, a.id).unwrap();
    assert_eq!(events.last().unwrap().action, "expired");
    assert_eq!(certificates::of_person(&mut conn, card).unwrap().len(), 1);
    assert_eq!(
        certificates::of_person(&mut conn, due).unwrap()[0]
            .status
            .as_str(),
        "active"
    );
    // An expired card can still be returned.
    assert_eq!(
        certificates::returned(&mut conn, b.id, "郵送で返納", "t")
            .unwrap()
            .status
            .as_str(),
        "returned"
    );
}

#[test]
fn a_loss_reported_late_still_revokes() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let p = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    // Issued on 4/20 while the registry still showed cover; the loss on 4/16 arrives on 4/25.
    let c = certificates::issue(
        &mut conn,
        p,
        Kind::Application,
        d("2026-04-20"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    diesel::sql_query(
        "UPDATE qualifications SET lost_on = '2026-04-16', loss_reason = '03' WHERE person_id = $1",
    )
    .bind::<BigInt, _>(p)
    .execute(&mut conn)
    .unwrap();
    assert_eq!(
        certificates::get(&mut conn, c.id).unwrap().status.as_str(),
        "revoked"
    );
}

#[test]
fn reasons_must_not_hold_a_whole_number() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    let p = person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let c = certificates::issue(
        &mut conn,
        p,
        Kind::Application,
        d("2026-04-20"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    for reason in [
        "番号123456789018の誤り",
        "1234 5678 9018",
        "１２３４５６７８９０１８",
    ] {
        let err = certificates::revoke(&mut conn, c.id, reason, "t").unwrap_err();
        assert!(err.to_string().contains("My Number"), "{reason}: {err}");
    }
    assert_eq!(
        certificates::revoke(&mut conn, c.id, "番号下4桁9018の誤り", "t")
            .unwrap()
            .status
            .as_str(),
        "revoked"
    );
}

#[test]
fn a_person_twice_in_the_status_file_is_an_error() {
    let db = TestDb::new();
    let mut conn = db.conn();
    setup(&mut conn);
    person(&mut conn, KUMIAI, "1", "1980-01-01", None);
    let file = format!(
        "insurer_number,symbol,number,branch,card_status\n{KUMIAI},,1,,unregistered\n{KUMIAI},,1,,registered\n"
    );
    let err = certificates::issue_due(
        &mut conn,
        "dup.csv",
        file.as_bytes(),
        options("2026-06-01"),
        "batch",
    )
    .unwrap_err();
    let DueError::File { errors, .. } = err else {
        panic!("expected a file error")
    };
    assert_eq!((errors[0].line, errors[0].column.as_str()), (3, "row"));
    assert!(errors[0].reason.contains("line 2"));
}

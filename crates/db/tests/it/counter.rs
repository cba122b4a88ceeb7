//! Right at the counter (issue 13) against a real database: renewals issued ahead so that no
//! day is left without a certificate (twelve monthly runs for every validity policy), at most
//! one active and one pending certificate, losses recorded in advance, dependants following
//! the insured, the certificate facts stored on the person, and the people the monthly run
//! used to miss (要配慮者 with a working card, suspended linkages, 後期 members of 65–74).

use chrono::{Datelike, Months, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, SmallInt, Text};
use shikaku_db::certificates::{self, DueOptions, IssueOptions};
use shikaku_db::persons::{self, CertificateFacts};
use shikaku_db::testing::TestDb;
use shikaku_db::DbError;
use shikaku_domain::CertificateKind as Kind;

use crate::util::{certificate_person as person, d, errors, import_persons, import_persons_ok};

/// 健保組合, one year from issue (short, so that renewals fall inside the simulated year).
const YEARS: &str = "06130199";
/// 私学共済-style common date that passes during the simulated year.
const FIXED: &str = "34130013";
/// 国保-style yearly cycle ending 31 July.
const JULY: &str = "01130012";
/// 後期高齢者医療広域連合, five years from issue (so that the transitional cap shows).
const KOKI: &str = "39131016";

fn insurers(conn: &mut PgConnection) {
    for (n, kind, policy, years, fixed) in [
        (YEARS, "kumiai", "years_from_issue", 1i16, None),
        (FIXED, "kyosai", "fixed_date", 1, Some(d("2027-11-30"))),
        (JULY, "kokuho", "yearly_july", 1, None),
        (KOKI, "koki", "years_from_issue", 5, None),
    ] {
        diesel::sql_query(
            "INSERT INTO insurers (insurer_number, name, kind, cert_policy, cert_years,
                                   cert_fixed_until)
             VALUES ($1, 'テスト', $2, $3, $4, $5)",
        )
        .bind::<Text, _>(n)
        .bind::<Text, _>(kind)
        .bind::<Text, _>(policy)
        .bind::<SmallInt, _>(years)
        .bind::<Nullable<Date>, _>(fixed)
        .execute(conn)
        .unwrap();
    }
}

fn set_facts(conn: &mut PgConnection, id: i64, facts: CertificateFacts) {
    persons::set_certificate_facts(conn, id, &facts, "clerk").unwrap();
}

/// A suspended linkage for the person (a critical finding, say): sealed bytes are irrelevant
/// here, only the status counts.
fn suspended_linkage(conn: &mut PgConnection, person_id: i64) {
    diesel::sql_query(
        "INSERT INTO linkages (person_id, mn_blind, mn_sealed, mn_key_id, mn_last4,
                               check_digit_ok, source, linked_on, status, mn_bound,
                               mn_index_key_id)
         VALUES ($1, sha256(($1)::text::bytea), '\\x00', 1, '0000', true, 'employer',
                 '2020-04-01', 'suspended', true, 1)",
    )
    .bind::<BigInt, _>(person_id)
    .execute(conn)
    .unwrap();
}

fn run(
    conn: &mut PgConnection,
    on: NaiveDate,
    lines: &[(String, &str)],
) -> certificates::DueSummary {
    let mut file = String::from("insurer_number,symbol,number,branch,card_status\n");
    for (key, status) in lines {
        file.push_str(&format!("{key},{status}\n"));
    }
    certificates::issue_due(
        conn,
        "status.csv",
        file.as_bytes(),
        DueOptions {
            on,
            next_run: on.checked_add_months(Months::new(1)).unwrap(),
            koki_until: shikaku_domain::certificate::KOKI_TRANSITIONAL_UNTIL,
        },
        "batch",
    )
    .unwrap()
}

/// Certificates of a person as (status, valid_from, valid_until), oldest first.
fn held(conn: &mut PgConnection, person_id: i64) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut v: Vec<_> = certificates::of_person(conn, person_id)
        .unwrap()
        .into_iter()
        .map(|c| (c.status.as_str().to_string(), c.valid_from, c.valid_until))
        .collect();
    v.reverse();
    v
}

/// One simulated person: who they are and on which days they need a certificate.
struct Sim {
    id: i64,
    key: String,
    what: &'static str,
    /// The card status the national file reports from the run of the given month index on.
    card: Vec<(usize, &'static str)>,
    /// Needs a certificate whatever the card (要配慮者 who asked, or a suspended linkage).
    always: bool,
    /// Last day they are insured (and within 任意継続 / the residence permit).
    last_day: Option<NaiveDate>,
}

impl Sim {
    fn card_at(&self, run: usize) -> &'static str {
        self.card
            .iter()
            .rev()
            .find(|(from, _)| *from <= run)
            .map_or("registered", |(_, s)| s)
    }

    fn needs(&self, run: usize, day: NaiveDate) -> bool {
        self.last_day.is_none_or(|l| day <= l) && (self.always || self.card_at(run) != "registered")
    }
}

/// Twelve monthly runs over a year for one insurer: after each run, every person who needs a
/// certificate holds an active or pending one covering every day up to the next run.
fn simulate(insurer: &str) {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let first = d("2027-01-05");
    let mut sims = Vec::new();
    let mut add = |conn: &mut PgConnection,
                   what: &'static str,
                   birth: &str,
                   lost: Option<&str>,
                   card: Vec<(usize, &'static str)>,
                   always: bool,
                   last_day: Option<&str>| {
        let number = format!("{}", sims.len() + 1);
        let id = person(conn, insurer, &number, birth, lost);
        sims.push(Sim {
            id,
            key: format!("{insurer},,{number},"),
            what,
            card,
            always,
            last_day: last_day.map(d),
        });
        id
    };
    add(
        &mut conn,
        "no card",
        "1980-05-05",
        None,
        vec![(0, "unregistered")],
        false,
        None,
    );
    let requested = add(
        &mut conn,
        "要配慮者",
        "1950-02-10",
        None,
        vec![],
        true,
        None,
    );
    set_facts(
        &mut conn,
        requested,
        CertificateFacts {
            certificate_requested: true,
            ..Default::default()
        },
    );
    let suspended = add(
        &mut conn,
        "suspended linkage",
        "1985-01-20",
        None,
        vec![],
        true,
        None,
    );
    suspended_linkage(&mut conn, suspended);
    // 70 on 2027-10-14: the 70–74 rate from 2027-11-01, the certificate cut at 2027-10-31.
    add(
        &mut conn,
        "turns 70",
        "1957-10-15",
        None,
        vec![(0, "certificate_expired")],
        false,
        None,
    );
    // 75 on 2027-06-20: moves to 後期, so the period here ends the day before.
    add(
        &mut conn,
        "turns 75",
        "1952-06-20",
        Some("2027-06-20"),
        vec![(0, "card_returned")],
        false,
        Some("2027-06-19"),
    );
    // Preschool ends 2027-03-31 (the co-pay changes from 20% to 30%).
    add(
        &mut conn,
        "preschool",
        "2020-04-02",
        None,
        vec![(0, "unregistered")],
        false,
        None,
    );
    let voluntary = add(
        &mut conn,
        "任意継続",
        "1975-03-03",
        Some("2027-07-01"),
        vec![(0, "unregistered")],
        false,
        Some("2027-06-30"),
    );
    set_facts(
        &mut conn,
        voluntary,
        CertificateFacts {
            voluntary_until: Some(d("2027-06-30")),
            ..Default::default()
        },
    );
    let resident = add(
        &mut conn,
        "residence permit",
        "1990-09-09",
        None,
        vec![(0, "unregistered")],
        false,
        None,
    );
    set_facts(
        &mut conn,
        resident,
        CertificateFacts {
            residence_until: Some(d("2027-05-31")),
            ..Default::default()
        },
    );
    let advance = add(
        &mut conn,
        "loss recorded in advance",
        "1988-08-08",
        None,
        vec![(0, "unregistered")],
        false,
        Some("2027-09-14"),
    );
    add(
        &mut conn,
        "card cancelled in July",
        "1970-12-01",
        None,
        vec![(0, "registered"), (6, "registration_cancelled")],
        false,
        None,
    );
    add(
        &mut conn,
        "card holder",
        "1982-02-28",
        None,
        vec![(0, "registered")],
        false,
        None,
    );

    for month in 0..12usize {
        let on = first.checked_add_months(Months::new(month as u32)).unwrap();
        let next = on.checked_add_months(Months::new(1)).unwrap();
        if month == 2 {
            // The employer reports in March a loss on 15 September.
            diesel::sql_query(
                "UPDATE qualifications SET lost_on = '2027-09-15', loss_reason = '03'
                  WHERE person_id = $1",
            )
            .bind::<BigInt, _>(advance)
            .execute(&mut conn)
            .unwrap();
        }
        if month == 4 {
            // The residence permit was extended before it ran out.
            set_facts(
                &mut conn,
                resident,
                CertificateFacts {
                    residence_until: Some(d("2030-05-31")),
                    ..Default::default()
                },
            );
        }
        let lines: Vec<(String, &str)> = sims
            .iter()
            .map(|s| (s.key.clone(), s.card_at(month)))
            .collect();
        run(&mut conn, on, &lines);
        for s in &sims {
            let certs = held(&mut conn, s.id);
            let mut day = on;
            while day < next {
                if s.needs(month, day) {
                    assert!(
                        certs.iter().any(|(status, from, until)| {
                            (status == "active" || status == "pending")
                                && *from <= day
                                && day <= *until
                        }),
                        "{insurer}: {} has no certificate on {day} after the run of {on}: {certs:?}",
                        s.what
                    );
                }
                day = day.succ_opt().unwrap();
            }
            // Never more than one active and one pending.
            let count = |st: &str| certs.iter().filter(|c| c.0 == st).count();
            assert!(count("active") <= 1 && count("pending") <= 1, "{certs:?}");
        }
    }
    // The card holder never got one; the advance loss ended its certificate the day before.
    let holder = sims.iter().find(|s| s.what == "card holder").unwrap();
    assert!(held(&mut conn, holder.id).is_empty());
    let adv = held(&mut conn, advance);
    assert!(
        adv.iter().all(|(_, _, until)| *until <= d("2027-09-14")),
        "{adv:?}"
    );
    assert!(adv
        .iter()
        .any(|(st, _, until)| st == "revoked" && *until == d("2027-09-14")));
}

#[test]
fn twelve_monthly_runs_leave_no_day_without_a_certificate_years_from_issue() {
    simulate(YEARS);
}

#[test]
fn twelve_monthly_runs_leave_no_day_without_a_certificate_fixed_date() {
    simulate(FIXED);
}

#[test]
fn twelve_monthly_runs_leave_no_day_without_a_certificate_yearly_july() {
    simulate(JULY);
}

#[test]
fn twelve_monthly_runs_leave_no_day_without_a_certificate_koki() {
    simulate(KOKI);
}

#[test]
fn a_july_run_issues_august_ahead_and_a_passed_common_date_still_issues() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let p = person(&mut conn, JULY, "1", "1980-01-01", None);
    let f = person(&mut conn, FIXED, "1", "1980-01-01", None);
    let lines = vec![
        (format!("{JULY},,1,"), "unregistered"),
        (format!("{FIXED},,1,"), "unregistered"),
    ];
    // A first issue in the July run ends on 31 July, before the August run: the next one is
    // issued with it.
    let s = run(&mut conn, d("2027-07-05"), &lines);
    assert_eq!((s.issued_ex_officio, s.renewed), (2, 1), "{s:?}");
    assert_eq!(
        held(&mut conn, p),
        vec![
            ("active".into(), d("2027-07-05"), d("2027-07-31")),
            ("pending".into(), d("2027-08-01"), d("2028-07-31")),
        ]
    );
    let again = run(&mut conn, d("2027-07-05"), &lines);
    assert_eq!(
        (again.renewed, again.issued_ex_officio),
        (0, 0),
        "{again:?}"
    );
    // On 1 August the renewal is in force.
    let settled = certificates::expire(&mut conn, d("2027-08-01"), "batch").unwrap();
    assert!(
        settled.activated >= 1 && settled.expired >= 1,
        "{settled:?}"
    );
    assert_eq!(held(&mut conn, p)[1].0, "active");
    assert_eq!(held(&mut conn, p)[0].0, "expired");
    // The common date 2027-11-30 has not passed on 2027-07-05; issued on 2027-12-05 (after
    // it), the next common date a cycle later applies instead of nothing.
    let g = person(&mut conn, FIXED, "2", "1980-01-01", None);
    let s = run(
        &mut conn,
        d("2027-12-05"),
        &[(format!("{FIXED},,2,"), "unregistered")],
    );
    assert_eq!(s.issued_ex_officio, 1, "{s:?}");
    assert_eq!(held(&mut conn, g)[0].2, d("2028-11-30"));
    let _ = f;
}

#[test]
fn the_database_allows_one_active_and_one_pending_certificate() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let p = person(&mut conn, JULY, "1", "1980-01-01", None);
    let on = d("2027-07-20");
    let first = certificates::issue(
        &mut conn,
        p,
        Kind::Application,
        on,
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    assert_eq!(
        (first.status.as_str(), first.valid_until),
        ("active", d("2027-07-31"))
    );
    // Ending before the next run, it is followed at once by one from 1 August.
    let next = certificates::of_person(&mut conn, p).unwrap().remove(0);
    assert_eq!(
        (next.status.as_str(), next.valid_from, next.valid_until),
        ("pending", d("2027-08-01"), d("2028-07-31"))
    );
    let err = certificates::issue(
        &mut conn,
        p,
        Kind::Application,
        on,
        &IssueOptions::default(),
        "t",
    )
    .unwrap_err();
    assert!(matches!(err, DbError::Conflict(_)), "{err}");
    // The unique indexes refuse a second active or pending row from any writer.
    for status in ["active", "pending"] {
        let err = diesel::sql_query(
            "INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on,
                                       valid_from, valid_until, valid_until_reason, printed,
                                       status)
             SELECT insurer_number, '9999999999', person_id, kind, issued_on, valid_from,
                    valid_until, valid_until_reason, printed, $2
               FROM certificates WHERE id = $1",
        )
        .bind::<BigInt, _>(first.id)
        .bind::<Text, _>(status)
        .execute(&mut conn)
        .unwrap_err();
        assert!(err.to_string().contains("certificates_one_"), "{err}");
    }
    // Reissuing the current one does not overlap its renewal.
    let re = certificates::reissue(
        &mut conn,
        first.id,
        d("2027-07-25"),
        &IssueOptions::default(),
        "紛失",
        "t",
    )
    .unwrap();
    assert_eq!(
        (re.valid_from, re.valid_until),
        (d("2027-07-25"), d("2027-07-31"))
    );
    // A pending certificate is printable (it is mailed ahead).
    assert!(certificates::printable(&mut conn, next.id).is_ok());
    // Revoking the current one revokes its renewal too.
    certificates::revoke(&mut conn, re.id, "資格確認書の返納", "t").unwrap();
    assert_eq!(
        certificates::get(&mut conn, next.id)
            .unwrap()
            .status
            .as_str(),
        "revoked"
    );
}

#[test]
fn a_loss_recorded_in_advance_ends_the_certificate_on_the_loss_date() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let p = person(&mut conn, JULY, "1", "1980-01-01", None);
    let cert = certificates::issue(
        &mut conn,
        p,
        Kind::Application,
        d("2027-07-20"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    let next = certificates::of_person(&mut conn, p).unwrap().remove(0);
    assert_eq!(next.status.as_str(), "pending");
    // On 25 July a loss on 1 October is recorded.
    diesel::sql_query(
        "UPDATE qualifications SET lost_on = '2027-10-01', loss_reason = '03' WHERE person_id = $1",
    )
    .bind::<BigInt, _>(p)
    .execute(&mut conn)
    .unwrap();
    // The current one is untouched (it ends before); the renewal stays valid until 30 Sept.
    let c = certificates::get(&mut conn, cert.id).unwrap();
    assert_eq!(
        (c.status.as_str(), c.valid_until),
        ("active", d("2027-07-31"))
    );
    let n = certificates::get(&mut conn, next.id).unwrap();
    assert_eq!(
        (
            n.status.as_str(),
            n.valid_until,
            n.valid_until_reason.as_str()
        ),
        ("pending", d("2027-09-30"), "qualification_lost")
    );
    let events = certificates::events(&mut conn, next.id).unwrap();
    assert_eq!(events.last().unwrap().action, "shortened");
    // In force through September; revoked (not merely expired) when the loss date arrives.
    certificates::expire(&mut conn, d("2027-09-30"), "batch").unwrap();
    assert_eq!(
        certificates::get(&mut conn, next.id)
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    let settled = certificates::expire(&mut conn, d("2027-10-01"), "batch").unwrap();
    assert_eq!(settled.revoked, 1, "{settled:?}");
    let n = certificates::get(&mut conn, next.id).unwrap();
    assert_eq!(n.status.as_str(), "revoked");
    let last = certificates::events(&mut conn, next.id)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.actor, "system:qualification_lost");
    assert!(last.reason.unwrap().contains("2027-10-01"));

    // A renewal that would only start after a loss is void at once.
    let q = person(&mut conn, JULY, "2", "1980-01-01", None);
    certificates::issue(
        &mut conn,
        q,
        Kind::Application,
        d("2027-07-20"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    let ahead = certificates::of_person(&mut conn, q).unwrap().remove(0);
    assert_eq!(ahead.status.as_str(), "pending");
    diesel::sql_query(
        "UPDATE qualifications SET lost_on = '2027-08-01', loss_reason = '03' WHERE person_id = $1",
    )
    .bind::<BigInt, _>(q)
    .execute(&mut conn)
    .unwrap();
    assert_eq!(
        certificates::get(&mut conn, ahead.id)
            .unwrap()
            .status
            .as_str(),
        "revoked"
    );
}

#[test]
fn requested_suspended_and_koki_members_are_served() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let requested = person(&mut conn, YEARS, "1", "1950-01-01", None);
    set_facts(
        &mut conn,
        requested,
        CertificateFacts {
            certificate_requested: true,
            ..Default::default()
        },
    );
    let suspended = person(&mut conn, YEARS, "2", "1980-01-01", None);
    suspended_linkage(&mut conn, suspended);
    let card = person(&mut conn, YEARS, "3", "1980-01-01", None);
    // A 後期 member of 66 (admitted by disability certification) registered at 10%.
    let member = person(&mut conn, KOKI, "1", "1960-03-10", None);
    diesel::sql_query("UPDATE persons SET copay_rate = 10 WHERE id = $1")
        .bind::<BigInt, _>(member)
        .execute(&mut conn)
        .unwrap();
    let lines = vec![
        (format!("{YEARS},,1,"), "registered"),
        (format!("{YEARS},,2,"), "registered"),
        (format!("{YEARS},,3,"), "registered"),
        (format!("{KOKI},,1,"), "registered"),
    ];
    let s = run(&mut conn, d("2026-07-05"), &lines);
    assert_eq!(
        (s.issued_requested, s.issued_ex_officio, s.issued_koki),
        (1, 1, 1),
        "{s:?}"
    );
    assert_eq!(
        certificates::of_person(&mut conn, requested).unwrap()[0].kind,
        Kind::Application
    );
    assert_eq!(
        certificates::of_person(&mut conn, suspended).unwrap()[0].kind,
        Kind::ExOfficio
    );
    assert!(certificates::of_person(&mut conn, card).unwrap().is_empty());
    // The transitional certificate ends with the rule, not after five years, and keeps 10%.
    let k = &certificates::of_person(&mut conn, member).unwrap()[0];
    assert_eq!(
        (
            k.kind,
            k.valid_until,
            k.valid_until_reason.as_str(),
            k.printed.copay_percent
        ),
        (
            Kind::KokiAutomatic,
            d("2026-07-31"),
            "koki_transitional",
            10
        )
    );
    assert_eq!(k.printed.relationship, None);
    // With a usable card the member needs none after the rule: no renewal.
    let s = run(&mut conn, d("2026-07-06"), &lines);
    assert_eq!((s.renewed, s.not_renewed), (0, 1), "{s:?}");
    // The same member without a usable card is renewed from 1 August, still at 10% and not
    // cut at 70 (the 70–74 rate would start 2030-04-01) or 75 (2035-03-10).
    let lines = vec![(format!("{KOKI},,1,"), "unregistered")];
    let s = run(&mut conn, d("2026-07-07"), &lines);
    assert_eq!(s.renewed, 1, "{s:?}");
    let k = &certificates::of_person(&mut conn, member).unwrap()[0];
    assert_eq!(
        (
            k.valid_from,
            k.valid_until,
            k.printed.copay_percent,
            k.printed.copay_effective_from
        ),
        (d("2026-08-01"), d("2031-07-31"), 10, None)
    );
}

#[test]
fn certificate_facts_come_from_persons_csv_and_the_counter_with_history() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let header = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,acquired_on";
    let full = format!("{header},voluntary_until,residence_until,certificate_requested");
    import_persons_ok(
        &mut conn,
        format!(
            "{full}\n{YEARS},,1,00,insured,任意 継続,ニンイ ケイゾク,1980-01-01,1,2026-04-01,2027-03-31,,\n\
             {YEARS},,2,00,insured,在留 花子,ザイリュウ ハナコ,1990-01-01,2,2026-04-01,,2028-06-30,yes\n"
        ),
    );
    let id = |conn: &mut PgConnection, n: &str| {
        certificates::person_id(conn, &format!("{YEARS}::{n}:00").parse().unwrap()).unwrap()
    };
    let (one, two) = (id(&mut conn, "1"), id(&mut conn, "2"));
    let p2 = persons::get(&mut conn, two).unwrap().record;
    assert_eq!(
        (p2.residence_until, p2.certificate_requested),
        (Some(d("2028-06-30")), true)
    );
    // An older file without the columns keeps them.
    import_persons_ok(
        &mut conn,
        format!(
            "{header}\n{YEARS},,1,00,insured,任意 継続,ニンイ ケイゾク,1980-01-01,1,2026-04-01\n"
        ),
    );
    let p1 = persons::get(&mut conn, one).unwrap().record;
    assert_eq!(p1.voluntary_until, Some(d("2027-03-31")));
    // The counter's certificate uses the stored end.
    let c = certificates::issue(
        &mut conn,
        one,
        Kind::Application,
        d("2026-12-01"),
        &IssueOptions::default(),
        "t",
    )
    .unwrap();
    assert_eq!(
        (c.valid_until, c.valid_until_reason.as_str()),
        (d("2027-03-31"), "voluntary_continuation")
    );
    // An empty cell clears, with history.
    import_persons_ok(
        &mut conn,
        format!("{full}\n{YEARS},,2,00,insured,在留 花子,ザイリュウ ハナコ,1990-01-01,2,2026-04-01,,,\n"),
    );
    let p2 = persons::get(&mut conn, two).unwrap().record;
    assert_eq!(
        (p2.residence_until, p2.certificate_requested),
        (None, false)
    );
    let history = persons::history(&mut conn, two).unwrap();
    let last = &history.last().unwrap().changes;
    assert_eq!(last["residence_until"]["old"], "2028-06-30");
    assert_eq!(last["certificate_requested"]["new"], false);
    // A counter edit is recorded under the clerk's name.
    set_facts(
        &mut conn,
        two,
        CertificateFacts {
            certificate_requested: true,
            ..Default::default()
        },
    );
    let h = persons::history(&mut conn, two).unwrap();
    assert_eq!(h.last().unwrap().actor, "clerk");
    // A bad value names the line and the field, and stores nothing.
    let (summary, issues) = import_persons(
        &mut conn,
        format!("{full}\n{YEARS},,3,00,insured,山田 太郎,ヤマダ タロウ,1990-01-01,1,2026-04-01,,,はい\n"),
    );
    assert!(!summary.applied);
    assert_eq!(
        errors(&issues),
        vec![(2, "certificate_requested".to_string())]
    );
}

#[test]
fn dependants_follow_the_insured_s_loss() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers(&mut conn);
    let header = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,acquired_on,lost_on,loss_reason";
    let row = |branch: &str, rel: &str, acquired: &str, lost: &str, reason: &str| {
        format!("{YEARS},K1,100,{branch},{rel},試験 {branch},シケン,1980-01-01,1,{acquired},{lost},{reason}\n")
    };
    import_persons_ok(
        &mut conn,
        format!(
            "{header}\n{}{}{}{}",
            row("00", "insured", "2020-04-01", "", ""),
            row("01", "dependent", "2020-04-01", "", ""),
            // Already left the household in 2024: a period of their own.
            row("02", "dependent", "2020-04-01", "2024-04-01", "99"),
            row("03", "dependent", "2021-06-01", "", ""),
        ),
    );
    // The insured dies on 2026-10-01; dependant 03's own row in the same file keeps them.
    let (summary, issues) = import_persons(
        &mut conn,
        format!(
            "{header}\n{}{}",
            row("00", "insured", "2020-04-01", "2026-10-01", "01"),
            row("03", "dependent", "2021-06-01", "", ""),
        ),
    );
    assert!(summary.applied, "{issues:?}");
    let warned: Vec<_> = issues
        .iter()
        .filter(|i| i.column == "lost_on")
        .map(|i| (i.line, i.reason.clone()))
        .collect();
    assert_eq!(warned.len(), 1, "{issues:?}");
    assert_eq!(warned[0].0, 2);
    assert!(warned[0].1.contains("K1・100・01") && warned[0].1.contains("2026-10-01"));
    let id = |conn: &mut PgConnection, b: &str| {
        certificates::person_id(conn, &format!("{YEARS}:K1:100:{b}").parse().unwrap()).unwrap()
    };
    let periods = |conn: &mut PgConnection, b: &str| {
        let i = id(conn, b);
        persons::periods(conn, i).unwrap()
    };
    let p1 = periods(&mut conn, "01");
    assert_eq!(p1[0].lost_on, Some(d("2026-10-01")));
    // Death is the insured's reason, not the dependant's.
    assert_eq!(
        p1[0].loss_reason.map(|r| r.as_str().to_string()),
        Some("99".into())
    );
    assert_eq!(periods(&mut conn, "02")[0].lost_on, Some(d("2024-04-01")));
    assert_eq!(periods(&mut conn, "03")[0].lost_on, None);
    let i1 = id(&mut conn, "01");
    let h = persons::history(&mut conn, i1).unwrap();
    assert_eq!(h.last().unwrap().changes["because"], "insured_lost");
    // Importing the same file again changes nothing and warns about nobody.
    let (_, issues) = import_persons(
        &mut conn,
        format!(
            "{header}\n{}{}",
            row("00", "insured", "2020-04-01", "2026-10-01", "01"),
            row("03", "dependent", "2021-06-01", "", ""),
        ),
    );
    assert!(issues.iter().all(|i| i.column != "lost_on"), "{issues:?}");
    let _ = Datelike::year(&d("2026-01-01"));
}

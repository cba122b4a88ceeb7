//! linkages.csv import: sealing, blind index, check-digit flagging, rejection without echoing
//! the number, unknown persons, shared numbers, re-import.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Binary, Bool, Date, Integer, Text};
use shikaku_db::testing::TestDb;
use shikaku_domain::{Keyring, SealedNumber};

use crate::util::*;

#[derive(QueryableByName, Debug)]
struct StoredLinkage {
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = Binary)]
    mn_blind: Vec<u8>,
    #[diesel(sql_type = Binary)]
    mn_sealed: Vec<u8>,
    #[diesel(sql_type = Integer)]
    mn_key_id: i32,
    #[diesel(sql_type = Text)]
    mn_last4: String,
    #[diesel(sql_type = Bool)]
    check_digit_ok: bool,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Date)]
    linked_on: NaiveDate,
    #[diesel(sql_type = Text)]
    status: String,
}

fn stored_linkages(conn: &mut PgConnection) -> Vec<StoredLinkage> {
    diesel::sql_query(
        "SELECT p.number, p.branch, l.mn_blind, l.mn_sealed, l.mn_key_id, l.mn_last4,
                l.check_digit_ok, l.source, l.linked_on, l.status
         FROM linkages l JOIN persons p ON p.id = l.person_id
         ORDER BY p.number, p.branch, l.mn_last4",
    )
    .load(conn)
    .unwrap()
}

fn open(k: &Keyring, l: &StoredLinkage) -> String {
    k.open(
        &SealedNumber {
            key_id: u32::try_from(l.mn_key_id).unwrap(),
            ciphertext: l.mn_sealed.clone(),
            bound: true,
        },
        &shikaku_domain::BlindIndex(l.mn_blind.clone().try_into().unwrap()),
    )
    .unwrap()
    .to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn setup() -> (TestDb, PgConnection, Vec<Person>) {
    let db = TestDb::new();
    let mut conn = db.conn();
    let people = household();
    import_persons_ok(&mut conn, persons_csv(&people));
    (db, conn, people)
}

#[test]
fn linked_numbers_are_sealed_and_blind_indexed() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[3], MN2, "jlis", "2024-02-20"),
        ]),
    );
    assert!(s.applied, "{issues:#?}");
    assert_eq!(issues, vec![]);
    assert_eq!(
        (s.rows_read, s.inserted, s.updated, s.unchanged),
        (2, 2, 0, 0)
    );

    let rows = stored_linkages(&mut conn);
    assert_eq!(rows.len(), 2);
    for (row, (digits, number, branch, source, linked_on)) in rows.iter().zip([
        (MN2, "5001", "", "jlis", "2024-02-20"),
        (MN1, "89", "00", "employer", "2024-01-10"),
    ]) {
        assert_eq!((row.number.as_str(), row.branch.as_str()), (number, branch));
        assert!(
            !contains(&row.mn_sealed, digits.as_bytes()),
            "digits in mn_sealed"
        );
        assert!(!contains(&row.mn_blind, digits.as_bytes()));
        assert_eq!(row.mn_last4, &digits[8..]);
        assert_eq!(row.mn_blind.len(), 32);
        assert_eq!(row.mn_blind, k.blind_index(digits).as_bytes());
        assert_eq!(row.mn_key_id, i32::try_from(k.current_key_id()).unwrap());
        assert_eq!(open(&k, row), digits);
        assert!(row.check_digit_ok);
        assert_eq!(row.source, source);
        assert_eq!(row.linked_on.to_string(), linked_on);
        assert_eq!(row.status, "active");
    }
    // Nowhere in the database as text either (bytea renders as hex; digits would show).
    let all = dump(&mut conn);
    assert!(!all.contains(MN1) && !all.contains(MN2));
}

#[test]
fn a_wrong_check_digit_is_stored_flagged_and_warned_about() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let bad = with_wrong_check_digit(MN1);
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[1], MN2, "applicant", "2024-01-10"),
            link(&p[0], &bad, "employer", "2024-01-10"),
        ]),
    );
    assert!(s.applied);
    assert_eq!((s.inserted, s.errors, s.warnings), (2, 0, 1));
    let w = warnings(&issues);
    assert_eq!((w[0].line, w[0].column.as_str()), (3, "my_number"));
    assert!(w[0].reason.contains("check digit"), "{}", w[0].reason);
    assert!(!w[0].reason.contains(&bad));
    let rows = stored_linkages(&mut conn);
    let flagged = rows.iter().find(|r| r.branch == "00").unwrap();
    assert!(!flagged.check_digit_ok);
    assert_eq!(flagged.mn_last4, "9019");
    assert_eq!(open(&k, flagged), bad);
    assert!(
        rows.iter()
            .find(|r| r.branch == "01")
            .unwrap()
            .check_digit_ok
    );
}

#[test]
fn a_number_that_is_not_12_digits_is_rejected_without_echoing_it() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let before = dump(&mut conn);
    for bad in ["12345678901", "1234567890123", "12345678901a"] {
        let (s, issues) = import_linkages(
            &mut conn,
            &k,
            linkages_csv([
                link(&p[1], MN2, "applicant", "2024-01-10"),
                link(&p[0], bad, "employer", "2024-01-10"),
            ]),
        );
        assert!(!s.applied);
        assert_eq!(errors(&issues), vec![(3, "my_number".to_string())], "{bad}");
        for i in &issues {
            assert!(
                !i.reason.contains(bad) && !i.reason.contains(&bad[..8]),
                "{i:?}"
            );
            assert!(!i.reason.contains(MN2));
        }
        assert!(issues[0].reason.contains("12 digits"), "{:?}", issues[0]);
        assert_eq!(dump(&mut conn), before);
    }
}

#[test]
fn a_linkage_to_an_unknown_person_is_an_error_on_its_line() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let before = dump(&mut conn);
    let ghost = Person::new(INS_A, "1234567", "90", "00");
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&ghost, MN2, "employer", "2024-01-10"),
        ]),
    );
    assert!(!s.applied);
    assert_eq!(errors(&issues), vec![(3, "number".to_string())]);
    assert!(
        issues[0].reason.contains("33120015:1234567:90:00")
            && issues[0].reason.contains("import persons.csv first"),
        "{}",
        issues[0].reason
    );
    assert_eq!(dump(&mut conn), before);
}

#[test]
fn one_number_for_two_persons_is_stored_with_a_warning_showing_the_last_4_only() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[3], MN2, "employer", "2024-01-10"),
            link(&p[2], MN1, "employer", "2024-01-10"),
        ]),
    );
    assert!(s.applied);
    assert_eq!((s.inserted, s.warnings), (3, 2));
    let w = warnings(&issues);
    assert_eq!(
        w.iter()
            .map(|i| (i.line, i.column.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "my_number"), (4, "my_number")]
    );
    for i in &w {
        assert!(i.reason.contains("last 4: 9018"), "{}", i.reason);
        assert!(!i.reason.contains(MN1) && !i.reason.contains(&MN1[..8]));
    }
    // Against stored linkages too: linking the same number to a third person later.
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([link(&p[1], MN1, "applicant", "2024-03-01")]),
    );
    assert!(s.applied);
    assert_eq!(s.inserted, 1);
    let w = warnings(&issues);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].line, 2);
    assert!(w[0].reason.contains("9018") && !w[0].reason.contains(MN1));
    assert_eq!(
        text(
            &mut conn,
            "SELECT count(DISTINCT mn_blind) || '/' || count(*) AS s FROM linkages"
        ),
        "2/4"
    );
}

#[test]
fn reimporting_linkages_changes_nothing_and_a_new_source_is_an_update() {
    let (_db, mut conn, p) = setup();
    let k = Keyring::generate();
    let file = linkages_csv([
        link(&p[0], MN1, "employer", "2024-01-10"),
        link(&p[3], MN2, "jlis", "2024-02-20"),
    ]);
    import_linkages(&mut conn, &k, &file);
    // No register extract yet: each new linkage says it was not checked.
    assert_eq!(
        text(
            &mut conn,
            "SELECT string_agg(action, ',') AS s FROM linkage_events"
        ),
        "identity_not_checked,identity_not_checked"
    );
    let before = text(
        &mut conn,
        "SELECT string_agg(l::text, E'\\n' ORDER BY id) AS s FROM linkages l",
    );
    let (s, issues) = import_linkages(&mut conn, &k, &file);
    assert!(s.applied);
    assert_eq!(issues, vec![]);
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 0, 2));
    let after = text(
        &mut conn,
        "SELECT string_agg(l::text, E'\\n' ORDER BY id) AS s FROM linkages l",
    );
    assert_eq!(before, after);
    assert_eq!(
        count(&mut conn, "linkage_events"),
        2,
        "the re-import adds no event"
    );

    let (s, _) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([link(&p[0], MN1, "applicant", "2024-05-01")]),
    );
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 0));
    assert_eq!(count(&mut conn, "linkages"), 2);
    assert_eq!(
        text(
            &mut conn,
            "SELECT action || ' ' || actor || ' ' || details::text AS s FROM linkage_events
              WHERE action = 'updated'"
        ),
        r#"updated test {"source": {"new": "applicant", "old": "employer"}, "linked_on": {"new": "2024-05-01", "old": "2024-01-10"}}"#
    );
}

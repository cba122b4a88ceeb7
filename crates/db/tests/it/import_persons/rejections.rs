//! persons.csv files that must be refused (every bad row with its line and column, header
//! problems, overlapping periods) and the CSV dialect (BOM, CRLF, quoting, multi-line records,
//! CRLF across read buffers), and insurers first seen in a file.

use super::*;

/// Asserts that the file was rejected, nothing was stored, and returns the issues.
fn rejected(conn: &mut PgConnection, data: impl AsRef<[u8]>) -> Vec<shikaku_db::import::Issue> {
    let before = dump(conn);
    let (s, issues) = import_persons(conn, data);
    assert!(!s.applied, "accepted: {s:?}");
    assert_eq!(s.import_id, None);
    assert_eq!(s.errors, errors(&issues).len() as u64);
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 0, 0));
    assert_eq!(dump(conn), before, "a rejected file changed the database");
    issues
}

#[test]
fn every_kind_of_bad_row_is_reported_with_its_line_and_column() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let ok = |n: &str| Person::new(INS_A, "77", n, "");
    let rows = [
        ok("1"),                                                // line 2
        ok("2").with(|p| p.insurer_number = "33120016".into()), // 3
        ok("3").with(|p| p.birth_date = "1980-02-30".into()),   // 4
        ok("4").with(|p| p.relationship = "spouse".into()),     // 5
        ok("5").with(|p| p.sex = "3".into()),                   // 6
        ok("6").with(|p| p.branch = "1".into()),                // 7
        ok("7").with(|p| p.lost_on = "2019-01-01".into()),      // 8
        ok("8").with(|p| p.name_kanji = String::new()),         // 9
    ];
    let mut cells: Vec<Vec<String>> = rows.iter().map(Person::cells).collect();
    let mut short = ok("9").cells();
    short.pop();
    cells.push(short); // line 10
    let mut data = csv_text(&PERSON_HEADER, cells).into_bytes();
    // Line 11: invalid UTF-8 in the address.
    let line = persons_csv(&[ok("10").with(|p| p.address = "@@".into())]);
    let line = line.lines().nth(1).unwrap();
    let (a, b) = line.split_once("@@").unwrap();
    data.extend_from_slice(a.as_bytes());
    data.extend_from_slice(b"\xff\xfe\x80");
    data.extend_from_slice(b.as_bytes());
    data.push(b'\n');
    // Line 12: good again.
    data.extend_from_slice(persons_csv(&[ok("11")]).lines().nth(1).unwrap().as_bytes());
    data.push(b'\n');

    let issues = rejected(&mut conn, &data);
    assert_eq!(
        errors(&issues),
        vec![
            (3, "insurer_number".to_string()),
            (4, "birth_date".to_string()),
            (5, "relationship".to_string()),
            (6, "sex".to_string()),
            (7, "branch".to_string()),
            (8, "lost_on".to_string()),
            (9, "name_kanji".to_string()),
            (10, "record".to_string()),
            (11, "record".to_string()),
        ],
        "{issues:#?}"
    );
    let reason = |line: u64| {
        issues
            .iter()
            .find(|i| i.line == line)
            .map(|i| i.reason.clone())
            .unwrap()
    };
    assert!(reason(3).contains("check digit"), "{}", reason(3));
    assert!(reason(4).contains("1980-02-30"), "{}", reason(4));
    assert!(reason(5).contains("spouse"), "{}", reason(5));
    assert!(reason(7).contains("branch"), "{}", reason(7));
    assert!(reason(8).contains("after acquired_on"), "{}", reason(8));
    assert!(reason(9).contains("required"), "{}", reason(9));
    assert!(reason(10).contains("expected 15 fields"), "{}", reason(10));
    assert!(reason(10).contains("found 14"), "{}", reason(10));
    assert!(reason(11).contains("UTF-8"), "{}", reason(11));
    let (s, _) = import_persons(&mut conn, &data);
    assert_eq!(s.rows_read, 11);
    assert_eq!(s.errors, 9);
}

#[test]
fn header_problems_reject_the_file_on_line_1() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let row = Person::new(INS_A, "77", "1", "").cells();

    // Unknown column.
    let mut header = PERSON_HEADER.to_vec();
    header.push("nickname");
    let mut r = row.clone();
    r.push("タロちゃん".into());
    let issues = rejected(&mut conn, csv_text(&header, [r]));
    assert_eq!(errors(&issues), vec![(1, "nickname".to_string())]);
    assert!(issues[0].reason.contains("unknown column"), "{issues:?}");

    // Missing required column (sex), with its cells left out too.
    let sex = PERSON_HEADER.iter().position(|c| *c == "sex").unwrap();
    let mut header = PERSON_HEADER.to_vec();
    header.remove(sex);
    let mut r = row.clone();
    r.remove(sex);
    let issues = rejected(&mut conn, csv_text(&header, [r]));
    assert_eq!(errors(&issues), vec![(1, "sex".to_string())]);
    assert!(issues[0].reason.contains("required column is missing"));

    // Duplicate column.
    let mut header = PERSON_HEADER.to_vec();
    header.push("number");
    let mut r = row.clone();
    r.push("1".into());
    let issues = rejected(&mut conn, csv_text(&header, [r]));
    assert_eq!(errors(&issues), vec![(1, "number".to_string())]);
    assert!(
        issues[0]
            .reason
            .contains("duplicate column (positions 3 and 16)"),
        "{issues:?}"
    );

    // An optional column may be left out entirely.
    let opt: Vec<&str> = PERSON_HEADER
        .iter()
        .copied()
        .filter(|c| !["symbol", "branch", "copay_rate"].contains(c))
        .collect();
    let r: Vec<String> = PERSON_HEADER
        .iter()
        .zip(&row)
        .filter(|(c, _)| opt.contains(c))
        .map(|(_, v)| v.clone())
        .collect();
    let s = import_persons_ok(&mut conn, csv_text(&opt, [r]));
    assert_eq!(s.inserted, 1);
    assert_eq!(
        text(
            &mut conn,
            "SELECT symbol || '|' || branch AS s FROM persons"
        ),
        "|"
    );
}

#[test]
fn overlapping_periods_within_one_file_are_rejected() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let x = Person::new(INS_A, "77", "1", "");
    let y = Person::new(INS_A, "77", "2", "");
    let x2 = x.clone().with(|p| {
        p.acquired_on = "2021-04-01".into();
        p.lost_on = "2022-04-01".into();
        p.loss_reason = "03".into();
    });
    let issues = rejected(&mut conn, persons_csv(&[x, y, x2]));
    assert_eq!(errors(&issues), vec![(4, "acquired_on".to_string())]);
    assert!(
        issues[0].reason.contains("2020-04-01..(open)")
            && issues[0].reason.contains("2021-04-01..2022-04-01")
            && issues[0].reason.contains("line 2"),
        "{}",
        issues[0].reason
    );
}

#[test]
fn a_period_overlapping_stored_history_is_rejected() {
    let db = TestDb::new();
    let mut conn = db.conn();
    import_persons_ok(&mut conn, persons_csv(&household()));
    let fresh = Person::new(INS_A, "77", "1", "");
    // 佐藤's stored period 2019-10-01..(open) is not closed by this file.
    let mut sato = household()[3].clone();
    sato.acquired_on = "2023-04-01".into();
    let issues = rejected(&mut conn, persons_csv(&[fresh, sato]));
    assert_eq!(errors(&issues), vec![(3, "acquired_on".to_string())]);
    assert!(
        issues[0].reason.contains("2019-10-01..(open)")
            && issues[0].reason.contains("already stored"),
        "{}",
        issues[0].reason
    );
}

#[test]
fn bom_crlf_and_rfc4180_quoting_are_understood() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let address = "東京都港区芝公園4-2-8, \"メゾン芝\" 101号";
    let rows = [
        Person::new(INS_A, "77", "1", "").with(|p| p.address = address.into()),
        Person::new(INS_A, "77", "2", ""),
    ];
    let text_lf = persons_csv(&rows);
    assert!(
        text_lf.contains("\"東京都港区芝公園4-2-8, \"\"メゾン芝\"\" 101号\""),
        "the helper must quote: {text_lf}"
    );
    let data = format!("\u{FEFF}{}", text_lf.replace('\n', "\r\n"));
    let s = import_persons_ok(&mut conn, data);
    assert_eq!((s.rows_read, s.inserted), (2, 2));
    assert_eq!(
        text(
            &mut conn,
            "SELECT address AS s FROM persons WHERE number = '1'"
        ),
        address
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT insurer_number AS s FROM persons WHERE number = '2'"
        ),
        INS_A
    );
}

/// A quoted field holding a line break makes its record two lines long; later records are
/// reported on their real line, with LF and with CRLF line ends.
#[test]
fn line_numbers_account_for_multi_line_records() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let rows = [
        Person::new(INS_A, "77", "1", ""), // line 2
        Person::new(INS_A, "77", "2", "").with(|p| p.address = "東京都\n港区".into()), // 3-4
        Person::new(INS_A, "77", "3", ""), // 5
        Person::new(INS_A, "77", "4", "").with(|p| p.sex = "x".into()), // 6
        Person::new(INS_A, "77", "5", "").with(|p| p.relationship = "x".into()), // 7
    ];
    let lf = persons_csv(&rows);
    assert_eq!(lf.lines().count(), 7);
    let expected = vec![
        (3, "address".to_string()),
        (6, "sex".to_string()),
        (7, "relationship".to_string()),
    ];
    let issues = rejected(&mut conn, &lf);
    assert_eq!(errors(&issues), expected, "LF: {issues:#?}");
    assert!(issues
        .iter()
        .any(|i| i.line == 3 && i.reason.contains("control characters")));

    let crlf = lf.replace('\n', "\r\n");
    let issues = rejected(&mut conn, &crlf);
    assert_eq!(errors(&issues), expected, "CRLF: {issues:#?}");

    // No line break after the last record.
    for unterminated in [lf.trim_end(), crlf.trim_end()] {
        let issues = rejected(&mut conn, unterminated);
        assert_eq!(errors(&issues), expected, "unterminated: {issues:#?}");
    }

    // With a BOM and blank lines after the header and after line 3 (skipped, but still lines):
    // the records move to lines 3, 5-6, 7, 8, 9.
    let blank = format!("\u{FEFF}{}", lf.replacen("\n", "\n\n", 2)).replace('\n', "\r\n");
    let issues = rejected(&mut conn, &blank);
    assert_eq!(
        errors(&issues),
        vec![
            (5, "address".to_string()),
            (8, "sex".to_string()),
            (9, "relationship".to_string()),
        ],
        "blank lines: {issues:#?}"
    );
}

#[test]
fn one_bad_row_among_many_leaves_the_database_exactly_as_it_was() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let base: Vec<Person> = (0..50).map(|i| generated_person(INS_A, i)).collect();
    import_persons_ok(&mut conn, persons_csv(&base));
    let before = dump(&mut conn);
    assert!(before.contains("== persons: 50\n"), "{before}");

    // 5,000 rows: the 50 known persons with a new address, then new persons, some under an
    // insurer not yet registered; row 2,500 (line 2,501) has a bad sex.
    let mut big: Vec<Person> = base
        .iter()
        .map(|p| {
            p.clone()
                .with(|p| p.address = "大阪府大阪市北区梅田1-1".into())
        })
        .collect();
    big.extend((50..5000).map(|i| generated_person(if i % 2 == 0 { INS_A } else { INS_C }, i)));
    big[2499].sex = "9".into();
    let (s, issues) = import_persons(&mut conn, persons_csv(&big));
    assert!(!s.applied);
    assert_eq!(s.rows_read, 5000);
    assert_eq!(s.errors, 1);
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!((issues[0].line, issues[0].column.as_str()), (2501, "sex"));
    assert_eq!(dump(&mut conn), before);
}

#[test]
fn an_insurer_first_seen_in_an_import_is_registered_with_an_empty_name() {
    let db = TestDb::new();
    let mut conn = db.conn();
    insurers::upsert(
        &mut conn,
        &NewInsurer {
            insurer_number: INS_A.into(),
            name: "試験共済組合".into(),
            kind: "kyosai".into(),
            cert_policy: "years_from_issue".into(),
            cert_years: 5,
            cert_fixed_until: None,
            cert_prints_benefits: false,
        },
    )
    .unwrap();
    // A 6-digit 国保 number, stored padded to 8.
    let kokuho6 = &insurer_number("00138")[..];
    let kokuho6 = &kokuho6[kokuho6.len() - 6..];
    assert_eq!(kokuho6.len(), 6);
    let kokuho8 = format!("00{kokuho6}");
    let rows = [
        Person::new(INS_A, "77", "1", ""), // line 2
        Person::new(INS_C, "77", "2", ""), // 3
        Person::new(INS_C, "77", "3", ""), // 4
        Person::new(kokuho6, "", "4", ""), // 5
    ];
    let (s, issues) = import_persons(&mut conn, persons_csv(&rows));
    assert!(s.applied, "{issues:#?}");
    assert_eq!(s.warnings, 2);
    let w = warnings(&issues);
    assert_eq!(
        w.iter()
            .map(|i| (i.line, i.column.as_str()))
            .collect::<Vec<_>>(),
        vec![(3, "insurer_number"), (5, "insurer_number")]
    );
    assert!(w[0].reason.contains(INS_C) && w[0].reason.contains("empty name"));
    assert!(w[1].reason.contains(&kokuho8));

    let all: Vec<(String, String, String)> = insurers::list(&mut conn)
        .unwrap()
        .into_iter()
        .map(|i| (i.insurer_number, i.name, i.kind))
        .collect();
    assert_eq!(
        all,
        vec![
            (kokuho8.clone(), String::new(), "unknown".to_string()),
            (INS_C.to_string(), String::new(), "unknown".to_string()),
            (
                INS_A.to_string(),
                "試験共済組合".to_string(),
                "kyosai".to_string()
            ),
        ]
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT insurer_number AS s FROM persons WHERE number = '4'"
        ),
        kokuho8
    );
}

/// CRLF where the CR ends one 8 KiB read and the LF starts the next: still one line break, the
/// stored address carries no CR, and later lines are still counted right.
#[test]
fn a_crlf_split_across_read_buffers_is_one_line_break() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let line_of = |p: &Person| {
        persons_csv(std::slice::from_ref(p))
            .lines()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let mut data = format!("{}\r\n", PERSON_HEADER.join(","));
    let mut people = Vec::new();
    let mut padded = None;
    for i in 0.. {
        let mut p = generated_person(INS_A, i);
        let row = line_of(&p);
        // Pad the last row that still fits with room to spare so that its CR is byte 8191.
        if 8191 - data.len() < 3 * row.len() {
            p.address
                .push_str(&"X".repeat(8191 - data.len() - row.len()));
            let row = line_of(&p);
            assert_eq!(data.len() + row.len(), 8191);
            data.push_str(&row);
            data.push_str("\r\n");
            padded = Some(p.clone());
            people.push(p);
            break;
        }
        data.push_str(&row);
        data.push_str("\r\n");
        people.push(p);
    }
    // The CR is the last byte of the first 8 KiB read, the LF the first of the next.
    assert_eq!(&data.as_bytes()[8191..8193], b"\r\n");
    let padded = padded.unwrap();
    let next_line = people.len() as u64 + 2;
    for i in 0..3 {
        let mut p = generated_person(INS_A, 1000 + i);
        if i == 1 {
            p.sex = "0".into();
        }
        data.push_str(&line_of(&p));
        data.push_str("\r\n");
    }
    let issues = rejected(&mut conn, &data);
    assert_eq!(errors(&issues), vec![(next_line + 1, "sex".to_string())]);

    // Without the bad row the file loads and the padded address ends in X, not CR.
    let good = data.replace(",0,", ",1,");
    let s = import_persons_ok(&mut conn, &good);
    assert_eq!(s.inserted, people.len() as u64 + 3);
    assert_eq!(
        text(
            &mut conn,
            &format!(
                "SELECT address AS s FROM persons WHERE number = '{}'",
                padded.number
            )
        ),
        padded.address
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT count(*)::text AS s FROM persons WHERE address LIKE E'%\\r%'"
        ),
        "0"
    );
}

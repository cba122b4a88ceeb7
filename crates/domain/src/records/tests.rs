#![allow(clippy::unwrap_used)]

use super::*;
use crate::copay::CopayRate;
use crate::person::{LossReason, Relationship, Sex};

const PERSON_HEADER: &str = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,postal_code,address,acquired_on,lost_on,loss_reason,copay_rate";
const PERSON_GOOD: &str = "06130199,1234,5678,01,insured,山田 太郎,ヤマダ タロウ,1980-05-10,1,100-0001,東京都千代田区千代田1-1,2020-04-01,,,30";
/// 法別 39 (後期高齢者): 3913001 → check digit 8.
const KOKI: &str = "39130018";

fn records(text: &str) -> Vec<StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect()
}

fn record(line: &str) -> StringRecord {
    records(line).remove(0)
}

fn persons_layout() -> Layout {
    layout(FileKind::Persons, &record(PERSON_HEADER)).unwrap()
}

/// The good person row with one column replaced.
fn person_with(column: &str, value: &str) -> StringRecord {
    let l = persons_layout();
    let i = l.index(column).unwrap();
    let mut cells: Vec<String> = record(PERSON_GOOD).iter().map(str::to_owned).collect();
    cells[i] = value.to_owned();
    StringRecord::from(cells)
}

fn person_errors(column: &str, value: &str) -> Vec<FieldError> {
    person_row(&persons_layout(), &person_with(column, value)).unwrap_err()
}

fn person_warnings(changes: &[(&str, &str)]) -> Vec<Warning> {
    let l = persons_layout();
    let mut cells: Vec<String> = record(PERSON_GOOD).iter().map(str::to_owned).collect();
    for (c, v) in changes {
        cells[l.index(c).unwrap()] = (*v).to_owned();
    }
    person_row(&l, &StringRecord::from(cells)).unwrap().1
}

#[test]
fn good_person_row() {
    let (p, warnings) = person_row(&persons_layout(), &record(PERSON_GOOD)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(p.key.to_string(), "06130199:1234:5678:01");
    assert_eq!(p.relationship, Relationship::Insured);
    assert_eq!(p.name_kanji.as_str(), "山田 太郎");
    assert_eq!(p.name_kana.as_str(), "ヤマダ タロウ");
    assert_eq!(p.birth_date, parse_date("1980-05-10").unwrap());
    assert_eq!(p.sex, Sex::Male);
    assert_eq!(p.postal_code.unwrap().as_str(), "1000001");
    assert_eq!(p.address.as_deref(), Some("東京都千代田区千代田1-1"));
    assert_eq!(p.acquired_on, parse_date("2020-04-01").unwrap());
    assert_eq!(p.lost_on, None);
    assert_eq!(p.loss_reason, None);
    assert_eq!(p.copay_rate, Some(CopayRate::Thirty));
}

#[test]
fn bom_and_padded_header_names() {
    let header = format!(
        "\u{FEFF}{}",
        PERSON_HEADER.replace(",number,", ", number ,")
    );
    let l = layout(FileKind::Persons, &record(&header)).unwrap();
    assert_eq!(l.index("insurer_number"), Some(0));
    assert_eq!(l.index("number"), Some(2));
    assert_eq!(l.spec(), FileKind::Persons.into());
    assert!(person_row(&l, &record(PERSON_GOOD)).is_ok());
}

#[test]
fn header_errors_are_all_reported() {
    let header =
        "insurer_number,number,number,relationship,name_kanji,birth_date,sex,acquired_on,nickname";
    let errors = layout(FileKind::Persons, &record(header)).unwrap_err();
    let cols: Vec<&str> = errors.iter().map(|e| e.column.as_str()).collect();
    assert_eq!(cols, ["number", "nickname", "name_kana"], "{errors:?}");
    assert!(errors[0].reason.contains("duplicate"));
    assert!(errors[1].reason.contains("unknown column"));
    assert!(errors[2].reason.contains("missing"));
}

#[test]
fn optional_columns_may_be_left_out() {
    let header =
        "name_kana,insurer_number,number,relationship,name_kanji,birth_date,sex,acquired_on";
    let l = layout(FileKind::Persons, &record(header)).unwrap();
    assert_eq!(l.index("symbol"), None);
    let row = "ﾔﾏﾀﾞ ﾊﾅｺ,138107,187,dependent,山田 花子,2021-06-01,2,2021-06-01";
    let (p, w) = person_row(&l, &record(row)).unwrap();
    assert!(w.is_empty());
    assert_eq!(p.key.to_string(), "00138107::187:");
    assert_eq!(p.relationship, Relationship::Dependent);
    assert_eq!(p.postal_code, None);
    assert_eq!(p.copay_rate, None);
}

#[test]
fn every_bad_person_field() {
    let cases = [
        ("insurer_number", "06130198", "check digit"),
        ("insurer_number", "0613019", "8 digits"),
        ("insurer_number", "", "is required"),
        ("symbol", "12 34", "spaces"),
        ("symbol", "東京12", "mixed"),
        ("number", "", "is required"),
        ("number", "ﾔﾏﾀﾞ", "half-width kana"),
        ("branch", "1", "2 digits"),
        ("relationship", "self", "insured (本人) or dependent (家族)"),
        ("name_kanji", " ", "is required"),
        ("name_kanji", "山田\u{7}太郎", "control"),
        ("name_kana", "Yamada Taro", "katakana"),
        ("name_kana", "山田 タロウ", "katakana"),
        ("birth_date", "1980-5-10", "YYYY-MM-DD"),
        ("birth_date", "1980/05/10", "YYYY-MM-DD"),
        ("birth_date", "1980-02-30", "YYYY-MM-DD"),
        ("sex", "3", "1 (male) or 2"),
        ("sex", "M", "1 (male) or 2"),
        ("postal_code", "12345", "7 digits"),
        ("address", "東京都\t千代田区", "control"),
        ("acquired_on", "2020-04-31", "YYYY-MM-DD"),
        ("lost_on", "20200401", "YYYY-MM-DD"),
        ("loss_reason", "04", "loss reason"),
        ("copay_rate", "15", "10, 20 or 30"),
    ];
    for (column, value, needle) in cases {
        let errors = person_errors(column, value);
        assert_eq!(errors.len(), 1, "{column}={value}: {errors:?}");
        assert_eq!(errors[0].column, column);
        assert!(
            errors[0].reason.contains(needle),
            "{column}={value}: {}",
            errors[0].reason
        );
        if !value.trim().is_empty() {
            assert!(errors[0].reason.contains(value.trim()), "{}", errors[0]);
        }
    }
}

#[test]
fn all_errors_of_a_row_are_collected() {
    let row = "06130198,12 34,5678,1,self,山田 太郎,Yamada,1980-5-10,9,,,2020-04-01,,,";
    let errors = person_row(&persons_layout(), &record(row)).unwrap_err();
    let cols: Vec<&str> = errors.iter().map(|e| e.column.as_str()).collect();
    assert_eq!(
        cols,
        [
            "insurer_number",
            "symbol",
            "branch",
            "relationship",
            "name_kana",
            "birth_date",
            "sex"
        ]
    );
}

#[test]
fn cross_field_rules() {
    let l = persons_layout();
    let row = |changes: &[(&str, &str)]| {
        let mut cells: Vec<String> = record(PERSON_GOOD).iter().map(str::to_owned).collect();
        for (c, v) in changes {
            cells[l.index(c).unwrap()] = (*v).to_owned();
        }
        person_row(&l, &StringRecord::from(cells))
    };
    // lost_on is the first day without eligibility, so it must be after acquired_on.
    let e = row(&[("lost_on", "2020-04-01"), ("loss_reason", "03")]).unwrap_err();
    assert_eq!(e[0].column, "lost_on");
    let e = row(&[("lost_on", "2019-04-01"), ("loss_reason", "03")]).unwrap_err();
    assert_eq!(e[0].column, "lost_on");
    let (p, w) = row(&[("lost_on", "2020-04-02"), ("loss_reason", "01")]).unwrap();
    assert!(w.is_empty());
    assert_eq!(p.loss_reason, Some(LossReason::Death));
    // Acquired before birth.
    let e = row(&[("acquired_on", "1980-05-09")]).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].column, "acquired_on");
    assert!(row(&[("acquired_on", "1980-05-10"), ("copay_rate", "")]).is_ok());
    // A reason with no loss date.
    let e = row(&[("loss_reason", "99")]).unwrap_err();
    assert_eq!(e[0].column, "loss_reason");
    // A bad lost_on is reported once, not also as "loss_reason without lost_on".
    let e = row(&[("lost_on", "bad"), ("loss_reason", "99")]).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].column, "lost_on");
}

#[test]
fn person_warnings_do_not_reject() {
    let w = person_warnings(&[("lost_on", "2021-04-01")]);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].column, "loss_reason");

    // A 20% rate for a 40-year-old: income cannot explain it, but it still loads.
    let w = person_warnings(&[("copay_rate", "20")]);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].column, "copay_rate");
    assert!(w[0].message.contains("allowed: 30"), "{}", w[0].message);

    // 70–74 may be 20 or 30: no warning either way.
    for rate in ["20", "30"] {
        let w = person_warnings(&[
            ("birth_date", "1950-01-15"),
            ("acquired_on", "2022-01-01"),
            ("copay_rate", rate),
        ]);
        assert!(w.is_empty(), "{w:?}");
    }

    // A dependant under a 後期高齢者 insurer.
    let w = person_warnings(&[
        ("insurer_number", KOKI),
        ("relationship", "dependent"),
        ("birth_date", "1945-01-15"),
        ("copay_rate", "10"),
    ]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].column, "relationship");
}

#[test]
fn echoed_values_are_truncated() {
    let long = "X".repeat(100);
    let e = person_errors("relationship", &long);
    assert!(e[0].reason.contains(&format!("{}…", "X".repeat(40))));
    assert!(!e[0].reason.contains(&"X".repeat(41)));
}

#[test]
fn a_number_in_the_wrong_column_is_never_echoed() {
    // my_number and birth_date swapped: the birth date column holds the number.
    let e = res_row("1960-02-29,山田 太郎,,123456789018,1,,active").unwrap_err();
    let birth = e.iter().find(|f| f.column == "birth_date").unwrap();
    assert!(!birth.reason.contains("9018"), "{birth:?}");
    // Spaced or full-width, and even with a wrong check digit.
    for v in [
        "1234 5678 9018",
        "１２３４５６７８９０１２",
        "1234-5678-9012",
    ] {
        let e = person_errors("relationship", v);
        assert!(!e[0].reason.contains("9018"), "{e:?}");
        assert!(!e[0].reason.contains("901"), "{e:?}");
    }
    // A file without its header row: the first row is taken as column names.
    let e = layout(
        FileKind::Residents,
        &record("123456789018,山田,,1960-01-01,1,,active"),
    )
    .unwrap_err();
    assert!(e.iter().all(|f| !f.column.contains("9018")), "{e:?}");
}

#[test]
fn short_record_reports_missing_cells() {
    let e = person_row(&persons_layout(), &record("06130199,1234,5678")).unwrap_err();
    assert!(e
        .iter()
        .any(|f| f.column == "relationship" && f.reason == "is required"));
}

const LINK_HEADER: &str = "insurer_number,symbol,number,branch,my_number,source,linked_on";

fn link_row(line: &str) -> Result<LinkageRow, Vec<FieldError>> {
    let l = layout(FileKind::Linkages, &record(LINK_HEADER)).unwrap();
    linkage_row(&l, &record(line))
}

#[test]
fn good_linkage_rows() {
    let r = link_row("06130199,1234,5678,01,123456789018,employer,2023-01-10").unwrap();
    assert!(r.my_number.check_digit_ok());
    assert_eq!(r.source, LinkageSource::Employer);
    assert_eq!(r.key.branch.unwrap().as_str(), "01");
    // A wrong check digit is kept and flagged, not rejected.
    let r = link_row("06130199,,5678,,123456789017,jlis,2023-01-10").unwrap();
    assert!(!r.my_number.check_digit_ok());
    assert_eq!(r.my_number.last4(), "9017");
    assert_eq!(r.key.symbol, None);
    assert_eq!(r.source.as_str(), "jlis");
}

#[test]
fn bad_linkage_rows_never_echo_the_number() {
    for bad in [
        "12345678901",
        "1234567890123",
        "1234-5678-9018",
        "12345678901x",
    ] {
        let e = link_row(&format!("06130199,1234,5678,01,{bad},employer,2023-01-10")).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].column, "my_number");
        assert_eq!(e[0].reason, "My Number must be 12 digits");
        assert!(!e[0].to_string().contains("5678901"));
    }
    let e = link_row("06130199,1234,5678,01,,employer,2023-01-10").unwrap_err();
    assert_eq!(e[0].reason, "is required");
    let e = link_row("06130199,1234,5678,01,123456789018,mail,2023-1-10").unwrap_err();
    let cols: Vec<&str> = e.iter().map(|f| f.column.as_str()).collect();
    assert_eq!(cols, ["source", "linked_on"]);
}

#[test]
fn linkage_header_rules() {
    let e = layout(
        FileKind::Linkages,
        &record("insurer_number,number,source,linked_on"),
    )
    .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].column, "my_number");
    let e = layout(FileKind::Linkages, &record(PERSON_HEADER)).unwrap_err();
    assert!(e
        .iter()
        .any(|f| f.column == "relationship" && f.reason.contains("unknown")));
}

const RES_HEADER: &str = "my_number,name_kanji,name_kana,birth_date,sex,address,status";

fn res_row(line: &str) -> Result<ResidentRow, Vec<FieldError>> {
    let l = layout(FileKind::Residents, &record(RES_HEADER)).unwrap();
    resident_row(&l, &record(line))
}

#[test]
fn good_resident_rows() {
    let r = res_row("987654321093,髙●　太郎,ﾀｶﾊｼ ﾀﾛｳ,1960-02-29,1,東京都港区芝公園4-2-8,active")
        .unwrap();
    assert_eq!(r.name_kanji, "髙●　太郎");
    assert_eq!(r.name_kana.as_deref(), Some("ﾀｶﾊｼ ﾀﾛｳ"));
    assert_eq!(r.status, ResidentStatus::Active);
    assert_eq!(r.birth_date, parse_date("1960-02-29").unwrap());
    let r = res_row("987654321090,山田 花子,,1960-01-01,2,,removed").unwrap();
    assert!(!r.my_number.check_digit_ok());
    assert_eq!(r.name_kana, None);
    assert_eq!(r.address, None);
    assert_eq!(r.status.as_str(), "removed");
    // Only the required columns in the header.
    let l = layout(
        FileKind::Residents,
        &record("\u{FEFF}status,sex,birth_date,name_kanji,my_number"),
    )
    .unwrap();
    let r = resident_row(&l, &record("active,1,1970-01-01,山田,123456789018")).unwrap();
    assert_eq!(r.sex, Sex::Male);
}

#[test]
fn bad_resident_rows() {
    let e = res_row("98765432109,,ﾀｶﾊｼ,1960-02-30,0,,gone").unwrap_err();
    let cols: Vec<&str> = e.iter().map(|f| f.column.as_str()).collect();
    assert_eq!(
        cols,
        ["my_number", "name_kanji", "birth_date", "sex", "status"]
    );
    assert!(!e[0].reason.contains("98765"));
    assert!(e[4].reason.contains("active or removed"));
}

#[test]
fn file_kinds_list_their_columns() {
    assert_eq!(FileKind::Persons.columns().len(), 18);
    assert_eq!(FileKind::Linkages.columns().len(), 7);
    assert_eq!(FileKind::Residents.columns().len(), 7);
    let required: Vec<&str> = FileKind::Residents
        .columns()
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name)
        .collect();
    assert_eq!(
        required,
        ["my_number", "name_kanji", "birth_date", "sex", "status"]
    );
}

#[test]
fn strict_dates() {
    assert!(parse_date("2024-02-29").is_ok());
    for bad in [
        "2023-02-29",
        "2024-2-29",
        "+2024-02-29",
        "2024-02-29 ",
        "24-02-29",
        "２０２４-02-29",
    ] {
        assert_eq!(parse_date(bad), Err(DomainError::Date), "{bad}");
    }
}

//! Shared helpers: valid synthetic identifiers, CSV builders for the three input files, import
//! wrappers that collect issues, and whole-database dumps for "nothing changed" checks.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::PgConnection;
use shikaku_db::import::{self, CollectIssues, ImportContext, ImportSummary, Issue, IssueLevel};
use shikaku_domain::{InsurerNumber, Keyring, MyNumber};

/// Valid insurer numbers from domain.md.
pub const INS_A: &str = "33120015";
pub const INS_B: &str = "01040013";
pub const INS_C: &str = "06130199";

/// Valid My Numbers from domain.md.
pub const MN1: &str = "123456789018";
pub const MN2: &str = "987654321093";

/// Every table of the registry schema.
pub const TABLES: [&str; 9] = [
    "imports",
    "insurers",
    "persons",
    "qualifications",
    "person_changes",
    "linkages",
    "linkage_events",
    "resident_snapshots",
    "resident_records",
];

/// An insurer number for 7 (or 5, for 国保) base digits, with the check digit computed by the
/// domain function.
pub fn insurer_number(base: &str) -> String {
    let d = InsurerNumber::check_digit(base).expect("5 or 7 base digits");
    format!("{base}{d}")
}

/// A valid My Number for an 11-digit base.
pub fn my_number(base: u64) -> String {
    let b = format!("{base:011}");
    let arr: [u8; 11] = b.as_bytes().try_into().expect("11 digits");
    format!("{b}{}", MyNumber::check_digit(&arr))
}

/// The same number with its check digit changed to a wrong one.
pub fn with_wrong_check_digit(valid: &str) -> String {
    let (base, last) = valid.split_at(11);
    let d = (last.parse::<u8>().expect("digit") + 1) % 10;
    format!("{base}{d}")
}

// ---------------------------------------------------------------------------------------------
// persons.csv

pub const PERSON_HEADER: [&str; 15] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "relationship",
    "name_kanji",
    "name_kana",
    "birth_date",
    "sex",
    "postal_code",
    "address",
    "acquired_on",
    "lost_on",
    "loss_reason",
    "copay_rate",
];

/// One persons.csv row as text cells ("" = absent).
#[derive(Debug, Clone)]
pub struct Person {
    pub insurer_number: String,
    pub symbol: String,
    pub number: String,
    pub branch: String,
    pub relationship: String,
    pub name_kanji: String,
    pub name_kana: String,
    pub birth_date: String,
    pub sex: String,
    pub postal_code: String,
    pub address: String,
    pub acquired_on: String,
    pub lost_on: String,
    pub loss_reason: String,
    pub copay_rate: String,
}

impl Person {
    /// An insured person with plausible defaults for the key given.
    pub fn new(insurer: &str, symbol: &str, number: &str, branch: &str) -> Person {
        Person {
            insurer_number: insurer.to_string(),
            symbol: symbol.to_string(),
            number: number.to_string(),
            branch: branch.to_string(),
            relationship: "insured".to_string(),
            name_kanji: "試験 太郎".to_string(),
            name_kana: "シケン タロウ".to_string(),
            birth_date: "1980-01-01".to_string(),
            sex: "1".to_string(),
            postal_code: String::new(),
            address: String::new(),
            acquired_on: "2020-04-01".to_string(),
            lost_on: String::new(),
            loss_reason: String::new(),
            copay_rate: String::new(),
        }
    }

    pub fn cells(&self) -> Vec<String> {
        vec![
            self.insurer_number.clone(),
            self.symbol.clone(),
            self.number.clone(),
            self.branch.clone(),
            self.relationship.clone(),
            self.name_kanji.clone(),
            self.name_kana.clone(),
            self.birth_date.clone(),
            self.sex.clone(),
            self.postal_code.clone(),
            self.address.clone(),
            self.acquired_on.clone(),
            self.lost_on.clone(),
            self.loss_reason.clone(),
            self.copay_rate.clone(),
        ]
    }

    pub fn with(mut self, f: impl FnOnce(&mut Person)) -> Person {
        f(&mut self);
        self
    }
}

/// A household under INS_A (insured + two dependants, branches 00/01/02) and one INS_B person
/// with neither 記号 nor 枝番. Kana comes half-width, hiragana and full-width.
pub fn household() -> Vec<Person> {
    vec![
        Person::new(INS_A, "1234567", "89", "00").with(|p| {
            p.name_kanji = "山田 太郎".into();
            p.name_kana = "ﾔﾏﾀﾞ ﾀﾛｳ".into();
            p.birth_date = "1980-05-05".into();
            p.postal_code = "100-0001".into();
            p.address = "東京都千代田区千代田1-1".into();
        }),
        Person::new(INS_A, "1234567", "89", "01").with(|p| {
            p.relationship = "dependent".into();
            p.name_kanji = "山田 花子".into();
            p.name_kana = "やまだ\u{3000}はなこ".into();
            p.birth_date = "1982-03-03".into();
            p.sex = "2".into();
            p.postal_code = "1000001".into();
            p.address = "東京都千代田区千代田1-1".into();
        }),
        Person::new(INS_A, "1234567", "89", "02").with(|p| {
            p.relationship = "dependent".into();
            p.name_kanji = "山田 次郎".into();
            p.name_kana = "ヤマダ ジロウ".into();
            p.birth_date = "2015-06-10".into();
            p.address = "東京都千代田区千代田1-1".into();
        }),
        Person::new(INS_B, "", "5001", "").with(|p| {
            p.name_kanji = "佐藤 一郎".into();
            p.name_kana = "サトウ イチロウ".into();
            p.birth_date = "1950-01-01".into();
            p.acquired_on = "2019-10-01".into();
        }),
    ]
}

const FAMILY: [&str; 20] = [
    "サトウ",
    "スズキ",
    "タカハシ",
    "タナカ",
    "ワタナベ",
    "イトウ",
    "ヤマモト",
    "ナカムラ",
    "コバヤシ",
    "カトウ",
    "ヨシダ",
    "ヤマダ",
    "ササキ",
    "ヤマグチ",
    "マツモト",
    "イノウエ",
    "キムラ",
    "ハヤシ",
    "シミズ",
    "ヤマザキ",
];
const GIVEN: [&str; 25] = [
    "タロウ",
    "ハナコ",
    "イチロウ",
    "ジロウ",
    "サブロウ",
    "ユウキ",
    "ハルト",
    "ソウタ",
    "ユイ",
    "アオイ",
    "メイ",
    "リン",
    "ミナト",
    "レン",
    "ヒナタ",
    "サクラ",
    "ケンタ",
    "ダイキ",
    "マナミ",
    "ユウコ",
    "ケイコ",
    "ヒロシ",
    "タカシ",
    "アキラ",
    "ミホ",
];

/// Person number `i` of a generated population: unique keys under `insurer`, varied kana names
/// and birth dates, one open period.
pub fn generated_person(insurer: &str, i: usize) -> Person {
    let days = i64::try_from(i * 7919 % 20_000).expect("small");
    let birth =
        chrono::NaiveDate::from_ymd_opt(1940, 1, 1).expect("date") + chrono::Duration::days(days);
    Person::new(
        insurer,
        &format!("{}", 100_000 + i / 3),
        &format!("{i}"),
        "",
    )
    .with(|p| {
        p.branch = format!("{:02}", i % 3);
        p.relationship = if i % 3 == 0 { "insured" } else { "dependent" }.into();
        p.name_kana = format!("{} {}", FAMILY[i % 20], GIVEN[(i / 20) % 25]);
        p.birth_date = birth.format("%Y-%m-%d").to_string();
        p.sex = if i % 2 == 0 { "1" } else { "2" }.into();
        p.address = format!("東京都港区芝{}-{}", i % 9 + 1, i % 30 + 1);
        p.acquired_on = "2021-04-01".into();
    })
}

/// CSV text (LF line ends) with `header` and raw rows; rows may have any number of cells.
pub fn csv_text(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(&r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

pub fn persons_csv(rows: &[Person]) -> String {
    csv_text(&PERSON_HEADER, rows.iter().map(Person::cells))
}

// ---------------------------------------------------------------------------------------------
// linkages.csv and residents.csv

pub const LINKAGE_HEADER: [&str; 7] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "my_number",
    "source",
    "linked_on",
];

/// A linkages.csv row for person `p`.
pub fn link(p: &Person, my_number: &str, source: &str, linked_on: &str) -> Vec<String> {
    vec![
        p.insurer_number.clone(),
        p.symbol.clone(),
        p.number.clone(),
        p.branch.clone(),
        my_number.to_string(),
        source.to_string(),
        linked_on.to_string(),
    ]
}

pub fn linkages_csv(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    csv_text(&LINKAGE_HEADER, rows)
}

pub const RESIDENT_HEADER: [&str; 7] = [
    "my_number",
    "name_kanji",
    "name_kana",
    "birth_date",
    "sex",
    "address",
    "status",
];

/// A residents.csv row.
pub fn resident(
    my_number: &str,
    name_kanji: &str,
    name_kana: &str,
    birth_date: &str,
    sex: &str,
    status: &str,
) -> Vec<String> {
    vec![
        my_number.to_string(),
        name_kanji.to_string(),
        name_kana.to_string(),
        birth_date.to_string(),
        sex.to_string(),
        "東京都千代田区千代田1-1".to_string(),
        status.to_string(),
    ]
}

pub fn residents_csv(rows: impl IntoIterator<Item = Vec<String>>) -> String {
    csv_text(&RESIDENT_HEADER, rows)
}

// ---------------------------------------------------------------------------------------------
// Imports

fn no_progress(_: u64) {}

pub fn ctx(file_name: &str) -> ImportContext<'_> {
    ImportContext {
        actor: "test",
        file_name,
        progress: &no_progress,
        today: shikaku_db::today_tokyo(),
    }
}

pub fn import_persons(
    conn: &mut PgConnection,
    data: impl AsRef<[u8]>,
) -> (ImportSummary, Vec<Issue>) {
    let mut sink = CollectIssues::default();
    let summary = import::import_persons(conn, &ctx("persons.csv"), data.as_ref(), &mut sink)
        .expect("the import must judge the file");
    (summary, sink.0)
}

pub fn import_linkages(
    conn: &mut PgConnection,
    keyring: &Keyring,
    data: impl AsRef<[u8]>,
) -> (ImportSummary, Vec<Issue>) {
    let mut sink = CollectIssues::default();
    let summary = import::import_linkages(
        conn,
        &ctx("linkages.csv"),
        keyring,
        data.as_ref(),
        &mut sink,
    )
    .expect("the import must judge the file");
    (summary, sink.0)
}

pub fn import_residents(
    conn: &mut PgConnection,
    keyring: &Keyring,
    data: impl AsRef<[u8]>,
) -> (ImportSummary, Vec<Issue>) {
    let mut sink = CollectIssues::default();
    let summary = import::import_residents(
        conn,
        &ctx("residents.csv"),
        keyring,
        data.as_ref(),
        &mut sink,
    )
    .expect("the import must judge the file");
    (summary, sink.0)
}

/// Imports a file that must be accepted without errors.
pub fn import_persons_ok(conn: &mut PgConnection, data: impl AsRef<[u8]>) -> ImportSummary {
    let (summary, issues) = import_persons(conn, data);
    assert!(summary.applied, "rejected: {issues:#?}");
    assert_eq!(errors(&issues), vec![], "{issues:#?}");
    summary
}

/// (line, column) of every error, in line order.
pub fn errors(issues: &[Issue]) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = issues
        .iter()
        .filter(|i| i.level == IssueLevel::Error)
        .map(|i| (i.line, i.column.clone()))
        .collect();
    v.sort();
    v
}

pub fn warnings(issues: &[Issue]) -> Vec<&Issue> {
    issues
        .iter()
        .filter(|i| i.level == IssueLevel::Warning)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct S {
    #[diesel(sql_type = Text)]
    s: String,
}

pub fn count(conn: &mut PgConnection, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .unwrap()
        .n
}

/// One text value from `sql`, which must select a column named `s`.
pub fn text(conn: &mut PgConnection, sql: &str) -> String {
    diesel::sql_query(sql).get_result::<S>(conn).unwrap().s
}

/// Every row of every table (as row text, sorted) plus the persons.csv export: equal dumps mean
/// an equal registry.
pub fn dump(conn: &mut PgConnection) -> String {
    let mut out = Vec::new();
    shikaku_db::export::export_persons(conn, &mut out).unwrap();
    let mut s = String::from_utf8(out).unwrap();
    for t in TABLES {
        s.push_str(&format!("== {t}: {}\n", count(conn, t)));
        s.push_str(&text(
            conn,
            &format!(
                "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS s FROM {t} t"
            ),
        ));
        s.push('\n');
    }
    s
}

#[test]
fn helpers_reproduce_the_documented_examples() {
    assert_eq!(insurer_number("3312001"), INS_A);
    assert_eq!(insurer_number("0104001"), INS_B);
    assert_eq!(insurer_number("0613019"), INS_C);
    assert_eq!(my_number(12_345_678_901), MN1);
    assert_eq!(my_number(98_765_432_109), MN2);
    assert_eq!(with_wrong_check_digit(MN1), "123456789019");
}

/// A date written `YYYY-MM-DD`.
pub fn d(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a YYYY-MM-DD date")
}

/// A person of `insurer` (kanji 試験, female, no 記号 or 枝番) with one qualification from
/// 2020-04-01, or from birth when later, lost on `lost` (reason 03) when given: the certificate
/// tests' person, whose standing is all that matters.
pub fn certificate_person(
    conn: &mut PgConnection,
    insurer: &str,
    number: &str,
    birth: &str,
    lost: Option<&str>,
) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let id = diesel::sql_query(
        "INSERT INTO persons (insurer_number, symbol, number, branch, relationship, name_kanji,
                              name_kana, kana_key, birth_date, sex)
         VALUES ($1, '', $2, '', 1, '試験', 'シケン', 'シケン', $3, 2) RETURNING id",
    )
    .bind::<Text, _>(insurer)
    .bind::<Text, _>(number)
    .bind::<diesel::sql_types::Date, _>(d(birth))
    .get_result::<Id>(conn)
    .expect("insert the person")
    .id;
    let acquired = d(birth).max(d("2020-04-01"));
    diesel::sql_query(
        "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason)
         VALUES ($1, $2, $3, CASE WHEN $3 IS NULL THEN NULL ELSE '03' END)",
    )
    .bind::<BigInt, _>(id)
    .bind::<diesel::sql_types::Date, _>(acquired)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Date>, _>(lost.map(d))
    .execute(conn)
    .expect("insert the qualification");
    id
}

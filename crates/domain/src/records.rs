//! Validation of the CSV input files (persons, linkages, residents) described in formats.md.
//!
//! Pure: callers read the file with the `csv` crate and pass each `StringRecord` here. A header
//! is turned into a [`Layout`] once; each row is then validated against it, collecting every
//! problem in the row rather than stopping at the first, so one pass over a file gives the
//! submitter a complete list to fix. Errors for the `my_number` column never echo the cell;
//! for other columns the bad value is echoed (shortened) because it helps find the row.

use std::fmt;

use chrono::NaiveDate;
use csv::StringRecord;

use crate::certificate::CardStatus;
use crate::copay::{allowed_copay, CopayRate};
use crate::error::DomainError;
use crate::ids::{Branch, InsuredNumber, InsurerNumber, PersonKey, Symbol};
use crate::my_number::LinkedNumber;
use crate::person::{KanaName, KanjiName, LossReason, PostalCode, Relationship, Sex};
use crate::text::truncate_for_message;

/// The column whose values must never appear in messages.
const MY_NUMBER: &str = "my_number";
/// How much of a bad value an error message may echo.
const ECHO_CHARS: usize = 40;

/// One column of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The header name.
    pub name: &'static str,
    /// Whether the column must be in the header (optional ones may be left out entirely).
    pub required: bool,
}

const fn col(name: &'static str, required: bool) -> ColumnSpec {
    ColumnSpec { name, required }
}

const PERSON_COLUMNS: &[ColumnSpec] = &[
    col("insurer_number", true),
    col("symbol", false),
    col("number", true),
    col("branch", false),
    col("relationship", true),
    col("name_kanji", true),
    col("name_kana", true),
    col("birth_date", true),
    col("sex", true),
    col("postal_code", false),
    col("address", false),
    col("acquired_on", true),
    col("lost_on", false),
    col("loss_reason", false),
    col("copay_rate", false),
];

const LINKAGE_COLUMNS: &[ColumnSpec] = &[
    col("insurer_number", true),
    col("symbol", false),
    col("number", true),
    col("branch", false),
    col("my_number", true),
    col("source", true),
    col("linked_on", true),
];

const RESIDENT_COLUMNS: &[ColumnSpec] = &[
    col("my_number", true),
    col("name_kanji", true),
    col("name_kana", false),
    col("birth_date", true),
    col("sex", true),
    col("address", false),
    col("status", true),
];

/// Which input file a header or row belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum FileKind {
    /// persons.csv: insured persons and dependants.
    Persons,
    /// linkages.csv: My Number linkages.
    Linkages,
    /// residents.csv: resident-register (住基) extract.
    Residents,
}

impl FileKind {
    /// The columns of this file, in the documented order.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            FileKind::Persons => PERSON_COLUMNS,
            FileKind::Linkages => LINKAGE_COLUMNS,
            FileKind::Residents => RESIDENT_COLUMNS,
        }
    }

    /// `persons`, `linkages` or `residents`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether rows of this file carry My Numbers, which need the keyring to seal.
    pub fn needs_keys(self) -> bool {
        !matches!(self, FileKind::Persons)
    }
}

/// A problem with one field (or header column) that stops the row (or file) from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The column name as in the header.
    pub column: String,
    /// What is wrong, for a person to act on. Never contains a My Number.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.column, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Something odd about a row that is still loaded as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The column the warning is about.
    pub column: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.column, self.message)
    }
}

fn field_error(column: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        column: column.to_owned(),
        reason: reason.into(),
    }
}

fn warning(column: &str, message: impl Into<String>) -> Warning {
    Warning {
        column: column.to_owned(),
        message: message.into(),
    }
}

/// A CSV file this project reads: its name (as in `NAME.csv`) and its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpec {
    /// `persons`, `linkages`, `residents` or `card_status`.
    pub name: &'static str,
    /// The columns, in the documented order.
    pub columns: &'static [ColumnSpec],
}

impl From<FileKind> for FileSpec {
    fn from(kind: FileKind) -> Self {
        FileSpec {
            name: kind.as_str(),
            columns: kind.columns(),
        }
    }
}

/// Where each known column sits in a file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    spec: FileSpec,
    /// Parallel to `spec.columns`: the header position of each column, if present.
    positions: Vec<Option<usize>>,
}

impl Layout {
    /// The file this layout was built for.
    pub fn spec(&self) -> FileSpec {
        self.spec
    }

    /// The header position of `column`, or `None` if it is not in the header (or unknown).
    pub fn index(&self, column: &str) -> Option<usize> {
        self.spec
            .columns
            .iter()
            .position(|c| c.name == column)
            .and_then(|p| self.positions.get(p).copied().flatten())
    }
}

/// Reads a header: strips a UTF-8 BOM from the first cell, trims names, and reports every
/// unknown, duplicate and missing required column.
pub fn layout(spec: impl Into<FileSpec>, header: &StringRecord) -> Result<Layout, Vec<FieldError>> {
    let spec = spec.into();
    let specs = spec.columns;
    let mut positions = vec![None; specs.len()];
    let mut errors = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let raw = if i == 0 {
            raw.strip_prefix('\u{FEFF}').unwrap_or(raw)
        } else {
            raw
        };
        let name = raw.trim();
        match specs.iter().position(|c| c.name == name) {
            None => {
                let expected: Vec<&str> = specs.iter().map(|c| c.name).collect();
                errors.push(field_error(
                    &truncate_for_message(name, ECHO_CHARS),
                    format!(
                        "unknown column for {}.csv (expected: {})",
                        spec.name,
                        expected.join(", ")
                    ),
                ));
            }
            Some(p) => match positions[p] {
                Some(first) => errors.push(field_error(
                    name,
                    format!("duplicate column (positions {} and {})", first + 1, i + 1),
                )),
                None => positions[p] = Some(i),
            },
        }
    }
    for (spec, pos) in specs.iter().zip(&positions) {
        if spec.required && pos.is_none() {
            errors.push(field_error(spec.name, "required column is missing"));
        }
    }
    if errors.is_empty() {
        Ok(Layout { spec, positions })
    } else {
        Err(errors)
    }
}

/// Parses a date written strictly `YYYY-MM-DD` (chrono alone would accept `2024-1-5`).
pub fn parse_date(s: &str) -> Result<NaiveDate, DomainError> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(DomainError::Date);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| DomainError::Date)
}

/// Free text such as an address: kept as given (trimmed) unless it holds control characters.
fn plain_text(s: &str) -> Result<String, DomainError> {
    if s.chars().any(char::is_control) {
        Err(DomainError::ControlCharacters)
    } else {
        Ok(s.to_owned())
    }
}

/// One row being validated: reads cells by column name and collects errors.
struct Row<'a> {
    layout: &'a Layout,
    rec: &'a StringRecord,
    errors: Vec<FieldError>,
}

impl<'a> Row<'a> {
    fn new(layout: &'a Layout, rec: &'a StringRecord) -> Self {
        Row {
            layout,
            rec,
            errors: Vec::new(),
        }
    }

    /// The trimmed cell, or `None` when the column is not in the header or the cell is empty.
    fn cell(&self, column: &str) -> Option<&'a str> {
        let i = self.layout.index(column)?;
        let v = self.rec.get(i)?.trim();
        (!v.is_empty()).then_some(v)
    }

    fn parse_cell<T>(
        &mut self,
        column: &str,
        v: &str,
        parse: impl FnOnce(&str) -> Result<T, DomainError>,
    ) -> Option<T> {
        match parse(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let reason = if column == MY_NUMBER {
                    e.to_string()
                } else {
                    format!("{e} (got \"{}\")", truncate_for_message(v, ECHO_CHARS))
                };
                self.errors.push(field_error(column, reason));
                None
            }
        }
    }

    fn required<T>(
        &mut self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, DomainError>,
    ) -> Option<T> {
        match self.cell(column) {
            Some(v) => self.parse_cell(column, v, parse),
            None => {
                self.errors.push(field_error(column, "is required"));
                None
            }
        }
    }

    fn optional<T>(
        &mut self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, DomainError>,
    ) -> Option<T> {
        let v = self.cell(column)?;
        self.parse_cell(column, v, parse)
    }

    /// The four key columns; `None` if any of them failed (errors are recorded).
    fn key(&mut self) -> Option<PersonKey> {
        let insurer = self.required("insurer_number", InsurerNumber::parse);
        let symbol = self.optional("symbol", Symbol::parse);
        let number = self.required("number", InsuredNumber::parse);
        let branch = self.optional("branch", Branch::parse);
        let symbol_bad = symbol.is_none() && self.cell("symbol").is_some();
        let branch_bad = branch.is_none() && self.cell("branch").is_some();
        if symbol_bad || branch_bad {
            return None;
        }
        Some(PersonKey {
            insurer: insurer?,
            symbol,
            number: number?,
            branch,
        })
    }
}

/// One validated row of persons.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// (保険者番号, 記号, 番号, 枝番).
    pub key: PersonKey,
    /// 本人 or 家族.
    pub relationship: Relationship,
    /// 漢字氏名.
    pub name_kanji: KanjiName,
    /// カナ氏名.
    pub name_kana: KanaName,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別 (1 or 2 in input).
    pub sex: Sex,
    /// 郵便番号.
    pub postal_code: Option<PostalCode>,
    /// 住所.
    pub address: Option<String>,
    /// 資格取得日.
    pub acquired_on: NaiveDate,
    /// 資格喪失日: the first day without eligibility.
    pub lost_on: Option<NaiveDate>,
    /// 資格喪失事由.
    pub loss_reason: Option<LossReason>,
    /// 一部負担金割合 as given; absent means "derive from age".
    pub copay_rate: Option<CopayRate>,
}

/// Validates one persons.csv row.
///
/// Besides each field's own rules: acquired_on may not be before birth_date, lost_on must be
/// after acquired_on, loss_reason needs lost_on. Warnings (row still loads): lost_on without a
/// loss_reason; a co-pay rate the age rules do not allow on acquired_on (income decides some
/// rates, so only a person can judge); a dependant under a 後期高齢者 insurer, which has none.
pub fn person_row(
    layout: &Layout,
    rec: &StringRecord,
) -> Result<(PersonRow, Vec<Warning>), Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let key = r.key();
    let relationship = r.required("relationship", Relationship::parse);
    let name_kanji = r.required("name_kanji", KanjiName::parse);
    let name_kana = r.required("name_kana", KanaName::parse);
    let birth_date = r.required("birth_date", parse_date);
    let sex = r.required("sex", Sex::parse);
    let postal_code = r.optional("postal_code", PostalCode::parse);
    let address = r.optional("address", plain_text);
    let acquired_on = r.required("acquired_on", parse_date);
    let lost_on = r.optional("lost_on", parse_date);
    let loss_reason = r.optional("loss_reason", LossReason::parse);
    let copay_rate = r.optional("copay_rate", CopayRate::parse);

    if let (Some(b), Some(a)) = (birth_date, acquired_on) {
        if a < b {
            r.errors.push(field_error(
                "acquired_on",
                format!("must not be before birth_date {b} (got {a})"),
            ));
        }
    }
    if let (Some(a), Some(l)) = (acquired_on, lost_on) {
        if l <= a {
            r.errors.push(field_error(
                "lost_on",
                format!("must be after acquired_on {a}; it is the first day without eligibility (got {l})"),
            ));
        }
    }
    if loss_reason.is_some() && r.cell("lost_on").is_none() {
        r.errors
            .push(field_error("loss_reason", "is given but lost_on is empty"));
    }

    let (
        Some(key),
        Some(relationship),
        Some(name_kanji),
        Some(name_kana),
        Some(birth_date),
        Some(sex),
        Some(acquired_on),
    ) = (
        key,
        relationship,
        name_kanji,
        name_kana,
        birth_date,
        sex,
        acquired_on,
    )
    else {
        return Err(r.errors);
    };
    if !r.errors.is_empty() {
        return Err(r.errors);
    }

    let mut warnings = Vec::new();
    if lost_on.is_some() && loss_reason.is_none() {
        warnings.push(warning(
            "loss_reason",
            "lost_on is set but loss_reason is empty; add 01, 02, 03 or 99",
        ));
    }
    if let Some(rate) = copay_rate {
        let allowed = allowed_copay(birth_date, acquired_on);
        if !allowed.contains(&rate) {
            let list: Vec<String> = allowed.iter().map(|c| c.percent().to_string()).collect();
            warnings.push(warning(
                "copay_rate",
                format!(
                    "{} is not allowed by the age rules on acquired_on {acquired_on} (allowed: {}); loaded as given",
                    rate.percent(),
                    list.join(", ")
                ),
            ));
        }
    }
    if relationship == Relationship::Dependent && key.insurer.is_koki() {
        warnings.push(warning(
            "relationship",
            "後期高齢者医療 (法別 39) has no dependants; every member is insured in their own right",
        ));
    }

    Ok((
        PersonRow {
            key,
            relationship,
            name_kanji,
            name_kana,
            birth_date,
            sex,
            postal_code,
            address,
            acquired_on,
            lost_on,
            loss_reason,
            copay_rate,
        },
        warnings,
    ))
}

/// Where a linked number came from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkageSource {
    /// Reported by the employer (事業主).
    Employer,
    /// Given by the insured person.
    Applicant,
    /// Looked up via J-LIS (地方公共団体情報システム機構).
    Jlis,
    /// Anything else.
    Other,
}

impl LinkageSource {
    /// From `employer`, `applicant`, `jlis` or `other`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim().parse().map_err(|_| DomainError::LinkageSource)
    }

    /// `employer`, `applicant`, `jlis` or `other`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One validated row of linkages.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkageRow {
    /// The person the number is linked to.
    pub key: PersonKey,
    /// The number; a wrong check digit is kept as [`LinkedNumber::BadCheckDigit`].
    pub my_number: LinkedNumber,
    /// Where the number came from.
    pub source: LinkageSource,
    /// The date it was registered.
    pub linked_on: NaiveDate,
}

/// Validates one linkages.csv row. A 12-digit number with a wrong check digit is not an error
/// (it is kept and flagged later); anything not 12 digits is.
pub fn linkage_row(layout: &Layout, rec: &StringRecord) -> Result<LinkageRow, Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let key = r.key();
    let my_number = r.required(MY_NUMBER, LinkedNumber::parse);
    let source = r.required("source", LinkageSource::parse);
    let linked_on = r.required("linked_on", parse_date);
    match (key, my_number, source, linked_on) {
        (Some(key), Some(my_number), Some(source), Some(linked_on)) if r.errors.is_empty() => {
            Ok(LinkageRow {
                key,
                my_number,
                source,
                linked_on,
            })
        }
        _ => Err(r.errors),
    }
}

/// A resident's status in the register extract.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum ResidentStatus {
    /// Registered.
    Active,
    /// 消除: removed (died, moved abroad …).
    Removed,
}

impl ResidentStatus {
    /// From `active` or `removed`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim().parse().map_err(|_| DomainError::ResidentStatus)
    }

    /// `active` or `removed`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One validated row of residents.csv (住基 5 items for a linked number).
///
/// Names are kept as registered (variant kanji, ● for characters outside the register's set,
/// half-width or large-only kana) because the audit compares them after its own normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentRow {
    /// The number the register entry belongs to.
    pub my_number: LinkedNumber,
    /// 漢字氏名 as registered; non-empty.
    pub name_kanji: String,
    /// カナ氏名 as registered.
    pub name_kana: Option<String>,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別.
    pub sex: Sex,
    /// 住所.
    pub address: Option<String>,
    /// Active or removed (消除).
    pub status: ResidentStatus,
}

/// Validates one residents.csv row.
pub fn resident_row(layout: &Layout, rec: &StringRecord) -> Result<ResidentRow, Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let my_number = r.required(MY_NUMBER, LinkedNumber::parse);
    let name_kanji = r.required("name_kanji", plain_text);
    let name_kana = r.optional("name_kana", plain_text);
    let birth_date = r.required("birth_date", parse_date);
    let sex = r.required("sex", Sex::parse);
    let address = r.optional("address", plain_text);
    let status = r.required("status", ResidentStatus::parse);
    match (my_number, name_kanji, birth_date, sex, status) {
        (Some(my_number), Some(name_kanji), Some(birth_date), Some(sex), Some(status))
            if r.errors.is_empty() =>
        {
            Ok(ResidentRow {
                my_number,
                name_kanji,
                name_kana,
                birth_date,
                sex,
                address,
                status,
            })
        }
        _ => Err(r.errors),
    }
}

/// The monthly card-registration status file (card_status.csv): one line per person whose
/// マイナ保険証 status the national file reports.
pub const CARD_STATUS: FileSpec = FileSpec {
    name: "card_status",
    columns: &[
        col("insurer_number", true),
        col("symbol", false),
        col("number", true),
        col("branch", false),
        col("card_status", true),
    ],
};

/// One validated line of the card-registration status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardStatusRow {
    /// The person.
    pub key: PersonKey,
    /// Their マイナ保険証 status.
    pub status: CardStatus,
}

/// Validates one line of the card-registration status file.
pub fn card_status_row(
    layout: &Layout,
    rec: &StringRecord,
) -> Result<CardStatusRow, Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let key = r.key();
    let status = r.required("card_status", CardStatus::parse);
    match (key, status) {
        (Some(key), Some(status)) if r.errors.is_empty() => Ok(CardStatusRow { key, status }),
        _ => Err(r.errors),
    }
}

#[cfg(test)]
mod tests;

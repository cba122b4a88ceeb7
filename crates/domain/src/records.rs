//! Validation of the CSV input files (persons, linkages, residents, benefits) described in formats.md.
//!
//! Pure: callers read the file with the `csv` crate and pass each `StringRecord` here. A header
//! is turned into a [`Layout`] once; each row is then validated against it, collecting every
//! problem in the row rather than stopping at the first, so one pass over a file gives the
//! submitter a complete list to fix. Errors for the `my_number` column never echo the cell;
//! for other columns the bad value is echoed (shortened) because it helps find the row.

use std::fmt;

use chrono::NaiveDate;
use csv::StringRecord;

use crate::error::DomainError;
use crate::free_text::may_hold_my_number;
use crate::ids::{Branch, InsuredNumber, InsurerNumber, PersonKey, Symbol};
use crate::text::{spreadsheet_restore, truncate_for_message};

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
    col("voluntary_until", false),
    col("residence_until", false),
    col("certificate_requested", false),
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

const BENEFIT_COLUMNS: &[ColumnSpec] = &[
    col("insurer_number", true),
    col("symbol", false),
    col("number", true),
    col("branch", false),
    col("kind", true),
    col("value", true),
    col("disease", false),
    col("valid_from", true),
    col("valid_until", false),
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
    /// benefits.csv: dated co-pay, 限度額適用区分 and 特定疾病 records.
    Benefits,
}

impl FileKind {
    /// The columns of this file, in the documented order.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            FileKind::Persons => PERSON_COLUMNS,
            FileKind::Linkages => LINKAGE_COLUMNS,
            FileKind::Residents => RESIDENT_COLUMNS,
            FileKind::Benefits => BENEFIT_COLUMNS,
        }
    }

    /// `persons`, `linkages`, `residents` or `benefits`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether rows of this file carry My Numbers, which need the keyring to seal.
    pub fn needs_keys(self) -> bool {
        !matches!(self, FileKind::Persons | FileKind::Benefits)
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
                // A file without its header row has data here, possibly a number.
                let shown = if may_hold_my_number(name) {
                    "(a value that could be a My Number, not shown)".to_string()
                } else {
                    truncate_for_message(name, ECHO_CHARS)
                };
                errors.push(field_error(
                    &shown,
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
        // Undo the apostrophe our exports put before a cell a spreadsheet would run.
        let v = spreadsheet_restore(self.rec.get(i)?.trim());
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
                // A number in the wrong column must not be echoed either.
                let reason = if column == MY_NUMBER || may_hold_my_number(v) {
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

mod benefits;
mod card_status;
mod linkages;
mod persons;
mod residents;

pub use benefits::{benefit_row, BenefitRow};
pub use card_status::{card_status_row, CardStatusRow, CARD_STATUS};
pub use linkages::{linkage_row, LinkageRow, LinkageSource};
pub use persons::{person_row, PersonRow};
pub use residents::{resident_row, ResidentRow, ResidentStatus};

#[cfg(test)]
mod tests;

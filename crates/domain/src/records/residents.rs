//! residents.csv rows: the resident register's five items for a linked number.

use chrono::NaiveDate;
use csv::StringRecord;

use super::{parse_date, plain_text, FieldError, Layout, Row, MY_NUMBER};
use crate::error::DomainError;
use crate::my_number::LinkedNumber;
use crate::person::Sex;

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

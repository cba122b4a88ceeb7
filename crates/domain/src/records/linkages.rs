//! linkages.csv rows: My Numbers linked to persons, with where they came from.

use chrono::NaiveDate;
use csv::StringRecord;

use super::{parse_date, FieldError, Layout, Row, MY_NUMBER};
use crate::error::DomainError;
use crate::ids::PersonKey;
use crate::my_number::LinkedNumber;

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

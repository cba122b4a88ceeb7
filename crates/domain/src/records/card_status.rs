//! card_status.csv rows: the monthly national file of マイナ保険証 registration status.

use csv::StringRecord;

use super::{col, FieldError, FileSpec, Layout, Row};
use crate::certificate::CardStatus;
use crate::ids::PersonKey;

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

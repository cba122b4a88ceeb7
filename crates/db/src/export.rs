//! Export of the registry in the interchange formats (formats.md), streamed row by row so a
//! 40-million-person registry exports in constant memory.

use shikaku_domain::text::spreadsheet_safe;
use std::io::Write;

use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{Date, Nullable, Text};

use shikaku_domain::records::FileKind;

use crate::error::DbError;
use crate::persons::{PersonRecord, PERSON_COLUMNS};

/// Errors while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[from] csv::Error),
}

impl From<diesel::result::Error> for ExportError {
    fn from(e: diesel::result::Error) -> Self {
        ExportError::Db(DbError::Query(e))
    }
}

#[derive(QueryableByName)]
struct PersonPeriod {
    #[diesel(embed)]
    person: PersonRecord,
    #[diesel(sql_type = Date)]
    acquired_on: chrono::NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    lost_on: Option<chrono::NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    loss_reason: Option<String>,
}

/// Writes every person's qualification periods as persons.csv (one row per period, ordered by
/// person key and 資格取得日). Re-importing the output changes nothing. Returns the rows written.
pub fn export_persons<W: Write>(conn: &mut PgConnection, out: W) -> Result<u64, ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    // The header comes from the one definition of the format, which the import also checks.
    writer.write_record(FileKind::Persons.columns().iter().map(|c| c.name))?;
    let rows = diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS}, q.acquired_on, q.lost_on, q.loss_reason
         FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
         JOIN qualifications q ON q.person_id = p.id
         ORDER BY p.insurer_number, p.symbol, p.number, p.branch, q.acquired_on"
    ))
    .load_iter::<PersonPeriod, PgRowByRowLoadingMode>(conn)?;
    let mut written = 0u64;
    for row in rows {
        let r = row?;
        let p = r.person;
        let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let row = [
            p.insurer_number,
            p.symbol,
            p.number,
            p.branch,
            if p.relationship == 1 {
                "insured".to_string()
            } else {
                "dependent".to_string()
            },
            p.name_kanji,
            p.name_kana,
            date(p.birth_date),
            p.sex.to_string(),
            p.postal_code.unwrap_or_default(),
            p.address.unwrap_or_default(),
            date(r.acquired_on),
            r.lost_on.map(date).unwrap_or_default(),
            r.loss_reason.unwrap_or_default(),
            p.copay_rate.map(|c| c.to_string()).unwrap_or_default(),
            p.voluntary_until.map(date).unwrap_or_default(),
            p.residence_until.map(date).unwrap_or_default(),
            if p.certificate_requested {
                "yes".to_string()
            } else {
                String::new()
            },
        ];
        // Names and addresses reach spreadsheets: no cell may run as a formula.
        writer.write_record(row.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        written += 1;
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(written)
}

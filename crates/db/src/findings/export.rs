//! findings.csv: every finding, streamed, exactly as formats.md defines the file. Only the last
//! 4 digits of a number are ever stored, so no whole number can appear.

use shikaku_domain::text::spreadsheet_safe;
use std::io::Write;

use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;

use super::queue::{bind_filter, Filter, FILTER_SQL};
use super::{Row, StoredFinding, SELECT};

use crate::error::DbError;

/// The findings.csv columns (formats.md), in order.
pub const FINDINGS_HEADER: [&str; 14] = [
    "finding_id",
    "kind",
    "severity",
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "my_number_last4",
    "fields",
    "detail",
    "status",
    "p_other_person",
    "first_seen",
    "last_seen",
];

/// Writes the findings `filter` matches (all of them with the default filter) as findings.csv
/// exactly as formats.md defines it, streaming, oldest first. Only the last 4 digits of a
/// number are ever stored, so no whole number can appear. Returns the rows written. (Review
/// reasons are in `shikaku findings show`, not in the interchange file.)
pub fn export_findings<W: Write>(
    conn: &mut PgConnection,
    filter: &Filter,
    out: W,
) -> Result<u64, ExportError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(FINDINGS_HEADER)?;
    let status = if filter.status.is_some() {
        filter.status_sql()
    } else {
        "TRUE".to_owned()
    };
    let rows = bind_filter!(
        diesel::sql_query(format!(
            "{SELECT} WHERE {status} AND {FILTER_SQL} ORDER BY f.id"
        )),
        filter,
        None::<Vec<i64>>
    )
    .load_iter::<Row, PgRowByRowLoadingMode>(conn)
    .map_err(DbError::from)?;
    let mut n = 0u64;
    for row in rows {
        let f = StoredFinding::try_from(row.map_err(DbError::from)?)?;
        let fields = f.fields_csv();
        let ts = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (first_seen, last_seen) = (ts(f.first_seen), ts(f.last_seen));
        // Three decimals (formats.md); empty for kinds without a probability.
        let p = f
            .p_other_person
            .map(|p| format!("{p:.3}"))
            .unwrap_or_default();
        let row = [
            f.fingerprint.as_str(),
            f.kind.as_str(),
            f.severity.as_str(),
            f.insurer_number.as_str(),
            f.symbol.as_str(),
            f.number.as_str(),
            f.branch.as_str(),
            f.mn_last4.as_str(),
            fields.as_str(),
            f.detail.as_str(),
            f.status.as_str(),
            p.as_str(),
            first_seen.as_str(),
            last_seen.as_str(),
        ];
        // The detail quotes names and addresses: no cell may run as a formula.
        w.write_record(row.iter().map(|c| spreadsheet_safe(c).into_owned()))?;
        n += 1;
    }
    w.flush().map_err(csv::Error::from)?;
    Ok(n)
}

/// Errors writing the export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Writing failed.
    #[error("cannot write findings: {0}")]
    Write(#[from] csv::Error),
}

//! Registry counts for `shikaku stats` and the demo.

use diesel::prelude::*;
use diesel::sql_types::{Date, Int8};

use crate::error::DbError;

/// How much the registry holds, and how much of it is in force on a date.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct RegistryStats {
    /// Insurers registered.
    #[diesel(sql_type = Int8)]
    pub insurers: i64,
    /// Person keys (insured persons and dependants, current and former).
    #[diesel(sql_type = Int8)]
    pub persons: i64,
    /// Qualification periods, all of history.
    #[diesel(sql_type = Int8)]
    pub qualifications: i64,
    /// Persons with a qualification in force on the date.
    #[diesel(sql_type = Int8)]
    pub eligible: i64,
    /// Linkages, any status.
    #[diesel(sql_type = Int8)]
    pub linkages: i64,
    /// Linkages with status active.
    #[diesel(sql_type = Int8)]
    pub linkages_active: i64,
    /// Linkages whose number fails its check digit.
    #[diesel(sql_type = Int8)]
    pub linkages_bad_check_digit: i64,
    /// Resident-register snapshots imported.
    #[diesel(sql_type = Int8)]
    pub resident_snapshots: i64,
    /// Records in the latest snapshot.
    #[diesel(sql_type = Int8)]
    pub residents_latest: i64,
    /// Recorded person changes.
    #[diesel(sql_type = Int8)]
    pub person_changes: i64,
}

/// Counts the registry, with eligibility judged on `on`.
pub fn registry_stats(
    conn: &mut PgConnection,
    on: chrono::NaiveDate,
) -> Result<RegistryStats, DbError> {
    Ok(diesel::sql_query(
        "SELECT (SELECT count(*) FROM insurers) AS insurers,
                (SELECT count(*) FROM persons) AS persons,
                (SELECT count(*) FROM qualifications) AS qualifications,
                (SELECT count(DISTINCT person_id) FROM qualifications
                  WHERE acquired_on <= $1 AND (lost_on IS NULL OR lost_on > $1)) AS eligible,
                (SELECT count(*) FROM linkages) AS linkages,
                (SELECT count(*) FROM linkages WHERE status = 'active') AS linkages_active,
                (SELECT count(*) FROM linkages WHERE NOT check_digit_ok) AS linkages_bad_check_digit,
                (SELECT count(*) FROM resident_snapshots) AS resident_snapshots,
                (SELECT count(*) FROM resident_records
                  WHERE snapshot_id = (SELECT max(id) FROM resident_snapshots)) AS residents_latest,
                (SELECT count(*) FROM person_changes) AS person_changes",
    )
    .bind::<Date, _>(on)
    .get_result(conn)?)
}

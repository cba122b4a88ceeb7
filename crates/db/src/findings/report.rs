//! The review report: what reviewers decided over a period, how long findings waited, how old
//! the open queue is, and the numbers a 保険者 reports upward after a 総点検 (docs/audit.md,
//! "The review report"). One query per section, over the decisions' index and the findings.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use crate::error::DbError;

/// The report for the days `from` to `to` (inclusive, Tokyo).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Decisions per reviewer (decisions of bulk actions later undone are not counted).
    pub reviewers: Vec<ReviewerCount>,
    /// Decisions per reason, most used first (at most 50).
    pub reasons: Vec<ReasonCount>,
    /// Median time from a finding's first detection to its decision, in hours; `None` when
    /// nothing was decided.
    pub median_hours_to_decision: Option<f64>,
    /// The open findings now, by age since first detected and by severity.
    pub open_by_age: Vec<AgeRow>,
    /// The findings first detected in the period and where they stand now.
    pub inspection: Inspection,
}

/// One reviewer's decisions.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewerCount {
    /// Who (as the history records them).
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// Findings confirmed.
    #[diesel(sql_type = BigInt)]
    pub confirmed: i64,
    /// Findings dismissed (理由付き疑いなし).
    #[diesel(sql_type = BigInt)]
    pub dismissed: i64,
}

/// One reason's use.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonCount {
    /// `confirmed` or `dismissed`.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// The reason as written.
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// Decisions that gave it.
    #[diesel(sql_type = BigInt)]
    pub decisions: i64,
}

/// Open findings of one age band, by severity.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgeRow {
    /// `0-7`, `8-30`, `31-90` or `91-` days since first detected.
    #[diesel(sql_type = Text)]
    pub days: String,
    /// Critical.
    #[diesel(sql_type = BigInt)]
    pub critical: i64,
    /// High.
    #[diesel(sql_type = BigInt)]
    pub high: i64,
    /// Medium.
    #[diesel(sql_type = BigInt)]
    pub medium: i64,
    /// Low.
    #[diesel(sql_type = BigInt)]
    pub low: i64,
}

/// The 総点検 numbers: of the findings first detected in the period, how many were corrected
/// (resolved: the number was corrected, or the data fixed so that the audit no longer finds
/// the problem), closed as 理由付き疑いなし, and are still open (not decided, or confirmed and
/// awaiting correction). `found` is the sum of the other three.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inspection {
    /// First detected in the period.
    #[diesel(sql_type = BigInt)]
    pub found: i64,
    /// Now resolved.
    #[diesel(sql_type = BigInt)]
    pub corrected: i64,
    /// Now dismissed with a reason.
    #[diesel(sql_type = BigInt)]
    pub dismissed_with_reason: i64,
    /// Now open or confirmed.
    #[diesel(sql_type = BigInt)]
    pub still_open: i64,
}

/// The report for `from`–`to` (inclusive).
pub fn report(conn: &mut PgConnection, from: NaiveDate, to: NaiveDate) -> Result<Report, DbError> {
    if to < from {
        return Err(DbError::Invalid(format!("to: {to} is before from: {from}")));
    }
    // The period as instants: from the start of `from` to the end of `to`, Tokyo time.
    const DECIDED: &str = "e.action IN ('confirmed', 'dismissed')
          AND e.at >= ($1::date::timestamp AT TIME ZONE 'Asia/Tokyo')
          AND e.at < (($2::date + 1)::timestamp AT TIME ZONE 'Asia/Tokyo')
          AND b.undone_at IS NULL";
    const DECISIONS: &str = "finding_events e LEFT JOIN finding_bulk_actions b ON b.id = e.bulk_id";
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let reviewers = diesel::sql_query(format!(
                "SELECT e.actor, count(*) FILTER (WHERE e.action = 'confirmed') AS confirmed,
                        count(*) FILTER (WHERE e.action = 'dismissed') AS dismissed
                   FROM {DECISIONS} WHERE {DECIDED} GROUP BY e.actor ORDER BY e.actor"
            ))
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .load(conn)?;
            let reasons = diesel::sql_query(format!(
                "SELECT e.action, coalesce(e.reason, '') AS reason, count(*) AS decisions
                   FROM {DECISIONS} WHERE {DECIDED} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 50"
            ))
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .load(conn)?;
            #[derive(QueryableByName)]
            struct Median {
                #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
                hours: Option<f64>,
            }
            let median: Median = diesel::sql_query(format!(
                "SELECT percentile_cont(0.5) WITHIN GROUP
                        (ORDER BY extract(epoch FROM e.at - f.first_seen)::float8 / 3600) AS hours
                   FROM {DECISIONS} JOIN findings f ON f.id = e.finding_id WHERE {DECIDED}"
            ))
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .get_result(conn)?;
            let open_by_age = diesel::sql_query(
                "WITH bands(days, lo, hi, n) AS (VALUES ('0-7', 0, 7, 1), ('8-30', 8, 30, 2),
                                                        ('31-90', 31, 90, 3), ('91-', 91, NULL, 4)),
                      open AS (
                    SELECT f.severity,
                           (clock_timestamp() AT TIME ZONE 'Asia/Tokyo')::date
                             - (f.first_seen AT TIME ZONE 'Asia/Tokyo')::date AS age
                      FROM findings f WHERE f.status = 'open'
                 )
                 SELECT b.days,
                        count(o.*) FILTER (WHERE o.severity = 'critical') AS critical,
                        count(o.*) FILTER (WHERE o.severity = 'high') AS high,
                        count(o.*) FILTER (WHERE o.severity = 'medium') AS medium,
                        count(o.*) FILTER (WHERE o.severity = 'low') AS low
                   FROM bands b
                   LEFT JOIN open o ON o.age >= b.lo AND (b.hi IS NULL OR o.age <= b.hi)
                  GROUP BY b.days, b.n ORDER BY b.n",
            )
            .load(conn)?;
            let inspection = diesel::sql_query(
                "SELECT count(*) AS found,
                        count(*) FILTER (WHERE f.status = 'resolved') AS corrected,
                        count(*) FILTER (WHERE f.status = 'dismissed') AS dismissed_with_reason,
                        count(*) FILTER (WHERE f.status IN ('open', 'confirmed')) AS still_open
                   FROM findings f
                  WHERE f.first_seen >= ($1::date::timestamp AT TIME ZONE 'Asia/Tokyo')
                    AND f.first_seen < (($2::date + 1)::timestamp AT TIME ZONE 'Asia/Tokyo')",
            )
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .get_result(conn)?;
            Ok(Report {
                from,
                to,
                reviewers,
                reasons,
                median_hours_to_decision: median.hours,
                open_by_age,
                inspection,
            })
        })
}

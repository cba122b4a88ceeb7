//! Reviewing findings: the queue, one finding with its history, confirming, dismissing with a
//! reason (理由付き疑いなし), and the findings.csv export.

use std::io::Write;

use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use shikaku_db::DbError;

/// A finding as stored, with its person key.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct StoredFinding {
    /// Database id, used by the review commands.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Stable identity across runs (findings.csv `finding_id`).
    #[diesel(sql_type = Text)]
    pub fingerprint: String,
    /// Finding kind.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// critical, high, medium or low.
    #[diesel(sql_type = Text)]
    pub severity: String,
    /// 保険者番号.
    #[diesel(sql_type = Text)]
    pub insurer_number: String,
    /// 記号 ('' when absent).
    #[diesel(sql_type = Text)]
    pub symbol: String,
    /// 番号.
    #[diesel(sql_type = Text)]
    pub number: String,
    /// 枝番 ('' when absent).
    #[diesel(sql_type = Text)]
    pub branch: String,
    /// Last 4 digits of the number concerned.
    #[diesel(sql_type = Text)]
    pub mn_last4: String,
    /// Differing fields, `;`-separated.
    #[diesel(sql_type = Text)]
    pub fields: String,
    /// What to do about it.
    #[diesel(sql_type = Text)]
    pub detail: String,
    /// open, confirmed, dismissed or resolved.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// When first detected.
    #[diesel(sql_type = Timestamptz)]
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// When last detected.
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: chrono::DateTime<chrono::Utc>,
    /// The reviewer's reason, if reviewed.
    #[diesel(sql_type = Nullable<Text>)]
    pub review_reason: Option<String>,
    /// The linkage concerned, if the finding is about one.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub linkage_id: Option<i64>,
    /// That linkage's status now (active, suspended, revoked): a suspended linkage shows as
    /// such wherever it is read.
    #[diesel(sql_type = Nullable<Text>)]
    pub linkage_status: Option<String>,
}

const SELECT: &str = "SELECT f.id, f.fingerprint, f.kind, f.severity, p.insurer_number, p.symbol,
        p.number, p.branch, f.mn_last4, f.fields, f.detail, f.status, f.first_seen, f.last_seen,
        f.review_reason, f.linkage_id, l.status AS linkage_status
     FROM findings f JOIN persons p ON p.id = f.person_id
     LEFT JOIN linkages l ON l.id = f.linkage_id";

/// Filters for the review queue; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Only findings last seen by this run.
    pub run_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// The review queue, most severe first.
pub fn list(conn: &mut PgConnection, filter: &Filter) -> Result<Vec<StoredFinding>, DbError> {
    Ok(diesel::sql_query(format!(
        "{SELECT}
         WHERE ($1::text IS NULL OR f.status = $1) AND ($2::text IS NULL OR f.kind = $2)
           AND ($3::text IS NULL OR f.severity = $3) AND ($4::bigint IS NULL OR f.last_seen_run = $4)
         ORDER BY array_position(ARRAY['critical','high','medium','low'], f.severity), f.id
         LIMIT $5"
    ))
    .bind::<Nullable<Text>, _>(filter.status.as_deref())
    .bind::<Nullable<Text>, _>(filter.kind.as_deref())
    .bind::<Nullable<Text>, _>(filter.severity.as_deref())
    .bind::<Nullable<BigInt>, _>(filter.run_id)
    .bind::<BigInt, _>(filter.limit)
    .load(conn)?)
}

/// One entry of a finding's history.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct FindingEvent {
    /// detected, confirmed, dismissed, reopened or resolved.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Why.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// Who.
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One finding and its history.
pub fn show(
    conn: &mut PgConnection,
    id: i64,
) -> Result<(StoredFinding, Vec<FindingEvent>), DbError> {
    let finding = diesel::sql_query(format!("{SELECT} WHERE f.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<StoredFinding>(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no finding {id}")))?;
    let events = diesel::sql_query(
        "SELECT action, reason, actor, at FROM finding_events WHERE finding_id = $1 ORDER BY at, id",
    )
    .bind::<BigInt, _>(id)
    .load(conn)?;
    Ok((finding, events))
}

/// Confirms (the problem is real and being fixed) or dismisses (理由付き疑いなし: checked, no
/// error, with the reason) a finding, recording who and why. A resolved finding cannot be
/// reviewed: there is nothing left to judge.
pub fn review(
    conn: &mut PgConnection,
    id: i64,
    action: ReviewAction,
    reason: &str,
    actor: &str,
) -> Result<StoredFinding, DbError> {
    shikaku_db::check_reason(reason)?;
    let status = action.status();
    conn.transaction(|conn| {
        let changed = diesel::sql_query(
            "UPDATE findings SET status = $2, review_reason = $3, reviewed_by = $4,
                    reviewed_at = clock_timestamp()
             WHERE id = $1 AND status IN ('open', 'confirmed', 'dismissed')",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(status)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .execute(conn)?;
        if changed == 0 {
            return Err(DbError::NotFound(format!(
                "no finding {id} open for review (unknown, or already resolved)"
            )));
        }
        diesel::sql_query(
            "INSERT INTO finding_events (finding_id, action, reason, actor) VALUES ($1, $2, $3, $4)",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(status)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .execute(conn)?;
        Ok(show(conn, id)?.0)
    })
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// The problem is real.
    Confirm,
    /// 理由付き疑いなし.
    Dismiss,
}

impl ReviewAction {
    fn status(self) -> &'static str {
        match self {
            ReviewAction::Confirm => "confirmed",
            ReviewAction::Dismiss => "dismissed",
        }
    }
}

/// The findings.csv columns (formats.md), in order.
pub const FINDINGS_HEADER: [&str; 13] = [
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
    "first_seen",
    "last_seen",
];

/// Writes every finding as findings.csv exactly as formats.md defines it, streaming. Only the
/// last 4 digits of a number are ever stored, so no whole number can appear. Returns the rows
/// written. (Review reasons are in `shikaku findings show`, not in the interchange file.)
pub fn export_findings<W: Write>(conn: &mut PgConnection, out: W) -> Result<u64, ExportError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(FINDINGS_HEADER)?;
    let rows = diesel::sql_query(format!("{SELECT} ORDER BY f.id"))
        .load_iter::<StoredFinding, PgRowByRowLoadingMode>(conn)
        .map_err(DbError::from)?;
    let mut n = 0u64;
    for row in rows {
        let f = row.map_err(DbError::from)?;
        let ts = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        w.write_record([
            f.fingerprint.as_str(),
            f.kind.as_str(),
            f.severity.as_str(),
            f.insurer_number.as_str(),
            f.symbol.as_str(),
            f.number.as_str(),
            f.branch.as_str(),
            f.mn_last4.as_str(),
            f.fields.as_str(),
            f.detail.as_str(),
            f.status.as_str(),
            ts(f.first_seen).as_str(),
            ts(f.last_seen).as_str(),
        ])?;
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

/// The findings about one person that still need or had a verdict (open and confirmed),
/// most severe first: what the console's person page shows.
pub fn of_person(conn: &mut PgConnection, person_id: i64) -> Result<Vec<StoredFinding>, DbError> {
    Ok(diesel::sql_query(format!(
        "{SELECT}
         WHERE f.person_id = $1 AND f.status IN ('open', 'confirmed')
         ORDER BY array_position(ARRAY['critical','high','medium','low'], f.severity), f.id"
    ))
    .bind::<BigInt, _>(person_id)
    .load(conn)?)
}

/// One audit run's counts, for the chart of findings by kind across runs.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
pub struct RunCounts {
    /// Run id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The day the run judged.
    #[diesel(sql_type = diesel::sql_types::Date)]
    pub run_date: chrono::NaiveDate,
    /// `kind/severity` → findings detected.
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub counts: serde_json::Value,
}

/// The last `n` finished runs, oldest first.
pub fn recent_runs(conn: &mut PgConnection, n: i64) -> Result<Vec<RunCounts>, DbError> {
    let mut runs: Vec<RunCounts> = diesel::sql_query(
        "SELECT id, run_date, counts FROM audit_runs WHERE finished_at IS NOT NULL
         ORDER BY id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(n)
    .load(conn)?;
    runs.reverse();
    Ok(runs)
}

//! The findings repository: what the nightly audit found, as reviewers work it. The queue, one
//! finding with its history and the comparison its run made, confirming, dismissing with a
//! reason (理由付き疑いなし), a person's open findings, and the runs' counts.
//!
//! - [`queue`]: filters, orders, keyset pages and exact counts.
//! - [`bulk`]: assignment and bulk decisions, with a preview and an undo.
//! - [`report`]: the review report (decisions, time to decision, age of the open queue, the
//!   numbers reported upward after a 総点検).
//! - [`runs`]: the `audit_runs` rows (start, finish, fail, recent counts).
//! - [`merge`]: how a run's findings are staged and merged by fingerprint.
//! - [`block`]: critical findings block online viewing of their linkage until reviewed.
//! - [`export`]: findings.csv (formats.md).

pub mod block;
pub mod bulk;
pub mod export;
pub mod merge;
pub mod queue;
pub mod report;
pub mod runs;

pub use queue::{count, page, Assignee, Cursor, Filter, Page, QueueOrder};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, Text, Timestamptz};
use shikaku_domain::evidence::Evidence;
use shikaku_domain::finding::{
    Field, FieldComparison, FindingKind, FindingStatus, ReviewAction, Severity, VariantTableInfo,
};
use shikaku_domain::free_text::FreeText;
use shikaku_domain::LinkageStatus;

use crate::error::DbError;

/// One entry of a finding's history: the shared fields ([`crate::history::Event`]) and the
/// bulk action it belonged to and the reviewer it was assigned to, when it is one of those.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingEvent {
    /// What happened, why, who and when.
    #[diesel(embed)]
    #[serde(flatten)]
    pub event: crate::history::Event,
    /// The bulk action this was part of (undo names it too).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bulk_id: Option<i64>,
    /// For an assignment: the reviewer assigned.
    #[diesel(sql_type = Nullable<Text>)]
    pub assignee: Option<String>,
}

/// A finding as stored, with its person key.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFinding {
    /// Database id, used by the review commands.
    pub id: i64,
    /// Stable identity across runs (findings.csv `finding_id`).
    pub fingerprint: String,
    /// Finding kind.
    pub kind: FindingKind,
    /// How urgent.
    pub severity: Severity,
    /// The person concerned.
    pub person_id: i64,
    /// 保険者番号.
    pub insurer_number: String,
    /// 記号 ('' when absent).
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番 ('' when absent).
    pub branch: String,
    /// Last 4 digits of the number concerned.
    pub mn_last4: String,
    /// The items that differ, for mismatches.
    pub fields: Vec<Field>,
    /// What to do about it.
    pub detail: String,
    /// Where the finding stands in review.
    pub status: FindingStatus,
    /// When first detected.
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// When last detected.
    pub last_seen: chrono::DateTime<chrono::Utc>,
    /// The run that last detected it (its variant table is the one the comparison used).
    pub last_seen_run: i64,
    /// The reviewer's reason, if reviewed.
    pub review_reason: Option<String>,
    /// The reviewer it is assigned to, if any.
    pub assignee: Option<String>,
    /// For a dismissal that holds only until a date: that date (the first audit run after it
    /// re-opens the finding).
    pub dismissed_until: Option<chrono::NaiveDate>,
    /// The linkage concerned, if the finding is about one.
    pub linkage_id: Option<i64>,
    /// That linkage's status now: a suspended linkage shows as such wherever it is read.
    pub linkage_status: Option<LinkageStatus>,
    /// The finding whose block keeps that linkage suspended (this one or another critical
    /// finding about it); `None` when it is not suspended by a finding.
    pub linkage_blocked_by: Option<i64>,
    /// For identity and address mismatches: each item as the run compared it.
    pub comparison: Vec<FieldComparison>,
    /// For identity and address mismatches: the probability that the number is another
    /// person's (findings.csv `p_other_person`).
    pub p_other_person: Option<f64>,
    /// The weight of evidence behind that probability, item by item (the waterfall).
    pub evidence: Option<Evidence>,
}

impl StoredFinding {
    /// The person key as the JP Core member identifier `保険者番号:記号:番号:枝番`.
    pub fn person_key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.insurer_number, self.symbol, self.number, self.branch
        )
    }

    /// The `fields` column of findings.csv: names `;`-separated.
    pub fn fields_csv(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|f| f.as_str()).collect();
        names.join(";")
    }
}

/// The row as read; [`StoredFinding`] is its typed form.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = BigInt)]
    person_id: i64,
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = Text)]
    mn_last4: String,
    #[diesel(sql_type = Text)]
    fields: String,
    #[diesel(sql_type = Text)]
    detail: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    first_seen: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = Timestamptz)]
    last_seen: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = BigInt)]
    last_seen_run: i64,
    #[diesel(sql_type = Nullable<Text>)]
    review_reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    assignee: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Date>)]
    dismissed_until: Option<chrono::NaiveDate>,
    #[diesel(sql_type = Nullable<BigInt>)]
    linkage_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    linkage_status: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    linkage_blocked_by: Option<i64>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    comparison: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Double>)]
    p_other_person: Option<f64>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    evidence: Option<serde_json::Value>,
}

/// A stored name that the schema's CHECK constraints should have kept valid.
fn stored<T>(value: Option<T>, what: &str, text: &str) -> Result<T, DbError> {
    value.ok_or_else(|| DbError::Invalid(format!("unexpected stored {what} {text:?}")))
}

impl TryFrom<Row> for StoredFinding {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        let fields = r
            .fields
            .split(';')
            .filter(|f| !f.is_empty())
            .map(|f| stored(f.parse().ok(), "field", f))
            .collect::<Result<Vec<Field>, _>>()?;
        let comparison = match r.comparison {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| DbError::Invalid(format!("unexpected stored comparison: {e}")))?,
            None => Vec::new(),
        };
        let evidence = r
            .evidence
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| DbError::Invalid(format!("unexpected stored evidence: {e}")))?;
        Ok(StoredFinding {
            id: r.id,
            kind: stored(FindingKind::parse(&r.kind), "kind", &r.kind)?,
            severity: stored(Severity::parse(&r.severity), "severity", &r.severity)?,
            status: stored(FindingStatus::parse(&r.status), "status", &r.status)?,
            linkage_status: match r.linkage_status {
                Some(s) => Some(stored(LinkageStatus::parse(&s), "linkage status", &s)?),
                None => None,
            },
            fingerprint: r.fingerprint,
            person_id: r.person_id,
            insurer_number: r.insurer_number,
            symbol: r.symbol,
            number: r.number,
            branch: r.branch,
            mn_last4: r.mn_last4,
            fields,
            detail: r.detail,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            last_seen_run: r.last_seen_run,
            review_reason: r.review_reason,
            assignee: r.assignee,
            dismissed_until: r.dismissed_until,
            linkage_id: r.linkage_id,
            linkage_blocked_by: r.linkage_blocked_by,
            comparison,
            p_other_person: r.p_other_person,
            evidence,
        })
    }
}

fn typed(rows: Vec<Row>) -> Result<Vec<StoredFinding>, DbError> {
    rows.into_iter().map(StoredFinding::try_from).collect()
}

const SELECT: &str = "SELECT f.id, f.fingerprint, f.kind, f.severity, f.person_id,
        f.insurer_number, p.symbol, p.number, p.branch, f.mn_last4, f.fields, f.detail, f.status,
        f.first_seen, f.last_seen, f.last_seen_run, f.review_reason, f.assignee, f.dismissed_until,
        f.linkage_id,
        l.status AS linkage_status, l.suspended_by_finding AS linkage_blocked_by, f.comparison,
        f.p_other_person, f.evidence
     FROM findings f JOIN persons p ON p.id = f.person_id
     LEFT JOIN linkages l ON l.id = f.linkage_id";

/// Most severe first, then oldest first: a person's findings on the console.
const QUEUE_ORDER: &str = "f.severity_rank, f.id";

/// One finding, its history, and the variant table of the run that last compared it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingDetail {
    /// The finding.
    pub finding: StoredFinding,
    /// Its history, oldest first.
    pub events: Vec<FindingEvent>,
    /// The kanji variant table its comparison used (runs before this was recorded have none).
    pub variant_table: Option<VariantTableInfo>,
}

/// One finding.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<StoredFinding, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE f.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<Row>(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no finding {id}")))?
        .try_into()
}

/// One finding with its history and the run's variant table.
pub fn show(conn: &mut PgConnection, id: i64) -> Result<FindingDetail, DbError> {
    let finding = get(conn, id)?;
    let events = diesel::sql_query(
        "SELECT action, reason, actor, at, bulk_id, assignee FROM finding_events
          WHERE finding_id = $1 ORDER BY at, id",
    )
    .bind::<BigInt, _>(id)
    .load(conn)?;
    let variant_table = runs::variant_table(conn, finding.last_seen_run)?;
    Ok(FindingDetail {
        finding,
        events,
        variant_table,
    })
}

/// Confirms (the problem is real and being fixed) or dismisses (理由付き疑いなし: checked, no
/// error, with the reason) a finding, recording who and why. A resolved finding cannot be
/// reviewed: there is nothing left to judge.
///
/// In the same transaction the finding's linkage is settled ([`block::settle`]): a dismissal
/// lifts the block this finding put on it (the linkage is active again, or stays suspended by
/// another critical finding about it); a confirmation keeps it suspended, or suspends it if it
/// is critical and the linkage is active, until the number is corrected.
///
/// A dismissal records what it judged (the finding's current values), so the audit re-opens
/// it when they change, and holds at most until `until` when the reviewer sets a date.
pub fn decide(
    conn: &mut PgConnection,
    id: i64,
    verdict: &Verdict,
    actor: &str,
) -> Result<StoredFinding, DbError> {
    verdict.check()?;
    let (status, reason) = (verdict.action.status().as_str(), verdict.reason.as_str());
    conn.transaction(|conn| {
        let changed = diesel::sql_query(format!(
            "UPDATE findings f SET {VERDICT_SET}
             WHERE id = $1 AND status IN ('open', 'confirmed', 'dismissed')"
        ))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(status)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .bind::<Nullable<diesel::sql_types::Date>, _>(verdict.until)
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
        if let Some(linkage) = get(conn, id)?.linkage_id {
            block::settle(conn, block::Scope::Linkage(linkage), actor, None)?;
        }
        get(conn, id)
    })
}

/// [`decide`] with a verdict that holds without a date.
pub fn review(
    conn: &mut PgConnection,
    id: i64,
    action: ReviewAction,
    reason: &str,
    actor: &str,
) -> Result<StoredFinding, DbError> {
    let verdict = Verdict {
        action,
        reason: reason.to_owned(),
        until: None,
    };
    decide(conn, id, &verdict, actor)
}

/// The assignments of a verdict over `findings f`, with `$2` the status, `$3` the reason, `$4`
/// the reviewer and `$5` the date a dismissal holds until: shared by single and bulk review so
/// that both record a dismissal the same way.
pub(crate) const VERDICT_SET: &str = "status = $2, review_reason = $3, reviewed_by = $4,
        reviewed_at = clock_timestamp(),
        dismissed_basis = CASE WHEN $2 = 'dismissed' THEN f.basis END,
        dismissed_until = CASE WHEN $2 = 'dismissed' THEN $5::date END";

/// A reviewer's verdict on one finding or a bulk selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Confirm or dismiss.
    pub action: ReviewAction,
    /// Why (required for both; a dismissal is 理由付き疑いなし).
    pub reason: String,
    /// For a dismissal: the last day it holds (docs/audit.md). Must be after today (Tokyo).
    pub until: Option<chrono::NaiveDate>,
}

impl Verdict {
    /// Refuses a reason carrying a My Number or control characters, a date on a
    /// confirmation, and a date that is not in the future.
    pub fn check(&self) -> Result<(), DbError> {
        FreeText::Reason.check(&self.reason)?;
        if let Some(until) = self.until {
            if self.action != ReviewAction::Dismiss {
                return Err(DbError::Invalid(
                    "until: only a dismissal holds until a date".into(),
                ));
            }
            if until <= crate::today_tokyo() {
                return Err(DbError::Invalid(format!(
                    "until: {until} is not after today; a dismissal must hold at least until tomorrow"
                )));
            }
        }
        Ok(())
    }
}

/// The findings about one person that still need or had a verdict (open and confirmed),
/// most severe first: what the console's person page shows.
pub fn of_person(conn: &mut PgConnection, person_id: i64) -> Result<Vec<StoredFinding>, DbError> {
    typed(
        diesel::sql_query(format!(
            "{SELECT}
             WHERE f.person_id = $1 AND f.status IN ('open', 'confirmed')
             ORDER BY {QUEUE_ORDER}"
        ))
        .bind::<BigInt, _>(person_id)
        .load(conn)?,
    )
}

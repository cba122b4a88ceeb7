//! Work on many findings at once: assignment to reviewers, and bulk decisions with a preview
//! and an undo (docs/audit.md, "The review queue").
//!
//! A bulk action acts on a [`Selection`] (a queue filter, or ticked findings) and is one row
//! of `finding_bulk_actions`: who, what, the shared reason, the selection, how many. Each
//! finding it changed keeps its state from before in `finding_bulk_items` and records the
//! change in its history with the action's id, so the action can be undone exactly, on the
//! day it was made, for every finding nobody has changed since.
//!
//! Bulk decisions are refused when the selection holds a critical finding: those block online
//! viewing and are decided one by one, on their evidence. They decide open findings only (a
//! confirmed, dismissed or resolved finding in the selection is left as it is, and the preview
//! says so), and they are refused when the selection no longer matches what the preview
//! counted, so a reviewer never decides findings they were not shown.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use shikaku_domain::finding::{FindingKind, FindingStatus, Severity};
use shikaku_domain::free_text::FreeText;

use super::queue::{bind_filter, Filter, QueueOrder, FILTER_SQL};
use super::{Verdict, VERDICT_SET};
use crate::error::DbError;

/// Which findings a bulk action is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every finding the queue filter matches.
    Filter(Filter),
    /// These findings (ticked on the console).
    Ids(Vec<i64>),
}

impl Selection {
    fn filter(&self) -> Filter {
        match self {
            Selection::Filter(f) => f.clone(),
            Selection::Ids(_) => Filter::default(),
        }
    }

    fn ids(&self) -> Option<Vec<i64>> {
        match self {
            Selection::Filter(_) => None,
            Selection::Ids(ids) => Some(ids.clone()),
        }
    }

    /// The selection as recorded with the action.
    fn describe(&self) -> serde_json::Value {
        match self {
            Selection::Filter(f) => f.describe(),
            Selection::Ids(ids) => serde_json::json!({ "ids": ids }),
        }
    }

    /// The selection as the access log records it: the filter, or how many findings were
    /// ticked (their ids are in the bulk action's items, not in the log).
    pub fn logged(&self) -> serde_json::Value {
        match self {
            Selection::Filter(f) => f.describe(),
            Selection::Ids(ids) => serde_json::json!({ "ids": ids.len() }),
        }
    }

    /// The selection's conditions over `findings f` (parameters `$1`–`$6`).
    fn sql(&self) -> String {
        match self {
            Selection::Filter(f) if f.status.is_some() => {
                format!("{} AND {FILTER_SQL}", f.status_sql())
            }
            _ => FILTER_SQL.to_owned(),
        }
    }
}

/// What a bulk decision would do, before it is made.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// Findings in the selection.
    pub selected: i64,
    /// Of those, the open ones a decision would change (pass this back as `expected`).
    pub decidable: i64,
    /// The open ones by kind.
    pub by_kind: Vec<KindCount>,
    /// Critical findings among the open ones: while there are any, the action is refused.
    pub critical: i64,
    /// Why the action would be refused, if it would.
    pub refused: Option<String>,
}

/// How many findings of one kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindCount {
    /// The kind.
    pub kind: FindingKind,
    /// How many.
    pub findings: i64,
}

/// What [`preview`] counts, by kind and severity.
#[derive(QueryableByName)]
struct Tally {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What a bulk decision on `selection` would change, and whether it would be refused.
pub fn preview(conn: &mut PgConnection, selection: &Selection) -> Result<Preview, DbError> {
    let filter = selection.filter();
    let rows: Vec<Tally> = bind_filter!(
        diesel::sql_query(format!(
            "SELECT f.kind, f.severity, f.status, count(*) AS n FROM findings f
              WHERE {} GROUP BY 1, 2, 3",
            selection.sql()
        )),
        filter,
        selection.ids()
    )
    .load(conn)?;
    let mut p = Preview::default();
    for r in rows {
        p.selected += r.n;
        if r.status != FindingStatus::Open.as_str() {
            continue;
        }
        p.decidable += r.n;
        if r.severity == Severity::Critical.as_str() {
            p.critical += r.n;
        }
        let kind = FindingKind::parse(&r.kind)
            .ok_or_else(|| DbError::Invalid(format!("unexpected stored kind {:?}", r.kind)))?;
        match p.by_kind.iter_mut().find(|k| k.kind == kind) {
            Some(k) => k.findings += r.n,
            None => p.by_kind.push(KindCount {
                kind,
                findings: r.n,
            }),
        }
    }
    p.by_kind.sort_by_key(|k| k.kind);
    p.refused = refusal(p.critical, p.decidable);
    Ok(p)
}

fn refusal(critical: i64, decidable: i64) -> Option<String> {
    if critical > 0 {
        Some(format!(
            "{critical} critical finding(s) in the selection: critical findings block online viewing and are decided one by one; narrow the selection (重大な指摘は一件ずつ判断してください)"
        ))
    } else if decidable == 0 {
        Some("no open finding in the selection (対象の未対応の指摘がありません)".to_owned())
    } else {
        None
    }
}

/// What a bulk action did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkOutcome {
    /// The bulk action's id (for its undo, and in each finding's history).
    pub bulk_id: i64,
    /// Findings changed.
    pub findings: i64,
}

/// Decides every open finding of `selection` with one verdict, in one transaction, provided
/// there are exactly `expected` of them (the preview's `decidable`) and none is critical.
pub fn decide(
    conn: &mut PgConnection,
    selection: &Selection,
    verdict: &Verdict,
    expected: i64,
    actor: &str,
) -> Result<BulkOutcome, DbError> {
    verdict.check()?;
    let filter = selection.filter();
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Picked {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = Text)]
            severity: String,
        }
        let picked: Vec<Picked> = bind_filter!(
            diesel::sql_query(format!(
                "SELECT f.id, f.severity FROM findings f
                  WHERE f.status = 'open' AND {} ORDER BY f.id FOR UPDATE",
                selection.sql()
            )),
            filter,
            selection.ids()
        )
        .load(conn)?;
        let critical = picked
            .iter()
            .filter(|p| p.severity == Severity::Critical.as_str())
            .count();
        let decidable = i64::try_from(picked.len()).unwrap_or(i64::MAX);
        if let Some(why) = refusal(i64::try_from(critical).unwrap_or(i64::MAX), decidable) {
            return Err(DbError::Conflict(why));
        }
        if decidable != expected {
            return Err(DbError::Conflict(format!(
                "the selection changed since the preview: {decidable} open finding(s) now, {expected} previewed; preview again"
            )));
        }
        let ids: Vec<i64> = picked.iter().map(|p| p.id).collect();
        let status = verdict.action.status().as_str();
        let bulk_id = record(
            conn,
            status,
            Some(&verdict.reason),
            actor,
            selection,
            decidable,
        )?;
        keep_before(conn, bulk_id, &ids)?;
        diesel::sql_query(format!(
            "WITH changed AS (
                UPDATE findings f SET {VERDICT_SET}
                 WHERE f.id = ANY($1)
                RETURNING f.id
             )
             INSERT INTO finding_events (finding_id, action, reason, actor, bulk_id)
             SELECT id, $2, $3, $4, $6 FROM changed"
        ))
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Text, _>(status)
        .bind::<Text, _>(&verdict.reason)
        .bind::<Text, _>(actor)
        .bind::<Nullable<diesel::sql_types::Date>, _>(verdict.until)
        .bind::<BigInt, _>(bulk_id)
        .execute(conn)?;
        Ok(BulkOutcome {
            bulk_id,
            findings: decidable,
        })
    })
}

/// Who gets which findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// The selection, in queue order, to these reviewers in turn: `each` to the first, the
    /// next `each` to the second, and so on (all of it, split evenly, when `each` is `None`).
    To {
        /// Token names of reviewers (admin or auditor, not revoked).
        reviewers: Vec<String>,
        /// How many each.
        each: Option<i64>,
        /// The queue order the selection is taken in.
        order: QueueOrder,
    },
    /// Nobody: the selection goes back to the shared queue.
    Clear,
}

/// Assigns the selection (module docs): "all open critical of insurer X, 200 each to A and
/// B". Every change of assignee is a history event naming the new reviewer and the bulk
/// action; findings already with that reviewer are left alone.
pub fn assign(
    conn: &mut PgConnection,
    selection: &Selection,
    assignment: &Assignment,
    actor: &str,
) -> Result<BulkOutcome, DbError> {
    let filter = selection.filter();
    conn.transaction(|conn| {
        let (ids, names): (Vec<i64>, Vec<Option<String>>) = match assignment {
            Assignment::Clear => {
                let ids = selected_ids(conn, selection, &filter, QueueOrder::Severity, None)?;
                let names = vec![None; ids.len()];
                (ids, names)
            }
            Assignment::To {
                reviewers,
                each,
                order,
            } => {
                check_reviewers(conn, reviewers)?;
                if let Some(n) = each {
                    if *n < 1 {
                        return Err(DbError::Invalid("each: must be at least 1".into()));
                    }
                }
                let limit = each.map(|n| n.saturating_mul(reviewers.len() as i64));
                let ids = selected_ids(conn, selection, &filter, *order, limit)?;
                let per = match each {
                    Some(n) => usize::try_from(*n).unwrap_or(usize::MAX),
                    None => ids.len().div_ceil(reviewers.len()).max(1),
                };
                let names = (0..ids.len())
                    .map(|i| Some(reviewers[(i / per).min(reviewers.len() - 1)].clone()))
                    .collect();
                (ids, names)
            }
        };
        let bulk_id = record(
            conn,
            "assigned",
            None,
            actor,
            selection,
            i64::try_from(ids.len()).unwrap_or(i64::MAX),
        )?;
        keep_before(conn, bulk_id, &ids)?;
        let changed = diesel::sql_query(
            "WITH wanted AS (
                SELECT * FROM unnest($1::bigint[], $2::text[]) AS w(id, assignee)
             ), changed AS (
                UPDATE findings f SET assignee = w.assignee
                  FROM wanted w
                 WHERE f.id = w.id AND f.assignee IS DISTINCT FROM w.assignee
                RETURNING f.id, w.assignee
             )
             INSERT INTO finding_events (finding_id, action, actor, bulk_id, assignee)
             SELECT id, CASE WHEN assignee IS NULL THEN 'unassigned' ELSE 'assigned' END,
                    $3, $4, assignee
               FROM changed",
        )
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Nullable<Text>>, _>(&names)
        .bind::<Text, _>(actor)
        .bind::<BigInt, _>(bulk_id)
        .execute(conn)?;
        let changed = i64::try_from(changed).unwrap_or(i64::MAX);
        diesel::sql_query("UPDATE finding_bulk_actions SET findings = $2 WHERE id = $1")
            .bind::<BigInt, _>(bulk_id)
            .bind::<BigInt, _>(changed)
            .execute(conn)?;
        Ok(BulkOutcome {
            bulk_id,
            findings: changed,
        })
    })
}

/// The selection's ids in `order`, locked, at most `limit`.
fn selected_ids(
    conn: &mut PgConnection,
    selection: &Selection,
    filter: &Filter,
    order: QueueOrder,
    limit: Option<i64>,
) -> Result<Vec<i64>, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let (column, _, _) = order.key();
    let rows: Vec<Id> = bind_filter!(
        diesel::sql_query(format!(
            "SELECT f.id FROM findings f WHERE {}
              ORDER BY {column}, f.id LIMIT $7 FOR UPDATE",
            selection.sql()
        )),
        filter,
        selection.ids()
    )
    .bind::<Nullable<BigInt>, _>(limit)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Refuses a reviewer name that is not a live admin or auditor token.
fn check_reviewers(conn: &mut PgConnection, reviewers: &[String]) -> Result<(), DbError> {
    if reviewers.is_empty() {
        return Err(DbError::Invalid("reviewers: name at least one".into()));
    }
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let known: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT name FROM api_tokens
          WHERE name = ANY($1) AND revoked_at IS NULL AND role IN ('admin', 'auditor')",
    )
    .bind::<Array<Text>, _>(reviewers)
    .load(conn)?;
    for r in reviewers {
        if !known.iter().any(|k| &k.name == r) {
            FreeText::Reason.check(r)?;
            return Err(DbError::Invalid(format!(
                "reviewers: {r:?} is not an admin or auditor with a live token"
            )));
        }
    }
    Ok(())
}

/// Records a bulk action; returns its id.
fn record(
    conn: &mut PgConnection,
    action: &str,
    reason: Option<&str>,
    actor: &str,
    selection: &Selection,
    findings: i64,
) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "INSERT INTO finding_bulk_actions (action, reason, actor, selection, findings)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind::<Text, _>(action)
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Text, _>(actor)
    .bind::<Jsonb, _>(selection.describe())
    .bind::<BigInt, _>(findings)
    .get_result::<Id>(conn)?
    .id)
}

/// Keeps each finding's review state from before the bulk action, for its undo.
fn keep_before(conn: &mut PgConnection, bulk_id: i64, ids: &[i64]) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO finding_bulk_items (bulk_id, finding_id, status, review_reason, reviewed_by,
                                         reviewed_at, assignee, dismissed_basis, dismissed_until)
         SELECT $1, f.id, f.status, f.review_reason, f.reviewed_by, f.reviewed_at, f.assignee,
                f.dismissed_basis, f.dismissed_until
           FROM findings f WHERE f.id = ANY($2)",
    )
    .bind::<BigInt, _>(bulk_id)
    .bind::<Array<BigInt>, _>(ids)
    .execute(conn)?;
    Ok(())
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Undone {
    /// The bulk action undone.
    pub bulk_id: i64,
    /// Findings put back as they were.
    pub restored: i64,
    /// Findings left as they are, because something changed them after the action (a
    /// reviewer, or an audit run that resolved or re-opened them).
    pub kept: i64,
}

/// Undoes bulk action `bulk_id`, on the day (Tokyo) it was made: every finding it changed
/// that nothing has changed since goes back to its state before, with an `undone` event.
pub fn undo(conn: &mut PgConnection, bulk_id: i64, actor: &str) -> Result<Undone, DbError> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Action {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            undone: bool,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            today: bool,
            #[diesel(sql_type = BigInt)]
            items: i64,
        }
        let action: Action = diesel::sql_query(
            "SELECT b.undone_at IS NOT NULL AS undone,
                    (b.at AT TIME ZONE 'Asia/Tokyo')::date
                      = (clock_timestamp() AT TIME ZONE 'Asia/Tokyo')::date AS today,
                    (SELECT count(*) FROM finding_bulk_items i WHERE i.bulk_id = b.id) AS items
               FROM finding_bulk_actions b WHERE b.id = $1 FOR UPDATE",
        )
        .bind::<BigInt, _>(bulk_id)
        .get_result::<Action>(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no bulk action {bulk_id}")))?;
        if action.undone {
            return Err(DbError::Conflict(format!(
                "bulk action {bulk_id} is already undone"
            )));
        }
        if !action.today {
            return Err(DbError::Conflict(format!(
                "bulk action {bulk_id} was not made today: a bulk action can be undone only on its day (Asia/Tokyo); decide the findings again one by one"
            )));
        }
        // A finding is restored only if this action's event is still its latest.
        let restored = diesel::sql_query(
            "WITH untouched AS (
                SELECT i.* FROM finding_bulk_items i
                  JOIN findings f ON f.id = i.finding_id
                 WHERE i.bulk_id = $1
                   AND (SELECT e.bulk_id FROM finding_events e WHERE e.finding_id = i.finding_id
                         ORDER BY e.id DESC LIMIT 1) IS NOT DISTINCT FROM $1
                   FOR UPDATE OF f
             ), restored AS (
                UPDATE findings f
                   SET status = u.status, review_reason = u.review_reason,
                       reviewed_by = u.reviewed_by, reviewed_at = u.reviewed_at,
                       assignee = u.assignee, dismissed_basis = u.dismissed_basis,
                       dismissed_until = u.dismissed_until
                  FROM untouched u WHERE f.id = u.finding_id
                RETURNING f.id
             )
             INSERT INTO finding_events (finding_id, action, reason, actor, bulk_id)
             SELECT id, 'undone', 'bulk action ' || $1 || ' undone', $2, $1 FROM restored",
        )
        .bind::<BigInt, _>(bulk_id)
        .bind::<Text, _>(actor)
        .execute(conn)?;
        diesel::sql_query(
            "UPDATE finding_bulk_actions SET undone_at = clock_timestamp(), undone_by = $2
              WHERE id = $1",
        )
        .bind::<BigInt, _>(bulk_id)
        .bind::<Text, _>(actor)
        .execute(conn)?;
        let restored = i64::try_from(restored).unwrap_or(i64::MAX);
        Ok(Undone {
            bulk_id,
            restored,
            kept: action.items - restored,
        })
    })
}

/// A recent bulk action, as the console lists them for undo.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BulkAction {
    /// Its id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// `confirmed`, `dismissed` or `assigned`.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// The shared reason of a decision.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// Who made it.
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// Findings it changed.
    #[diesel(sql_type = BigInt)]
    pub findings: i64,
    /// When.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: chrono::DateTime<chrono::Utc>,
    /// When it was undone, if it was.
    #[diesel(sql_type = Nullable<diesel::sql_types::Timestamptz>)]
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Today's bulk actions (Tokyo), newest first: the ones that can still be undone.
pub fn today(conn: &mut PgConnection) -> Result<Vec<BulkAction>, DbError> {
    Ok(diesel::sql_query(
        "SELECT id, action, reason, actor, findings, at, undone_at FROM finding_bulk_actions
          WHERE at >= (date_trunc('day', clock_timestamp() AT TIME ZONE 'Asia/Tokyo')
                       AT TIME ZONE 'Asia/Tokyo')
          ORDER BY id DESC LIMIT 50",
    )
    .load(conn)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_critical_finding_or_an_empty_selection_refuses_the_action() {
        assert!(refusal(1, 10).unwrap().contains("critical"));
        assert!(refusal(0, 0).unwrap().contains("no open finding"));
        assert_eq!(refusal(0, 3), None);
    }
}

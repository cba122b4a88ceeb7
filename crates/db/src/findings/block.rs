//! Critical findings block online viewing of their linkage: the rule that a mismatch blocks
//! the record until the insurer corrects it or confirms "no error, with a reason"
//! (理由付き疑いなし), kept in the linkages' status (docs/audit.md, "Blocking").
//!
//! A finding *blocks* while it is critical, open or confirmed, and about a linkage. [`settle`]
//! makes the linkages agree with that, set-based, in the caller's transaction:
//!
//! 1. a linkage suspended by a finding that no longer blocks (dismissed, resolved, no longer
//!    critical) passes to the next finding that blocks it, if any, else becomes active again;
//! 2. an active linkage with a blocking finding is suspended and names the finding
//!    (`linkages.suspended_by_finding`; the reason reads `finding N`).
//!
//! Every change is a `linkage_events` row. A revoked linkage is never touched, and a linkage a
//! reviewer suspended by hand (no finding named) is neither re-suspended nor lifted here. A
//! dismissed finding never blocks again, so a re-run does not re-suspend what a reviewer
//! cleared. The audit run settles every linkage after its merge; a review settles the one
//! linkage it concerns.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::error::DbError;

/// What a blocking finding is, in SQL over `findings` aliased `f`: the one definition every
/// statement here shares, and which the partial index `findings_blocking` serves.
const BLOCKS: &str = "f.severity = 'critical' AND f.status IN ('open', 'confirmed')";

/// The linkages [`settle`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every linkage: after an audit run's merge.
    All,
    /// One linkage: after a review of a finding about it.
    Linkage(i64),
}

impl Scope {
    fn id(self) -> Option<i64> {
        match self {
            Scope::All => None,
            Scope::Linkage(id) => Some(id),
        }
    }
}

/// What [`settle`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Active linkages now suspended by a finding.
    pub suspended: u64,
    /// Linkages whose finding stopped blocking and that passed to another blocking finding.
    pub transferred: u64,
    /// Linkages whose finding stopped blocking and that are active again.
    pub restored: u64,
}

/// Makes the linkages in `scope` agree with their blocking findings (module docs). `run_id`
/// names the audit run in the events, when a run is settling.
pub fn settle(
    conn: &mut PgConnection,
    scope: Scope,
    actor: &str,
    run_id: Option<i64>,
) -> Result<Settled, DbError> {
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        transferred: i64,
        #[diesel(sql_type = BigInt)]
        restored: i64,
    }
    // Lift first, so that a linkage whose finding was dismissed while another still blocks it
    // passes to that one instead of being restored and suspended again.
    let lifted: Counts = diesel::sql_query(format!(
        "WITH stale AS (
            SELECT l.id, l.suspended_by_finding AS old, f.status AS old_status,
                   f.severity AS old_severity,
                   (SELECT min(f.id) FROM findings f WHERE f.linkage_id = l.id AND {BLOCKS}) AS next
              FROM linkages l
              JOIN findings f ON f.id = l.suspended_by_finding
             WHERE l.suspended_by_finding IS NOT NULL
               AND ($1::bigint IS NULL OR l.id = $1)
               AND NOT ({BLOCKS} AND f.linkage_id = l.id)
         ), changed AS (
            UPDATE linkages l
               SET status = CASE WHEN s.next IS NULL THEN 'active' ELSE 'suspended' END,
                   suspended_by_finding = s.next, updated_at = now()
              FROM stale s
             WHERE l.id = s.id AND l.status = 'suspended' AND l.suspended_by_finding = s.old
            RETURNING l.id, s.old, s.next, s.old_status, s.old_severity
         ), events AS (
            INSERT INTO linkage_events (linkage_id, action, reason, actor, details)
            SELECT id,
                   CASE WHEN next IS NULL THEN 'restored' ELSE 'suspended' END,
                   CASE WHEN next IS NOT NULL THEN 'finding ' || next
                        WHEN old_status = 'dismissed'
                             THEN 'finding ' || old || ' dismissed (理由付き疑いなし)'
                        WHEN old_status = 'resolved' THEN 'finding ' || old || ' resolved'
                        ELSE 'finding ' || old || ' no longer critical' END,
                   $2,
                   jsonb_strip_nulls(jsonb_build_object(
                       'finding_id', coalesce(next, old), 'lifted_finding', old,
                       'lifted_status', old_status, 'lifted_severity', old_severity,
                       'run_id', $3::bigint))
              FROM changed
            RETURNING action
         )
         SELECT count(*) FILTER (WHERE action = 'suspended') AS transferred,
                count(*) FILTER (WHERE action = 'restored') AS restored
           FROM events"
    ))
    .bind::<Nullable<BigInt>, _>(scope.id())
    .bind::<Text, _>(actor)
    .bind::<Nullable<BigInt>, _>(run_id)
    .get_result(conn)?;

    // Only an active linkage is suspended: a revoked one is history, and one a reviewer
    // suspended by hand stays theirs.
    let suspended = diesel::sql_query(format!(
        "WITH blocking AS (
            SELECT f.linkage_id, min(f.id) AS finding_id
              FROM findings f
             WHERE {BLOCKS} AND f.linkage_id IS NOT NULL
               AND ($1::bigint IS NULL OR f.linkage_id = $1)
             GROUP BY f.linkage_id
         ), blocked AS (
            UPDATE linkages l
               SET status = 'suspended', suspended_by_finding = b.finding_id, updated_at = now()
              FROM blocking b
             WHERE l.id = b.linkage_id AND l.status = 'active'
            RETURNING l.id, b.finding_id
         )
         INSERT INTO linkage_events (linkage_id, action, reason, actor, details)
         SELECT id, 'suspended', 'finding ' || finding_id, $2,
                jsonb_strip_nulls(jsonb_build_object('finding_id', finding_id,
                                                     'run_id', $3::bigint))
           FROM blocked"
    ))
    .bind::<Nullable<BigInt>, _>(scope.id())
    .bind::<Text, _>(actor)
    .bind::<Nullable<BigInt>, _>(run_id)
    .execute(conn)?;

    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Settled {
        suspended: u64::try_from(suspended).unwrap_or(u64::MAX),
        transferred: count(lifted.transferred),
        restored: count(lifted.restored),
    })
}

/// Dismisses, as 理由付き疑いなし with `reason`, every finding that blocks linkage `id`: what
/// confirming the linkage's identity means for its findings (the five items were checked and
/// the number is this person's), so that the next run does not block it again. Returns the
/// findings dismissed.
pub fn dismiss_blocking(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<Vec<i64>, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(format!(
        "WITH dismissed AS (
            UPDATE findings f SET status = 'dismissed', review_reason = $2, reviewed_by = $3,
                   reviewed_at = clock_timestamp(), dismissed_basis = f.basis
             WHERE f.linkage_id = $1 AND {BLOCKS}
            RETURNING f.id
         ), events AS (
            INSERT INTO finding_events (finding_id, action, reason, actor)
            SELECT id, 'dismissed', $2, $3 FROM dismissed
         )
         SELECT id FROM dismissed ORDER BY id"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(actor)
    .load::<Id>(conn)?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// Resolves every open or confirmed finding about linkage `id`, which a correction has just
/// revoked: the wrong link is gone, so the problem is fixed now rather than at the next run
/// (which would no longer detect it: revoked linkages are not audited). Returns the findings
/// resolved.
pub fn resolve_corrected(
    conn: &mut PgConnection,
    id: i64,
    replaced_by: i64,
    actor: &str,
) -> Result<Vec<i64>, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    Ok(diesel::sql_query(
        "WITH resolved AS (
            UPDATE findings f SET status = 'resolved'
             WHERE f.linkage_id = $1 AND f.status IN ('open', 'confirmed')
            RETURNING f.id
         ), events AS (
            INSERT INTO finding_events (finding_id, action, reason, actor)
            SELECT id, 'resolved',
                   'linkage ' || $1 || ' corrected: revoked and replaced by linkage ' || $2, $3
              FROM resolved
         )
         SELECT id FROM resolved ORDER BY id",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(replaced_by)
    .bind::<Text, _>(actor)
    .load::<Id>(conn)?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

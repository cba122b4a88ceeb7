//! How an audit run's findings reach the queue: staged by binary `COPY`, then merged with a few
//! set-based statements keyed on the fingerprint, so a re-run updates `last_seen` (and the
//! stored comparison) and keeps the review status, and a problem no longer detected is
//! resolved naming the run. A dismissal whose date has passed, or whose judged values
//! ([`Judged`]) changed, is re-opened saying why. The same transaction then settles which
//! linkages critical findings block ([`super::block`]).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Text};
use shikaku_domain::finding::Finding;
use shikaku_domain::judged::Judged;

use super::block::{self, Scope, Settled};
use crate::error::DbError;

/// Private so that diesel's generated column types need no documentation of their own.
mod stage {
    diesel::table! {
        /// Temporary staging table for one run's findings.
        stage_findings (fingerprint) {
            fingerprint -> Text,
            kind -> Text,
            severity -> Text,
            person_id -> Int8,
            linkage_id -> Nullable<Int8>,
            mn_last4 -> Text,
            fields -> Text,
            detail -> Text,
            comparison -> Nullable<Jsonb>,
            p_other_person -> Nullable<Double>,
            evidence -> Nullable<Jsonb>,
            basis -> Jsonb,
        }
    }
}
use stage::stage_findings;

#[derive(Insertable)]
#[diesel(table_name = stage_findings)]
#[diesel(treat_none_as_default_value = false)]
struct StageFinding<'a> {
    fingerprint: &'a str,
    kind: &'a str,
    severity: &'a str,
    person_id: i64,
    linkage_id: Option<i64>,
    mn_last4: &'a str,
    fields: String,
    detail: &'a str,
    comparison: Option<serde_json::Value>,
    p_other_person: Option<f64>,
    evidence: Option<serde_json::Value>,
    basis: serde_json::Value,
}

/// Opens the staging table for a run (inside the caller's transaction).
pub fn begin(conn: &mut PgConnection) -> Result<(), DbError> {
    conn.batch_execute(
        r#"CREATE TEMP TABLE stage_findings (
               fingerprint text COLLATE "C" NOT NULL,
               kind text NOT NULL,
               severity text NOT NULL,
               person_id bigint NOT NULL,
               linkage_id bigint,
               mn_last4 text NOT NULL,
               fields text NOT NULL,
               detail text NOT NULL,
               comparison jsonb,
               p_other_person double precision,
               evidence jsonb,
               basis jsonb NOT NULL
           ) ON COMMIT DROP"#,
    )?;
    Ok(())
}

/// Stages a batch of findings.
pub fn stage(conn: &mut PgConnection, findings: &[Finding]) -> Result<(), DbError> {
    if findings.is_empty() {
        return Ok(());
    }
    let rows: Vec<StageFinding<'_>> = findings
        .iter()
        .map(|f| {
            Ok(StageFinding {
                fingerprint: &f.fingerprint,
                kind: f.kind.as_str(),
                severity: f.severity.as_str(),
                person_id: f.person_id,
                linkage_id: f.linkage_id,
                mn_last4: &f.last4,
                fields: f.fields_csv(),
                detail: &f.detail,
                comparison: (!f.comparison.is_empty())
                    .then(|| serde_json::to_value(&f.comparison))
                    .transpose()
                    .map_err(|e| DbError::Invalid(format!("cannot store a comparison: {e}")))?,
                p_other_person: f.evidence.as_ref().map(|e| e.p_other_person),
                evidence: f
                    .evidence
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| DbError::Invalid(format!("cannot store evidence: {e}")))?,
                basis: serde_json::to_value(Judged::of(f))
                    .map_err(|e| DbError::Invalid(format!("cannot store a basis: {e}")))?,
            })
        })
        .collect::<Result<_, DbError>>()?;
    diesel::copy_from(stage_findings::table)
        .from_insertable(&rows)
        .execute(conn)?;
    Ok(())
}

/// What the merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Findings seen for the first time.
    pub new: u64,
    /// Findings seen before (including reopened ones).
    pub seen_again: u64,
    /// Resolved findings that came back and were reopened.
    pub reopened: u64,
    /// Dismissals re-opened because their date passed or what they judged changed.
    pub dismissals_reopened: u64,
    /// Open or confirmed findings this run no longer detected, now resolved.
    pub resolved: u64,
    /// Linkages suspended by a critical finding, or released from one, as a result.
    pub linkages: Settled,
}

/// Merges the staged findings into `findings` for run `run_id`, then suspends the linkages of
/// critical findings and lifts the blocks of findings no longer critical, open or confirmed
/// ([`block::settle`] over every linkage; set-based, a few statements whatever the size).
pub fn merge(conn: &mut PgConnection, run_id: i64, actor: &str) -> Result<MergeCounts, DbError> {
    conn.batch_execute(
        // Statistics of the join keys only: sampling the JSON columns (comparison, evidence,
        // basis) took 0.4 s at 22,744 findings, and no plan filters on them.
        "ANALYZE stage_findings (fingerprint, person_id, linkage_id);
         DELETE FROM stage_findings a USING stage_findings b
          WHERE a.fingerprint = b.fingerprint AND a.ctid < b.ctid;",
    )?;
    let reopened = diesel::sql_query(
        "WITH reopened AS (
            UPDATE findings f SET status = 'open', resolved_run = NULL
            FROM stage_findings s
            WHERE f.fingerprint = s.fingerprint AND f.status = 'resolved'
            RETURNING f.id
         )
         INSERT INTO finding_events (finding_id, action, reason, actor, run_id)
         SELECT id, 'reopened', 'detected again', $2, $1 FROM reopened",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    let dismissals_reopened = reopen_dismissals(conn, run_id, actor)?;
    let seen_again = diesel::sql_query(
        "UPDATE findings f
         SET severity = s.severity, linkage_id = s.linkage_id, mn_last4 = s.mn_last4,
             fields = s.fields, detail = s.detail, comparison = s.comparison,
             p_other_person = s.p_other_person, evidence = s.evidence, basis = s.basis,
             last_seen_run = $1,
             last_seen = clock_timestamp()
         FROM stage_findings s
         WHERE f.fingerprint = s.fingerprint",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    let new = diesel::sql_query(
        "WITH added AS (
            INSERT INTO findings (fingerprint, kind, severity, person_id, insurer_number,
                                  linkage_id, mn_last4, fields, detail, comparison,
                                  p_other_person, evidence, basis,
                                  first_seen_run, last_seen_run, first_seen, last_seen)
            SELECT s.fingerprint, s.kind, s.severity, s.person_id, p.insurer_number,
                   s.linkage_id, s.mn_last4, s.fields, s.detail, s.comparison,
                   s.p_other_person, s.evidence, s.basis, $1, $1,
                   clock_timestamp(), clock_timestamp()
            FROM stage_findings s JOIN persons p ON p.id = s.person_id
            WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.fingerprint = s.fingerprint)
            ORDER BY s.fingerprint
            RETURNING id
         )
         INSERT INTO finding_events (finding_id, action, actor, run_id)
         SELECT id, 'detected', $2, $1 FROM added",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    // Dismissed findings stay dismissed whatever happens: the reviewer's judgement stands.
    let resolved = diesel::sql_query(
        "WITH gone AS (
            UPDATE findings f SET status = 'resolved', resolved_run = $1
            WHERE f.status IN ('open', 'confirmed') AND f.last_seen_run <> $1
            RETURNING f.id
         )
         INSERT INTO finding_events (finding_id, action, reason, actor, run_id)
         SELECT id, 'resolved', 'no longer detected by audit run ' || $1, $2, $1 FROM gone",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    let linkages = block::settle(conn, Scope::All, actor, Some(run_id))?;
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Ok(MergeCounts {
        new: count(new),
        seen_again: count(seen_again),
        reopened: count(reopened),
        dismissals_reopened,
        resolved: count(resolved),
        linkages,
    })
}

/// Re-opens the dismissals this run detects again whose date has passed (today in Tokyo is
/// after `dismissed_until`: the reviewer's date is a calendar date, not the run's reference
/// date) or whose judged values differ from what the run saw, with an event saying
/// which (docs/audit.md, "Dismissals that expire or re-open"). A dismissal recorded before
/// judged values were kept adopts what this run sees. Returns how many were re-opened.
fn reopen_dismissals(conn: &mut PgConnection, run_id: i64, actor: &str) -> Result<u64, DbError> {
    let expired = diesel::sql_query(
        "WITH due AS (
            SELECT f.id, f.dismissed_until AS until
              FROM findings f JOIN stage_findings s ON s.fingerprint = f.fingerprint
             WHERE f.status = 'dismissed'
               AND f.dismissed_until < (clock_timestamp() AT TIME ZONE 'Asia/Tokyo')::date
         ), reopened AS (
            UPDATE findings f SET status = 'open', dismissed_until = NULL, dismissed_basis = NULL
              FROM due WHERE f.id = due.id
            RETURNING f.id, due.until
         )
         INSERT INTO finding_events (finding_id, action, reason, actor, run_id)
         SELECT id, 'reopened',
                '理由付き疑いなしの期限切れ / the dismissal held until ' || until, $2, $1
           FROM reopened",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;

    diesel::sql_query(
        "UPDATE findings f SET dismissed_basis = s.basis FROM stage_findings s
          WHERE s.fingerprint = f.fingerprint AND f.status = 'dismissed'
            AND f.dismissed_basis IS NULL",
    )
    .execute(conn)?;

    #[derive(QueryableByName)]
    struct Differs {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Jsonb)]
        then: serde_json::Value,
        #[diesel(sql_type = Jsonb)]
        now: serde_json::Value,
    }
    let differs: Vec<Differs> = diesel::sql_query(
        "SELECT f.id, f.dismissed_basis AS then, s.basis AS now
           FROM findings f JOIN stage_findings s ON s.fingerprint = f.fingerprint
          WHERE f.status = 'dismissed' AND f.dismissed_basis <> s.basis",
    )
    .load(conn)?;
    let judged = |v: serde_json::Value| {
        serde_json::from_value::<Judged>(v)
            .map_err(|e| DbError::Invalid(format!("unexpected stored basis: {e}")))
    };
    let (mut ids, mut reasons) = (Vec::new(), Vec::new());
    for d in differs {
        let changes = judged(d.now)?.changes_since(&judged(d.then)?);
        if !changes.is_empty() {
            ids.push(d.id);
            reasons.push(Judged::reopen_reason(&changes));
        }
    }
    let changed = if ids.is_empty() {
        0
    } else {
        diesel::sql_query(
            "WITH changed AS (
                SELECT * FROM unnest($3::bigint[], $4::text[]) AS c(id, reason)
             ), reopened AS (
                UPDATE findings f
                   SET status = 'open', dismissed_until = NULL, dismissed_basis = NULL
                  FROM changed c WHERE f.id = c.id AND f.status = 'dismissed'
                RETURNING f.id, c.reason
             )
             INSERT INTO finding_events (finding_id, action, reason, actor, run_id)
             SELECT id, 'reopened', reason, $2, $1 FROM reopened",
        )
        .bind::<BigInt, _>(run_id)
        .bind::<Text, _>(actor)
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Text>, _>(&reasons)
        .execute(conn)?
    };
    Ok(u64::try_from(expired + changed).unwrap_or(u64::MAX))
}

//! `audit_runs`: one row per `shikaku audit run`, recorded before the work starts (so a crashed
//! run leaves a trace), finished with its counts and timings, or marked failed. Runs are
//! history: the database refuses to delete them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Jsonb, Nullable};
use shikaku_domain::evidence::ModelParameters;
use shikaku_domain::finding::{FindingKind, VariantTableInfo};

use crate::error::DbError;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct MaybeId {
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
}

/// The resident snapshot an audit compares against: the latest one, if any was imported.
pub fn latest_snapshot(conn: &mut PgConnection) -> Result<Option<i64>, DbError> {
    Ok(
        diesel::sql_query("SELECT max(id) AS id FROM resident_snapshots")
            .get_result::<MaybeId>(conn)?
            .id,
    )
}

/// The index key the linkages are under, checked to be the one the latest snapshot was
/// imported under (the audit joins the two by blind index; under different keys nothing would
/// match and every number would look absent from the register).
pub fn comparable_index(conn: &mut PgConnection, snapshot: Option<i64>) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        index_key_id: i32,
    }
    let linkages = crate::keys::linkages_index_key(conn)?.ok_or_else(|| {
        DbError::Invalid(
            "the linkages are being re-indexed: finish `shikaku keys rotate-index` first".into(),
        )
    })?;
    if let Some(id) = snapshot {
        let k: Key = diesel::sql_query("SELECT index_key_id FROM resident_snapshots WHERE id = $1")
            .bind::<BigInt, _>(id)
            .get_result(conn)?;
        if u32::try_from(k.index_key_id).ok() != Some(linkages) {
            return Err(DbError::Invalid(format!(
                "register snapshot {id} is indexed under index key {}, the linkages under \
                 {linkages}: import a new register extract before auditing",
                k.index_key_id
            )));
        }
    }
    Ok(())
}

/// Records the start of a run (committed at once, outside the run's transaction) and returns
/// its id. `parameters` are the run's settings as shown to operators.
pub fn start(
    conn: &mut PgConnection,
    run_date: NaiveDate,
    snapshot_id: Option<i64>,
    parameters: &serde_json::Value,
    variant_table: &VariantTableInfo,
) -> Result<i64, DbError> {
    let table = serde_json::to_value(variant_table)
        .map_err(|e| DbError::Invalid(format!("cannot record the variant table: {e}")))?;
    Ok(diesel::sql_query(
        "INSERT INTO audit_runs (run_date, snapshot_id, parameters, variant_table)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind::<Date, _>(run_date)
    .bind::<Nullable<BigInt>, _>(snapshot_id)
    .bind::<Jsonb, _>(parameters)
    .bind::<Jsonb, _>(table)
    .get_result::<Id>(conn)?
    .id)
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Linkages checked.
    pub linkages_checked: u64,
    /// Findings detected in the run.
    pub detected: u64,
    /// Findings seen for the first time.
    pub new: u64,
    /// Findings resolved by the run.
    pub resolved: u64,
    /// Findings by `kind/severity`.
    pub counts: serde_json::Value,
    /// Wall time of each stage.
    pub timings: serde_json::Value,
    /// The evidence model's parameters the run scored with.
    pub model: ModelParameters,
}

/// Marks a run finished with its counts (inside the run's transaction, so both commit
/// together).
pub fn finish(conn: &mut PgConnection, run_id: i64, f: &Finished) -> Result<(), DbError> {
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    diesel::sql_query(
        "UPDATE audit_runs SET status = 'finished', finished_at = clock_timestamp(),
                linkages_checked = $2, findings_detected = $3, findings_new = $4,
                findings_resolved = $5, counts = $6, timings = $7, model = $8
         WHERE id = $1",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<BigInt, _>(to_i64(f.linkages_checked))
    .bind::<BigInt, _>(to_i64(f.detected))
    .bind::<BigInt, _>(to_i64(f.new))
    .bind::<BigInt, _>(to_i64(f.resolved))
    .bind::<Jsonb, _>(&f.counts)
    .bind::<Jsonb, _>(&f.timings)
    .bind::<Jsonb, _>(
        serde_json::to_value(&f.model)
            .map_err(|e| DbError::Invalid(format!("cannot record the model: {e}")))?,
    )
    .execute(conn)?;
    Ok(())
}

/// The evidence model a run scored with; `None` for runs from before it was recorded (or
/// unfinished ones).
pub fn model(conn: &mut PgConnection, run_id: i64) -> Result<Option<ModelParameters>, DbError> {
    #[derive(QueryableByName)]
    struct Model {
        #[diesel(sql_type = Nullable<Jsonb>)]
        model: Option<serde_json::Value>,
    }
    let m: Option<Model> = diesel::sql_query("SELECT model FROM audit_runs WHERE id = $1")
        .bind::<BigInt, _>(run_id)
        .get_result(conn)
        .optional()?;
    m.and_then(|m| m.model)
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| DbError::Invalid(format!("unexpected stored model: {e}")))
}

/// Marks a run failed, so it does not look alive.
pub fn fail(conn: &mut PgConnection, run_id: i64) -> Result<(), DbError> {
    diesel::sql_query(
        "UPDATE audit_runs SET status = 'failed', finished_at = clock_timestamp() WHERE id = $1",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    Ok(())
}

/// The variant table a run compared names with; `None` for runs from before it was recorded.
pub fn variant_table(
    conn: &mut PgConnection,
    run_id: i64,
) -> Result<Option<VariantTableInfo>, DbError> {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = Nullable<Jsonb>)]
        variant_table: Option<serde_json::Value>,
    }
    let row = diesel::sql_query("SELECT variant_table FROM audit_runs WHERE id = $1")
        .bind::<BigInt, _>(run_id)
        .get_result::<Table>(conn)
        .optional()?;
    Ok(row
        .and_then(|r| r.variant_table)
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// One audit run's findings by kind, for the chart of findings across runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCounts {
    /// Run id.
    pub id: i64,
    /// The day the run judged.
    pub run_date: NaiveDate,
    /// Findings detected, by kind (all severities together).
    pub by_kind: BTreeMap<FindingKind, u64>,
}

/// The last `n` finished runs, oldest first.
pub fn recent(conn: &mut PgConnection, n: i64) -> Result<Vec<RunCounts>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Date)]
        run_date: NaiveDate,
        #[diesel(sql_type = Jsonb)]
        counts: serde_json::Value,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id, run_date, counts FROM audit_runs WHERE finished_at IS NOT NULL
         ORDER BY id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(n)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .rev()
        .map(|r| {
            let mut by_kind = BTreeMap::new();
            // Stored as {"kind/severity": n}; a key this version does not know is skipped.
            if let Some(map) = r.counts.as_object() {
                for (key, n) in map {
                    let kind = key.split('/').next().and_then(FindingKind::parse);
                    if let (Some(kind), Some(n)) = (kind, n.as_u64()) {
                        *by_kind.entry(kind).or_insert(0) += n;
                    }
                }
            }
            RunCounts {
                id: r.id,
                run_date: r.run_date,
                by_kind,
            }
        })
        .collect())
}

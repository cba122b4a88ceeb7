//! The nightly run: the thin I/O layer around the pure engine. It records the run, streams
//! every audited linkage out of PostgreSQL, checks batches on a rayon pool, and merges the
//! findings by fingerprint, all in one transaction (a failed run changes no finding).

pub mod persist;
pub mod read;
pub mod review;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Jsonb, Nullable};
use shikaku_db::DbError;

use crate::engine::{audit_groups, check_person_numbers, AuditContext, NumberGroup};
use crate::finding::Finding;
use persist::MergeCounts;

/// Single-number groups checked together: enough work to share between threads, little memory.
const BATCH: usize = 16_384;

/// How to run.
pub struct RunOptions<'a> {
    /// Worker threads for the check stage (default: all cores).
    pub threads: Option<usize>,
    /// Who started the run, for the review history.
    pub actor: &'a str,
    /// Called with (rows read, rows expected) as the stream advances.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

/// Wall time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Streaming and decoding rows.
    pub read: Duration,
    /// The engine.
    pub check: Duration,
    /// Staging and merging findings.
    pub write: Duration,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The `audit_runs` row.
    pub run_id: i64,
    /// The resident snapshot compared against (`None`: no register imported yet).
    pub snapshot_id: Option<i64>,
    /// Linkages checked.
    pub linkages_checked: u64,
    /// Findings detected in this run, by (kind, severity).
    pub counts: BTreeMap<(String, String), u64>,
    /// How the findings merged with earlier runs.
    pub merge: MergeCounts,
    /// Time per stage.
    pub timings: Timings,
}

impl RunSummary {
    /// Findings detected in this run.
    pub fn detected(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The counts as a JSON object keyed `kind/severity`, as stored in `audit_runs.counts`.
    pub fn counts_json(&self) -> serde_json::Value {
        self.counts
            .iter()
            .map(|((kind, severity), n)| (format!("{kind}/{severity}"), serde_json::json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The write side (diesel) failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The read side failed.
    #[error(transparent)]
    Read(#[from] read::ReadError),
    /// The streaming connection could not be opened.
    #[error("cannot open the streaming connection: {0}")]
    Connect(postgres::Error),
    /// The thread pool could not be built.
    #[error("cannot start the worker threads: {0}")]
    Threads(String),
}

impl From<diesel::result::Error> for RunError {
    fn from(e: diesel::result::Error) -> Self {
        RunError::Db(DbError::Query(e))
    }
}

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

/// Runs the audit on the database at `url` with the engine settings in `ctx`.
pub fn run_audit(
    url: &str,
    ctx: &AuditContext,
    options: &RunOptions<'_>,
) -> Result<RunSummary, RunError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .build()
        .map_err(|e| RunError::Threads(e.to_string()))?;
    let threads = pool.current_num_threads();
    let mut conn = shikaku_db::connect(url)?;
    let snapshot_id = diesel::sql_query("SELECT max(id) AS id FROM resident_snapshots")
        .get_result::<MaybeId>(&mut conn)?
        .id;
    let parameters = serde_json::json!({
        "threads": threads,
        "similarity_threshold": ctx.similarity_threshold,
        "actor": options.actor,
    });
    // Recorded (and committed) before the work, so a crashed run leaves a trace.
    let run_id = diesel::sql_query(
        "INSERT INTO audit_runs (run_date, snapshot_id, parameters) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind::<Date, _>(ctx.run_date)
    .bind::<Nullable<BigInt>, _>(snapshot_id)
    .bind::<Jsonb, _>(parameters)
    .get_result::<Id>(&mut conn)?
    .id;

    let result = run_in_transaction(url, &mut conn, ctx, options, &pool, run_id, snapshot_id);
    if result.is_err() {
        // Best effort: the transaction is gone, and the run must not look alive.
        let _ = diesel::sql_query(
            "UPDATE audit_runs SET status = 'failed', finished_at = clock_timestamp() WHERE id = $1",
        )
        .bind::<BigInt, _>(run_id)
        .execute(&mut conn);
    }
    result
}

fn run_in_transaction(
    url: &str,
    conn: &mut PgConnection,
    ctx: &AuditContext,
    options: &RunOptions<'_>,
    pool: &rayon::ThreadPool,
    run_id: i64,
    snapshot_id: Option<i64>,
) -> Result<RunSummary, RunError> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(RunError::Connect)?;
    // The stream's hash joins and aggregates hold millions of rows; with the default 4 MB of
    // work memory they spill to disk in batches.
    client
        .batch_execute("SET work_mem = '512MB'")
        .map_err(read::ReadError::from)?;
    let expected: i64 = client
        .query_one(
            "SELECT count(*) FROM linkages WHERE status <> 'revoked'",
            &[],
        )
        .map_err(read::ReadError::from)?
        .get(0);
    let expected = u64::try_from(expected).unwrap_or(0);

    conn.transaction::<RunSummary, RunError, _>(|conn| {
        let started = Instant::now();
        let mut timings = Timings::default();
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        persist::begin(conn)?;

        let mut record = |findings: Vec<Finding>,
                          conn: &mut PgConnection,
                          timings: &mut Timings|
         -> Result<(), RunError> {
            for f in &findings {
                *counts
                    .entry((f.kind.as_str().to_string(), f.severity.as_str().to_string()))
                    .or_default() += 1;
            }
            let t = Instant::now();
            persist::stage(conn, &findings)?;
            timings.write += t.elapsed();
            Ok(())
        };

        let mut batch: Vec<NumberGroup> = Vec::with_capacity(BATCH);
        let mut shared: HashMap<[u8; 32], NumberGroup> = HashMap::new();
        let mut pending_error: Option<RunError> = None;
        let read_started = Instant::now();
        let mut check_and_stage_time = Duration::ZERO;
        let mut seen = 0u64;
        // Every streamed linkage's person: sorted afterwards, a person id that occurs twice
        // holds two numbers ((person, number) is unique). 8 bytes a linkage, far cheaper than
        // grouping every linkage by person in SQL.
        let mut person_ids: Vec<i64> = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        let rows = read::stream_linkages(&mut client, snapshot_id, ctx.run_date, |row| {
            seen += 1;
            person_ids.push(row.linkage.person_id);
            if row.shared {
                let group = shared.entry(row.blind.0).or_insert_with(|| NumberGroup {
                    blind: row.blind,
                    linkages: Vec::new(),
                    resident: row.resident,
                });
                group.linkages.push(row.linkage);
                return Ok(());
            }
            batch.push(NumberGroup {
                blind: row.blind,
                linkages: vec![row.linkage],
                resident: row.resident,
            });
            if batch.len() == BATCH {
                let t = Instant::now();
                let findings = pool.install(|| audit_groups(ctx, &batch));
                timings.check += t.elapsed();
                batch.clear();
                if let Err(e) = record(findings, conn, &mut timings) {
                    pending_error.get_or_insert(e);
                    return Err(read::ReadError::Invalid("could not stage findings"));
                }
                check_and_stage_time += t.elapsed();
                (options.progress)(seen, expected);
            }
            Ok(())
        });
        let rows = match (rows, pending_error) {
            (_, Some(e)) => return Err(e),
            (r, None) => r?,
        };
        timings.read = read_started.elapsed().saturating_sub(check_and_stage_time);

        // Numbers linked to several persons, each as one group, in a fixed order, with the
        // full period history of their persons (the stream carried only the period in force).
        let t = Instant::now();
        let mut groups: Vec<NumberGroup> = shared.into_values().collect();
        groups.sort_by_key(|g| g.blind.0);
        let mut shared_persons: Vec<i64> = groups
            .iter()
            .flat_map(|g| g.linkages.iter().map(|l| l.person_id))
            .collect();
        shared_persons.sort_unstable();
        shared_persons.dedup();
        let periods = read::periods_of(&mut client, &shared_persons)?;
        for group in &mut groups {
            group.linkages.sort_by_key(|l| l.linkage_id);
            for linkage in &mut group.linkages {
                // Cloned, not taken: one person can be in several shared groups.
                linkage.periods = periods.get(&linkage.person_id).cloned().unwrap_or_default();
            }
        }
        batch.append(&mut groups);
        person_ids.sort_unstable();
        let mut several_ids: Vec<i64> = person_ids
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        several_ids.dedup();
        drop(person_ids);
        let several = read::numbers_of(&mut client, &several_ids)?;
        timings.read += t.elapsed();

        let t = Instant::now();
        let mut findings = pool.install(|| audit_groups(ctx, &batch));
        findings.extend(
            several
                .iter()
                .filter_map(|p| check_person_numbers(&p.person_key, p.person_id, &p.numbers)),
        );
        timings.check += t.elapsed();
        record(findings, conn, &mut timings)?;
        (options.progress)(rows, expected);

        let t = Instant::now();
        let merge = persist::merge(conn, run_id, options.actor)?;
        timings.write += t.elapsed();

        let summary = RunSummary {
            run_id,
            snapshot_id,
            linkages_checked: rows,
            counts,
            merge,
            timings,
        };
        finish_run(conn, &summary, started.elapsed())?;
        Ok(summary)
    })
}

fn finish_run(conn: &mut PgConnection, s: &RunSummary, total: Duration) -> Result<(), RunError> {
    let timings = serde_json::json!({
        "read_s": s.timings.read.as_secs_f64(),
        "check_s": s.timings.check.as_secs_f64(),
        "write_s": s.timings.write.as_secs_f64(),
        "total_s": total.as_secs_f64(),
    });
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    diesel::sql_query(
        "UPDATE audit_runs SET status = 'finished', finished_at = clock_timestamp(),
                linkages_checked = $2, findings_detected = $3, findings_new = $4,
                findings_resolved = $5, counts = $6, timings = $7
         WHERE id = $1",
    )
    .bind::<BigInt, _>(s.run_id)
    .bind::<BigInt, _>(to_i64(s.linkages_checked))
    .bind::<BigInt, _>(to_i64(s.detected()))
    .bind::<BigInt, _>(to_i64(s.merge.new))
    .bind::<BigInt, _>(to_i64(s.merge.resolved))
    .bind::<Jsonb, _>(s.counts_json())
    .bind::<Jsonb, _>(timings)
    .execute(conn)?;
    Ok(())
}

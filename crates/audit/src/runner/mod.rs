//! The nightly run: the thin I/O layer around the pure engine. It records the run, streams
//! every audited linkage out of PostgreSQL, checks batches on a rayon pool, and merges the
//! findings by fingerprint, all in one transaction (a failed run changes no finding).

pub mod read;
pub mod sample;
pub mod spill;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use shikaku_db::findings::merge::{self, MergeCounts};
use shikaku_db::findings::runs;
use shikaku_db::DbError;
use shikaku_domain::finding::Finding;

use crate::engine::benefits::{check_benefits, BenefitSubject};
use crate::engine::{audit_groups, check_person_numbers, AuditContext, NumberGroup};
use crate::model::{fit, FitInput};
use shikaku_domain::evidence::{ModelParameters, ModelSource};

/// How to run.
pub struct RunOptions<'a> {
    /// Worker threads for the check stage (default: all cores).
    pub threads: Option<usize>,
    /// Who started the run, for the review history.
    pub actor: &'a str,
    /// Called with (rows done, rows expected) as the run advances. Every linkage counts twice:
    /// once when read, once when checked.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    /// Linkages per temporary file (see [`spill`]); `None`: [`spill::ROWS_PER_FILE`].
    pub rows_per_file: Option<u64>,
    /// A streaming standby to read the registry and the register from; findings are written
    /// to the primary either way. `None` reads the primary.
    pub standby: Option<Standby<'a>>,
}

/// Where the audit may stream from instead of the primary.
#[derive(Debug, Clone, Copy)]
pub struct Standby<'a> {
    /// The standby's URL.
    pub url: &'a str,
    /// How long to wait for it to replay what the primary had when the run began; a standby
    /// further behind is not used and the run reads the primary.
    pub max_lag: Duration,
}

/// Wall time of each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Sampling and fitting the evidence model.
    pub fit: Duration,
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
    /// Temporary files the linkages went through (see [`spill`]).
    pub files: usize,
    /// The evidence model's parameters this run scored with.
    pub model: ModelParameters,
    /// Whether the rows were read from the standby (false: from the primary).
    pub read_from_standby: bool,
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
    /// The temporary files failed.
    #[error(transparent)]
    Spill(#[from] spill::SpillError),
    /// The thread pool could not be built.
    #[error("cannot start the worker threads: {0}")]
    Threads(String),
}

impl From<diesel::result::Error> for RunError {
    fn from(e: diesel::result::Error) -> Self {
        RunError::Db(DbError::Query(e))
    }
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
    let snapshot_id = runs::latest_snapshot(&mut conn)?;
    runs::comparable_index(&mut conn, snapshot_id)?;
    let parameters = serde_json::json!({
        "threads": threads,
        "similarity_threshold": ctx.similarity_threshold,
        "actor": options.actor,
    });
    // Recorded (and committed) before the work, so a crashed run leaves a trace.
    let run_id = runs::start(
        &mut conn,
        ctx.run_date,
        snapshot_id,
        &parameters,
        &ctx.variants.info(),
    )?;

    let read_url = read_source(&mut conn, url, options.standby)?;
    let result = run_in_transaction(
        read_url,
        &mut conn,
        ctx,
        options,
        &pool,
        run_id,
        snapshot_id,
    )
    .map(|summary| RunSummary {
        read_from_standby: read_url != url,
        ..summary
    });
    if result.is_err() {
        // Best effort: the transaction is gone, and the run must not look alive.
        let _ = runs::fail(&mut conn, run_id);
    }
    result
}

/// The URL to stream from: the standby once it has replayed everything the primary (`conn`)
/// had when the run began, so its view is no older than the run, else the primary.
fn read_source<'u>(
    conn: &mut PgConnection,
    url: &'u str,
    standby: Option<Standby<'u>>,
) -> Result<&'u str, RunError> {
    let Some(standby) = standby else {
        return Ok(url);
    };
    // A database created moments ago may not be on the standby yet: connecting is part of
    // waiting for it.
    let started = Instant::now();
    let caught_up = loop {
        match shikaku_db::connect(standby.url) {
            Ok(mut s) => {
                let left = standby.max_lag.saturating_sub(started.elapsed());
                break shikaku_db::replica::wait_for_replay(conn, &mut s, left);
            }
            Err(e) if started.elapsed() >= standby.max_lag => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    match caught_up {
        Ok(Some(waited)) => {
            tracing::info!(
                "audit: reading the standby (caught up in {} ms)",
                waited.as_millis()
            );
            Ok(standby.url)
        }
        Ok(None) => {
            tracing::warn!(
                "audit: the standby is more than {} ms behind; reading the primary",
                standby.max_lag.as_millis()
            );
            Ok(url)
        }
        Err(e) => {
            tracing::warn!("audit: the standby is not usable ({e}); reading the primary");
            Ok(url)
        }
    }
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
    let mut shared = read::SharedSnapshot::open(url).map_err(|e| match e {
        read::ReadError::Db(e) => RunError::Connect(e),
        e => RunError::Read(e),
    })?;
    let estimate = estimate_linkages(shared.client())?;
    // Each linkage is reported twice: once read, once checked.
    let mut expected = estimate.max(1) * 2;

    // The evidence model, fitted to samples read inside the run's snapshot.
    let t = Instant::now();
    let samples = sample::read(shared.client(), snapshot_id)?;
    let mut fitted = ctx.clone();
    fitted.model = pool.install(|| {
        fit(
            ctx,
            &FitInput {
                register: &samples.register,
                households: &samples.households,
                linked: &samples.linked,
            },
        )
    });
    drop(samples);
    let ctx = &fitted;
    let fit_time = t.elapsed();
    tracing::info!(
        "audit: evidence model {} in {:.1} s",
        match &ctx.model.source {
            ModelSource::Fitted => "fitted".to_owned(),
            ModelSource::Defaults { reason } => format!("at its defaults ({reason})"),
        },
        fit_time.as_secs_f64()
    );

    conn.transaction::<RunSummary, RunError, _>(|conn| {
        let started = Instant::now();
        let mut timings = Timings {
            fit: fit_time,
            ..Timings::default()
        };
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        // The first pass stages nothing for a while; a server-wide idle timeout must not end
        // the transaction meanwhile.
        diesel::sql_query("SET LOCAL idle_in_transaction_session_timeout = 0").execute(conn)?;
        merge::begin(conn)?;

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
            merge::stage(conn, &findings)?;
            timings.write += t.elapsed();
            Ok(())
        };

        // Pass 1: the registry in person order, into blind-order files. Persons with several
        // numbers are adjacent in this order, so they are checked on the way.
        let t = Instant::now();
        let mut spill = spill::Spill::new(
            expected / 2,
            options.rows_per_file.unwrap_or(spill::ROWS_PER_FILE),
        )?;
        let mut spill_error = None;
        let mut several = Vec::new();
        let mut read_rows = 0u64;
        let rows = read::read_registry(
            &shared.source(),
            |linkage| {
                read_rows += 1;
                if read_rows % 65_536 == 0 {
                    expected = expected.max(read_rows * 2);
                    (options.progress)(read_rows, expected);
                }
                spill.push(linkage).map_err(|e| {
                    spill_error.get_or_insert(e);
                    read::ReadError::Invalid("could not write the temporary files")
                })
            },
            |p| several.push(p),
        );
        let rows = match (rows, spill_error) {
            (_, Some(e)) => return Err(e.into()),
            (r, None) => r?,
        };
        expected = rows * 2;
        let files = spill.finish()?;
        let file_count = files.buckets();
        timings.read += t.elapsed();
        tracing::info!(
            "audit: read {rows} linkages into {file_count} files in {:.1} s",
            t.elapsed().as_secs_f64()
        );

        let t = Instant::now();
        let findings: Vec<Finding> = several
            .iter()
            .filter_map(|p| check_person_numbers(&p.person_key, p.person_id, &p.numbers))
            .collect();
        drop(several);
        timings.check += t.elapsed();
        record(findings, conn, &mut timings)?;

        // Pass 2: file by file in blind order, merged with the register (also in blind order):
        // every linkage of a number arrives together, shared numbers included. One thread
        // reads and groups the next file while this one checks and stages the last.
        let mut checked = rows;
        std::thread::scope(|scope| -> Result<(), RunError> {
            // A rendezvous: the reader prepares one file while the last is checked, no more.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<NumberGroup>, RunError>>(0);
            // Checked groups go back to be freed where they were allocated (see read::Stream).
            let (back, checked_groups) = std::sync::mpsc::channel::<Vec<NumberGroup>>();
            let mut files = files;
            let source = shared.source();
            // The files move to the reading thread and are deleted when it ends.
            scope.spawn(move || {
                let mut residents = read::ResidentStream::spawn(scope, &source, snapshot_id);
                let free = |groups: Vec<NumberGroup>, residents: &mut read::ResidentStream| {
                    for g in groups {
                        if let Some(r) = g.resident {
                            residents.give_back(g.blind, r);
                        }
                    }
                };
                for i in 0..files.buckets() {
                    while let Ok(done) = checked_groups.try_recv() {
                        free(done, &mut residents);
                    }
                    let groups = group_file(&mut files, i, &mut residents);
                    let failed = groups.is_err();
                    if tx.send(groups).is_err() || failed {
                        return;
                    }
                }
                drop(tx);
                for done in checked_groups {
                    free(done, &mut residents);
                }
            });
            loop {
                let t = Instant::now();
                let Ok(groups) = rx.recv() else { break };
                let groups = groups?;
                timings.read += t.elapsed();
                checked += groups.iter().map(|g| g.linkages.len() as u64).sum::<u64>();

                let t = Instant::now();
                let findings = pool.install(|| audit_groups(ctx, &groups));
                timings.check += t.elapsed();
                let _ = back.send(groups);
                record(findings, conn, &mut timings)?;
                (options.progress)(checked, expected);
            }
            drop(back);
            Ok(())
        })?;
        (options.progress)(expected, expected);

        // Pass 3: the persons with co-pay or 特定疾病 records, against the benefit rules.
        let mut benefit_findings = Vec::new();
        let t = Instant::now();
        shikaku_db::benefits::for_audit(conn, |chunk| {
            let subjects = chunk
                .into_iter()
                .map(benefit_subject)
                .collect::<Result<Vec<_>, DbError>>()?;
            benefit_findings.extend(pool.install(|| {
                use rayon::prelude::*;
                subjects
                    .par_iter()
                    .flat_map_iter(check_benefits)
                    .collect::<Vec<_>>()
            }));
            Ok(())
        })?;
        timings.check += t.elapsed();
        record(benefit_findings, conn, &mut timings)?;

        let t = Instant::now();
        let merged = merge::merge(conn, run_id, options.actor)?;
        timings.write += t.elapsed();

        let summary = RunSummary {
            run_id,
            snapshot_id,
            linkages_checked: rows,
            counts,
            merge: merged,
            timings,
            files: file_count,
            model: ctx.model.parameters(),
            // Set by the caller, which chose the source.
            read_from_standby: false,
        };
        finish_run(conn, &summary, started.elapsed() + summary.timings.fit)?;
        Ok(summary)
    })
}

/// A person's benefit records as the engine checks them.
fn benefit_subject(a: shikaku_db::benefits::AuditSubject) -> Result<BenefitSubject, DbError> {
    #[derive(serde::Deserialize)]
    struct StoredPeriod {
        acquired_on: chrono::NaiveDate,
        lost_on: Option<chrono::NaiveDate>,
    }
    let periods: Vec<StoredPeriod> = serde_json::from_value(a.periods)
        .map_err(|e| DbError::Invalid(format!("unexpected stored periods: {e}")))?;
    Ok(BenefitSubject {
        person_key: format!(
            "{}:{}:{}:{}",
            a.insurer_number, a.symbol, a.number, a.branch
        ),
        person_id: a.person_id,
        scheme: shikaku_domain::copay::Scheme::of_number(&a.insurer_number),
        birth: a.birth_date,
        registered: a.copay_rate.and_then(|r| u8::try_from(r).ok()),
        records: shikaku_db::benefits::parse_json(&a.benefits)?,
        periods: periods
            .into_iter()
            .map(|p| shikaku_domain::Period::new(p.acquired_on, p.lost_on, None))
            .collect(),
    })
}

/// The planner's estimate of the linkages to audit: enough to size the temporary files and the
/// progress bar, where an exact count would scan the table once more. Taken from `EXPLAIN`
/// rather than `pg_class.reltuples`, which is unknown (-1) until the table is first analyzed:
/// right after a bulk import, exactly when the estimate matters (one file for ten million
/// linkages would not fit in memory).
fn estimate_linkages(client: &mut postgres::Client) -> Result<u64, RunError> {
    read::plan_rows(client, "SELECT 1 FROM linkages WHERE status <> 'revoked'")?
        .map(|n| n as u64)
        .ok_or(RunError::Read(read::ReadError::Invalid(
            "EXPLAIN gave no row estimate",
        )))
}

/// The linkages of spill file `i` as groups by number, each with its register record.
fn group_file(
    files: &mut spill::SpillReader,
    i: usize,
    residents: &mut read::ResidentStream,
) -> Result<Vec<NumberGroup>, RunError> {
    let mut groups: Vec<NumberGroup> = Vec::new();
    for (blind, linkage) in files.take(i)? {
        match groups.last_mut() {
            Some(g) if g.blind == blind => g.linkages.push(linkage),
            _ => groups.push(NumberGroup {
                blind,
                linkages: vec![linkage],
                resident: residents.find(&blind)?,
            }),
        }
    }
    Ok(groups)
}

fn finish_run(conn: &mut PgConnection, s: &RunSummary, total: Duration) -> Result<(), RunError> {
    let timings = serde_json::json!({
        "fit_s": s.timings.fit.as_secs_f64(),
        "read_s": s.timings.read.as_secs_f64(),
        "check_s": s.timings.check.as_secs_f64(),
        "write_s": s.timings.write.as_secs_f64(),
        "total_s": total.as_secs_f64(),
        "files": s.files,
    });
    runs::finish(
        conn,
        s.run_id,
        &runs::Finished {
            linkages_checked: s.linkages_checked,
            detected: s.detected(),
            new: s.merge.new,
            resolved: s.merge.resolved,
            counts: s.counts_json(),
            timings,
            model: s.model.clone(),
        },
    )?;
    Ok(())
}

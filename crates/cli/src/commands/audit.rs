//! `shikaku audit run|export`: the nightly linkage audit and its findings.csv.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use shikaku_audit::runner::{self, RunOptions, Standby};
use shikaku_audit::AuditContext;
use shikaku_db::findings::export::export_findings;
use shikaku_db::findings::Filter;

use crate::config::{load_keyring, Database};
use crate::logging;
use crate::progress::Progress;

/// Environment variable naming an extra kanji-variant table (one group per line).
pub const VARIANTS_VAR: &str = "SHIKAKU_KANJI_VARIANTS";

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every linkage against the latest resident snapshot and each other.
    Run {
        /// Worker threads for the check stage (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Judge eligibility on this date (default: today in Asia/Tokyo).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Also print the evidence model's fitted parameters (per level m and each channel's
        /// u, the prior, the channel weights, the sample sizes).
        #[arg(long)]
        explain_model: bool,
        /// Stream the registry and the register from this standby (`scripts/db replica url`)
        /// once it has replayed what the primary had at the start; findings are written to
        /// DATABASE_URL. A standby further behind than --read-max-lag-ms is not used.
        #[arg(long, env = "SHIKAKU_READ_DATABASE_URL", hide_env_values = true)]
        read_database_url: Option<String>,
        /// How long to wait for the standby to catch up, in milliseconds.
        #[arg(long, env = "SHIKAKU_READ_MAX_LAG_MS", default_value_t = 5000)]
        read_max_lag_ms: u64,
    },
    /// Write every finding as findings.csv (last 4 digits of numbers only).
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Why the findings leave the system (recorded in the access log).
        #[arg(long)]
        reason: String,
        /// Replace OUT if it exists (a symbolic link is refused even then).
        #[arg(long)]
        force: bool,
    },
}

/// Runs an audit subcommand.
pub fn run(db: &Database, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Run {
            threads,
            on,
            json,
            explain_model,
            read_database_url,
            read_max_lag_ms,
        } => {
            let url = db.url()?;
            let mut ctx = AuditContext::new(on.unwrap_or_else(super::today_tokyo));
            if let Ok(path) = std::env::var(VARIANTS_VAR) {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {VARIANTS_VAR}={path}"))?;
                ctx.variants
                    .extend_from_str(&path, &text)
                    .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            }
            if threads == Some(0) {
                bail!("--threads must be at least 1");
            }
            // The run reads every linked person's five items: logged before it starts, and with
            // its counts when it is done.
            let (keyring, _) = load_keyring()?;
            let mut log_conn = db.connect()?;
            logging::record(
                &mut log_conn,
                &keyring,
                &[logging::entry(
                    "audit_run_start",
                    None,
                    serde_json::json!({ "on": ctx.run_date, "threads": threads }),
                    serde_json::Value::Null,
                    None,
                )],
            )?;
            let progress = Progress::new("audit", 0);
            let report = |done: u64, total: u64| progress.set_items(done, total);
            let actor = super::actor("audit");
            let summary = runner::run_audit(
                url,
                &ctx,
                &RunOptions {
                    threads,
                    actor: &actor,
                    progress: &report,
                    rows_per_file: None,
                    standby: read_database_url
                        .as_deref()
                        .filter(|u| !u.trim().is_empty())
                        .map(|url| Standby {
                            url,
                            max_lag: std::time::Duration::from_millis(read_max_lag_ms),
                        }),
                },
            )?;
            progress.finish();
            logging::record(
                &mut log_conn,
                &keyring,
                &[logging::entry(
                    "audit_run",
                    None,
                    serde_json::json!({ "on": ctx.run_date, "run_id": summary.run_id }),
                    serde_json::json!({ "linkages_checked": summary.linkages_checked,
                                        "detected": summary.detected() }),
                    None,
                )],
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "run_id": summary.run_id,
                        "snapshot_id": summary.snapshot_id,
                        "linkages_checked": summary.linkages_checked,
                        "read_from_standby": summary.read_from_standby,
                        "detected": summary.detected(),
                        "new": summary.merge.new,
                        "resolved": summary.merge.resolved,
                        "linkages_suspended": summary.merge.linkages.suspended,
                        "linkages_restored": summary.merge.linkages.restored,
                        "counts": summary.counts_json(),
                        "read_s": summary.timings.read.as_secs_f64(),
                        "check_s": summary.timings.check.as_secs_f64(),
                        "write_s": summary.timings.write.as_secs_f64(),
                        "fit_s": summary.timings.fit.as_secs_f64(),
                        "model": explain_model.then_some(&summary.model),
                    }))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "audit run {}: {} linkages checked against snapshot {}{}",
                summary.run_id,
                summary.linkages_checked,
                summary
                    .snapshot_id
                    .map_or_else(|| "(none imported)".to_string(), |s| s.to_string()),
                if summary.read_from_standby {
                    " (read from the standby)"
                } else {
                    ""
                }
            );
            println!("  {:<22} {:<9} {:>8}", "kind", "severity", "findings");
            for ((kind, severity), n) in &summary.counts {
                println!("  {kind:<22} {severity:<9} {n:>8}");
            }
            println!(
                "  {} detected: {} new, {} seen before ({} reopened), {} resolved",
                summary.detected(),
                summary.merge.new,
                summary.merge.seen_again,
                summary.merge.reopened,
                summary.merge.resolved
            );
            let blocks = summary.merge.linkages;
            println!(
                "  linkages: {} suspended by a critical finding, {} restored, {} passed to another finding",
                blocks.suspended, blocks.restored, blocks.transferred
            );
            println!(
                "  time: fit {:.1}s, read {:.1}s, check {:.1}s, write {:.1}s",
                summary.timings.fit.as_secs_f64(),
                summary.timings.read.as_secs_f64(),
                summary.timings.check.as_secs_f64(),
                summary.timings.write.as_secs_f64()
            );
            if explain_model {
                print!("{}", shikaku_audit::model::explain(&summary.model));
            }
        }
        AuditCommand::Export { out, reason, force } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            let (keyring, _) = load_keyring()?;
            let mut conn = db.connect()?;
            // Owner-only, exclusive, never through a link: before anything is read or logged.
            let file = crate::files::create_private(&out, force)?;
            let request =
                serde_json::json!({ "export": "findings", "out": out.display().to_string() });
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "export_findings",
                    None,
                    request.clone(),
                    serde_json::Value::Null,
                    Some(&reason),
                )],
            )?;
            let n = export_findings(&mut conn, &Filter::default(), BufWriter::new(file))?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "export_findings_done",
                    None,
                    request,
                    serde_json::json!({ "rows": n }),
                    Some(&reason),
                )],
            )?;
            eprintln!("wrote {n} findings to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `shikaku access-log verify|show`: checking the hash chain, and reading recent entries.

use std::process::ExitCode;

use clap::Subcommand;
use shikaku_db::access_log;

use crate::config::Database;

/// Access-log commands.
#[derive(Debug, Subcommand)]
pub enum AccessLogCommand {
    /// Check every entry's hash and link; exit 1 if any entry was edited, deleted or reordered.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The most recent entries, newest first.
    Show {
        /// Only entries about this subject, e.g. person:42.
        #[arg(long)]
        subject: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

/// Runs an access-log command.
pub fn run(db: &Database, cmd: AccessLogCommand) -> anyhow::Result<ExitCode> {
    let mut conn = db.connect()?;
    match cmd {
        AccessLogCommand::Verify { json } => {
            let report = access_log::verify(&mut conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("entries: {}", report.entries);
                if let Some((seq, hash)) = &report.head {
                    println!("head: {seq} {hash}");
                }
                for b in &report.breaks {
                    println!("BROKEN at entry {}: {}", b.seq, b.kind);
                }
                println!(
                    "{}",
                    if report.ok() {
                        "chain intact"
                    } else {
                        "chain BROKEN: entries were edited, deleted or reordered"
                    }
                );
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AccessLogCommand::Show { subject, limit } => {
            for e in access_log::recent(&mut conn, subject.as_deref(), limit)? {
                println!(
                    "{} {} {} ({}) {} {} ask={} answer={}{}",
                    e.seq,
                    e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    e.actor,
                    e.role,
                    e.action,
                    e.subject.as_deref().unwrap_or("-"),
                    e.request,
                    e.response,
                    e.reason.map(|r| format!(" reason={r}")).unwrap_or_default(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

//! `shikaku access-log verify|checkpoint|show`: checking the chain against the checkpoints,
//! anchoring the head outside the database, and reading recent entries (itself logged).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use shikaku_db::access_log::{self, checkpoint};

use crate::config::{checkpoint_file, load_keyring, Database, CHECKPOINT_VAR};
use crate::logging;

/// Access-log commands.
#[derive(Debug, Subcommand)]
pub enum AccessLogCommand {
    /// Check every entry's link with the key file's log keys, and the log against every
    /// checkpoint; exit 1 if an entry was edited, deleted, reordered or forged, or the tail was
    /// cut since a checkpoint.
    Verify {
        /// The checkpoint file to check against (default: $SHIKAKU_CHECKPOINT_FILE); a copy
        /// works, for an external auditor.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign the log's head now and append it to the checkpoint file.
    Checkpoint {
        /// The checkpoint file (default: $SHIKAKU_CHECKPOINT_FILE).
        #[arg(long)]
        file: Option<PathBuf>,
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

fn checkpoint_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    given.or_else(checkpoint_file).with_context(|| {
        format!("name the checkpoint file with --checkpoints/--file or {CHECKPOINT_VAR}")
    })
}

/// Runs an access-log command.
pub fn run(db: &Database, cmd: AccessLogCommand) -> anyhow::Result<ExitCode> {
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    match cmd {
        AccessLogCommand::Verify { checkpoints, json } => {
            let path = checkpoint_path(checkpoints)?;
            let cps = checkpoint::read_file(&path)?;
            let report = access_log::verify(&mut conn, &keyring, &cps)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("entries: {}", report.entries);
                if let Some((seq, hash)) = &report.head {
                    println!("head: {seq} {hash}");
                }
                match report.keyed_from {
                    Some(1) => println!("keyed: every entry"),
                    Some(s) => println!("keyed: from entry {s} (earlier ones: plain SHA-256)"),
                    None => println!("keyed: no entry yet"),
                }
                println!(
                    "checkpoints: {} in {}{}",
                    report.checkpoints,
                    path.display(),
                    report
                        .checkpointed
                        .map(|s| format!(", newest at entry {s}"))
                        .unwrap_or_default()
                );
                for b in &report.breaks {
                    println!("BROKEN at entry {}: {}", b.seq, b.kind);
                }
                match report.first_bad() {
                    None => println!("chain intact"),
                    Some(b) => println!(
                        "chain BROKEN from entry {}: entries were edited, deleted, reordered or \
                         forged, or the tail was cut",
                        b.seq
                    ),
                }
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AccessLogCommand::Checkpoint { file } => {
            let path = checkpoint_path(file)?;
            match checkpoint::take(&mut conn, &keyring, &path)? {
                Some(c) => println!(
                    "checkpoint at entry {} ({}) appended to {}",
                    c.seq,
                    hex::encode(&c.mac),
                    path.display()
                ),
                None => println!("the access log is empty: nothing to checkpoint"),
            }
            Ok(ExitCode::SUCCESS)
        }
        AccessLogCommand::Show { subject, limit } => {
            let entries = access_log::recent(&mut conn, subject.as_deref(), limit)?;
            // The entries name whose data was read: reading them is a read too.
            let (_, shown) = logging::persons(entries.iter().filter_map(|e| {
                e.subject
                    .as_deref()
                    .and_then(|s| s.strip_prefix("person:"))
                    .and_then(|id| id.parse().ok())
            }));
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "access_log_read",
                    subject.clone(),
                    serde_json::json!({ "subject": subject, "limit": limit }),
                    shown,
                    None,
                )],
            )?;
            for e in entries {
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

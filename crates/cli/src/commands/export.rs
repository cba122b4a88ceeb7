//! `shikaku export persons|benefits --out FILE`.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{load_keyring, Database};
use crate::logging;

/// What to export.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// persons.csv, one row per qualification period; re-importing it changes nothing.
    Persons {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Why the whole registry leaves the system (recorded in the access log).
        #[arg(long)]
        reason: String,
        /// Replace OUT if it exists (a symbolic link is refused even then).
        #[arg(long)]
        force: bool,
    },
    /// benefits.csv, every dated co-pay, limit-category and 特定疾病 record; re-importing it
    /// changes nothing.
    Benefits {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Why the records leave the system (recorded in the access log).
        #[arg(long)]
        reason: String,
        /// Replace OUT if it exists (a symbolic link is refused even then).
        #[arg(long)]
        force: bool,
    },
}

/// Runs an export.
pub fn run(db: &Database, cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Persons { out, reason, force } => {
            export(db, "persons", &out, &reason, force, |conn, w| {
                Ok(shikaku_db::export::export_persons(conn, w)?)
            })
        }
        ExportCommand::Benefits { out, reason, force } => {
            export(db, "benefits", &out, &reason, force, |conn, w| {
                Ok(shikaku_db::benefits::export(conn, w)?)
            })
        }
    }
}

/// Writes one export to `out` (owner-only), logged before and after.
fn export(
    db: &Database,
    what: &str,
    out: &std::path::Path,
    reason: &str,
    force: bool,
    write: impl FnOnce(&mut diesel::PgConnection, BufWriter<std::fs::File>) -> anyhow::Result<u64>,
) -> anyhow::Result<ExitCode> {
    shikaku_domain::free_text::FreeText::Reason.check(reason)?;
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    // Owner-only, exclusive, never through a link: before anything is read or logged.
    let file = crate::files::create_private(out, force)?;
    // Logged before a byte is written: an export that fails half-way has still read.
    let request = serde_json::json!({ "export": what, "out": out.display().to_string() });
    logging::record(
        &mut conn,
        &keyring,
        &[logging::entry(
            &format!("export_{what}"),
            None,
            request.clone(),
            serde_json::Value::Null,
            Some(reason),
        )],
    )?;
    let rows = write(&mut conn, BufWriter::with_capacity(1 << 20, file))?;
    logging::record(
        &mut conn,
        &keyring,
        &[logging::entry(
            &format!("export_{what}_done"),
            None,
            request,
            serde_json::json!({ "rows": rows }),
            Some(reason),
        )],
    )?;
    eprintln!("wrote {rows} rows to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

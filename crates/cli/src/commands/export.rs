//! `shikaku export persons --out FILE`.

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
}

/// Runs an export.
pub fn run(db: &Database, cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Persons { out, reason, force } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            let (keyring, _) = load_keyring()?;
            let mut conn = db.connect()?;
            // Owner-only, exclusive, never through a link: before anything is read or logged.
            let file = crate::files::create_private(&out, force)?;
            // Logged before a byte is written: an export that fails half-way has still read.
            let request =
                serde_json::json!({ "export": "persons", "out": out.display().to_string() });
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "export_persons",
                    None,
                    request.clone(),
                    serde_json::Value::Null,
                    Some(&reason),
                )],
            )?;
            let rows = shikaku_db::export::export_persons(
                &mut conn,
                BufWriter::with_capacity(1 << 20, file),
            )?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "export_persons_done",
                    None,
                    request,
                    serde_json::json!({ "rows": rows }),
                    Some(&reason),
                )],
            )?;
            eprintln!("wrote {rows} rows to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `shikaku export persons --out FILE`.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Database;

/// What to export.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// persons.csv, one row per qualification period; re-importing it changes nothing.
    Persons {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs an export.
pub fn run(db: &Database, cmd: ExportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ExportCommand::Persons { out } => {
            let mut conn = db.connect()?;
            let file = std::fs::File::create(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let rows = shikaku_db::export::export_persons(
                &mut conn,
                BufWriter::with_capacity(1 << 20, file),
            )?;
            eprintln!("wrote {rows} rows to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

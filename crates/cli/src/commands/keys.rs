//! `shikaku keys generate|rotate|reseal`: the keys that protect stored My Numbers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use shikaku_domain::Keyring;

use crate::config::{load_keyring, read_key_file, write_key_file, Database, KEY_FILE_VAR};

/// Key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new key file (mode 0600). Refuses to overwrite an existing file.
    Generate {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a new encryption key to the key file, make it current, and re-seal every stored
    /// number with it. Old keys stay in the file so that nothing becomes unreadable.
    Rotate {
        /// The key file (default: $SHIKAKU_KEY_FILE).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Re-seal numbers still sealed with an older key (finishes an interrupted rotation).
    Reseal,
}

/// Runs a keys subcommand.
pub fn run(db: &Database, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Generate { out } => {
            write_key_file(&out, &Keyring::generate(), false)?;
            eprintln!("wrote a new key file {} (mode 0600)", out.display());
        }
        KeysCommand::Rotate { key_file } => {
            let path = match key_file.or_else(|| std::env::var(KEY_FILE_VAR).ok().map(Into::into)) {
                Some(p) => p,
                None => bail!("name the key file with --key-file or SHIKAKU_KEY_FILE"),
            };
            let mut keyring = read_key_file(&path)?;
            // Connect before touching the file, so a bad URL does not leave a rotated file
            // with nothing re-sealed.
            let mut conn = db.connect()?;
            let id = keyring.rotate();
            write_key_file(&path, &keyring, true)
                .with_context(|| format!("cannot update {}", path.display()))?;
            eprintln!(
                "key file {}: key {id} added and made current",
                path.display()
            );
            let moved = shikaku_db::keys::reseal(&mut conn, &keyring)?;
            eprintln!("re-sealed {moved} numbers with key {id}");
        }
        KeysCommand::Reseal => {
            let (keyring, _) = load_keyring()?;
            let mut conn = db.connect()?;
            let moved = shikaku_db::keys::reseal(&mut conn, &keyring)?;
            eprintln!(
                "re-sealed {moved} numbers with key {}",
                keyring.current_key_id()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `shikaku keys generate|rotate|reseal`: the keys that protect stored My Numbers and the
//! access log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use shikaku_domain::Keyring;

use crate::config::{load_keyring, read_key_file, write_key_file, Database, KEY_FILE_VAR};
use crate::logging;

/// Key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new key file (mode 0600). Refuses to overwrite an existing file.
    Generate {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a new key to the key file and make it current; old keys stay so that nothing
    /// becomes unreadable or unverifiable. Without flags: a new My Number encryption key, and
    /// every stored number re-sealed with it. With --log-key or --signing-key: a new access-log
    /// chain key or checkpoint signing key (a key file from before the access log was keyed
    /// gets its first ones this way).
    Rotate {
        /// The key file (default: $SHIKAKU_KEY_FILE).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Rotate the access log's chain key instead of the encryption key.
        #[arg(long)]
        log_key: bool,
        /// Rotate the checkpoint signing key instead of the encryption key.
        #[arg(long)]
        signing_key: bool,
        /// Why the numbers are decrypted and re-sealed (recorded in the access log).
        #[arg(long, required_unless_present_any = ["log_key", "signing_key"])]
        reason: Option<String>,
    },
    /// Re-seal numbers still sealed with an older key or not yet bound to their row (finishes
    /// an interrupted rotation; binds rows sealed before binding existed). Every number is
    /// decrypted on the way, so a reason is required and logged.
    Reseal {
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Add a new blind-index key and recompute every stored number's index under it (each
    /// number is decrypted on the way, so a reason is required and logged). Register snapshots
    /// keep the old key: import a new register extract before the next audit.
    RotateIndex {
        /// The key file (default: $SHIKAKU_KEY_FILE).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Why (recorded in the access log).
        #[arg(long)]
        reason: String,
    },
}

/// Runs a keys subcommand.
pub fn run(db: &Database, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Generate { out } => {
            write_key_file(&out, &Keyring::generate(), false)?;
            eprintln!("wrote a new key file {} (mode 0600)", out.display());
        }
        KeysCommand::Rotate {
            key_file,
            log_key,
            signing_key,
            reason,
        } => {
            let path = match key_file.or_else(|| std::env::var(KEY_FILE_VAR).ok().map(Into::into)) {
                Some(p) => p,
                None => bail!("name the key file with --key-file or SHIKAKU_KEY_FILE"),
            };
            let mut keyring = read_key_file(&path)?;
            if log_key || signing_key {
                // Nothing stored changes: new entries and checkpoints use the new keys, old ones
                // keep verifying with the old keys, which stay in the file.
                if log_key {
                    let id = keyring.rotate_log_key();
                    eprintln!(
                        "key file {}: access-log key {id} is current",
                        path.display()
                    );
                }
                if signing_key {
                    let id = keyring.rotate_signing_key();
                    eprintln!("key file {}: signing key {id} is current", path.display());
                }
                write_key_file(&path, &keyring, true)
                    .with_context(|| format!("cannot update {}", path.display()))?;
                return Ok(ExitCode::SUCCESS);
            }
            let reason = reason.unwrap_or_default();
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
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
            let moved = reseal(&mut conn, &keyring, &reason)?;
            eprintln!("re-sealed {moved} numbers with key {id}");
        }
        KeysCommand::RotateIndex { key_file, reason } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            let path = match key_file.or_else(|| std::env::var(KEY_FILE_VAR).ok().map(Into::into)) {
                Some(p) => p,
                None => bail!("name the key file with --key-file or SHIKAKU_KEY_FILE"),
            };
            let mut keyring = read_key_file(&path)?;
            let mut conn = db.connect()?;
            // The file first, old index keys kept: every row stays findable throughout, and an
            // interrupted run is finished by `keys rotate-index` again… with a new key, or by
            // re-running the re-index alone below.
            let before = keyring.index_key_id();
            let id = keyring.rotate_index_key();
            write_key_file(&path, &keyring, true)
                .with_context(|| format!("cannot update {}", path.display()))?;
            eprintln!(
                "key file {}: index key {id} added and made current",
                path.display()
            );
            let request = serde_json::json!({ "from_index_key": before, "to_index_key": id });
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "keys_reindex_start",
                    None,
                    request.clone(),
                    serde_json::Value::Null,
                    Some(&reason),
                )],
            )?;
            let moved = shikaku_db::keys::reindex(&mut conn, &keyring)?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "keys_reindex",
                    None,
                    request,
                    serde_json::json!({ "reindexed": moved }),
                    Some(&reason),
                )],
            )?;
            eprintln!(
                "re-indexed {moved} numbers under index key {id}; send SIGHUP to running \
                 servers, and import a new register extract before the next audit (the \
                 snapshots are under index key {before})"
            );
        }
        KeysCommand::Reseal { reason } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            let (keyring, _) = load_keyring()?;
            let mut conn = db.connect()?;
            let moved = reseal(&mut conn, &keyring, &reason)?;
            eprintln!(
                "re-sealed {moved} numbers with key {}",
                keyring.current_key_id()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-seals every number under an older key, logged before the first number is decrypted (and
/// again with the count once done): a re-seal reads every number in the registry.
fn reseal(conn: &mut diesel::PgConnection, keyring: &Keyring, reason: &str) -> anyhow::Result<u64> {
    let request = serde_json::json!({ "to_key": keyring.current_key_id() });
    logging::record(
        conn,
        keyring,
        &[logging::entry(
            "keys_reseal_start",
            None,
            request.clone(),
            serde_json::Value::Null,
            Some(reason),
        )],
    )?;
    let moved = shikaku_db::keys::reseal(conn, keyring)?;
    logging::record(
        conn,
        keyring,
        &[logging::entry(
            "keys_reseal",
            None,
            request,
            serde_json::json!({ "resealed": moved }),
            Some(reason),
        )],
    )?;
    Ok(moved)
}

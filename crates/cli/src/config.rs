//! Configuration read once from the environment and passed explicitly: the database URL and
//! the My Number keys. No global settings.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use diesel::PgConnection;
use shikaku_domain::Keyring;

/// Where the registry database is; connecting is deferred so that commands without a database
/// (`keys generate`, `fixtures generate`) work without one.
///
/// Two URLs: `DATABASE_URL` is the application role, which every everyday command uses; the
/// owner's (`SHIKAKU_OWNER_DATABASE_URL`) is for `shikaku migrate` only. Without an owner URL
/// migrations run as `DATABASE_URL` (a development database without roles).
pub struct Database {
    url: Option<String>,
    owner_url: Option<String>,
}

impl Database {
    /// From `--database-url` / `DATABASE_URL` and `SHIKAKU_OWNER_DATABASE_URL`.
    pub fn new(url: Option<String>, owner_url: Option<String>) -> Self {
        Database { url, owner_url }
    }

    /// A connection as the owner, for migrations.
    pub fn connect_owner(&self) -> anyhow::Result<PgConnection> {
        match &self.owner_url {
            Some(url) => Ok(shikaku_db::connect(url)?),
            None => self.connect(),
        }
    }

    /// Whether an owner URL is configured.
    pub fn has_owner_url(&self) -> bool {
        self.owner_url.is_some()
    }

    /// The URL, for components that open their own connections (the audit's stream).
    pub fn url(&self) -> anyhow::Result<&str> {
        match &self.url {
            Some(url) => Ok(url),
            None => bail!(
                "no database configured: set DATABASE_URL (scripts/db url prints the project's own)"
            ),
        }
    }

    /// Opens a connection, or says how to configure one.
    pub fn connect(&self) -> anyhow::Result<PgConnection> {
        let Some(url) = &self.url else {
            bail!(
                "no database configured: set DATABASE_URL (scripts/db url prints the project's own)"
            );
        };
        Ok(shikaku_db::connect(url)?)
    }
}

/// Environment variable naming the key file.
pub const KEY_FILE_VAR: &str = "SHIKAKU_KEY_FILE";
/// Environment variable holding the key file's JSON content inline (for deployments where
/// secrets arrive as environment variables).
pub const KEYS_VAR: &str = "SHIKAKU_KEYS";

/// Environment variable saying that the environment itself is protected (a secrets store,
/// not a shell profile), without which inline keys are refused.
pub const KEYS_PROTECTED_VAR: &str = "SHIKAKU_KEYS_ENV_PROTECTED";

/// Loads the keyring from `SHIKAKU_KEYS` or the file named by `SHIKAKU_KEY_FILE`.
///
/// Inline keys skip the file's mode check by nature: anyone who can read this process's
/// environment (`/proc/PID/environ` as the same user, a `ps e`, a crash report) reads them. So
/// they are refused unless `SHIKAKU_KEYS_ENV_PROTECTED=1` says the deployment protects its
/// environment as it would the key file.
pub fn load_keyring() -> anyhow::Result<(Keyring, Option<PathBuf>)> {
    if let Ok(json) = std::env::var(KEYS_VAR) {
        let json = zeroize::Zeroizing::new(json);
        let protected = std::env::var(KEYS_PROTECTED_VAR).is_ok_and(|v| v == "1");
        if !protected {
            bail!(
                "{KEYS_VAR} holds the keys in the environment, which is not mode-checked like a \
                 key file: use {KEY_FILE_VAR}, or set {KEYS_PROTECTED_VAR}=1 if the environment \
                 is protected as a key file would be"
            );
        }
        let keyring = Keyring::from_json(&json).context("SHIKAKU_KEYS is not a valid key set")?;
        return Ok((keyring, None));
    }
    let Ok(path) = std::env::var(KEY_FILE_VAR) else {
        bail!(
            "no My Number keys: set SHIKAKU_KEY_FILE to a key file \
             (create one with `shikaku keys generate --out FILE`) or SHIKAKU_KEYS"
        );
    };
    let path = PathBuf::from(path);
    Ok((read_key_file(&path)?, Some(path)))
}

/// Reads and parses a key file, refusing one that other users can read.
pub fn read_key_file(path: &Path) -> anyhow::Result<Keyring> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "key file {} is readable by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let json = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?,
    );
    Keyring::from_json(&json).with_context(|| format!("key file {} is not valid", path.display()))
}

/// Writes a key file with mode 0600 atomically: a crash leaves the old file or the new one,
/// never half of one (losing a key would lose every number sealed with it). The temporary file
/// has a random name and is created exclusively, so nothing planted beside it is written.
pub fn write_key_file(path: &Path, keyring: &Keyring, overwrite: bool) -> anyhow::Result<()> {
    if !overwrite && path.exists() {
        bail!(
            "{} exists; refusing to overwrite a key file",
            path.display()
        );
    }
    let json = zeroize::Zeroizing::new(keyring.to_json());
    crate::files::write_atomic_private(path, json.as_bytes())
}

/// The environment variable naming the Japanese font embedded in PDFs.
pub const FONT_VAR: &str = "SHIKAKU_FONT";

/// Reads the font for PDFs: `SHIKAKU_FONT`, or IPAex Gothic where Debian installs it.
pub fn load_font() -> anyhow::Result<Vec<u8>> {
    let path = std::env::var(FONT_VAR).unwrap_or_else(|_| shikaku_print::DEFAULT_FONT.to_string());
    std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the PDF font {path}: {e} (install Debian's fonts-ipaexfont-gothic, or \
             set {FONT_VAR} to a TrueType font with Japanese glyphs)"
        )
    })
}

/// The environment variable naming the access log's checkpoint file.
pub const CHECKPOINT_VAR: &str = "SHIKAKU_CHECKPOINT_FILE";

/// The access log's checkpoint file, when configured.
pub fn checkpoint_file() -> Option<PathBuf> {
    std::env::var_os(CHECKPOINT_VAR).map(PathBuf::from)
}

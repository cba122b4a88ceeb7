//! Checkpoints: the access log's head (number, link, time), signed with the key file's Ed25519
//! key and appended to a file outside the database. Whoever can rewrite the database but not
//! the key file or the checkpoint file cannot cut the log's tail unnoticed: the newest
//! checkpoint still names an entry that [`super::verify`] then does not find.
//!
//! The file holds one JSON object per line, appended, fsynced, created owner-only (0600) and
//! never followed through a symbolic link. A copy of it is all an external auditor needs
//! besides the key file (`shikaku access-log verify --checkpoints COPY`).

use std::io::{BufRead, Write};
use std::path::Path;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use shikaku_domain::Keyring;

use crate::error::DbError;

/// What a checkpoint's signature covers, so it can never be mistaken for another signature
/// made with the same key.
const CONTEXT: &str = "shikaku-access-log-checkpoint/1";

/// One signed head of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last entry's number.
    pub seq: i64,
    /// Its link, hex in the file.
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
    /// When the checkpoint was taken.
    pub at: DateTime<Utc>,
    /// The signing key's id.
    pub key_id: u32,
    /// Ed25519 signature over [`Checkpoint::message`], hex in the file.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

impl Checkpoint {
    fn message(seq: i64, mac: &[u8], at: DateTime<Utc>) -> Vec<u8> {
        format!(
            "{CONTEXT}\n{seq}\n{}\n{}",
            hex::encode(mac),
            at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
        .into_bytes()
    }

    /// Signs the head `(seq, mac)` as of `at` with the key file's current signing key.
    pub fn sign(
        keyring: &Keyring,
        seq: i64,
        mac: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Checkpoint, DbError> {
        let at = at.trunc_subsecs(6);
        let (key_id, signature) = keyring.sign(&Checkpoint::message(seq, mac, at))?;
        Ok(Checkpoint {
            seq,
            mac: mac.to_vec(),
            at,
            key_id,
            signature: signature.to_vec(),
        })
    }

    /// Whether the signature is the key file's signing key `key_id`'s.
    pub fn valid(&self, keyring: &Keyring) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(self.signature.as_slice()) else {
            return false;
        };
        keyring.verify_signature(
            self.key_id,
            &Checkpoint::message(self.seq, &self.mac, self.at),
            &sig,
        )
    }
}

/// Why a checkpoint file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be opened, written or read.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not a checkpoint.
    #[error("checkpoint file {path}:{line}: not a checkpoint ({reason})")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The database or the keys failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Appends `checkpoint` to the file at `path`: created 0600 when absent, opened append-only,
/// never through a symbolic link, and fsynced (with its directory, when created) before this
/// returns, so a checkpoint reported taken survives a crash.
pub fn append_to_file(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let mut line = serde_json::to_string(checkpoint)
        .map_err(|e| DbError::Invalid(format!("cannot encode a checkpoint: {e}")))?;
    line.push('\n');
    let created = !path.exists();
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(line.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    if created {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(path))?;
        }
    }
    Ok(())
}

/// Every checkpoint in the file at `path`, in file order; an absent file holds none.
pub fn read_file(path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let c: Checkpoint = serde_json::from_str(&line).map_err(|e| CheckpointError::Line {
            path: path.display().to_string(),
            line: i + 1,
            reason: format!("{:?} error at column {}", e.classify(), e.column()),
        })?;
        out.push(c);
    }
    Ok(out)
}

/// Takes a checkpoint of the log's head now and appends it to the file at `path`. An empty log
/// has nothing to anchor and gives `None`.
pub fn take(
    conn: &mut PgConnection,
    keyring: &Keyring,
    path: &Path,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let (seq, mac) = super::head(conn)?;
    if seq == 0 {
        return Ok(None);
    }
    let c = Checkpoint::sign(keyring, seq, &mac, Utc::now())?;
    append_to_file(path, &c)?;
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signed_checkpoints_verify_and_survive_the_file() {
        let k = Keyring::generate();
        let c = Checkpoint::sign(&k, 42, &[7u8; 32], Utc::now()).unwrap();
        assert!(c.valid(&k));
        assert!(!c.valid(&Keyring::generate()));
        let mut moved = c.clone();
        moved.seq = 41;
        assert!(!moved.valid(&k));
        let mut relinked = c.clone();
        relinked.mac[0] ^= 1;
        assert!(!relinked.valid(&k));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.jsonl");
        append_to_file(&path, &c).unwrap();
        append_to_file(&path, &c).unwrap();
        let back = read_file(&path).unwrap();
        assert_eq!(back, vec![c.clone(), c]);
        assert!(back[0].valid(&k));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(read_file(&dir.path().join("absent")).unwrap().is_empty());
        std::fs::write(dir.path().join("bad"), "{\"seq\":1}\n").unwrap();
        assert!(matches!(
            read_file(&dir.path().join("bad")),
            Err(CheckpointError::Line { line: 1, .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_not_followed() {
        let k = Keyring::generate();
        let c = Checkpoint::sign(&k, 1, &[1u8; 32], Utc::now()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("cp.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(append_to_file(&link, &c).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
    }
}

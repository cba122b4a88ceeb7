//! Where console uploads wait between their check and their apply (and a mailing PDF until it
//! is downloaded): on disk, sealed with a key of its own that only this process holds
//! ([`shikaku_domain::ephemeral::EphemeralKey`]), so nothing rests there readable.
//!
//! Each store has its own folder (`<base>/<pid>-<random>`, owner-only). An upload is deleted
//! when applied, when its check fails (it can never be applied), when it expires, and at the
//! next start: folders of processes that no longer run are removed, since their keys are gone.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shikaku_domain::ephemeral::EphemeralKey;
use zeroize::Zeroizing;

/// How long an upload waits for its apply (and a mailing PDF for its download).
pub const KEEP: Duration = Duration::from_secs(60 * 60);

struct Held {
    key: EphemeralKey,
    at: Instant,
}

/// The sealed uploads of this process.
pub struct UploadStore {
    dir: PathBuf,
    held: Mutex<HashMap<String, Held>>,
}

/// What can go wrong keeping an upload.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unknown, expired, or from before a restart.
    #[error("the upload has expired or is unknown; upload the file again")]
    Gone,
    /// The disk refused.
    #[error("cannot keep the upload: {0}")]
    Io(#[from] std::io::Error),
    /// The sealed file was altered.
    #[error("the kept upload was altered")]
    Altered,
}

/// A random 128-bit id, from the operating system.
fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether process `pid` still runs (Linux: its /proc entry exists). Elsewhere every other
/// folder is taken for alive and left alone.
fn alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

impl UploadStore {
    /// The store of this process under `base`, removing the folders of processes that are
    /// gone (their uploads cannot be opened any more).
    pub fn open(base: &Path) -> std::io::Result<UploadStore> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)?;
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(base)?.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !alive(p)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("{}-{}", std::process::id(), &new_id()[..8]));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(UploadStore {
            dir,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// This process's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.sealed"))
    }

    /// Keeps `bytes` sealed; returns the id to fetch them by.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        self.sweep();
        let id = new_id();
        let key = EphemeralKey::new();
        let sealed = key.seal(bytes).map_err(|_| StoreError::Altered)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc_nofollow());
        }
        let mut f = options.open(self.path(&id))?;
        f.write_all(&sealed)?;
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                id.clone(),
                Held {
                    key,
                    at: Instant::now(),
                },
            );
        }
        Ok(id)
    }

    /// The bytes kept under `id`.
    pub fn get(&self, id: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.sweep();
        if !valid_id(id) {
            return Err(StoreError::Gone);
        }
        let sealed = std::fs::read(self.path(id)).map_err(|_| StoreError::Gone)?;
        let held = self.held.lock().map_err(|_| StoreError::Gone)?;
        let h = held.get(id).ok_or(StoreError::Gone)?;
        h.key.open(&sealed).map_err(|_| StoreError::Altered)
    }

    /// Forgets `id` and deletes its file.
    pub fn remove(&self, id: &str) {
        if !valid_id(id) {
            return;
        }
        if let Ok(mut held) = self.held.lock() {
            held.remove(id);
        }
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Deletes expired uploads, and files whose key this process does not hold.
    pub fn sweep(&self) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        held.retain(|_, h| h.at.elapsed() < KEEP);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| n.strip_suffix(".sealed"));
            if !id.is_some_and(|id| held.contains_key(id)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// How many files wait in this process's folder.
    pub fn files(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |d| d.flatten().count())
    }
}

/// `O_NOFOLLOW`: a symbolic link planted in the folder is not followed.
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW
}

impl Drop for UploadStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_sealed_on_disk_and_gone_when_removed() {
        let base = tempfile::tempdir().unwrap();
        let store = UploadStore::open(base.path()).unwrap();
        let id = store.put(b"my_number\n123456789018\n").unwrap();
        let on_disk = std::fs::read(store.dir().join(format!("{id}.sealed"))).unwrap();
        assert!(!on_disk.windows(12).any(|w| w == b"123456789018"));
        assert_eq!(
            store.get(&id).unwrap().as_slice(),
            b"my_number\n123456789018\n"
        );
        store.remove(&id);
        assert!(matches!(store.get(&id), Err(StoreError::Gone)));
        assert_eq!(store.files(), 0);
        assert!(matches!(
            store.get("../../etc/passwd"),
            Err(StoreError::Gone)
        ));
    }

    #[test]
    fn a_restart_cannot_open_and_removes_what_the_last_process_left() {
        let base = tempfile::tempdir().unwrap();
        // A folder left by a process that no longer runs (pid numbers near the maximum are
        // not in use here).
        let dead = base.path().join("4194000-0badf00d");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("x.sealed"), b"junk").unwrap();
        let store = UploadStore::open(base.path()).unwrap();
        assert!(!dead.exists());
        // A file in our folder whose key we do not hold is swept.
        std::fs::write(
            store.dir().join("0123456789abcdef0123456789abcdef.sealed"),
            b"x",
        )
        .unwrap();
        store.sweep();
        assert_eq!(store.files(), 0);
    }
}

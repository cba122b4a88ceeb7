//! Files the CLI writes that hold personal data or keys: exports, reports, PDFs, the key file,
//! the roles' environment file. Each is created owner-only (0600) whatever the umask, never
//! through a symbolic link (one planted where the export goes would send it elsewhere), and
//! never over an existing file unless the user says `--force`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    options
}

/// Refuses `path` as an output unless it is new, or (with `force`) an existing regular file;
/// a symbolic link is refused either way.
pub fn check_writable(path: &Path, force: bool) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!(
                "{} is a symbolic link; refusing to write through it",
                path.display()
            )
        }
        Ok(meta) if !meta.is_file() => bail!("{} exists and is not a file", path.display()),
        Ok(_) if !force => bail!(
            "{} exists; refusing to overwrite it (pass --force to replace it)",
            path.display()
        ),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Creates `path` for writing, 0600 and exclusive. An existing file is refused, or with `force`
/// replaced (a regular file only: a symbolic link or anything else is refused even then).
pub fn create_private(path: &Path, force: bool) -> anyhow::Result<File> {
    check_writable(path, force)?;
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    private_options()
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes `bytes` to a new private file at `path` ([`create_private`]), fsynced.
pub fn write_private(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let mut f = create_private(path, force)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `bytes` to `path` atomically (a crash leaves the old file or the new one, never half
/// of one): into a fresh temporary file with a random name beside it, created exclusively and
/// 0600, fsynced, then renamed over `path`.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link; refusing to write through it",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", random_suffix()));
    let result = (|| {
        let mut f = private_options()
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn random_suffix() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_exclusive_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export.csv");
        drop(create_private(&out, false).unwrap());
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = create_private(&out, false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        drop(create_private(&out, true).unwrap());
        // A link planted where the export goes.
        let target = dir.path().join("elsewhere.csv");
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for force in [false, true] {
            let err = create_private(&link, force).unwrap_err().to_string();
            assert!(err.contains("symbolic link"), "{err}");
        }
        assert!(!target.exists());
        assert!(write_atomic_private(&link, b"x").is_err());
        // Atomic writes leave no temporary file and are 0600.
        let keys = dir.path().join("keys.json");
        write_atomic_private(&keys, b"{}").unwrap();
        write_atomic_private(&keys, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read(&keys).unwrap(), b"{\"a\":1}");
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}

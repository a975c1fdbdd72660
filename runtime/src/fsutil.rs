//! Small filesystem helpers shared by the runtime and the monitor.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};

/// Write `bytes` to `path` so that a reader sees either the old file or the
/// whole new one. With `sync`, the contents are on disk before the rename
/// (one fsync, a few milliseconds on a disk; [`sync_dir_of`] completes it).
fn write_atomic(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = private_file(&tmp).context(|| format!("create {}", tmp.display()))?;
        file.write_all(bytes)
            .context(|| format!("write {}", tmp.display()))?;
        if sync {
            file.sync_all()
                .context(|| format!("fsync {}", tmp.display()))?;
        }
        fs::rename(&tmp, path).context(|| format!("rename to {}", path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write `bytes` to `path` atomically, not fsynced (for caches).
pub(crate) fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes, false)
}

/// Mode of every directory berth makes under its roots: nobody but root
/// may list or traverse state that holds secrets, logs and image layers.
pub(crate) const PRIVATE_DIR: u32 = 0o700;
/// Mode of every file berth writes there.
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// Create (truncating) a file only its owner can read and write.
pub(crate) fn private_file(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// Open (creating, never truncating) a lock file only its owner can use;
/// a symlink in its place is refused.
pub(crate) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

/// `flock(2)` on `file` with `op` (`LOCK_EX`, `LOCK_NB`, ...), a wait
/// interrupted by a signal taken up again.
pub(crate) fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on an fd the caller owns for the call's length.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `create_dir_all` whose new directories are [`PRIVATE_DIR`].
pub(crate) fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(path)
}

/// `create_dir` of one [`PRIVATE_DIR`] directory; fails if it exists.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().mode(PRIVATE_DIR).create(path)
}

fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        context: format!("encode {}", path.display()),
        source,
    })
}

/// Atomic, not fsynced: for records of live processes, which a host crash
/// ends anyway.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &encode(path, value)?, false)
}

/// Atomic, with the file's contents fsynced before the rename, so that a
/// reader (or a crash) sees no file or the whole record; [`sync_dir_of`]
/// then makes the rename itself durable. For records that must outlive
/// the process, such as how a container exited: the monitor reports the
/// exit between the two, so that its starter does not wait for the
/// directory's fsync (~4 ms on a disk).
pub(crate) fn write_json_synced<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &encode(path, value)?, true)
}

/// fsync the directory holding `path`, making a rename into it durable.
pub(crate) fn sync_dir_of(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("fsync {}", dir.display()))
}

/// `Ok(None)` when the file does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| Error::Json {
            context: format!("parse {}", path.display()),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn what_berth_writes_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        create_private_dir_all(&nested).expect("dirs");
        assert_eq!(mode(&dir.path().join("a")), PRIVATE_DIR);
        assert_eq!(mode(&nested), PRIVATE_DIR);
        create_private_dir(&nested.join("c")).expect("dir");
        assert_eq!(mode(&nested.join("c")), PRIVATE_DIR);
        let json = nested.join("x.json");
        write_json_atomic(&json, &serde_json::json!({"secret": 1})).expect("json");
        assert_eq!(mode(&json), PRIVATE_FILE);
        write_json_synced(&json, &serde_json::json!({"secret": 2})).expect("json");
        sync_dir_of(&json).expect("fsync dir");
        assert_eq!(mode(&json), PRIVATE_FILE);
    }
}

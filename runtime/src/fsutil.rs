//! Small filesystem helpers shared by the runtime and the monitor.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};

/// Write `bytes` to `path` so that a reader sees either the old file or the
/// whole new one. With `durable`, the new one also survives a host crash
/// once this returns (two fsyncs, about a millisecond on a disk).
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).context(|| format!("create {}", tmp.display()))?;
        file.write_all(bytes)
            .context(|| format!("write {}", tmp.display()))?;
        if durable {
            file.sync_all()
                .context(|| format!("fsync {}", tmp.display()))?;
        }
        fs::rename(&tmp, path).context(|| format!("rename to {}", path.display()))?;
        if durable {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .context(|| format!("fsync {}", dir.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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

/// Atomic and fsynced: for records that must outlive the process, such as
/// how a container exited.
pub(crate) fn write_json_durable<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &encode(path, value)?, true)
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

//! Small files that must appear whole or not at all and survive a power
//! loss once made (the host id, the secret store's key file): written
//! beside, fsynced, linked (or renamed) into place, then the directory
//! fsynced so that the new entry is on disk too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How [`place`] puts the file at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placing {
    /// Only if there is none: a race's loser keeps the winner's.
    New,
    /// Over whatever is there.
    Replace,
}

/// What [`place`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    Written,
    /// [`Placing::New`] found a file there, left as it was.
    Existed,
}

/// `bytes` at `path` (mode `mode`), made whole beside it first, so that a
/// reader never sees it half-written, and durable when this returns.
pub fn place(path: &Path, bytes: &[u8], mode: u32, how: Placing) -> std::io::Result<Placed> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Unique per process and thread: several may make the file at once.
    let tag = crate::random::hex(&crate::random::bytes::<6>()?);
    let made = dir.join(format!(".{name}.{}.{tag}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&made)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    let placed = write().and_then(|()| match how {
        Placing::Replace => std::fs::rename(&made, path).map(|()| Placed::Written),
        Placing::New => match std::fs::hard_link(&made, path) {
            Ok(()) => Ok(Placed::Written),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Placed::Existed),
            Err(e) => Err(e),
        },
    });
    let _ = std::fs::remove_file(&made);
    if placed.as_ref().is_ok_and(|p| *p == Placed::Written) {
        // The link (or rename) is an entry in the directory: without this
        // a power loss can lose it although the file's data was synced.
        File::open(dir)?.sync_all()?;
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keeps_what_is_there_and_replace_replaces_it() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("f");
        assert_eq!(
            place(&p, b"one", 0o600, Placing::New).unwrap(),
            Placed::Written
        );
        assert_eq!(
            place(&p, b"two", 0o600, Placing::New).unwrap(),
            Placed::Existed
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(
            place(&p, b"three", 0o600, Placing::Replace).unwrap(),
            Placed::Written
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

//! The secret store's key file: this host's key read (a regular file,
//! root's, mode 0600, 32 bytes, read from the descriptor that was
//! checked), made on first use, exported and imported. The sealing itself
//! is [`super::sealing`]'s.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use berth_runtime::bounded_read::{open_no_follow, read_regular, ReadError};

use super::sealing::{
    check_meta, key_id, key_location, Imported, SealError, SealingKey, KEY_FILE_VAR, KEY_LEN,
};
use crate::files::{place, Placed, Placing};
use crate::random::{self, hex};

impl SealingKey {
    /// This host's key ([`key_location`]), made (root's, 0600) at the
    /// default place if there is none. A file of another size, mode or
    /// owner is refused, naming it.
    pub fn open_or_create(state_root: &Path) -> Result<Self, SealError> {
        let var = std::env::var(KEY_FILE_VAR).ok();
        let (path, named) = key_location(state_root, var.as_deref());
        let err = |message: String| SealError::KeyFile {
            path: path.clone(),
            message,
        };
        if !path.exists() {
            // A named file is another host's key: making a new one here
            // would seal what no other host can open.
            if named {
                return Err(err(format!(
                    "does not exist ({KEY_FILE_VAR} names it): copy the key file of the host \
                     that made it here"
                )));
            }
            std::fs::create_dir_all(state_root)
                .map_err(|e| err(format!("create {}: {e}", state_root.display())))?;
            create(&path).map_err(|e| err(format!("create: {e}")))?;
        }
        let bytes = read_checked(&path).map_err(err)?;
        Ok(Self::from_bytes(&bytes, path))
    }

    /// This host's key as text (base64), for `import` on another host;
    /// made first if there is none.
    pub fn export(state_root: &Path) -> Result<String, SealError> {
        let key = Self::open_or_create(state_root)?;
        let bytes = read_checked(key.path()).map_err(|message| SealError::KeyFile {
            path: key.path().to_path_buf(),
            message,
        })?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Makes `text` (what `export` printed on another host) this host's
    /// key. A key file holding another key is replaced only with `force`:
    /// what was sealed under it would no longer open.
    pub fn import(state_root: &Path, text: &str, force: bool) -> Result<Imported, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| SealError::Import(format!("not base64 ({e})")))?;
        if bytes.len() != KEY_LEN {
            return Err(SealError::Import(format!(
                "{} bytes, not {KEY_LEN}",
                bytes.len()
            )));
        }
        let var = std::env::var(KEY_FILE_VAR).ok();
        let (path, _) = key_location(state_root, var.as_deref());
        let err = |message: String| SealError::KeyFile {
            path: path.clone(),
            message,
        };
        // The file there is kept if it holds this key and refused if it
        // holds another (unless `force`); one that cannot be read is
        // refused either way.
        let compare = |old: Vec<u8>| {
            if old == bytes {
                return Ok(Imported::Unchanged(path.clone()));
            }
            Err(err(format!(
                "holds another key (ID {}; the imported one's is {}): what was sealed \
                 under it would no longer open; --force replaces it",
                hex(&key_id(&old)),
                hex(&key_id(&bytes))
            )))
        };
        if path.symlink_metadata().is_ok() {
            let old = read_checked(&path).map_err(err)?;
            if old == bytes || !force {
                return compare(old);
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("create {}: {e}", dir.display())))?;
        }
        // Without `force`, only a new file: one made by another process
        // since the look above is compared as that one was, not replaced.
        let how = if force {
            Placing::Replace
        } else {
            Placing::New
        };
        match place(&path, &bytes, 0o600, how).map_err(|e| err(format!("write: {e}")))? {
            Placed::Written => {}
            Placed::Existed => return compare(read_checked(&path).map_err(err)?),
        }
        Ok(Imported::Written(path))
    }
}

/// A new key file, whole or not at all ([`place`]): a process starting
/// beside this one never reads it half-written; a race's loser keeps the
/// winner's.
fn create(path: &Path) -> std::io::Result<()> {
    let key = random::bytes::<KEY_LEN>()?;
    place(path, &key, 0o600, Placing::New).map(|_| ())
}

/// The key's bytes, once the file is seen to be a regular file, root's
/// alone and of the right size. Opened once, without following a symlink
/// or blocking on a FIFO, and checked and read through that descriptor:
/// what is checked is what is read.
fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let file = open_no_follow(path).map_err(|e| e.to_string())?;
    // A little more than a key, so that a longer file is told by its size.
    let (bytes, meta) = read_regular(file, 4 * KEY_LEN as u64).map_err(|e| match e {
        ReadError::TooLarge(_) => format!("holds more than {} bytes, not {KEY_LEN}", 4 * KEY_LEN),
        e => e.to_string(),
    })?;
    check_meta(bytes.len() as u64, meta.permissions().mode(), meta.uid())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::sealing::KEY_FILE;

    #[test]
    fn seals_and_opens_with_a_fresh_nonce_and_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Not root in every test run: check what we can without it.
        if nix::unistd::geteuid().is_root() {
            let k = SealingKey::open_or_create(dir.path()).expect("key");
            let a = k.seal("parameters/x", "hunter2").expect("seal");
            let b = k.seal("parameters/x", "hunter2").expect("seal");
            assert_ne!(a, b, "a fresh nonce each time");
            assert!(!a.contains("hunter2"));
            assert_eq!(k.open("x", "parameters/x", &a).expect("open"), "hunter2");
            assert!(k.open("x", "parameters/y", &a).is_err(), "bound to its key");
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            // Another load reads the same key.
            let again = SealingKey::open_or_create(dir.path()).expect("key");
            assert_eq!(
                again.open("x", "parameters/x", &a).expect("open"),
                "hunter2"
            );
            std::fs::set_permissions(
                dir.path().join(KEY_FILE),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
            let e = SealingKey::open_or_create(dir.path())
                .err()
                .expect("refused");
            assert!(e.to_string().contains("secrets.key"), "{e}");
        }
    }

    #[test]
    fn a_symlinked_or_special_key_file_is_refused() {
        // The checks of owner and mode need root's files.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.key");
        place(&real, &[7u8; KEY_LEN], 0o600, Placing::New).expect("key");
        assert_eq!(read_checked(&real).expect("read"), vec![7u8; KEY_LEN]);
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).expect("ln");
        let e = read_checked(&link).expect_err("symlink");
        assert!(e.contains("symlink"), "{e}");
        let fifo = dir.path().join("fifo.key");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let e = read_checked(&fifo).expect_err("fifo");
        assert!(e.contains("FIFO"), "{e}");
    }

    #[test]
    fn import_replaces_another_key_only_with_force() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let text = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; KEY_LEN]);
        let file = dir.path().join(KEY_FILE);
        let imported = SealingKey::import(dir.path(), &text(1), false).expect("import");
        assert_eq!(imported, Imported::Written(file.clone()));
        let again = SealingKey::import(dir.path(), &text(1), false).expect("again");
        assert_eq!(again, Imported::Unchanged(file.clone()));
        let e = SealingKey::import(dir.path(), &text(2), false).expect_err("another");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(std::fs::read(&file).expect("read"), vec![1u8; KEY_LEN]);
        SealingKey::import(dir.path(), &text(2), true).expect("forced");
        assert_eq!(std::fs::read(&file).expect("read"), vec![2u8; KEY_LEN]);
    }
}

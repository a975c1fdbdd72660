//! The secret store's key file: this host's key read (a regular file,
//! root's, mode 0600, 32 bytes, read from the descriptor that was
//! checked), made on first use, exported and imported. The sealing itself
//! is [`super::sealing`]'s.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;

use super::sealing::{
    check_meta, key_id, key_location, Imported, SealError, SealingKey, KEY_FILE_VAR, KEY_LEN,
};
use crate::files::{place, Placing};
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
        if path.exists() {
            let old = read_checked(&path).map_err(err)?;
            if old == bytes {
                return Ok(Imported::Unchanged(path));
            }
            if !force {
                return Err(err(format!(
                    "holds another key (ID {}; the imported one's is {}): what was sealed \
                     under it would no longer open; --force replaces it",
                    hex(&key_id(&old)),
                    hex(&key_id(&bytes))
                )));
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("create {}: {e}", dir.display())))?;
        }
        place(&path, &bytes, 0o600, Placing::Replace).map_err(|e| err(format!("write: {e}")))?;
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

/// The key's bytes, once the file is seen to be root's alone and of the
/// right size.
fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    check_meta(meta.len(), meta.permissions().mode(), meta.uid())?;
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() != KEY_LEN {
        return Err(format!("holds {} bytes, not {KEY_LEN}", bytes.len()));
    }
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
}

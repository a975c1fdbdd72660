//! Values at rest: sealed with ChaCha20-Poly1305 under the host's key
//! file, `<state root>/secrets.key` (32 random bytes, mode 0600, root's),
//! made on first use. Each value gets a fresh random nonce, and its store
//! key is the associated data, so a sealed value copied under another key
//! does not open. The store (state.db, etcd) never holds a plaintext.
//!
//! Every host that resolves a task's secrets needs the same key file: on
//! a shared store (etcd), copy the first host's to the others.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The key file's name under the state root.
pub const KEY_FILE: &str = "secrets.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secret store key {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("random bytes: {0}")]
    Random(std::io::Error),
    #[error("{what}: cannot be decrypted with {path} (sealed under another key file, or altered)")]
    Open { what: String, path: PathBuf },
    #[error("{what}: encryption failed")]
    Seal { what: String },
}

/// The host's key, loaded from its file.
pub struct SealingKey {
    cipher: ChaCha20Poly1305,
    path: PathBuf,
}

impl SealingKey {
    /// The key under `state_root`, made (root's, 0600) if there is none.
    /// A file of another size, mode or owner is refused, naming it.
    pub fn open_or_create(state_root: &Path) -> Result<Self, SealError> {
        let path = state_root.join(KEY_FILE);
        let err = |message: String| SealError::KeyFile {
            path: path.clone(),
            message,
        };
        if !path.exists() {
            std::fs::create_dir_all(state_root)
                .map_err(|e| err(format!("create {}: {e}", state_root.display())))?;
            create(&path).map_err(|e| err(format!("create: {e}")))?;
        }
        let bytes = read_checked(&path).map_err(err)?;
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            path,
        })
    }

    /// `plain` sealed for the record at `store_key`: base64 of the nonce
    /// and the ciphertext.
    pub fn seal(&self, store_key: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce).map_err(SealError::Random)?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: store_key.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal {
                what: store_key.into(),
            })?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// What [`SealingKey::seal`] sealed for `store_key`.
    pub fn open(&self, store_key: &str, sealed: &str) -> Result<String, SealError> {
        let fail = || SealError::Open {
            what: store_key.into(),
            path: self.path.clone(),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| fail())?;
        if bytes.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: store_key.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

/// Fills `buf` from the kernel's generator.
pub fn random(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A new key file, whole or not at all: written beside, then linked in,
/// so a process starting beside this one never reads it half-written; a
/// race's loser keeps the winner's.
fn create(path: &Path) -> std::io::Result<()> {
    let mut key = [0u8; KEY_LEN];
    random(&mut key)?;
    let made = path.with_extension(format!("key.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&made)?;
        f.write_all(&key)?;
        f.sync_all()
    };
    let linked = write().and_then(|()| match std::fs::hard_link(&made, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&made);
    linked
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

/// Pure: a key file's size, mode and owner as they must be.
fn check_meta(len: u64, mode: u32, uid: u32) -> Result<(), String> {
    if len != KEY_LEN as u64 {
        return Err(format!("holds {len} bytes, not {KEY_LEN}"));
    }
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o}: others than its owner may read it (chmod 600 it)",
            mode & 0o777
        ));
    }
    if uid != 0 {
        return Err(format!("owned by uid {uid}, not root"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_checks() {
        check_meta(32, 0o100600, 0).expect("good");
        assert!(check_meta(31, 0o600, 0).unwrap_err().contains("31 bytes"));
        assert!(check_meta(32, 0o644, 0).unwrap_err().contains("644"));
        assert!(check_meta(32, 0o600, 1000).unwrap_err().contains("1000"));
    }

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
            assert_eq!(k.open("parameters/x", &a).expect("open"), "hunter2");
            assert!(k.open("parameters/y", &a).is_err(), "bound to its key");
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            // Another load reads the same key.
            let again = SealingKey::open_or_create(dir.path()).expect("key");
            assert_eq!(again.open("parameters/x", &a).expect("open"), "hunter2");
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

//! Values at rest: sealed with ChaCha20-Poly1305 under the host's key
//! (read and made by [`super::key_file`]): the key `<state root>/secrets.key` (32 random bytes, mode 0600, root's),
//! made on first use, or the file `BERTH_SECRETS_KEY_FILE` names (which
//! must exist: it is another host's key, copied). Each value gets a fresh
//! random nonce, and its store key is the associated data, so a sealed
//! value copied under another key does not open. The store (state.db,
//! etcd) never holds a plaintext.
//!
//! Every host that resolves a task's secrets needs the same key: on a
//! shared store (etcd), `berth system secrets-key export` on the first
//! host and `import` on the others (or the same file named by
//! `BERTH_SECRETS_KEY_FILE`). A sealed value carries its key's ID (a hash
//! of the key, which says nothing of it), so that a host with another key
//! says so, naming its key file, rather than "altered".

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::random::{self, hex};

/// The key file's name under the state root.
pub const KEY_FILE: &str = "secrets.key";
/// The variable naming another key file than `<state root>/secrets.key`.
pub const KEY_FILE_VAR: &str = "BERTH_SECRETS_KEY_FILE";
pub(super) const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// A sealed value's first bytes: this format (its key's ID follows).
const MAGIC: [u8; 2] = [0xb3, 0x01];
const KEY_ID_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("secret store key {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("random bytes: {0}")]
    Random(std::io::Error),
    #[error(
        "cannot decrypt {what} with key file {path}: the key differs from the one that sealed \
         it (key ID {sealed_by}; this file's is {ours}): give this host the sealing host's key \
         (berth system secrets-key export there, import here; or name it with {KEY_FILE_VAR})"
    )]
    WrongKey {
        what: String,
        path: PathBuf,
        sealed_by: String,
        ours: String,
    },
    #[error("cannot decrypt {what} with key file {path}: the sealed value is damaged or altered")]
    Open { what: String, path: PathBuf },
    #[error("key to import: {0}")]
    Import(String),
    #[error("{what}: encryption failed")]
    Seal { what: String },
}

/// The host's key, loaded from its file.
pub struct SealingKey {
    cipher: ChaCha20Poly1305,
    path: PathBuf,
    id: [u8; KEY_ID_LEN],
}

/// Where this host's key is: the file `BERTH_SECRETS_KEY_FILE` names
/// (`var`), which must exist, or `<state root>/secrets.key`, made on
/// first use. Pure.
pub fn key_location(state_root: &Path, var: Option<&str>) -> (PathBuf, bool) {
    match var.filter(|v| !v.is_empty()) {
        Some(v) => (PathBuf::from(v), true),
        None => (state_root.join(KEY_FILE), false),
    }
}

/// What `import` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    /// The key file was written.
    Written(PathBuf),
    /// The key file already held this key.
    Unchanged(PathBuf),
}

impl SealingKey {
    pub(super) fn from_bytes(bytes: &[u8], path: PathBuf) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
            id: key_id(bytes),
            path,
        }
    }

    /// The key file in use.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key's ID, as sealed values carry it.
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    /// `plain` sealed for the record at `store_key`: base64 of the nonce
    /// and the ciphertext.
    pub fn seal(&self, store_key: &str, plain: &str) -> Result<String, SealError> {
        let nonce = random::bytes::<NONCE_LEN>().map_err(SealError::Random)?;
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
        let mut out = MAGIC.to_vec();
        out.extend(self.id);
        out.extend(nonce);
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// What [`SealingKey::seal`] sealed for `store_key`; `what` names the
    /// value in errors ("parameter /app/db").
    pub fn open(&self, what: &str, store_key: &str, sealed: &str) -> Result<String, SealError> {
        let fail = || SealError::Open {
            what: what.into(),
            path: self.path.clone(),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| fail())?;
        let body = match split_sealed(&bytes) {
            Some((id, body)) if id == self.id => body,
            Some((id, _)) => {
                return Err(SealError::WrongKey {
                    what: what.into(),
                    path: self.path.clone(),
                    sealed_by: hex(id),
                    ours: self.id(),
                })
            }
            // Not this format: every value berth seals carries its key's
            // ID (an earlier format never left issue 15's branch).
            None => return Err(fail()),
        };
        self.decrypt(store_key, body).ok_or_else(fail)
    }

    fn decrypt(&self, store_key: &str, bytes: &[u8]) -> Option<String> {
        if bytes.len() < NONCE_LEN {
            return None;
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
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// A sealed value's key ID and nonce-and-ciphertext, if it is in the
/// format that carries the ID. Pure.
fn split_sealed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(&MAGIC[..])?;
    (rest.len() >= KEY_ID_LEN + NONCE_LEN).then(|| rest.split_at(KEY_ID_LEN))
}

/// A key's ID: the first bytes of a domain-separated SHA-256 of it, which
/// tells keys apart and says nothing of them.
pub(super) fn key_id(key: &[u8]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::new()
        .chain_update(b"berth secrets key id\0")
        .chain_update(key)
        .finalize();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// Pure: a key file's size, mode and owner as they must be.
pub(super) fn check_meta(len: u64, mode: u32, uid: u32) -> Result<(), String> {
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

    /// Keys made in memory: no key file, so no root needed.
    fn key(byte: u8, path: &str) -> SealingKey {
        SealingKey::from_bytes(&[byte; KEY_LEN], PathBuf::from(path))
    }

    #[test]
    fn another_key_is_named_as_another_key() {
        let (a, b) = (key(1, "/hostA/secrets.key"), key(2, "/hostB/secrets.key"));
        assert_ne!(a.id(), b.id());
        let sealed = a.seal("parameters/db", "pw").expect("seal");
        assert_eq!(
            a.open("parameter db", "parameters/db", &sealed)
                .expect("open"),
            "pw"
        );
        let e = b
            .open("parameter db", "parameters/db", &sealed)
            .expect_err("another key");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "cannot decrypt parameter db with key file /hostB/secrets.key: \
                 the key differs from the one that sealed it"
            ) && text.contains(&a.id())
                && text.contains(&b.id()),
            "{text}"
        );
        // The same key, the value altered: not "another key".
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(bytes);
        let e = a
            .open("parameter db", "parameters/db", &altered)
            .expect_err("altered");
        assert!(e.to_string().contains("damaged or altered"), "{e}");
    }

    #[test]
    fn a_value_without_the_format_is_refused_as_damaged() {
        let k = key(3, "/k");
        // A nonce and ciphertext alone under the right key, as an earlier
        // commit of issue 15 sealed: no longer guessed at.
        let nonce = [0u8; NONCE_LEN];
        let body = k
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: b"old".as_slice(),
                    aad: b"parameters/o".as_slice(),
                },
            )
            .expect("encrypt");
        let bare =
            base64::engine::general_purpose::STANDARD.encode([nonce.to_vec(), body].concat());
        let e = k.open("o", "parameters/o", &bare).expect_err("bare");
        assert!(matches!(e, SealError::Open { .. }), "{e}");
        let e = k.open("o", "parameters/o", "AAAA").expect_err("short");
        assert!(matches!(e, SealError::Open { .. }), "{e}");
    }

    #[test]
    fn the_key_file_is_the_named_one_or_the_state_roots() {
        let root = Path::new("/var/lib/berth");
        assert_eq!(
            key_location(root, None),
            (PathBuf::from("/var/lib/berth/secrets.key"), false)
        );
        assert_eq!(
            key_location(root, Some("")),
            (PathBuf::from("/var/lib/berth/secrets.key"), false)
        );
        assert_eq!(
            key_location(root, Some("/etc/berth/secrets.key")),
            (PathBuf::from("/etc/berth/secrets.key"), true)
        );
    }
}

//! Opening the store a [`StoreConfig`] names: the one place a berth
//! process turns `--store` into a `Box<dyn Store>`, so that the CLI, the
//! task supervisors and the agent all open the same store the same way.

use std::path::Path;

use super::etcd::TlsPem;
use super::url::{StoreConfig, StoreUrl, TlsFiles};
use super::{EtcdStore, SqliteStore, Store, StoreError, StoreResult};

/// The SQLite database under a state root.
pub const SQLITE_FILE: &str = "state.db";

/// Open the store `config` names; SQLite lives under `state_root`. An
/// etcd store's errors, now and on every later call, name its URL.
pub fn open(config: &StoreConfig, state_root: &Path) -> StoreResult<Box<dyn Store>> {
    match &config.url {
        StoreUrl::Sqlite => Ok(Box::new(SqliteStore::open(&state_root.join(SQLITE_FILE))?)),
        StoreUrl::Etcd {
            endpoints,
            prefix,
            tls,
        } => {
            let root = StoreUrl::etcd_root(prefix);
            let name = config.url.to_string();
            let store = if *tls {
                let pem = read_pem(&config.tls, &name)?;
                EtcdStore::connect_tls(endpoints, &root, &name, pem)?
            } else {
                EtcdStore::connect_named(endpoints, &root, &name)?
            };
            Ok(Box::new(store))
        }
    }
}

/// The most a TLS file (a PEM certificate chain or key) may hold: far
/// more than any real one, and a bound on what `--store-ca /dev/zero`
/// would read.
const PEM_MAX: u64 = 1 << 20;

/// The TLS files, read; an error names the flag and the store.
fn read_pem(files: &TlsFiles, store: &str) -> StoreResult<TlsPem> {
    let read = |flag: &str, path: &Option<std::path::PathBuf>| -> StoreResult<Option<Vec<u8>>> {
        let Some(path) = path else { return Ok(None) };
        read_pem_file(path).map(Some).map_err(|why| {
            StoreError::Backend(format!("{store}: {flag} {}: {why}", path.display()))
        })
    };
    // The URL parser made sure of the CA, and of a certificate with its key.
    let ca = read("--store-ca", &files.ca)?.unwrap_or_default();
    let identity = match (
        read("--store-cert", &files.cert)?,
        read("--store-key", &files.key)?,
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    Ok(TlsPem { ca, identity })
}

/// One PEM file: a regular file (not a directory, a device or a FIFO,
/// which could block or never end), of at most [`PEM_MAX`] bytes, with a
/// PEM block in it. Anything else would fail later, at the handshake,
/// with an error that names no file.
fn read_pem_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PEM_MAX + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > PEM_MAX {
        return Err(format!("larger than {PEM_MAX} bytes: not a PEM file"));
    }
    if !pem_like(&bytes) {
        return Err("not PEM (no \"-----BEGIN \" block)".into());
    }
    Ok(bytes)
}

/// Whether `bytes` hold a PEM block's start and end lines.
fn pem_like(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.find("-----BEGIN ")
        .is_some_and(|at| text[at..].contains("-----END "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    /// Each bad file is refused naming its flag, its path and why.
    #[test]
    fn tls_files_must_be_small_regular_pem_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, body: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).expect("write");
            path
        };
        let good = file("ca.pem", PEM.as_bytes());
        let huge = file("huge.pem", &vec![b'A'; PEM_MAX as usize + 1]);
        let cases = [
            (dir.path().join("missing.pem"), "No such file"),
            (dir.path().to_path_buf(), "not a regular file"),
            ("/dev/zero".into(), "not a regular file"),
            (file("empty.pem", b""), "not PEM"),
            (file("junk.pem", b"\xff\xfe garbage"), "not PEM"),
            (
                file("half.pem", b"-----BEGIN CERTIFICATE-----\nAAAA"),
                "not PEM",
            ),
            (huge, "larger than"),
        ];
        for (path, why) in cases {
            for flag in ["--store-ca", "--store-cert", "--store-key"] {
                let mut files = TlsFiles {
                    ca: Some(good.clone()),
                    cert: Some(good.clone()),
                    key: Some(good.clone()),
                };
                let slot = match flag {
                    "--store-ca" => &mut files.ca,
                    "--store-cert" => &mut files.cert,
                    _ => &mut files.key,
                };
                *slot = Some(path.clone());
                let err = read_pem(&files, "etcds://h:1/x").err().expect("refused");
                let msg = err.to_string();
                let named = format!("etcds://h:1/x: {flag} {}: ", path.display());
                assert!(msg.contains(&named) && msg.contains(why), "{msg}");
            }
        }
        let files = TlsFiles {
            ca: Some(good.clone()),
            cert: Some(good.clone()),
            key: Some(good),
        };
        let pem = read_pem(&files, "s").expect("good files");
        assert_eq!(pem.ca, PEM.as_bytes());
        assert!(pem.identity.is_some());
    }
}

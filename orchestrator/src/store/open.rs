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

/// The TLS files, read; an error names the flag and the store.
fn read_pem(files: &TlsFiles, store: &str) -> StoreResult<TlsPem> {
    let read = |flag: &str, path: &Option<std::path::PathBuf>| -> StoreResult<Option<Vec<u8>>> {
        let Some(path) = path else { return Ok(None) };
        std::fs::read(path)
            .map(Some)
            .map_err(|e| StoreError::Backend(format!("{store}: {flag} {}: {e}", path.display())))
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

//! Opening the store a [`StoreConfig`] names: the one place a berth
//! process turns `--store` into a `Box<dyn Store>`, so that the CLI, the
//! task supervisors and the agent all open the same store the same way.

use std::path::Path;

use super::url::{StoreConfig, StoreUrl};
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
            tls: false,
        } => Ok(Box::new(EtcdStore::connect_named(
            endpoints,
            &StoreUrl::etcd_root(prefix),
            &config.url.to_string(),
        )?)),
        StoreUrl::Etcd { tls: true, .. } => Err(StoreError::Backend(format!(
            "{}: TLS (etcds://) is not supported by this build",
            config.url
        ))),
    }
}

//! The store behind the orchestrator: keyed records with revisions,
//! compare-and-swap, listing by prefix, multi-key transactions and leases.
//! Narrow on purpose, so that etcd fits behind it as well as SQLite.

#[cfg(any(test, feature = "store-contract"))]
pub mod contract;
mod etcd;
pub mod keys;
mod open;
mod sqlite;
pub mod url;

#[cfg(any(test, feature = "test-etcd"))]
pub use etcd::{test_certs, test_server};
pub use etcd::{EtcdStore, TlsPem};
pub use open::{open, SQLITE_FILE};
pub use sqlite::SqliteStore;
pub use url::{StoreConfig, StoreUrl, StoreUrlError, TlsFiles};

/// A record and the store revision that last wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub value: Vec<u8>,
    pub revision: u64,
}

/// What a write expects to find, so that concurrent writers never lose an
/// update: the read-modify-write of one process fails if another came in
/// between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must still be at this revision.
    Revision(u64),
}

#[derive(Clone, Debug)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        expect: Expect,
    },
    Delete {
        key: String,
        expect: Expect,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An expectation failed: someone else wrote first. Re-read and retry.
    #[error("conflict on {0}: it changed since it was read")]
    Conflict(String),
    #[error("store: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait Store: Send + Sync {
    fn get(&self, key: &str) -> StoreResult<Option<Record>>;

    /// All records whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>>;

    /// Apply all `ops` or none; returns the new store revision, which
    /// every record written carries. Each op names a different key.
    /// `store::contract` is the full promise.
    fn commit(&self, ops: &[Op]) -> StoreResult<u64>;

    /// Take or renew the lease `name` for `holder` for `ttl`; false when
    /// another holder has it and it has not expired.
    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool>;

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;

    /// Who holds the lease `name` now: None when nobody does or its
    /// holder let it expire. How one host tells another's agent is gone.
    fn lease_holder(&self, name: &str) -> StoreResult<Option<String>>;

    /// Whether the lease `name` has surely lapsed, so that its holder may
    /// be counted gone (a host lost). Stricter than [`Store::lease_holder`]
    /// answering None: etcd answers from its own lease expiry, which an
    /// outage of the store never brings about (a new etcd leader renews
    /// every lease), so hosts that could not renew while etcd was away are
    /// not counted lost when it returns.
    fn lease_lapsed(&self, name: &str) -> StoreResult<bool> {
        Ok(self.lease_holder(name)?.is_none())
    }

    /// The live leases whose name starts with `prefix`, as (name, holder)
    /// in name order: [`Store::lease_holder`] of each, in one range read
    /// (run-task asks which of a cluster's thousands of agents live).
    fn lease_holders(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;

    /// The store's revision now: that of the last commit (etcd's counts
    /// every write to the etcd, a lease's too). Read it before reading
    /// what [`Store::wait`] is to watch.
    fn revision(&self) -> StoreResult<u64>;

    /// Sleep until a record under `prefix` changes after revision `after`
    /// (at once when one already has), or until `timeout` passes: true on
    /// a change, false after the timeout with none. It may wake for a
    /// change elsewhere (SQLite watches the whole store), so the caller
    /// reads again either way. etcd: a watch; SQLite: polls its revision.
    fn wait(&self, prefix: &str, after: u64, timeout: std::time::Duration) -> StoreResult<bool>;

    /// Drop history no reader needs any more, when due: etcd keeps every
    /// revision until compacted (its auto-compaction is off by default),
    /// so a long-lived process (the agent) calls this each pass and the
    /// store compacts, at most every few minutes, to a revision that many
    /// minutes old. Returns the revision compacted to, if it did.
    /// SQLite keeps no history: nothing to do.
    fn compact(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    /// True when other hosts share this store (etcd), so that this host is
    /// one container instance among many, registered by its agent; false
    /// for the embedded store of one host (SQLite).
    fn shared(&self) -> bool {
        false
    }

    /// Give back the memory the store's client keeps between accesses
    /// (SQLite: its page cache and lookaside), for a long-lived process
    /// that reads it rarely (a task supervisor once its task runs). The
    /// next access reads from disk again. Best effort.
    fn release_memory(&self) {}
}

/// One store shared by several users in a process (the agent's threads,
/// tests that play several hosts over one store).
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, key: &str) -> StoreResult<Option<Record>> {
        (**self).get(key)
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>> {
        (**self).list(prefix)
    }

    fn commit(&self, ops: &[Op]) -> StoreResult<u64> {
        (**self).commit(ops)
    }

    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool> {
        (**self).acquire_lease(name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        (**self).release_lease(name, holder)
    }

    fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        (**self).lease_holder(name)
    }

    fn lease_lapsed(&self, name: &str) -> StoreResult<bool> {
        (**self).lease_lapsed(name)
    }

    fn lease_holders(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        (**self).lease_holders(prefix)
    }

    fn revision(&self) -> StoreResult<u64> {
        (**self).revision()
    }

    fn wait(&self, prefix: &str, after: u64, timeout: std::time::Duration) -> StoreResult<bool> {
        (**self).wait(prefix, after, timeout)
    }

    fn compact(&self) -> StoreResult<Option<u64>> {
        (**self).compact()
    }

    fn shared(&self) -> bool {
        (**self).shared()
    }

    fn release_memory(&self) {
        (**self).release_memory()
    }
}

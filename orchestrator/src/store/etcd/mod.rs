//! The store on etcd (v3 API, through the `etcd-client` crate): one
//! commit is one etcd transaction, a list is a prefix range, leases are
//! records with a deadline, collected by etcd leases when abandoned.
//!
//! The `Store` trait is synchronous and etcd-client is async: each store
//! holds a current-thread tokio runtime and blocks on it. Every request
//! is bounded (connect and request timeouts), so a dead etcd answers
//! [`StoreError::Backend`] naming the endpoints, never a hang.

mod plan;
#[cfg(any(test, feature = "test-etcd"))]
pub mod test_server;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};

use super::{Op, Record, Store, StoreError, StoreResult};
use plan::{Layout, LeaseValue};

/// How long to wait for a TCP/HTTP2 connection to an endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one request may take, connection included. Generous enough
/// for a slow disk's fsync, short enough that a verb fails visibly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct EtcdStore {
    client: Client,
    runtime: tokio::runtime::Runtime,
    layout: Layout,
    /// What error messages call this store (its endpoints, or its URL).
    name: String,
}

impl EtcdStore {
    /// A store on the etcd at `endpoints` (`host:port`, or URLs), whose
    /// records and leases all live under `root` in etcd's key space.
    /// Connecting is lazy: an unreachable etcd shows on first use.
    pub fn connect(endpoints: &[String], root: &str) -> StoreResult<Self> {
        Self::connect_named(endpoints, root, &format!("etcd at {}", endpoints.join(",")))
    }

    /// [`Self::connect`], with errors naming the store `name` (its URL).
    pub fn connect_named(endpoints: &[String], root: &str, named: &str) -> StoreResult<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("{named}: a runtime: {e}")))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        let client = runtime
            .block_on(async {
                tokio::time::timeout(REQUEST_TIMEOUT, Client::connect(endpoints, Some(options)))
                    .await
            })
            .map_err(|_| StoreError::Backend(format!("{named}: connect timed out")))?
            .map_err(|e| StoreError::Backend(format!("{named}: {e}")))?;
        Ok(EtcdStore {
            client,
            runtime,
            layout: Layout::new(root),
            name: named.to_string(),
        })
    }

    /// Run one request to completion, bounded by REQUEST_TIMEOUT.
    fn run<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> StoreResult<T> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, request).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.backend(what, e)),
            Err(_) => Err(self.backend(what, "no answer in time")),
        }
    }

    fn backend(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Backend(format!("{}: {what}: {e}", self.name))
    }

    fn get_raw(&self, etcd_key: &str) -> StoreResult<Option<KeyValue>> {
        let mut kv = self.client.kv_client();
        let mut resp = self.run("get", kv.get(etcd_key, None))?;
        Ok(resp.take_kvs().into_iter().next())
    }

    fn record(&self, kv: &KeyValue) -> StoreResult<Record> {
        let revision = u64::try_from(kv.mod_revision())
            .map_err(|_| self.backend("get", "a negative revision"))?;
        Ok(Record {
            value: kv.value().to_vec(),
            revision,
        })
    }

    /// Name the op whose expectation failed, from the keys' state the
    /// txn's failure branch read (the first one, as the trait promises).
    fn conflict(&self, ops: &[Op], responses: &[TxnOpResponse]) -> StoreError {
        for (op, resp) in ops.iter().zip(responses) {
            let seen = match resp {
                TxnOpResponse::Get(get) => get
                    .kvs()
                    .first()
                    .map(|kv| (kv.create_revision(), kv.mod_revision())),
                _ => continue,
            };
            if !plan::holds(plan::expect_of(op), seen) {
                return StoreError::Conflict(plan::key_of(op).into());
            }
        }
        StoreError::Conflict(ops.first().map(plan::key_of).unwrap_or("").into())
    }

    fn now_ms() -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    /// Revoke an etcd lease nobody needs any more. Best effort: an
    /// unrevoked lease only lives out its TTL.
    fn revoke(&self, id: i64) {
        if id != 0 {
            let mut lease = self.client.lease_client();
            let _ = self.run("lease revoke", lease.revoke(id));
        }
    }
}

impl Store for EtcdStore {
    fn shared(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> StoreResult<Option<Record>> {
        match self.get_raw(&self.layout.record(key))? {
            Some(kv) => Ok(Some(self.record(&kv)?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>> {
        let mut kv = self.client.kv_client();
        // etcd returns a range in key (byte) order.
        let options = GetOptions::new().with_prefix();
        let mut resp = self.run("list", kv.get(self.layout.record(prefix), Some(options)))?;
        let mut out = Vec::new();
        for kv in resp.take_kvs() {
            let etcd_key = kv
                .key_str()
                .map_err(|e| self.backend("list", format!("a key not in UTF-8: {e}")))?;
            if let Some(key) = self.layout.key_of(etcd_key) {
                out.push((key.to_string(), self.record(&kv)?));
            }
        }
        Ok(out)
    }

    fn commit(&self, ops: &[Op]) -> StoreResult<u64> {
        if ops.len() > plan::MAX_OPS {
            return Err(self.backend(
                "commit",
                format!(
                    "{} operations in one commit; etcd takes at most {}",
                    ops.len(),
                    plan::MAX_OPS
                ),
            ));
        }
        let mut compares = Vec::new();
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for op in ops {
            let key = self.layout.record(plan::key_of(op));
            compares.extend(plan::compare(&key, plan::expect_of(op)));
            reads.push(TxnOp::get(key.clone(), None));
            writes.push(match op {
                Op::Put { value, .. } => TxnOp::put(key, value.clone(), None),
                Op::Delete { .. } => TxnOp::delete(key, None),
            });
        }
        let txn = Txn::new().when(compares).and_then(writes).or_else(reads);
        let mut kv = self.client.kv_client();
        let mut resp = self.run("commit", kv.txn(txn))?;
        if !resp.succeeded() {
            return Err(self.conflict(ops, &resp.op_responses()));
        }
        let revision = resp.take_header().map(|h| h.revision()).unwrap_or(0);
        u64::try_from(revision).map_err(|_| self.backend("commit", "a negative revision"))
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let key = self.layout.lease(name);
        let now = Self::now_ms();
        let current = self.get_raw(&key)?;
        let (guard, old_lease) = match &current {
            Some(kv) => {
                let held = LeaseValue::decode(kv.value());
                if held.is_some_and(|v| v.refuses(holder, now)) {
                    return Ok(false);
                }
                let guard = Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision());
                (guard, kv.lease())
            }
            None => (
                Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                0,
            ),
        };
        // A fresh etcd lease per take or renewal: it removes the record
        // once its holder stops renewing (etcd may round its TTL up to
        // the server's minimum; the deadline in the value still decides).
        let mut leases = self.client.lease_client();
        let granted = self.run("lease grant", leases.grant(plan::etcd_ttl_secs(ttl), None))?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let value = LeaseValue {
            holder: holder.into(),
            expires_ms: now.saturating_add(ttl_ms),
        };
        let put = TxnOp::put(
            key,
            value.encode(),
            Some(PutOptions::new().with_lease(granted.id())),
        );
        let txn = Txn::new().when([guard]).and_then([put]);
        let mut kv = self.client.kv_client();
        let resp = self.run("acquire lease", kv.txn(txn))?;
        if resp.succeeded() {
            self.revoke(old_lease);
        } else {
            // Someone else took or renewed it since we read it.
            self.revoke(granted.id());
        }
        Ok(resp.succeeded())
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let key = self.layout.lease(name);
        let Some(kv) = self.get_raw(&key)? else {
            return Ok(());
        };
        let ours = LeaseValue::decode(kv.value()).is_some_and(|v| v.holder == holder);
        if !ours {
            return Ok(());
        }
        // Delete only the record we read: a holder that took the lease
        // over since (ours having expired) keeps it.
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                kv.mod_revision(),
            )])
            .and_then([TxnOp::delete(key, None)]);
        let mut client = self.client.kv_client();
        let resp = self.run("release lease", client.txn(txn))?;
        if resp.succeeded() {
            self.revoke(kv.lease());
        }
        Ok(())
    }

    fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        let Some(kv) = self.get_raw(&self.layout.lease(name))? else {
            return Ok(None);
        };
        // The deadline decides, as for acquire_lease.
        Ok(LeaseValue::decode(kv.value())
            .filter(|v| v.expires_ms > Self::now_ms())
            .map(|v| v.holder))
    }
}

#[cfg(test)]
mod tests;

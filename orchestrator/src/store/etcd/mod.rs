//! The store on etcd (v3 API, through the `etcd-client` crate): one
//! commit is one etcd transaction, a list is a prefix range, leases are
//! records with a deadline, collected by etcd leases when abandoned.
//!
//! The `Store` trait is synchronous and etcd-client is async: each store
//! holds a current-thread tokio runtime and blocks on it. Every request
//! is bounded (connect and request timeouts), so a dead etcd answers
//! [`StoreError::Backend`] naming the endpoints, never a hang.

mod history;
mod marker;
mod plan;
#[cfg(any(test, feature = "test-etcd"))]
pub mod test_certs;
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
/// The largest answer a read takes (gRPC's default is 4 MiB): a page of
/// [`plan::LIST_PAGE`] records of up to 128 KiB each.
const MAX_ANSWER: usize = 64 << 20;
/// The pause before a request goes again to another member, when the
/// one it went to was down (its channel picks a member at random).
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How long one try of a read may take before it goes again: a read sent
/// to a member whose leader just died waits for an answer that never
/// comes, and an election takes a second or two.
const READ_TRY: Duration = Duration::from_millis(1500);

/// Whether a request may go again after it failed with `e`: reads always
/// may, and so may a commit (its marker makes a copy sent again apply at
/// most once: `marker`); any other write only when it surely never
/// reached a member.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Read,
    Write,
}

/// The PEM files of a TLS connection, read: the CA that signed the
/// members' certificates, and this client's certificate and key.
pub struct TlsPem {
    pub ca: Vec<u8>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsPem {
    fn options(&self) -> etcd_client::TlsOptions {
        let options = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(&self.ca));
        match &self.identity {
            Some((cert, key)) => options.identity(etcd_client::Identity::from_pem(cert, key)),
            None => options,
        }
    }
}

pub struct EtcdStore {
    client: Client,
    /// How many members the client spreads requests over: with one,
    /// nothing else could answer, so a failure is final at once.
    members: usize,
    runtime: tokio::runtime::Runtime,
    layout: Layout,
    /// What error messages call this store (its endpoints, or its URL).
    name: String,
    /// TLS without a client certificate: a server that asks for one
    /// closes the connection without a word, so its errors say why.
    no_identity: bool,
    /// When `compact` last compacted, and what it noted to compact next.
    compaction: std::sync::Mutex<plan::Compaction>,
    /// The etcd lease commit markers are attached to, and their ids.
    marker_lease: std::sync::Mutex<marker::MarkerLease>,
    marker_ids: marker::Ids,
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
        Self::connect_with(endpoints, root, named, None)
    }

    /// [`Self::connect_named`] over TLS: the members' certificates must
    /// be signed by `pem.ca`, and `pem.identity` is this client's.
    pub fn connect_tls(
        endpoints: &[String],
        root: &str,
        named: &str,
        pem: TlsPem,
    ) -> StoreResult<Self> {
        Self::connect_with(endpoints, root, named, Some(pem))
    }

    fn connect_with(
        endpoints: &[String],
        root: &str,
        named: &str,
        tls: Option<TlsPem>,
    ) -> StoreResult<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("{named}: a runtime: {e}")))?;
        // A member that lost its leader refuses at once ("no leader", sent
        // again to another) rather than hold the request until it times
        // out.
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_require_leader(true);
        // Members as https:// URLs when TLS: etcd-client then speaks it.
        let endpoints: Vec<String> = match &tls {
            Some(pem) => {
                options = options.with_tls(pem.options());
                endpoints.iter().map(|e| format!("https://{e}")).collect()
            }
            None => endpoints.to_vec(),
        };
        let no_identity = tls.as_ref().is_some_and(|pem| pem.identity.is_none());
        let client = runtime
            .block_on(async {
                tokio::time::timeout(REQUEST_TIMEOUT, Client::connect(&endpoints, Some(options)))
                    .await
            })
            .map_err(|_| StoreError::Backend(format!("{named}: connect timed out")))?
            .map_err(|e| StoreError::Backend(format!("{named}: {e}")))?;
        Ok(EtcdStore {
            client,
            members: endpoints.len(),
            runtime,
            layout: Layout::new(root),
            name: named.to_string(),
            no_identity,
            compaction: std::sync::Mutex::new(plan::Compaction::new(plan::COMPACT_EVERY)),
            marker_lease: std::sync::Mutex::default(),
            marker_ids: marker::Ids::new(),
        })
    }

    /// Run one request to completion, bounded by REQUEST_TIMEOUT. With
    /// several members, a request that a dead or leaderless member
    /// refused goes again (the channel picks among the members at random)
    /// until it is answered or the time is up: a member's loss is no
    /// caller's error. `request` makes the request anew on the client.
    fn run<T, F, Fut>(&self, what: &str, retry: Retry, mut request: F) -> StoreResult<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        self.runtime.block_on(async {
            loop {
                // A write has one try (it may be applied however long it
                // takes); a read is tried again, on any member.
                let try_until = match retry {
                    Retry::Read if self.members > 1 => {
                        deadline.min(tokio::time::Instant::now() + READ_TRY)
                    }
                    _ => deadline,
                };
                let answer = tokio::time::timeout_at(try_until, request(self.client.clone()));
                let error = match answer.await {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) => e,
                    Err(_) if try_until < deadline => continue,
                    Err(_) => return Err(self.backend(what, "no answer in time")),
                };
                let again = self.members > 1
                    && plan::may_retry(&error, retry == Retry::Read)
                    && tokio::time::Instant::now() + RETRY_PAUSE < deadline;
                if !again {
                    return Err(self.backend(what, error));
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        })
    }

    fn backend(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        let e = e.to_string();
        let hint = if self.no_identity && plan::connection_refused_silently(&e) {
            " (no client certificate was given: --store-cert and --store-key; \
             an etcd with --client-cert-auth closes the connection without one)"
        } else {
            ""
        };
        StoreError::Backend(format!("{}: {what}: {e}{hint}", self.name))
    }

    fn get_raw(&self, etcd_key: &str) -> StoreResult<Option<KeyValue>> {
        let mut resp = self.run("get", Retry::Read, |c| async move {
            c.kv_client().get(etcd_key, None).await
        })?;
        Ok(resp.take_kvs().into_iter().next())
    }

    /// Every key under `etcd_prefix`, in key order, read in pages of
    /// [`plan::LIST_PAGE`] keys, each page after the first at the first's
    /// revision (one consistent view, as one range would be): one answer
    /// of a big range outgrows gRPC's 4 MiB default (5,000 instance
    /// records did), and a page stays far below [`MAX_ANSWER`].
    fn range(&self, what: &str, etcd_prefix: &str) -> StoreResult<Vec<KeyValue>> {
        let end = plan::prefix_end(etcd_prefix.as_bytes());
        let mut from = etcd_prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut out = Vec::new();
        loop {
            let mut resp = self.run(what, Retry::Read, |c| {
                let (from, end) = (from.clone(), end.clone());
                async move {
                    let options = GetOptions::new()
                        .with_range(end)
                        .with_limit(plan::LIST_PAGE)
                        .with_revision(revision);
                    let mut kv = c.kv_client().max_decoding_message_size(MAX_ANSWER);
                    kv.get(from, Some(options)).await
                }
            })?;
            if revision == 0 {
                revision = resp.take_header().map(|h| h.revision()).unwrap_or(0);
            }
            let more = resp.more();
            let kvs = resp.take_kvs();
            let next = kvs.last().map(|kv| plan::key_after(kv.key()));
            out.extend(kvs);
            match next {
                Some(next) if more => from = next,
                _ => return Ok(out),
            }
        }
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

    fn marker_lease_lock(&self) -> std::sync::MutexGuard<'_, marker::MarkerLease> {
        // A panic while holding it left nothing half-done: use it.
        self.marker_lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lease to attach this commit's marker to: the store's, granted
    /// now when there is none or it is too old (`marker::RENEW_AFTER`).
    fn marker_lease_id(&self) -> StoreResult<i64> {
        let now = std::time::Instant::now();
        if let Some(id) = self.marker_lease_lock().current(now) {
            return Ok(id);
        }
        let secs = plan::etcd_ttl_secs(marker::LEASE_TTL);
        let granted = self.run("commit marker lease", Retry::Read, |c| async move {
            c.lease_client().grant(secs, None).await
        })?;
        self.marker_lease_lock().granted(granted.id(), now);
        Ok(granted.id())
    }

    /// One commit, its marker with it: sent again, to any member, until a
    /// member answers (a copy applies at most once), and the answer read
    /// by [`marker::landed`].
    fn commit_marked(&self, ops: &[Op]) -> StoreResult<u64> {
        let lease = self.marker_lease_id()?;
        let mark = self.layout.marker(&self.marker_ids.next());
        let mut compares = vec![Compare::create_revision(mark.clone(), CompareOp::Equal, 0)];
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
        writes.push(TxnOp::put(
            mark.clone(),
            Vec::new(),
            Some(PutOptions::new().with_lease(lease)),
        ));
        // The marker read last: `conflict` pairs the reads with `ops`.
        reads.push(TxnOp::get(mark, None));
        let txn = Txn::new().when(compares).and_then(writes).or_else(reads);
        let mut resp = self.run("commit", Retry::Read, |c| {
            let txn = txn.clone();
            async move { c.kv_client().txn(txn).await }
        })?;
        let header = resp.take_header().map(|h| h.revision()).unwrap_or(0);
        let responses = resp.op_responses();
        let seen_marker = match responses.last() {
            Some(TxnOpResponse::Get(get)) if !resp.succeeded() => {
                get.kvs().first().map(|kv| kv.mod_revision())
            }
            _ => None,
        };
        let revision = match marker::landed(resp.succeeded(), header, seen_marker) {
            marker::Landed::Now(r) | marker::Landed::Earlier(r) => r,
            marker::Landed::Conflict => return Err(self.conflict(ops, &responses)),
        };
        u64::try_from(revision).map_err(|_| self.backend("commit", "a negative revision"))
    }

    /// Revoke an etcd lease nobody needs any more. Best effort: an
    /// unrevoked lease only lives out its TTL.
    fn revoke(&self, id: i64) {
        if id != 0 {
            let _ = self.run("lease revoke", Retry::Read, |c| async move {
                c.lease_client().revoke(id).await
            });
        }
    }
}

impl Store for EtcdStore {
    fn shared(&self) -> bool {
        true
    }

    fn revision(&self) -> StoreResult<u64> {
        self.current_revision()
    }

    fn wait(&self, prefix: &str, after: u64, timeout: Duration) -> StoreResult<bool> {
        self.wait_for_change(prefix, after, timeout)
    }

    fn compact(&self) -> StoreResult<Option<u64>> {
        self.compact_when_due()
    }

    fn get(&self, key: &str) -> StoreResult<Option<Record>> {
        match self.get_raw(&self.layout.record(key))? {
            Some(kv) => Ok(Some(self.record(&kv)?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>> {
        // etcd returns a range in key (byte) order.
        let mut out = Vec::new();
        for kv in self.range("list", &self.layout.record(prefix))? {
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
                    "{} operations in one commit; etcd takes at most {} (one more is \
                     the commit's marker)",
                    ops.len(),
                    plan::MAX_OPS
                ),
            ));
        }
        match self.commit_marked(ops) {
            // Our marker lease is gone (revoked, or etcd's data lost): the
            // txn was refused whole; once more on a new lease.
            Err(StoreError::Backend(e)) if marker::lease_gone(&e) => {
                self.marker_lease_lock().forget();
                self.commit_marked(ops)
            }
            answer => answer,
        }
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
        // A grant that went twice leaves a lease nobody uses: it expires.
        let secs = plan::etcd_ttl_secs(ttl);
        let granted = self.run("lease grant", Retry::Read, |c| async move {
            c.lease_client().grant(secs, None).await
        })?;
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
        let resp = self.run("acquire lease", Retry::Write, |c| {
            let txn = txn.clone();
            async move { c.kv_client().txn(txn).await }
        })?;
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
        let resp = self.run("release lease", Retry::Write, |c| {
            let txn = txn.clone();
            async move { c.kv_client().txn(txn).await }
        })?;
        if resp.succeeded() {
            self.revoke(kv.lease());
        }
        Ok(())
    }

    /// The record lives as long as the etcd lease it is attached to,
    /// which etcd expires by its own clock and renews when a leader takes
    /// over: gone only when its holder truly stopped renewing (or gave it
    /// up), never merely because etcd was away past the deadline.
    fn lease_lapsed(&self, name: &str) -> StoreResult<bool> {
        Ok(self.get_raw(&self.layout.lease(name))?.is_none())
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

    fn lease_holders(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let now = Self::now_ms();
        let mut out = Vec::new();
        for kv in self.range("list leases", &self.layout.lease(prefix))? {
            let etcd_key = kv
                .key_str()
                .map_err(|e| self.backend("list leases", format!("a key not in UTF-8: {e}")))?;
            let Some(name) = self.layout.lease_name(etcd_key) else {
                continue;
            };
            // The deadline decides, as for lease_holder.
            if let Some(v) = LeaseValue::decode(kv.value()).filter(|v| v.expires_ms > now) {
                out.push((name.to_string(), v.holder));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_in_flight;

//! Commit markers: how a commit whose answer was lost (its member, the
//! leader, died under it) is neither lost nor applied twice. Pure
//! decisions; `EtcdStore::commit` does the I/O.
//!
//! Each commit's txn also puts a marker key of its own (`<root>!c/<id>`,
//! a fresh id per commit) and compares that the marker is absent. The
//! marker is attached to one etcd lease per store (granted lazily,
//! granted anew once half its TTL has passed, so no grant per commit;
//! etcd drops the markers when it expires). So every copy of one commit
//! applies at most once: a second copy finds the marker and fails; and
//! a copy that arrives after the lease expired fails too (its lease is
//! gone). A commit whose answer was lost is therefore simply sent again,
//! the same txn, to any member, and its answer decides:
//! - applied: this copy landed, at the answer's revision;
//! - refused, the marker present: an earlier copy landed, at the
//!   marker's revision (all of a txn's writes share one revision);
//! - refused, the marker absent: a real conflict, named as before.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The TTL of the lease markers are attached to. Far longer than a
/// commit's retries (`REQUEST_TIMEOUT`): the lease outlives every copy
/// of a commit in flight, so none is told "lease not found" while an
/// earlier copy may have landed.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// Once a lease is this old, the next commit grants a new one: a commit
/// always starts with at least `LEASE_TTL - RENEW_AFTER` of lease left.
pub const RENEW_AFTER: Duration = Duration::from_secs(20);

/// What one answer to a commit's txn means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landed {
    /// This copy applied, at this revision.
    Now(i64),
    /// An earlier copy applied, at this revision (the marker's).
    Earlier(i64),
    /// Refused, and no copy applied: an expectation failed.
    Conflict,
}

/// The answer to a commit's txn: whether it `succeeded`, the revision
/// of its header, and the marker's mod_revision as the failure branch
/// read it (None when absent, or when the txn succeeded).
pub fn landed(succeeded: bool, header_revision: i64, marker: Option<i64>) -> Landed {
    match (succeeded, marker) {
        (true, _) => Landed::Now(header_revision),
        (false, Some(revision)) => Landed::Earlier(revision),
        (false, None) => Landed::Conflict,
    }
}

/// The lease a store attaches its markers to: which, and when granted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarkerLease {
    granted: Option<(i64, Instant)>,
}

impl MarkerLease {
    /// The lease to use at `now`, or None when one must be granted (none
    /// yet, or the one there is too old to outlive a commit's retries).
    pub fn current(&self, now: Instant) -> Option<i64> {
        self.granted
            .filter(|(_, at)| now.saturating_duration_since(*at) < RENEW_AFTER)
            .map(|(id, _)| id)
    }

    pub fn granted(&mut self, id: i64, at: Instant) {
        self.granted = Some((id, at));
    }

    /// etcd said the lease is gone (revoked by hand, or etcd's data
    /// lost): the next commit grants a new one.
    pub fn forget(&mut self) {
        self.granted = None;
    }
}

/// Whether an error is etcd's "requested lease not found": the txn was
/// refused whole, nothing applied.
pub fn lease_gone(error: &str) -> bool {
    error.contains("lease not found")
}

/// Marker ids: unique across processes and hosts (a random 64-bit
/// start, from the std hasher's per-process random keys) and within a
/// process (a counter).
pub struct Ids {
    start: u64,
    next: AtomicU64,
}

impl Ids {
    pub fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        Ids {
            start: hasher.finish(),
            next: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n:x}", self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three answers a (re)sent commit can get.
    #[test]
    fn an_answer_says_whether_the_commit_landed() {
        assert_eq!(landed(true, 7, None), Landed::Now(7));
        assert_eq!(landed(false, 9, Some(7)), Landed::Earlier(7));
        assert_eq!(landed(false, 9, None), Landed::Conflict);
    }

    #[test]
    fn a_lease_is_granted_once_then_anew_when_old() {
        let t0 = Instant::now();
        let mut lease = MarkerLease::default();
        assert_eq!(lease.current(t0), None, "none yet");
        lease.granted(5, t0);
        assert_eq!(lease.current(t0 + RENEW_AFTER / 2), Some(5));
        assert_eq!(lease.current(t0 + RENEW_AFTER), None, "too old");
        lease.granted(6, t0 + RENEW_AFTER);
        assert_eq!(lease.current(t0 + RENEW_AFTER), Some(6));
        lease.forget();
        assert_eq!(lease.current(t0 + RENEW_AFTER), None);
        assert!(LEASE_TTL >= RENEW_AFTER * 2, "a commit's retries fit");
    }

    #[test]
    fn ids_differ_within_and_across_stores() {
        let (a, b) = (Ids::new(), Ids::new());
        let ids: std::collections::HashSet<String> =
            (0..100).flat_map(|_| [a.next(), b.next()]).collect();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn a_lost_lease_shows_in_the_error() {
        assert!(lease_gone("etcdserver: requested lease not found"));
        assert!(!lease_gone("etcdserver: no leader"));
    }
}

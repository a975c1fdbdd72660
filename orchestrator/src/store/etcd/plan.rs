//! Pure decisions of the etcd backend: where records and leases live in
//! etcd's flat key space, what a [`Expect`] means in etcd's terms, and
//! what a lease record says. No I/O here, so all of it is unit-tested.

use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp};

use crate::store::{Expect, Op};

/// etcd's default `--max-txn-ops`: a commit of more operations is refused
/// by the server, so we refuse it first with a clearer error. The
/// commit's marker is one of them (`etcd::marker`), so a caller has one
/// fewer.
pub const MAX_OPS: usize = 128 - 1;

/// Where one berth store lives in an etcd key space. Records, leases and
/// commit markers get namespaces of their own because the `Store` trait
/// keeps leases apart from keys (listing "" never shows a lease).
///
/// A namespace's name starts with `!`, which no prefix may hold
/// (`store::url`): so one store's namespaces never hold another's keys,
/// even when one prefix extends another (`a` and `a/r`: without the `!`,
/// `a/r/r/x`, a record of `a/r`, would list as `r/x` in `a`).
#[derive(Clone, Debug)]
pub struct Layout {
    root: String,
}

impl Layout {
    /// `root` is prefixed to everything, so that several stores (tests,
    /// clusters) can share one etcd.
    pub fn new(root: &str) -> Self {
        Layout { root: root.into() }
    }

    pub fn record(&self, key: &str) -> String {
        format!("{}!r/{key}", self.root)
    }

    pub fn lease(&self, name: &str) -> String {
        format!("{}!l/{name}", self.root)
    }

    /// The marker a commit writes with its records, so that a commit
    /// whose answer was lost can be told landed or not (`etcd::marker`).
    pub fn marker(&self, id: &str) -> String {
        format!("{}!c/{id}", self.root)
    }

    /// The lease name of an etcd lease key, or None for one outside the
    /// lease namespace.
    pub fn lease_name<'a>(&self, etcd_key: &'a str) -> Option<&'a str> {
        etcd_key
            .strip_prefix(self.root.as_str())?
            .strip_prefix("!l/")
    }

    /// The store key of an etcd record key, or None for one outside
    /// the record namespace.
    pub fn key_of<'a>(&self, etcd_key: &'a str) -> Option<&'a str> {
        etcd_key
            .strip_prefix(self.root.as_str())?
            .strip_prefix("!r/")
    }
}

/// How many records one page of a list reads: with answers of up to
/// 64 MiB (`MAX_ANSWER`, tonic's default is 4), records of up to 128 KiB
/// each (berth's are a few KiB); 5,000 instances are 10 pages.
pub const LIST_PAGE: i64 = 500;

/// The end of the range of keys starting with `prefix` (exclusive):
/// its last byte below 0xff plus one, what follows dropped; `\0`
/// (etcd's "to the end of the key space") when every byte is 0xff.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The first key after `key`, where a list's next page starts.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Whether a request that failed with `e` may go again, to another
/// member: when it never reached a live one (no connection; a connection
/// the member closed before we wrote, as a killed member's does) or the
/// member had no leader to propose it to; a read (`idempotent`) also
/// after any failure of transport or a member (a leader change under
/// way). Never a write that may have been applied: it would apply twice.
pub fn may_retry(e: &etcd_client::Error, idempotent: bool) -> bool {
    use tonic::Code;
    let status = match e {
        // Building a connection failed: nothing was sent.
        etcd_client::Error::TransportError(_) => return true,
        etcd_client::Error::GRpcStatus(status) => status,
        _ => return false,
    };
    // The status's text carries its source (the transport's error).
    let text = e.to_string();
    let unsent = ["connect error", "no leader", "broken pipe"]
        .iter()
        .any(|sign| text.contains(sign));
    match status.code() {
        Code::Unavailable | Code::Unknown => unsent || idempotent,
        Code::Cancelled | Code::DeadlineExceeded => idempotent,
        _ => false,
    }
}

/// Whether an error's text is a connection the server closed, reset or
/// refused in the handshake, as an etcd that wants a client certificate
/// ends one that has none (how it shows varies with the timing: a TLS
/// alert, or the connection gone under the request).
pub fn connection_refused_silently(error: &str) -> bool {
    [
        "connection closed",
        "operation was canceled",
        "broken pipe",
        "connection reset",
        "BadCertificate",
        "CertificateRequired",
    ]
    .iter()
    .any(|sign| error.contains(sign))
}

/// How often a long-lived process compacts etcd's history, and how much
/// it keeps: every revision of the last this-long. A watch or read that
/// far behind finds its revision compacted and reads anew.
pub const COMPACT_EVERY: Duration = Duration::from_secs(5 * 60);

/// When to compact, and to what: etcd's periodic auto-compaction, kept by
/// the process that compacts. Each period it compacts to the revision it
/// noted the period before, so a period's history always stays.
#[derive(Debug)]
pub struct Compaction {
    every: Duration,
    /// When the last revision was noted, and which.
    noted: Option<(Instant, u64)>,
}

impl Compaction {
    pub fn new(every: Duration) -> Self {
        Compaction { every, noted: None }
    }

    /// Whether [`Self::advance`] has anything to do: nothing noted yet,
    /// or a period passed since.
    pub fn due(&self, now: Instant) -> bool {
        self.noted
            .is_none_or(|(at, _)| now.saturating_duration_since(at) >= self.every)
    }

    /// Note `current`; the revision to compact to, when one was noted a
    /// period ago (and history moved on since).
    pub fn advance(&mut self, now: Instant, current: u64) -> Option<u64> {
        if !self.due(now) {
            return None;
        }
        let to = self.noted.map(|(_, revision)| revision).filter(|r| *r > 0);
        self.noted = Some((now, current));
        to
    }
}

/// The key an op names.
pub fn key_of(op: &Op) -> &str {
    match op {
        Op::Put { key, .. } | Op::Delete { key, .. } => key,
    }
}

pub fn expect_of(op: &Op) -> Expect {
    match op {
        Op::Put { expect, .. } | Op::Delete { expect, .. } => *expect,
    }
}

/// What etcd knows of a key before a txn: (create_revision,
/// mod_revision), or None when it is absent.
pub type Seen = Option<(i64, i64)>;

/// Whether `expect` holds for a key in state `seen`: the same test the
/// txn's compare makes on the server (create_revision == 0 for Absent,
/// mod_revision == r for Revision), used to name the op that failed.
pub fn holds(expect: Expect, seen: Seen) -> bool {
    match expect {
        Expect::Any => true,
        Expect::Absent => seen.is_none(),
        Expect::Revision(r) => seen.is_some_and(|(_, m)| u64::try_from(m) == Ok(r)),
    }
}

/// The compare an expectation makes on `key` (none for Expect::Any).
pub fn compare(key: &str, expect: Expect) -> Option<Compare> {
    match expect {
        Expect::Any => None,
        Expect::Absent => Some(Compare::create_revision(key, CompareOp::Equal, 0)),
        Expect::Revision(r) => Some(Compare::mod_revision(
            key,
            CompareOp::Equal,
            etcd_revision(r),
        )),
    }
}

/// A revision as etcd's signed type; one beyond i64 can never match.
pub fn etcd_revision(r: u64) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

/// A lease record's value: who holds it and until when (ms since the
/// epoch). The deadline is what decides; the etcd lease attached to the
/// key only collects it once abandoned, because etcd's leases count in
/// whole seconds with a server-side minimum, far coarser than the ttl a
/// caller may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseValue {
    pub holder: String,
    pub expires_ms: i64,
}

impl LeaseValue {
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.expires_ms, self.holder).into_bytes()
    }

    /// None for a value berth did not write (then the lease is treated
    /// as free: nothing of ours holds it).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (expires, holder) = text.split_once('\n')?;
        Some(LeaseValue {
            holder: holder.into(),
            expires_ms: expires.parse().ok()?,
        })
    }

    /// Whether `holder` must be refused at `now_ms`.
    pub fn refuses(&self, holder: &str, now_ms: i64) -> bool {
        self.holder != holder && self.expires_ms > now_ms
    }
}

/// The etcd lease TTL (whole seconds, at least 1) that outlives `ttl`.
pub fn etcd_ttl_secs(ttl: std::time::Duration) -> i64 {
    let secs = ttl.as_millis().div_ceil(1000).max(1);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_server_that_wants_a_client_certificate_shows_in_several_ways() {
        for text in [
            "transport error: received fatal alert: BadCertificate",
            "stream closed because of a broken pipe",
            "operation was canceled: connection closed",
        ] {
            assert!(connection_refused_silently(text), "{text}");
        }
        assert!(!connection_refused_silently("etcdserver: no leader"));
    }

    /// The first call notes the revision; a period later it compacts to
    /// it and notes the new one; in between it does nothing.
    #[test]
    fn compaction_keeps_a_period_of_history() {
        let t0 = Instant::now();
        let every = Duration::from_secs(300);
        let mut c = Compaction::new(every);
        assert!(c.due(t0));
        assert_eq!(c.advance(t0, 10), None, "nothing noted yet");
        assert!(!c.due(t0 + every / 2));
        assert_eq!(c.advance(t0 + every / 2, 50), None, "not a period yet");
        assert!(c.due(t0 + every));
        assert_eq!(c.advance(t0 + every, 90), Some(10));
        assert_eq!(c.advance(t0 + every * 2, 95), Some(90));
        let mut empty = Compaction::new(every);
        empty.advance(t0, 0);
        assert_eq!(empty.advance(t0 + every, 0), None, "revision 0: nothing");
    }

    /// A write goes again only when it surely was not applied; a read
    /// after any "unavailable".
    #[test]
    fn what_may_go_to_another_member() {
        let status =
            |code, msg: &str| etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg));
        let refused = status(tonic::Code::Unavailable, "tcp connect error");
        let no_leader = status(tonic::Code::Unavailable, "etcdserver: no leader");
        let changed = status(tonic::Code::Unavailable, "etcdserver: leader changed");
        let conflict = status(tonic::Code::FailedPrecondition, "etcdserver: connect error");
        let closed = status(tonic::Code::Unknown, "transport error: broken pipe");
        let reset = status(tonic::Code::Unknown, "transport error: connection reset");
        let slow = status(tonic::Code::DeadlineExceeded, "timeout");
        for (e, write, read) in [
            (&refused, true, true),
            (&no_leader, true, true),
            (&changed, false, true),
            (&conflict, false, false),
            (&closed, true, true),
            (&reset, false, true),
            (&slow, false, true),
            (&etcd_client::Error::WatchError("x".into()), false, false),
        ] {
            assert_eq!(may_retry(e, false), write, "write after {e}");
            assert_eq!(may_retry(e, true), read, "read after {e}");
        }
    }

    #[test]
    fn list_ranges() {
        assert_eq!(prefix_end(b"berth/!r/a"), b"berth/!r/b");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
        assert_eq!(key_after(b"k"), b"k\0");
        assert!(key_after(b"k").as_slice() > b"k".as_slice());
    }

    #[test]
    fn records_and_leases_live_apart_under_the_root() {
        let l = Layout::new("berth/");
        assert_eq!(l.record("tasks/a"), "berth/!r/tasks/a");
        assert_eq!(l.lease("reconcile/a"), "berth/!l/reconcile/a");
        assert_eq!(l.marker("00ff"), "berth/!c/00ff");
        assert_eq!(l.key_of("berth/!r/tasks/a"), Some("tasks/a"));
        assert_eq!(l.key_of("berth/!l/reconcile/a"), None);
        assert_eq!(l.key_of("berth/!c/00ff"), None);
        assert_eq!(l.key_of("other/!r/x"), None);
    }

    /// A prefix that extends another (`a`, `a/r`, `ab`) never has its
    /// keys inside the other's namespaces: prefixes hold no `!`.
    #[test]
    fn nested_prefixes_stay_apart() {
        let a = Layout::new("a/");
        for other in ["a/r/", "a/l/", "a/c/", "ab/", "a/b/"] {
            let o = Layout::new(other);
            for key in [o.record("x"), o.lease("x"), o.marker("x")] {
                assert_eq!(a.key_of(&key), None, "{other}: {key}");
                for mine in [a.record(""), a.lease(""), a.marker("")] {
                    assert!(!key.starts_with(&mine), "{key} is under {mine}");
                }
            }
        }
    }

    #[test]
    fn expectations_in_etcd_terms() {
        assert!(holds(Expect::Any, None));
        assert!(holds(Expect::Any, Some((3, 4))));
        assert!(holds(Expect::Absent, None));
        assert!(!holds(Expect::Absent, Some((3, 4))));
        assert!(holds(Expect::Revision(4), Some((3, 4))));
        assert!(!holds(Expect::Revision(3), Some((3, 4))));
        assert!(!holds(Expect::Revision(4), None));
        assert_eq!(etcd_revision(u64::MAX), i64::MAX);
    }

    #[test]
    fn lease_values_round_trip_and_decide() {
        let v = LeaseValue {
            holder: "host\nwith newline".into(),
            expires_ms: 1000,
        };
        assert_eq!(LeaseValue::decode(&v.encode()), Some(v.clone()));
        assert_eq!(LeaseValue::decode(b"garbage"), None);
        assert!(v.refuses("other", 999));
        assert!(!v.refuses("other", 1000));
        assert!(!v.refuses("host\nwith newline", 0));
    }

    #[test]
    fn etcd_ttls_round_up_to_whole_seconds() {
        assert_eq!(etcd_ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(etcd_ttl_secs(Duration::from_millis(1001)), 2);
        assert_eq!(etcd_ttl_secs(Duration::from_secs(3)), 3);
    }
}

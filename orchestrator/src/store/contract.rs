//! The contract every [`Store`] keeps, as one suite any implementation
//! runs (containerd's snapshot testsuite is the model): what the
//! orchestrator relies on, checked once here rather than per backend.
//!
//! A backend proves itself with
//! ```ignore
//! /// A fresh, empty store; each call of the opener it returns gives a new
//! /// handle on that same store.
//! fn fresh() -> impl Fn() -> Box<dyn Store> + Sync { ... }
//!
//! mod contract {
//!     berth_orchestrator::store_contract_tests!(super::fresh());
//! }
//! ```
//! which expands to one `#[test]` per check. Outside this crate, enable
//! the `store-contract` feature of `berth-orchestrator` in
//! `[dev-dependencies]`.
//!
//! Each check takes an opener: a new handle on one and the same store per
//! call (a connection, as separate `berth` processes each have), owning
//! whatever keeps the store alive (a temporary directory). Checks start
//! from an empty store, assert behaviour only (never elapsed time), and
//! panic on a broken promise.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::time::Duration;

use super::{Expect, Op, Store, StoreError};

/// Opens a new handle on the store under test.
pub type Opener<'a> = &'a (dyn Fn() -> Box<dyn Store> + Sync);

fn put(key: &str, value: &str, expect: Expect) -> Op {
    Op::Put {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        expect,
    }
}

fn delete(key: &str, expect: Expect) -> Op {
    Op::Delete {
        key: key.into(),
        expect,
    }
}

fn value(store: &dyn Store, key: &str) -> Option<String> {
    let rec = store.get(key).expect("get")?;
    Some(String::from_utf8(rec.value).expect("utf-8 value"))
}

fn revision(store: &dyn Store, key: &str) -> u64 {
    store.get(key).expect("get").expect("present").revision
}

fn keys(store: &dyn Store, prefix: &str) -> Vec<String> {
    let listed = store.list(prefix).expect("list");
    listed.into_iter().map(|(k, _)| k).collect()
}

fn conflict(result: Result<u64, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{what}: want a Conflict, got {other:?}"),
    }
}

/// A missing key reads as None; a put reads back with the revision its
/// commit returned; values are bytes, not text.
pub fn get_and_put(open: Opener<'_>) {
    let store = open();
    assert_eq!(store.get("k").expect("get"), None);
    let bytes = vec![0, 159, 146, 150, 255];
    let rev = store
        .commit(&[Op::Put {
            key: "k".into(),
            value: bytes.clone(),
            expect: Expect::Any,
        }])
        .expect("put");
    let rec = store.get("k").expect("get").expect("present");
    assert_eq!((rec.value, rec.revision), (bytes, rev));
    // Another handle sees the commit.
    assert_eq!(open().get("k").expect("get").map(|r| r.revision), Some(rev));
}

/// Expect::Any writes whether or not the key exists.
pub fn any_overwrites(open: Opener<'_>) {
    let store = open();
    store.commit(&[put("k", "1", Expect::Any)]).expect("create");
    store
        .commit(&[put("k", "2", Expect::Any)])
        .expect("overwrite");
    assert_eq!(value(&*store, "k").as_deref(), Some("2"));
}

/// Expect::Absent creates once: a second create conflicts and changes
/// nothing.
pub fn absent_creates_once(open: Opener<'_>) {
    let store = open();
    let rev = store
        .commit(&[put("k", "first", Expect::Absent)])
        .expect("create");
    conflict(
        store.commit(&[put("k", "second", Expect::Absent)]),
        "create over an existing key",
    );
    assert_eq!(value(&*store, "k").as_deref(), Some("first"));
    assert_eq!(revision(&*store, "k"), rev);
}

/// Expect::Revision is compare-and-swap: the revision read succeeds once,
/// a stale one conflicts, and so does any revision of a missing key.
pub fn revision_is_compare_and_swap(open: Opener<'_>) {
    let store = open();
    let r1 = store
        .commit(&[put("k", "1", Expect::Absent)])
        .expect("create");
    let r2 = store
        .commit(&[put("k", "2", Expect::Revision(r1))])
        .expect("swap at the revision read");
    conflict(
        store.commit(&[put("k", "3", Expect::Revision(r1))]),
        "swap at a stale revision",
    );
    assert_eq!(value(&*store, "k").as_deref(), Some("2"));
    assert_eq!(revision(&*store, "k"), r2);
    conflict(
        store.commit(&[put("missing", "x", Expect::Revision(r2))]),
        "swap of a missing key",
    );
    assert_eq!(store.get("missing").expect("get"), None);
}

/// Deletes honour expectations like puts; deleting a missing key with
/// Expect::Any succeeds (a task's stop deletes reservations `system gc`
/// may have freed already).
pub fn delete_with_expectations(open: Opener<'_>) {
    let store = open();
    let r1 = store
        .commit(&[put("k", "1", Expect::Absent)])
        .expect("create");
    store
        .commit(&[put("k", "2", Expect::Revision(r1))])
        .expect("update");
    conflict(
        store.commit(&[delete("k", Expect::Revision(r1))]),
        "delete at a stale revision",
    );
    conflict(
        store.commit(&[delete("k", Expect::Absent)]),
        "delete expecting the key absent",
    );
    assert_eq!(value(&*store, "k").as_deref(), Some("2"));
    let current = revision(&*store, "k");
    store
        .commit(&[delete("k", Expect::Revision(current))])
        .expect("delete at the current revision");
    assert_eq!(store.get("k").expect("get"), None);
    store
        .commit(&[delete("k", Expect::Any)])
        .expect("delete of a missing key");
    conflict(
        store.commit(&[delete("k", Expect::Revision(current))]),
        "delete of a missing key at a revision",
    );
}

/// A prefix lists every key that starts with it, in byte order, with the
/// records `get` returns, and nothing else: not a neighbour that shares
/// the name's start (`a/` vs `ab/`), nor one where a pattern character
/// (`%`, `_`) would match.
pub fn list_by_prefix_in_key_order(open: Opener<'_>) {
    let store = open();
    let written = [
        "tasks/ab/1",
        "tasks/a/2",
        "tasks/a",
        "tasks/a/10",
        "tasks/a/1",
        "tasks/b/1",
        "tasks/a_/1",
        "tasks/a%/1",
        "tasks/a/\u{10FFFF}",
        "taskdefs/f/0000000010",
        "taskdefs/f/0000000002",
        "u",
    ];
    for (i, key) in written.iter().enumerate() {
        store
            .commit(&[put(key, &i.to_string(), Expect::Absent)])
            .expect("create");
    }
    assert_eq!(
        keys(&*store, "tasks/a/"),
        ["tasks/a/1", "tasks/a/10", "tasks/a/2", "tasks/a/\u{10FFFF}"]
    );
    assert_eq!(keys(&*store, "tasks/a_/"), ["tasks/a_/1"]);
    assert_eq!(keys(&*store, "tasks/a%"), ["tasks/a%/1"]);
    assert_eq!(
        keys(&*store, "taskdefs/f/"),
        ["taskdefs/f/0000000002", "taskdefs/f/0000000010"]
    );
    assert_eq!(keys(&*store, "tasks/c/"), Vec::<String>::new());
    assert_eq!(keys(&*store, "tasks/a/1"), ["tasks/a/1", "tasks/a/10"]);
    // The empty prefix lists everything, in order.
    let mut all: Vec<String> = written.iter().map(|k| k.to_string()).collect();
    all.sort();
    assert_eq!(keys(&*store, ""), all);
    for (key, rec) in store.list("tasks/").expect("list") {
        assert_eq!(store.get(&key).expect("get"), Some(rec), "{key}");
    }
}

/// A commit applies all its operations or none: one failing expectation
/// anywhere in it writes nothing, deletes included. The ones it applies
/// all carry the revision it returns. (A commit names each key once:
/// the orchestrator never writes a key twice in one, and backends differ
/// on what a second expectation on it would see.)
pub fn multi_key_commits_are_atomic(open: Opener<'_>) {
    let store = open();
    let r1 = store
        .commit(&[
            put("a", "1", Expect::Absent),
            put("b", "1", Expect::Absent),
            put("d", "1", Expect::Absent),
        ])
        .expect("create three");
    let revisions = |store: &dyn Store| ["a", "b", "d"].map(|k| revision(store, k));
    assert_eq!(revisions(&*store), [r1; 3]);
    conflict(
        store.commit(&[
            put("c", "new", Expect::Absent),
            delete("a", Expect::Revision(r1)),
            put("b", "2", Expect::Any),
            put("d", "again", Expect::Absent),
        ]),
        "a commit whose last expectation fails",
    );
    assert_eq!(store.get("c").expect("get"), None);
    for key in ["a", "b", "d"] {
        assert_eq!(value(&*store, key).as_deref(), Some("1"), "{key}");
    }
    assert_eq!(revisions(&*store), [r1; 3]);
    let r2 = store
        .commit(&[
            put("c", "new", Expect::Absent),
            delete("a", Expect::Revision(r1)),
            put("b", "2", Expect::Any),
            put("d", "2", Expect::Revision(r1)),
        ])
        .expect("the same commit with its expectations met");
    assert_eq!(store.get("a").expect("get"), None);
    for key in ["b", "c", "d"] {
        assert_eq!(revision(&*store, key), r2, "{key}");
    }
}

/// Each commit's revision is larger than every one before it, even for a
/// key deleted and created again, so a revision read once never matches
/// a later record (no ABA).
pub fn revisions_increase(open: Opener<'_>) {
    let store = open();
    let r1 = store
        .commit(&[put("k", "1", Expect::Absent)])
        .expect("create");
    let r2 = store
        .commit(&[put("other", "1", Expect::Any)])
        .expect("put");
    assert!(r2 > r1, "{r2} after {r1}");
    // Revisions keep increasing across a failed commit.
    conflict(
        store.commit(&[put("k", "x", Expect::Absent)]),
        "create over an existing key",
    );
    store
        .commit(&[delete("k", Expect::Revision(r1))])
        .expect("delete");
    let r3 = store
        .commit(&[put("k", "2", Expect::Absent)])
        .expect("create again");
    assert!(r3 > r2, "{r3} after {r2}");
    conflict(
        store.commit(&[put("k", "3", Expect::Revision(r1))]),
        "swap at the revision of the deleted record",
    );
    // Another handle continues the same sequence.
    let r4 = open()
        .commit(&[put("k", "4", Expect::Revision(r3))])
        .expect("swap from another handle");
    assert!(r4 > r3, "{r4} after {r3}");
}

/// Long enough that no test outlives it: "refused while live" never
/// depends on how fast the machine is.
const LIVE: Duration = Duration::from_secs(300);

/// A lease is its holder's until released: renewed by the holder, refused
/// to others, and each name is a lease of its own.
pub fn leases_exclude_other_holders(open: Opener<'_>) {
    let store = open();
    assert!(store
        .acquire_lease("reconcile/a", "one", LIVE)
        .expect("take"));
    assert!(!store
        .acquire_lease("reconcile/a", "two", LIVE)
        .expect("other"));
    assert!(!open()
        .acquire_lease("reconcile/a", "two", LIVE)
        .expect("other, from another handle"));
    assert!(store
        .acquire_lease("reconcile/a", "one", LIVE)
        .expect("renew"));
    assert!(store
        .acquire_lease("reconcile/ab", "two", LIVE)
        .expect("another name"));
    // Only the holder releases.
    store
        .release_lease("reconcile/a", "two")
        .expect("release by another");
    assert!(!store
        .acquire_lease("reconcile/a", "two", LIVE)
        .expect("still held"));
    store.release_lease("reconcile/a", "one").expect("release");
    assert!(store
        .acquire_lease("reconcile/a", "two", LIVE)
        .expect("released"));
    store
        .release_lease("never-taken", "one")
        .expect("release of a lease nobody holds");
}

/// Anyone may ask who holds a lease: its live holder, nobody once it is
/// released or expired.
pub fn lease_holder_is_the_live_one(open: Opener<'_>) {
    let store = open();
    let holder = |name: &str| open().lease_holder(name).expect("ask the holder");
    assert_eq!(holder("agents/a/h1"), None, "never taken");
    assert!(store
        .acquire_lease("agents/a/h1", "one", LIVE)
        .expect("take"));
    assert_eq!(holder("agents/a/h1").as_deref(), Some("one"));
    assert_eq!(holder("agents/a/h"), None, "a prefix is another name");
    store.release_lease("agents/a/h1", "one").expect("release");
    assert_eq!(holder("agents/a/h1"), None, "released");
    let short = Duration::from_millis(1);
    assert!(store
        .acquire_lease("agents/a/h1", "two", short)
        .expect("take"));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(holder("agents/a/h1"), None, "expired");
}

/// A lease held has not lapsed; one never taken or released has.
pub fn lease_lapses_when_released(open: Opener<'_>) {
    let store = open();
    let lapsed = |name: &str| open().lease_lapsed(name).expect("ask");
    assert!(lapsed("agents/b/h1"), "never taken");
    assert!(store
        .acquire_lease("agents/b/h1", "one", LIVE)
        .expect("take"));
    assert!(!lapsed("agents/b/h1"), "held");
    assert!(lapsed("agents/b/h"), "a prefix is another name");
    store.release_lease("agents/b/h1", "one").expect("release");
    assert!(lapsed("agents/b/h1"), "released");
}

/// The live leases under a prefix, in one read: each with its holder, in
/// name order; released and expired ones and other prefixes left out.
pub fn lease_holders_lists_the_live_ones_under_a_prefix(open: Opener<'_>) {
    let store = open();
    let holders = |prefix: &str| open().lease_holders(prefix).expect("list the holders");
    assert_eq!(holders("agents/a/"), Vec::new(), "none taken");
    for (name, holder) in [
        ("agents/a/h2", "two"),
        ("agents/a/h1", "one"),
        ("agents/a/h3", "three"),
        ("agents/ab/h1", "other cluster"),
        ("reconcile/a", "reconciler"),
    ] {
        assert!(store.acquire_lease(name, holder, LIVE).expect("take"));
    }
    store
        .release_lease("agents/a/h3", "three")
        .expect("release");
    let short = Duration::from_millis(1);
    assert!(store
        .acquire_lease("agents/a/h4", "four", short)
        .expect("take"));
    std::thread::sleep(Duration::from_millis(50));
    let pair = |n: &str, h: &str| (n.to_string(), h.to_string());
    assert_eq!(
        holders("agents/a/"),
        [pair("agents/a/h1", "one"), pair("agents/a/h2", "two")],
        "live ones, in name order; released, expired and agents/ab/ left out"
    );
    assert_eq!(holders("agents/").len(), 3);
    assert_eq!(holders("nothing/"), Vec::new());
}

/// A lease not renewed within its ttl is anyone's.
pub fn leases_expire(open: Opener<'_>) {
    let store = open();
    let short = Duration::from_millis(1);
    assert!(store
        .acquire_lease("reconcile/a", "one", short)
        .expect("take"));
    std::thread::sleep(Duration::from_millis(50));
    assert!(store
        .acquire_lease("reconcile/a", "two", LIVE)
        .expect("take over"));
    assert!(!store
        .acquire_lease("reconcile/a", "one", LIVE)
        .expect("old holder"));
}

/// The store's revision is its last commit's.
pub fn revision_follows_commits(open: Opener<'_>) {
    let store = open();
    let before = store.revision().expect("revision");
    let rev = store
        .commit(&[put("tasks/a", "1", Expect::Any)])
        .expect("commit");
    assert!(rev > before, "{rev} after {before}");
    assert_eq!(store.revision().expect("revision"), rev);
    assert_eq!(open().revision().expect("another handle"), rev);
}

/// `wait` wakes with a change under its prefix made by another handle,
/// while it waits or before it was called; none within the timeout: it
/// returns false. (Its timeouts are far longer than any change takes, so
/// that only a change can make it return true.)
pub fn wait_wakes_with_a_change(open: Opener<'_>) {
    let waiter = open();
    let writer = open();
    let long = Duration::from_secs(60);
    let before = waiter.revision().expect("revision");
    let woke = std::thread::scope(|s| {
        let waiting = s.spawn(|| waiter.wait("tasks/", before, long));
        // Whenever the waiter got to wait: it sees this change either way.
        writer
            .commit(&[put("tasks/a", "1", Expect::Any)])
            .expect("commit");
        waiting.join().expect("waiter")
    });
    assert!(woke.expect("wait"), "woken by the change");
    // A change made before the call: at once.
    let rev = writer
        .commit(&[delete("tasks/a", Expect::Any)])
        .expect("delete");
    assert!(waiter.wait("tasks/", rev - 1, long).expect("wait"));
    // Nothing after `rev`: the timeout.
    let short = Duration::from_millis(300);
    assert!(!waiter.wait("tasks/", rev, short).expect("wait"));
    assert_eq!(waiter.revision().expect("revision"), rev);
}

const WRITERS: usize = 8;

/// Compare-and-swap increments from many handles at once lose nothing:
/// each retries on Conflict until its write lands.
pub fn concurrent_increments_lose_nothing(open: Opener<'_>) {
    const EACH: usize = 25;
    open()
        .commit(&[put("n", "0", Expect::Absent)])
        .expect("init");
    // A handle each, as separate processes would have; opened before the
    // threads, so a failed open panics here instead of leaving the others
    // waiting at the barrier forever.
    let stores: Vec<_> = (0..WRITERS).map(|_| open()).collect();
    let start = Barrier::new(WRITERS);
    std::thread::scope(|s| {
        for store in &stores {
            let start = &start;
            s.spawn(move || {
                start.wait();
                for _ in 0..EACH {
                    increment(&**store, "n");
                }
            });
        }
    });
    let want = (WRITERS * EACH).to_string();
    assert_eq!(value(&*open(), "n"), Some(want));
}

fn increment(store: &dyn Store, key: &str) {
    loop {
        let rec = store.get(key).expect("get").expect("present");
        let n: u64 = String::from_utf8_lossy(&rec.value).parse().expect("number");
        let op = put(key, &(n + 1).to_string(), Expect::Revision(rec.revision));
        match store.commit(&[op]) {
            Ok(_) => return,
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => panic!("increment: {e}"),
        }
    }
}

/// Creates of the same keys racing (threads sharing one handle, and
/// handles of their own): exactly one creator of each key wins, and its
/// value is the one stored.
pub fn concurrent_creates_have_one_winner(open: Opener<'_>) {
    const KEYS: usize = 10;
    let shared = open();
    // Every odd writer's own handle, opened before the threads (see above).
    let own: Vec<_> = (0..WRITERS).map(|_| open()).collect();
    let start = Barrier::new(WRITERS);
    let won: Vec<Vec<usize>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (shared, start, own) = (&shared, &start, &own);
                s.spawn(move || {
                    let store: &dyn Store = if writer % 2 == 0 {
                        &**shared
                    } else {
                        &*own[writer]
                    };
                    start.wait();
                    let mut won = Vec::new();
                    for k in 0..KEYS {
                        let op = put(&format!("slot/{k}"), &writer.to_string(), Expect::Absent);
                        match store.commit(&[op]) {
                            Ok(_) => won.push(k),
                            Err(StoreError::Conflict(_)) => {}
                            Err(e) => panic!("create: {e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("writer"))
            .collect()
    });
    let mut winners = vec![Vec::new(); KEYS];
    for (writer, keys) in won.iter().enumerate() {
        for &k in keys {
            winners[k].push(writer);
        }
    }
    for (k, w) in winners.iter().enumerate() {
        assert_eq!(w.len(), 1, "slot/{k} created by {w:?}");
        assert_eq!(
            value(&*shared, &format!("slot/{k}")),
            Some(w[0].to_string())
        );
    }
}

/// Of holders racing for a free lease, exactly one gets it.
pub fn concurrent_lease_has_one_holder(open: Opener<'_>) {
    // Opened before the threads (see above).
    let stores: Vec<_> = (0..WRITERS).map(|_| open()).collect();
    let start = Barrier::new(WRITERS);
    let holders: BTreeSet<usize> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let start = &start;
                let store = &stores[writer];
                s.spawn(move || {
                    start.wait();
                    store
                        .acquire_lease("reconcile/a", &writer.to_string(), LIVE)
                        .expect("acquire")
                        .then_some(writer)
                })
            })
            .collect();
        threads
            .into_iter()
            .filter_map(|t| t.join().expect("holder"))
            .collect()
    });
    assert_eq!(holders.len(), 1, "held by {holders:?}");
}

/// One `#[test]` per check of [`crate::store::contract`], each on a store
/// of its own: `$open` is evaluated anew per test and gives the opener
/// (see the module doc).
#[macro_export]
macro_rules! store_contract_tests {
    ($open:expr) => {
        $crate::store_contract_tests!(@each $open;
            get_and_put,
            any_overwrites,
            absent_creates_once,
            revision_is_compare_and_swap,
            delete_with_expectations,
            list_by_prefix_in_key_order,
            multi_key_commits_are_atomic,
            revisions_increase,
            leases_exclude_other_holders,
            leases_expire,
            lease_holder_is_the_live_one,
            lease_lapses_when_released,

            lease_holders_lists_the_live_ones_under_a_prefix,
            revision_follows_commits,
            wait_wakes_with_a_change,
            concurrent_increments_lose_nothing,
            concurrent_creates_have_one_winner,
            concurrent_lease_has_one_holder,
        );
    };
    (@each $open:expr; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                let open = $open;
                $crate::store::contract::$check(&open);
            }
        )*
    };
}

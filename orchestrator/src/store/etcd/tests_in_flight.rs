//! Commits in flight when the etcd leader dies: every commit answered
//! landed exactly once, at the revision answered; none answered refused
//! had landed; none applied twice. Real etcd, three members.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::test_server::EtcdCluster;
use super::EtcdStore;
use crate::store::{Expect, Op, Store, StoreError};

const WRITERS: usize = 6;
const KILLS: usize = 6;
/// Bounds a wait for the writers' progress: a failure, not a timing.
const PROGRESS: Duration = Duration::from_secs(120);

/// What one writer saw.
#[derive(Default)]
struct Seen {
    /// (seq, counter value written, revision answered) of each commit
    /// answered applied.
    acked: Vec<(usize, u64, u64)>,
    /// Commits answered neither way (a Backend error): their seqs.
    unknown: Vec<usize>,
    /// A commit answered Conflict on its own `ops/` key: it had landed.
    wrong: Vec<String>,
}

fn ops_key(writer: usize, seq: usize) -> String {
    format!("ops/{writer}/{seq:08}")
}

/// Bump the shared counter with compare-and-swap, recording the value
/// in this step's own key (`Absent`: a step lands at most once, and the
/// key names it first, so a landed step answered "conflict" shows).
fn step(store: &EtcdStore, writer: usize, seq: usize, seen: &mut Seen) -> bool {
    let (value, expect) = match store.get("counter") {
        Ok(Some(r)) => {
            let v: u64 = String::from_utf8_lossy(&r.value).parse().expect("a count");
            (v, Expect::Revision(r.revision))
        }
        Ok(None) => (0, Expect::Absent),
        Err(_) => return false,
    };
    let next = (value + 1).to_string().into_bytes();
    let own = ops_key(writer, seq);
    let ops = [
        Op::Put {
            key: own.clone(),
            value: next.clone(),
            expect: Expect::Absent,
        },
        Op::Put {
            key: "counter".into(),
            value: next,
            expect,
        },
    ];
    match store.commit(&ops) {
        Ok(revision) => seen.acked.push((seq, value + 1, revision)),
        Err(StoreError::Conflict(key)) if key == own => seen.wrong.push(own),
        Err(StoreError::Conflict(_)) => return false,
        Err(StoreError::Backend(_)) => seen.unknown.push(seq),
    }
    true
}

fn writer(endpoints: &[String], index: usize, stop: &AtomicBool, done: &AtomicUsize) -> Seen {
    let store = EtcdStore::connect(endpoints, "inflight/").expect("connect");
    let mut seen = Seen::default();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        if step(&store, index, seq, &mut seen) {
            seq += 1;
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    seen
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Until every writer has gone on by `n` commits more.
fn wait_progress(done: &[AtomicUsize], n: usize, what: &str) {
    let from: Vec<usize> = done.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let deadline = Instant::now() + PROGRESS;
    while done
        .iter()
        .zip(&from)
        .any(|(d, f)| d.load(Ordering::Relaxed) < f + n)
    {
        assert!(Instant::now() < deadline, "no progress {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn commits_in_flight_at_leader_death_land_exactly_once() {
    let mut cluster = EtcdCluster::start();
    let stop = AtomicBool::new(false);
    let done: Vec<AtomicUsize> = (0..WRITERS).map(|_| AtomicUsize::new(0)).collect();
    let seen: Mutex<Vec<(usize, Seen)>> = Mutex::default();
    let endpoints = cluster.endpoints.clone();
    std::thread::scope(|s| {
        // A failed wait stops the writers too, so the scope ends.
        let _stop = StopOnDrop(&stop);
        for (i, count) in done.iter().enumerate() {
            let (endpoints, stop, seen) = (&endpoints, &stop, &seen);
            s.spawn(move || {
                let mine = writer(endpoints, i, stop, count);
                seen.lock().expect("lock").push((i, mine));
            });
        }
        for _ in 0..KILLS {
            wait_progress(&done, 10, "before a kill");
            let leader = cluster.wait_for_leader();
            cluster.kill(leader);
            wait_progress(&done, 10, "with the leader dead");
            cluster.restart(leader);
        }
        wait_progress(&done, 10, "at the end");
    });
    let seen = seen.into_inner().expect("lock");
    check(
        &EtcdStore::connect(&cluster.endpoints, "inflight/").expect("connect"),
        &seen,
    );
}

/// The store against what the writers were told.
fn check(store: &EtcdStore, seen: &[(usize, Seen)]) {
    let steps: BTreeMap<String, (u64, u64)> = store
        .list("ops/")
        .expect("list")
        .into_iter()
        .map(|(k, r)| {
            let v = String::from_utf8_lossy(&r.value).parse().expect("a count");
            (k, (v, r.revision))
        })
        .collect();
    let counter = store.get("counter").expect("get").expect("a counter");
    let count: u64 = String::from_utf8_lossy(&counter.value)
        .parse()
        .expect("a count");
    // Each landed step bumped the counter by one, each value once.
    let values: HashSet<u64> = steps.values().map(|(v, _)| *v).collect();
    assert_eq!(values.len(), steps.len(), "a value written twice");
    assert_eq!(values, (1..=count).collect(), "counter {count}");
    let (mut acked, mut unknown) = (0, 0);
    for (writer, mine) in seen {
        assert!(
            mine.wrong.is_empty(),
            "landed, answered refused: {:?}",
            mine.wrong
        );
        for (seq, value, revision) in &mine.acked {
            let key = ops_key(*writer, *seq);
            assert_eq!(steps.get(&key), Some(&(*value, *revision)), "{key} acked");
        }
        acked += mine.acked.len();
        unknown += mine.unknown.len();
    }
    let landed_unknown = steps.len() - acked;
    eprintln!(
        "{acked} commits acked, {unknown} answered unknown ({landed_unknown} of those landed), \
         {KILLS} leaders killed"
    );
    assert!(landed_unknown <= unknown, "a step landed that nobody sent");
}

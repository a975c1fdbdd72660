use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::test_certs::TestCerts;
use super::test_server::{EtcdCluster, EtcdServer};
use super::EtcdStore;
use crate::store::{Expect, Op, Store, StoreError, StoreResult};

/// A fresh store on an etcd of its own (the test server lives as long
/// as the opener); each call of the opener is a new client of it, as
/// each `berth` process has.
fn fresh() -> impl Fn() -> Box<dyn Store> + Sync {
    let server = EtcdServer::start();
    move || -> Box<dyn Store> {
        Box::new(
            EtcdStore::connect(std::slice::from_ref(&server.endpoint), "berth/").expect("connect"),
        )
    }
}

mod contract {
    crate::store_contract_tests!(super::fresh());
}

fn put(key: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: b"v".to_vec(),
        expect: Expect::Any,
    }
}

/// Two stores under different roots on one etcd see nothing of each
/// other, records or leases.
#[test]
fn roots_keep_stores_apart() {
    let server = EtcdServer::start();
    let open = |root: &str| {
        EtcdStore::connect(std::slice::from_ref(&server.endpoint), root).expect("connect")
    };
    let (a, b) = (open("a/"), open("b/"));
    a.commit(&[put("k")]).expect("put");
    assert!(b.get("k").expect("get").is_none());
    assert!(b.list("").expect("list").is_empty());
    let live = Duration::from_secs(60);
    assert!(a.acquire_lease("l", "one", live).expect("lease"));
    assert!(b.acquire_lease("l", "two", live).expect("lease"));
    // A lease is never a record.
    assert_eq!(a.list("").expect("list").len(), 1);
}

/// A failed commit names the key of the first op whose expectation
/// failed, not merely the first key.
#[test]
fn a_conflict_names_the_failing_key() {
    let server = EtcdServer::start();
    let store =
        EtcdStore::connect(std::slice::from_ref(&server.endpoint), "berth/").expect("connect");
    store.commit(&[put("taken")]).expect("put");
    let err = store
        .commit(&[
            put("free"),
            Op::Put {
                key: "taken".into(),
                value: b"x".to_vec(),
                expect: Expect::Absent,
            },
        ])
        .expect_err("conflict");
    assert!(
        matches!(&err, StoreError::Conflict(k) if k == "taken"),
        "{err:?}"
    );
}

/// More operations than etcd's txn limit are refused before they reach
/// the server, with an error that says why.
#[test]
fn commits_over_the_txn_limit_are_refused() {
    let server = EtcdServer::start();
    let store =
        EtcdStore::connect(std::slice::from_ref(&server.endpoint), "berth/").expect("connect");
    let ops: Vec<Op> = (0..129).map(|i| put(&format!("k/{i}"))).collect();
    let err = store.commit(&ops).expect_err("refused");
    assert!(err.to_string().contains("at most 128"), "{err}");
    assert!(store.list("k/").expect("list").is_empty());
    store.commit(&ops[..128]).expect("128 fit");
    assert_eq!(store.list("k/").expect("list").len(), 128);
}

/// etcd stopped: every call answers a Backend error naming the endpoint,
/// within the timeouts (no hang, no panic).
#[test]
fn a_stopped_etcd_is_a_clear_error() {
    let mut server = EtcdServer::start();
    let endpoint = server.endpoint.clone();
    let store = EtcdStore::connect(std::slice::from_ref(&endpoint), "berth/").expect("connect");
    store.commit(&[put("k")]).expect("put while up");
    server.kill();
    let calls = AtomicUsize::new(0);
    let check = |result: Result<(), StoreError>| {
        calls.fetch_add(1, Ordering::Relaxed);
        match result {
            Err(StoreError::Backend(msg)) => assert!(msg.contains(&endpoint), "{msg}"),
            other => panic!("want a Backend error naming {endpoint}, got {other:?}"),
        }
    };
    let started = Instant::now();
    check(store.get("k").map(drop));
    check(store.list("").map(drop));
    check(store.commit(&[put("k")]).map(drop));
    check(
        store
            .acquire_lease("l", "one", Duration::from_secs(5))
            .map(drop),
    );
    check(store.release_lease("l", "one"));
    // A store opened while etcd is down fails the same way.
    let late = EtcdStore::connect(std::slice::from_ref(&endpoint), "berth/");
    check(late.and_then(|s| s.get("k")).map(drop));
    // Bounded by the request timeout per call, not hanging.
    let bound = super::REQUEST_TIMEOUT * calls.load(Ordering::Relaxed) as u32;
    assert!(started.elapsed() <= bound, "{:?}", started.elapsed());
}

/// An endpoint that accepts connections and never answers (a hung or
/// partitioned etcd) fails each call within the request timeout.
#[test]
fn a_silent_endpoint_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = silent.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let result =
        EtcdStore::connect(std::slice::from_ref(&endpoint), "berth/").and_then(|s| s.get("k"));
    match result {
        Err(StoreError::Backend(msg)) => assert!(msg.contains(&endpoint), "{msg}"),
        other => panic!("want a Backend error naming {endpoint}, got {other:?}"),
    }
    assert!(
        started.elapsed() <= super::REQUEST_TIMEOUT * 2 + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Three members, all in the store's endpoints: with a follower and
/// then the leader killed (one at a time, a quorum left), every call
/// still succeeds, and a member that returns has what it missed.
#[test]
fn a_member_lost_changes_nothing() {
    let mut cluster = EtcdCluster::start();
    let store = EtcdStore::connect(&cluster.endpoints, "berth/").expect("connect");
    store.commit(&[put("before")]).expect("put");
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 1) % 3;
    for (down, what) in [(follower, "a follower"), (leader, "the leader")] {
        cluster.kill(down);
        // Reads go on at once; a write sent just as the leader died may
        // be lost with it (its outcome unknown until an answer that never
        // comes): writes go on once the others have elected a leader.
        assert!(store.get("before").expect("a read").is_some());
        cluster.wait_for_leader();
        for i in 0..20 {
            let key = format!("during/{down}/{i}");
            store
                .commit(&[put(&key)])
                .unwrap_or_else(|e| panic!("{what} down: {e}"));
            assert!(store.get(&key).expect("get").is_some());
        }
        assert!(store
            .acquire_lease("l", "one", Duration::from_secs(60))
            .expect("lease"));
        cluster.restart(down);
    }
    assert_eq!(store.list("during/").expect("list").len(), 40);
    // The restarted members serve it all, each on its own.
    for endpoint in &cluster.endpoints {
        let alone = EtcdStore::connect(std::slice::from_ref(endpoint), "berth/").expect("connect");
        assert_eq!(alone.list("").expect("list").len(), 41, "{endpoint}");
    }
}

/// A watch lives past the request timeout: it wakes with a change made
/// later than that, and with none it ends at its own timeout, not in an
/// error. A change under another prefix does not wake it.
#[test]
fn a_long_wait_outlives_the_request_timeout() {
    let server = EtcdServer::start();
    let open = || EtcdStore::connect(std::slice::from_ref(&server.endpoint), "berth/");
    let (waiter, writer) = (open().expect("connect"), open().expect("connect"));
    let past_timeout = super::REQUEST_TIMEOUT + Duration::from_secs(1);
    let rev = waiter.revision().expect("revision");
    writer.commit(&[put("services/x")]).expect("elsewhere");
    assert!(!waiter.wait("tasks/", rev, past_timeout).expect("wait"));
    let rev = waiter.revision().expect("revision");
    let woke = std::thread::scope(|s| {
        let waiting = s.spawn(|| waiter.wait("tasks/", rev, Duration::from_secs(120)));
        std::thread::sleep(past_timeout);
        writer.commit(&[put("tasks/a")]).expect("commit");
        waiting.join().expect("waiter")
    });
    assert!(woke.expect("wait"));
}

/// Compaction drops the revisions before its point: reading one fails as
/// compacted, a wait from one wakes (a change may have been missed), and
/// the store goes on as before. `compact` compacts to the revision it
/// noted a period before.
#[test]
fn compaction_drops_old_revisions_and_the_store_goes_on() {
    let server = EtcdServer::start();
    let store = EtcdStore::connect(std::slice::from_ref(&server.endpoint), "berth/")
        .expect("connect")
        .with_compaction_every(Duration::ZERO);
    let first = store.commit(&[put("tasks/a")]).expect("put");
    for _ in 0..5 {
        store.commit(&[put("tasks/a")]).expect("put");
    }
    assert_eq!(store.compact().expect("compact"), None, "notes only");
    let noted = store.revision().expect("revision");
    store.commit(&[put("tasks/b")]).expect("put");
    assert_eq!(store.compact().expect("compact"), Some(noted));

    let old = store.runtime.block_on(async {
        let mut client = etcd_client::Client::connect([&server.endpoint], None)
            .await
            .expect("client");
        let options = etcd_client::GetOptions::new().with_revision(first as i64);
        client.get("berth/r/tasks/a", Some(options)).await
    });
    let err = old.expect_err("an old revision is gone").to_string();
    assert!(err.contains("compacted"), "{err}");
    assert!(store
        .wait("tasks/", first, Duration::from_secs(60))
        .expect("wait"));

    let rev = store.commit(&[put("tasks/c")]).expect("put after");
    assert_eq!(store.get("tasks/c").expect("get").expect("c").revision, rev);
    assert_eq!(store.list("tasks/").expect("list").len(), 3);
    assert!(!store
        .wait("tasks/", rev, Duration::from_millis(300))
        .expect("wait"));
    // Compacting to a point already compacted (another host did) is fine.
    store.compact_to(noted).expect("again");
}

/// etcds://: a member that takes only clients with a certificate its CA
/// signed. With the right CA and identity the store works; the wrong CA,
/// no client certificate, a CA file missing or plain etcd:// each fail
/// with an error naming the store.
#[test]
fn tls_with_client_certificates() {
    use crate::store::{open, StoreConfig, TlsFiles};
    let certs = TestCerts::make();
    let server = EtcdServer::start_tls(certs.server());
    let url = format!("etcds://{}/tls", server.endpoint);
    let files = |ca: &std::path::Path, identity: bool| TlsFiles {
        ca: Some(ca.to_path_buf()),
        cert: identity.then(|| certs.client_cert.clone()),
        key: identity.then(|| certs.client_key.clone()),
    };
    let try_open = |tls: TlsFiles| {
        let config = StoreConfig::parse(Some(&url), tls).expect("parse");
        open(&config, certs.dir()).and_then(|s| s.commit(&[put("k")]).map(|_| s))
    };
    let store = try_open(files(&certs.ca, true)).expect("the right CA and identity");
    assert!(store.get("k").expect("get").is_some());

    let fails = |result: StoreResult<Box<dyn Store>>, what: &str| match result {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains(&url), "{what}: {msg}");
            msg
        }
        Err(e) => panic!("{what}: want a Backend error, got {e:?}"),
        Ok(_) => panic!("{what}: it worked"),
    };
    fails(try_open(files(&certs.other_ca, true)), "the wrong CA");
    let msg = fails(try_open(files(&certs.ca, false)), "no client certificate");
    assert!(msg.contains("--store-cert"), "{msg}");
    let missing = certs.dir().join("nowhere.pem");
    let msg = fails(try_open(files(&missing, true)), "no CA file");
    assert!(
        msg.contains("--store-ca") && msg.contains("nowhere.pem"),
        "{msg}"
    );
    let plain = StoreConfig::parse(
        Some(&format!("etcd://{}/tls", server.endpoint)),
        TlsFiles::default(),
    )
    .expect("parse");
    let result = open(&plain, certs.dir()).and_then(|s| s.commit(&[put("k")]));
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
}

/// A list larger than the gRPC client's 4 MiB answer limit comes back
/// whole, in key order, read in pages; its neighbours' keys stay out.
#[test]
fn a_list_over_the_answer_limit_comes_back_whole_in_pages() {
    let open = fresh();
    let store = open();
    let big = vec![b'x'; 8 * 1024];
    // 600 records of 8 KiB: 4.9 MB, more than one page of LIST_PAGE.
    for chunk in (0..600).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<Op> = chunk
            .iter()
            .map(|n| Op::Put {
                key: format!("big/{n:04}"),
                value: big.clone(),
                expect: Expect::Absent,
            })
            .collect();
        store.commit(&ops).expect("commit");
    }
    store
        .commit(&[put("bigger/0"), put("bif/0")])
        .expect("commit");
    let listed = store.list("big/").expect("list");
    let keys: Vec<String> = listed.iter().map(|(k, _)| k.clone()).collect();
    let want: Vec<String> = (0..600).map(|n| format!("big/{n:04}")).collect();
    assert_eq!(keys, want);
    assert!(listed.iter().all(|(_, r)| r.value == big));
}

#[test]
fn prefix_end_is_the_first_key_past_the_prefix() {
    assert_eq!(super::prefix_end(b"berth/tasks/"), b"berth/tasks0".to_vec());
    assert_eq!(super::prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(super::prefix_end(b"\xff"), vec![0]);
}

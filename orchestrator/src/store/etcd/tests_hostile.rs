//! Hostile endpoints: something that is not etcd at the address given
//! (garbage, silence, an endless answer, a closed door) makes every call
//! a Backend error naming the store, in bounded time: never a hang, never
//! a panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::test_server::EtcdServer;
use super::EtcdStore;
use crate::store::{Expect, Op, Store, StoreError};

/// What the fake endpoint does with each connection.
#[derive(Clone, Copy, Debug)]
enum Speaks {
    /// Reads a little, answers a few bytes of nonsense, stays open.
    Garbage,
    /// Reads, never answers.
    Silence,
    /// Answers nonsense for as long as the client reads.
    Endless,
    /// Closes at once.
    Hangup,
}

/// A TCP server on loopback speaking `how`, until dropped.
struct Fake {
    endpoint: String,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(how: Speaks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = listener.local_addr().expect("addr").to_string();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let stopped = stopped.clone();
                        std::thread::spawn(move || serve(conn, how, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Fake { endpoint, stop }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, how: Speaks, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    let junk = [0xffu8; 64 * 1024];
    match how {
        Speaks::Hangup => return,
        Speaks::Garbage => {
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\nnot etcd\0\xff\xfe");
        }
        _ => {}
    }
    while !stop.load(Ordering::Relaxed) {
        if let Ok(0) = conn.read(&mut buf) {
            return;
        }
        if matches!(how, Speaks::Endless) && conn.write_all(&junk).is_err() {
            return;
        }
    }
}

/// One store call, its answer reduced to success or the error.
type Call<'a> = Box<dyn Fn(&EtcdStore) -> Result<(), StoreError> + 'a>;

#[test]
fn an_endpoint_that_is_not_etcd_is_a_clear_error() {
    let put = Op::Put {
        key: "k".into(),
        value: b"v".to_vec(),
        expect: Expect::Any,
    };
    for how in [
        Speaks::Garbage,
        Speaks::Silence,
        Speaks::Endless,
        Speaks::Hangup,
    ] {
        let fake = Fake::start(how);
        let name = format!("etcd://{}/x", fake.endpoint);
        let calls: Vec<(&str, Call)> = vec![
            ("get", Box::new(|s| s.get("k").map(drop))),
            ("list", Box::new(|s| s.list("").map(drop))),
            (
                "commit",
                Box::new(|s| s.commit(std::slice::from_ref(&put)).map(drop)),
            ),
            ("revision", Box::new(|s| s.revision().map(drop))),
            (
                "lease",
                Box::new(|s| s.acquire_lease("l", "h", Duration::from_secs(5)).map(drop)),
            ),
            (
                "wait",
                Box::new(|s| s.wait("", 0, Duration::from_secs(30)).map(drop)),
            ),
        ];
        let store =
            match EtcdStore::connect_named(std::slice::from_ref(&fake.endpoint), "x/", &name) {
                Ok(store) => store,
                Err(StoreError::Backend(msg)) => {
                    assert!(msg.contains(&name), "{how:?} connect: {msg}");
                    continue;
                }
                Err(e) => panic!("{how:?} connect: {e:?}"),
            };
        for (what, call) in &calls {
            match call(&store) {
                Err(StoreError::Backend(msg)) => {
                    assert!(msg.contains(&name), "{how:?} {what}: {msg}")
                }
                other => panic!("{how:?} {what}: want a Backend error, got {other:?}"),
            }
        }
    }
}

/// Two stores whose prefixes extend one another (`a`, `a/r`, `ab`) on
/// one etcd: none sees another's records or leases.
#[test]
fn nested_prefixes_see_nothing_of_each_other() {
    let server = EtcdServer::start();
    let open = |root: &str| {
        EtcdStore::connect(std::slice::from_ref(&server.endpoint), root).expect("connect")
    };
    let roots = ["a/", "a/r/", "a/l/", "a/c/", "ab/"];
    let stores: Vec<EtcdStore> = roots.iter().map(|r| open(r)).collect();
    for (store, root) in stores.iter().zip(roots) {
        let op = Op::Put {
            key: format!("k-{root}"),
            value: b"v".to_vec(),
            expect: Expect::Absent,
        };
        store.commit(&[op]).expect("put");
        assert!(store
            .acquire_lease("l", root, Duration::from_secs(60))
            .expect("lease"));
    }
    for (store, root) in stores.iter().zip(roots) {
        let keys: Vec<String> = store
            .list("")
            .expect("list")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [format!("k-{root}")], "{root}");
        assert_eq!(
            store.lease_holder("l").expect("holder").as_deref(),
            Some(root)
        );
    }
}

/// TLS files that look like PEM but hold no certificate or key: a
/// Backend error naming the store, never a panic.
#[test]
fn pem_files_of_nonsense_are_a_clear_error() {
    let certs = super::test_certs::TestCerts::make();
    let server = EtcdServer::start_tls(certs.server());
    let real = |p: &std::path::Path| std::fs::read(p).expect("read");
    let bogus = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
    let bogus_key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec();
    let name = format!("etcds://{}/x", server.endpoint);
    let cases = [
        (
            "ca",
            bogus.clone(),
            real(&certs.client_cert),
            real(&certs.client_key),
        ),
        ("cert", real(&certs.ca), bogus, real(&certs.client_key)),
        ("key", real(&certs.ca), real(&certs.client_cert), bogus_key),
    ];
    for (what, ca, cert, key) in cases {
        let pem = super::TlsPem {
            ca,
            identity: Some((cert, key)),
        };
        let result =
            EtcdStore::connect_tls(std::slice::from_ref(&server.endpoint), "x/", &name, pem)
                .and_then(|s| s.get("k"));
        match result {
            Err(StoreError::Backend(msg)) => assert!(msg.contains(&name), "{what}: {msg}"),
            other => panic!("{what}: want a Backend error, got {other:?}"),
        }
    }
}

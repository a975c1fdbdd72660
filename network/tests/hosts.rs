//! Two "hosts" on one machine: network namespaces the test makes, joined
//! by a veth pair (their underlay), each with a bridge carrying its own
//! slice of one network and a "task" namespace plugged into it. Only the
//! routes `routes::sync_routes` makes (and the forwarding
//! `routes::open_underlay` allows) let a task on one host reach a task on
//! the other, unmasqueraded. Real kernel, as root; every namespace (and so
//! every link, route and nft table in it) is removed on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use berth_net::routes::{self, PeerRoute};
use berth_net::Subnet;

mod common;
use common::Netns;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn patience() -> Duration {
    let factor: u64 = std::env::var("BERTH_TEST_PATIENCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Duration::from_secs(5 * factor)
}

/// One host: its namespace, its underlay end and address, its slice and
/// the task namespace behind its bridge (dropped before the host).
struct Host {
    task: Netns,
    ns: Netns,
    underlay: String,
    address: Ipv4Addr,
    slice: Subnet,
}

const BRIDGE: &str = "brt0";

impl Host {
    fn task_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.slice.gateway()) + 1)
    }

    /// The bridge with the slice's gateway, and the task plugged in.
    fn plug_task(&self) {
        let (task, slice, address) = (self.task.path(), self.slice, self.task_address());
        self.ns.run(|| {
            berth_net::ensure_bridge(BRIDGE, slice.gateway(), slice.prefix).expect("bridge");
            berth_net::attach(
                &task,
                BRIDGE,
                "vbt0",
                address,
                slice.prefix,
                slice.gateway(),
            )
            .expect("attach the task");
        });
    }
}

fn connect(from: &Host, to: SocketAddr) -> std::io::Result<TcpStream> {
    from.task
        .run(|| TcpStream::connect_timeout(&to, patience()))
}

/// Whether `from` fails to reach `to`: a packet with no route is never
/// answered, so a short wait only ever errs towards "reached".
fn cannot_reach(from: &Host, to: SocketAddr) -> bool {
    from.task
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(1)))
        .is_err()
}

#[test]
fn routes_let_a_task_reach_a_task_behind_another_hosts_bridge() {
    let tag = std::process::id() % 100_000;
    let network: Subnet = "10.252.0.0/16".parse().expect("network");
    let make = |side: &str, n: u8| Host {
        task: Netns::new(format!("brt{tag}{side}t")),
        ns: Netns::new(format!("brt{tag}{side}")),
        underlay: format!("ult{side}"),
        address: Ipv4Addr::new(10, 251, 0, n),
        slice: network.slice(u32::from(n)).expect("slice"),
    };
    let (a, b) = (make("a", 1), make("b", 2));
    // The underlay: a veth pair between the two hosts, one L2 segment.
    ip(&[
        "link",
        "add",
        &a.underlay,
        "netns",
        &a.ns.0,
        "type",
        "veth",
        "peer",
        "name",
        &b.underlay,
        "netns",
        &b.ns.0,
    ]);
    for h in [&a, &b] {
        let cidr = format!("{}/24", h.address);
        ip(&["-n", &h.ns.0, "addr", "add", &cidr, "dev", &h.underlay]);
        ip(&["-n", &h.ns.0, "link", "set", &h.underlay, "up"]);
        ip(&["-n", &h.ns.0, "link", "set", "lo", "up"]);
        h.plug_task();
    }
    let listener = b
        .task
        .run(|| TcpListener::bind((b.task_address(), 8080)).expect("listen on task b"));
    let target = SocketAddr::from((b.task_address(), 8080));

    // Without berth's routes, host a has no way to b's slice.
    assert!(cannot_reach(&a, target), "reached b before any route");

    for (this, other) in [(&a, &b), (&b, &a)] {
        let wanted = [PeerRoute {
            slice: other.slice,
            via: other.address,
        }];
        this.ns.run(|| {
            routes::open_underlay(BRIDGE, &this.slice, &network, &this.underlay)
                .expect("open the underlay");
            let done = routes::sync_routes(&network, &wanted).expect("sync");
            assert_eq!(done.add, wanted);
            // A second pass has nothing to do.
            assert!(routes::sync_routes(&network, &wanted)
                .expect("again")
                .is_empty());
            assert_eq!(routes::routes(&network).expect("routes"), wanted);
            // Forwarding is per interface: the global knob is untouched.
            let global = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
            assert_eq!(global.trim(), "0");
        });
    }

    let server = std::thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (mut stream, peer) = listener.accept().expect("accept");
            stream.write_all(b"hello from b").expect("write");
            peers.push(peer.ip());
        }
        peers
    });
    let read_all = |mut stream: TcpStream| {
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    };
    let stream = connect(&a, target).expect("a task on a reaches a task on b");
    assert_eq!(read_all(stream), "hello from b");

    // A load balancer on host a, listening on its loopback, sends to the
    // task on b: 127.0.0.1 sources leave through the underlay, masqueraded.
    let lb = a.ns.run(|| {
        let listener = berth_net::lb::Listener {
            name: format!("brt{tag}"),
            address: Some(Ipv4Addr::LOCALHOST),
            port: 9090,
            protocol: "tcp".into(),
        };
        let backend = berth_net::lb::Backend {
            address: b.task_address(),
            port: 8080,
            bridge: BRIDGE.into(),
        };
        berth_net::lb::apply(&listener, &[backend]).expect("load balancer");
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], 9090)), patience())
    });
    assert_eq!(
        read_all(lb.expect("a's load balancer reaches b")),
        "hello from b"
    );

    // Not masqueraded task to task: b saw a's task address; the load
    // balancer's connection came from a's underlay address.
    let peers = server.join().expect("server");
    assert_eq!(
        peers,
        [
            std::net::IpAddr::V4(a.task_address()),
            std::net::IpAddr::V4(a.address)
        ]
    );

    // What leaves the bridge for anywhere but the network is still
    // dropped: a task on a does not reach host b's own address.
    let _b_host =
        b.ns.run(|| TcpListener::bind((b.address, 7070)).expect("listen on host b"));
    assert!(
        cannot_reach(&a, SocketAddr::from((b.address, 7070))),
        "a task left its network"
    );

    // A route berth did not make is left alone; berth's own go when no
    // longer wanted.
    a.ns.run(|| {
        let theirs = format!("{}/24", network.slice(9).expect("slice").network);
        ip(&["route", "add", &theirs, "via", &b.address.to_string()]);
        let done = routes::sync_routes(&network, &[]).expect("sync to none");
        assert_eq!(done.remove.len(), 1);
        assert!(routes::routes(&network).expect("routes").is_empty());
        let table = Command::new("ip")
            .args(["route"])
            .output()
            .expect("ip route");
        let table = String::from_utf8_lossy(&table.stdout).to_string();
        assert!(table.contains(&theirs), "{table}");
    });
    assert!(cannot_reach(&a, target), "still reached b");
}

#[test]
fn the_source_toward_a_peer_is_a_global_address_of_this_host() {
    let ns = Netns::new(format!("brt{}s", std::process::id() % 100_000));
    ns.run(|| {
        ip(&[
            "link", "add", "ults", "type", "veth", "peer", "name", "ultp",
        ]);
        ip(&["addr", "add", "10.251.9.1/24", "dev", "ults"]);
        ip(&["link", "set", "ults", "up"]);
        let peer = SocketAddr::from(([10, 251, 9, 7], 2379));
        assert_eq!(
            routes::source_address_toward(peer),
            Some(Ipv4Addr::new(10, 251, 9, 1))
        );
        assert_eq!(
            routes::global_addresses().expect("addresses"),
            [(Ipv4Addr::new(10, 251, 9, 1), "ults".to_string())]
        );
        assert_eq!(
            routes::link_with_address(Ipv4Addr::new(10, 251, 9, 1)).expect("link"),
            Some("ults".to_string())
        );
        // Nowhere to send to: no source.
        assert_eq!(
            routes::source_address_toward(SocketAddr::from(([10, 99, 0, 1], 1))),
            None
        );
    });
}

//! awsvpc tasks on a cluster bridge: addresses, reachability, cleanup.
//! Each test has its own bridge and subnet and talks only to the
//! namespaces it made.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::{assert_ok, free_port, parse_json, stdout, task_ids, World};
use serde_json::{json, Value};

fn address_of(task: &Value) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["name"] == "privateIPv4Address"))
        .and_then(|x| x["value"].as_str())
        .unwrap_or_else(|| panic!("no address: {task}"))
        .to_string()
}

/// GET / from `addr` (HOST:PORT), retrying until it answers.
fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(2))
        {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if !body.is_empty() {
                return body;
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_fargate_task_gets_an_address_and_is_reachable() {
    let w = World::new("net-fargate");
    w.busybox_image("busybox:latest", &[]);
    // A port of this world's own, published on the host.
    let port = free_port();
    let web_cmd = format!(
        "mkdir -p /www; echo hello-awsvpc > /www/index.html; httpd -p 80 -h /www; httpd -p {port} -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done"
    );
    w.register(&json!({
            "family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "containerDefinitions": [
                { "name": "web", "image": "busybox", "command": ["sh", "-c", web_cmd],
                  "portMappings": [{ "containerPort": port }] },
                { "name": "client", "image": "busybox", "essential": false,
                  "command": ["sh", "-c", "until wget -qO- http://web:80/; do sleep 0.1; done; grep -q nameserver /etc/resolv.conf && echo resolv-ok"],
                  "dnsServers": ["10.0.0.53"] }
            ]
        }),
    );
    let out = parse_json(&w.berth(&[
        "run-task",
        "--task-definition",
        "web",
        "--launch-type",
        "FARGATE",
    ]));
    let id = task_ids(&out).pop().expect("task");
    let t = w.wait_task(&id, "RUNNING");
    assert_eq!(t["attachments"][0]["type"], "ElasticNetworkInterface");
    assert_eq!(t["attachments"][0]["status"], "ATTACHED");
    let ip = address_of(&t);
    assert!(
        ip.starts_with(&w.subnet[..w.subnet.len() - 4]),
        "{ip} in {}",
        w.subnet
    );
    // From the host, over the bridge.
    assert!(http_get(&format!("{ip}:80")).contains("hello-awsvpc"));
    // Through the port mapping, on 127.0.0.1: nftables DNAT.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-awsvpc"));
    let web = t["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "web"))
        .expect("web");
    assert_eq!(web["networkBindings"][0]["hostPort"], port);
    // The port is the instance's: a second task wanting it is not placed.
    let second = parse_json(&w.berth(&[
        "run-task",
        "--task-definition",
        "web",
        "--launch-type",
        "FARGATE",
    ]));
    assert_eq!(
        second["failures"][0]["reason"], "RESOURCE:PORTS",
        "{second}"
    );
    // Between the task's containers, by name (/etc/hosts), on the task's
    // own address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout(&w.berth(&["logs", &id, "--container", "client"])).contains("resolv-ok") {
        assert!(
            Instant::now() < deadline,
            "client never fetched over localhost"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["attachments"][0]["status"], "DELETED");
    let usage = parse_json(&w.berth(&["usage"]));
    assert_eq!(usage["usage"][0]["launchType"], "FARGATE");
    assert!(
        usage["usage"][0]["gibSeconds"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{usage}"
    );
    w.assert_clean();
}

#[test]
fn concurrent_tasks_get_distinct_addresses() {
    let w = World::new("net-ipam");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "many", "networkMode": "awsvpc",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let children: Vec<_> = (0..5)
        .map(|_| {
            w.command()
                .args(["run-task", "--task-definition", "many", "--count", "10"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert_ok(&out);
        ids.extend(task_ids(&parse_json(&out)));
    }
    assert_eq!(ids.len(), 50);
    let mut addresses = std::collections::BTreeSet::new();
    for id in &ids {
        addresses.insert(address_of(&w.wait_task(id, "RUNNING")));
    }
    assert_eq!(addresses.len(), 50, "{addresses:?}");
    for id in &ids {
        assert_ok(&w.berth(&["stop-task", "--task", id]));
    }
    for id in &ids {
        w.wait_task(id, "STOPPED");
    }
    w.assert_clean();
}

#[test]
fn system_gc_finishes_a_task_whose_supervisor_was_killed() {
    let w = World::new("net-gc");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "gc", "networkMode": "awsvpc",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 16,
            "portMappings": [{ "containerPort": free_port() }],
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let out = parse_json(&w.berth(&["run-task", "--task-definition", "gc"]));
    let id = task_ids(&out).pop().expect("task");
    w.wait_task(&id, "RUNNING");
    // Kill the task's supervisor: its container runs on, unwatched.
    for pid in w.monitors() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("__berth-task") {
            std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill");
        }
    }
    std::thread::sleep(Duration::from_millis(5500));
    let out = w.berth(&["system", "gc"]);
    assert_ok(&out);
    let report = parse_json(&out);
    assert_eq!(
        report["tasksFinished"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let t = w.describe_task(&id);
    assert_eq!(t["lastStatus"], "STOPPED");
    w.assert_clean();
}

#[test]
fn bridge_mode_tasks_talk_by_address_and_name() {
    let w = World::new("net-bridge");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
            "family": "bridged", "networkMode": "bridge",
            "containerDefinitions": [
                { "name": "web", "image": "busybox", "memory": 16,
                  "portMappings": [{ "containerPort": 80, "hostPort": 0 }],
                  "command": ["sh", "-c", "mkdir -p /www; echo hello-bridge > /www/index.html; httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done"] },
                { "name": "peer", "image": "busybox", "memory": 16, "essential": false,
                  "command": ["sh", "-c", "until wget -qO- http://web:80/; do sleep 0.1; done"] }
            ]
        }),
    );
    let out = parse_json(&w.berth(&["run-task", "--task-definition", "bridged"]));
    let a = task_ids(&out).pop().expect("task");
    let t = w.wait_task(&a, "RUNNING");
    let web = t["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "web"))
        .expect("web")
        .clone();
    let host_port = web["networkBindings"][0]["hostPort"]
        .as_u64()
        .expect("hostPort");
    assert!(host_port >= 49153, "an ephemeral port: {web}");
    let web_ip = web["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .expect("ip")
        .to_string();
    // Through the ephemeral host port on 127.0.0.1.
    assert!(http_get(&format!("127.0.0.1:{host_port}")).contains("hello-bridge"));
    // By name, from another container of the task (its own namespace).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout(&w.berth(&["logs", &a, "--container", "peer"])).contains("hello-bridge") {
        assert!(Instant::now() < deadline, "peer never reached web by name");
        std::thread::sleep(Duration::from_millis(50));
    }
    // By address, from another task on the bridge.
    w.register(&json!({
        "family": "client", "networkMode": "bridge",
        "containerDefinitions": [{ "name": "c", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", format!("wget -qO- http://{web_ip}:80/")] }]
    }));
    let out = parse_json(&w.berth(&["run-task", "--task-definition", "client"]));
    let b = task_ids(&out).pop().expect("task");
    let tb = w.wait_task(&b, "STOPPED");
    assert_eq!(tb["containers"][0]["exitCode"], 0, "{tb}");
    assert_eq!(stdout(&w.berth(&["logs", &b])), "hello-bridge\n");
    assert_ok(&w.berth(&["stop-task", "--task", &a]));
    w.wait_task(&a, "STOPPED");
    w.assert_clean();
}

#[test]
fn a_cluster_on_its_own_network_with_hairpin_udp_and_links() {
    let w = World::new("net-own");
    w.busybox_image("busybox:latest", &[]);
    let forward_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
    let out = w.berth(&[
        "create-cluster",
        "--cluster-name",
        "lab",
        "--bridge",
        &w.bridge2,
        "--subnet",
        &w.subnet2,
    ]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["cluster"]["network"]["bridge"], w.bridge2);
    let (tcp_port, udp_port) = (free_port(), free_port());
    w.register(&json!({
        "family": "svc", "networkMode": "bridge",
        "containerDefinitions": [
            { "name": "web", "image": "busybox", "memory": 16,
              "portMappings": [
                  { "containerPort": 80, "hostPort": tcp_port },
                  { "containerPort": 5353, "hostPort": udp_port, "protocol": "udp" }
              ],
              "command": ["sh", "-c", "mkdir -p /www; echo hello-own > /www/index.html; httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done"] },
            { "name": "app", "image": "busybox", "memory": 16, "essential": false,
              "links": ["web:www"],
              "command": ["sh", "-c", "until wget -qO- http://www/; do sleep 0.1; done"] }
        ]
    }));
    let out = parse_json(&w.berth(&["run-task", "--cluster", "lab", "--task-definition", "svc"]));
    let id = task_ids(&out).pop().expect("task");
    let t = w.wait_task_in("lab", &id, "RUNNING");
    let web_ip = t["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "web"))
        .and_then(|c| c["networkInterfaces"][0]["privateIpv4Address"].as_str())
        .expect("web's address")
        .to_string();
    let prefix = &w.subnet2[..w.subnet2.len() - 4];
    assert!(web_ip.starts_with(prefix), "{web_ip} in {}", w.subnet2);
    assert!(std::path::Path::new("/sys/class/net")
        .join(&w.bridge2)
        .exists());
    // The host port, from the host.
    assert!(http_get(&format!("127.0.0.1:{tcp_port}")).contains("hello-own"));
    // A link's alias resolves to the linked container.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout(&w.berth(&["logs", "--cluster", "lab", &id, "--container", "app"]))
        .contains("hello-own")
    {
        assert!(Instant::now() < deadline, "app never reached web as www");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The host port, from another task: through the gateway and back out
    // the bridge (hairpin).
    let gateway = format!("{prefix}1");
    w.register(&json!({
        "family": "client", "networkMode": "bridge",
        "containerDefinitions": [{ "name": "c", "image": "busybox", "memory": 16,
            "command": ["wget", "-qO-", format!("http://{gateway}:{tcp_port}/")] }]
    }));
    let out = parse_json(&w.berth(&[
        "run-task",
        "--cluster",
        "lab",
        "--task-definition",
        "client",
    ]));
    let client = task_ids(&out).pop().expect("task");
    let tc = w.wait_task_in("lab", &client, "STOPPED");
    assert_eq!(tc["containers"][0]["exitCode"], 0, "{tc}");
    assert_eq!(
        stdout(&w.berth(&["logs", "--cluster", "lab", &client])),
        "hello-own\n"
    );
    // UDP: datagrams to the host port arrive in web's namespace (nothing
    // listens there, so its NoPorts counter shows them).
    let before = w.udp_no_ports("lab", &id, "web");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..3 {
        sock.send_to(b"ping", ("127.0.0.1", udp_port))
            .expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.udp_no_ports("lab", &id, "web") < before + 3 {
        assert!(Instant::now() < deadline, "datagrams never reached web");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ok(&w.berth(&["stop-task", "--cluster", "lab", "--task", &id]));
    w.wait_task_in("lab", &id, "STOPPED");
    w.assert_clean();
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read"),
        forward_before,
        "ip_forward changed"
    );
}

/// The network namespace file of task `id` (its supervisor's bind mount).
fn task_netns(w: &World, id: &str) -> std::path::PathBuf {
    let suffix = format!("/tasks/{id}/ns/network");
    w.mounts()
        .into_iter()
        .find(|m| m.ends_with(&suffix))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no network namespace of {id} in {:?}", w.mounts()))
}

/// What a task with CAP_NET_RAW can send: an IPv4/UDP datagram from
/// `src` to `dst`, framed by hand for the link-layer address `mac` and
/// sent out of `eth0` of the namespace `netns` through a packet socket.
/// It runs on a thread of its own that joins the namespace.
fn send_raw_udp(
    netns: &std::path::Path,
    mac: [u8; 6],
    src: (std::net::Ipv4Addr, u16),
    dst: (std::net::Ipv4Addr, u16),
) {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).expect("open netns");
        // SAFETY: setns on this thread only, with a namespace file we hold.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let payload = b"from-the-task";
        let total = 20 + 8 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64; // TTL
        p[9] = 17; // UDP
        p[12..16].copy_from_slice(&src.0.octets());
        p[16..20].copy_from_slice(&dst.0.octets());
        let sum = (0..20)
            .step_by(2)
            .map(|i| u32::from(u16::from_be_bytes([p[i], p[i + 1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p[20..22].copy_from_slice(&src.1.to_be_bytes());
        p[22..24].copy_from_slice(&dst.1.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[28..].copy_from_slice(payload);
        let ifname = std::ffi::CString::new("eth0").expect("name");
        // SAFETY: plain libc calls with valid pointers and lengths; the
        // socket is closed below.
        unsafe {
            let index = libc::if_nametoindex(ifname.as_ptr());
            assert!(index > 0, "no eth0 in the task's namespace");
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM,
                i32::from((libc::ETH_P_IP as u16).to_be()),
            );
            assert!(
                fd >= 0,
                "packet socket: {}",
                std::io::Error::last_os_error()
            );
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = (libc::ETH_P_IP as u16).to_be();
            addr.sll_ifindex = index as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&mac);
            let sent = libc::sendto(
                fd,
                p.as_ptr().cast(),
                p.len(),
                0,
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(sent, p.len() as isize, "send: {err}");
        }
    })
    .join()
    .expect("raw sender");
}

fn mac_of(link: &str) -> [u8; 6] {
    let text = std::fs::read_to_string(format!("/sys/class/net/{link}/address")).expect("mac");
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect();
    bytes.try_into().expect("6 bytes")
}

/// CVE-2020-8558: berth lets 127.0.0.1 sources route on its bridges (for
/// port mappings on the host's loopback), so without a guard a task could
/// reach services that listen only on the host's 127.0.0.1 by sending a
/// frame to the gateway's MAC with that destination. The guard drops
/// such packets unless conntrack says they were DNATed: a mapped port on
/// 127.0.0.1 still works.
#[test]
fn a_task_cannot_reach_host_loopback_but_a_mapped_port_on_loopback_works() {
    use std::net::{Ipv4Addr, UdpSocket};
    let w = World::new("net-loopback");
    w.busybox_image("busybox:latest", &[]);
    let port = free_port();
    w.register(&json!({
        "family": "web", "networkMode": "awsvpc",
        "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 16,
            "portMappings": [{ "containerPort": port }],
            "command": ["sh", "-c", format!("mkdir -p /www; echo hello-loop > /www/index.html; httpd -p {port} -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done")] }]
    }));
    let out = parse_json(&w.berth(&["run-task", "--task-definition", "web"]));
    let id = task_ids(&out).pop().expect("task");
    let t = w.wait_task(&id, "RUNNING");
    let ip: Ipv4Addr = address_of(&t).parse().expect("task address");
    let gateway: Ipv4Addr = format!("{}1", &w.subnet[..w.subnet.len() - 4])
        .parse()
        .expect("gateway");
    // The mapping on the host's loopback (DNAT) works.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-loop"));
    // The bridge takes no router advertisements.
    let accept_ra = format!("/proc/sys/net/ipv6/conf/{}/accept_ra", w.bridge);
    if let Ok(v) = std::fs::read_to_string(&accept_ra) {
        assert_eq!(v.trim(), "0", "{accept_ra}");
    }
    // A host service on 127.0.0.1 only, and one on the gateway's address
    // (which tasks may reach) to show that the sender's frames arrive.
    let loopback = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
    let reachable = UdpSocket::bind((gateway, 0)).expect("bind gateway");
    let loopback_port = loopback.local_addr().expect("addr").port();
    let reachable_port = reachable.local_addr().expect("addr").port();
    let netns = task_netns(&w, &id);
    let mac = mac_of(&w.bridge);
    // The forbidden one first: frames from one veth are delivered in
    // order, so once the second has arrived the first had its chance.
    send_raw_udp(
        &netns,
        mac,
        (ip, 40000),
        (Ipv4Addr::LOCALHOST, loopback_port),
    );
    send_raw_udp(&netns, mac, (ip, 40001), (gateway, reachable_port));
    reachable
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let (n, from) = reachable
        .recv_from(&mut buf)
        .expect("the frame to the gateway never arrived");
    assert_eq!(&buf[..n], b"from-the-task");
    assert_eq!(from.ip(), std::net::IpAddr::V4(ip));
    loopback.set_nonblocking(true).expect("nonblocking");
    match loopback.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a task reached the host's 127.0.0.1: {other:?}"),
    }
    // Still: the mapped port, from the host's loopback.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-loop"));
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

/// Links and nft tables a test makes outside its World's names, removed
/// when dropped, failed test or not.
struct Extra(Vec<String>);

impl Drop for Extra {
    fn drop(&mut self) {
        for bridge in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", bridge])
                .stderr(Stdio::null())
                .status();
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", &berth_tests::nft_table(bridge)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Bridges whose names differ only in `-` and `_` (one nft table between
/// them before) each get a table of their own, so port mappings from the
/// host's loopback work on both, and both go when their tasks stop.
#[test]
fn bridges_named_alike_get_tables_of_their_own() {
    let w = World::new("net-names");
    w.busybox_image("busybox:latest", &[]);
    let bridges = [format!("{}-n", w.bridge2), format!("{}_n", w.bridge2)];
    let _extra = Extra(bridges.to_vec());
    // Two halves of the world's second subnet.
    let base = &w.subnet2[..w.subnet2.len() - 4];
    let subnets = [format!("{base}0/25"), format!("{base}128/25")];
    let mut tasks = Vec::new();
    for (i, (bridge, subnet)) in bridges.iter().zip(&subnets).enumerate() {
        let cluster = format!("c{i}");
        assert_ok(&w.berth(&[
            "create-cluster",
            "--cluster-name",
            &cluster,
            "--bridge",
            bridge,
            "--subnet",
            subnet,
        ]));
        let port = free_port();
        let family = format!("web{i}");
        w.register(&json!({
            "family": family, "networkMode": "bridge",
            "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 16,
                "portMappings": [{ "containerPort": 80, "hostPort": port }],
                "command": ["sh", "-c", format!("mkdir -p /www; echo hello-{i} > /www/index.html; httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done")] }]
        }));
        let out = parse_json(&w.berth(&[
            "run-task",
            "--cluster",
            &cluster,
            "--task-definition",
            &family,
        ]));
        let id = task_ids(&out).pop().expect("task");
        w.wait_task_in(&cluster, &id, "RUNNING");
        tasks.push((cluster, id, port));
    }
    for (i, (_, _, port)) in tasks.iter().enumerate() {
        assert!(http_get(&format!("127.0.0.1:{port}")).contains(&format!("hello-{i}")));
    }
    let tables: Vec<String> = bridges.iter().map(|b| berth_tests::nft_table(b)).collect();
    assert_ne!(tables[0], tables[1]);
    for (i, table) in tables.iter().enumerate() {
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", table])
            .output()
            .expect("nft");
        assert_ok(&out);
        let listing = stdout(&out);
        assert!(
            listing.contains(&format!(
                "iifname \"{}\" oifname != \"{}\" drop",
                bridges[i], bridges[i]
            )),
            "{listing}"
        );
        assert!(listing.contains(&subnets[i]), "{listing}");
    }
    for (cluster, id, _) in &tasks {
        assert_ok(&w.berth(&["stop-task", "--cluster", cluster, "--task", id]));
        w.wait_task_in(cluster, id, "STOPPED");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (bridge, table) in bridges.iter().zip(&tables) {
        let gone = || {
            !std::path::Path::new("/sys/class/net").join(bridge).exists()
                && !std::process::Command::new("nft")
                    .args(["list", "table", "ip", table])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        };
        while !gone() {
            assert!(Instant::now() < deadline, "{bridge} or {table} left");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    w.assert_clean();
}

/// ECS's host network mode: the task's containers share the host's network
/// namespace, so they see its links and listen on its addresses; port
/// mappings are reported (hostPort = containerPort) but nothing is
/// translated, and the task gets no veth, address or bridge.
#[test]
fn a_host_mode_task_shares_the_hosts_network() {
    let w = World::new("net-host");
    w.busybox_image("busybox:latest", &[]);
    // A link of the test's own on the host, named as the world's second
    // bridge so that the world removes it whatever happens.
    let status = std::process::Command::new("ip")
        .args(["link", "add", &w.bridge2, "type", "bridge"])
        .status()
        .expect("ip link add");
    assert!(status.success(), "ip link add {} type bridge", w.bridge2);
    let port = free_port();
    w.register(&json!({
        "family": "hosted", "networkMode": "host",
        "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 16,
            "portMappings": [{ "containerPort": port }],
            "command": ["sh", "-c", format!("ls /sys/class/net; mkdir -p /www; echo hello-host > /www/index.html; httpd -p 127.0.0.1:{port} -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done")] }]
    }));
    let out = parse_json(&w.berth(&["run-task", "--task-definition", "hosted"]));
    let id = task_ids(&out).pop().expect("task");
    let t = w.wait_task(&id, "RUNNING");
    let web = &t["containers"][0];
    assert_eq!(web["networkBindings"][0]["hostPort"], port, "{t}");
    assert_eq!(web["networkBindings"][0]["containerPort"], port, "{t}");
    // The host reaches, on its own loopback, what the task listens on.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-host"));
    let links = stdout(&w.berth(&["logs", &id]));
    assert!(
        links.lines().any(|l| l == w.bridge2),
        "the task does not see the host's {}: {links}",
        w.bridge2
    );
    // No bridge and no translation for it.
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&w.bridge)
        .exists());
    let table = std::process::Command::new("nft")
        .args(["list", "table", "ip", &berth_tests::nft_table(&w.bridge)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("nft");
    assert!(!table.success(), "a NAT table for a host-mode task");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    let status = std::process::Command::new("ip")
        .args(["link", "del", &w.bridge2])
        .status()
        .expect("ip link del");
    assert!(status.success());
    w.assert_clean();
}

/// On a systemd-resolved host (/etc/resolv.conf lists only 127.0.0.53) a
/// task gets systemd-resolved's upstream servers, which it can reach; a
/// host-mode task, which can reach the stub, gets the host's file. The
/// host here is made so in a mount namespace of the test's own, where
/// `berth run-task` (and so the task's supervisor) runs.
#[test]
fn tasks_on_a_systemd_resolved_host_get_its_upstream_nameservers() {
    let w = World::new("net-resolv");
    w.busybox_image("busybox:latest", &[]);
    let stub = w.root.path().join("stub-resolv.conf");
    std::fs::write(&stub, "nameserver 127.0.0.53\noptions edns0 trust-ad\n").expect("stub");
    let upstream = w.root.path().join("upstream-resolv.conf");
    std::fs::write(&upstream, "nameserver 10.0.0.2\nsearch upstream.test\n").expect("upstream");
    let run_in_resolved_host = |family: &str| -> String {
        let berth = w.command();
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"]);
        cmd.arg(
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/resolve \
             && mount --bind \"$1\" /etc/resolv.conf \
             && cp \"$2\" /run/systemd/resolve/resolv.conf \
             && shift 2 && exec \"$@\"",
        );
        cmd.arg("sh")
            .arg(&stub)
            .arg(&upstream)
            .arg(berth.get_program());
        cmd.args(berth.get_args());
        cmd.args(["run-task", "--task-definition", family]);
        for (k, v) in berth.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let out = cmd.stdin(Stdio::null()).output().expect("unshare");
        assert_ok(&out);
        let id = task_ids(&parse_json(&out)).pop().expect("task");
        let t = w.wait_task(&id, "STOPPED");
        assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
        stdout(&w.berth(&["logs", &id]))
    };
    for (family, mode) in [("own", "awsvpc"), ("hosted", "host")] {
        w.register(&json!({
            "family": family, "networkMode": mode,
            "containerDefinitions": [{ "name": "c", "image": "busybox", "memory": 16,
                "command": ["cat", "/etc/resolv.conf"] }]
        }));
    }
    let own = run_in_resolved_host("own");
    assert_eq!(own, "nameserver 10.0.0.2\nsearch upstream.test\n");
    let hosted = run_in_resolved_host("hosted");
    assert_eq!(hosted, "nameserver 127.0.0.53\noptions edns0 trust-ad\n");
    w.assert_clean();
}

/// Once task `last`'s supervisor is gone (within `patience` seconds,
/// scaled), task `next` (`t`, its record) is the one port of the bridge.
fn assert_handed_over(
    w: &World,
    round: usize,
    last: &str,
    next: &str,
    t: &serde_json::Value,
    patience: u64,
) {
    let deadline = Instant::now() + berth_tests::patience(patience);
    while supervising(w, last) {
        assert!(
            Instant::now() < deadline,
            "round {round}: {last} supervised on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        ports_of(&w.bridge).len(),
        1,
        "round {round}: task {next} is not on bridge {}: {t}",
        w.bridge
    );
}

/// Whether a process of this world's runs with `needle` on its command
/// line (a task's supervisor names its task id).
fn supervising(w: &World, needle: &str) -> bool {
    w.monitors().into_iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
    })
}

/// The links plugged into `bridge` (none when it is gone).
fn ports_of(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The last task on a bridge stops as the next one starts on it, again and
/// again, stop and start racing (the stop sent first, the start at once
/// after): the stopping task's supervisor must not remove the bridge
/// between the new task's making it and plugging into it, nor after. Each
/// new task reaches RUNNING, and once the old one's supervisor is gone its
/// veth is still a port of the bridge.
#[test]
fn a_task_started_as_the_last_one_stops_keeps_its_bridge() {
    let w = World::new("net-handover");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "handover", "networkMode": "awsvpc",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let run = || {
        let out = parse_json(&w.berth(&["run-task", "--task-definition", "handover"]));
        task_ids(&out)
            .pop()
            .unwrap_or_else(|| panic!("no task: {out}"))
    };
    let mut last = run();
    w.wait_task(&last, "RUNNING");
    for round in 0..15 {
        let stop = w
            .command()
            .args(["stop-task", "--task", &last])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn stop-task");
        let next = run();
        assert!(stop.wait_with_output().expect("stop-task").status.success());
        let t = w.wait_task(&next, "RUNNING");
        w.wait_task(&last, "STOPPED");
        // The old supervisor's last act is the bridge's removal, if any.
        assert_handed_over(&w, round, &last, &next, &t, 10);
        last = next;
    }
    assert_ok(&w.berth(&["stop-task", "--task", &last]));
    w.wait_task(&last, "STOPPED");
    w.assert_clean();
}

/// A directory holding an `nft` that waits `secs` before running the real
/// one, under the world's root (removed with it): the bridge's removal
/// (its NAT table first) then takes that long, which opens the gap a task
/// placed meanwhile could fall into wide enough to hit every time.
fn slow_nft(w: &World, secs: u32) -> String {
    let dir = w.root.path().join("slow-nft");
    std::fs::create_dir_all(&dir).expect("shim dir");
    let real = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nft installed");
    let shim = dir.join("nft");
    std::fs::write(
        &shim,
        format!("#!/bin/sh\nsleep {secs}\nexec {real} \"$@\"\n"),
    )
    .expect("write shim");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod shim");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The last task's supervisor finds the bridge unused and removes it,
/// slowly (its `nft` waits 2 s); a task placed just after it found that
/// must still start on the bridge and stay on it: the removal waits for
/// the new task's plug-in, or the plug-in for the removal, never a mix.
#[test]
fn a_task_placed_while_the_bridge_is_being_removed_starts_on_it() {
    let w = World::new("net-removal");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "removal", "networkMode": "awsvpc",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let path = slow_nft(&w, 2);
    let berth = |args: &[&str]| {
        w.command()
            .env("PATH", &path)
            .args(args)
            .output()
            .expect("run berth")
    };
    let run = || {
        let out = parse_json(&berth(&["run-task", "--task-definition", "removal"]));
        task_ids(&out)
            .pop()
            .unwrap_or_else(|| panic!("no task: {out}"))
    };
    let mut last = run();
    w.wait_task(&last, "RUNNING");
    for round in 0..2 {
        assert_ok(&berth(&["stop-task", "--task", &last]));
        // STOPPED, its address released: its supervisor has asked whether
        // the bridge is unused, and is removing it.
        w.wait_task(&last, "STOPPED");
        let next = run();
        let t = w.wait_task(&next, "RUNNING");
        assert_handed_over(&w, round, &last, &next, &t, 20);
        last = next;
    }
    assert_ok(&berth(&["stop-task", "--task", &last]));
    w.wait_task(&last, "STOPPED");
    w.assert_clean();
}

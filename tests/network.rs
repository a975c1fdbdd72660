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

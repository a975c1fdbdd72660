//! The task metadata endpoint v4, from inside real busybox tasks: each
//! container fetches `$ECS_CONTAINER_METADATA_URI_V4` and its `/task`, and
//! finds its task, cluster and address there; nothing listens on the host
//! for it (awsvpc and bridge), a host-mode task is served on loopback.

use std::time::Instant;

use berth_tests::{assert_ok, parse_json, patience, stdout, task_ids, World};
use serde_json::{json, Value};

/// A container that prints its metadata, its task's, the task's with
/// tags, its stats and its task's stats, one JSON per line, then
/// `fetched`, and runs on until stopped.
const FETCH: &str = "wget -qO- $ECS_CONTAINER_METADATA_URI_V4; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task; echo; \
    wget -qO- ${ECS_CONTAINER_METADATA_URI}/taskWithTags; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/stats; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task/stats; echo; \
    echo uri=$ECS_CONTAINER_METADATA_URI_V4; echo fetched; \
    trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// [`FETCH`] beside a server of the container's own on 0.0.0.0:80 (as on
/// ECS, the endpoint leaves that port to the task), which it then asks
/// too: its log says `own-80`.
fn serve_and_fetch() -> String {
    format!(
        "mkdir -p /www; echo own-80 > /www/index.html; httpd -p 80 -h /www; \
         until wget -qO- http://127.0.0.1:80/; do sleep 0.1; done; {FETCH}"
    )
}

/// The host's TCP listeners (`ss -ltnH`'s local addresses).
fn host_listeners() -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-ltnH"])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

fn port_80(listeners: &[String]) -> Vec<String> {
    listeners
        .iter()
        .filter(|a| a.ends_with(":80"))
        .cloned()
        .collect()
}

/// Container `name`'s log once it printed `fetched`: its three answers
/// and the URI it was told.
fn fetched(w: &World, task: &str, name: &str) -> (Value, Value, Value, String) {
    let deadline = Instant::now() + patience(20);
    let log = loop {
        let log = stdout(&w.berth(&["logs", task, "--container", name]));
        if log.contains("fetched") {
            break log;
        }
        assert!(Instant::now() < deadline, "{name} never fetched: {log:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The JSON answers, in order (a server's `own-80` line may come first).
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("own-80")).collect();
    let parse = |i: usize| -> Value {
        serde_json::from_str(lines.get(i).copied().unwrap_or(""))
            .unwrap_or_else(|e| panic!("line {i} of {name}'s log is no JSON ({e}): {log}"))
    };
    let uri = lines
        .iter()
        .find_map(|l| l.strip_prefix("uri="))
        .unwrap_or_else(|| panic!("no uri in {log}"))
        .to_string();
    let (stats, task_stats) = (parse(3), parse(4));
    check_stats(name, &stats, &task_stats);
    (parse(0), parse(1), parse(2), uri)
}

/// The container's stats, in Docker's shape, read from its cgroup: some
/// memory in use (a shell and wget run there), and the same container
/// among the task's.
fn check_stats(name: &str, stats: &Value, task_stats: &Value) {
    let usage = stats["memory_stats"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "{name}: no memory in use: {stats}");
    assert!(
        stats["cpu_stats"]["cpu_usage"]["total_usage"].is_u64(),
        "{stats}"
    );
    assert_eq!(stats["name"], format!("/{name}"), "{stats}");
    let id = stats["id"].as_str().expect("id");
    assert!(
        task_stats[id]["memory_stats"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{task_stats}"
    );
}

/// Container `name` served and fetched its own port 80 beside the endpoint.
fn assert_own_80(w: &World, task: &str, name: &str) {
    let log = stdout(&w.berth(&["logs", task, "--container", name]));
    assert!(log.lines().any(|l| l == "own-80"), "{name}: {log}");
}

/// What every answer must say of task `t` (describe-tasks' view).
fn check_answers(t: &Value, name: &str, container: &Value, task: &Value, tagged: &Value) {
    let task_arn = t["taskArn"].as_str().expect("taskArn");
    let cluster = t["clusterArn"].as_str().expect("clusterArn");
    assert_eq!(task["TaskARN"], task_arn, "{task}");
    assert_eq!(task["Cluster"], cluster, "{task}");
    assert_eq!(task["Family"], "meta", "{task}");
    // A container may ask before the task's last one started: the task
    // is then still on its way to RUNNING.
    let starting = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"];
    assert!(starting.iter().any(|s| task["KnownStatus"] == *s), "{task}");
    assert_eq!(container["KnownStatus"], "RUNNING", "{container}");
    assert_eq!(container["Name"], name, "{container}");
    assert_eq!(container["Labels"]["com.amazonaws.ecs.task-arn"], task_arn);
    assert_eq!(container["Labels"]["com.amazonaws.ecs.cluster"], cluster);
    assert!(
        container["ImageID"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:")),
        "{container}"
    );
    let record = t["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .expect("container in describe-tasks");
    assert_eq!(container["ContainerARN"], record["containerArn"]);
    assert_eq!(tagged["TaskTags"]["team"], "meta", "{tagged}");
}

fn run(w: &World, extra: &[&str]) -> String {
    let mut args = vec![
        "run-task",
        "--task-definition",
        "meta",
        "--tags",
        "key=team,value=meta",
    ];
    args.extend_from_slice(extra);
    let out = parse_json(&w.berth(&args));
    task_ids(&out)
        .pop()
        .unwrap_or_else(|| panic!("no task: {out}"))
}

#[test]
fn an_awsvpc_task_reads_its_metadata_and_nothing_listens_on_the_host() {
    let w = World::new("meta-awsvpc");
    w.busybox_image("busybox:latest", &[]);
    let before = host_listeners();
    w.register(&json!({
        "family": "meta", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{ "name": "app", "image": "busybox",
            "command": ["sh", "-c", serve_and_fetch()] }]
    }));
    let id = run(&w, &["--launch-type", "FARGATE"]);
    let t = w.wait_task(&id, "RUNNING");
    let (container, task, tagged, uri) = fetched(&w, &id, "app");
    check_answers(&t, "app", &container, &task, &tagged);
    assert!(uri.starts_with("http://169.254.170.2/v4/"), "{uri}");
    assert_own_80(&w, &id, "app");
    // The task's own address, as describe-tasks shows it.
    let address = t["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["name"] == "privateIPv4Address"))
        .and_then(|x| x["value"].as_str())
        .expect("address")
        .to_string();
    let net = &container["Networks"][0];
    assert_eq!(net["NetworkMode"], "awsvpc", "{container}");
    assert_eq!(net["IPv4Addresses"], json!([address]), "{container}");
    assert_eq!(task["Limits"]["Memory"], 512, "{task}");
    // Served inside the task's namespace only: no new listener on the host.
    let during = host_listeners();
    assert_eq!(
        port_80(&during),
        port_80(&before),
        "a port 80 listener on the host"
    );
    assert!(
        !during.iter().any(|a| a.starts_with("169.254.170.2")),
        "{during:?}"
    );
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

#[test]
fn bridge_mode_containers_each_read_their_own_metadata() {
    let w = World::new("meta-bridge");
    w.busybox_image("busybox:latest", &[]);
    let before = host_listeners();
    w.register(&json!({
        "family": "meta", "networkMode": "bridge",
        "containerDefinitions": [
            { "name": "one", "image": "busybox", "memory": 16,
              "command": ["sh", "-c", serve_and_fetch()] },
            { "name": "two", "image": "busybox", "memory": 16,
              "command": ["sh", "-c", serve_and_fetch()] }
        ]
    }));
    let id = run(&w, &[]);
    let t = w.wait_task(&id, "RUNNING");
    for name in ["one", "two"] {
        let (container, task, tagged, _) = fetched(&w, &id, name);
        check_answers(&t, name, &container, &task, &tagged);
        assert_own_80(&w, &id, name);
        let record = t["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .expect("container");
        let address = &record["networkInterfaces"][0]["privateIpv4Address"];
        let net = &container["Networks"][0];
        assert_eq!(net["NetworkMode"], "bridge", "{container}");
        assert_eq!(net["IPv4Addresses"], json!([address]), "{container}");
        assert_eq!(task["Containers"].as_array().map(Vec::len), Some(2));
    }
    let during = host_listeners();
    assert_eq!(
        port_80(&during),
        port_80(&before),
        "a port 80 listener on the host"
    );
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

#[test]
fn a_host_mode_task_is_served_on_loopback() {
    let w = World::new("meta-host");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "meta", "networkMode": "host",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", FETCH] }]
    }));
    let id = run(&w, &[]);
    let t = w.wait_task(&id, "RUNNING");
    let (container, task, tagged, uri) = fetched(&w, &id, "app");
    check_answers(&t, "app", &container, &task, &tagged);
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert_eq!(container["Networks"][0]["NetworkMode"], "host");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

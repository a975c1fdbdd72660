//! berth on etcd, end to end: the real binary with `--store etcd://...`
//! against a real etcd (Debian's, started per test), real busybox tasks;
//! etcd killed and restarted under it.

use std::process::Output;
use std::time::{Duration, Instant};

use berth_orchestrator::store::test_certs::TestCerts;
use berth_orchestrator::store::test_server::{EtcdCluster, EtcdServer};
use berth_tests::{assert_ok, parse_json, patience, stderr, task_id, Agent, World};
use serde_json::{json, Value};

/// The store URL of a test's etcd, under a prefix of its own.
fn url(endpoints: &[&str], name: &str) -> String {
    format!("etcd://{}/berth-test/{name}", endpoints.join(","))
}

/// A world on `etcd` (its busybox image loaded) with its host's agent
/// joined: on a shared store only agents register hosts. Declare the
/// server before the world: the world, dropped first, still reaches it.
fn world_on(etcd: &EtcdServer, name: &str) -> (World, String, Agent) {
    let store = url(&[&etcd.endpoint], name);
    let w = World::new(name).with_store(&store);
    w.busybox_image("busybox:latest", &[]);
    let agent = join_agent(&w);
    (w, store, agent)
}

/// The world's host agent, once it registered the host.
fn join_agent(w: &World) -> Agent {
    let agent = w.agent(&["--interval", "1"], &[]);
    let deadline = Instant::now() + patience(30);
    while listed_instances(w) == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent never registered its host"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

/// How many container instances the default cluster lists.
fn listed_instances(w: &World) -> usize {
    let out = w.berth(&["list-container-instances"]);
    assert_ok(&out);
    parse_json(&out)["containerInstanceArns"]
        .as_array()
        .map_or(0, Vec::len)
}

fn loop_forever(tag: &str) -> Value {
    json!([
        "sh",
        "-c",
        format!("echo {tag}; trap 'exit 0' TERM; while true; do sleep 0.1; done")
    ])
}

/// Family `name`: one looping container, no network of its own.
fn register_looping(w: &World, name: &str) {
    w.register(
        &json!({ "family": name, "networkMode": "none", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": loop_forever(name) }] }),
    );
}

fn kill9(pid: i64) {
    assert_ok(
        &std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .output()
            .expect("kill"),
    );
}

/// The task ARNs of a list-tasks answer.
fn listed(out: &Output) -> Vec<String> {
    assert_ok(out);
    let mut arns: Vec<String> = parse_json(out)["taskArns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    arns.sort();
    arns
}

/// The live (not STOPPED) tasks of `group`.
fn live_tasks(w: &World, group: &str) -> Vec<Value> {
    listed(&w.berth(&["list-tasks"]))
        .iter()
        .map(|id| w.describe_task(id))
        .filter(|t| t["group"] == group && t["lastStatus"] != "STOPPED")
        .collect()
}

/// The service's live tasks once exactly `n` are, all RUNNING.
#[track_caller]
fn wait_running(w: &World, service: &str, n: usize) -> Vec<Value> {
    let group = format!("service:{service}");
    let deadline = Instant::now() + patience(60);
    loop {
        let tasks = live_tasks(w, &group);
        if tasks.len() == n && tasks.iter().all(|t| t["lastStatus"] == "RUNNING") {
            return tasks;
        }
        assert!(
            Instant::now() < deadline,
            "service {service}: wanted {n} RUNNING, have {tasks:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A verb that must fail because the store is down: exit 1, an error
/// naming the store's URL, no panic.
#[track_caller]
fn fails_naming(out: &Output, store: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(store), "the error names {store}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn tasks_and_services_live_in_etcd_and_survive_its_restart() {
    let mut etcd = EtcdServer::start();
    let (w, store, _agent) = world_on(&etcd, "etcd-e2e");

    // One task: RUNNING, then stopped.
    register_looping(&w, "one");
    let out = w.berth(&["run-task", "--task-definition", "one"]);
    assert_ok(&out);
    let one = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&one, "RUNNING");
    assert_ok(&w.berth(&["stop-task", "--task", &one]));
    w.wait_task(&one, "STOPPED");

    // A service of 2; one task's container killed: replaced.
    register_looping(&w, "web");
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "2",
    ]));
    let tasks = wait_running(&w, "web", 2);
    let victim = tasks[0]["taskArn"].as_str().expect("arn").to_string();
    let container = tasks[0]["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    kill9(w.state(&container)["pid"].as_i64().expect("pid"));
    w.wait_task(&victim, "STOPPED");
    let after = wait_running(&w, "web", 2);
    assert!(after.iter().all(|t| t["taskArn"] != victim.as_str()));
    assert_ok(&w.berth(&["delete-service", "--service", "web", "--force"]));
    wait_running(&w, "web", 0);
    // Nothing of it went to this host's SQLite store.
    assert!(!w.root.path().join("state.db").exists());

    let stopped = |w: &World| listed(&w.berth(&["list-tasks", "--desired-status", "STOPPED"]));
    let before = stopped(&w);
    assert_eq!(
        before.len(),
        4,
        "one task, two of the service, one replacement"
    );
    // Their supervisors done (desired STOPPED is listed from the request on).
    for id in &before {
        w.wait_task(id, "STOPPED");
    }

    // A task runs through the outage.
    let out = w.berth(&["run-task", "--task-definition", "one"]);
    assert_ok(&out);
    let keep = task_id(&parse_json(&out)["tasks"][0]);
    let kept = w.wait_task(&keep, "RUNNING");
    let container = kept["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();

    // etcd down: every verb fails, naming the store; nothing is written.
    etcd.kill();
    for verb in [
        vec!["list-tasks"],
        vec!["describe-services", "--services", "web"],
        vec!["run-task", "--task-definition", "one"],
        vec!["register-task-definition", "--family", "x"],
    ] {
        fails_naming(&w.berth(&verb), &store);
    }
    // Long enough for the task's supervisor to find the store gone many
    // times over (it looks every 100 ms): it must not end the task.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        w.state(&container)["exit"].is_null(),
        "the task's container ended"
    );

    // Back on the same data dir: everything whole, nothing half-made.
    etcd.restart();
    assert_eq!(stopped(&w), before);
    for id in &before {
        let t = w.describe_task(id);
        assert_eq!(t["lastStatus"], "STOPPED", "{t}");
        assert!(t["stoppedAt"].is_string(), "{t}");
    }
    let services = parse_json(&w.berth(&["describe-services", "--services", "web"]));
    assert_eq!(services["services"][0]["status"], "INACTIVE", "{services}");
    let families = parse_json(&w.berth(&["list-task-definition-families"]));
    assert_eq!(families["families"], json!(["one", "web"]), "{families}");
    // The task ran through it, its supervisor too: it stops as asked.
    assert_eq!(w.describe_task(&keep)["lastStatus"], "RUNNING");
    assert!(w.state(&container)["exit"].is_null());
    assert_ok(&w.berth(&["stop-task", "--task", &keep]));
    let t = w.wait_task(&keep, "STOPPED");
    assert_eq!(t["stopCode"], "UserInitiated", "{t}");
    assert!(live_tasks(&w, "family:one").is_empty());
    w.assert_clean();
}

/// An etcd nobody listens on: each verb fails at once with an error
/// naming the store; a URL berth cannot read is refused naming --store.
#[test]
fn a_dead_etcd_fails_every_verb_naming_the_store() {
    let port = berth_tests::free_port();
    let store = format!("etcd://127.0.0.1:{port}/berth");
    let w = World::new("etcd-dead").with_store(&store);
    for verb in [
        vec!["list-clusters"],
        vec!["create-cluster", "--cluster-name", "c"],
        vec!["list-tasks"],
        vec!["run-task", "--task-definition", "x"],
        vec!["describe-container-instances", "--container-instances", "x"],
        vec!["reconcile"],
        vec!["system", "gc"],
    ] {
        fails_naming(&w.berth(&verb), &store);
    }
    let bad = World::new("etcd-bad").with_store("etcd://nowhere");
    let out = bad.berth(&["list-clusters"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--store"), "{}", stderr(&out));
    assert!(!w.root.path().join("state.db").exists());
}

/// Three etcd members, all in the URL: a follower killed, then the
/// leader, while a service runs; every verb goes on working, the service
/// keeps its count and replaces a killed task, nothing is lost.
#[test]
fn a_member_lost_mid_run_changes_nothing() {
    let mut etcd = EtcdCluster::start();
    let endpoints: Vec<&str> = etcd.endpoints.iter().map(String::as_str).collect();
    let w = World::new("etcd-three").with_store(&url(&endpoints, "three"));
    w.busybox_image("busybox:latest", &[]);
    let _agent = join_agent(&w);
    register_looping(&w, "one");
    register_looping(&w, "web");
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "2",
    ]));
    wait_running(&w, "web", 2);

    let leader = etcd.wait_for_leader();
    let follower = (leader + 1) % 3;
    for down in [follower, leader] {
        etcd.kill(down);
        // Reads at once; writes once the others lead (a write sent just
        // as the leader died may die with it, its outcome unknown).
        assert_eq!(live_tasks(&w, "service:web").len(), 2);
        etcd.wait_for_leader();
        let out = w.berth(&["run-task", "--task-definition", "one"]);
        assert_ok(&out);
        let one = task_id(&parse_json(&out)["tasks"][0]);
        w.wait_task(&one, "RUNNING");
        assert_ok(&w.berth(&["stop-task", "--task", &one]));
        w.wait_task(&one, "STOPPED");
        // A task of the service killed: replaced.
        let tasks = wait_running(&w, "web", 2);
        let victim = tasks[0]["taskArn"].as_str().expect("arn").to_string();
        let container = tasks[0]["containers"][0]["runtimeId"]
            .as_str()
            .expect("runtimeId")
            .to_string();
        kill9(w.state(&container)["pid"].as_i64().expect("pid"));
        w.wait_task(&victim, "STOPPED");
        wait_running(&w, "web", 2);
        etcd.restart(down);
    }
    assert_ok(&w.berth(&["delete-service", "--service", "web", "--force"]));
    wait_running(&w, "web", 0);
    let stopped = listed(&w.berth(&["list-tasks", "--desired-status", "STOPPED"]));
    assert_eq!(
        stopped.len(),
        2 + 2 + 2,
        "two runs, two killed, two deleted"
    );
    for id in &stopped {
        w.wait_task(id, "STOPPED");
    }
    w.assert_clean();
}

/// etcds:// with a client certificate, given as flags: a task runs (its
/// supervisor was handed the TLS files too) and stops; the wrong CA fails
/// naming the store.
#[test]
fn a_task_on_etcd_over_tls() {
    let certs = TestCerts::make();
    let etcd = EtcdServer::start_tls(certs.server());
    let store = format!("etcds://{}/tls", etcd.endpoint);
    let w = World::new("etcd-tls").with_store(&store).with_store_tls(
        &certs.ca,
        &certs.client_cert,
        &certs.client_key,
    );
    w.busybox_image("busybox:latest", &[]);
    let _agent = join_agent(&w);
    register_looping(&w, "one");
    let out = w.berth(&["run-task", "--task-definition", "one"]);
    assert_ok(&out);
    let one = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&one, "RUNNING");
    assert_ok(&w.berth(&["stop-task", "--task", &one]));
    w.wait_task(&one, "STOPPED");
    let wrong = World::new("etcd-tls-wrong")
        .with_store(&store)
        .with_store_tls(&certs.other_ca, &certs.client_cert, &certs.client_key);
    fails_naming(&wrong.berth(&["list-tasks"]), &store);
    assert!(!w.root.path().join("state.db").exists());
    w.assert_clean();
}

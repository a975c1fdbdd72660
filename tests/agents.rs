//! Hosts and agents, end to end: several "hosts" on this machine (each a
//! world: its own --root, cgroup parent, bridge, subnet and memory offer)
//! each running its own `berth agent` on one test etcd, real busybox tasks
//! (networkMode none; networks across hosts are tests/cluster.rs's).

use std::process::Output;
use std::time::{Duration, Instant};

use berth_orchestrator::store::test_server::EtcdServer;
use berth_tests::{assert_ok, parse_json, patience, stderr, task_id, Agent, World};
use serde_json::{json, Value};

/// Each host offers 64 MiB: two tasks of 32.
const HOST_MEMORY: (&str, &str) = ("BERTH_HOST_MEMORY_MIB", "64");

/// A host of the test cluster: its world and its agent.
struct Host {
    world: World,
    agent: Option<Agent>,
    zone: String,
}

impl Host {
    fn new(etcd: &EtcdServer, test: &str, name: &str) -> Self {
        let store = format!("etcd://{}/berth-test/{test}", etcd.endpoint);
        let world = World::new(&format!("{test}-{name}")).with_store(&store);
        world.busybox_image("busybox:latest", &[]);
        Self {
            world,
            agent: None,
            zone: format!("az-{name}"),
        }
    }

    /// Start (or restart) its agent: the default 3 s lease (2 s lapses
    /// under a loaded machine's etcd), a pass a second.
    fn start_agent(&mut self) {
        let attributes = format!("ecs.availability-zone={}", self.zone);
        self.agent = Some(self.world.agent(
            &[
                "--cluster",
                "default",
                "--lease-ttl",
                "3",
                "--interval",
                "1",
                "--attributes",
                &attributes,
            ],
            &[HOST_MEMORY],
        ));
    }

    /// Everything of the host killed at once: agent, supervisors,
    /// monitors, containers.
    fn kill_everything(&mut self) {
        if let Some(agent) = self.agent.as_mut() {
            agent.kill();
        }
        for pid in self.world.task_processes() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }

    fn id(&self) -> String {
        wait_for("the host id", || {
            self.world
                .root
                .path()
                .join("host-id")
                .exists()
                .then(|| self.world.host_id())
        })
    }
}

impl Drop for Host {
    /// A failed test shows what each host's agent logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.world.root.path().join("agent.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- agent of {} (last lines, newest first):", self.zone);
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Poll `f` until it has an answer, within a patience-scaled minute.
#[track_caller]
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn instance(w: &World, id: &str) -> Value {
    let out = w.berth(&["describe-container-instances", "--container-instances", id]);
    assert_ok(&out);
    parse_json(&out)["containerInstances"][0].clone()
}

#[track_caller]
fn wait_connected(w: &World, id: &str, connected: bool) -> Value {
    wait_for(&format!("instance {id} agentConnected={connected}"), || {
        let ci = instance(w, id);
        (ci["agentConnected"] == connected).then_some(ci)
    })
}

fn listed(out: &Output) -> Vec<String> {
    assert_ok(out);
    parse_json(out)["taskArns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The service's tasks once exactly `n` are live, all RUNNING.
#[track_caller]
fn wait_running(w: &World, service: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} RUNNING tasks of {service}"), || {
        let tasks: Vec<Value> = listed(&w.berth(&["list-tasks", "--service-name", service]))
            .iter()
            .map(|id| w.describe_task(id))
            .filter(|t| t["lastStatus"] != "STOPPED")
            .collect();
        (tasks.len() == n && tasks.iter().all(|t| t["lastStatus"] == "RUNNING")).then_some(tasks)
    })
}

/// Family `name`: one looping container of 32 MiB, no network.
fn register(w: &World, name: &str) {
    w.register(
        &json!({ "family": name, "networkMode": "none", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 32,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }] }),
    );
}

/// start-task on instance `id`; the task's id.
fn start_on(w: &World, family: &str, id: &str) -> String {
    let out = w.berth(&[
        "start-task",
        "--task-definition",
        family,
        "--container-instances",
        id,
    ]);
    assert_ok(&out);
    let v = parse_json(&out);
    assert_eq!(v["failures"], json!([]), "{v}");
    task_id(&v["tasks"][0])
}

/// Whether `w` runs a supervisor of task `id`.
fn supervises(w: &World, id: &str) -> bool {
    w.monitors().into_iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(id))
    })
}

#[test]
fn tasks_run_where_placed_and_a_lost_host_is_replaced_then_fenced() {
    let etcd = EtcdServer::start();
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("{:>6.1}s {what}", t0.elapsed().as_secs_f64());
    let test = format!("agents-{}", std::process::id());
    let mut a = Host::new(&etcd, &test, "a");
    let mut b = Host::new(&etcd, &test, "b");
    let mut c = Host::new(&etcd, &test, "c");
    a.start_agent();
    b.start_agent();
    let (ida, idb) = (a.id(), b.id());
    let ci = wait_connected(&a.world, &idb, true);
    assert_eq!(ci["status"], "ACTIVE");
    assert!(
        ci["attributes"]
            .as_array()
            .is_some_and(|l| l.contains(&json!({"name": "ecs.availability-zone", "value": "az-b"}))),
        "{ci}"
    );
    wait_connected(&a.world, &ida, true);
    register(&a.world, "solo");
    register(&a.world, "web");
    phase("A and B joined");

    // A task placed on B from A runs under B's agent, not on A.
    let solo = start_on(&a.world, "solo", &idb);
    let t = a.world.wait_task(&solo, "RUNNING");
    assert!(t["containerInstanceArn"]
        .as_str()
        .is_some_and(|arn| arn.ends_with(&idb)));
    assert!(supervises(&b.world, &solo));
    assert!(!supervises(&a.world, &solo));
    phase("a task placed on B from A runs under B's agent");
    // Its logs and a command in it are B's: A says so, B does them.
    for verb in [
        vec!["logs", solo.as_str()],
        vec![
            "execute-command",
            "--task",
            &solo,
            "--container",
            "a",
            "--command",
            "true",
        ],
    ] {
        let out = a.world.berth(&verb);
        assert_eq!(out.status.code(), Some(1), "{verb:?}");
        assert!(
            stderr(&out).contains(&idb),
            "{verb:?} names B: {}",
            stderr(&out)
        );
        assert_ok(&b.world.berth(&verb));
    }

    // A service of 3 fills A (two) and B (one, beside the solo task);
    // then C joins with room for two.
    assert_ok(&a.world.berth(&[
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
    ]));
    let tasks = wait_running(&a.world, "web", 3);
    let on = |tasks: &[Value], id: &str| {
        tasks
            .iter()
            .filter(|t| {
                t["containerInstanceArn"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(id))
            })
            .count()
    };
    assert_eq!((on(&tasks, &ida), on(&tasks, &idb)), (2, 1), "{tasks:?}");
    phase("the service runs on A and B");
    c.start_agent();
    let idc = c.id();
    wait_connected(&a.world, &idc, true);
    phase("C joined");

    // B is lost: agent, supervisors, monitors and containers killed.
    b.kill_everything();
    phase("B killed");
    wait_connected(&a.world, &idb, false);
    phase("B disconnected");
    let t = a.world.wait_task(&solo, "STOPPED");
    let reason = t["stoppedReason"].as_str().unwrap_or_default();
    assert!(reason.contains(&idb), "the reason names the instance: {t}");
    // The service is back at 3, on A and C.
    let tasks = wait_for("web back at 3 on A and C", || {
        let tasks = wait_running(&a.world, "web", 3);
        (on(&tasks, &idc) == 1).then_some(tasks)
    });
    assert_eq!(on(&tasks, &idb), 0, "{tasks:?}");
    assert_eq!(on(&tasks, &ida), 2, "{tasks:?}");
    phase("the service is back at 3 on A and C");

    // B's agent returns: what the cluster stopped is gone from B first
    // (fenced), then B takes new tasks.
    b.start_agent();
    wait_connected(&a.world, &idb, true);
    phase("B back");
    assert_eq!(b.world.container_ids(), Vec::<String>::new(), "fenced");
    let again = start_on(&c.world, "solo", &idb);
    a.world.wait_task(&again, "RUNNING");
    assert!(supervises(&b.world, &again));
    phase("B runs a new task");

    // Clean up through the cluster: every host's tasks stop.
    assert_ok(
        &a.world
            .berth(&["delete-service", "--service", "web", "--force"]),
    );
    assert_ok(&a.world.berth(&["stop-task", "--task", &again]));
    a.world.wait_task(&again, "STOPPED");
    wait_running(&a.world, "web", 0);
    for host in [&a, &b, &c] {
        wait_for("the host's supervisors to finish", || {
            host.world.monitors().is_empty().then_some(())
        });
        host.world.assert_clean();
    }
}

#[test]
fn a_daemon_service_follows_hosts_as_they_join_and_leave() {
    let etcd = EtcdServer::start();
    let test = format!("daemon-{}", std::process::id());
    let mut a = Host::new(&etcd, &test, "a");
    let mut b = Host::new(&etcd, &test, "b");
    let mut c = Host::new(&etcd, &test, "c");
    a.start_agent();
    b.start_agent();
    let (ida, idb) = (a.id(), b.id());
    wait_connected(&a.world, &ida, true);
    wait_connected(&a.world, &idb, true);
    register(&a.world, "mon");
    assert_ok(&a.world.berth(&[
        "create-service",
        "--service-name",
        "mon",
        "--task-definition",
        "mon",
        "--scheduling-strategy",
        "DAEMON",
    ]));
    let per_host = |tasks: &[Value]| {
        let mut hosts: Vec<String> = tasks
            .iter()
            .filter_map(|t| t["containerInstanceArn"].as_str())
            .map(|arn| arn.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        hosts.sort();
        hosts
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let tasks = wait_running(&a.world, "mon", 2);
    assert_eq!(per_host(&tasks), sorted(vec![ida.clone(), idb.clone()]));
    // C joins: it gets one.
    c.start_agent();
    let idc = c.id();
    let tasks = wait_running(&a.world, "mon", 3);
    assert_eq!(
        per_host(&tasks),
        sorted(vec![ida.clone(), idb.clone(), idc.clone()])
    );
    // C is lost: its task stops, and none replaces it elsewhere.
    c.kill_everything();
    wait_connected(&a.world, &idc, false);
    let tasks = wait_running(&a.world, "mon", 2);
    assert_eq!(per_host(&tasks), sorted(vec![ida.clone(), idb.clone()]));
    let out = a.world.berth(&["describe-services", "--services", "mon"]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["services"][0]["desiredCount"], 2);
    // C back: fenced, and it runs the daemon again.
    c.start_agent();
    let tasks = wait_running(&a.world, "mon", 3);
    assert_eq!(per_host(&tasks), sorted(vec![ida, idb, idc]));
    assert_ok(
        &a.world
            .berth(&["delete-service", "--service", "mon", "--force"]),
    );
    wait_running(&a.world, "mon", 0);
    for host in [&a, &b, &c] {
        wait_for("the host's supervisors to finish", || {
            host.world.monitors().is_empty().then_some(())
        });
        host.world.assert_clean();
    }
}

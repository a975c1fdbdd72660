//! Multi-host semantics over one real etcd (the test server): several
//! `Ecs` values, each its own client and its own `Host`, play the hosts.
//! Store-level only: no supervisor is spawned and nothing touches the
//! kernel (the e2e suite, tests/agents.rs, runs real agents and tasks).

use std::time::Duration;

use serde_json::{json, Value};

use crate::ecs::services::CreateService;
use crate::ecs::{Ecs, RunTask, DEFAULT_CLUSTER};
use crate::host::Host;
use crate::model::{
    Attribute, DeploymentConfiguration, DesiredStatus, InstanceStatus, Partition,
    SchedulingStrategy, StopCode, Task, TaskDefinition, TaskStatus,
};
use crate::scheduler::hosts::lost_reason;
use crate::store::test_server::EtcdServer;
use crate::store::EtcdStore;

/// Long enough that no lease lapses during a test: a host is lost only
/// when the test releases its lease.
const TTL: Duration = Duration::from_secs(300);

/// Memory each test host offers (MiB); tasks take 200.
const HOST_MEMORY: i64 = 300;

struct Cluster {
    server: EtcdServer,
}

impl Cluster {
    fn new() -> Self {
        Self {
            server: EtcdServer::start(),
        }
    }

    /// Host `name` (one hex digit, repeated into its id), not registered.
    fn host(&self, name: char, memory: i64) -> Ecs {
        let store = EtcdStore::connect(std::slice::from_ref(&self.server.endpoint), "berth/")
            .expect("connect to etcd");
        let host = Host {
            id: name.to_string().repeat(32),
            hostname: format!("host-{name}"),
            cpu_units: 4096,
            memory_mib: memory,
            arch: "x86_64".into(),
        };
        Ecs::with_store(Box::new(store), Partition::default(), host).expect("open")
    }

    /// Host `name` with its agent joined: lease taken, registered.
    fn agent(&self, name: char, zone: &str) -> Ecs {
        self.agent_with(name, zone, HOST_MEMORY)
    }

    /// The same, offering `memory` MiB.
    fn agent_with(&self, name: char, zone: &str, memory: i64) -> Ecs {
        let ecs = self.host(name, memory);
        assert!(ecs.renew_agent_lease(DEFAULT_CLUSTER, TTL).expect("lease"));
        let az = Attribute {
            name: "ecs.availability-zone".into(),
            value: Some(zone.into()),
        };
        ecs.register_agent(DEFAULT_CLUSTER, &[az])
            .expect("register");
        ecs
    }
}

fn register(ecs: &Ecs, family: &str) {
    let td: TaskDefinition = serde_json::from_value(json!({
        "family": family,
        "networkMode": "host",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 200 }],
    }))
    .expect("td");
    ecs.register_task_definition(td).expect("register");
}

fn run(ecs: &Ecs, family: &str, count: u32) -> (Vec<Task>, Vec<String>) {
    let req = RunTask {
        task_definition: family.into(),
        count,
        ..Default::default()
    };
    let (out, tasks) = ecs.run_task(&req).expect("run-task");
    let reasons = out["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    (tasks, reasons)
}

fn describe(ecs: &Ecs, host: &Ecs) -> Value {
    let out = ecs
        .describe_container_instances(None, &[host.host_id().to_string()])
        .expect("describe");
    out["containerInstances"][0].clone()
}

/// What a supervisor records once the task runs.
fn mark_running(ecs: &Ecs, tasks: &[Task]) {
    for t in tasks {
        ecs.update_task(DEFAULT_CLUSTER, t.id(), |t| {
            t.last_status = TaskStatus::Running;
            t.started_at = Some("2026-01-01T00:00:00Z".into());
        })
        .expect("running");
    }
}

fn live_tasks(ecs: &Ecs) -> Vec<Task> {
    let mut tasks = ecs.all_tasks(DEFAULT_CLUSTER).expect("tasks");
    tasks.retain(|t| !t.is_stopped() && t.desired_status == DesiredStatus::Running);
    tasks
}

fn hosts_of(tasks: &[Task]) -> Vec<String> {
    let mut hosts: Vec<String> = tasks
        .iter()
        .map(|t| t.host_id().unwrap_or_default()[..1].to_string())
        .collect();
    hosts.sort();
    hosts
}

fn service(ecs: &Ecs, name: &str, count: u32, daemon: bool) {
    ecs.create_service(&CreateService {
        service_name: name.into(),
        task_definition: name.into(),
        desired_count: count,
        deployment_configuration: Some(DeploymentConfiguration {
            maximum_percent: 200,
            minimum_healthy_percent: if daemon { 0 } else { 100 },
            deployment_circuit_breaker: None,
        }),
        scheduling_strategy: daemon.then_some(SchedulingStrategy::Daemon),
        ..Default::default()
    })
    .expect("create-service");
}

/// One reconcile pass, as an agent runs it.
fn pass(ecs: &Ecs) -> crate::ecs::services::Pass {
    ecs.reconcile(DEFAULT_CLUSTER, ecs.host_id())
        .expect("reconcile")
        .expect("the lease")
}

#[test]
fn agents_register_their_hosts_and_connected_follows_the_lease() {
    let c = Cluster::new();
    let a = c.agent('a', "az-1");
    let b = c.agent('b', "az-2");
    // A host without an agent registers nothing, whatever it runs.
    let x = c.host('c', HOST_MEMORY);
    register(&x, "web");
    run(&x, "web", 1);
    let listed = x.list_container_instances(None).expect("list");
    assert_eq!(
        listed["containerInstanceArns"].as_array().map(Vec::len),
        Some(2)
    );
    let seen = describe(&x, &b);
    assert_eq!(seen["agentConnected"], true);
    assert_eq!(seen["status"], "ACTIVE");
    let attrs = seen["attributes"].as_array().expect("attributes");
    assert!(attrs.contains(&json!({"name": "ecs.availability-zone", "value": "az-2"})));
    assert!(attrs.contains(&json!({"name": "ecs.os-type", "value": "linux"})));
    // B's agent gone: its lease lives no more.
    b.release_agent_lease(DEFAULT_CLUSTER).expect("release");
    assert_eq!(describe(&a, &b)["agentConnected"], false);
    assert_eq!(describe(&a, &a)["agentConnected"], true);
    // Reserved names are refused, naming the flag.
    let e = crate::scheduler::hosts::parse_attributes("ecs.os-type=x").expect_err("reserved");
    assert!(e.message.starts_with("--attributes"), "{e:?}");
}

#[test]
fn tasks_are_placed_across_connected_hosts_and_never_over_commit_one() {
    let c = Cluster::new();
    let a = c.agent('a', "az-1");
    let b = c.agent('b', "az-2");
    register(&a, "web");
    // Two hosts run run-task at once; each host fits one task.
    let placed: Vec<Task> = std::thread::scope(|s| {
        let runs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|ecs| s.spawn(move || run(ecs, "web", 3).0))
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("thread"))
            .collect()
    });
    assert_eq!(hosts_of(&placed), ["a", "b"]);
    for host in [&a, &b] {
        let ci = describe(&a, host);
        assert_eq!(
            ci["remainingResources"][1]["integerValue"],
            HOST_MEMORY - 200
        );
    }
    // Each host runs its own: only its tasks are local to it, and what
    // only their host can do elsewhere says where they run.
    let on_b: Vec<&Task> = placed.iter().filter(|t| b.is_local(t)).collect();
    assert_eq!(on_b.len(), 1);
    assert!(!a.is_local(on_b[0]));
    b.ensure_local(DEFAULT_CLUSTER, on_b[0]).expect("b's own");
    let e = a.ensure_local(DEFAULT_CLUSTER, on_b[0]).expect_err("b's");
    assert!(e.message.contains(b.host_id()), "{e:?}");
    assert!(e.message.contains("host-b"), "{e:?}");
    // A disconnected host takes nothing, even when it is the only one with room.
    a.stop_task(None, on_b[0].id(), None).expect("stop");
    a.update_task(DEFAULT_CLUSTER, on_b[0].id(), |t| {
        t.last_status = TaskStatus::Stopped
    })
    .expect("stopped");
    b.release_agent_lease(DEFAULT_CLUSTER).expect("release");
    let (tasks, reasons) = run(&b, "web", 1);
    assert!(tasks.is_empty());
    assert_eq!(reasons, ["RESOURCE:MEMORY"]);
}

#[test]
fn a_lost_hosts_tasks_stop_naming_it_and_its_service_comes_back_elsewhere() {
    let c = Cluster::new();
    let a = c.agent('a', "az-1");
    let b = c.agent('b', "az-2");
    register(&a, "web");
    register(&a, "solo");
    service(&a, "web", 2, false);
    let placed = pass(&a).placed;
    assert_eq!(hosts_of(&placed), ["a", "b"]);
    mark_running(&a, &placed);
    let third = c.agent('c', "az-3");
    let on_b = placed.iter().find(|t| b.is_local(t)).expect("a task on b");
    // B's agent dies: its lease is given up (expiry does the same, later).
    b.release_agent_lease(DEFAULT_CLUSTER).expect("release");
    // A host never counts itself lost (its supervisors pass too).
    assert!(pass(&b).lost.is_empty());
    let after = pass(&third);
    assert_eq!(after.lost, [on_b.id().to_string()]);
    let lost = a.task(DEFAULT_CLUSTER, on_b.id()).expect("task");
    assert_eq!(lost.last_status, TaskStatus::Stopped);
    assert_eq!(lost.desired_status, DesiredStatus::Stopped);
    assert_eq!(lost.stop_code, Some(StopCode::TerminationNotice));
    let reason = lost.stopped_reason.clone().unwrap_or_default();
    assert_eq!(reason, lost_reason(b.host_id()));
    // Its reservation came back in the same commit; the instance is
    // recorded disconnected.
    let seen_b = describe(&a, &b);
    assert_eq!(seen_b["agentConnected"], false);
    assert_eq!(seen_b["remainingResources"][1]["integerValue"], HOST_MEMORY);
    // The replacement went to the live host with room.
    assert_eq!(hosts_of(&after.placed), ["c"]);
    assert_eq!(hosts_of(&live_tasks(&a)), ["a", "c"]);
    // The next pass has nothing more to stop.
    assert!(pass(&a).lost.is_empty());
}

#[test]
fn a_late_write_of_a_fenced_host_never_brings_its_task_back() {
    let c = Cluster::new();
    let a = c.agent('a', "az-1");
    let b = c.agent('b', "az-2");
    register(&a, "web");
    let (tasks, _) = run(&a, "web", 2);
    mark_running(&a, &tasks);
    let on_b = tasks.iter().find(|t| b.is_local(t)).expect("a task on b");
    b.release_agent_lease(DEFAULT_CLUSTER).expect("release");
    pass(&a);
    // B's supervisor, back from a partition, records what it saw last:
    // the task stays STOPPED and its memory is given back once only.
    b.update_task(DEFAULT_CLUSTER, on_b.id(), |t| {
        t.last_status = TaskStatus::Running;
        t.desired_status = DesiredStatus::Running;
    })
    .expect("late write");
    let t = b.task(DEFAULT_CLUSTER, on_b.id()).expect("task");
    assert_eq!(t.last_status, TaskStatus::Stopped);
    assert_eq!(t.desired_status, DesiredStatus::Stopped);
    b.update_task(DEFAULT_CLUSTER, on_b.id(), |t| {
        t.last_status = TaskStatus::Deprovisioning;
    })
    .expect("late write");
    b.update_task(DEFAULT_CLUSTER, on_b.id(), |t| {
        t.last_status = TaskStatus::Stopped;
    })
    .expect("late write");
    assert_eq!(
        describe(&a, &b)["remainingResources"][1]["integerValue"],
        HOST_MEMORY
    );
    // B rejoins: registered connected again, and takes new tasks.
    assert!(b.renew_agent_lease(DEFAULT_CLUSTER, TTL).expect("lease"));
    b.register_agent(DEFAULT_CLUSTER, &[]).expect("register");
    let seen = describe(&a, &b);
    assert_eq!(seen["agentConnected"], true);
    let attrs = seen["attributes"].as_array().expect("attributes");
    assert!(
        attrs.contains(&json!({"name": "ecs.availability-zone", "value": "az-2"})),
        "its attributes are kept: {attrs:?}"
    );
    let (tasks, _) = run(&a, "web", 1);
    assert_eq!(hosts_of(&tasks), ["b"]);
}

#[test]
fn a_draining_host_is_emptied_replacements_first_and_takes_nothing_new() {
    let c = Cluster::new();
    // A takes three tasks, B and C one each; with no strategy, ties go to
    // the first instance: the service and a standalone task land on A.
    let a = c.host('a', 3 * 200);
    assert!(a.renew_agent_lease(DEFAULT_CLUSTER, TTL).expect("lease"));
    a.register_agent(DEFAULT_CLUSTER, &[]).expect("register");
    let _b = c.agent('b', "az-2");
    let _c = c.agent('c', "az-3");
    register(&a, "web");
    register(&a, "solo");
    service(&a, "web", 2, false);
    let placed = pass(&a).placed;
    assert_eq!(hosts_of(&placed), ["a", "a"]);
    mark_running(&a, &placed);
    let (solo, _) = run(&a, "solo", 1);
    assert_eq!(hosts_of(&solo), ["a"]);
    mark_running(&a, &solo);
    let ids = [a.host_id().to_string()];
    let out = a
        .update_container_instances_state(None, &ids, &InstanceStatus::Draining)
        .expect("drain");
    assert_eq!(out["containerInstances"][0]["status"], "DRAINING");
    // First pass: the replacements start elsewhere; none stops yet, as
    // minimumHealthyPercent is 100.
    let first = pass(&a);
    assert_eq!(hosts_of(&first.placed), ["b", "c"]);
    assert_eq!(hosts_of(&live_tasks(&a)), ["a", "a", "a", "b", "c"]);
    // They run: the drained ones stop; the standalone task stays, as ECS
    // leaves it.
    mark_running(&a, &first.placed);
    let second = pass(&a);
    assert!(second.placed.is_empty());
    let live = live_tasks(&a);
    assert_eq!(hosts_of(&live), ["a", "b", "c"]);
    assert!(live.iter().any(|t| t.id() == solo[0].id()));
    // Nothing new lands on a DRAINING instance (b and c are full).
    let (more, reasons) = run(&a, "solo", 1);
    assert!(more.is_empty());
    assert_eq!(reasons, ["RESOURCE:MEMORY"]);
}

#[test]
fn a_daemon_runs_on_every_active_connected_host_following_joins_and_losses() {
    let c = Cluster::new();
    let a = c.agent('a', "az-1");
    let _b = c.agent('b', "az-2");
    register(&a, "mon");
    service(&a, "mon", 0, true);
    let placed = pass(&a).placed;
    assert_eq!(hosts_of(&placed), ["a", "b"]);
    mark_running(&a, &placed);
    // A host joins: it gets one.
    let third = c.agent('c', "az-3");
    let joined = pass(&a).placed;
    assert_eq!(hosts_of(&joined), ["c"]);
    mark_running(&a, &joined);
    // A host is lost: its task stops and nothing replaces it elsewhere.
    third.release_agent_lease(DEFAULT_CLUSTER).expect("release");
    let after = pass(&a);
    assert_eq!(after.lost.len(), 1);
    assert!(after.placed.is_empty());
    assert_eq!(hosts_of(&live_tasks(&a)), ["a", "b"]);
    let s = a.service(DEFAULT_CLUSTER, "mon").expect("service");
    assert_eq!(s.desired_count, 2);
}

#[test]
fn spread_and_distinct_instance_count_the_tasks_of_every_host() {
    let c = Cluster::new();
    let a = c.agent_with('a', "az-1", 2000);
    let b = c.agent_with('b', "az-2", 1800);
    let h3 = c.agent_with('c', "az-3", 2000);
    register(&a, "web");
    register(&a, "solo");
    // Two on B already: spread by zone puts the service's six 2/2/2, and
    // counts only the service's own group.
    let req = |family: &str, count: u32, strategy: Value, constraints: Value| RunTask {
        task_definition: family.into(),
        count,
        placement_strategy: serde_json::from_value(strategy).expect("strategy"),
        placement_constraints: serde_json::from_value(constraints).expect("constraints"),
        ..Default::default()
    };
    let (_, solo) = b
        .start_task(
            &req("solo", 1, json!([]), json!([])),
            &[b.host_id().to_string()],
        )
        .expect("start-task");
    assert_eq!(hosts_of(&solo), ["b"]);
    a.create_service(&CreateService {
        service_name: "web".into(),
        task_definition: "web".into(),
        desired_count: 6,
        placement_strategy: vec![
            json!({"type": "spread", "field": "attribute:ecs.availability-zone"}),
        ],
        ..Default::default()
    })
    .expect("create-service");
    let placed = pass(&b).placed;
    assert_eq!(hosts_of(&placed), ["a", "a", "b", "b", "c", "c"]);
    // distinctInstance sees the tasks of its group wherever they run:
    // one on each host, then none.
    let distinct = json!([{"type": "distinctInstance"}]);
    let (_, first) = a
        .run_task(&req("solo", 2, json!([]), distinct.clone()))
        .expect("run-task");
    assert_eq!(
        hosts_of(&first),
        ["a", "c"],
        "b runs one of the family already"
    );
    let (out, none) = h3
        .run_task(&req("solo", 1, json!([]), distinct))
        .expect("run-task");
    assert!(none.is_empty(), "{out}");
    // binpack on memory fills the fullest host first.
    let (_, packed) = h3
        .run_task(&req(
            "web",
            2,
            json!([{"type": "binpack", "field": "memory"}]),
            json!([]),
        ))
        .expect("run-task");
    assert_eq!(hosts_of(&packed), ["b", "b"], "b has the least memory left");
    // A bad strategy is refused naming the field.
    let e = a
        .run_task(&req("web", 1, json!([{"type": "nearest"}]), json!([])))
        .expect_err("refused");
    assert!(e.message.contains("placementStrategy"), "{e:?}");
}

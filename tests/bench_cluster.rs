//! `make bench` (cluster): issue 13's benchmark through real hosts, on the
//! cluster tests' harness ([`ClusterWorld`]: network namespaces on an
//! underlay bridge, etcd on it, a `berth agent` per host). Prints figures
//! beside the named peers'; asserts nothing about time.
//!
//! - host loss → all replacements RUNNING on the other hosts, median of 5;
//! - run-task → RUNNING through etcd (placed on the host running the
//!   command, and on another host) vs through SQLite (one host), median;
//! - 300 tasks over 3 hosts (run-task --count 10 from every host at once):
//!   placements/s, the time until all RUNNING; then all stopped and
//!   nothing left behind.
//!
//! Run as root with BERTH_BIN (the release build) and BERTH_TEST_ROOTFS.
//! Build this binary itself with the dev profile: the release profile
//! aborts on panic, which would skip the harness's Drop guards and leave
//! hosts, namespaces and etcd behind.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use berth_tests::cluster_world::{three_zones, ClusterWorld, Host, HostSpec, CLUSTER};
use berth_tests::{assert_ok, parse_json, strings, task_ids, World};
use serde_json::{json, Value};

const SPREAD_BY_ZONE: &str = r#"[{"type":"spread","field":"attribute:ecs.availability-zone"}]"#;

fn main() {
    let trials: usize = env_num("BENCH_LOSS_TRIALS", 5);
    let runs: usize = env_num("BENCH_RUNS", 10);
    let loss = host_loss(trials);
    let (local, remote, many) = through_etcd(runs);
    let sqlite = through_sqlite(runs);

    println!("\ncluster: host loss → all replacements RUNNING on the other hosts");
    println!(
        "  berth (agent lease TTL 3 s, default): median {:.1} s of {trials} (runs: {})",
        median(&loss),
        loss.iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  Kubernetes (defaults): ~40 s node-monitor-grace-period + 5 min eviction");
    println!("  Nomad (defaults): ~20 s (heartbeat grace)");
    println!("cluster: run-task → RUNNING (busybox, network none), median of {runs}");
    println!(
        "  SQLite, one host:                      {:.0} ms",
        median(&sqlite) * 1000.0
    );
    println!(
        "  etcd, placed on the calling host:      {:.0} ms",
        median(&local) * 1000.0
    );
    println!(
        "  etcd, placed on another host:          {:.0} ms",
        median(&remote) * 1000.0
    );
    println!("cluster: 300 tasks over 3 hosts (30 run-task --count 10, 10 from each host at once)");
    println!(
        "  placed in {:.1} s ({:.0} placements/s); {} of 300 RUNNING after {:.1} s; all stopped after {:.1} s more, nothing left behind",
        many.placed,
        300.0 / many.placed.max(1e-9),
        many.reached,
        many.running,
        many.stopped
    );
    for (reason, n) in &many.reasons {
        println!("  {n} failed to start: {reason}");
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Poll `f` every 20 ms until it answers; panics after 5 minutes.
fn poll<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_every(what, Duration::from_millis(20), f)
}

/// Poll `f` every `every` until it answers; panics after 5 minutes (the
/// worlds' Drop guards still clean up: this binary unwinds, built as dev).
fn poll_every<T>(what: &str, every: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(every);
    }
}

/// One trial: three hosts, a spread service of 6 (2 a host), host b
/// killed whole (agent, supervisors, monitors, containers); seconds from
/// the kill until 6 RUNNING off b.
fn host_loss_trial(n: usize) -> f64 {
    let cw = ClusterWorld::start(&format!("bench-loss{n}"), &three_zones());
    cw.register_looper("web", 32);
    cw.berth_json(&[
        "create-service",
        "--cluster",
        CLUSTER,
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "6",
        "--placement-strategy",
        SPREAD_BY_ZONE,
    ]);
    cw.wait_service_running("web", 6);
    let started = Instant::now();
    cw.host("b").kill_host();
    poll("6 RUNNING off host b", || {
        let tasks = cw.service_tasks("web", "RUNNING");
        let off_b = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING" && cw.host_of_task(t) != "b")
            .count();
        (tasks.len() == 6 && off_b == 6).then_some(())
    });
    let secs = started.elapsed().as_secs_f64();
    eprintln!("host loss trial {n}: {secs:.1} s");
    secs
}

fn host_loss(trials: usize) -> Vec<f64> {
    (0..trials).map(host_loss_trial).collect()
}

/// `run-task` of `family` from `host`, on the host in `zone`.
fn run_in_zone(host: &Host, family: &str, zone: &str) -> Value {
    let req = json!({
        "cluster": CLUSTER,
        "taskDefinition": family,
        "placementConstraints": [{
            "type": "memberOf",
            "expression": format!("attribute:ecs.availability-zone == {zone}")
        }]
    });
    host.berth_json(&["run-task", "--cli-input-json", &req.to_string()])
}

/// The lastStatus of each of `ids`, read on `host`.
fn statuses(host: &Host, cluster: &str, ids: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    for chunk in ids.chunks(100) {
        let mut args = vec!["describe-tasks", "--cluster", cluster, "--tasks"];
        args.extend(chunk.iter().map(String::as_str));
        let out = host.berth_json(&args);
        all.extend(
            out["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| t["lastStatus"].as_str().unwrap_or_default().to_string()),
        );
    }
    all
}

fn wait_all(host: &Host, cluster: &str, ids: &[String], status: &str) {
    poll(&format!("{} tasks {status}", ids.len()), || {
        let s = statuses(host, cluster, ids);
        (s.len() == ids.len() && s.iter().all(|x| x == status)).then_some(())
    });
}

fn stop_all(host: &Host, cluster: &str, ids: &[String]) {
    // One that failed to start is STOPPED already: the wait after checks.
    for id in ids {
        let _ = host.berth(&["stop-task", "--cluster", cluster, "--task", id]);
    }
}

/// Seconds from run-task (from host a) until RUNNING, `runs` times, of a
/// task placed on the host in `zone`.
fn run_to_running(cw: &ClusterWorld, zone: &str, runs: usize) -> Vec<f64> {
    let a = cw.host("a");
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let ids = task_ids(&run_in_zone(a, "one", zone));
            assert_eq!(ids.len(), 1, "run-task placed nothing in {zone}");
            wait_all(a, CLUSTER, &ids, "RUNNING");
            let secs = started.elapsed().as_secs_f64();
            stop_all(a, CLUSTER, &ids);
            wait_all(a, CLUSTER, &ids, "STOPPED");
            secs
        })
        .collect()
}

/// Timings of the 300-task run.
struct Many {
    placed: f64,
    /// Seconds until every task settled (RUNNING or STOPPED).
    running: f64,
    /// How many were RUNNING then: all 300 unless some failed to start.
    reached: usize,
    /// Why the others stopped, with how many each.
    reasons: BTreeMap<String, usize>,
    stopped: f64,
}

/// Every task's lastStatus and stoppedReason, read on `host`.
fn described(host: &Host, cluster: &str, ids: &[String]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for chunk in ids.chunks(100) {
        let mut args = vec!["describe-tasks", "--cluster", cluster, "--tasks"];
        args.extend(chunk.iter().map(String::as_str));
        let out = host.berth_json(&args);
        for t in out["tasks"].as_array().into_iter().flatten() {
            let field = |f: &str| t[f].as_str().unwrap_or_default().to_string();
            all.push((field("lastStatus"), field("stoppedReason")));
        }
    }
    all
}

/// Three hosts: run-task → RUNNING on the calling host and another, then
/// 300 tasks from all three hosts at once.
fn through_etcd(runs: usize) -> (Vec<f64>, Vec<f64>, Many) {
    let specs: Vec<HostSpec> = three_zones().into_iter().map(|s| s.memory(2048)).collect();
    let cw = ClusterWorld::start("bench-etcd", &specs);
    cw.register_looper("one", 16);
    cw.register_looper("many", 8);
    let local = run_to_running(&cw, "zone-a", runs);
    let remote = run_to_running(&cw, "zone-b", runs);
    let footprint = cw.footprint();
    let many = three_hundred(&cw);
    drop(cw);
    let left = footprint.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
    (local, remote, many)
}

/// 30 `run-task --count 10`, 10 from each host, all at once.
fn three_hundred(cw: &ClusterWorld) -> Many {
    let started = Instant::now();
    let children: Vec<_> = cw
        .hosts
        .iter()
        .flat_map(|h| (0..10).map(move |_| h))
        .map(|h| {
            h.command()
                .args([
                    "run-task",
                    "--cluster",
                    CLUSTER,
                    "--task-definition",
                    "many",
                ])
                .args(["--count", "10"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn run-task")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("run-task"))
        .collect();
    let placed = started.elapsed().as_secs_f64();
    let mut ids = Vec::new();
    for out in &outs {
        assert_ok(out);
        ids.extend(task_ids(&parse_json(out)));
    }
    assert_eq!(ids.len(), 300, "placed {} of 300", ids.len());
    let a = cw.host("a");
    // Every task RUNNING, or STOPPED if it failed to start (reported).
    // Polled less often: 300 tasks' descriptions are 3 verbs a poll.
    let settled = poll_every(
        "300 tasks RUNNING or STOPPED",
        Duration::from_millis(250),
        || {
            let d = described(a, CLUSTER, &ids);
            let done =
                d.len() == ids.len() && d.iter().all(|(s, _)| s == "RUNNING" || s == "STOPPED");
            done.then_some(d)
        },
    );
    let running = started.elapsed().as_secs_f64();
    let reached = settled.iter().filter(|(s, _)| s == "RUNNING").count();
    let mut reasons = BTreeMap::new();
    for (status, reason) in &settled {
        if status == "STOPPED" {
            // The container id in a reason differs per task: count by kind.
            let kind = reason.split(": container").next().unwrap_or(reason);
            *reasons.entry(kind.to_string()).or_insert(0) += 1;
        }
    }
    let stopping = Instant::now();
    stop_all(a, CLUSTER, &ids);
    wait_all(a, CLUSTER, &ids, "STOPPED");
    // Nothing of them left on any host: no container, no running task.
    poll("every host's containers gone", || {
        cw.hosts
            .iter()
            .all(|h| h.container_ids().is_empty())
            .then_some(())
    });
    let stopped = stopping.elapsed().as_secs_f64();
    let listed = cw.berth_json(&["list-tasks", "--cluster", CLUSTER]);
    assert!(strings(&listed["taskArns"]).is_empty(), "{listed}");
    Many {
        placed,
        running,
        reached,
        reasons,
        stopped,
    }
}

/// One host on SQLite: run-task → RUNNING, as bench_tasks.py times it.
fn through_sqlite(runs: usize) -> Vec<f64> {
    let w = World::new("bench-sqlite");
    w.busybox_image("busybox:latest", &[]);
    let td = json!({
        "family": "one", "networkMode": "none",
        "containerDefinitions": [{
            "name": "main", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
        }]
    });
    w.register(&td);
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let out = w.berth(&["run-task", "--task-definition", "one"]);
            assert_ok(&out);
            let id = task_ids(&parse_json(&out)).remove(0);
            w.wait_task(&id, "RUNNING");
            let secs = started.elapsed().as_secs_f64();
            assert_ok(&w.berth(&["stop-task", "--task", &id]));
            w.wait_task(&id, "STOPPED");
            secs
        })
        .collect()
}

//! Crash safety: kill -9 of a run-task CLI, a task supervisor, a container
//! monitor or a stop-task CLI at a random moment while tasks start and
//! stop, then `berth system gc`, then nothing of those tasks may be left:
//! no mount, cgroup, namespace, link, nft element, reservation, container,
//! root filesystem or process.
//!
//! `BERTH_CHAOS_TRIALS` trials (12 by default; `make chaos` runs more),
//! from `BERTH_CHAOS_SEED` or a random seed, printed so that a failure can
//! be replayed. A sentinel task runs throughout on the same bridge, so the
//! network (and its nft table) outlives each trial, as on a busy host, and
//! what a trial leaks there shows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_orchestrator::model::{Task, TaskStatus};
use berth_orchestrator::store::{Expect, Op, SqliteStore, Store};
use berth_tests::{assert_ok, free_port, parse_json, stderr, task_ids, World};
use serde_json::{json, Value};

/// splitmix64: small, seedable, good enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A delay up to `max` ms, on a scale of `max`, `max`/4, `max`/16 or
    /// `max`/64 (each as likely): kills land early in a step as often as
    /// late.
    fn millis(&mut self, max: u64) -> Duration {
        let scale = max >> (2 * self.below(4));
        Duration::from_millis(self.below(scale + 1))
    }
}

#[derive(Clone, Copy, Debug)]
enum Victim {
    RunTaskCli,
    Supervisor,
    Monitor,
    StopTaskCli,
}

const VICTIMS: [Victim; 4] = [
    Victim::RunTaskCli,
    Victim::Supervisor,
    Victim::Monitor,
    Victim::StopTaskCli,
];

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: not a number: {e}")),
    )
}

fn kill9(pid: i32) {
    // SAFETY: kill(2) with a pid this test found; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Pids of this world's processes whose command line has `arg` and `id`.
fn processes(w: &World, arg: &str, id: &str) -> Vec<i32> {
    w.monitors()
        .into_iter()
        .filter(|pid| {
            let c = cmdline(*pid);
            c.contains(arg) && c.contains(id)
        })
        .collect()
}

fn supervisor_of(w: &World, id: &str) -> Option<i32> {
    processes(w, berth_orchestrator::supervisor::SUPERVISOR_ARG, id)
        .into_iter()
        .next()
}

/// Kill `child` (a berth CLI) after `delay`; whether it was still running.
fn kill_child_after(mut child: Child, delay: Duration) -> bool {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let running = matches!(child.try_wait(), Ok(None));
    kill9(child.id() as i32);
    let _ = child.wait();
    running
}

fn spawn_berth(w: &World, args: &[&str]) -> Child {
    w.command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth")
}

fn run_task(w: &World, family: &str) -> Option<String> {
    let out = w.berth(&["run-task", "--task-definition", family]);
    if !out.status.success() {
        eprintln!("run-task {family}: {}", stderr(&out));
        return None;
    }
    task_ids(&parse_json(&out)).pop()
}

/// The task's lastStatus as the store has it now.
fn last_status(w: &World, id: &str) -> String {
    let out = w.berth(&["describe-tasks", "--tasks", id]);
    if !out.status.success() {
        return "unknown".into();
    }
    parse_json(&out)["tasks"][0]["lastStatus"]
        .as_str()
        .unwrap_or("gone")
        .to_string()
}

/// One task's life with one kill in it; returns where the kill landed.
fn ordeal(w: &World, family: &str, victim: Victim, rng: &mut Rng) -> String {
    match victim {
        Victim::RunTaskCli => {
            let child = spawn_berth(w, &["run-task", "--task-definition", family]);
            let delay = rng.millis(400);
            if kill_child_after(child, delay) {
                format!("run-task killed after {}ms", delay.as_millis())
            } else {
                "run-task had finished".into()
            }
        }
        Victim::Supervisor => {
            let Some(id) = run_task(w, family) else {
                return "run-task failed".into();
            };
            std::thread::sleep(rng.millis(2000));
            match supervisor_of(w, &id) {
                Some(pid) => {
                    kill9(pid);
                    format!("supervisor killed at {}", last_status(w, &id))
                }
                None => format!("supervisor had exited ({})", last_status(w, &id)),
            }
        }
        Victim::Monitor => {
            let Some(id) = run_task(w, family) else {
                return "run-task failed".into();
            };
            // Half the time as soon as a monitor shows (libcontainer is
            // creating the container then), else later.
            let early = rng.below(2) == 0;
            let delay = if early {
                rng.millis(30)
            } else {
                rng.millis(1500)
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            let monitor = loop {
                let found = processes(w, berth_runtime::monitor::MONITOR_ARG, &id);
                if !found.is_empty() || Instant::now() > deadline {
                    break found;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let Some(&first) = monitor.first() else {
                return format!("no monitor showed ({})", last_status(w, &id));
            };
            std::thread::sleep(delay);
            // One of the task's monitors, as they are now.
            let now = processes(w, berth_runtime::monitor::MONITOR_ARG, &id);
            let pid = now
                .get(rng.below(now.len() as u64) as usize)
                .copied()
                .unwrap_or(first);
            let container = cmdline(pid)
                .split_whitespace()
                .nth(2)
                .and_then(|d| d.rsplit('/').next().map(str::to_string))
                .unwrap_or_default();
            let state = w.berth(&["runtime", "state", &container]);
            let status = if state.status.success() {
                parse_json(&state)["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            } else {
                "no state".into()
            };
            kill9(pid);
            format!(
                "monitor killed ({}, container {status}, task {})",
                if early { "early" } else { "late" },
                last_status(w, &id)
            )
        }
        Victim::StopTaskCli => {
            let Some(id) = run_task(w, family) else {
                return "run-task failed".into();
            };
            std::thread::sleep(rng.millis(2000));
            // Half the time the supervisor is gone first, so that
            // stop-task itself finishes the task, and dies doing it.
            let orphaned = rng.below(2) == 0;
            if orphaned {
                if let Some(pid) = supervisor_of(w, &id) {
                    kill9(pid);
                }
            }
            let at = last_status(w, &id);
            let child = spawn_berth(w, &["stop-task", "--task", &id]);
            let delay = rng.millis(if orphaned { 1500 } else { 200 });
            let killed = kill_child_after(child, delay);
            format!(
                "stop-task {} after {}ms ({}, task {at})",
                if killed { "killed" } else { "had finished" },
                delay.as_millis(),
                if orphaned { "reaping" } else { "asking" }
            )
        }
    }
}

/// Every task record in the store.
fn tasks(store: &SqliteStore) -> Vec<Task> {
    store
        .list("tasks/")
        .expect("list the store")
        .into_iter()
        .map(|(k, r)| {
            serde_json::from_slice(&r.value).unwrap_or_else(|e| panic!("task record {k}: {e}"))
        })
        .collect()
}

fn holders(store: &SqliteStore, prefix: &str) -> Vec<(String, String)> {
    store
        .list(prefix)
        .expect("list the store")
        .into_iter()
        .map(|(k, r)| (k, String::from_utf8_lossy(&r.value).into_owned()))
        .collect()
}

fn dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The elements of the ports map of `bridge`'s nft table, as nft lists them.
fn map_elements(bridge: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args([
            "-j",
            "list",
            "map",
            "ip",
            &berth_net::nat::table_name(bridge),
            "ports",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run nft");
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .flatten()
        .map(Value::to_string)
        .collect()
}

/// Everything of a task other than `keep` (the sentinel) still there.
fn leftovers(w: &World, keep: &str) -> Vec<String> {
    let mut out = Vec::new();
    let store = SqliteStore::open(&w.root.path().join("state.db")).expect("open the store");
    let mut ifnames = BTreeMap::new();
    for task in tasks(&store) {
        let id = task.id().to_string();
        if id == keep {
            continue;
        }
        if task.last_status != TaskStatus::Stopped {
            out.push(format!(
                "task {id} is {} (desired {})",
                task.last_status, task.desired_status
            ));
        }
        let b = task.berth.unwrap_or_default();
        let nets = b
            .network
            .into_iter()
            .chain(b.container_networks.into_iter().map(|cn| cn.network));
        for net in nets {
            ifnames.insert(net.host_ifname, id.clone());
        }
    }
    for prefix in ["ips/", "ports/"] {
        for (key, holder) in holders(&store, prefix) {
            if !holder.ends_with(keep) {
                out.push(format!("reservation {key} held by {holder}"));
            }
        }
    }
    for elem in map_elements(&w.bridge) {
        out.push(format!("nft map element {elem}"));
    }
    for (name, id) in &ifnames {
        if Path::new("/sys/class/net").join(name).exists() {
            out.push(format!("link {name} of task {id}"));
        }
    }
    // The sentinel's veth is the one bridge port a trial may leave.
    let sentinel_port = port_of_sentinel(&store, keep);
    for port in dir_names(&Path::new("/sys/class/net").join(&w.bridge).join("brif")) {
        if !ifnames.contains_key(&port) && sentinel_port.as_deref() != Some(port.as_str()) {
            out.push(format!("bridge port {port}"));
        }
    }
    let runtime = w.root.path().join("run");
    for (dir, what) in [
        ("tasks", "task run dir"),
        ("containers", "container"),
        ("libcontainer", "libcontainer state"),
    ] {
        for name in dir_names(&runtime.join(dir)) {
            if !name.starts_with(keep) {
                out.push(format!("{what} {name}"));
            }
        }
    }
    for name in dir_names(&w.root.path().join("images/snapshots")) {
        if !name.starts_with(keep) {
            out.push(format!("snapshot {name}"));
        }
    }
    for mount in w.mounts() {
        if !mount.contains(keep) {
            out.push(format!("mount {mount}"));
        }
    }
    for cgroup in w.leftover_cgroups() {
        if !cgroup.ends_with(keep) {
            out.push(format!("cgroup {}", cgroup.display()));
        }
    }
    for pid in w.monitors() {
        let c = cmdline(pid);
        if !c.contains(keep) {
            out.push(format!("process {pid}: {c}"));
        }
    }
    out
}

/// The sentinel's veth, from its record.
fn port_of_sentinel(store: &SqliteStore, keep: &str) -> Option<String> {
    tasks(store)
        .into_iter()
        .find(|t| t.id() == keep)
        .and_then(|t| t.berth?.network.map(|n| n.host_ifname))
}

/// Supervisor processes of this world's tasks.
fn supervisors(w: &World) -> BTreeSet<i32> {
    w.monitors()
        .into_iter()
        .filter(|pid| cmdline(*pid).contains(berth_orchestrator::supervisor::SUPERVISOR_ARG))
        .collect()
}

/// Stop what a trial left running, wait for its supervisors (not those
/// `earlier` trials leaked, which the leak check reports), then let gc
/// find what they did not finish.
fn settle_and_gc(w: &World, keep: &str, earlier: &BTreeSet<i32>) -> Value {
    let listed = parse_json(&w.berth(&["list-tasks"]));
    let ids: Vec<String> = listed["taskArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str()?.rsplit('/').next().map(str::to_string))
        .filter(|id| id != keep)
        .collect();
    for id in &ids {
        let _ = w.berth(&["stop-task", "--task", id]);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline
        && supervisors(w)
            .iter()
            .any(|pid| !earlier.contains(pid) && !cmdline(*pid).contains(keep))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A task without a supervisor counts as starting for 5 s.
    std::thread::sleep(Duration::from_millis(5500));
    let out = w.berth(&["system", "gc"]);
    assert_ok(&out);
    parse_json(&out)
}

const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// `vpc`: awsvpc, a port mapping, a scratch volume, two containers.
fn register_vpc(w: &World) {
    w.register(&json!({
        "family": "vpc", "networkMode": "awsvpc",
        "volumes": [{ "name": "scratch" }],
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 16,
              "portMappings": [{ "containerPort": free_port() }],
              "mountPoints": [{ "sourceVolume": "scratch", "containerPath": "/scratch" }],
              "command": ["sh", "-c", format!("echo hi > /scratch/f; {LOOP}")] },
            { "name": "side", "image": "busybox", "memory": 16, "essential": false,
              "mountPoints": [{ "sourceVolume": "scratch", "containerPath": "/scratch" }],
              "command": ["sh", "-c", LOOP] }
        ]
    }));
}

/// A task recorded STOPPED while all it made is still there (its
/// supervisor killed, then the record written as a supervisor that marked
/// a task STOPPED over failures did): gc releases all of it.
#[test]
fn gc_releases_what_a_stopped_task_left() {
    let w = World::new("chaos-stopped");
    w.busybox_image("busybox:latest", &[]);
    register_vpc(&w);
    let id = run_task(&w, "vpc").expect("run-task");
    w.wait_task(&id, "RUNNING");
    let supervisor = supervisor_of(&w, &id).expect("a supervisor");
    kill9(supervisor);
    let store = SqliteStore::open(&w.root.path().join("state.db")).expect("open the store");
    let key = format!("tasks/default/{id}");
    let rec = store.get(&key).expect("read").expect("the task");
    let mut task: Value = serde_json::from_slice(&rec.value).expect("task JSON");
    task["lastStatus"] = "STOPPED".into();
    task["desiredStatus"] = "STOPPED".into();
    store
        .commit(&[Op::Put {
            key,
            value: task.to_string().into_bytes(),
            expect: Expect::Revision(rec.revision),
        }])
        .expect("write the task");
    assert!(!map_elements(&w.bridge).is_empty(), "no mapping to leave");
    let out = w.berth(&["system", "gc"]);
    assert_ok(&out);
    let report = parse_json(&out);
    let released = report["resourcesReleased"].to_string();
    for what in [
        "container",
        "root filesystem",
        "namespaces",
        "cgroup",
        "directory",
    ] {
        assert!(released.contains(what), "no {what} released: {report}");
    }
    assert_eq!(
        report["mappingsRemoved"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_eq!(map_elements(&w.bridge), Vec::<String>::new());
    for prefix in ["ips/", "ports/"] {
        assert_eq!(holders(&store, prefix), vec![], "reservations left");
    }
    w.assert_clean();
}

#[test]
fn whatever_dies_gc_leaves_nothing_behind() {
    let trials = env_number("BERTH_CHAOS_TRIALS").unwrap_or(12);
    let seed = env_number("BERTH_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("chaos: {trials} trials, BERTH_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let w = World::new("chaos");
    w.busybox_image("busybox:latest", &[]);
    register_vpc(&w);
    w.register(&json!({
        "family": "bridged", "networkMode": "bridge",
        "containerDefinitions": [
            { "name": "web", "image": "busybox", "memory": 16,
              "portMappings": [{ "containerPort": 80, "hostPort": 0 }],
              "command": ["sh", "-c", LOOP] }
        ]
    }));
    w.register(&json!({
        "family": "sentinel", "networkMode": "awsvpc",
        "containerDefinitions": [
            { "name": "s", "image": "busybox", "memory": 16, "command": ["sh", "-c", LOOP] }
        ]
    }));
    let sentinel = run_task(&w, "sentinel").expect("the sentinel task");
    w.wait_task(&sentinel, "RUNNING");

    let mut kill_points: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut leaks: Vec<String> = Vec::new();
    for trial in 0..trials {
        let began = Instant::now();
        let earlier = supervisors(&w);
        let victim = VICTIMS[rng.below(VICTIMS.len() as u64) as usize];
        let seeds = [rng.next(), rng.next()];
        let points: Vec<String> = std::thread::scope(|s| {
            let runs: Vec<_> = ["vpc", "bridged"]
                .into_iter()
                .zip(seeds)
                .map(|(family, seed)| {
                    let w = &w;
                    s.spawn(move || {
                        let point = ordeal(w, family, victim, &mut Rng(seed));
                        format!("{family}: {point}")
                    })
                })
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("a trial thread"))
                .collect()
        });
        let report = settle_and_gc(&w, &sentinel, &earlier);
        eprintln!(
            "trial {trial} ({victim:?}, {:.1}s): {points:?}; gc: {report}",
            began.elapsed().as_secs_f64()
        );
        for p in &points {
            let kind = p.split(" after ").next().unwrap_or(p);
            let kind = kind.split(" (").next().unwrap_or(kind);
            *kill_points.entry(kind.to_string()).or_default() += 1;
        }
        for leak in leftovers(&w, &sentinel) {
            if seen.insert(leak.clone()) {
                eprintln!("trial {trial}: LEAK {leak}");
                leaks.push(format!("trial {trial} ({victim:?}, {points:?}): {leak}"));
            }
        }
    }
    eprintln!("chaos: kill points {kill_points:?}");
    assert_ok(&w.berth(&["stop-task", "--task", &sentinel]));
    w.wait_task(&sentinel, "STOPPED");
    assert_ok(&w.berth(&["system", "gc"]));
    assert!(
        leaks.is_empty(),
        "BERTH_CHAOS_SEED={seed}: {} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    let store = SqliteStore::open(&w.root.path().join("state.db")).expect("open the store");
    for prefix in ["ips/", "ports/"] {
        assert_eq!(holders(&store, prefix), vec![], "reservations left");
    }
    w.assert_clean();
}

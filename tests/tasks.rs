//! Tasks end to end: run-task through the real binary, real containers,
//! states and exits read back with describe-tasks.

use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_runtime::{cgroups, Resources};
use berth_tests::{assert_ok, parse_json, stderr, stdout, task_id, World};
use serde_json::{json, Value};

fn run_task(w: &World, args: &[&str]) -> Value {
    let mut all = vec!["run-task"];
    all.extend_from_slice(args);
    let out = w.berth(&all);
    assert_ok(&out);
    parse_json(&out)
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {task}"))
}

fn world_with_busybox(name: &str) -> World {
    let w = World::new(name);
    w.busybox_image("busybox:latest", &[]);
    w
}

#[test]
fn two_containers_with_depends_on_and_a_shared_volume() {
    let w = world_with_busybox("task-pair");
    w.register(&json!({
            "family": "pair",
            "networkMode": "none",
            "volumes": [{ "name": "shared" }],
            "containerDefinitions": [
                { "name": "init", "image": "busybox", "memory": 32, "essential": false,
                  "command": ["sh", "-c", "echo ready > /data/flag; hostname > /data/host"],
                  "mountPoints": [{ "sourceVolume": "shared", "containerPath": "/data" }] },
                { "name": "app", "image": "busybox", "memory": 32,
                  "command": ["sh", "-c", "cat /data/flag; [ \"$(cat /data/host)\" = \"$(hostname)\" ] && echo same-uts; ip -o link | wc -l; sleep 1; exit 3"],
                  "mountPoints": [{ "sourceVolume": "shared", "containerPath": "/data" }],
                  "dependsOn": [{ "containerName": "init", "condition": "SUCCESS" }] },
                { "name": "reader", "image": "busybox", "memory": 32, "essential": false,
                  "command": ["sh", "-c", "cat /data/flag && ! touch /data/nope 2>/dev/null && echo read-only"],
                  "volumesFrom": [{ "sourceContainer": "app", "readOnly": true }],
                  "dependsOn": [{ "containerName": "init", "condition": "COMPLETE" }] }
            ]
        }),
    );
    let out = run_task(&w, &["--task-definition", "pair"]);
    let task = &out["tasks"][0];
    assert_eq!(task["lastStatus"], "PROVISIONING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    let id = task_id(task);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t}");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(container(&t, "init")["exitCode"], 0);
    assert_eq!(container(&t, "app")["exitCode"], 3);
    for field in ["createdAt", "startedAt", "stoppingAt", "stoppedAt"] {
        assert!(t[field].is_string(), "{field} missing: {t}");
    }
    let logs = stdout(&w.berth(&["logs", &id, "--container", "app", "--since", "10m"]));
    assert_eq!(
        stdout(&w.berth(&["logs", &id, "--container", "reader"])),
        "ready\nread-only\n"
    );
    let all = stdout(&w.berth(&["logs", &id]));
    assert!(all.contains("app | ready\n"), "{all}");
    assert_eq!(
        stdout(&w.berth(&["logs", &id, "--since", "2100-01-01T00:00:00Z"])),
        ""
    );
    // Loopback only: network mode none.
    assert_eq!(logs, "ready\nsame-uts\n1\n", "{logs}");
    let listed = parse_json(&w.berth(&["list-tasks", "--desired-status", "STOPPED"]));
    assert_eq!(listed["taskArns"][0], t["taskArn"]);
    w.assert_clean();
}

#[test]
fn oom_kill_is_reported_as_ecs_does() {
    let w = world_with_busybox("task-oom");
    w.register(&json!({
        "family": "hog", "networkMode": "none",
        "containerDefinitions": [{ "name": "hog", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "x=a; while true; do x=$x$x; done"] }]
    }));
    let input = json!({ "taskDefinition": "hog", "startedBy": "json-input" }).to_string();
    let out = run_task(&w, &["--cli-input-json", &input]);
    assert_eq!(out["tasks"][0]["startedBy"], "json-input");
    let id = task_id(&out["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    let c = container(&t, "hog");
    assert_eq!(c["exitCode"], 137, "{t}");
    assert_eq!(
        c["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    w.assert_clean();
}

#[test]
fn stop_task_stops_it_and_gives_back_its_reservation() {
    let w = world_with_busybox("task-stop");
    w.register(&json!({
        "family": "svc", "networkMode": "host",
        "containerDefinitions": [{ "name": "svc", "image": "busybox", "memory": 64, "cpu": 256,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let id =
        task_id(&run_task(&w, &["--task-definition", "svc", "--started-by", "me"])["tasks"][0]);
    let t = w.wait_task(&id, "RUNNING");
    let ci = t["containerInstanceArn"]
        .as_str()
        .expect("instance")
        .to_string();
    let inst =
        parse_json(&w.berth(&["describe-container-instances", "--container-instances", &ci]));
    let remaining = |inst: &Value, name: &str| {
        inst["containerInstances"][0]["remainingResources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name))
            .and_then(|r| r["integerValue"].as_i64())
            .expect("resource")
    };
    let registered = inst["containerInstances"][0]["registeredResources"][1]["integerValue"]
        .as_i64()
        .expect("mem");
    assert_eq!(remaining(&inst, "MEMORY"), registered - 64);
    assert_eq!(inst["containerInstances"][0]["runningTasksCount"], 1);
    let listed = parse_json(&w.berth(&["list-tasks", "--started-by", "me"]));
    assert_eq!(listed["taskArns"].as_array().map(Vec::len), Some(1));

    // ECS Exec into the running container: its exit code comes back.
    let out = w.berth(&[
        "exec",
        "--task",
        &id,
        "--container",
        "svc",
        "--command",
        "hostname; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
    // A DRAINING instance takes no new task.
    let out = w.berth(&[
        "update-container-instances-state",
        "--container-instances",
        &ci,
        "--status",
        "DRAINING",
    ]);
    assert_eq!(
        parse_json(&out)["containerInstances"][0]["status"],
        "DRAINING"
    );
    let refused = run_task(&w, &["--task-definition", "svc"]);
    assert_eq!(refused["failures"][0]["reason"], "AGENT", "{refused}");
    assert_ok(&w.berth(&[
        "update-container-instances-state",
        "--container-instances",
        &ci,
        "--status",
        "ACTIVE",
    ]));

    let out = w.berth(&["stop-task", "--task", &id, "--reason", "maintenance"]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["task"]["desiredStatus"], "STOPPED");
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "maintenance");
    assert_eq!(container(&t, "svc")["exitCode"], 0);
    let inst =
        parse_json(&w.berth(&["describe-container-instances", "--container-instances", &ci]));
    assert_eq!(remaining(&inst, "MEMORY"), registered);
    let usage = parse_json(&w.berth(&["usage"]));
    assert_eq!(usage["usage"][0]["launchType"], "EC2");
    assert!(
        usage["usage"][0]["vcpuSeconds"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{usage}"
    );
    w.assert_clean();
}

#[test]
fn launch_type_and_network_mode_rules() {
    let w = world_with_busybox("task-rules");
    w.register(&json!({
        "family": "ec2only", "networkMode": "none",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32 }]
    }));
    let out = w.berth(&[
        "run-task",
        "--task-definition",
        "ec2only",
        "--launch-type",
        "FARGATE",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not support launch_type FARGATE"),
        "{}",
        stderr(&out)
    );
    w.register(&json!({
        "family": "bridged",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32 }]
    }));
    // bridge mode runs now; host networking is refused for FARGATE.
    let out = w.berth(&["run-task", "--task-definition", "ghost"]);
    assert!(stderr(&out).contains("ClientException"), "{}", stderr(&out));
    let out = w.berth(&["run-task", "--task-definition", "ec2only", "--count", "11"]);
    assert!(stderr(&out).contains("count"), "{}", stderr(&out));
    w.assert_clean();
}

#[test]
fn concurrent_run_tasks_reserve_exactly_the_capacity() {
    let w = world_with_busybox("task-capacity");
    w.register(&json!({
        "family": "small", "networkMode": "none",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 100,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    // An instance that offers 1000 MiB: room for exactly 10 tasks.
    let children: Vec<_> = (0..20)
        .map(|_| {
            w.command()
                .env("BERTH_HOST_MEMORY_MIB", "1000")
                .args(["run-task", "--task-definition", "small"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut placed = Vec::new();
    let mut failures = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_ok(&out);
        let v = parse_json(&out);
        placed.extend(v["tasks"].as_array().cloned().unwrap_or_default());
        for f in v["failures"].as_array().cloned().unwrap_or_default() {
            assert_eq!(f["reason"], "RESOURCE:MEMORY", "{f}");
            failures += 1;
        }
    }
    assert_eq!((placed.len(), failures), (10, 10));
    let ids: Vec<String> = placed.iter().map(task_id).collect();
    for id in &ids {
        w.wait_task(id, "RUNNING");
    }
    for id in &ids {
        assert_ok(&w.berth(&["stop-task", "--task", id]));
    }
    for id in &ids {
        w.wait_task(id, "STOPPED");
    }
    w.assert_clean();
}

#[test]
fn a_killed_cli_leaves_a_consistent_store() {
    let w = world_with_busybox("task-kill-cli");
    w.register(&json!({
            "family": "k", "networkMode": "none",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32, "command": ["true"] }]
        }),
    );
    for _ in 0..5 {
        let mut child = w
            .command()
            .args(["run-task", "--task-definition", "k", "--count", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(15));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Whatever was recorded is whole: every task describes, and each is
    // brought to STOPPED, by its supervisor or, if its run-task died before
    // starting one, by stop-task.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut arns = Vec::new();
        for status in ["RUNNING", "STOPPED"] {
            let listed = parse_json(&w.berth(&["list-tasks", "--desired-status", status]));
            arns.extend(listed["taskArns"].as_array().cloned().unwrap_or_default());
        }
        let mut all_stopped = true;
        for arn in &arns {
            let arn = arn.as_str().expect("arn");
            let t = w.describe_task(arn);
            assert!(t["taskArn"].is_string(), "{t}");
            if t["lastStatus"] != "STOPPED" {
                all_stopped = false;
                let _ = w.berth(&["stop-task", "--task", arn]);
            }
        }
        if all_stopped {
            break;
        }
        assert!(Instant::now() < deadline, "tasks never stopped");
        std::thread::sleep(Duration::from_millis(200));
    }
    w.assert_clean();
}

#[test]
fn start_task_and_a_task_that_fails_to_start() {
    let w = world_with_busybox("task-start");
    w.register(&json!({
            "family": "once", "networkMode": "none",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32, "command": ["true"] }]
        }),
    );
    let ci = parse_json(&w.berth(&["list-container-instances"]))["containerInstanceArns"][0]
        .as_str()
        .expect("instance")
        .to_string();
    let out = w.berth(&[
        "start-task",
        "--task-definition",
        "once",
        "--container-instances",
        &ci,
        "arn:aws:ecs:local:000000000000:container-instance/default/elsewhere",
    ]);
    assert_ok(&out);
    let v = parse_json(&out);
    assert_eq!(v["tasks"][0]["containerInstanceArn"], ci.as_str());
    assert_eq!(v["failures"][0]["reason"], "MISSING");
    let t = w.wait_task(&task_id(&v["tasks"][0]), "STOPPED");
    assert_eq!(container(&t, "a")["exitCode"], 0);

    let out = w.berth(&[
        "register-container-instance",
        "--attributes",
        "name=rack,value=r7",
    ]);
    assert_ok(&out);
    let attrs = parse_json(&out)["containerInstance"]["attributes"].to_string();
    assert!(
        attrs.contains("rack") && attrs.contains("ecs.os-type"),
        "{attrs}"
    );
    let out = w.berth(&[
        "register-container-instance",
        "--attributes",
        "name=ecs.os-type,value=x",
    ]);
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));

    // An image no registry can give: the task fails to start, as ECS says.
    w.register(&json!({
            "family": "nopull", "networkMode": "none",
            "containerDefinitions": [{ "name": "a", "image": "127.0.0.1:9/missing/image:1", "memory": 32 }]
        }),
    );
    let id = task_id(&run_task(&w, &["--task-definition", "nopull"])["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    assert!(
        t["stoppedReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("CannotPullContainerError")),
        "{t}"
    );
    w.assert_clean();
}

#[test]
fn a_task_cgroup_gets_the_task_level_cpu_and_memory() {
    let w = world_with_busybox("task-cgroup");
    // 16 vCPUs: as v2 shares (16384) it is no valid cpu.weight (at most 10000).
    w.register(&json!({
        "family": "big", "networkMode": "none", "cpu": "16384", "memory": "512",
        "containerDefinitions": [{ "name": "a", "image": "busybox",
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }]
    }));
    let out = w
        .command()
        .env("BERTH_HOST_CPU_UNITS", "16384")
        .args(["run-task", "--task-definition", "big"])
        .output()
        .expect("run-task");
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&id, "RUNNING");
    let layout = cgroups::layout();
    let path = format!("/{}/{}", w.cgroup_parent, id);
    let task = Resources {
        cpu_units: Some(16_384),
        memory_mib: Some(512),
        ..Default::default()
    };
    let settings = task.cgroup_settings(layout);
    assert_eq!(settings.len(), 2);
    for s in settings {
        let file = cgroups::dir_of(layout, s.controller, &path).join(s.file);
        let got =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(got.trim(), s.value, "{}", file.display());
    }
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

/// The instance's remaining `name` (CPU or MEMORY).
fn remaining(w: &World, name: &str) -> i64 {
    let ci = parse_json(&w.berth(&["list-container-instances"]))["containerInstanceArns"][0]
        .as_str()
        .expect("instance")
        .to_string();
    let inst =
        parse_json(&w.berth(&["describe-container-instances", "--container-instances", &ci]));
    inst["containerInstances"][0]["remainingResources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .and_then(|r| r["integerValue"].as_i64())
        .expect("resource")
}

/// The audit's FARGATE definition: a volume named as a path, mounted.
fn escaping_definition(volume: &str) -> Value {
    json!({
        "family": "escape", "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "volumes": [{ "name": volume }],
        "containerDefinitions": [{ "name": "app", "image": "busybox", "essential": true,
            "command": ["sh", "-c", "touch /host/escaped"],
            "mountPoints": [{ "sourceVolume": volume, "containerPath": "/host" }] }]
    })
}

#[test]
fn security_a_volume_named_as_a_path_is_refused_and_cannot_escape_when_stored() {
    use berth_orchestrator::store::{Expect, Op, SqliteStore, Store};
    let w = world_with_busybox("security-volume");
    // Registration refuses the audit's definition, naming the field.
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &escaping_definition("../../../../../../../../etc").to_string(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("volumes[0].name"), "{}", stderr(&out));

    // A definition written into the store without registration: on EC2 and
    // with no network, so that only the volume is in question. Its volume
    // would be <root>/escape.
    let outside = w.root.path().join("escape");
    let hostile = "../../../../escape";
    let mut td = escaping_definition(hostile);
    td["requiresCompatibilities"] = json!(["EC2"]);
    td["networkMode"] = json!("none");
    let arn = "arn:aws:ecs:local:000000000000:task-definition/escape:1";
    td["taskDefinitionArn"] = json!(arn);
    td["revision"] = json!(1);
    td["status"] = json!("ACTIVE");
    td["compatibilities"] = json!(["EC2"]);
    let store = SqliteStore::open(&w.root.path().join("state.db")).expect("store");
    let put = |key: &str, value: &Value| Op::Put {
        key: key.to_string(),
        value: serde_json::to_vec(value).expect("json"),
        expect: Expect::Absent,
    };
    store
        .commit(&[
            put("families/escape", &json!({ "latest": 1 })),
            put(
                "taskdefs/escape/0000000001",
                &json!({ "definition": td, "tags": [] }),
            ),
        ])
        .expect("store the definition");
    // run-task checks the stored definition again.
    let out = w.berth(&["run-task", "--task-definition", "escape"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("volumes[0].name"), "{}", stderr(&out));

    // And a task of it, written into the store as well, whose supervisor
    // is started directly: the supervisor refuses it too.
    w.register(&json!({
        "family": "benign", "networkMode": "none",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 32, "command": ["true"] }]
    }));
    let first = task_id(&run_task(&w, &["--task-definition", "benign"])["tasks"][0]);
    let forged = "00000000000000000000000000e5ca9e";
    let stopped = w.wait_task(&first, "STOPPED").to_string();
    let mut task: Value = serde_json::from_str(&stopped.replace(&first, forged)).expect("json");
    task["taskDefinitionArn"] = json!(arn);
    task["lastStatus"] = json!("PROVISIONING");
    task["desiredStatus"] = json!("RUNNING");
    for field in [
        "stopCode",
        "stoppedReason",
        "stoppedAt",
        "stoppingAt",
        "executionStoppedAt",
        "startedAt",
    ] {
        task.as_object_mut().expect("task").remove(field);
    }
    task["containers"][0]["lastStatus"] = json!("PENDING");
    task["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("exitCode");
    // Nothing reserved, so its stop gives nothing back.
    task["x-berth"] = json!({ "reservedCpu": 0, "reservedMemory": 0 });
    store
        .commit(&[put(&format!("tasks/default/{forged}"), &task)])
        .expect("store the task");
    let run_root = w.root.path().join("run");
    // The supervisor's own command line (as run-task starts it).
    let out = std::process::Command::new(berth_tests::berth_bin())
        .env("BERTH_BRIDGE", &w.bridge)
        .env("BERTH_SUBNET", &w.subnet)
        .stdin(Stdio::null())
        .arg("__berth-task")
        .arg(w.root.path())
        .arg(&run_root)
        .arg("default")
        .arg(forged)
        .arg(&w.cgroup_parent)
        .output()
        .expect("start the supervisor");
    assert_ok(&out);
    let t = w.wait_task(forged, "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    assert!(
        t["stoppedReason"]
            .as_str()
            .is_some_and(|r| r.contains("volumes[0].name")),
        "{t}"
    );
    assert!(!outside.exists(), "{} was made", outside.display());
    w.assert_clean();
}

#[test]
fn security_no_new_privileges_is_applied_and_what_cannot_be_is_refused() {
    let w = world_with_busybox("security-nnp");
    w.register(&json!({
        "family": "nnp", "networkMode": "none",
        "containerDefinitions": [
            { "name": "locked", "image": "busybox", "memory": 32, "essential": false,
              "dockerSecurityOptions": ["no-new-privileges"],
              "command": ["grep", "NoNewPrivs", "/proc/self/status"] },
            { "name": "plain", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "sleep 0.5; grep NoNewPrivs /proc/self/status"] }
        ]
    }));
    let id = task_id(&run_task(&w, &["--task-definition", "nnp"])["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(container(&t, "locked")["exitCode"], 0, "{t}");
    let logs = |c: &str| stdout(&w.berth(&["logs", &id, "--container", c]));
    assert_eq!(logs("locked"), "NoNewPrivs:\t1\n");
    assert_eq!(logs("plain"), "NoNewPrivs:\t0\n");
    // An LSM label berth cannot apply is refused, not ignored.
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &json!({
            "family": "label", "networkMode": "none",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32,
                "dockerSecurityOptions": ["apparmor:docker-default"] }]
        })
        .to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("containerDefinitions[0].dockerSecurityOptions[0]"),
        "{}",
        stderr(&out)
    );
    w.assert_clean();
}

#[test]
fn security_fargate_refuses_what_would_reach_the_host() {
    let w = world_with_busybox("security-fargate");
    for (container, field) in [
        (
            json!({ "privileged": true }),
            "containerDefinitions[0].privileged",
        ),
        (
            json!({ "linuxParameters": { "capabilities": { "add": ["SYS_ADMIN"] } } }),
            "containerDefinitions[0].linuxParameters.capabilities.add[0]",
        ),
        (
            json!({ "dockerSecurityOptions": ["no-new-privileges"] }),
            "containerDefinitions[0].dockerSecurityOptions",
        ),
    ] {
        let mut td = escaping_definition("data");
        for (k, v) in container.as_object().expect("object") {
            td["containerDefinitions"][0][k] = v.clone();
        }
        let out = w.berth(&[
            "register-task-definition",
            "--cli-input-json",
            &td.to_string(),
        ]);
        assert!(!out.status.success(), "{field}");
        let err = stderr(&out);
        assert!(
            err.contains("ClientException") && err.contains(field),
            "{field}: {err}"
        );
    }
    w.assert_clean();
}

#[test]
fn security_a_huge_cpu_is_refused_and_capacity_is_unchanged() {
    let w = world_with_busybox("security-bounds");
    w.register(&json!({
        "family": "small", "networkMode": "none",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32, "command": ["true"] }]
    }));
    let cpu_before = remaining(&w, "CPU");
    let memory_before = remaining(&w, "MEMORY");
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &json!({
            "family": "huge", "networkMode": "none",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 32,
                "cpu": 18446744073709551615u64, "command": ["true"] }]
        })
        .to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("containerDefinitions[0].cpu"),
        "{}",
        stderr(&out)
    );
    // An override cannot bring the number back.
    let out = w.berth(&[
        "run-task",
        "--task-definition",
        "small",
        "--overrides",
        r#"{"containerOverrides":[{"name":"a","cpu":9223372036854775808}]}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("overrides.containerOverrides[0].cpu"),
        "{}",
        stderr(&out)
    );
    assert_eq!(remaining(&w, "CPU"), cpu_before);
    assert_eq!(remaining(&w, "MEMORY"), memory_before);
    w.assert_clean();
}

#[test]
fn security_a_255_character_container_name_runs() {
    let w = world_with_busybox("security-long-name");
    let name = "c".repeat(255);
    w.register(&json!({
        "family": "long", "networkMode": "bridge",
        "containerDefinitions": [{ "name": name, "image": "busybox", "memory": 32,
            "command": ["echo", "ran"] }]
    }));
    let id = task_id(&run_task(&w, &["--task-definition", "long"])["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    let c = container(&t, &name);
    assert_eq!(c["exitCode"], 0, "{t}");
    // The runtime id fits the runtime's 128 characters.
    let runtime_id = c["runtimeId"].as_str().expect("runtime id");
    assert!(runtime_id.len() <= 128, "{runtime_id}");
    assert_eq!(stdout(&w.berth(&["logs", &id])), "ran\n");
    w.assert_clean();
}

//! Issue 15: a container's `restartPolicy` restarts it in place (same
//! task, network namespace and root filesystem), the task stays RUNNING
//! and describe-tasks counts the restarts; `ignoredExitCodes` and ECS's
//! attempt period (a run shorter than `restartAttemptPeriod` is not
//! restarted) are honoured.

use std::time::{Duration, Instant};

use berth_tests::{assert_ok, parse_json, patience, stderr, stdout, task_id, World};
use serde_json::{json, Value};

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {task}"))
}

/// ECS's shortest attempt period: each first run below lasts just past it.
const PERIOD: u64 = 60;

#[test]
fn a_container_is_restarted_in_place_and_counted() {
    let w = World::new("restart-policy");
    w.busybox_image("busybox:latest", &[]);
    // First run: note the network namespace and a file in the root
    // filesystem, run past the period, fail. Second run: both still there.
    let app = format!(
        "if [ -f /ran ]; then [ \"$(cat /ran)\" = \"$(readlink /proc/self/ns/net)\" ] && echo again-same-netns; exec sleep 3600; fi; \
         readlink /proc/self/ns/net > /ran; echo first; sleep {}; exit 1",
        PERIOD + 1
    );
    let policy = |ignored: Value| json!({ "enabled": true, "ignoredExitCodes": ignored, "restartAttemptPeriod": PERIOD });
    w.register(&json!({
        "family": "restarts", "networkMode": "none",
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", app], "restartPolicy": policy(json!([])) },
            { "name": "ignored", "image": "busybox", "memory": 32, "essential": false,
              "command": ["sh", "-c", format!("sleep {}; exit 3", PERIOD + 1)],
              "restartPolicy": policy(json!([3])) },
            { "name": "quick", "image": "busybox", "memory": 32, "essential": false,
              "command": ["sh", "-c", "exit 1"], "restartPolicy": policy(json!([])) }
        ]
    }));
    let out = w.berth(&["run-task", "--task-definition", "restarts"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "RUNNING");
    assert_eq!(container(&t, "app")["restartCount"], 0, "{t}");

    // Both long runs end just past the period: `app` comes back, `ignored`
    // (its exit code ignored) does not.
    let deadline = Instant::now() + patience(PERIOD + 60);
    let t = loop {
        let t = w.describe_task(&id);
        let restarted = container(&t, "app")["restartCount"] == 1;
        if restarted && container(&t, "ignored")["lastStatus"] == "STOPPED" {
            break t;
        }
        assert!(t["lastStatus"] != "STOPPED", "the task stopped: {t}");
        assert!(Instant::now() < deadline, "app never restarted: {t}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");
    let app = container(&t, "app");
    assert_eq!(app["lastStatus"], "RUNNING", "{t}");
    assert_eq!(app["exitCode"], 1, "the last run's exit: {t}");
    let ignored = container(&t, "ignored");
    assert_eq!(ignored["exitCode"], 3, "{t}");
    assert_eq!(ignored["restartCount"], 0, "{t}");
    // A run shorter than the period is not restarted: no restart loop.
    let quick = container(&t, "quick");
    assert_eq!(quick["lastStatus"], "STOPPED", "{t}");
    assert_eq!(quick["restartCount"], 0, "{t}");

    // In place: the second run saw the first run's file and namespace.
    let deadline = Instant::now() + patience(20);
    loop {
        let logs = stdout(&w.berth(&["logs", &id, "--container", "app"]));
        if logs == "first\nagain-same-netns\n" {
            break;
        }
        assert!(Instant::now() < deadline, "app's logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A stop is not undone by the policy.
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(container(&t, "app")["restartCount"], 1, "{t}");
    w.assert_clean();
}

#[test]
fn a_restart_policy_out_of_ecs_bounds_is_refused() {
    let w = World::new("restart-bounds");
    for period in [59, 1801] {
        let td = json!({
            "family": "bad", "networkMode": "none",
            "containerDefinitions": [{ "name": "c", "image": "busybox", "memory": 32,
                "restartPolicy": { "enabled": true, "restartAttemptPeriod": period } }]
        });
        let out = w.berth(&[
            "register-task-definition",
            "--cli-input-json",
            &td.to_string(),
        ]);
        assert!(!out.status.success(), "period {period} accepted");
        assert!(
            stderr(&out).contains("containerDefinitions[0].restartPolicy.restartAttemptPeriod"),
            "{}",
            stderr(&out)
        );
    }
}

/// The supervisor of task `id`, by its command line.
fn supervisor_of(w: &World, id: &str) -> Option<i32> {
    w.monitors().into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains(berth_orchestrator::supervisor::SUPERVISOR_ARG) && c.contains(id)
        })
    })
}

#[test]
fn an_adopted_task_restarts_its_containers_in_place_too() {
    let w = World::new("restart-adopted");
    w.busybox_image("busybox:latest", &[]);
    let app = format!(
        "if [ -f /ran ]; then echo again; exec sleep 3600; fi; touch /ran; echo first; sleep {}; exit 1",
        PERIOD + 1
    );
    w.register(&json!({
        "family": "adopted", "networkMode": "none",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 32,
            "command": ["sh", "-c", app],
            "restartPolicy": { "enabled": true, "restartAttemptPeriod": PERIOD } }]
    }));
    let out = w.berth(&["run-task", "--task-definition", "adopted"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&id, "RUNNING");
    // The supervisor dies during the first run; the container runs on.
    let old = supervisor_of(&w, &id).expect("a supervisor");
    // SAFETY: kill(2) on a pid this test found; no memory is involved.
    unsafe {
        libc::kill(old, libc::SIGKILL);
    }
    let deadline = Instant::now() + patience(10);
    while std::path::Path::new(&format!("/proc/{old}")).exists() {
        assert!(Instant::now() < deadline, "supervisor {old} did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = w.berth(&["reconcile", "--cluster", "default"]);
    assert_ok(&out);
    assert_eq!(
        parse_json(&out)["tasksAdopted"],
        json!([id]),
        "{}",
        stdout(&out)
    );
    // The adopter restarts it when the first run fails past the period.
    let deadline = Instant::now() + patience(PERIOD + 60);
    let t = loop {
        let t = w.describe_task(&id);
        if container(&t, "app")["restartCount"] == 1 {
            break t;
        }
        assert!(t["lastStatus"] != "STOPPED", "the task stopped: {t}");
        assert!(Instant::now() < deadline, "app never restarted: {t}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");
    assert_eq!(container(&t, "app")["lastStatus"], "RUNNING", "{t}");
    // In place: the second run found the first run's file.
    let deadline = Instant::now() + patience(20);
    loop {
        let logs = stdout(&w.berth(&["logs", &id, "--container", "app"]));
        if logs == "first\nagain\n" {
            break;
        }
        assert!(Instant::now() < deadline, "app's logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(container(&t, "app")["restartCount"], 1, "{t}");
    w.assert_clean();
}

//! Density (issue 16): many tasks on one host start, answer, stop and leave
//! nothing behind. Not timed: how fast and how small is
//! scripts/bench_density.py's business (`make bench`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::{assert_ok, parse_json, patience, stdout, task_ids, World};
use serde_json::{json, Value};

const TASKS: usize = 200;
/// run-task commands in flight at once, as scripts/bench_density.py.
const WAVE: usize = 5;

/// `lastStatus` of every task in `ids`, by describe-tasks batches of 100.
fn statuses(w: &World, ids: &[String]) -> Vec<Value> {
    let mut tasks = Vec::new();
    for batch in ids.chunks(100) {
        let mut args = vec!["describe-tasks", "--tasks"];
        args.extend(batch.iter().map(String::as_str));
        let out = w.berth(&args);
        assert_ok(&out);
        let v = parse_json(&out);
        assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "{v}");
        tasks.extend(v["tasks"].as_array().cloned().unwrap_or_default());
    }
    tasks
}

/// Wait until every task in `ids` is `status`; a task STOPPED on the way to
/// RUNNING fails at once.
fn wait_all(w: &World, ids: &[String], status: &str) {
    let deadline = Instant::now() + patience(300);
    loop {
        let tasks = statuses(w, ids);
        assert_eq!(tasks.len(), ids.len());
        if tasks.iter().all(|t| t["lastStatus"] == status) {
            return;
        }
        if status != "STOPPED" {
            let stopped: Vec<_> = tasks
                .iter()
                .filter(|t| t["lastStatus"] == "STOPPED")
                .collect();
            assert!(stopped.is_empty(), "stopped before {status}: {stopped:?}");
        }
        let behind = tasks.iter().filter(|t| t["lastStatus"] != status).count();
        assert!(
            Instant::now() < deadline,
            "{behind} of {} tasks never reached {status}",
            ids.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// 20 × `run-task --count 10`, WAVE at a time, on an instance that offers
/// room for all 200 (memory 8 each).
fn start_all(w: &World) -> Vec<String> {
    let mut ids = Vec::new();
    let batches = [10usize; TASKS / 10];
    for wave in batches.chunks(WAVE) {
        let children: Vec<_> = wave
            .iter()
            .map(|count| {
                w.command()
                    .env("BERTH_HOST_MEMORY_MIB", (TASKS * 8 + 1024).to_string())
                    .args(["run-task", "--task-definition", "dense", "--count"])
                    .arg(count.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn run-task")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait run-task");
            assert_ok(&out);
            let v = parse_json(&out);
            assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "{v}");
            ids.extend(task_ids(&v));
        }
    }
    ids
}

/// The task's own metadata, fetched from inside it: the endpoint its
/// supervisor serves answers with this task's ARN.
fn metadata_answers(w: &World, id: &str) {
    let out = w.berth(&[
        "execute-command",
        "--task",
        id,
        "--container",
        "app",
        "--command",
        "wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task",
        "--interactive",
    ]);
    assert_ok(&out);
    let body: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("metadata of {id} is not JSON ({e}): {}", stdout(&out)));
    let arn = body["TaskARN"].as_str().unwrap_or_default();
    assert!(arn.ends_with(&format!("/{id}")), "{id}: {body}");
    assert_eq!(body["KnownStatus"], "RUNNING", "{body}");
}

#[test]
fn two_hundred_tasks_start_answer_stop_and_leave_nothing() {
    let w = World::new("density");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "dense", "networkMode": "none",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 8,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"] }]
    }));

    let ids = start_all(&w);
    assert_eq!(ids.len(), TASKS);
    wait_all(&w, &ids, "RUNNING");

    // They answer: listed, described whole, and a few serve their metadata.
    let listed = parse_json(&w.berth(&["list-tasks"]));
    let mut arns: Vec<String> = listed["taskArns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    arns.sort();
    let mut want: Vec<String> = statuses(&w, &ids)
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap_or_default().to_string())
        .collect();
    want.sort();
    assert_eq!(arns, want, "list-tasks lists every running task");
    for id in ids.iter().step_by(TASKS / 5) {
        metadata_answers(&w, id);
    }
    // One supervisor and one monitor per task, each still there.
    assert_eq!(w.monitors().len(), 2 * TASKS, "supervisors + monitors");

    for id in &ids {
        assert_ok(&w.berth(&["stop-task", "--task", id]));
    }
    wait_all(&w, &ids, "STOPPED");
    for t in statuses(&w, &ids) {
        assert_eq!(t["stopCode"], "UserInitiated", "{t}");
    }
    w.assert_clean();
    // No task's namespace file is left (assert_clean sees their bind
    // mounts; the files themselves go too).
    let mut left = Vec::new();
    namespace_files(w.root.path(), &mut left);
    assert!(left.is_empty(), "namespace files left: {left:?}");
}

/// Files in any `ns` or `ns-<container>` directory below `dir`: where the
/// supervisors bind their tasks' namespaces.
fn namespace_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            namespace_files(&path, out);
        } else if dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "ns" || n.starts_with("ns-"))
        {
            out.push(path);
        }
    }
}

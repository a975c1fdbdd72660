//! The host agent's housekeeping end to end (issue 15), configured as the
//! ECS agent is, with its names: STOPPED tasks removed after
//! ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION by `berth system gc` and by the
//! agent loop (record, logs, directories), unused images collected while
//! a running task's image is kept, and the reserved ports, reserved memory
//! and instance attributes of the agent's settings file at registration.
//! Real busybox tasks, the embedded SQLite store.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_tests::{assert_ok, free_port, parse_json, patience, stderr, task_id, World};
use serde_json::{json, Value};

fn world(name: &str) -> World {
    let w = World::new(name);
    w.busybox_image("busybox:latest", &[]);
    w
}

/// A one-container definition running `script`.
fn register(w: &World, family: &str, script: &str) {
    w.register(&json!({
        "family": family, "networkMode": "none",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 32,
            "command": ["sh", "-c", script] }]
    }));
}

const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

fn run_task(w: &World, args: &[&str]) -> Value {
    let mut all = vec!["run-task"];
    all.extend_from_slice(args);
    let out = w.berth(&all);
    assert_ok(&out);
    parse_json(&out)
}

fn run(w: &World, family: &str) -> String {
    let v = run_task(w, &["--task-definition", family]);
    task_id(&v["tasks"][0])
}

/// describe-tasks of `id`: its failure's reason, None while it exists.
fn missing_reason(w: &World, id: &str) -> Option<String> {
    let v = parse_json(&w.berth(&["describe-tasks", "--tasks", id]));
    if v["tasks"].as_array().is_some_and(|t| !t.is_empty()) {
        return None;
    }
    v["failures"][0]["reason"].as_str().map(str::to_string)
}

/// What is left on the host of task `id`, by name, anywhere under the
/// world's root: its logs, run directory, containers, root filesystems.
fn leftovers(w: &World, id: &str) -> Vec<PathBuf> {
    let root = w.root.path();
    let mut found = Vec::new();
    for dir in [
        root.join("tasks"),
        root.join("run/tasks"),
        root.join("run/containers"),
        root.join("images/snapshots"),
    ] {
        found.extend(
            std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(id))
                }),
        );
    }
    found
}

fn gc(w: &World, flags: &[&str]) -> Value {
    let mut args = vec!["system", "gc"];
    args.extend_from_slice(flags);
    let out = w.berth(&args);
    assert_ok(&out);
    parse_json(&out)
}

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

/// The agent's settings file, in the world's root.
fn config_file(w: &World, text: &str) -> PathBuf {
    let path = w.root.path().join("agent.config");
    std::fs::write(&path, text).expect("write the agent's settings");
    path
}

fn agent_log(w: &World) -> String {
    std::fs::read_to_string(w.root.path().join("agent.log")).unwrap_or_default()
}

/// The host's container instance, once the agent registered it.
fn registered_instance(w: &World) -> Value {
    wait_for("the agent's registration", || {
        let out = w.berth(&["list-container-instances"]);
        let arn = parse_json(&out)["containerInstanceArns"][0]
            .as_str()?
            .to_string();
        let d = parse_json(&w.berth(&[
            "describe-container-instances",
            "--container-instances",
            &arn,
        ]));
        let ci = d["containerInstances"][0].clone();
        // The agent's registration has the version the agent set.
        ci["versionInfo"]["agentVersion"].is_string().then_some(ci)
    })
}

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|r| r["name"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn stopped_tasks_are_removed_after_their_wait_by_gc_and_by_the_agent() {
    let w = world("hk-tasks");
    register(&w, "echo", "echo done-4c1f");
    let id = run(&w, "echo");
    w.wait_task(&id, "STOPPED");
    assert!(
        w.root.path().join("tasks").join(&id).is_dir(),
        "its logs are kept after it stopped"
    );
    assert_eq!(berth_tests::stdout(&w.berth(&["logs", &id])), "done-4c1f\n");
    // Within its wait: kept, by default (3 h) and when asked for 1 h.
    for flags in [&[][..], &["--task-cleanup-wait", "1h"]] {
        let report = gc(&w, flags);
        assert_eq!(report["tasksRemoved"], json!([]), "{report}");
        assert_eq!(missing_reason(&w, &id), None);
    }
    // Past it: the record goes (describe-tasks answers MISSING, as ECS
    // does for a task it forgot), and everything the host kept of it.
    let report = gc(&w, &["--task-cleanup-wait", "0s"]);
    let removed = report["tasksRemoved"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        removed
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.ends_with(&id))),
        "{report}"
    );
    assert_eq!(missing_reason(&w, &id).as_deref(), Some("MISSING"));
    assert_eq!(leftovers(&w, &id), Vec::<PathBuf>::new());
    // A bad wait is refused, naming the flag.
    let out = w.berth(&["system", "gc", "--task-cleanup-wait", "3 hours"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--task-cleanup-wait"),
        "{}",
        stderr(&out)
    );

    // The agent: its settings file says 1 s; a running task stays.
    let cfg = config_file(&w, "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1s\n");
    let cfg = cfg.display().to_string();
    let _agent = w.agent(&["--interval", "1", "--config", &cfg], &[]);
    registered_instance(&w);
    register(&w, "loop", LOOP);
    let running = run(&w, "loop");
    w.wait_task(&running, "RUNNING");
    let done = run(&w, "echo");
    wait_for("the agent to remove the stopped task", || {
        missing_reason(&w, &done).filter(|r| r == "MISSING")
    });
    wait_for("the stopped task's files to go", || {
        leftovers(&w, &done).is_empty().then_some(())
    });
    assert_eq!(missing_reason(&w, &running), None, "a running task is kept");
    assert_ok(&w.berth(&["stop-task", "--task", &running]));
    w.wait_task(&running, "STOPPED");
    wait_for("the agent to remove the stopped task", || {
        missing_reason(&w, &running).filter(|r| r == "MISSING")
    });
    wait_for("its files to go", || {
        leftovers(&w, &running).is_empty().then_some(())
    });
    w.assert_clean();
}

/// The names `berth image ls` lists.
fn image_names(w: &World) -> Vec<String> {
    let out = w.berth(&["image", "ls"]);
    assert_ok(&out);
    let v = parse_json(&out);
    let list = v["images"].as_array().cloned().unwrap_or_default();
    list.iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

fn has(names: &[String], short: &str) -> bool {
    names.iter().any(|n| n.ends_with(short))
}

#[test]
fn unused_images_are_collected_and_a_running_tasks_image_is_kept() {
    let w = world("hk-images");
    // Their own configs (so their own manifests): only a name apart from
    // busybox's, an image would share its manifest, which the running
    // task's root filesystem holds.
    w.busybox_image("old-one:1", &["--env", "WHICH=one"]);
    w.busybox_image("old-two:1", &["--env", "WHICH=two"]);
    register(&w, "loop", LOOP);
    let id = run(&w, "loop");
    w.wait_task(&id, "RUNNING");
    // Younger than the minimum age (1 h by default): kept.
    let report = gc(&w, &["--images"]);
    assert_eq!(report["imagesRemoved"], json!([]), "{report}");
    // One a cycle, the least recently used (here: the oldest) first.
    let report = gc(
        &w,
        &[
            "--images",
            "--image-minimum-cleanup-age",
            "0s",
            "--images-delete-per-cycle",
            "1",
        ],
    );
    let removed: Vec<String> = berth_tests::strings(&report["imagesRemoved"]);
    assert_eq!(removed.len(), 1, "{report}");
    assert!(removed[0].contains("old-one"), "{report}");
    let names = image_names(&w);
    assert!(
        !has(&names, "old-one:1") && has(&names, "old-two:1"),
        "{names:?}"
    );
    // Then the rest that is unused; busybox, which the running task uses,
    // never.
    let report = gc(&w, &["--images", "--image-minimum-cleanup-age", "0s"]);
    let removed = berth_tests::strings(&report["imagesRemoved"]);
    assert_eq!(removed.len(), 1, "{report}");
    assert!(removed[0].contains("old-two"), "{report}");
    let names = image_names(&w);
    assert!(has(&names, "busybox:latest"), "{names:?}");
    assert!(!has(&names, "old-two:1"), "{names:?}");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    // Without --images: images are not touched.
    let report = gc(&w, &["--image-minimum-cleanup-age", "0s"]);
    assert_eq!(report["imagesRemoved"], json!([]), "{report}");
    w.assert_clean();
}

#[test]
fn the_agents_settings_reserve_ports_and_memory_and_set_attributes() {
    let w = world("hk-reserve");
    let port = free_port();
    let cfg = config_file(
        &w,
        &format!(
            "# as /etc/ecs/ecs.config\n\
             ECS_RESERVED_MEMORY=100\n\
             ECS_RESERVED_PORTS=[22, {port}]\n\
             ECS_INSTANCE_ATTRIBUTES={{\"stack\": \"blue-7d2e\"}}\n\
             ECS_SOMETHING_ELSE=1\n"
        ),
    );
    // A bad value stops the agent before it joins, naming key and file.
    let bad = config_file_at(&w, "bad.config", "ECS_RESERVED_PORTS=22,80\n");
    let out = w.berth(&["agent", "--config", &bad.display().to_string()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("ECS_RESERVED_PORTS in {}", bad.display())),
        "{err}"
    );
    let cfg = cfg.display().to_string();
    let _agent = w.agent(
        &["--interval", "1", "--config", &cfg],
        &[("BERTH_HOST_MEMORY_MIB", "512")],
    );
    let ci = registered_instance(&w);
    assert_eq!(
        resource(&ci["registeredResources"], "MEMORY")["integerValue"],
        412,
        "{ci}"
    );
    assert_eq!(
        resource(&ci["remainingResources"], "MEMORY")["integerValue"],
        412,
        "{ci}"
    );
    let ports =
        berth_tests::strings(&resource(&ci["registeredResources"], "PORTS")["stringSetValue"]);
    assert_eq!(ports, ["22".to_string(), port.to_string()], "{ci}");
    assert!(
        agent_log(&w).contains("ECS_SOMETHING_ELSE"),
        "an unknown key is warned about: {}",
        agent_log(&w)
    );
    // The attribute: listed, and placement's memberOf reads it.
    let out = w.berth(&[
        "list-attributes",
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
    ]);
    assert_ok(&out);
    let attrs = parse_json(&out)["attributes"].clone();
    assert_eq!(attrs[0]["value"], "blue-7d2e", "{attrs}");
    register(&w, "loop", LOOP);
    let refused = run_task(
        &w,
        &[
            "--task-definition",
            "loop",
            "--placement-constraints",
            r#"[{"type":"memberOf","expression":"attribute:stack == green"}]"#,
        ],
    );
    assert_eq!(refused["tasks"], json!([]), "{refused}");
    let placed = run_task(
        &w,
        &[
            "--task-definition",
            "loop",
            "--placement-constraints",
            r#"[{"type":"memberOf","expression":"attribute:stack == blue-7d2e"}]"#,
        ],
    );
    let id = task_id(&placed["tasks"][0]);
    w.wait_task(&id, "RUNNING");
    // The task's 32 MiB come out of what is left after the reserve.
    let ci = registered_instance(&w);
    assert_eq!(
        resource(&ci["remainingResources"], "MEMORY")["integerValue"],
        380,
        "{ci}"
    );
    // A task asking for a reserved host port is refused as ECS refuses it.
    w.register(&json!({
        "family": "web", "networkMode": "bridge",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 32,
            "command": ["sh", "-c", LOOP],
            "portMappings": [{ "containerPort": 80, "hostPort": port }] }]
    }));
    let refused = run_task(&w, &["--task-definition", "web"]);
    assert_eq!(
        refused["failures"][0]["reason"], "RESOURCE:PORTS",
        "{refused}"
    );
    assert_eq!(refused["tasks"], json!([]), "{refused}");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

fn config_file_at(w: &World, name: &str, text: &str) -> PathBuf {
    let path: PathBuf = Path::new(w.root.path()).join(name);
    std::fs::write(&path, text).expect("write a settings file");
    path
}

/// run-task of `family` with `ECS_IMAGE_PULL_BEHAVIOR=behavior` (the CLI
/// path reads the agent's settings too), waited until STOPPED: its stop
/// reason, None when it ran (exit 0).
fn run_pulling(w: &World, family: &str, behavior: &str, registry: &str) -> Option<String> {
    let out = w
        .command()
        .args(["run-task", "--task-definition", family])
        .env("ECS_IMAGE_PULL_BEHAVIOR", behavior)
        .env("BERTH_INSECURE_REGISTRIES", registry)
        .output()
        .expect("run-task");
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    if t["containers"][0]["exitCode"] == 0 {
        return None;
    }
    Some(t["stoppedReason"].as_str().unwrap_or_default().to_string())
}

#[test]
fn image_pull_behaviours_decide_when_a_tasks_image_is_pulled() {
    use berth_tests::oci::Registry;
    let w = world("hk-pull");
    // A real registry on loopback holding busybox as lab/bb.
    let layout = tempfile::tempdir().expect("dir");
    let dest = format!("oci:{}:latest", layout.path().display());
    assert_ok(&w.berth(&["image", "export", "busybox", &dest]));
    let registry = Registry::start(None);
    registry.push(layout.path(), "lab/bb:latest", None);
    let addr = registry.addr.clone();
    let pulled = format!("{addr}/lab/bb:latest");
    // The same image imported under a name of that registry: in the
    // store, never pulled by a task.
    let imported = format!("{addr}/lab/imported:1");
    w.busybox_image(&imported, &[]);
    for (family, image) in [("pulled", &pulled), ("imported", &imported)] {
        w.register(&json!({
            "family": family, "networkMode": "none",
            "containerDefinitions": [{ "name": "app", "image": image, "memory": 32,
                "command": ["true"] }]
        }));
    }
    // Missing: pulled (once records the pull).
    assert_eq!(run_pulling(&w, "pulled", "once", &addr), None);
    // The registry gone, what each behaviour does with a cached image.
    drop(registry);
    assert_eq!(
        run_pulling(&w, "pulled", "once", &addr),
        None,
        "pulled before: cached"
    );
    assert_eq!(run_pulling(&w, "pulled", "default", &addr), None);
    assert_eq!(run_pulling(&w, "pulled", "prefer-cached", &addr), None);
    let always = run_pulling(&w, "pulled", "always", &addr).expect("always pulls");
    assert!(always.starts_with("CannotPullContainerError"), "{always}");
    assert_eq!(run_pulling(&w, "imported", "prefer-cached", &addr), None);
    let once = run_pulling(&w, "imported", "once", &addr).expect("once pulls what no task pulled");
    assert!(once.starts_with("CannotPullContainerError"), "{once}");
    // A bad value is refused before anything starts, naming its source.
    let out = w
        .command()
        .args(["run-task", "--task-definition", "pulled"])
        .env("ECS_IMAGE_PULL_BEHAVIOR", "sometimes")
        .output()
        .expect("run-task");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("ECS_IMAGE_PULL_BEHAVIOR in the environment"),
        "{}",
        stderr(&out)
    );
    w.assert_clean();
}

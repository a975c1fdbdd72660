//! Issue 15: `logConfiguration` through the real binary: unsupported
//! drivers and bad options refused at registration naming the field;
//! json-file's `max-size` and `max-file` honoured by real containers.

mod api_world;

use api_world::{write_file, Aws, Served};
use berth_tests::{assert_ok, parse_json, stderr, task_id, World};
use serde_json::{json, Value};

fn td(family: &str, command: &str, logs: Value) -> Value {
    json!({
        "family": family, "networkMode": "none",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 32,
            "command": ["sh", "-c", command], "logConfiguration": logs }]
    })
}

fn register(w: &World, td: &Value) -> std::process::Output {
    w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &td.to_string(),
    ])
}

#[test]
fn unsupported_drivers_and_bad_options_are_refused_naming_the_field() {
    let w = World::new("logs-refused");
    for (logs, field) in [
        (
            json!({ "logDriver": "splunk", "options": {} }),
            "containerDefinitions[0].logConfiguration.logDriver",
        ),
        (
            json!({ "logDriver": "json-file", "options": { "max-size": "lots" } }),
            "containerDefinitions[0].logConfiguration.options.max-size",
        ),
        (
            json!({ "logDriver": "awslogs", "options": { "awslogs-region": "us-east-1" } }),
            "containerDefinitions[0].logConfiguration.options.awslogs-group",
        ),
        (
            json!({ "logDriver": "syslog", "options": { "syslog-address": "http://x:1" } }),
            "containerDefinitions[0].logConfiguration.options.syslog-address",
        ),
    ] {
        let out = register(&w, &td("bad", "true", logs.clone()));
        assert!(!out.status.success(), "{logs} accepted");
        assert!(stderr(&out).contains(field), "{logs}: {}", stderr(&out));
    }
    // Nothing was registered.
    let out = w.berth(&["list-task-definitions"]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["taskDefinitionArns"], json!([]));
    for driver in [
        "json-file",
        "awslogs",
        "syslog",
        "journald",
        "fluentd",
        "none",
    ] {
        let options = match driver {
            "awslogs" => json!({ "awslogs-group": "/ecs/app", "awslogs-stream-prefix": "ecs" }),
            "fluentd" => json!({ "fluentd-address": "127.0.0.1:24224" }),
            _ => json!({}),
        };
        let logs = json!({ "logDriver": driver, "options": options });
        assert_ok(&register(&w, &td("good", "true", logs)));
    }
}

#[test]
fn json_file_rotates_at_max_size_and_keeps_max_file_files() {
    let w = World::new("logs-json-file");
    w.busybox_image("busybox:latest", &[]);
    let logs =
        json!({ "logDriver": "json-file", "options": { "max-size": "1k", "max-file": "2" } });
    let command = "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done";
    w.register(&td("rotating", command, logs));
    let out = w.berth(&["run-task", "--task-definition", "rotating"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    let dir = w.root.path().join("tasks").join(&id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("task log dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.log"))
        .collect();
    files.sort();
    assert_eq!(files, ["app.log", "app.log.1"], "in {}", dir.display());
    for f in &files {
        let len = std::fs::metadata(dir.join(f)).expect("log").len();
        assert!(len <= 1024, "{f}: {len} bytes");
    }
    // What is kept is the end of the output.
    let kept = berth_tests::stdout(&w.berth(&["logs", &id]));
    assert!(kept.ends_with("line-199\n"), "{kept}");
    assert!(!kept.contains("line-0\n"), "{kept}");
    w.assert_clean();
}

#[test]
fn awslogs_streams_are_named_as_ecs_names_them_and_outlive_the_task() {
    let w = World::new("logs-awslogs");
    w.busybox_image("busybox:latest", &[]);
    let logs = |prefix: &str| {
        json!({ "logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": prefix } })
    };
    w.register(&json!({
        "family": "web", "networkMode": "none",
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "echo hello from app; echo oops >&2"], "logConfiguration": logs("ecs") },
            { "name": "side", "image": "busybox", "memory": 32, "essential": false,
              "command": ["sh", "-c", "echo hello from side"], "logConfiguration": logs("other") }
        ]
    }));
    let out = w.berth(&["run-task", "--task-definition", "web"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&id, "STOPPED");
    // The task's own logs still read it while the task is known.
    let own = berth_tests::stdout(&w.berth(&["logs", &id, "--container", "app"]));
    assert_eq!(own, "hello from app\noops\n");
    // The group, by stream prefix: ECS's names, prefix/container/task-id.
    let group = |prefix: Option<&str>| {
        let mut args = vec!["logs", "--log-group", "/ecs/web"];
        args.extend(
            prefix
                .map(|p| ["--log-stream-prefix", p])
                .into_iter()
                .flatten(),
        );
        let out = w.berth(&args);
        assert_ok(&out);
        berth_tests::stdout(&out)
    };
    let ecs = group(Some("ecs/"));
    assert_eq!(
        ecs,
        format!("ecs/app/{id} | hello from app\necs/app/{id} | oops\n"),
        "{ecs}"
    );
    let all = group(None);
    assert!(
        all.contains(&format!("other/side/{id} | hello from side\n")),
        "{all}"
    );
    assert!(all.contains(&format!("ecs/app/{id} | oops\n")), "{all}");
    // It outlives the task: its records and files cleaned up, the group
    // still reads.
    w.assert_clean();
    let task_dir = w.root.path().join("tasks").join(&id);
    if task_dir.exists() {
        std::fs::remove_dir_all(&task_dir).expect("remove the task's directory");
    }
    assert_eq!(group(Some("ecs/")), ecs);
    // An unknown group is an error naming it.
    let out = w.berth(&["logs", "--log-group", "/ecs/none"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/ecs/none"), "{}", stderr(&out));
}

#[test]
fn the_none_driver_keeps_nothing() {
    let w = World::new("logs-none");
    w.busybox_image("busybox:latest", &[]);
    w.register(&td(
        "silent",
        "echo not kept; echo nor this >&2",
        json!({ "logDriver": "none" }),
    ));
    let out = w.berth(&["run-task", "--task-definition", "silent"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    let out = w.berth(&["logs", &id]);
    assert_ok(&out);
    assert_eq!(berth_tests::stdout(&out), "");
    let log = w.root.path().join("tasks").join(&id).join("app.log");
    let kept = std::fs::read(&log).unwrap_or_default();
    assert!(kept.is_empty(), "{}", String::from_utf8_lossy(&kept));
    w.assert_clean();
}

/// The real clients through `berth serve`: aws-cli v1 and v2 register a
/// restart policy and an awslogs configuration and get them back as
/// given; an unsupported driver is a ClientException naming the field.
#[test]
fn the_aws_clients_register_restart_policies_and_log_configurations() {
    let s = Served::new("logs-api");
    // Debian's aws-cli v2 predates restartPolicy (its model refuses it
    // client-side): v1 (PyPI) sends it.
    let container = |cli: Aws, logs: Value| {
        let mut c =
            json!({ "name": "app", "image": "busybox", "memory": 32, "logConfiguration": logs });
        if cli == Aws::V1 {
            c["restartPolicy"] =
                json!({ "enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60 });
        }
        json!({ "family": "api-logs", "networkMode": "none", "containerDefinitions": [c] })
    };
    let logs = json!({ "logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/api", "awslogs-stream-prefix": "ecs" } });
    for cli in [Aws::V1, Aws::V2] {
        let td = write_file(
            &s.world,
            "td.json",
            &container(cli, logs.clone()).to_string(),
        );
        let reg = s.aws_ok(cli, &["register-task-definition", "--cli-input-json", &td]);
        let def = &reg["taskDefinition"]["containerDefinitions"][0];
        assert_eq!(def["logConfiguration"], logs, "{reg}");
        if cli == Aws::V1 {
            let policy = &def["restartPolicy"];
            assert_eq!(policy["restartAttemptPeriod"], 60, "{reg}");
            assert_eq!(policy["ignoredExitCodes"], json!([0]), "{reg}");
        }
        let bad = json!({ "logDriver": "gelf", "options": {} });
        let td = write_file(&s.world, "bad.json", &container(cli, bad).to_string());
        let out = s.aws(cli, &["register-task-definition", "--cli-input-json", &td]);
        assert!(!out.status.success(), "gelf accepted");
        let err = stderr(&out);
        assert!(err.contains("ClientException"), "{err}");
        assert!(
            err.contains("containerDefinitions[0].logConfiguration.logDriver"),
            "{err}"
        );
    }
}

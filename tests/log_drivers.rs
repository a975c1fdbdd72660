//! Issue 15: `logConfiguration` through the real binary: unsupported
//! drivers and bad options refused at registration naming the field;
//! json-file's `max-size` and `max-file` honoured by real containers;
//! syslog, journald and fluentd lines forwarded to receivers the tests
//! start (see log_receivers.rs).

mod api_world;
mod log_receivers;

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

/// Runs `family` and waits for it to stop; returns the task's id.
fn run_to_stop(w: &World, family: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = w.command();
    cmd.envs(env.iter().copied())
        .args(["run-task", "--task-definition", family]);
    let out = cmd.output().expect("run berth");
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    for c in t["containers"].as_array().expect("containers") {
        assert_eq!(c["exitCode"], 0, "{t}");
    }
    id
}

#[test]
fn syslog_lines_reach_udp_and_unix_receivers_framed_as_docker_frames_them() {
    let w = World::new("logs-syslog");
    w.busybox_image("busybox:latest", &[]);
    let udp = log_receivers::Datagrams::udp();
    let sock = w.root.path().join("syslog.sock");
    let unix = log_receivers::Datagrams::unix(&sock);
    w.register(&json!({
        "family": "syslogged", "networkMode": "none",
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "echo to syslog; echo oops >&2"],
              "logConfiguration": { "logDriver": "syslog", "options": {
                  "syslog-address": format!("udp://127.0.0.1:{}", udp.port()),
                  "syslog-facility": "local3", "syslog-format": "rfc5424",
                  "tag": "{{.Name}}" } } },
            { "name": "side", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "echo hello side"],
              "logConfiguration": { "logDriver": "syslog", "options": {
                  "syslog-address": format!("unixgram://{}", sock.display()) } } }
        ]
    }));
    let id = run_to_stop(&w, "syslogged", &[]);
    let mut got = udp.take(2);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    // local3 (19) * 8 + err (3) / info (6); RFC 5424 with the tag as
    // APP-NAME and MSGID.
    assert!(got[0].starts_with("<155>1 "), "{got:?}");
    assert!(got[0].ends_with(" app - oops\n"), "{got:?}");
    assert!(got[1].starts_with("<158>1 "), "{got:?}");
    assert!(got[1].ends_with(" app - to syslog\n"), "{got:?}");
    let fields: Vec<&str> = got[1].split(' ').collect();
    assert_eq!(fields[3], "app", "{got:?}");
    assert!(fields[4].parse::<u32>().is_ok(), "a pid: {got:?}");
    // Docker's defaults: daemon (3) * 8 + info, the short id as the tag,
    // srslog's local format.
    let side = unix.take(1);
    assert_eq!(side.len(), 1, "{side:?}");
    let short = &id[..12];
    assert!(side[0].starts_with("<30>"), "{side:?}");
    assert!(side[0].contains(&format!(" {short}[")), "{side:?}");
    assert!(side[0].ends_with("]: hello side\n"), "{side:?}");
    // The local log still reads (Docker's dual logging).
    let own = berth_tests::stdout(&w.berth(&["logs", &id, "--container", "app"]));
    assert_eq!(own, "to syslog\noops\n");
    w.assert_clean();
}

#[test]
fn journald_lines_reach_the_real_journal_with_dockers_fields() {
    let w = World::new("logs-journald");
    w.busybox_image("busybox:latest", &[]);
    let journal = log_receivers::Journal::start("jd");
    w.register(&td(
        "journaled",
        "echo to the journal; echo oops >&2",
        json!({ "logDriver": "journald", "options": { "tag": "web-{{.Name}}" } }),
    ));
    let id = run_to_stop(
        &w,
        "journaled",
        &[("BERTH_JOURNAL_NAMESPACE", journal.namespace.as_str())],
    );
    let entries = journal.entries("app", 2);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let by_message = |m: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == m)
            .unwrap_or_else(|| panic!("no {m:?} in {entries:?}"))
    };
    let out = by_message("to the journal");
    let err = by_message("oops");
    assert_eq!(out["PRIORITY"], "6", "{out}");
    assert_eq!(err["PRIORITY"], "3", "{err}");
    let full = format!("{id}-app");
    for e in [out, err] {
        assert_eq!(e["CONTAINER_NAME"], "app", "{e}");
        assert_eq!(e["CONTAINER_ID"], &full[..12], "{e}");
        assert_eq!(e["CONTAINER_ID_FULL"], full.as_str(), "{e}");
        assert_eq!(e["CONTAINER_TAG"], "web-app", "{e}");
        assert_eq!(e["SYSLOG_IDENTIFIER"], "web-app", "{e}");
    }
    w.assert_clean();
}

#[test]
fn fluentd_events_reach_a_forward_receiver_and_an_absent_one_never_blocks() {
    let w = World::new("logs-fluentd");
    w.busybox_image("busybox:latest", &[]);
    let receiver = log_receivers::Forward::start();
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let many = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done";
    w.register(&json!({
        "family": "forwarded", "networkMode": "none",
        "containerDefinitions": [
            { "name": "app", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", "echo to fluentd; echo oops >&2"],
              "logConfiguration": { "logDriver": "fluentd", "options": {
                  "fluentd-address": format!("127.0.0.1:{}", receiver.port),
                  "tag": "docker.{{.Name}}" } } },
            { "name": "lost", "image": "busybox", "memory": 32,
              "command": ["sh", "-c", many],
              "logConfiguration": { "logDriver": "fluentd", "options": {
                  "fluentd-address": format!("tcp://127.0.0.1:{closed}"),
                  "fluentd-async": "true", "fluentd-buffer-limit": "4k",
                  "fluentd-retry-wait": "1h" } } }
        ]
    }));
    let id = run_to_stop(&w, "forwarded", &[]);
    let events = receiver.events(2);
    assert_eq!(events.len(), 2, "{events:?}");
    let mut logs = Vec::new();
    for e in &events {
        let parts = e.as_array().expect("[tag, time, record]");
        assert_eq!(parts.len(), 3, "{e}");
        assert_eq!(parts[0].as_str(), Some("docker.app"), "{e}");
        assert!(parts[1].as_u64().is_some_and(|t| t > 1_600_000_000), "{e}");
        let record: std::collections::BTreeMap<String, String> = parts[2]
            .as_map()
            .expect("record")
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().expect("key").to_string(),
                    v.as_str().expect("value").to_string(),
                )
            })
            .collect();
        assert_eq!(record["container_id"], format!("{id}-app"), "{e}");
        assert_eq!(record["container_name"], "/app", "{e}");
        logs.push((record["source"].clone(), record["log"].clone()));
    }
    logs.sort();
    assert_eq!(
        logs,
        [
            ("stderr".to_string(), "oops".to_string()),
            ("stdout".to_string(), "to fluentd".to_string())
        ]
    );
    // Nothing received the other container's lines, and it ran to its end
    // all the same; its local log has every line.
    let lost = berth_tests::stdout(&w.berth(&["logs", &id, "--container", "lost"]));
    assert_eq!(lost.lines().count(), 3000);
    assert!(lost.ends_with("line-2999\n"));
    w.assert_clean();
}

/// Kills a `berth logs --follow` left running by a failed test.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_log_group_is_followed_until_its_task_stops() {
    use std::io::BufRead;
    let w = World::new("logs-follow");
    w.busybox_image("busybox:latest", &[]);
    // The second line waits for a file the test makes once the follower
    // has shown the first: so the follower is seen following.
    let command = "echo first; while [ ! -e /go ]; do sleep 0.1; done; echo second";
    w.register(&td(
        "followed",
        command,
        json!({ "logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/followed", "awslogs-stream-prefix": "ecs" } }),
    ));
    let out = w.berth(&["run-task", "--task-definition", "followed"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let mut cmd = w.command();
    cmd.args([
        "logs",
        "--log-group",
        "/ecs/followed",
        "--log-stream-prefix",
        "ecs/",
        "--follow",
    ])
    .stdout(std::process::Stdio::piped());
    let mut follower = Follower(cmd.spawn().expect("run berth logs --follow"));
    let stdout = follower.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let stream = format!("ecs/app/{id}");
    let first = rx
        .recv_timeout(berth_tests::patience(60))
        .expect("the first line, followed");
    assert_eq!(first, format!("{stream} | first"));
    let go = w
        .root
        .path()
        .join("images/snapshots")
        .join(format!("{id}-app"))
        .join("rootfs/go");
    std::fs::write(&go, "").expect("let the container go on");
    let second = rx
        .recv_timeout(berth_tests::patience(60))
        .expect("the second line, followed");
    assert_eq!(second, format!("{stream} | second"));
    // It ends by itself once the task has stopped.
    let deadline = std::time::Instant::now() + berth_tests::patience(60);
    let status = loop {
        if let Some(status) = follower.0.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still following");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let t = w.describe_task(&id);
    assert_eq!(t["lastStatus"], "STOPPED", "{t}");
    w.assert_clean();
}

#[test]
fn fargate_requires_awslogs_with_a_stream_prefix() {
    let w = World::new("logs-fargate");
    let fargate = |logs: Value| {
        json!({
            "family": "fg", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{ "name": "app", "image": "busybox",
                "command": ["true"], "logConfiguration": logs }]
        })
    };
    for (logs, field) in [
        (
            json!({ "logDriver": "awslogs", "options": { "awslogs-group": "/ecs/fg" } }),
            "containerDefinitions[0].logConfiguration.options.awslogs-stream-prefix",
        ),
        (
            json!({ "logDriver": "syslog", "options": {} }),
            "containerDefinitions[0].logConfiguration.logDriver",
        ),
    ] {
        let out = register(&w, &fargate(logs.clone()));
        assert!(!out.status.success(), "{logs} accepted on Fargate");
        assert!(stderr(&out).contains(field), "{logs}: {}", stderr(&out));
    }
    let out = w.berth(&["list-task-definitions"]);
    assert_eq!(parse_json(&out)["taskDefinitionArns"], json!([]));
    let logs = json!({ "logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/fg", "awslogs-stream-prefix": "ecs" } });
    assert_ok(&register(&w, &fargate(logs)));
}

//! The task metadata endpoint v4, from inside real busybox tasks: each
//! container fetches `$ECS_CONTAINER_METADATA_URI_V4` and its `/task`, and
//! finds its task, cluster and address there; nothing listens on the host
//! for it (awsvpc and bridge), a host-mode task is served on loopback.

use std::time::Instant;

use berth_tests::{assert_ok, parse_json, patience, stdout, task_ids, World};
use serde_json::{json, Value};

/// A container that prints its metadata, its task's, the task's with
/// tags, its stats and its task's stats, one JSON per line, then
/// `fetched`, and runs on until stopped.
const FETCH: &str = "wget -qO- $ECS_CONTAINER_METADATA_URI_V4; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task; echo; \
    wget -qO- ${ECS_CONTAINER_METADATA_URI}/taskWithTags; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/stats; echo; \
    wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task/stats; echo; \
    echo uri=$ECS_CONTAINER_METADATA_URI_V4; echo fetched; \
    trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// [`FETCH`] beside a server of the container's own on 0.0.0.0:80 (as on
/// ECS, the endpoint leaves that port to the task), which it then asks
/// too: its log says `own-80`.
fn serve_and_fetch() -> String {
    format!(
        "mkdir -p /www; echo own-80 > /www/index.html; httpd -p 80 -h /www; \
         until wget -qO- http://127.0.0.1:80/; do sleep 0.1; done; {FETCH}"
    )
}

/// The host's TCP listeners (`ss -ltnH`'s local addresses).
fn host_listeners() -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-ltnH"])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

fn port_80(listeners: &[String]) -> Vec<String> {
    listeners
        .iter()
        .filter(|a| a.ends_with(":80"))
        .cloned()
        .collect()
}

/// Container `name`'s log once it printed `fetched`: its three answers
/// and the URI it was told.
fn fetched(w: &World, task: &str, name: &str) -> (Value, Value, Value, String) {
    let deadline = Instant::now() + patience(20);
    let log = loop {
        let log = stdout(&w.berth(&["logs", task, "--container", name]));
        if log.contains("fetched") {
            break log;
        }
        assert!(Instant::now() < deadline, "{name} never fetched: {log:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The JSON answers, in order (a server's `own-80` line may come first).
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("own-80")).collect();
    let parse = |i: usize| -> Value {
        serde_json::from_str(lines.get(i).copied().unwrap_or(""))
            .unwrap_or_else(|e| panic!("line {i} of {name}'s log is no JSON ({e}): {log}"))
    };
    let uri = lines
        .iter()
        .find_map(|l| l.strip_prefix("uri="))
        .unwrap_or_else(|| panic!("no uri in {log}"))
        .to_string();
    let (stats, task_stats) = (parse(3), parse(4));
    check_stats(name, &stats, &task_stats);
    (parse(0), parse(1), parse(2), uri)
}

/// The container's stats, in Docker's shape, read from its cgroup: some
/// memory in use (a shell and wget run there), and the same container
/// among the task's.
fn check_stats(name: &str, stats: &Value, task_stats: &Value) {
    let usage = stats["memory_stats"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "{name}: no memory in use: {stats}");
    assert!(
        stats["cpu_stats"]["cpu_usage"]["total_usage"].is_u64(),
        "{stats}"
    );
    assert_eq!(stats["name"], format!("/{name}"), "{stats}");
    let id = stats["id"].as_str().expect("id");
    assert!(
        task_stats[id]["memory_stats"]["usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{task_stats}"
    );
}

/// Container `name` served and fetched its own port 80 beside the endpoint.
fn assert_own_80(w: &World, task: &str, name: &str) {
    let log = stdout(&w.berth(&["logs", task, "--container", name]));
    assert!(log.lines().any(|l| l == "own-80"), "{name}: {log}");
}

/// What every answer must say of task `t` (describe-tasks' view).
fn check_answers(t: &Value, name: &str, container: &Value, task: &Value, tagged: &Value) {
    let task_arn = t["taskArn"].as_str().expect("taskArn");
    let cluster = t["clusterArn"].as_str().expect("clusterArn");
    assert_eq!(task["TaskARN"], task_arn, "{task}");
    assert_eq!(task["Cluster"], cluster, "{task}");
    assert_eq!(task["Family"], "meta", "{task}");
    // A container may ask before the task's last one started: the task
    // is then still on its way to RUNNING.
    let starting = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"];
    assert!(starting.iter().any(|s| task["KnownStatus"] == *s), "{task}");
    assert_eq!(container["KnownStatus"], "RUNNING", "{container}");
    assert_eq!(container["Name"], name, "{container}");
    assert_eq!(container["Labels"]["com.amazonaws.ecs.task-arn"], task_arn);
    assert_eq!(container["Labels"]["com.amazonaws.ecs.cluster"], cluster);
    assert!(
        container["ImageID"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:")),
        "{container}"
    );
    let record = t["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .expect("container in describe-tasks");
    assert_eq!(container["ContainerARN"], record["containerArn"]);
    assert_eq!(tagged["TaskTags"]["team"], "meta", "{tagged}");
}

fn run(w: &World, extra: &[&str]) -> String {
    let mut args = vec![
        "run-task",
        "--task-definition",
        "meta",
        "--tags",
        "key=team,value=meta",
    ];
    args.extend_from_slice(extra);
    let out = parse_json(&w.berth(&args));
    task_ids(&out)
        .pop()
        .unwrap_or_else(|| panic!("no task: {out}"))
}

#[test]
fn an_awsvpc_task_reads_its_metadata_and_nothing_listens_on_the_host() {
    let w = World::new("meta-awsvpc");
    w.busybox_image("busybox:latest", &[]);
    let before = host_listeners();
    w.register(&json!({
        "family": "meta", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{ "name": "app", "image": "busybox",
            "command": ["sh", "-c", serve_and_fetch()] }]
    }));
    let id = run(&w, &["--launch-type", "FARGATE"]);
    let t = w.wait_task(&id, "RUNNING");
    let (container, task, tagged, uri) = fetched(&w, &id, "app");
    check_answers(&t, "app", &container, &task, &tagged);
    assert!(uri.starts_with("http://169.254.170.2/v4/"), "{uri}");
    assert_own_80(&w, &id, "app");
    // The task's own address, as describe-tasks shows it.
    let address = t["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["name"] == "privateIPv4Address"))
        .and_then(|x| x["value"].as_str())
        .expect("address")
        .to_string();
    let net = &container["Networks"][0];
    assert_eq!(net["NetworkMode"], "awsvpc", "{container}");
    assert_eq!(net["IPv4Addresses"], json!([address]), "{container}");
    assert_eq!(task["Limits"]["Memory"], 512, "{task}");
    // Served inside the task's namespace only: no new listener on the host.
    let during = host_listeners();
    assert_eq!(
        port_80(&during),
        port_80(&before),
        "a port 80 listener on the host"
    );
    assert!(
        !during.iter().any(|a| a.starts_with("169.254.170.2")),
        "{during:?}"
    );
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

#[test]
fn bridge_mode_containers_each_read_their_own_metadata() {
    let w = World::new("meta-bridge");
    w.busybox_image("busybox:latest", &[]);
    let before = host_listeners();
    w.register(&json!({
        "family": "meta", "networkMode": "bridge",
        "containerDefinitions": [
            { "name": "one", "image": "busybox", "memory": 16,
              "command": ["sh", "-c", serve_and_fetch()] },
            { "name": "two", "image": "busybox", "memory": 16,
              "command": ["sh", "-c", serve_and_fetch()] }
        ]
    }));
    let id = run(&w, &[]);
    let t = w.wait_task(&id, "RUNNING");
    for name in ["one", "two"] {
        let (container, task, tagged, _) = fetched(&w, &id, name);
        check_answers(&t, name, &container, &task, &tagged);
        assert_own_80(&w, &id, name);
        let record = t["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .expect("container");
        let address = &record["networkInterfaces"][0]["privateIpv4Address"];
        let net = &container["Networks"][0];
        assert_eq!(net["NetworkMode"], "bridge", "{container}");
        assert_eq!(net["IPv4Addresses"], json!([address]), "{container}");
        assert_eq!(task["Containers"].as_array().map(Vec::len), Some(2));
    }
    let during = host_listeners();
    assert_eq!(
        port_80(&during),
        port_80(&before),
        "a port 80 listener on the host"
    );
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

#[test]
fn a_host_mode_task_is_served_on_loopback() {
    let w = World::new("meta-host");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({
        "family": "meta", "networkMode": "host",
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", FETCH] }]
    }));
    let id = run(&w, &[]);
    let t = w.wait_task(&id, "RUNNING");
    let (container, task, tagged, uri) = fetched(&w, &id, "app");
    check_answers(&t, "app", &container, &task, &tagged);
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert_eq!(container["Networks"][0]["NetworkMode"], "host");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

/// Task roles, as the operator's roles file names them.
const ROLE_APP: &str = "arn:aws:iam::123456789012:role/app";
const ROLE_MINTED: &str = "arn:aws:iam::123456789012:role/minted";

/// The world's task roles file (`<state root>/task-roles.json`, 0600):
/// static keys for [`ROLE_APP`], and for [`ROLE_MINTED`] a
/// credential_process script that counts its runs in `minted-runs`.
fn write_roles(w: &World) {
    use std::os::unix::fs::PermissionsExt;
    let root = w.root.path();
    let script = root.join("mint.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> {}\n\
             exp=$(date -u -d @$(( $(date +%s) + 3600 )) +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"AKIAMINTED\", \
             \"SecretAccessKey\": \"minted-secret\", \"SessionToken\": \"minted-token\", \
             \"Expiration\": \"%s\"}}' \"$exp\"\n",
            root.join("minted-runs").display()
        ),
    )
    .expect("write mint.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let roles = json!({
        ROLE_APP: {"AccessKeyId": "AKIAAPP", "SecretAccessKey": "app-secret"},
        ROLE_MINTED: {"credential_process": script.display().to_string()},
    });
    let file = root.join("task-roles.json");
    std::fs::write(&file, roles.to_string()).expect("write roles");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A container that asks for its credentials twice, then prints its URI.
const CREDS: &str = "for i in 1 2; do \
    wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; echo; done; \
    echo uri=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";

/// The lines container `name` printed once it printed `fetched`.
fn log_until_fetched(w: &World, task: &str, name: &str) -> Vec<String> {
    let deadline = Instant::now() + patience(20);
    loop {
        let log = stdout(&w.berth(&["logs", task, "--container", name]));
        if log.lines().any(|l| l == "fetched") {
            return log.lines().map(str::to_string).collect();
        }
        assert!(Instant::now() < deadline, "{name} never fetched: {log:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn json_line(lines: &[String], i: usize) -> Value {
    serde_json::from_str(&lines[i]).unwrap_or_else(|e| panic!("line {i}: {e}: {lines:?}"))
}

/// The keys in an answer, and its role and an ISO 8601 UTC Expiration.
fn check_keys(v: &Value, role: &str, key: &str, secret: &str, token: &str) {
    assert_eq!(v["RoleArn"], role, "{v}");
    assert_eq!(v["AccessKeyId"], key, "{v}");
    assert_eq!(v["SecretAccessKey"], secret, "{v}");
    assert_eq!(v["Token"], token, "{v}");
    let exp = v["Expiration"].as_str().expect("Expiration");
    assert!(
        chrono::DateTime::parse_from_rfc3339(exp).is_ok() && exp.ends_with('Z'),
        "{v}"
    );
}

fn register_role_task(w: &World, family: &str, mode: &str, role: Option<&str>, cmd: &str) {
    let mut td = json!({
        "family": family, "networkMode": mode,
        "containerDefinitions": [{ "name": "app", "image": "busybox", "memory": 16,
            "command": ["sh", "-c",
                format!("{cmd}; echo fetched; trap 'exit 0' TERM; while true; do sleep 0.1; done")] }]
    });
    if let Some(role) = role {
        td["taskRoleArn"] = json!(role);
    }
    w.register(&td);
}

fn run_family(w: &World, family: &str) -> String {
    let out = parse_json(&w.berth(&["run-task", "--task-definition", family]));
    task_ids(&out)
        .pop()
        .unwrap_or_else(|| panic!("no task: {out}"))
}

#[test]
fn a_task_reads_its_role_credentials_and_another_task_cannot() {
    let w = World::new("meta-creds");
    w.busybox_image("busybox:latest", &[]);
    write_roles(&w);
    register_role_task(&w, "app", "awsvpc", Some(ROLE_APP), CREDS);
    let first = run_family(&w, "app");
    let t = w.wait_task(&first, "RUNNING");
    let lines = log_until_fetched(&w, &first, "app");
    check_keys(&json_line(&lines, 0), ROLE_APP, "AKIAAPP", "app-secret", "");
    check_keys(&json_line(&lines, 1), ROLE_APP, "AKIAAPP", "app-secret", "");
    let uri = lines
        .iter()
        .find_map(|l| l.strip_prefix("uri="))
        .expect("uri")
        .to_string();
    assert!(
        uri.starts_with("/v2/credentials/") && uri.len() > 30,
        "{uri}"
    );
    let address = t["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["name"] == "privateIPv4Address"))
        .and_then(|x| x["value"].as_str())
        .expect("address")
        .to_string();
    // Another task, of another role (keys from a command), in bridge mode:
    // its own keys, then the first task's URI on its own endpoint (the
    // agent's 400), and the first task's address (nothing listens there).
    let steal = format!(
        "{CREDS}; printf 'GET {uri} HTTP/1.0\\r\\n\\r\\n' | nc 169.254.170.2 80; echo; \
         for port in 80 51679; do wget -T 3 -qO- http://{address}:$port{uri}; echo rc=$?; done"
    );
    register_role_task(&w, "other", "bridge", Some(ROLE_MINTED), &steal);
    let second = run_family(&w, "other");
    w.wait_task(&second, "RUNNING");
    let lines = log_until_fetched(&w, &second, "app");
    let minted = ("AKIAMINTED", "minted-secret", "minted-token");
    check_keys(
        &json_line(&lines, 0),
        ROLE_MINTED,
        minted.0,
        minted.1,
        minted.2,
    );
    check_keys(
        &json_line(&lines, 1),
        ROLE_MINTED,
        minted.0,
        minted.1,
        minted.2,
    );
    let log = lines.join("\n");
    assert!(log.contains("HTTP/1.1 400 Bad Request"), "{log}");
    for part in [
        r#""code":"InvalidIdInRequest""#,
        r#""message":"CredentialsV2Request: Credentials not found""#,
        r#""HTTPErrorCode":400"#,
    ] {
        assert!(log.contains(part), "{part}: {log}");
    }
    assert!(
        !log.contains("AKIAAPP") && !log.contains("app-secret"),
        "{log}"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("rc=")).count(), 2);
    assert!(!lines.iter().any(|l| l == "rc=0"), "{log}");
    // The command ran once, at the task's start: its keys are cached.
    let runs = std::fs::read_to_string(w.root.path().join("minted-runs")).expect("runs");
    assert_eq!(runs.lines().count(), 1, "{runs}");
    for id in [&first, &second] {
        assert_ok(&w.berth(&["stop-task", "--task", id]));
        w.wait_task(id, "STOPPED");
    }
    w.assert_clean();
}

#[test]
fn a_role_missing_from_the_file_or_a_host_mode_role_fails_the_task() {
    let w = World::new("meta-creds-fail");
    w.busybox_image("busybox:latest", &[]);
    write_roles(&w);
    let missing = "arn:aws:iam::123456789012:role/missing";
    register_role_task(&w, "missing", "awsvpc", Some(missing), CREDS);
    register_role_task(&w, "hosted", "host", Some(ROLE_APP), CREDS);
    let file = w.root.path().join("task-roles.json");
    let cases = [
        (
            "missing",
            format!(
                "ECS was unable to assume the role '{missing}' that was provided for this task: \
                 the task roles file {} has no entry for it",
                file.display()
            ),
        ),
        (
            "hosted",
            format!("ECS was unable to assume the role '{ROLE_APP}' that was provided for this task: berth serves task role credentials to awsvpc, bridge and none network modes only"),
        ),
    ];
    for (family, reason) in cases {
        let id = run_family(&w, family);
        let t = w.wait_task(&id, "STOPPED");
        let got = t["stoppedReason"].as_str().unwrap_or_default();
        assert!(got.starts_with(&reason), "{family}: {t}");
        assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
        assert!(
            t["containers"][0]["exitCode"].is_null(),
            "{family}: a container ran: {t}"
        );
    }
    w.assert_clean();
}

/// The virtualenv with boto3: `BERTH_TEST_VENV`, or `<repo>/.build/venv`.
fn venv() -> std::path::PathBuf {
    let venv = std::env::var_os("BERTH_TEST_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../.build/venv").into());
    assert!(
        venv.join("bin/python").exists(),
        "{} is missing: run `make api-deps` (it makes the venv with boto3)",
        venv.display()
    );
    venv
}

/// `program args` run in network namespace `netns` with only the
/// container credentials variable `var`=`value` to find keys by (no
/// profile, no instance metadata); its stdout.
fn in_netns(netns: &std::path::Path, var: &str, value: &str, program: &[&str]) -> String {
    let home = tempfile::tempdir().expect("home");
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(program)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(var, value)
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{program:?}: {}{}",
        stdout(&out),
        berth_tests::stderr(&out)
    );
    stdout(&out)
}

#[test]
fn boto3_and_aws_cli_v2_read_a_tasks_role_credentials() {
    let w = World::new("meta-creds-sdk");
    w.busybox_image("busybox:latest", &[]);
    write_roles(&w);
    register_role_task(&w, "sdk", "awsvpc", Some(ROLE_MINTED), CREDS);
    let id = run_family(&w, "sdk");
    w.wait_task(&id, "RUNNING");
    let lines = log_until_fetched(&w, &id, "app");
    let uri = lines
        .iter()
        .find_map(|l| l.strip_prefix("uri="))
        .expect("uri")
        .to_string();
    // The SDKs run on the host, inside the task's network namespace.
    let netns = w.root.path().join("run/tasks").join(&id).join("ns/network");
    let python = venv().join("bin/python");
    let boto3 = [
        python.to_str().expect("path"),
        "-c",
        "import boto3; c = boto3.Session().get_credentials(); \
         f = c.get_frozen_credentials(); print(c.method, f.access_key, f.secret_key, f.token)",
    ];
    let full = format!("http://169.254.170.2{uri}");
    for (var, value) in [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full.as_str()),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", uri.as_str()),
    ] {
        let out = in_netns(&netns, var, value, &boto3);
        assert_eq!(
            out.trim(),
            "container-role AKIAMINTED minted-secret minted-token",
            "{var}"
        );
    }
    let aws = [
        "/usr/bin/aws",
        "configure",
        "export-credentials",
        "--format",
        "process",
    ];
    let out = in_netns(&netns, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", &uri, &aws);
    let creds = parse_json_text(&out);
    assert_eq!(creds["AccessKeyId"], "AKIAMINTED", "{out}");
    assert_eq!(creds["SessionToken"], "minted-token", "{out}");
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

fn parse_json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// This world's supervisor of task `id`, if one runs.
fn supervisor_of(w: &World, id: &str) -> Option<i32> {
    w.monitors().into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains(berth_orchestrator::supervisor::SUPERVISOR_ARG) && c.contains(id)
        })
    })
}

/// GET `path` of the endpoint from inside `netns` (the host's python3).
fn get_in_netns(netns: &std::path::Path, path: &str) -> String {
    let client = format!(
        "import http.client; c = http.client.HTTPConnection('169.254.170.2', 80, timeout=5); \
         c.request('GET', '{path}'); r = c.getresponse(); print(r.status, r.read().decode())"
    );
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["python3", "-c", &client])
        .output()
        .expect("nsenter python3");
    assert!(out.status.success(), "{}", berth_tests::stderr(&out));
    stdout(&out)
}

#[test]
fn an_adopting_supervisor_serves_the_same_credentials_id() {
    let w = World::new("meta-creds-adopt");
    w.busybox_image("busybox:latest", &[]);
    write_roles(&w);
    register_role_task(&w, "adopt", "awsvpc", Some(ROLE_APP), CREDS);
    let id = run_family(&w, "adopt");
    w.wait_task(&id, "RUNNING");
    let lines = log_until_fetched(&w, &id, "app");
    let uri = lines
        .iter()
        .find_map(|l| l.strip_prefix("uri="))
        .expect("uri")
        .to_string();
    let old = supervisor_of(&w, &id).expect("a supervisor");
    // SAFETY: kill(2) on the supervisor of a task this test started.
    unsafe { libc::kill(old, libc::SIGKILL) };
    let deadline = Instant::now() + patience(10);
    while std::path::Path::new(&format!("/proc/{old}")).exists() {
        assert!(Instant::now() < deadline, "the supervisor never died");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pass = parse_json(&w.berth(&["reconcile", "--cluster", "default"]));
    assert_eq!(pass["tasksAdopted"], json!([id]), "{pass}");
    let netns = w.root.path().join("run/tasks").join(&id).join("ns/network");
    let deadline = Instant::now() + patience(10);
    let answer = loop {
        let answer = get_in_netns(&netns, &uri);
        if answer.starts_with("200 ") {
            break answer;
        }
        assert!(Instant::now() < deadline, "never served again: {answer}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let keys: Value = parse_json_text(answer.trim_start_matches("200 ").trim());
    check_keys(&keys, ROLE_APP, "AKIAAPP", "app-secret", "");
    // The container's own times, read from its runtime state by the new
    // supervisor: to the second, the runtime's.
    let t = w.describe_task(&id);
    let runtime_id = t["containers"][0]["runtimeId"].as_str().expect("runtimeId");
    let state = w.state(runtime_id);
    let answer = get_in_netns(&netns, &format!("/v4/{runtime_id}"));
    let container = parse_json_text(answer.trim_start_matches("200 ").trim());
    for (ours, theirs) in [("CreatedAt", "createdAt"), ("StartedAt", "startedAt")] {
        let second = |v: &Value| v.as_str().map(|s| s.chars().take(19).collect::<String>());
        assert_eq!(
            second(&container[ours]),
            second(&state[theirs]),
            "{ours}: {container} / {state}"
        );
        assert!(second(&container[ours]).is_some(), "{container}");
    }
    assert_ok(&w.berth(&["stop-task", "--task", &id]));
    w.wait_task(&id, "STOPPED");
    w.assert_clean();
}

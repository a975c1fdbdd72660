//! `berth serve` driven by the real clients: aws-cli v1 (PyPI, in the
//! venv) and v2 (Debian's), boto3 (with every answer validated strictly
//! against botocore's model), raw HTTP with bad input; the CLI and the
//! server on one state; a clean stop; the server's own services'
//! scheduler (and `--no-scheduler`). Real busybox tasks throughout.
//! Needs `make api-deps` (the venv, /usr/bin/aws).

mod api_world;

use api_world::{header, post, write_file, Aws, Served};
use berth_tests::{assert_ok, parse_json, strings};
use serde_json::{json, Value};

const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

fn sleeper(family: &str) -> String {
    json!({
        "family": family,
        "networkMode": "none",
        "containerDefinitions": [{
            "name": "a", "image": "busybox", "memory": 16, "cpu": 32,
            "command": ["sh", "-c", LOOP]
        }]
    })
    .to_string()
}

/// The lifecycle with one aws-cli: tasks, a service, paging, a miss.
fn aws_lifecycle(cli: Aws, name: &str) {
    let s = Served::new(name);
    let c = "api";
    let created = s.aws_ok(cli, &["create-cluster", "--cluster-name", c]);
    assert_eq!(created["cluster"]["status"], "ACTIVE");
    // No agent: the server's own scheduler keeps the service's counts.

    let td = write_file(&s.world, "td.json", &sleeper("api-sleep"));
    let reg = s.aws_ok(cli, &["register-task-definition", "--cli-input-json", &td]);
    let def = &reg["taskDefinition"];
    assert_eq!(def["revision"], 1);
    assert_eq!(def["containerDefinitions"][0]["cpu"], 32, "{def}");
    let other = write_file(&s.world, "td2.json", &sleeper("api-other"));
    s.aws_ok(
        cli,
        &["register-task-definition", "--cli-input-json", &other],
    );
    if cli == Aws::V1 {
        // v1 prints the wire's value: epoch seconds, a number.
        assert!(def["registeredAt"].is_number(), "registeredAt: {def}");
    }

    // A task: run, wait RUNNING, describe, stop, wait STOPPED.
    let ran = s.aws_ok(
        cli,
        &["run-task", "--cluster", c, "--task-definition", "api-sleep"],
    );
    assert_eq!(ran["failures"], json!([]), "{ran}");
    let arn = ran["tasks"][0]["taskArn"]
        .as_str()
        .expect("taskArn")
        .to_string();
    s.aws_ok(
        cli,
        &["wait", "tasks-running", "--cluster", c, "--tasks", &arn],
    );
    let described = s.aws_ok(
        cli,
        &["describe-tasks", "--cluster", c, "--tasks", &arn, "nope"],
    );
    let task = &described["tasks"][0];
    assert_eq!(task["lastStatus"], "RUNNING");
    assert!(task.get("x-berth").is_none(), "{task}");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    s.aws_ok(cli, &["stop-task", "--cluster", c, "--task", &arn]);
    s.aws_ok(
        cli,
        &["wait", "tasks-stopped", "--cluster", c, "--tasks", &arn],
    );

    // A service: create, stable, scale, stable, describe, delete.
    let svc = ["--cluster", c, "--services", "web"];
    let scale = |n: &str| {
        s.aws_ok(
            cli,
            &[
                "update-service",
                "--cluster",
                c,
                "--service",
                "web",
                "--desired-count",
                n,
            ],
        )
    };
    s.aws_ok(
        cli,
        &[
            "create-service",
            "--cluster",
            c,
            "--service-name",
            "web",
            "--task-definition",
            "api-sleep",
            "--desired-count",
            "1",
        ],
    );
    s.aws_ok(cli, &[&["wait", "services-stable"][..], &svc[..]].concat());
    scale("2");
    s.aws_ok(cli, &[&["wait", "services-stable"][..], &svc[..]].concat());
    let d = s.aws_ok(cli, &[&["describe-services"][..], &svc[..]].concat());
    assert_eq!(d["services"][0]["runningCount"], 2, "{d}");
    assert_eq!(d["services"][0]["status"], "ACTIVE");

    // Paging: --page-size 1 sends maxResults 1 and follows every nextToken.
    let tasks = s.aws_ok(cli, &["list-tasks", "--cluster", c, "--page-size", "1"]);
    assert_eq!(strings(&tasks["taskArns"]).len(), 2, "{tasks}");
    let defs = s.aws_ok(cli, &["list-task-definitions", "--page-size", "1"]);
    assert_eq!(strings(&defs["taskDefinitionArns"]).len(), 2, "{defs}");
    let fams = s.aws_ok(cli, &["list-task-definition-families", "--page-size", "1"]);
    assert_eq!(strings(&fams["families"]), ["api-other", "api-sleep"]);
    let clusters = s.aws_ok(cli, &["list-clusters", "--page-size", "1"]);
    assert_eq!(strings(&clusters["clusterArns"]).len(), 2, "{clusters}");
    let services = s.aws_ok(cli, &["list-services", "--cluster", c, "--page-size", "1"]);
    assert_eq!(strings(&services["serviceArns"]).len(), 1, "{services}");

    scale("0");
    s.aws_ok(cli, &["delete-service", "--cluster", c, "--service", "web"]);
    s.aws_ok(
        cli,
        &[&["wait", "services-inactive"][..], &svc[..]].concat(),
    );
    let d = s.aws_ok(cli, &[&["describe-services"][..], &svc[..]].concat());
    assert_eq!(d["services"][0]["status"], "INACTIVE", "{d}");

    // A missing cluster: ECS's modeled exception, as aws prints it.
    let out = s.aws(
        cli,
        &["describe-services", "--cluster", "nope", "--services", "x"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(ClusterNotFoundException)") && err.contains("DescribeServices"),
        "{err}"
    );
}

#[test]
fn aws_cli_v1_drives_tasks_and_services() {
    aws_lifecycle(Aws::V1, "api-v1");
}

#[test]
fn aws_cli_v2_drives_tasks_and_services() {
    aws_lifecycle(Aws::V2, "api-v2");
}

#[test]
fn boto3_lifecycle_exceptions_paginators_waiters_all_strictly_valid() {
    let s = Served::new("api-boto3");
    // The server beside an agent (a cluster whose hosts reconcile too):
    // the two take turns under the cluster's reconcile lease. The
    // script's cluster exists first, for the agent to join it.
    assert_ok(&s.world.berth(&["create-cluster", "--cluster-name", "boto"]));
    let _agent = s
        .world
        .agent(&["--cluster", "boto", "--interval", "1"], &[]);
    let out = s.python_ok("boto3_lifecycle.py", &[]);
    assert!(out.contains("answers validated strictly"), "{out}");
}

/// Each bad request gets its modeled 4xx, with a request id, and the
/// server answers a good call right after.
#[test]
fn bad_input_gets_modeled_errors_and_the_server_keeps_serving() {
    let mut s = Served::new("api-bad");
    let huge = vec![b' '; 2 << 20];
    // What, the target, the body; the status, exception, and what the
    // message must name.
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            Some("ListClusters"),
            b"{\"maxResults\":".to_vec(),
            400,
            "SerializationException",
            "JSON",
        ),
        (
            "wrong type",
            Some("ListClusters"),
            br#"{"maxResults":"1"}"#.to_vec(),
            400,
            "SerializationException",
            "maxResults",
        ),
        (
            "nested wrong type",
            Some("RunTask"),
            br#"{"taskDefinition":"x","overrides":{"containerOverrides":[{"command":"ls"}]}}"#
                .to_vec(),
            400,
            "SerializationException",
            "overrides.containerOverrides[0].command",
        ),
        (
            "unknown member",
            Some("DescribeClusters"),
            br#"{"clusterz":["a"]}"#.to_vec(),
            400,
            "InvalidParameterException",
            "clusterz",
        ),
        (
            "not an object",
            Some("ListClusters"),
            b"[1,2]".to_vec(),
            400,
            "SerializationException",
            "object",
        ),
        (
            "unknown operation",
            Some("FlyToTheMoon"),
            b"{}".to_vec(),
            400,
            "UnknownOperationException",
            "FlyToTheMoon",
        ),
        (
            "unserved operation",
            Some("CreateGateway"),
            b"{}".to_vec(),
            400,
            "UnknownOperationException",
            "CreateGateway",
        ),
        (
            "no target",
            None,
            b"{}".to_vec(),
            400,
            "UnknownOperationException",
            "X-Amz-Target",
        ),
        (
            "huge body",
            Some("ListClusters"),
            huge,
            413,
            "RequestEntityTooLargeException",
            "bytes",
        ),
        (
            "bad token",
            Some("ListClusters"),
            br#"{"nextToken":"zz"}"#.to_vec(),
            400,
            "InvalidParameterException",
            "nextToken",
        ),
    ];
    for (what, target, body, status, exception, names) in cases {
        let (got, headers, raw) = post(s.port, target, &body);
        let answer: Value = serde_json::from_slice(&raw).unwrap_or_else(|e| {
            panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&raw))
        });
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["__type"], exception, "{what}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{what}: message {message:?} names no {names:?}"
        );
        assert!(
            header(&headers, "x-amzn-requestid").is_some(),
            "{what}: {headers:?}"
        );
        assert_eq!(header(&headers, "x-amzn-errortype"), Some(exception));
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/x-amz-json-1.1")
        );
        let (ok, _, raw) = post(s.port, Some("ListClusters"), b"{}");
        assert_eq!(ok, 200, "after {what}: {}", String::from_utf8_lossy(&raw));
    }
    // Other paths and methods.
    let (got, headers, _) = s.raw("GET /x HTTP/1.1\r\n", b"");
    assert_eq!(got, 404);
    assert!(header(&headers, "x-amzn-requestid").is_some());
    let (got, _, raw) = s.raw("GET / HTTP/1.1\r\n", b"");
    assert_eq!(got, 400, "{}", String::from_utf8_lossy(&raw));
    // Every answer above was checked by the model's validator too.
    assert!(s.running(), "the server died: {}", s.log());
    let bodies = s.python_ok("bad_input.py", &[]);
    assert!(bodies.contains("0 violations"), "{bodies}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// A task run by the CLI is described by the server, and one run through
/// the server by the CLI.
#[test]
fn the_cli_and_the_server_see_one_state() {
    let s = Served::new("api-one-state");
    let w = &s.world;
    let family = w.register(&serde_json::from_str(&sleeper("one")).expect("json"));
    let by_cli = parse_json(&w.berth(&["run-task", "--task-definition", &family]));
    let cli_arn = by_cli["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    s.aws_ok(Aws::V1, &["wait", "tasks-running", "--tasks", &cli_arn]);
    let seen = s.aws_ok(Aws::V2, &["describe-tasks", "--tasks", &cli_arn]);
    assert_eq!(seen["tasks"][0]["lastStatus"], "RUNNING", "{seen}");

    let by_api = s.aws_ok(Aws::V1, &["run-task", "--task-definition", "one"]);
    let api_arn = by_api["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let id = api_arn.rsplit('/').next().expect("id").to_string();
    let running = w.wait_task(&id, "RUNNING");
    assert_eq!(running["taskArn"], api_arn.as_str());
    let listed = parse_json(&w.berth(&["list-tasks"]));
    assert_eq!(strings(&listed["taskArns"]).len(), 2, "{listed}");

    // Stopped from the CLI, seen stopped by the server.
    assert_ok(&w.berth(&["stop-task", "--task", &api_arn]));
    s.aws_ok(Aws::V1, &["stop-task", "--task", &cli_arn]);
    s.aws_ok(
        Aws::V2,
        &["wait", "tasks-stopped", "--tasks", &cli_arn, &api_arn],
    );
    w.wait_task(&id, "STOPPED");
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for (sig, name) in [(libc::SIGTERM, "api-term"), (libc::SIGINT, "api-int")] {
        let mut s = Served::new(name);
        let (ok, _, _) = post(s.port, Some("ListClusters"), b"{}");
        assert_eq!(ok, 200);
        let status = s.stop_with(sig);
        assert!(
            status.success(),
            "signal {sig}: exit {status:?}; log:\n{}",
            s.log()
        );
        // The port is free again.
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", s.port)).is_ok(),
            "port {} still bound",
            s.port
        );
    }
}

/// On etcd (the store whose client drives its own runtime, which the
/// server must call only from blocking threads): the server and the CLI
/// share the cluster's state, tasks run and stop.
#[test]
fn served_on_etcd_tasks_run_and_the_cli_sees_them() {
    let etcd = berth_orchestrator::store::test_server::EtcdServer::start();
    let store = format!("etcd://{}/berth-test/api-etcd", etcd.endpoint);
    let world = berth_tests::World::new("api-etcd").with_store(&store);
    world.busybox_image("busybox:latest", &[]);
    let s = Served::serve(world, &[]);
    // On a shared store only agents register hosts.
    let _agent = s.world.agent(&["--interval", "1"], &[]);
    let deadline = std::time::Instant::now() + berth_tests::patience(30);
    loop {
        let listed = s.aws_ok(Aws::V1, &["list-container-instances"]);
        if !strings(&listed["containerInstanceArns"]).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never registered its host"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let td = write_file(&s.world, "td.json", &sleeper("etcd"));
    s.aws_ok(
        Aws::V2,
        &["register-task-definition", "--cli-input-json", &td],
    );
    let ran = s.aws_ok(
        Aws::V2,
        &["run-task", "--task-definition", "etcd", "--count", "2"],
    );
    assert_eq!(ran["failures"], json!([]), "{ran}");
    let arns: Vec<String> = ran["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    assert_eq!(arns.len(), 2, "{ran}");
    let mut wait = vec!["wait", "tasks-running", "--tasks"];
    wait.extend(arns.iter().map(String::as_str));
    s.aws_ok(Aws::V1, &wait);
    let by_cli = parse_json(&s.world.berth(&["list-tasks"]));
    let mut listed = strings(&by_cli["taskArns"]);
    listed.sort();
    let mut ran_arns = arns.clone();
    ran_arns.sort();
    assert_eq!(listed, ran_arns);
    for arn in &arns {
        s.aws_ok(Aws::V1, &["stop-task", "--task", arn]);
    }
    wait[1] = "tasks-stopped";
    s.aws_ok(Aws::V2, &wait);
}

/// A port in use or a bad flag: an error naming it, no ready line.
#[test]
fn serve_refuses_a_busy_port_and_bad_flags_clearly() {
    let w = berth_tests::World::new("api-busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = w.berth(&["serve", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", berth_tests::stdout(&out));
    let err = berth_tests::stderr(&out);
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    let out = w.berth(&["serve", "--max-body-bytes", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(berth_tests::stderr(&out).contains("--max-body-bytes"));
}

/// `ARGS…` of a service's `aws ecs` call: `--cluster C --services S`.
fn service_args<'a>(c: &'a str, svc: &'a str) -> [&'a str; 4] {
    ["--cluster", c, "--services", svc]
}

/// The arns of `svc`'s tasks that are to run (desired RUNNING).
fn service_tasks(s: &Served, c: &str, svc: &str) -> Vec<String> {
    let listed = s.aws_ok(
        Aws::V2,
        &["list-tasks", "--cluster", c, "--service-name", svc],
    );
    strings(&listed["taskArns"])
}

/// Poll `f` until it gives Some, within the patience; `what` names it.
#[track_caller]
fn until<T>(s: &Served, what: &str, f: impl Fn() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + berth_tests::patience(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// kill -9 the container of `arn` (found by its runtime id), and first
/// its supervisor too when `orphan`: then no process of the task's
/// records its end, and only a reconcile pass (orphan recovery) does.
fn kill_task(s: &Served, c: &str, arn: &str, orphan: bool) {
    let id = arn.rsplit('/').next().unwrap_or(arn);
    let t = parse_json(
        &s.world
            .berth(&["describe-tasks", "--cluster", c, "--tasks", id]),
    );
    let task = &t["tasks"][0];
    let container = task["containers"][0]["runtimeId"]
        .as_str()
        .unwrap_or_else(|| panic!("runtimeId in {t}"))
        .to_string();
    let pid = s.world.state(&container)["pid"].as_i64().expect("pid");
    if orphan {
        let sup = supervisor_of(id).unwrap_or_else(|| panic!("no supervisor of {id}"));
        // SAFETY: kill(2) on the supervisor of a task this test started.
        unsafe { libc::kill(sup, libc::SIGKILL) };
    }
    // SAFETY: kill(2) on the pid of a container this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// The pid of task `id`'s supervisor: the process whose arguments name
/// the task (berth's records keep it, but its CLI and API leave it out).
fn supervisor_of(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        // `berth __berth-task STATE RUNTIME CLUSTER TASK …`
        let supervises =
            args.get(1) == Some(&&b"__berth-task"[..]) && args.contains(&id.as_bytes());
        supervises.then_some(pid)
    })
}

/// Two tasks of `web` to run again, `victim` not among them, all RUNNING.
fn replaced(s: &Served, c: &str, victim: &str) -> Vec<String> {
    let after = until(s, "the killed task's replacement", || {
        let now = service_tasks(s, c, "web");
        (now.len() == 2 && !now.iter().any(|a| a == victim)).then_some(now)
    });
    let mut wait = vec!["wait", "tasks-running", "--cluster", c, "--tasks"];
    wait.extend(after.iter().map(String::as_str));
    s.aws_ok(Aws::V2, &wait);
    after
}

/// Over aws v2: cluster `c`, the sleeper definition `family`, and its
/// service `web` of `count` tasks.
fn create_sleeper_service(s: &Served, c: &str, family: &str, count: &str) {
    s.aws_ok(Aws::V2, &["create-cluster", "--cluster-name", c]);
    let td = write_file(&s.world, "td.json", &sleeper(family));
    s.aws_ok(
        Aws::V2,
        &["register-task-definition", "--cli-input-json", &td],
    );
    s.aws_ok(
        Aws::V2,
        &[
            "create-service",
            "--cluster",
            c,
            "--service-name",
            "web",
            "--task-definition",
            family,
            "--desired-count",
            count,
        ],
    );
}

/// `berth serve` alone (no agent, no CLI pass): a service created by aws
/// v2 becomes stable, and when its task's container is killed (-9) the
/// service replaces it and is stable again, counted by the server's own
/// scheduler.
#[test]
fn the_server_schedules_services_alone() {
    let s = Served::new("api-sched");
    let c = "sched";
    create_sleeper_service(&s, c, "sched", "2");
    let svc = service_args(c, "web");
    s.aws_ok(
        Aws::V2,
        &[&["wait", "services-stable"][..], &svc[..]].concat(),
    );
    let d = s.aws_ok(Aws::V2, &[&["describe-services"][..], &svc[..]].concat());
    assert_eq!(d["services"][0]["runningCount"], 2, "{d}");
    let before = service_tasks(&s, c, "web");
    assert_eq!(before.len(), 2, "{before:?}");

    // kill -9 one task's container: its supervisor records the stop and
    // the service replaces it.
    let victim = before[0].clone();
    kill_task(&s, c, &victim, false);
    s.aws_ok(
        Aws::V2,
        &["wait", "tasks-stopped", "--cluster", c, "--tasks", &victim],
    );
    let after = replaced(&s, c, &victim);
    // The pass that placed the replacement (after the kill) counted at
    // most one running; two again means a later pass ran.
    until(&s, "runningCount 2 after the replacement ran", || {
        let d = s.aws_ok(Aws::V2, &[&["describe-services"][..], &svc[..]].concat());
        (d["services"][0]["runningCount"] == 2).then_some(())
    });
    s.aws_ok(
        Aws::V2,
        &[&["wait", "services-stable"][..], &svc[..]].concat(),
    );

    // Its supervisor killed too: no process of the task's is left to
    // record its end. Only a reconcile pass finds the orphan, and the
    // server's scheduler is the only reconciler here.
    let victim = after[0].clone();
    kill_task(&s, c, &victim, true);
    s.aws_ok(
        Aws::V2,
        &["wait", "tasks-stopped", "--cluster", c, "--tasks", &victim],
    );
    replaced(&s, c, &victim);
    s.aws_ok(
        Aws::V2,
        &[&["wait", "services-stable"][..], &svc[..]].concat(),
    );
}

/// `--no-scheduler`: nothing in the server passes. A service task made
/// an orphan (its supervisor and container killed) stays RUNNING in the
/// records: the explicit `berth reconcile` after it is the pass that
/// finds it (its report names the task finished and a replacement
/// started), which it would not if the server had passed meanwhile.
#[test]
fn no_scheduler_leaves_the_passes_to_others() {
    let world = berth_tests::World::new("api-nosched");
    world.busybox_image("busybox:latest", &[]);
    let s = Served::serve(world, &["--no-scheduler"]);
    let c = "nosched";
    create_sleeper_service(&s, c, "nosched", "1");
    let tasks = service_tasks(&s, c, "web");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let victim = tasks[0].clone();
    s.aws_ok(
        Aws::V2,
        &["wait", "tasks-running", "--cluster", c, "--tasks", &victim],
    );
    kill_task(&s, c, &victim, true);
    // A scheduler, were one running, passes within a tick of the kill:
    // give it three (no assertion on time: the property below is what
    // the pass did).
    std::thread::sleep(3 * berth_orchestrator::reconcile::SCHEDULER_TICK);
    let t = s.aws_ok(
        Aws::V2,
        &["describe-tasks", "--cluster", c, "--tasks", &victim],
    );
    assert_eq!(t["tasks"][0]["lastStatus"], "RUNNING", "{t}");

    let passed = parse_json(&s.world.berth(&["reconcile", "--cluster", c]));
    let id = victim.rsplit('/').next().unwrap_or(&victim);
    assert_eq!(passed["clusters"], json!([c]), "{passed}");
    assert_eq!(passed["tasksFinished"], json!([id]), "{passed}");
    assert_eq!(strings(&passed["tasksStarted"]).len(), 1, "{passed}");
    let svc = service_args(c, "web");
    s.aws_ok(
        Aws::V2,
        &[&["wait", "services-stable"][..], &svc[..]].concat(),
    );
}

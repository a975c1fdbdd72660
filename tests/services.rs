//! Services without a daemon: replacement when a task dies, scaling,
//! rolling to a new revision, deletion.

use std::time::{Duration, Instant};

use berth_tests::{assert_ok, parse_json, World};
use serde_json::{json, Value};

fn describe_service(w: &World, name: &str) -> Value {
    let out = w.berth(&["describe-services", "--services", name]);
    assert_ok(&out);
    parse_json(&out)["services"][0].clone()
}

/// The service's live tasks, once exactly `n` are RUNNING (and no other
/// is live); panics after 30 s.
#[track_caller]
fn wait_running(w: &World, name: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = parse_json(&w.berth(&["list-tasks"]));
        let ids: Vec<String> = listed["taskArns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let tasks: Vec<Value> = ids.iter().map(|id| w.describe_task(id)).collect();
        let running = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING")
            .count();
        let ours = tasks
            .iter()
            .all(|t| t["group"] == format!("service:{name}"));
        if running == n && tasks.len() == n && ours {
            return tasks;
        }
        assert!(
            Instant::now() < deadline,
            "service {name}: {running} RUNNING of {} live, wanted {n}",
            tasks.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
fn wait_event(w: &World, name: &str, text: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe_service(w, name);
        let said = s["events"].as_array().is_some_and(|es| {
            es.iter()
                .any(|e| e["message"].as_str().is_some_and(|m| m.contains(text)))
        });
        if said {
            return s;
        }
        assert!(Instant::now() < deadline, "no event {text:?}: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Register family `name` (one container that loops until TERM) and make
/// a service `name` of `count` of its tasks.
fn looping_service(w: &World, name: &str, count: u32) {
    w.register(&json!({ "family": name, "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": loop_forever(name) }] }));
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        name,
        "--task-definition",
        name,
        "--desired-count",
        &count.to_string(),
    ]));
}

/// `delete-service --force`, then wait until none of its tasks is live.
fn delete_service(w: &World, name: &str) {
    assert_ok(&w.berth(&["delete-service", "--service", name, "--force"]));
    wait_running(w, name, 0);
}

fn kill9(pid: impl std::fmt::Display) {
    assert_ok(
        &std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .output()
            .expect("kill"),
    );
}

fn loop_forever(tag: &str) -> Value {
    json!([
        "sh",
        "-c",
        format!("echo {tag}; trap 'exit 0' TERM; while true; do sleep 0.1; done")
    ])
}

#[test]
fn a_service_replaces_a_killed_task_scales_and_rolls() {
    let w = World::new("svc");
    w.busybox_image("busybox:latest", &[]);
    let td = |tag: &str| {
        json!({ "family": "web", "containerDefinitions": [{
            "name": "web", "image": "busybox", "memory": 16, "command": loop_forever(tag) }] })
    };
    w.register(&td("one"));
    let out = w.berth(&[
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "web",
        "--desired-count",
        "3",
    ]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["service"]["status"], "ACTIVE");
    let tasks = wait_running(&w, "web", 3);
    wait_event(&w, "web", "has reached a steady state.");

    // kill -9 of one task's container: the service starts another.
    let victim = tasks[0]["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    let pid = w.state(&victim)["pid"].as_i64().expect("pid");
    kill9(pid);
    let victim_task = tasks[0]["taskArn"].as_str().expect("arn");
    w.wait_task(victim_task, "STOPPED");
    let after = wait_running(&w, "web", 3);
    assert!(after.iter().all(|t| t["taskArn"] != victim_task));
    wait_event(&w, "web", "has started 1 tasks");

    // Scale 3 → 5 → 1.
    assert_ok(&w.berth(&["update-service", "--service", "web", "--desired-count", "5"]));
    wait_running(&w, "web", 5);
    assert_ok(&w.berth(&["update-service", "--service", "web", "--desired-count", "1"]));
    wait_running(&w, "web", 1);

    // Roll to revision 2 (2 tasks, at most 200%, at least 50% running).
    assert_ok(&w.berth(&["update-service", "--service", "web", "--desired-count", "2"]));
    wait_running(&w, "web", 2);
    w.register(&td("two"));
    assert_ok(&w.berth(&[
        "update-service",
        "--service",
        "web",
        "--task-definition",
        "web:2",
        "--deployment-configuration",
        "maximumPercent=200,minimumHealthyPercent=50",
    ]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe_service(&w, "web");
        let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
        if deployments.len() == 1 && deployments[0]["rolloutState"] == "COMPLETED" {
            assert!(deployments[0]["taskDefinition"]
                .as_str()
                .is_some_and(|t| t.ends_with("web:2")));
            break;
        }
        assert!(Instant::now() < deadline, "rollout never completed: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for t in wait_running(&w, "web", 2) {
        assert!(t["taskDefinitionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with("web:2")));
    }

    // Deleting needs desired 0 or --force; then its tasks stop.
    let refused = w.berth(&["delete-service", "--service", "web"]);
    assert!(!refused.status.success());
    delete_service(&w, "web");
    let deadline = Instant::now() + Duration::from_secs(30);
    while describe_service(&w, "web")["status"] != "INACTIVE" {
        assert!(Instant::now() < deadline, "service never became INACTIVE");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.assert_clean();
}

#[test]
fn two_reconcilers_at_once_start_no_extra_task() {
    let w = World::new("svc-race");
    w.busybox_image("busybox:latest", &[]);
    looping_service(&w, "race", 2);
    wait_running(&w, "race", 2);
    // Four processes scale to 3 at once, each reconciling after its
    // update; then four bare passes at once.
    let at_once = |args: &[&str]| {
        let children: Vec<_> = (0..4)
            .map(|_| {
                w.command()
                    .args(args)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().expect("wait").success());
        }
    };
    at_once(&[
        "update-service",
        "--service",
        "race",
        "--desired-count",
        "3",
    ]);
    wait_running(&w, "race", 3);
    at_once(&["reconcile"]);
    wait_running(&w, "race", 3);
    std::thread::sleep(Duration::from_millis(500));
    wait_running(&w, "race", 3);
    delete_service(&w, "race");
    w.assert_clean();
}

#[test]
fn a_failing_revision_trips_the_circuit_breaker_and_rolls_back() {
    let w = World::new("svc-breaker");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({ "family": "cb", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": loop_forever("good") }] }));
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "cb",
        "--task-definition",
        "cb",
        "--desired-count",
        "2",
        "--deployment-configuration",
        r#"{"maximumPercent": 200, "minimumHealthyPercent": 50, "deploymentCircuitBreaker": {"enable": true, "rollback": true}}"#,
    ]));
    wait_running(&w, "cb", 2);
    wait_event(&w, "cb", "has reached a steady state.");
    // Revision 2's container exits at once.
    w.register(&json!({ "family": "cb", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": ["sh", "-c", "exit 3"] }] }));
    assert_ok(&w.berth(&[
        "update-service",
        "--service",
        "cb",
        "--task-definition",
        "cb:2",
    ]));
    let s = wait_event(&w, "cb", "deployment failed: tasks failed to start.");
    assert!(
        s["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("rolling back")))),
        "{s}"
    );
    // Back on revision 1, completed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = describe_service(&w, "cb");
        let ds = s["deployments"].as_array().cloned().unwrap_or_default();
        if ds.len() == 1
            && ds[0]["rolloutState"] == "COMPLETED"
            && ds[0]["taskDefinition"]
                .as_str()
                .is_some_and(|t| t.ends_with("cb:1"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "never rolled back: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for t in wait_running(&w, "cb", 2) {
        assert!(t["taskDefinitionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with("cb:1")));
    }
    delete_service(&w, "cb");
    w.assert_clean();
}

/// Poll `check` every 50 ms until it gives Some; panics after `secs`.
#[track_caller]
fn wait_until<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failing_health_check_gets_the_task_replaced() {
    let w = World::new("svc-health");
    w.busybox_image("busybox:latest", &[]);
    // Healthy while /tmp/ok exists; the sidecar waits for HEALTHY.
    let check = json!({ "command": ["CMD-SHELL", "test -f /tmp/ok"], "interval": 5, "retries": 1 });
    w.register(&json!({ "family": "hc", "containerDefinitions": [
        { "name": "web", "image": "busybox", "memory": 16, "healthCheck": check,
          "command": ["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; while true; do sleep 0.1; done"] },
        { "name": "sidecar", "image": "busybox", "memory": 16, "essential": false,
          "dependsOn": [{ "containerName": "web", "condition": "HEALTHY" }],
          "command": loop_forever("sidecar") } ] }));
    // A standalone task that is never healthy: ECS leaves it running.
    w.register(&json!({ "family": "sick", "containerDefinitions": [
        { "name": "web", "image": "busybox", "memory": 16, "healthCheck": check,
          "command": loop_forever("sick") } ] }));
    let out = w.berth(&["run-task", "--task-definition", "sick"]);
    assert_ok(&out);
    let sick = parse_json(&out)["tasks"][0]["taskArn"]
        .as_str()
        .expect("taskArn")
        .to_string();
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "hc",
        "--task-definition",
        "hc",
        "--desired-count",
        "1",
    ]));
    let service_task = |w: &World| -> Option<Value> {
        let listed = parse_json(&w.berth(&["list-tasks", "--service-name", "hc"]));
        let arn = listed["taskArns"]
            .as_array()?
            .first()?
            .as_str()?
            .to_string();
        Some(w.describe_task(&arn))
    };
    // HEALTHY, and only then the sidecar started (RUNNING).
    let first = wait_until(30, "a HEALTHY service task", || {
        service_task(&w).filter(|t| t["healthStatus"] == "HEALTHY" && t["lastStatus"] == "RUNNING")
    });
    assert_eq!(first["containers"][0]["healthStatus"], "HEALTHY", "{first}");
    assert_eq!(first["containers"][1]["healthStatus"], "UNKNOWN", "{first}");
    assert_eq!(first["containers"][1]["lastStatus"], "RUNNING", "{first}");
    let first_arn = first["taskArn"].as_str().expect("arn").to_string();
    wait_event(&w, "hc", "has reached a steady state.");

    // Break the check: the service stops the task and starts another.
    assert_ok(&w.berth(&[
        "execute-command",
        "--task",
        &first_arn,
        "--container",
        "web",
        "--command",
        "rm /tmp/ok",
    ]));
    let stopped = w.wait_task(&first_arn, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"],
        "Task failed container health checks"
    );
    assert_eq!(stopped["stopCode"], "ServiceSchedulerInitiated");
    assert_eq!(stopped["healthStatus"], "UNHEALTHY");
    wait_until(30, "a HEALTHY replacement", || {
        service_task(&w)
            .filter(|t| t["taskArn"] != first_arn.as_str() && t["healthStatus"] == "HEALTHY")
    });

    // The standalone task is UNHEALTHY and still RUNNING.
    let t = w.describe_task(&sick);
    assert_eq!(t["healthStatus"], "UNHEALTHY", "{t}");
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");

    assert_ok(&w.berth(&["stop-task", "--task", &sick]));
    w.wait_task(&sick, "STOPPED");
    delete_service(&w, "hc");
    w.assert_clean();
}

/// One HTTP/1.0 GET of `/` at `addr`; the body, or None if it failed.
fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lb\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

#[test]
fn requests_through_the_load_balancer_reach_every_task() {
    let w = World::new("svc-lb");
    w.busybox_image("busybox:latest", &[]);
    // Each task answers with a word of its own.
    w.register(&json!({ "family": "lbweb", "containerDefinitions": [{
        "name": "web", "image": "busybox", "memory": 16,
        "portMappings": [{ "containerPort": 80 }],
        "command": ["sh", "-c", "mkdir -p /www; cat /proc/sys/kernel/random/uuid > /www/index.html; httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done"] }] }));
    let lb = w.bridge.clone();
    let port = berth_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let out = w.berth(&[
        "create-load-balancer",
        "--name",
        &lb,
        "--listen",
        &listen,
        "--deregistration-delay",
        "2",
    ]);
    assert_ok(&out);
    // Its port is taken: a second listener there is refused.
    let again = w.berth(&[
        "create-load-balancer",
        "--name",
        "other",
        "--listen",
        &listen,
    ]);
    assert!(!again.status.success());
    assert!(berth_tests::stderr(&again).contains("listen"), "{again:?}");
    // A service whose container does not map the port is refused.
    let wrong = json!([{ "loadBalancerName": lb, "containerName": "web", "containerPort": 81 }]);
    let refused = w.berth(&[
        "create-service",
        "--service-name",
        "lbweb",
        "--task-definition",
        "lbweb",
        "--load-balancers",
        &wrong.to_string(),
    ]);
    assert!(
        berth_tests::stderr(&refused).contains("containerPort"),
        "{refused:?}"
    );

    let entry = json!([{ "loadBalancerName": lb, "containerName": "web", "containerPort": 80 }]);
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "lbweb",
        "--task-definition",
        "lbweb",
        "--desired-count",
        "3",
        "--load-balancers",
        &entry.to_string(),
    ]));
    wait_running(&w, "lbweb", 3);
    // Every task answers through the listener: three different words.
    let mut seen = std::collections::BTreeSet::new();
    wait_until(30, "every task to answer through the load balancer", || {
        seen.extend(http_get(&listen));
        assert!(seen.len() <= 3, "{seen:?}");
        (seen.len() == 3).then_some(())
    });
    let described = parse_json(&w.berth(&["describe-load-balancers", "--names", &lb]));
    let targets = described["loadBalancers"][0]["targets"].as_array().cloned();
    assert_eq!(targets.map(|t| t.len()), Some(3), "{described}");
    let used = w.berth(&["delete-load-balancer", "--name", &lb]);
    assert!(berth_tests::stderr(&used).contains("lbweb"), "{used:?}");

    // Scale to 1: the two that go leave the listener first.
    assert_ok(&w.berth(&[
        "update-service",
        "--service",
        "lbweb",
        "--desired-count",
        "1",
    ]));
    wait_running(&w, "lbweb", 1);
    let last = http_get(&listen).expect("an answer");
    assert!(seen.contains(&last));
    for _ in 0..20 {
        assert_eq!(http_get(&listen), Some(last.clone()));
    }
    // They served on for the deregistration delay before they stopped.
    let gone = parse_json(&w.berth(&["list-tasks", "--desired-status", "STOPPED"]));
    let gone: Vec<String> = gone["taskArns"]
        .as_array()
        .expect("taskArns")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert_eq!(gone.len(), 2, "{gone:?}");
    for arn in &gone {
        let t = w.wait_task(arn, "STOPPED");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(t[field].as_str().expect(field)).expect(field)
        };
        let served = at("executionStoppedAt") - at("stoppingAt");
        assert!(served >= chrono::Duration::seconds(2), "{t}");
    }

    delete_service(&w, "lbweb");
    assert_ok(&w.berth(&["delete-load-balancer", "--name", &lb]));
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft");
    assert!(!berth_tests::stdout(&tables).contains(&berth_net::lb::table_name(&lb)));
    assert!(http_get(&listen).is_none());
    w.assert_clean();
}

#[test]
fn a_daemon_service_runs_one_task_on_every_active_instance() {
    let w = World::new("svc-daemon");
    w.busybox_image("busybox:latest", &[]);
    w.register(&json!({ "family": "agent", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": loop_forever("daemon") }] }));
    let daemon = |extra: &[&str]| {
        let mut args = vec![
            "create-service",
            "--service-name",
            "agent",
            "--task-definition",
            "agent",
            "--scheduling-strategy",
            "DAEMON",
        ];
        args.extend_from_slice(extra);
        w.berth(&args)
    };
    w.register(
        &json!({ "family": "agentf", "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": [{
        "name": "a", "image": "busybox", "command": loop_forever("daemon") }] }),
    );
    let fargate = w.berth(&[
        "create-service",
        "--service-name",
        "agentf",
        "--task-definition",
        "agentf",
        "--scheduling-strategy",
        "DAEMON",
        "--launch-type",
        "FARGATE",
    ]);
    assert!(
        berth_tests::stderr(&fargate).contains("schedulingStrategy"),
        "{fargate:?}"
    );
    assert_ok(&daemon(&[]));
    wait_running(&w, "agent", 1);
    let s = describe_service(&w, "agent");
    assert_eq!(s["desiredCount"], 1, "{s}");
    assert_eq!(s["schedulingStrategy"], "DAEMON", "{s}");
    let scaled = w.berth(&[
        "update-service",
        "--service",
        "agent",
        "--desired-count",
        "3",
    ]);
    assert!(
        berth_tests::stderr(&scaled).contains("desiredCount"),
        "{scaled:?}"
    );

    // The instance drains: its daemon task goes; back ACTIVE, it returns.
    let listed = parse_json(&w.berth(&["list-container-instances"]));
    let instance = listed["containerInstanceArns"][0]
        .as_str()
        .expect("instance")
        .to_string();
    let state = |status: &str| {
        assert_ok(&w.berth(&[
            "update-container-instances-state",
            "--container-instances",
            &instance,
            "--status",
            status,
        ]))
    };
    state("DRAINING");
    wait_running(&w, "agent", 0);
    assert_eq!(describe_service(&w, "agent")["desiredCount"], 0);
    state("ACTIVE");
    wait_running(&w, "agent", 1);
    assert_eq!(describe_service(&w, "agent")["desiredCount"], 1);

    delete_service(&w, "agent");
    w.assert_clean();
}

#[test]
fn a_task_whose_container_monitor_dies_is_stopped_and_replaced() {
    let w = World::new("svc-orphan");
    w.busybox_image("busybox:latest", &[]);
    looping_service(&w, "orph", 1);
    let tasks = wait_running(&w, "orph", 1);
    let container = tasks[0]["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    let state = w.state(&container);
    let (pid, monitor) = (
        state["pid"].as_i64().expect("pid"),
        state["monitor"]["pid"].as_i64().expect("monitor pid"),
    );
    // The container's process outlives its monitor: the task must not
    // count it as running, nor leave it running unwatched.
    kill9(monitor);
    let arn = tasks[0]["taskArn"].as_str().expect("arn");
    let stopped = w.wait_task(arn, "STOPPED");
    assert_eq!(stopped["stopCode"], "EssentialContainerExited", "{stopped}");
    let reason = stopped["containers"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("monitor died"), "{stopped}");
    let after = wait_running(&w, "orph", 1);
    assert_ne!(after[0]["taskArn"], tasks[0]["taskArn"]);
    wait_until(10, "the orphaned process to be gone", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    delete_service(&w, "orph");
    w.assert_clean();
}

/// The pid of task `id`'s supervisor, if one runs.
fn supervisor_of(w: &World, id: &str) -> Option<i32> {
    w.monitors().into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains(berth_orchestrator::supervisor::SUPERVISOR_ARG) && c.contains(id)
        })
    })
}

#[test]
fn a_task_whose_supervisor_dies_is_adopted_by_the_next_reconcile() {
    let w = World::new("svc-adopt");
    w.busybox_image("busybox:latest", &[]);
    looping_service(&w, "adopt", 1);
    let tasks = wait_running(&w, "adopt", 1);
    let arn = tasks[0]["taskArn"].as_str().expect("arn").to_string();
    let id = berth_tests::task_id(&tasks[0]);
    let old = supervisor_of(&w, &id).expect("a supervisor");
    kill9(old);
    wait_until(10, "the supervisor to die", || {
        (!std::path::Path::new(&format!("/proc/{old}")).exists()).then_some(())
    });
    // The container runs on; a reconcile pass adopts the task, not replaces it.
    let out = w.berth(&["reconcile"]);
    assert_ok(&out);
    let pass = parse_json(&out);
    assert_eq!(pass["tasksAdopted"], json!([id]), "{pass}");
    assert_eq!(pass["tasksStarted"], json!([]), "{pass}");
    let new = wait_until(10, "a new supervisor", || supervisor_of(&w, &id));
    assert_ne!(new, old);
    assert_eq!(wait_running(&w, "adopt", 1)[0]["taskArn"], arn.as_str());

    // The new supervisor watches: a killed container is seen and replaced.
    let container = tasks[0]["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    let pid = w.state(&container)["pid"].as_i64().expect("pid");
    kill9(pid);
    let stopped = w.wait_task(&arn, "STOPPED");
    assert_eq!(stopped["stopCode"], "EssentialContainerExited", "{stopped}");
    assert_ne!(wait_running(&w, "adopt", 1)[0]["taskArn"], arn.as_str());
    delete_service(&w, "adopt");
    w.assert_clean();
}

#[test]
fn a_udp_load_balancer_spreads_datagrams_over_every_task() {
    let w = World::new("svc-lb-udp");
    w.busybox_image("busybox:latest", &[]);
    // Nothing listens on 9999/udp: each task's NoPorts counter shows what
    // reached it.
    w.register(&json!({ "family": "udp", "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16,
        "portMappings": [{ "containerPort": 9999, "protocol": "udp" }],
        "command": loop_forever("udp") }] }));
    let lb = w.bridge.clone();
    let port = berth_tests::free_port();
    assert_ok(&w.berth(&[
        "create-load-balancer",
        "--name",
        &lb,
        "--listen",
        &port.to_string(),
        "--protocol",
        "udp",
        "--deregistration-delay",
        "0",
    ]));
    let entry = json!([{ "loadBalancerName": lb, "containerName": "a", "containerPort": 9999 }]);
    assert_ok(&w.berth(&[
        "create-service",
        "--service-name",
        "udp",
        "--task-definition",
        "udp",
        "--desired-count",
        "3",
        "--load-balancers",
        &entry.to_string(),
    ]));
    let ids: Vec<String> = wait_running(&w, "udp", 3)
        .iter()
        .map(berth_tests::task_id)
        .collect();
    wait_until(10, "3 targets", || {
        let d = parse_json(&w.berth(&["describe-load-balancers", "--names", &lb]));
        (d["loadBalancers"][0]["targets"].as_array().map(Vec::len) == Some(3)).then_some(())
    });
    let before: Vec<u64> = ids
        .iter()
        .map(|id| w.udp_no_ports("default", id, "a"))
        .collect();
    // Each datagram from a socket of its own: a new flow, a new pick.
    wait_until(30, "datagrams to reach every task", || {
        for _ in 0..10 {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            sock.send_to(b"ping", ("127.0.0.1", port)).expect("send");
        }
        let reached = ids
            .iter()
            .zip(&before)
            .all(|(id, b)| w.udp_no_ports("default", id, "a") > *b);
        reached.then_some(())
    });
    delete_service(&w, "udp");
    assert_ok(&w.berth(&["delete-load-balancer", "--name", &lb]));
    w.assert_clean();
}

//! The endpoint's JSON against the field list of the agent's responses
//! (agents-stores-discovery.md §1.1).

use serde_json::{json, Value};

use super::{private_dns_name, route, ContainerTimes, Route, Snapshot};
use crate::model::{Task, TaskDefinition};

const TASK: &str = "arn:aws:ecs:us-east-1:000000000000:task/c1/0123abcd";
// The runtime ids berth gives the containers of TASK (names::runtime_id).
const APP: &str = "0123abcd-app";
const SIDE: &str = "0123abcd-side";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/c1";

fn snapshot(mode: &str) -> Snapshot {
    let definition: TaskDefinition = serde_json::from_value(json!({
        "family": "web", "revision": 3, "networkMode": mode, "cpu": "256", "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": "busybox", "cpu": 128, "memory": 64,
             "dockerLabels": {"team": "a"},
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
             "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "side", "image": "busybox", "essential": false}
        ]
    }))
    .unwrap();
    let task: Task = serde_json::from_value(json!({
        "taskArn": TASK, "clusterArn": CLUSTER, "taskDefinitionArn": "arn:td",
        "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "launchType": "EC2",
        "version": 1, "createdAt": "2026-01-01T00:00:00.000Z",
        "pullStartedAt": "2026-01-01T00:00:01.000Z", "pullStoppedAt": "2026-01-01T00:00:02.000Z",
        "startedAt": "2026-01-01T00:00:03.000Z", "group": "service:front",
        "tags": [{"key": "k", "value": "v"}],
        "containers": [
            {"containerArn": "arn:c/app", "taskArn": TASK, "name": "app", "image": "busybox",
             "lastStatus": "RUNNING", "runtimeId": APP, "healthStatus": "HEALTHY"},
            {"containerArn": "arn:c/side", "taskArn": TASK, "name": "side", "image": "busybox",
             "lastStatus": "STOPPED", "exitCode": 0, "runtimeId": SIDE}
        ],
        "x-berth": {"reservedCpu": 256, "reservedMemory": 512,
            "network": {"bridge": "b0", "address": "10.9.0.5", "prefix": 24,
                        "gateway": "10.9.0.1", "hostIfname": "v0"},
            "hostPorts": [{"container": "app", "protocol": "tcp", "hostPort": 8080,
                           "containerPort": 80}]}
    }))
    .unwrap();
    Snapshot {
        task,
        definition,
        image_ids: [("app".to_string(), "sha256:abc".to_string())].into(),
        availability_zone: Some("us-east-1a".into()),
        cgroup_parent: "berth/t".into(),
        credentials: None,
        times: std::collections::BTreeMap::new(),
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn routes_are_the_agents() {
    assert_eq!(route("/v4/x"), Some(Route::Container("x")));
    assert_eq!(route("/v4/x/"), Some(Route::Container("x")));
    assert_eq!(route("/v3/x/task"), Some(Route::Task("x")));
    assert_eq!(route("/v4/x/taskWithTags"), Some(Route::TaskWithTags("x")));
    assert_eq!(route("/v4/x/stats?a=b"), Some(Route::Stats("x")));
    assert_eq!(route("/v4/x/task/stats"), Some(Route::TaskStats("x")));
    for bad in ["/", "/v4/", "/v2/x", "/v4/x/nope", "/v4/x/task/nope"] {
        assert_eq!(route(bad), None, "{bad}");
    }
}

#[test]
fn the_container_has_the_agents_fields() {
    let s = snapshot("awsvpc");
    let c = s.container_json(APP).unwrap();
    for field in [
        "DockerId",
        "Name",
        "DockerName",
        "Image",
        "ImageID",
        "Labels",
        "DesiredStatus",
        "KnownStatus",
        "Limits",
        "CreatedAt",
        "StartedAt",
        "Type",
        "Networks",
        "ContainerARN",
        "LogDriver",
        "LogOptions",
        "Health",
        "Ports",
    ] {
        assert!(c.get(field).is_some(), "{field} missing from {c}");
    }
    assert_eq!(c["DockerId"], APP);
    assert_eq!(c["ImageID"], "sha256:abc");
    assert_eq!(c["KnownStatus"], "RUNNING");
    assert_eq!(c["Limits"], json!({"CPU": 128, "Memory": 64}));
    assert_eq!(c["Health"]["status"], "HEALTHY");
    assert_eq!(c["LogOptions"]["max-size"], "1m");
    assert_eq!(c["Ports"][0]["HostPort"], 8080);
    let labels = &c["Labels"];
    assert_eq!(labels["com.amazonaws.ecs.cluster"], CLUSTER);
    assert_eq!(labels["com.amazonaws.ecs.container-name"], "app");
    assert_eq!(labels["com.amazonaws.ecs.task-arn"], TASK);
    assert_eq!(labels["com.amazonaws.ecs.task-definition-family"], "web");
    assert_eq!(labels["com.amazonaws.ecs.task-definition-version"], "3");
    assert_eq!(labels["team"], "a");
    let net = &c["Networks"][0];
    assert_eq!(net["NetworkMode"], "awsvpc");
    assert_eq!(net["IPv4Addresses"], json!(["10.9.0.5"]));
    assert_eq!(net["IPv4SubnetCIDRBlock"], "10.9.0.0/24");
    assert_eq!(net["PrivateDNSName"], "ip-10-9-0-5.ec2.internal");
    assert!(s.container_json("someone-else").is_none());
}

#[test]
fn a_stopped_container_shows_its_exit() {
    let s = snapshot("awsvpc");
    let c = s.container_json(SIDE).unwrap();
    assert_eq!(c["KnownStatus"], "STOPPED");
    assert_eq!(c["ExitCode"], 0);
    assert!(c.get("Health").is_none(), "no health check: no Health");
    assert!(c.get("Memory").is_none());
}

#[test]
fn a_container_shows_its_own_times_else_its_tasks() {
    let mut s = snapshot("awsvpc");
    let c = s.container_json(APP).unwrap();
    assert_eq!(
        c["CreatedAt"], "2026-01-01T00:00:02.000Z",
        "the task's pull end"
    );
    s.times.insert(
        "app".into(),
        ContainerTimes {
            created_at: "2026-01-01T00:00:05.000Z".into(),
            started_at: Some("2026-01-01T00:00:06.000Z".into()),
            finished_at: None,
        },
    );
    s.times.insert(
        "side".into(),
        ContainerTimes {
            created_at: "2026-01-01T00:00:03.000Z".into(),
            started_at: Some("2026-01-01T00:00:04.000Z".into()),
            finished_at: Some("2026-01-01T00:00:09.000Z".into()),
        },
    );
    let c = s.container_json(APP).unwrap();
    assert_eq!(c["CreatedAt"], "2026-01-01T00:00:05.000Z");
    assert_eq!(c["StartedAt"], "2026-01-01T00:00:06.000Z");
    assert!(c.get("FinishedAt").is_none());
    let side = s.container_json(SIDE).unwrap();
    assert_eq!(side["FinishedAt"], "2026-01-01T00:00:09.000Z");
    let t = s.task_json(APP, false).unwrap();
    let created: Vec<&Value> = t["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["CreatedAt"])
        .collect();
    assert_eq!(created.len(), 2);
    assert_ne!(created[0], created[1], "each its own: {t}");
}

#[test]
fn the_task_has_the_agents_fields() {
    let s = snapshot("awsvpc");
    let t = s.task_json(APP, false).unwrap();
    for field in [
        "Cluster",
        "TaskARN",
        "Family",
        "Revision",
        "DesiredStatus",
        "KnownStatus",
        "Containers",
        "Limits",
        "PullStartedAt",
        "PullStoppedAt",
        "AvailabilityZone",
        "LaunchType",
        "ServiceName",
    ] {
        assert!(
            t.get(field).is_some(),
            "{field} missing from {:?}",
            keys(&t)
        );
    }
    assert_eq!(t["Cluster"], CLUSTER);
    assert_eq!(t["TaskARN"], TASK);
    assert_eq!(t["Revision"], "3");
    assert_eq!(t["Limits"], json!({"CPU": 0.25, "Memory": 512}));
    assert_eq!(t["ServiceName"], "front");
    assert_eq!(t["Containers"].as_array().unwrap().len(), 2);
    assert!(t.get("TaskTags").is_none());
    let tagged = s.task_json(APP, true).unwrap();
    assert_eq!(tagged["TaskTags"], json!({"k": "v"}));
    assert!(s.task_json("nobody", false).is_none());
    assert_eq!(
        s.containers(),
        [
            (APP.to_string(), "app".to_string()),
            (SIDE.to_string(), "side".to_string())
        ]
    );
}

#[test]
fn host_mode_shows_no_address_of_its_own() {
    let mut s = snapshot("host");
    s.task.berth.as_mut().unwrap().network = None;
    let c = s.container_json(APP).unwrap();
    assert_eq!(
        c["Networks"],
        json!([{"NetworkMode": "host", "IPv4Addresses": []}])
    );
}

#[test]
fn private_dns_names_are_ec2s() {
    assert_eq!(private_dns_name("172.17.0.2"), "ip-172-17-0-2.ec2.internal");
}

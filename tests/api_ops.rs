//! Issue 14's new operations through the real binary's aws-shaped verbs:
//! tags, attributes, cluster and account settings, DeleteTaskDefinitions,
//! capacity providers (real FARGATE tasks), idempotency, and DeleteCluster
//! after a Terraform-style teardown with this host's implicit instance;
//! then the same through `berth serve` with boto3 (every answer strictly
//! valid, tests/api/boto3_ops.py) and aws-cli v1 and v2.

mod api_world;

use std::time::{Duration, Instant};

use berth_tests::{assert_ok, parse_json, patience, stderr, strings, task_ids, World};
use serde_json::{json, Value};

const ARN: &str = "arn:aws:ecs:local:000000000000:";

/// A verb that must succeed; its JSON.
#[track_caller]
fn ok(w: &World, args: &[&str]) -> Value {
    let out = w.berth(args);
    assert_ok(&out);
    // As aws, an empty answer (TagResource's) prints nothing.
    if out.stdout.is_empty() {
        return json!({});
    }
    parse_json(&out)
}

/// A verb that must fail with ECS's `exception`; its message.
#[track_caller]
fn refused(w: &World, args: &[&str], exception: &str) -> String {
    let out = w.berth(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("({exception})")),
        "{args:?}: wanted {exception}: {err}"
    );
    err
}

fn world(name: &str) -> World {
    let w = World::new(name);
    w.busybox_image("busybox:latest", &[]);
    w
}

fn loop_forever() -> Value {
    json!([
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done"
    ])
}

/// An EC2 family `name` looping until TERM.
fn register_looping(w: &World, name: &str) {
    w.register(&json!({ "family": name, "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16, "command": loop_forever() }] }));
}

/// A Fargate family `name` looping until TERM.
fn register_fargate(w: &World, name: &str) {
    w.register(&json!({ "family": name, "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "containerDefinitions": [{ "name": "a", "image": "busybox", "command": loop_forever() }] }));
}

fn tags(w: &World, arn: &str) -> Value {
    ok(w, &["list-tags-for-resource", "--resource-arn", arn])["tags"].clone()
}

/// The live (not STOPPED) tasks of `cluster`, described: those still
/// meant to run and those stopping.
fn live_tasks(w: &World, cluster: &str) -> Vec<Value> {
    let mut arns = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let listed = ok(
            w,
            &[
                "list-tasks",
                "--cluster",
                cluster,
                "--desired-status",
                desired,
            ],
        );
        arns.extend(strings(&listed["taskArns"]));
    }
    arns.iter()
        .map(|arn| w.describe_task_in(cluster, arn.rsplit('/').next().unwrap_or(arn)))
        .filter(|t| t["lastStatus"] != "STOPPED")
        .collect()
}

/// Wait until `cluster` has `n` RUNNING tasks and no other live one.
#[track_caller]
fn wait_running(w: &World, cluster: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + patience(60);
    loop {
        let live = live_tasks(w, cluster);
        let running = live.iter().filter(|t| t["lastStatus"] == "RUNNING").count();
        if running == n && live.len() == n {
            return live;
        }
        assert!(
            Instant::now() < deadline,
            "{cluster}: {running} RUNNING of {} live, wanted {n}",
            live.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tags_on_every_kind_of_resource() {
    let w = world("ops-tags");
    ok(
        &w,
        &[
            "create-cluster",
            "--cluster-name",
            "lab",
            "--tags",
            "key=team,value=a",
        ],
    );
    let cluster = format!("{ARN}cluster/lab");
    // Create-time tags are the same tags.
    assert_eq!(tags(&w, &cluster), json!([{"key": "team", "value": "a"}]));
    ok(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &cluster,
            "--tags",
            "key=team,value=b",
            "key=env,value=x",
        ],
    );
    ok(
        &w,
        &[
            "untag-resource",
            "--resource-arn",
            &cluster,
            "--tag-keys",
            "env",
        ],
    );
    let d = ok(&w, &["describe-clusters", "--clusters", "lab"]);
    assert_eq!(
        d["clusters"][0]["tags"],
        json!([{"key": "team", "value": "b"}])
    );

    register_looping(&w, "loop");
    let td = format!("{ARN}task-definition/loop:1");
    ok(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &td,
            "--tags",
            "key=k,value=v",
        ],
    );
    let d = ok(
        &w,
        &[
            "describe-task-definition",
            "--task-definition",
            "loop:1",
            "--include",
            "TAGS",
        ],
    );
    assert_eq!(d["tags"], json!([{"key": "k", "value": "v"}]));

    // A real task: tagged while it runs.
    let run = ok(
        &w,
        &[
            "run-task",
            "--cluster",
            "lab",
            "--task-definition",
            "loop",
            "--tags",
            "key=a,value=1",
        ],
    );
    let id = task_ids(&run).pop().expect("task");
    w.wait_task_in("lab", &id, "RUNNING");
    let task = format!("{ARN}task/lab/{id}");
    ok(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &task,
            "--tags",
            "key=b,value=2",
        ],
    );
    assert_eq!(
        w.describe_task_in("lab", &id)["tags"],
        json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    );
    let instances = ok(&w, &["list-container-instances", "--cluster", "lab"]);
    let instance = strings(&instances["containerInstanceArns"])
        .pop()
        .expect("instance");
    ok(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &instance,
            "--tags",
            "key=rack,value=r1",
        ],
    );
    assert_eq!(tags(&w, &instance), json!([{"key": "rack", "value": "r1"}]));

    ok(
        &w,
        &[
            "create-service",
            "--cluster",
            "lab",
            "--service-name",
            "web",
            "--task-definition",
            "loop",
            "--desired-count",
            "0",
        ],
    );
    let service = format!("{ARN}service/lab/web");
    ok(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &service,
            "--tags",
            "key=s,value=1",
        ],
    );
    ok(
        &w,
        &[
            "untag-resource",
            "--resource-arn",
            &service,
            "--tag-keys",
            "s",
        ],
    );
    assert_eq!(tags(&w, &service), json!([]));

    // ECS's refusals.
    refused(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &format!("{ARN}service/lab/nope"),
            "--tags",
            "key=a,value=b",
        ],
        "ResourceNotFoundException",
    );
    refused(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &format!("{ARN}cluster/nope"),
            "--tags",
            "key=a,value=b",
        ],
        "ClusterNotFoundException",
    );
    refused(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            "cluster/lab",
            "--tags",
            "key=a,value=b",
        ],
        "InvalidParameterException",
    );
    let msg = refused(
        &w,
        &[
            "tag-resource",
            "--resource-arn",
            &cluster,
            "--tags",
            "key=aws:x,value=b",
        ],
        "InvalidParameterException",
    );
    assert!(msg.contains("tags[0].key"), "{msg}");
    let many: Vec<String> = (0..50).map(|i| format!("key=k{i},value=v")).collect();
    let mut args = vec!["tag-resource", "--resource-arn", cluster.as_str(), "--tags"];
    args.extend(many.iter().map(String::as_str));
    refused(&w, &args, "InvalidParameterException");
    assert_eq!(
        tags(&w, &cluster),
        json!([{"key": "team", "value": "b"}]),
        "nothing half-made"
    );

    ok(&w, &["stop-task", "--cluster", "lab", "--task", &id]);
    w.wait_task_in("lab", &id, "STOPPED");
}

#[test]
fn attributes_of_the_hosts_container_instance() {
    let w = world("ops-attrs");
    let instances = ok(&w, &["list-container-instances"]);
    let instance = strings(&instances["containerInstanceArns"])
        .pop()
        .expect("instance");
    let target = format!("targetId={instance}");
    ok(
        &w,
        &[
            "put-attributes",
            "--attributes",
            &format!("name=stack,value=prod,{target}"),
            &format!("name=gpu,{target}"),
        ],
    );
    let list = |extra: &[&str]| {
        let mut args = vec!["list-attributes", "--target-type", "container-instance"];
        args.extend_from_slice(extra);
        ok(&w, &args)["attributes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let stack = list(&["--attribute-name", "stack", "--attribute-value", "prod"]);
    assert_eq!(stack.len(), 1);
    assert_eq!(stack[0]["targetId"], instance.as_str());
    assert!(
        list(&[]).iter().any(|a| a["name"] == "ecs.os-type"),
        "ECS's own are listed too"
    );
    // The same attributes as describe-container-instances shows.
    let d = ok(
        &w,
        &[
            "describe-container-instances",
            "--container-instances",
            &instance,
        ],
    );
    assert!(d["containerInstances"][0]["attributes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["name"] == "gpu")));
    // Placement sees them: a memberOf constraint on the new attribute.
    register_looping(&w, "loop");
    let run = ok(
        &w,
        &[
            "run-task",
            "--task-definition",
            "loop",
            "--placement-constraints",
            r#"[{"type":"memberOf","expression":"attribute:stack == prod"}]"#,
        ],
    );
    let id = task_ids(&run)
        .pop()
        .unwrap_or_else(|| panic!("placed on the attribute: {run}"));
    w.wait_task(&id, "RUNNING");
    ok(&w, &["stop-task", "--task", &id]);
    w.wait_task(&id, "STOPPED");

    ok(
        &w,
        &[
            "delete-attributes",
            "--attributes",
            &format!("name=stack,{target}"),
        ],
    );
    assert!(list(&["--attribute-name", "stack"]).is_empty());
    refused(
        &w,
        &["put-attributes", "--attributes", "name=x,targetId=0123abcd"],
        "TargetNotFoundException",
    );
    refused(
        &w,
        &[
            "put-attributes",
            "--attributes",
            &format!("name=ecs.x,{target}"),
        ],
        "InvalidParameterException",
    );
    refused(
        &w,
        &["list-attributes", "--target-type", "task"],
        "InvalidParameterException",
    );
    refused(
        &w,
        &[
            "list-attributes",
            "--target-type",
            "container-instance",
            "--attribute-value",
            "x",
        ],
        "InvalidParameterException",
    );
    let ten: Vec<String> = (0..10).map(|i| format!("name=k{i},{target}")).collect();
    let mut args = vec!["put-attributes", "--attributes"];
    args.extend(ten.iter().map(String::as_str));
    refused(&w, &args, "AttributeLimitExceededException");
}

#[test]
fn cluster_and_account_settings_are_stored_and_echoed() {
    let w = world("ops-settings");
    ok(&w, &["create-cluster", "--cluster-name", "lab"]);
    let out = ok(
        &w,
        &[
            "update-cluster-settings",
            "--cluster",
            "lab",
            "--settings",
            "name=containerInsights,value=enabled",
        ],
    );
    assert_eq!(
        out["cluster"]["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}])
    );
    ok(
        &w,
        &[
            "update-cluster",
            "--cluster",
            "lab",
            "--configuration",
            r#"{"executeCommandConfiguration":{"logging":"DEFAULT"}}"#,
        ],
    );
    let d = ok(&w, &["describe-clusters", "--clusters", "lab"]);
    assert_eq!(d["clusters"][0]["settings"][0]["value"], "enabled");
    assert_eq!(
        d["clusters"][0]["configuration"]["executeCommandConfiguration"]["logging"],
        "DEFAULT"
    );
    refused(
        &w,
        &[
            "update-cluster-settings",
            "--cluster",
            "lab",
            "--settings",
            "name=x,value=enabled",
        ],
        "InvalidParameterException",
    );
    refused(
        &w,
        &[
            "update-cluster-settings",
            "--cluster",
            "nope",
            "--settings",
            "name=containerInsights,value=enabled",
        ],
        "ClusterNotFoundException",
    );

    ok(
        &w,
        &[
            "put-account-setting",
            "--name",
            "containerInsights",
            "--value",
            "enhanced",
        ],
    );
    ok(
        &w,
        &[
            "put-account-setting-default",
            "--name",
            "awsvpcTrunking",
            "--value",
            "enabled",
        ],
    );
    let own = ok(&w, &["list-account-settings"]);
    assert_eq!(
        own["settings"],
        json!([{"name": "containerInsights", "value": "enhanced",
        "principalArn": "arn:aws:iam::000000000000:root", "type": "user"}])
    );
    let eff = ok(
        &w,
        &[
            "list-account-settings",
            "--effective-settings",
            "--name",
            "awsvpcTrunking",
        ],
    );
    assert_eq!(eff["settings"][0]["value"], "enabled");
    ok(
        &w,
        &["delete-account-setting", "--name", "containerInsights"],
    );
    assert_eq!(ok(&w, &["list-account-settings"])["settings"], json!([]));
    refused(
        &w,
        &[
            "put-account-setting",
            "--name",
            "nope",
            "--value",
            "enabled",
        ],
        "InvalidParameterException",
    );
    refused(
        &w,
        &[
            "put-account-setting",
            "--name",
            "awsvpcTrunking",
            "--value",
            "maybe",
        ],
        "InvalidParameterException",
    );
}

#[test]
fn delete_task_definitions_takes_inactive_revisions_only() {
    let w = world("ops-tddel");
    register_looping(&w, "loop");
    register_looping(&w, "loop");
    ok(
        &w,
        &["deregister-task-definition", "--task-definition", "loop:1"],
    );
    let out = ok(
        &w,
        &[
            "delete-task-definitions",
            "--task-definitions",
            "loop:1",
            "loop:2",
            "loop:7",
        ],
    );
    assert_eq!(out["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
    assert_eq!(out["failures"].as_array().map(Vec::len), Some(2), "{out}");
    let d = ok(
        &w,
        &["describe-task-definition", "--task-definition", "loop:1"],
    );
    assert_eq!(d["taskDefinition"]["status"], "DELETE_IN_PROGRESS");
    refused(
        &w,
        &["run-task", "--task-definition", "loop:1"],
        "ClientException",
    );
    refused(
        &w,
        &[
            "delete-task-definitions",
            "--task-definitions",
            "a:1",
            "a:2",
            "a:3",
            "a:4",
            "a:5",
            "a:6",
            "a:7",
            "a:8",
            "a:9",
            "a:10",
            "a:11",
        ],
        "InvalidParameterException",
    );
}

#[test]
fn capacity_providers_run_real_fargate_tasks() {
    let w = world("ops-capacity");
    let d = ok(&w, &["describe-capacity-providers"]);
    assert_eq!(
        strings(&json!(d["capacityProviders"].as_array().map(|a| a
            .iter()
            .map(|p| p["name"].clone())
            .collect::<Vec<_>>()))),
        ["FARGATE", "FARGATE_SPOT"]
    );
    register_fargate(&w, "far");
    let strategy = [
        "capacityProvider=FARGATE,weight=1,base=1",
        "capacityProvider=FARGATE_SPOT,weight=1",
    ];
    let mut run = vec![
        "run-task",
        "--task-definition",
        "far",
        "--count",
        "3",
        "--capacity-provider-strategy",
    ];
    run.extend(strategy);
    // Not yet associated with the cluster.
    refused(&w, &run, "InvalidParameterException");
    // PutClusterCapacityProviders on default: these providers, that strategy.
    let put_providers = |providers: &[&'static str], strategy: &[&'static str]| {
        [
            &[
                "put-cluster-capacity-providers",
                "--cluster",
                "default",
                "--capacity-providers",
            ][..],
            providers,
            &["--default-capacity-provider-strategy"][..],
            strategy,
        ]
        .concat()
    };
    let put = ok(
        &w,
        &put_providers(
            &["FARGATE", "FARGATE_SPOT"],
            &["capacityProvider=FARGATE_SPOT,weight=1"],
        ),
    );
    assert_eq!(
        put["cluster"]["capacityProviders"],
        json!(["FARGATE", "FARGATE_SPOT"])
    );
    let d = ok(&w, &["describe-clusters"]);
    assert_eq!(
        d["clusters"][0]["defaultCapacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    let out = ok(&w, &run);
    let names: Vec<String> = out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["capacityProviderName"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["FARGATE", "FARGATE", "FARGATE_SPOT"], "{out}");
    for id in task_ids(&out) {
        let t = w.wait_task(&id, "RUNNING");
        assert_eq!(t["launchType"], "FARGATE");
        assert_eq!(t["attachments"][0]["type"], "ElasticNetworkInterface");
    }
    let mut both = run.clone();
    both.extend(["--launch-type", "FARGATE"]);
    refused(&w, &both, "InvalidParameterException");
    // A service by strategy; the cluster keeps its providers while it lives.
    ok(
        &w,
        &[
            "create-service",
            "--service-name",
            "spot",
            "--task-definition",
            "far",
            "--desired-count",
            "1",
            "--capacity-provider-strategy",
            "capacityProvider=FARGATE_SPOT,weight=1",
        ],
    );
    let live = wait_running(&w, "default", 4);
    assert!(live
        .iter()
        .any(|t| t["group"] == "service:spot" && t["capacityProviderName"] == "FARGATE_SPOT"));
    refused(
        &w,
        &put_providers(&["FARGATE"], &[]),
        "ResourceInUseException",
    );
    ok(&w, &["delete-service", "--service", "spot", "--force"]);
    for id in task_ids(&out) {
        ok(&w, &["stop-task", "--task", &id]);
    }
    wait_running(&w, "default", 0);
}

#[test]
fn idempotent_creates_then_a_terraform_teardown_deletes_the_cluster() {
    let w = world("ops-idem");
    ok(&w, &["create-cluster", "--cluster-name", "tf"]);
    register_looping(&w, "loop");
    // RunTask of `loop` with one client token, and `more` flags.
    let run = |more: &[&'static str]| {
        [
            &[
                "run-task",
                "--cluster",
                "tf",
                "--task-definition",
                "loop",
                "--client-token",
                "tok-1",
            ][..],
            more,
        ]
        .concat()
    };
    let first = ok(&w, &run(&[]));
    let again = ok(&w, &run(&[]));
    assert_eq!(task_ids(&first), task_ids(&again));
    let id = task_ids(&first).pop().expect("task");
    w.wait_task_in("tf", &id, "RUNNING");
    assert_eq!(live_tasks(&w, "tf").len(), 1, "the retry started nothing");
    refused(&w, &run(&["--count", "2"]), "ConflictException");

    let create = |count| {
        [
            "create-service",
            "--cluster",
            "tf",
            "--service-name",
            "web",
            "--task-definition",
            "loop",
            "--desired-count",
            count,
        ]
    };
    let s1 = ok(&w, &create("1"));
    let s2 = ok(&w, &create("1"));
    assert_eq!(s1["service"]["createdAt"], s2["service"]["createdAt"]);
    let msg = refused(&w, &create("2"), "InvalidParameterException");
    assert!(
        msg.contains("Creation of service was not idempotent"),
        "{msg}"
    );
    wait_running(&w, "tf", 2);

    // Terraform's destroy: the service to 0, deleted, the task stopped,
    // then the cluster, whose only instance is this host's implicit one.
    ok(
        &w,
        &[
            "update-service",
            "--cluster",
            "tf",
            "--service",
            "web",
            "--desired-count",
            "0",
        ],
    );
    ok(
        &w,
        &["delete-service", "--cluster", "tf", "--service", "web"],
    );
    refused(
        &w,
        &["delete-cluster", "--cluster", "tf"],
        "ClusterContainsTasksException",
    );
    ok(&w, &["stop-task", "--cluster", "tf", "--task", &id]);
    wait_running(&w, "tf", 0);
    // As Terraform does: describe the service until it is INACTIVE (a
    // DRAINING one still holds the cluster: ClusterContainsServices).
    let deadline = Instant::now() + patience(60);
    loop {
        let s = ok(
            &w,
            &["describe-services", "--cluster", "tf", "--services", "web"],
        );
        if s["services"][0]["status"] == "INACTIVE" {
            break;
        }
        assert!(Instant::now() < deadline, "service never INACTIVE: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deleted = ok(&w, &["delete-cluster", "--cluster", "tf"]);
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    let d = ok(&w, &["describe-clusters", "--clusters", "tf"]);
    assert_eq!(d["clusters"][0]["status"], "INACTIVE");
}

#[test]
fn boto3_drives_the_new_operations_all_strictly_valid() {
    let s = api_world::Served::new("ops-boto3");
    let out = s.python_ok("boto3_ops.py", &[]);
    assert!(out.contains("answers validated strictly"), "{out}");
}

/// aws-cli (v1 and v2) on the new verbs: tags, paged attributes and
/// account settings, a capacity provider strategy, ECS's errors.
fn aws_new_verbs(cli: api_world::Aws, name: &str) {
    let s = api_world::Served::new(name);
    let cluster = s.aws_ok(
        cli,
        &[
            "create-cluster",
            "--cluster-name",
            "cli",
            "--tags",
            "key=a,value=1",
        ],
    );
    let arn = cluster["cluster"]["clusterArn"]
        .as_str()
        .expect("arn")
        .to_string();
    s.aws_ok(
        cli,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "key=b,value=2",
        ],
    );
    let t = s.aws_ok(cli, &["list-tags-for-resource", "--resource-arn", &arn]);
    assert_eq!(
        t["tags"],
        json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    );
    let listed = s.aws_ok(
        cli,
        &[
            "list-attributes",
            "--cluster",
            "cli",
            "--target-type",
            "container-instance",
            "--page-size",
            "1",
        ],
    );
    let names: Vec<&str> = listed["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"ecs.os-type") && names.len() >= 3,
        "{listed}"
    );
    let eff = s.aws_ok(
        cli,
        &[
            "list-account-settings",
            "--effective-settings",
            "--page-size",
            "1",
        ],
    );
    assert_eq!(eff["settings"].as_array().map(Vec::len), Some(11), "{eff}");
    s.aws_ok(
        cli,
        &[
            "put-cluster-capacity-providers",
            "--cluster",
            "cli",
            "--capacity-providers",
            "FARGATE",
            "FARGATE_SPOT",
            "--default-capacity-provider-strategy",
            "capacityProvider=FARGATE_SPOT,weight=1",
        ],
    );
    let d = s.aws_ok(
        cli,
        &[
            "describe-clusters",
            "--clusters",
            "cli",
            "--include",
            "SETTINGS",
        ],
    );
    assert_eq!(
        d["clusters"][0]["defaultCapacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    let out = s.aws(
        cli,
        &[
            "tag-resource",
            "--resource-arn",
            &format!("{ARN}service/cli/nope"),
            "--tags",
            "key=a,value=b",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    s.aws_ok(cli, &["delete-cluster", "--cluster", "cli"]);
}

#[test]
fn aws_cli_v1_drives_the_new_verbs() {
    aws_new_verbs(api_world::Aws::V1, "ops-aws1");
}

#[test]
fn aws_cli_v2_drives_the_new_verbs() {
    aws_new_verbs(api_world::Aws::V2, "ops-aws2");
}

//! The `aws ecs`-shaped verbs through the real binary: clusters and task
//! definitions in the embedded store.

use std::collections::BTreeSet;
use std::process::Stdio;

use berth_tests::{assert_ok, parse_json, stderr, World};
use serde_json::json;

/// The task definition from ECS's developer guide, as AWS documents it.
const AWS_EXAMPLE: &str = r#"{
  "family": "webserver",
  "containerDefinitions": [
    {
      "name": "web",
      "image": "public.ecr.aws/docker/library/httpd:latest",
      "cpu": 99,
      "memory": 100,
      "portMappings": [{ "containerPort": 80, "hostPort": 80, "protocol": "tcp" }],
      "essential": true,
      "entryPoint": ["sh", "-c"],
      "command": ["/bin/sh -c \"echo '<html>hi</html>' > /usr/local/apache2/htdocs/index.html && httpd-foreground\""],
      "environment": [{ "name": "MODE", "value": "demo" }],
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": { "awslogs-group": "/ecs/webserver", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs" }
      },
      "healthCheck": { "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 30, "timeout": 5, "retries": 3 }
    }
  ],
  "requiresCompatibilities": ["EC2"],
  "networkMode": "bridge",
  "cpu": "256",
  "memory": "512",
  "runtimePlatform": { "operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64" },
  "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
  "tags": [{ "key": "team", "value": "web" }]
}"#;

#[test]
fn a_real_task_definition_registers_unchanged() {
    let w = World::new("ecs-taskdef");
    let file = w.root.path().join("td.json");
    std::fs::write(&file, AWS_EXAMPLE).expect("write");
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", file.display()),
    ]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("logConfiguration"),
        "ignored fields are listed: {}",
        stderr(&out)
    );
    let registered = parse_json(&out);
    let td = &registered["taskDefinition"];
    assert_eq!(
        td["taskDefinitionArn"],
        "arn:aws:ecs:local:000000000000:task-definition/webserver:1"
    );
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(registered["tags"][0]["key"], "team");
    // Every field given comes back as given.
    let given: serde_json::Value = serde_json::from_str(AWS_EXAMPLE).expect("json");
    for (k, v) in given.as_object().expect("object") {
        if k != "tags" && k != "containerDefinitions" {
            assert_eq!(&td[k], v, "{k}");
        }
    }
    for (k, v) in given["containerDefinitions"][0]
        .as_object()
        .expect("object")
    {
        assert_eq!(
            &td["containerDefinitions"][0][k], v,
            "containerDefinitions[0].{k}"
        );
    }
    let described = parse_json(&w.berth(&[
        "describe-task-definition",
        "--task-definition",
        "webserver",
        "--include",
        "TAGS",
    ]));
    assert_eq!(described["taskDefinition"], *td);
    assert_eq!(described["tags"], registered["tags"]);

    assert_ok(&w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", file.display()),
    ]));
    let out = w.berth(&[
        "deregister-task-definition",
        "--task-definition",
        "webserver:1",
    ]);
    assert_eq!(parse_json(&out)["taskDefinition"]["status"], "INACTIVE");
    let listed = parse_json(&w.berth(&["list-task-definitions"]));
    assert_eq!(
        listed["taskDefinitionArns"],
        json!(["arn:aws:ecs:local:000000000000:task-definition/webserver:2"])
    );
    let fams = parse_json(&w.berth(&["list-task-definition-families"]));
    assert_eq!(fams["families"], json!(["webserver"]));
}

#[test]
fn invalid_task_definitions_name_the_field_and_store_nothing() {
    let w = World::new("ecs-invalid");
    let cases = [
        (
            json!([{ "name": "a", "memory": 64 }]),
            vec![],
            "containerDefinitions[0].image",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 2 }]),
            vec![],
            "containerDefinitions[0].memory",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64 }, { "name": "a", "image": "b", "memory": 64 }]),
            vec![],
            "containerDefinitions[1].name",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64, "essential": false }]),
            vec![],
            "essential",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64, "dependsOn": [{ "containerName": "ghost", "condition": "START" }] }]),
            vec![],
            "dependsOn[0].containerName",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64, "healthCheck": { "command": ["CMD", "true"], "interval": "5" } }]),
            vec![],
            "containerDefinitions[0].healthCheck.interval",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64, "healthCheck": { "command": ["true"] } }]),
            vec![],
            "containerDefinitions[0].healthCheck.command",
        ),
        (
            json!([{ "name": "a", "image": "b" }]),
            vec![
                "--requires-compatibilities",
                "FARGATE",
                "--network-mode",
                "awsvpc",
                "--cpu",
                "256",
                "--memory",
                "4096",
            ],
            "No Fargate configuration exists",
        ),
        (
            json!([{ "name": "a", "image": "b", "memory": 64, "portMappings": [{ "containerPort": 80 }, { "containerPort": 80 }] }]),
            vec![],
            "portMappings[1]",
        ),
    ];
    for (containers, extra, needle) in cases {
        let defs = containers.to_string();
        let mut args = vec![
            "register-task-definition",
            "--family",
            "bad",
            "--container-definitions",
            &defs,
        ];
        args.extend(extra.iter().copied());
        let out = w.berth(&args);
        assert_eq!(out.status.code(), Some(1), "{defs}");
        let err = stderr(&out);
        assert!(
            err.contains("Exception) when calling the RegisterTaskDefinition operation"),
            "{err}"
        );
        assert!(err.contains(needle), "{defs}: {err}");
    }
    let out = w.berth(&["register-task-definition", "--cli-input-json", "{not json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cli-input-json"), "{}", stderr(&out));
    let listed = parse_json(&w.berth(&["list-task-definitions", "--status", "ALL"]));
    assert_eq!(listed["taskDefinitionArns"], json!([]));
    // A usage error is exit code 2, as aws's.
    assert_eq!(
        w.berth(&["describe-task-definition"]).status.code(),
        Some(2)
    );
}

#[test]
fn concurrent_registrations_get_distinct_revisions() {
    let w = World::new("ecs-concurrent");
    let defs = json!([{ "name": "a", "image": "busybox", "memory": 32 }]).to_string();
    let children: Vec<_> = (0..20)
        .map(|_| {
            w.command()
                .args([
                    "register-task-definition",
                    "--family",
                    "busy",
                    "--container-definitions",
                    &defs,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_ok(&out);
        revisions.insert(
            parse_json(&out)["taskDefinition"]["revision"]
                .as_u64()
                .expect("revision"),
        );
    }
    assert_eq!(revisions, (1..=20).collect::<BTreeSet<u64>>());
}

#[test]
fn clusters_lifecycle() {
    let w = World::new("ecs-clusters");
    let listed = parse_json(&w.berth(&["list-clusters"]));
    assert_eq!(
        listed["clusterArns"],
        json!(["arn:aws:ecs:local:000000000000:cluster/default"])
    );
    let out = w.berth(&[
        "create-cluster",
        "--cluster-name",
        "lab",
        "--tags",
        "key=team,value=infra",
    ]);
    assert_eq!(parse_json(&out)["cluster"]["tags"][0]["value"], "infra");
    let described = parse_json(&w.berth(&[
        "describe-clusters",
        "--clusters",
        "lab",
        "arn:aws:ecs:local:000000000000:cluster/nope",
    ]));
    assert_eq!(described["clusters"][0]["status"], "ACTIVE");
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    // --cli-input-json, as aws takes it, for any verb.
    let input = r#"{"clusterName": "fromjson", "tags": [{"key": "k", "value": "v"}]}"#;
    let out = w.berth(&["create-cluster", "--cli-input-json", input]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["cluster"]["clusterName"], "fromjson");
    let file = w.root.path().join("describe.json");
    std::fs::write(&file, r#"{"clusters": ["fromjson", "lab"]}"#).expect("write");
    let out = w.berth(&[
        "describe-clusters",
        "--cli-input-json",
        &format!("file://{}", file.display()),
    ]);
    assert_eq!(
        parse_json(&out)["clusters"].as_array().map(Vec::len),
        Some(2)
    );
    let out = w.berth(&["delete-cluster", "--cluster", "lab"]);
    assert_eq!(parse_json(&out)["cluster"]["status"], "INACTIVE");
    let out = w.berth(&["delete-cluster", "--cluster", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(ClusterNotFoundException)"),
        "{}",
        stderr(&out)
    );
    let table = w.berth(&["list-clusters", "--output", "table"]);
    assert!(berth_tests::stdout(&table).contains("cluster/default"));
    let out = w.berth(&["create-cluster", "--cluster-name", "bad name"]);
    assert!(
        stderr(&out).contains("InvalidParameterException"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn security_names_that_are_paths_are_refused_naming_the_field() {
    let w = World::new("ecs-security-names");
    let refused = |args: &[&str], field: &str| {
        let out = w.berth(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(&format!("{field}: ")), "{args:?}: {err}");
    };
    let long = "x".repeat(256);
    for bad in ["../x", "/", "..", "a/b", long.as_str()] {
        refused(&["stop-task", "--task", bad], "task");
        refused(&["logs", bad], "task");
        refused(&["create-cluster", "--cluster-name", bad], "clusterName");
        refused(&["delete-cluster", "--cluster", bad], "cluster");
        refused(&["list-tasks", "--cluster", bad], "cluster");
        refused(
            &["describe-task-definition", "--task-definition", bad],
            "taskDefinition",
        );
        refused(
            &["deregister-container-instance", "--container-instance", bad],
            "containerInstance",
        );
        // describe-* answer a failure per name, as ECS does, naming why.
        let out = w.berth(&["describe-tasks", "--tasks", bad]);
        assert_ok(&out);
        let v = parse_json(&out);
        assert_eq!(v["failures"][0]["reason"], "MISSING", "{v}");
        assert!(
            v["failures"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("tasks: ")),
            "{v}"
        );
    }
    // A family that is a path does not register.
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &json!({ "family": "../f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 6 }] })
            .to_string(),
    ]);
    assert!(stderr(&out).contains("family: "), "{}", stderr(&out));
}

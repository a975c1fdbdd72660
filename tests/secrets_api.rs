//! berth's secret store through `berth serve` with the real clients
//! (issue 15): aws-cli v1 (PyPI) and v2 (Debian's) write and read SSM
//! parameters and Secrets Manager secrets under those services' own
//! targets, and a task started after reads them as environment variables.
//! Needs `make api-deps` (the venv, /usr/bin/aws).

mod api_world;

use std::process::{Command, Output};

use api_world::{Aws, Served};
use berth_tests::{assert_ok, parse_json, stdout, task_id};
use serde_json::{json, Value};

/// `aws SERVICE ARGS… --endpoint-url E --output json` with `cli`.
fn aws(s: &Served, cli: Aws, service: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(cli.binary());
    s.client_env(&mut cmd);
    cmd.arg(service)
        .args(args)
        .args(["--endpoint-url", &s.endpoint, "--output", "json"]);
    cmd.output().expect("run aws")
}

#[track_caller]
fn aws_ok(s: &Served, cli: Aws, service: &str, args: &[&str]) -> Value {
    let out = aws(s, cli, service, args);
    assert!(
        out.status.success(),
        "aws ({cli:?}) {service} {args:?}: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("aws printed JSON")
}

#[test]
fn aws_cli_v1_and_v2_write_secrets_a_task_reads() {
    let s = Served::new("secrets-api");
    for (cli, n) in [(Aws::V1, "1"), (Aws::V2, "2")] {
        let name = format!("/app/pw{n}");
        let put = aws_ok(
            &s,
            cli,
            "ssm",
            &[
                "put-parameter",
                "--name",
                &name,
                "--value",
                &format!("pw-{n}"),
                "--type",
                "SecureString",
            ],
        );
        assert_eq!(put["Version"], 1, "{put}");
        let got = aws_ok(
            &s,
            cli,
            "ssm",
            &["get-parameter", "--name", &name, "--with-decryption"],
        );
        assert_eq!(got["Parameter"]["Value"], format!("pw-{n}"), "{got}");
        assert_eq!(
            got["Parameter"]["ARN"],
            format!("arn:aws:ssm:local:000000000000:parameter{name}")
        );
        let again = aws(
            &s,
            cli,
            "ssm",
            &["put-parameter", "--name", &name, "--value", "x"],
        );
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("ParameterAlreadyExists"),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        let made = aws_ok(
            &s,
            cli,
            "secretsmanager",
            &[
                "create-secret",
                "--name",
                &format!("db{n}"),
                "--secret-string",
                &format!(r#"{{"user":"u-{n}"}}"#),
            ],
        );
        let arn = made["ARN"].as_str().expect("ARN").to_string();
        let got = aws_ok(
            &s,
            cli,
            "secretsmanager",
            &["get-secret-value", "--secret-id", &arn],
        );
        assert_eq!(got["SecretString"], format!(r#"{{"user":"u-{n}"}}"#));
        assert_eq!(got["VersionStages"], json!(["AWSCURRENT"]));
        let missing = aws(
            &s,
            cli,
            "secretsmanager",
            &["get-secret-value", "--secret-id", "nope"],
        );
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );
    }
    // The CLI on the same state reads what the clients wrote, and a task
    // gets it.
    let w = &s.world;
    let arn = parse_json(&w.berth(&["get-secret-value", "--secret-id", "db2"]))["ARN"]
        .as_str()
        .expect("ARN")
        .to_string();
    w.register(&json!({
        "family": "apisecrets", "networkMode": "none",
        "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": 32,
            "command": ["sh", "-c", "echo \"$PW $USER_NAME\""],
            "secrets": [
                {"name": "PW", "valueFrom": "/app/pw1"},
                {"name": "USER_NAME", "valueFrom": format!("{arn}:user::")},
            ],
        }],
    }));
    let out = w.berth(&["run-task", "--task-definition", "apisecrets"]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    assert_eq!(stdout(&w.berth(&["logs", &id])), "pw-1 u-2\n");
}

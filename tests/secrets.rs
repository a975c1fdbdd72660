//! Secrets and environment files end to end (issue 15): values put with
//! the AWS CLI-shaped verbs reach a real busybox container's environment,
//! a missing secret stops the task with ECS's reason, an environment
//! file's values land under ECS's precedence, and the store never holds a
//! plaintext.

use berth_tests::{assert_ok, parse_json, stdout, task_id, World};
use serde_json::{json, Value};

fn world(name: &str) -> World {
    let w = World::new(name);
    w.busybox_image("busybox:latest", &[]);
    w
}

/// run-task of `family`, waited until STOPPED.
fn run_to_stop(w: &World, family: &str) -> (String, Value) {
    let out = w.berth(&["run-task", "--task-definition", family]);
    assert_ok(&out);
    let id = task_id(&parse_json(&out)["tasks"][0]);
    let t = w.wait_task(&id, "STOPPED");
    (id, t)
}

/// A one-container definition printing `script`'s output.
fn echo_def(family: &str, script: &str, extra: Value) -> Value {
    let mut c = json!({
        "name": "app", "image": "busybox", "memory": 32,
        "command": ["sh", "-c", script],
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    json!({"family": family, "networkMode": "none", "containerDefinitions": [c]})
}

/// Every byte the store keeps (the database and its write-ahead log).
fn store_bytes(w: &World) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        all.extend(std::fs::read(w.root.path().join(f)).unwrap_or_default());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_and_json_keys_reach_the_environment_and_never_the_store() {
    let w = world("secrets");
    assert_ok(&w.berth(&[
        "put-parameter",
        "--name",
        "/app/db/password",
        "--value",
        "pw-7f3a",
        "--type",
        "SecureString",
    ]));
    let made = w.berth(&[
        "create-secret",
        "--name",
        "db-creds",
        "--secret-string",
        r#"{"username":"admin-9c1e","port":5432}"#,
    ]);
    assert_ok(&made);
    let arn = parse_json(&made)["ARN"].as_str().expect("ARN").to_string();
    assert_ok(&w.berth(&["put-parameter", "--name", "plain", "--value", "plain-44d0"]));
    w.register(&echo_def(
        "withsecrets",
        "echo \"pw=$PW user=$DB_USER port=$DB_PORT whole=$WHOLE plain=$PLAIN\"",
        json!({"secrets": [
            {"name": "PW", "valueFrom": "/app/db/password"},
            {"name": "DB_USER", "valueFrom": format!("{arn}:username::")},
            {"name": "DB_PORT", "valueFrom": format!("{arn}:port:AWSCURRENT:")},
            {"name": "WHOLE", "valueFrom": "arn:aws:secretsmanager:local:000000000000:secret:db-creds"},
            {"name": "PLAIN", "valueFrom": "arn:aws:ssm:local:000000000000:parameter/plain"},
        ]}),
    ));
    let (id, t) = run_to_stop(&w, "withsecrets");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    let logs = stdout(&w.berth(&["logs", &id]));
    assert_eq!(
        logs,
        "pw=pw-7f3a user=admin-9c1e port=5432 whole={\"username\":\"admin-9c1e\",\"port\":5432} plain=plain-44d0\n"
    );
    let bytes = store_bytes(&w);
    assert!(!bytes.is_empty());
    for plain in ["pw-7f3a", "admin-9c1e", "plain-44d0"] {
        assert!(!contains(&bytes, plain), "{plain} is in the store");
    }
    w.assert_clean();
}

#[test]
fn a_missing_secret_stops_the_task_with_ecs_reason() {
    let w = world("secrets-missing");
    w.register(&echo_def(
        "missingssm",
        "echo ran",
        json!({"secrets": [{"name": "PW", "valueFrom": "/no/such"}]}),
    ));
    let (id, t) = run_to_stop(&w, "missingssm");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().expect("reason");
    assert!(
        reason.starts_with(
            "ResourceInitializationError: unable to pull secrets or registry auth: \
             execution resource retrieval failed: unable to retrieve secrets from ssm"
        ) && reason.contains("/no/such"),
        "{reason}"
    );
    assert_eq!(
        stdout(&w.berth(&["logs", &id])),
        "",
        "the container never ran"
    );

    // A secret without the JSON key asked for: the same, from asm.
    let made = w.berth(&[
        "create-secret",
        "--name",
        "flat",
        "--secret-string",
        "not-json",
    ]);
    assert_ok(&made);
    let arn = parse_json(&made)["ARN"].as_str().expect("ARN").to_string();
    w.register(&echo_def(
        "missingkey",
        "echo ran",
        json!({"secrets": [{"name": "K", "valueFrom": format!("{arn}:user::")}]}),
    ));
    let (_, t) = run_to_stop(&w, "missingkey");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().expect("reason");
    assert!(
        reason.contains("unable to retrieve secret from asm: failed to fetch secret")
            && reason.contains(&arn),
        "{reason}"
    );
    w.assert_clean();
}

#[test]
fn environment_files_with_ecs_precedence() {
    let w = world("envfiles");
    let bucket = w.root.path().join("s3").join("conf-bucket").join("app");
    std::fs::create_dir_all(&bucket).expect("bucket");
    std::fs::write(
        bucket.join("base.env"),
        "# defaults\n\nFROM_FILE=file-a\nOVERRIDDEN=by-file\nSECRET_WINS=by-file\nFIRST=first-file\n",
    )
    .expect("file");
    std::fs::write(
        bucket.join("more.env"),
        "FIRST=second-file\nSECOND=second-only\n",
    )
    .expect("file");
    assert_ok(&w.berth(&["put-parameter", "--name", "winner", "--value", "by-secret"]));
    w.register(&echo_def(
        "envfiles",
        "echo \"$FROM_FILE $OVERRIDDEN $SECRET_WINS $FIRST $SECOND\"",
        json!({
            "environment": [
                {"name": "OVERRIDDEN", "value": "by-environment"},
                {"name": "SECRET_WINS", "value": "by-environment"},
            ],
            "environmentFiles": [
                {"type": "s3", "value": "arn:aws:s3:::conf-bucket/app/base.env"},
                {"type": "s3", "value": "arn:aws:s3:::conf-bucket/app/more.env"},
            ],
            "secrets": [{"name": "SECRET_WINS", "valueFrom": "winner"}],
        }),
    ));
    let (id, t) = run_to_stop(&w, "envfiles");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    assert_eq!(
        stdout(&w.berth(&["logs", &id])),
        "file-a by-environment by-secret first-file second-only\n"
    );

    // A file the mirror does not have: the task does not start.
    w.register(&echo_def(
        "nofile",
        "echo ran",
        json!({"environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::conf-bucket/none.env"}]}),
    ));
    let (_, t) = run_to_stop(&w, "nofile");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().expect("reason");
    assert!(
        reason.starts_with("ResourceInitializationError: failed to download env files")
            && reason.contains("none.env"),
        "{reason}"
    );
    w.assert_clean();
}

#[test]
fn the_verbs_answer_as_aws_and_a_bad_key_file_is_named() {
    let w = World::new("secrets-cli");
    let put = w.berth(&[
        "put-parameter",
        "--name",
        "/p",
        "--value",
        "v-1",
        "--type",
        "SecureString",
    ]);
    assert_ok(&put);
    assert_eq!(parse_json(&put), json!({"Version": 1, "Tier": "Standard"}));
    let again = w.berth(&["put-parameter", "--name", "/p", "--value", "v-2"]);
    assert!(
        berth_tests::stderr(&again).contains(
            "An error occurred (ParameterAlreadyExists) when calling the PutParameter operation"
        ),
        "{}",
        berth_tests::stderr(&again)
    );
    let hidden = parse_json(&w.berth(&["get-parameter", "--name", "/p"]));
    assert_eq!(hidden["Parameter"]["Type"], "SecureString");
    assert_ne!(
        hidden["Parameter"]["Value"], "v-1",
        "a SecureString shows its ciphertext"
    );
    let shown = parse_json(&w.berth(&["get-parameter", "--name", "/p", "--with-decryption"]));
    assert_eq!(shown["Parameter"]["Value"], "v-1");
    assert_eq!(
        shown["Parameter"]["ARN"],
        "arn:aws:ssm:local:000000000000:parameter/p"
    );
    let made = parse_json(&w.berth(&["create-secret", "--name", "s", "--secret-string", "one"]));
    let arn = made["ARN"].as_str().expect("ARN");
    assert!(
        arn.starts_with("arn:aws:secretsmanager:local:000000000000:secret:s-") && arn.len() == 57,
        "{arn}"
    );
    let next = parse_json(&w.berth(&[
        "put-secret-value",
        "--secret-id",
        arn,
        "--secret-string",
        "two",
    ]));
    assert_eq!(next["VersionStages"], json!(["AWSCURRENT"]));
    let prev = parse_json(&w.berth(&[
        "get-secret-value",
        "--secret-id",
        "s",
        "--version-stage",
        "AWSPREVIOUS",
    ]));
    assert_eq!(prev["SecretString"], "one");
    assert_eq!(prev["VersionId"], made["VersionId"]);

    // The key file: root's alone, and whole.
    let key = w.root.path().join("secrets.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = w.berth(&["get-parameter", "--name", "/p"]);
    let err = berth_tests::stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("secrets.key") && err.contains("644"), "{err}");
    std::fs::write(&key, b"short").expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = berth_tests::stderr(&w.berth(&["get-secret-value", "--secret-id", "s"]));
    assert!(
        err.contains("secrets.key") && err.contains("5 bytes"),
        "{err}"
    );

    assert_ok(&w.berth(&["delete-parameter", "--name", "/p"]));
    let gone = w.berth(&["delete-parameter", "--name", "/p"]);
    assert!(berth_tests::stderr(&gone).contains("(ParameterNotFound)"));
}

/// On a shared store (etcd) the records live in etcd and the host's
/// agent starts the task: its supervisor opens the same key file.
#[test]
fn on_etcd_a_secret_reaches_a_task_the_agent_starts() {
    use berth_orchestrator::store::test_server::EtcdServer;
    use std::time::{Duration, Instant};
    // Declared before the world: the world, dropped first, still reaches it.
    let etcd = EtcdServer::start();
    let w = World::new("secrets-etcd")
        .with_store(&format!("etcd://{}/berth-test/secrets", etcd.endpoint));
    w.busybox_image("busybox:latest", &[]);
    let _agent = w.agent(&["--interval", "1"], &[]);
    let deadline = Instant::now() + berth_tests::patience(30);
    loop {
        let out = w.berth(&["list-container-instances"]);
        if parse_json(&out)["containerInstanceArns"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never registered its host"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let made = w.berth(&[
        "create-secret",
        "--name",
        "api",
        "--secret-string",
        r#"{"token":"tk-5e2b"}"#,
    ]);
    assert_ok(&made);
    let arn = parse_json(&made)["ARN"].as_str().expect("ARN").to_string();
    w.register(&echo_def(
        "etcdsecret",
        "echo \"token=$TOKEN\"",
        json!({"secrets": [{"name": "TOKEN", "valueFrom": format!("{arn}:token::")}]}),
    ));
    let (id, t) = run_to_stop(&w, "etcdsecret");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    assert_eq!(stdout(&w.berth(&["logs", &id])), "token=tk-5e2b\n");
    w.assert_clean();
}

/// A real registry behind basic auth (Debian's docker-registry with an
/// htpasswd file) holding busybox as `private/bb`: a task pulls it only
/// with its `repositoryCredentials`, read from the secret store.
#[test]
fn repository_credentials_pull_from_a_registry_that_wants_them() {
    use berth_tests::oci::Registry;
    let w = world("regauth");
    let layout = tempfile::tempdir().expect("dir");
    let dest = format!("oci:{}:latest", layout.path().display());
    assert_ok(&w.berth(&["image", "export", "busybox", &dest]));
    let registry = Registry::start(Some(("alice", "pw-reg-5e1")));
    registry.push(layout.path(), "private/bb:latest", Some("alice:pw-reg-5e1"));
    // Nothing of it stays here: every task pulls.
    assert_ok(&w.berth(&["image", "rm", "busybox"]));
    assert_ok(&w.berth(&["image", "prune"]));
    let image = format!("{}/private/bb:latest", registry.addr);
    let run = |family: &str| -> (String, Value) {
        let out = w
            .command()
            .env("BERTH_INSECURE_REGISTRIES", &registry.addr)
            .args(["run-task", "--task-definition", family])
            .output()
            .expect("run berth");
        assert_ok(&out);
        let id = task_id(&parse_json(&out)["tasks"][0]);
        let t = w.wait_task(&id, "STOPPED");
        (id, t)
    };
    let def = |family: &str, secret: Option<&str>| {
        let mut d = echo_def(family, "echo pulled-privately", json!({}));
        d["containerDefinitions"][0]["image"] = json!(image);
        if let Some(s) = secret {
            d["containerDefinitions"][0]["repositoryCredentials"] =
                json!({"credentialsParameter": s});
        }
        w.register(&d)
    };
    let reason = |t: &Value| t["stoppedReason"].as_str().expect("reason").to_string();

    // Registration checks the field's shape.
    let mut bad = echo_def("badcreds", "true", json!({}));
    bad["containerDefinitions"][0]["repositoryCredentials"] = json!({"credentialsParameter": ""});
    let out = w.berth(&[
        "register-task-definition",
        "--cli-input-json",
        &bad.to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        berth_tests::stderr(&out)
            .contains("containerDefinitions[0].repositoryCredentials.credentialsParameter"),
        "{}",
        berth_tests::stderr(&out)
    );

    // Without credentials the registry refuses, and the reason says what
    // a task gives it.
    let (_, t) = run(&def("anonymous", None));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let r = reason(&t);
    assert!(
        r.starts_with("CannotPullContainerError: pull ")
            && r.contains("401 Unauthorized")
            && r.contains("repositoryCredentials"),
        "{r}"
    );

    // A secret that is not there, or not {username, password}: ECS's
    // ResourceInitializationError, before any pull.
    let (_, t) = run(&def("nosecret", Some("no-such-registry-secret")));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let r = reason(&t);
    assert!(
        r.starts_with("ResourceInitializationError: unable to pull secrets or registry auth: ")
            && r.contains(
                "asm fetching secret from the service for no-such-registry-secret: \
                 ResourceNotFoundException"
            ),
        "{r}"
    );
    let made = w.berth(&[
        "create-secret",
        "--name",
        "reg-nopass",
        "--secret-string",
        r#"{"username":"alice"}"#,
    ]);
    assert_ok(&made);
    let nopass = parse_json(&made)["ARN"].as_str().expect("ARN").to_string();
    let (_, t) = run(&def("nopass", Some(&nopass)));
    let r = reason(&t);
    assert!(
        r.starts_with("ResourceInitializationError: unable to pull secrets or registry auth: ")
            && r.contains("asm fetching password: AuthorizationData is malformed, empty field"),
        "{r}"
    );

    // A wrong password: the registry's refusal names the secret.
    assert_ok(&w.berth(&[
        "create-secret",
        "--name",
        "reg-wrong",
        "--secret-string",
        r#"{"username":"alice","password":"not-it"}"#,
    ]));
    let (_, t) = run(&def("wrongpass", Some("reg-wrong")));
    let r = reason(&t);
    assert!(
        r.starts_with("CannotPullContainerError: ") && r.contains("reg-wrong"),
        "{r}"
    );

    // The right ones, by ARN: the task runs from the pulled image.
    let made = w.berth(&[
        "create-secret",
        "--name",
        "reg",
        "--secret-string",
        r#"{"username":"alice","password":"pw-reg-5e1"}"#,
    ]);
    assert_ok(&made);
    let arn = parse_json(&made)["ARN"].as_str().expect("ARN").to_string();
    let (id, t) = run(&def("private", Some(&arn)));
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t}");
    assert_eq!(stdout(&w.berth(&["logs", &id])), "pulled-privately\n");
    w.assert_clean();
}

/// Two hosts on one etcd: a value sealed on one opens on the other only
/// with the same key. A host with another key says so, naming its key
/// file; `berth system secrets-key export | import` gives it the first
/// host's key, or BERTH_SECRETS_KEY_FILE names a copy of it.
#[test]
fn hosts_of_one_store_share_the_key_or_name_the_key_file_that_differs() {
    use berth_orchestrator::store::test_server::EtcdServer;
    use std::io::Write;
    use std::process::Stdio;
    // Declared before the worlds: they, dropped first, still reach it.
    let etcd = EtcdServer::start();
    let url = format!("etcd://{}/berth-test/secrets-key", etcd.endpoint);
    let a = World::new("key-a").with_store(&url);
    let b = World::new("key-b").with_store(&url);
    assert_ok(&a.berth(&[
        "put-parameter",
        "--name",
        "/shared/pw",
        "--value",
        "pw-2h0s",
        "--type",
        "SecureString",
    ]));
    let read = |w: &World, key_file: Option<&std::path::Path>| {
        let mut cmd = w.command();
        if let Some(f) = key_file {
            cmd.env("BERTH_SECRETS_KEY_FILE", f);
        }
        cmd.args(["get-parameter", "--name", "/shared/pw", "--with-decryption"])
            .output()
            .expect("run berth")
    };

    // B made a key of its own at first use: it says which file differs.
    let out = read(&b, None);
    assert!(!out.status.success());
    let b_key = b.root.path().join("secrets.key");
    let err = berth_tests::stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot decrypt parameter /shared/pw with key file {}: the key differs from the one \
             that sealed it",
            b_key.display()
        )),
        "{err}"
    );

    let exported = a.berth(&["system", "secrets-key", "export"]);
    assert_ok(&exported);
    let import = |w: &World, flags: &[&str]| {
        let mut child = w
            .command()
            .args(["system", "secrets-key", "import"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&exported.stdout)
            .expect("write the key");
        child.wait_with_output().expect("wait")
    };
    // B's file holds another key: replaced only with --force.
    let out = import(&b, &[]);
    let err = berth_tests::stderr(&out);
    assert!(
        !out.status.success() && err.contains("holds another key") && err.contains("--force"),
        "{err}"
    );
    let out = import(&b, &["--force"]);
    assert_ok(&out);
    let done = parse_json(&out);
    assert_eq!(done["written"], true, "{done}");
    assert_eq!(done["keyFile"], b_key.display().to_string());
    let out = read(&b, None);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["Parameter"]["Value"], "pw-2h0s");
    assert_eq!(parse_json(&import(&b, &[]))["written"], false);

    // A third host names a copy of the key with BERTH_SECRETS_KEY_FILE;
    // a named file that is not there is refused, and none is made.
    let c = World::new("key-c").with_store(&url);
    let out = read(&c, Some(&a.root.path().join("secrets.key")));
    assert_ok(&out);
    assert_eq!(parse_json(&out)["Parameter"]["Value"], "pw-2h0s");
    let missing = c.root.path().join("no-such.key");
    let out = read(&c, Some(&missing));
    let err = berth_tests::stderr(&out);
    assert!(
        !out.status.success()
            && err.contains(&missing.display().to_string())
            && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists());
    assert!(!c.root.path().join("secrets.key").exists());
}

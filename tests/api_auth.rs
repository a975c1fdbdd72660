//! `berth serve`'s authentication and TLS with the real clients: under
//! `--auth sigv4 --credentials FILE`, aws-cli v1 and v2 and boto3 signing
//! with a key of the file are served, and a wrong secret, an unknown key
//! and no signature get AWS's exceptions (403); by default anything is
//! served; `--tls-cert/--tls-key` (a certificate the openssl CLI makes)
//! serves HTTPS to `aws --ca-bundle`, with a real busybox task, and a
//! plain-HTTP request on that port is told to use https while the server
//! keeps serving. Bad files stop `berth serve` with errors naming them.
//! Needs `make api-deps` (the venv, /usr/bin/aws) and the openssl CLI.

mod api_world;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use api_world::{header, post, write_file, Aws, Served};
use berth_tests::{patience, World};
use serde_json::{json, Value};

/// Two profiles, as a lab's shared credentials file would hold them.
const LAB: (&str, &str) = ("AKIALABEXAMPLE", "lab/Secret+Key=0");
const CI: (&str, &str) = ("AKIACIEXAMPLE", "ci-secret-key");

fn credentials_file(world: &World, mode: u32) -> PathBuf {
    let path = world.root.path().join("credentials");
    let text = format!(
        "# berth serve's keys\n[lab]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [ci]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = eu-west-3\n",
        LAB.0, LAB.1, CI.0, CI.1
    );
    std::fs::write(&path, text).expect("write credentials");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn sigv4_args(creds: &Path) -> Vec<String> {
    vec![
        "--auth".into(),
        "sigv4".into(),
        "--credentials".into(),
        creds.display().to_string(),
    ]
}

fn serve(world: World, args: &[String]) -> Served {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Served::serve(world, &args)
}

/// `aws ecs ARGS… --endpoint-url E --output json EXTRA…` signing with
/// `key` (None: the served world's dummy keys).
fn aws(s: &Served, cli: Aws, key: Option<(&str, &str)>, args: &[&str], extra: &[&str]) -> Output {
    let mut cmd = Command::new(cli.binary());
    s.client_env(&mut cmd);
    if let Some((id, secret)) = key {
        cmd.env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    cmd.arg("ecs")
        .args(args)
        .args(["--endpoint-url", &s.endpoint, "--output", "json"])
        .args(extra)
        // One attempt: a refusal must show as it is, not after retries.
        .env("AWS_MAX_ATTEMPTS", "1");
    cmd.output().expect("run aws")
}

#[track_caller]
fn json_ok(s: &Served, out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout: {}\nstderr: {}\nserver log:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("aws printed JSON")
}

#[track_caller]
fn refused_with(out: &Output, exception: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected {exception}, the call succeeded"
    );
    assert!(
        err.contains(&format!("({exception})")),
        "expected {exception}: {err}"
    );
    err
}

/// The raw body of an HTTP answer as JSON.
fn body_json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[test]
fn sigv4_serves_the_files_keys_and_refuses_the_rest() {
    let world = World::new("auth-sigv4");
    let creds = credentials_file(&world, 0o600);
    let mut s = serve(world, &sigv4_args(&creds));
    for (cli, cluster) in [(Aws::V1, "signed-v1"), (Aws::V2, "signed-v2")] {
        let made = aws(
            &s,
            cli,
            Some(LAB),
            &["create-cluster", "--cluster-name", cluster],
            &[],
        );
        assert_eq!(
            json_ok(&s, &made, "create-cluster")["cluster"]["status"],
            "ACTIVE"
        );
        let listed = json_ok(
            &s,
            &aws(&s, cli, Some(CI), &["list-clusters"], &[]),
            "list-clusters",
        );
        assert!(
            listed["clusterArns"].to_string().contains(cluster),
            "{listed}"
        );

        let wrong = aws(
            &s,
            cli,
            Some((LAB.0, "not-the-secret")),
            &["list-clusters"],
            &[],
        );
        let err = refused_with(&wrong, "InvalidSignatureException");
        assert!(err.contains("does not match"), "{err}");
        let unknown = aws(
            &s,
            cli,
            Some(("AKIANOBODY", LAB.1)),
            &["list-clusters"],
            &[],
        );
        let err = refused_with(&unknown, "UnrecognizedClientException");
        assert!(err.contains("AKIANOBODY"), "{err}");
        // The dummy keys every local emulator takes are refused too.
        refused_with(
            &aws(&s, cli, None, &["list-clusters"], &[]),
            "UnrecognizedClientException",
        );
        let unsigned = aws(
            &s,
            cli,
            Some(LAB),
            &["list-clusters"],
            &["--no-sign-request"],
        );
        refused_with(&unsigned, "MissingAuthenticationTokenException");
    }

    let out = s.python_ok("auth_boto3.py", &[CI.0, CI.1]);
    assert!(
        out.contains("Signature expired") && out.trim_end().ends_with("ok"),
        "{out}"
    );

    // Raw HTTP: 403 with AWS's body and X-Amzn-ErrorType, never dispatched.
    let (status, headers, body) =
        post(s.port, Some("DeleteCluster"), br#"{"cluster":"signed-v1"}"#);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let body = body_json(&body);
    assert_eq!(
        body["__type"], "MissingAuthenticationTokenException",
        "{body}"
    );
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    assert!(header(&headers, "x-amzn-requestid").is_some());
    let garbage =
        "POST / HTTP/1.1\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\n\
                   Authorization: AWS4-HMAC-SHA256 Credential=x\r\n";
    let (status, _, body) = s.raw(garbage, b"{}");
    assert_eq!(
        (status, body_json(&body)["__type"].clone()),
        (403, json!("IncompleteSignatureException"))
    );
    let huge = format!(
        "POST / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential={}\r\n",
        "k".repeat(9000)
    );
    let (status, _, body) = s.raw(&huge, b"{}");
    assert_eq!(
        (status, body_json(&body)["__type"].clone()),
        (403, json!("IncompleteSignatureException"))
    );

    // Nothing refused was done, and the server serves on.
    let listed = json_ok(
        &s,
        &aws(&s, Aws::V2, Some(LAB), &["list-clusters"], &[]),
        "list-clusters",
    );
    assert!(
        listed["clusterArns"].to_string().contains("signed-v1"),
        "{listed}"
    );
    assert!(s.running(), "berth serve stopped; log:\n{}", s.log());
}

/// The secret store's services under `--auth sigv4`: aws-cli v1 and v2
/// sign `aws ssm` and `aws secretsmanager` for those services and are
/// served; boto3 too, and a call signed for another service than its
/// target's is refused (tests/api/auth_secret_store_boto3.py).
#[test]
fn sigv4_serves_ssm_and_secretsmanager_signed_for_their_own_services() {
    let world = World::new("auth-secrets");
    let creds = credentials_file(&world, 0o600);
    let s = serve(world, &sigv4_args(&creds));
    let call = |cli: Aws, key: (&str, &str), service: &str, args: &[&str]| {
        let mut cmd = Command::new(cli.binary());
        s.client_env(&mut cmd);
        cmd.env("AWS_ACCESS_KEY_ID", key.0)
            .env("AWS_SECRET_ACCESS_KEY", key.1)
            .env("AWS_MAX_ATTEMPTS", "1")
            .arg(service)
            .args(args)
            .args(["--endpoint-url", &s.endpoint, "--output", "json"]);
        cmd.output().expect("run aws")
    };
    for (cli, n) in [(Aws::V1, "1"), (Aws::V2, "2")] {
        let name = format!("/signed/v{n}");
        let value = format!("pw-signed-{n}");
        let put = call(
            cli,
            LAB,
            "ssm",
            &[
                "put-parameter",
                "--name",
                &name,
                "--value",
                &value,
                "--type",
                "SecureString",
            ],
        );
        assert_eq!(json_ok(&s, &put, "ssm put-parameter")["Version"], 1);
        let got = call(
            cli,
            CI,
            "ssm",
            &["get-parameter", "--name", &name, "--with-decryption"],
        );
        assert_eq!(
            json_ok(&s, &got, "ssm get-parameter")["Parameter"]["Value"],
            value.as_str()
        );
        let secret = format!("signed-v{n}");
        let made = call(
            cli,
            LAB,
            "secretsmanager",
            &[
                "create-secret",
                "--name",
                &secret,
                "--secret-string",
                &value,
            ],
        );
        json_ok(&s, &made, "secretsmanager create-secret");
        let read = call(
            cli,
            CI,
            "secretsmanager",
            &["get-secret-value", "--secret-id", &secret],
        );
        assert_eq!(
            json_ok(&s, &read, "get-secret-value")["SecretString"],
            value.as_str()
        );
        // The same checks as ECS's: a wrong secret is refused.
        let wrong = call(
            cli,
            (LAB.0, "not-the-secret"),
            "ssm",
            &["get-parameter", "--name", &name],
        );
        refused_with(&wrong, "InvalidSignatureException");
    }
    let out = s.python_ok("auth_secret_store_boto3.py", &[CI.0, CI.1]);
    assert!(out.trim_end().ends_with("ok"), "{out}");
}

#[test]
fn by_default_any_signature_or_none_is_served() {
    let s = Served::serve(World::new("auth-none"), &[]);
    for cli in [Aws::V1, Aws::V2] {
        json_ok(
            &s,
            &aws(&s, cli, None, &["list-clusters"], &[]),
            "dummy keys",
        );
        json_ok(
            &s,
            &aws(&s, cli, Some(LAB), &["list-clusters"], &[]),
            "any keys",
        );
        let unsigned = aws(&s, cli, None, &["list-clusters"], &["--no-sign-request"]);
        json_ok(&s, &unsigned, "--no-sign-request");
    }
    let (status, _, body) = post(s.port, Some("ListClusters"), b"{}");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// A CA and a certificate it issued for 127.0.0.1, by the openssl CLI.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (the openssl CLI is needed)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).expect("certs dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=berth test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

#[test]
fn https_with_an_openssl_certificate_and_sigv4_runs_a_task() {
    let world = World::new("auth-tls");
    world.busybox_image("busybox:latest", &[]);
    let certs = make_certs(&world.root.path().join("certs"));
    let creds = credentials_file(&world, 0o600);
    let mut args = sigv4_args(&creds);
    for (flag, file) in [("--tls-cert", &certs.cert), ("--tls-key", &certs.key)] {
        args.extend([flag.to_string(), file.display().to_string()]);
    }
    let mut s = serve(world, &args);
    assert!(
        s.endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        s.endpoint
    );
    let ca = certs.ca.display().to_string();
    let tls = ["--ca-bundle", ca.as_str()];

    // aws-cli v1: a cluster and a task definition over HTTPS.
    let made = aws(
        &s,
        Aws::V1,
        Some(LAB),
        &["create-cluster", "--cluster-name", "tls"],
        &tls,
    );
    json_ok(&s, &made, "create-cluster over https");
    let td = json!({
        "family": "tls-sleep", "networkMode": "none",
        "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]
    });
    let td = write_file(&s.world, "td.json", &td.to_string());
    let reg = aws(
        &s,
        Aws::V1,
        Some(LAB),
        &["register-task-definition", "--cli-input-json", &td],
        &tls,
    );
    json_ok(&s, &reg, "register-task-definition over https");

    // aws-cli v2: a real busybox task, run to RUNNING and stopped.
    let c = ["--cluster", "tls"];
    let ran = aws(
        &s,
        Aws::V2,
        Some(CI),
        &[&["run-task"][..], &c, &["--task-definition", "tls-sleep"]].concat(),
        &tls,
    );
    let ran = json_ok(&s, &ran, "run-task over https");
    let arn = ran["tasks"][0]["taskArn"]
        .as_str()
        .expect("taskArn")
        .to_string();
    let waited = aws(
        &s,
        Aws::V2,
        Some(CI),
        &[&["wait", "tasks-running"][..], &c, &["--tasks", &arn]].concat(),
        &tls,
    );
    json_ok(&s, &waited, "wait tasks-running");
    let stop = aws(
        &s,
        Aws::V2,
        Some(CI),
        &[&["stop-task"][..], &c, &["--task", &arn]].concat(),
        &tls,
    );
    json_ok(&s, &stop, "stop-task");
    let waited = aws(
        &s,
        Aws::V2,
        Some(CI),
        &[&["wait", "tasks-stopped"][..], &c, &["--tasks", &arn]].concat(),
        &tls,
    );
    json_ok(&s, &waited, "wait tasks-stopped");

    // boto3 over HTTPS (verify=CA), refusals included.
    let out = s.python_ok("auth_boto3.py", &[LAB.0, LAB.1, &ca]);
    assert!(out.trim_end().ends_with("ok"), "{out}");

    // A client that does not trust the certificate fails on its side.
    let untrusted = aws(&s, Aws::V2, Some(LAB), &["list-clusters"], &[]);
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success() && err.contains("CERTIFICATE_VERIFY_FAILED"),
        "{err}"
    );
    // Plain HTTP on the HTTPS port: told to use https, not cut off.
    let (status, headers, body) = post(s.port, Some("ListClusters"), b"{}");
    let body = body_json(&body);
    assert_eq!(status, 400, "{body}");
    let https = format!("https://127.0.0.1:{}/", s.port);
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains(&https)),
        "{body}"
    );
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        body["__type"].as_str()
    );
    for cli in [Aws::V1, Aws::V2] {
        let mut cmd = Command::new(cli.binary());
        s.client_env(&mut cmd);
        let plain = format!("http://127.0.0.1:{}", s.port);
        let out = cmd
            .args(["ecs", "list-clusters", "--endpoint-url", &plain])
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .expect("run aws");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(&https),
            "{cli:?}: {err}"
        );
    }

    // The server serves on.
    let listed = aws(&s, Aws::V2, Some(LAB), &["list-clusters"], &tls);
    assert!(json_ok(&s, &listed, "list-clusters")["clusterArns"]
        .to_string()
        .contains("/tls"));
    assert!(s.running(), "berth serve stopped; log:\n{}", s.log());
}

/// `berth serve` with these flags must exit non-zero, its stderr naming
/// every `needles`, without ever printing the ready line; its stderr.
#[track_caller]
fn serve_fails(world: &World, args: &[&str], needles: &[&str]) -> String {
    let mut child = world
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start berth serve");
    // The server exits by itself; a Drop-less wait bounded by patience.
    let deadline = std::time::Instant::now() + patience(30);
    while matches!(child.try_wait(), Ok(None)) {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth serve {args:?} kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("berth serve's output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "berth serve {args:?} succeeded");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "berth serve {args:?}: {needle:?} not in: {err}"
        );
    }
    err.into_owned()
}

#[test]
fn bad_credentials_and_certificates_stop_serve_naming_the_file() {
    let world = World::new("auth-files");
    let certs = make_certs(&world.root.path().join("certs"));
    let creds = credentials_file(&world, 0o644);
    let c = creds.display().to_string();
    serve_fails(
        &world,
        &["--auth", "sigv4", "--credentials", &c],
        &[&c, "chmod 600"],
    );
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Another user's file (uid 65534, nobody) could have its keys changed.
    std::os::unix::fs::chown(&creds, Some(65534), None).expect("chown");
    serve_fails(
        &world,
        &["--auth", "sigv4", "--credentials", &c],
        &[&c, "owned by uid 65534"],
    );
    std::os::unix::fs::chown(&creds, Some(0), None).expect("chown back");
    serve_fails(&world, &["--auth", "sigv4"], &["--credentials FILE"]);
    serve_fails(&world, &["--credentials", &c], &["--auth sigv4"]);
    let missing = world.root.path().join("nope").display().to_string();
    let err = serve_fails(
        &world,
        &["--auth", "sigv4", "--credentials", &missing],
        &[&missing],
    );
    assert_eq!(err.matches("No such file").count(), 1, "said once: {err}");
    std::fs::write(&creds, "[lab]\naws_access_key_id = AKIA\n").expect("write");
    serve_fails(
        &world,
        &["--auth", "sigv4", "--credentials", &c],
        &[&format!("{c}:1"), "no aws_secret_access_key"],
    );

    let (cert, key) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
    );
    let ca_key = world.root.path().join("certs/ca.key").display().to_string();
    serve_fails(
        &world,
        &["--tls-cert", &cert, "--tls-key", &ca_key],
        &[&ca_key, &cert, "is not the key of"],
    );
    serve_fails(
        &world,
        &["--tls-cert", &key, "--tls-key", &key],
        &["--tls-cert", &key, "CERTIFICATE"],
    );
    serve_fails(&world, &["--tls-cert", &cert], &["--tls-key"]);
}

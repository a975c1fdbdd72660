//! A served [`World`]: `berth serve` on 127.0.0.1 (a port the kernel picks,
//! read from its ready line) over the world's own state, and the real
//! clients pointed at it: aws-cli v1 (the venv's), aws-cli v2 (Debian's
//! /usr/bin/aws) and boto3 (the venv's python, with tests/api/ on its
//! path). The server is stopped (SIGKILL) and reaped when the `Served` is
//! dropped, before the world cleans up. Other API tests `mod api_world;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use berth_tests::{patience, World};
use serde_json::Value;

/// The virtualenv `make api-deps` makes: `BERTH_TEST_VENV`, or
/// `<repo>/.build/venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("BERTH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.build/venv")))
}

/// A client binary, or a failure saying how to install it (never a skip).
fn client(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `make api-deps` (aws-cli v1, boto3 in .build/venv; aws-cli v2 from Debian)",
        path.display()
    );
    path
}

/// The directory of the API tests' Python scripts.
pub fn scripts() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/api"))
}

/// Which aws-cli.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aws {
    /// PyPI's awscli (v1) in the venv.
    V1,
    /// Debian's awscli (v2) at /usr/bin/aws.
    V2,
}

impl Aws {
    pub fn binary(self) -> PathBuf {
        match self {
            Aws::V1 => client(venv().join("bin/aws")),
            Aws::V2 => client(PathBuf::from("/usr/bin/aws")),
        }
    }
}

pub struct Served {
    child: Child,
    pub endpoint: String,
    pub port: u16,
    log: PathBuf,
    /// Dropped after the server is killed: the world cleans up last.
    pub world: World,
}

impl Served {
    /// A fresh world with the image `busybox:latest` (the busybox rootfs),
    /// served.
    pub fn new(name: &str) -> Self {
        let world = World::new(name);
        world.busybox_image("busybox:latest", &[]);
        Self::serve(world, &[])
    }

    /// `world`, served with `berth serve --listen 127.0.0.1:0 ARGS…`.
    pub fn serve(world: World, args: &[&str]) -> Self {
        let log = world.root.path().join("serve.log");
        let stderr = std::fs::File::create(&log).expect("serve log");
        let mut child = world
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("BERTH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start berth serve");
        let stdout = child.stdout.take().expect("serve's stdout");
        // The ready line, read on a thread so a server that never prints
        // fails the test after its patience instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(patience(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth serve printed no ready line; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected ready line {line:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_string();
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {endpoint:?}"));
        Self {
            child,
            endpoint,
            port,
            log,
            world,
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, and its exit status (SIGKILL after the patience).
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Signal `sig`, and its exit status (SIGKILL after the patience).
    pub fn stop_with(&mut self, sig: i32) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let deadline = Instant::now() + patience(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "berth serve did not stop on signal {sig}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The environment every client gets: dummy keys and a region (SigV4
    /// needs them), no config files or metadata lookups of this host's.
    pub fn client_env(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_PAGER", "")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("BERTH_ENDPOINT", &self.endpoint)
            .stdin(Stdio::null());
    }

    /// `aws ecs ARGS… --endpoint-url E --output json` with `cli`.
    pub fn aws(&self, cli: Aws, args: &[&str]) -> Output {
        let mut cmd = Command::new(cli.binary());
        self.client_env(&mut cmd);
        cmd.arg("ecs")
            .args(args)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"]);
        cmd.output().expect("run aws")
    }

    /// `aws ecs ARGS…`, which must succeed; its JSON (null when it printed
    /// nothing, as the waiters do).
    #[track_caller]
    pub fn aws_ok(&self, cli: Aws, args: &[&str]) -> Value {
        let out = self.aws(cli, args);
        assert!(
            out.status.success(),
            "aws ({cli:?}) ecs {args:?} failed ({:?})\nstdout: {}\nstderr: {}\nserver log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "aws printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The venv's python running tests/api/SCRIPT ARGS… against this server
    /// (`BERTH_ENDPOINT`), tests/api on its path.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(client(venv().join("bin/python")));
        self.client_env(&mut cmd);
        cmd.arg(scripts().join(script))
            .args(args)
            .env("PYTHONPATH", scripts())
            .env("PYTHONUNBUFFERED", "1");
        cmd.output().expect("run python")
    }

    /// A script that must succeed, its output printed either way.
    #[track_caller]
    pub fn python_ok(&self, script: &str, args: &[&str]) -> String {
        let out = self.python(script, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        println!("{stdout}");
        assert!(
            out.status.success(),
            "{script} failed ({:?})\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
            out.status.code(),
            self.log()
        );
        stdout
    }

    /// One raw HTTP/1.1 request (`Connection: close`); the status, the
    /// headers (lower-cased names) and the body.
    pub fn raw(&self, request_head: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        raw_http(self.port, request_head, body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /` to 127.0.0.1:`port` with `X-Amz-Target` (when given) and `body`.
pub fn post(port: u16, target: Option<&str>, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut head = String::from("POST / HTTP/1.1\r\nContent-Type: application/x-amz-json-1.1\r\n");
    if let Some(t) = target {
        head.push_str(&format!(
            "X-Amz-Target: AmazonEC2ContainerServiceV20141113.{t}\r\n"
        ));
    }
    raw_http(port, &head, body)
}

fn raw_http(port: u16, head: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to berth serve");
    s.set_read_timeout(Some(patience(30))).expect("timeout");
    let mut req = head.to_string();
    req.push_str(&format!(
        "Host: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(req.as_bytes()).expect("send head");
    // A server may answer (413) before taking the whole body: a failed
    // write is not the test's failure, the answer is what counts.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_http(&raw)
}

fn parse_http(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// The value of header `name` (lower case).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A file in the world's root with `content` (for `file://` arguments).
pub fn write_file(world: &World, name: &str, content: &str) -> String {
    let path: PathBuf = world.root.path().join(name);
    std::fs::write(&path, content).expect("write file");
    format!("file://{}", Path::new(&path).display())
}

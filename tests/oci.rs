//! Hand-made OCI images for tests: layouts, archives and registries that
//! serve them, including broken ones.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_rootfs::Digest;
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub use berth_rootfs::testing::{gzip, tar_of};

/// The blobs of one image: manifest, config, layers.
pub struct ImageBlobs {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    /// (compressed blob, media type)
    pub layers: Vec<(Vec<u8>, String)>,
}

impl ImageBlobs {
    /// An image of gzip layers made from uncompressed tars.
    pub fn new(tars: &[Vec<u8>], cmd: &[&str]) -> Self {
        let layers: Vec<(Vec<u8>, String)> = tars
            .iter()
            .map(|t| (gzip(t), OCI_LAYER_GZIP.to_string()))
            .collect();
        let diff_ids: Vec<String> = tars.iter().map(|t| Digest::of(t).to_string()).collect();
        let config = json!({
            "architecture": berth_rootfs::image::Platform::host().architecture,
            "os": "linux",
            "config": { "Cmd": cmd, "Env": ["PATH=/bin"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        })
        .to_string()
        .into_bytes();
        let mut img = Self {
            manifest: Vec::new(),
            config,
            layers,
        };
        img.rewrite_manifest(OCI_MANIFEST);
        img
    }

    pub fn rewrite_manifest(&mut self, media_type: &str) {
        self.manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": { "mediaType": OCI_CONFIG, "digest": Digest::of(&self.config).to_string(), "size": self.config.len() },
            "layers": self.layers.iter().map(|(b, m)| json!({
                "mediaType": m, "digest": Digest::of(b).to_string(), "size": b.len(),
            })).collect::<Vec<Value>>(),
        })
        .to_string()
        .into_bytes();
    }

    /// Every blob by digest, as a layout or registry holds them.
    pub fn blobs(&self) -> Vec<(Digest, Vec<u8>)> {
        let mut out = vec![
            (Digest::of(&self.manifest), self.manifest.clone()),
            (Digest::of(&self.config), self.config.clone()),
        ];
        out.extend(self.layers.iter().map(|(b, _)| (Digest::of(b), b.clone())));
        out
    }

    /// Write an OCI layout at `dir`, its image named `ref_name`.
    pub fn write_layout(&self, dir: &Path, ref_name: &str) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("blobs dir");
        for (d, bytes) in self.blobs() {
            std::fs::write(blobs.join(d.hex()), bytes).expect("blob");
        }
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": Digest::of(&self.manifest).to_string(),
                "size": self.manifest.len(),
                "annotations": { "org.opencontainers.image.ref.name": ref_name },
            }],
        });
        std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
    }
}

/// A tar of directory `dir`'s files (for oci-archive).
pub fn tar_dir(dir: &Path, out: &Path) {
    let file = std::fs::File::create(out).expect("create archive");
    let mut b = tar::Builder::new(file);
    b.append_dir_all(".", dir).expect("archive");
    b.finish().expect("finish");
}

/// A response a fake registry gives for a path.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Send fewer bytes than Content-Length says.
    pub truncate_to: Option<usize>,
}

impl Reply {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type: content_type.into(),
            body,
            truncate_to: None,
        }
    }

    /// An error reply with the body a distribution registry sends.
    pub fn status(status: u16) -> Self {
        let (code, message) = match status {
            401 => ("UNAUTHORIZED", "authentication required"),
            404 => ("MANIFEST_UNKNOWN", "manifest unknown"),
            _ => ("UNKNOWN", "unknown error"),
        };
        Self {
            status,
            content_type: "application/json".into(),
            body: format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#)
                .into_bytes(),
            truncate_to: None,
        }
    }
}

/// A registry that answers from a table, for failures a real one will not
/// produce on demand. Listens on 127.0.0.1 only.
pub struct FakeRegistry {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl FakeRegistry {
    /// Serve `image` as `repo:latest`; `edit` may break the replies.
    pub fn serving(
        repo: &str,
        image: &ImageBlobs,
        edit: impl FnOnce(&mut HashMap<String, Reply>),
    ) -> Self {
        let mut routes = HashMap::new();
        routes.insert(
            "/v2/".to_string(),
            Reply::ok("application/json", b"{}".to_vec()),
        );
        let manifest_type = serde_json::from_slice::<Value>(&image.manifest)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let manifest = Reply::ok(&manifest_type, image.manifest.clone());
        routes.insert(format!("/v2/{repo}/manifests/latest"), manifest.clone());
        routes.insert(
            format!("/v2/{repo}/manifests/{}", Digest::of(&image.manifest)),
            manifest,
        );
        for (d, bytes) in image.blobs() {
            routes.insert(
                format!("/v2/{repo}/blobs/{d}"),
                Reply::ok("application/octet-stream", bytes),
            );
        }
        edit(&mut routes);
        Self::start(routes)
    }

    pub fn start(routes: HashMap<String, Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let routes = routes.clone();
                    std::thread::spawn(move || serve(conn, &routes));
                }
            }
        });
        Self { addr, stop }
    }
}

fn serve(mut conn: TcpStream, routes: &HashMap<String, Reply>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/");
    let reply = routes
        .get(path)
        .cloned()
        .unwrap_or_else(|| Reply::status(404));
    let is_head = request_line.starts_with("HEAD");
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    if reply.status == 200 && path.contains("/manifests/") {
        head.push_str(&format!(
            "Docker-Content-Digest: {}\r\n",
            Digest::of(&reply.body)
        ));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    if !is_head {
        let n = reply
            .truncate_to
            .unwrap_or(reply.body.len())
            .min(reply.body.len());
        let _ = conn.write_all(&reply.body[..n]);
    }
    let _ = conn.flush();
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Debian's docker-registry on 127.0.0.1 with its own config and storage,
/// stopped (and its storage removed) when dropped.
pub struct Registry {
    pub addr: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// With `user`, the registry requires basic auth as that user.
    pub fn start(user: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n  secret: berth-test\n  draintimeout: 1s\n",
            dir.path().join("data").display()
        );
        if let Some((name, password)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", name, password])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).expect("htpasswd file");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let log = dir.path().join("log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(i) = text.find("listening on 127.0.0.1:") {
                let rest = &text[i + "listening on ".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                break rest[..end].to_string();
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                panic!("docker-registry did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            addr,
            child,
            _dir: dir,
        }
    }

    /// Push an OCI layout's image here as `repo:tag` with skopeo.
    pub fn push(&self, layout: &Path, repo: &str, creds: Option<&str>) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "-q",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        let out = cmd
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{repo}", self.addr))
            .output()
            .expect("skopeo (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo push: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

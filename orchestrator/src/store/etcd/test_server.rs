//! A real etcd server for tests: Debian's `etcd` on 127.0.0.1 (or an
//! address the test made) with free client and peer ports and a temporary
//! data dir, killed and removed on drop (a failing test's unwinding
//! included). Other crates' tests get it with the `test-etcd` feature.

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh single-member etcd may take to elect itself.
const READY: Duration = Duration::from_secs(20);

pub struct EtcdServer {
    child: Child,
    pub endpoint: String,
    // Dropped after the child is killed (field order): the data dir goes.
    dir: tempfile::TempDir,
}

/// A port free on `ip` right now. Another process may take it before etcd
/// binds it; `start` retries on a server that exits early.
fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl EtcdServer {
    /// A single-member server on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A single-member server listening on `ip` (loopback, or an address of
    /// a bridge the test made).
    pub fn start_on(ip: IpAddr) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(ip) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start: {last}");
    }

    fn try_start(ip: IpAddr) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (client, peer) = (free_port(ip), free_port(ip));
        let client_url = format!("http://{ip}:{client}");
        let peer_url = format!("http://{ip}:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn etcd (apt-get install etcd-server): {e}"))?;
        let mut server = EtcdServer {
            child,
            endpoint: format!("{ip}:{client}"),
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Until the client port answers and a request is served (the member
    /// has become leader).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                return Err(format!("etcd exited ({status}): {tail}"));
            }
            if TcpStream::connect(&self.endpoint).is_ok() && self.serves() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("etcd at {} not ready in {READY:?}", self.endpoint))
    }

    fn serves(&self) -> bool {
        use crate::store::Store;
        super::EtcdStore::connect(std::slice::from_ref(&self.endpoint), "ready/")
            .and_then(|s| s.get("probe"))
            .is_ok()
    }

    /// Stop the server now (kill, as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

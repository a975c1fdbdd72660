//! Receivers for the forwarding log drivers' tests, each the test's own:
//! a syslog socket (UDP on loopback, or a datagram socket in a temporary
//! directory), a journald instance in a journal namespace of its own (the
//! real `systemd-journald NAMESPACE`, read with `journalctl --namespace`),
//! and a TCP listener on loopback decoding Fluentd's Forward protocol with
//! a real msgpack decoder (`rmpv`): Debian has neither fluentd nor
//! fluent-bit.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::patience;
use serde_json::Value;

/// A datagram receiver: UDP on 127.0.0.1 or a unix socket.
pub enum Datagrams {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Datagrams {
    pub fn udp() -> Self {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Self::Udp(s)
    }

    pub fn unix(path: &std::path::Path) -> Self {
        let s = UnixDatagram::bind(path).expect("bind unixgram");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Self::Unix(s)
    }

    pub fn port(&self) -> u16 {
        match self {
            Self::Udp(s) => s.local_addr().expect("addr").port(),
            Self::Unix(_) => 0,
        }
    }

    /// Messages received until `n` have come (or patience runs out).
    pub fn take(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + patience(30);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while got.len() < n && Instant::now() < deadline {
            let r = match self {
                Self::Udp(s) => s.recv(&mut buf),
                Self::Unix(s) => s.recv(&mut buf),
            };
            if let Ok(len) = r {
                got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
        }
        got
    }
}

/// A journald of the test's own, in namespace `name`; stopped and its
/// files removed on drop.
pub struct Journal {
    pub namespace: String,
    child: Child,
}

impl Journal {
    pub fn start(tag: &str) -> Self {
        let namespace = format!("berth-test-{}-{tag}", std::process::id());
        let bin = [
            "/lib/systemd/systemd-journald",
            "/usr/lib/systemd/systemd-journald",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("systemd-journald is not installed (Debian package systemd)");
        let child = Command::new(bin)
            .arg(&namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let journal = Self { namespace, child };
        let socket = journal.socket();
        let deadline = Instant::now() + patience(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "journald made no {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        journal
    }

    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.namespace))
    }

    /// The entries with `CONTAINER_NAME=name`, once there are `n`.
    pub fn entries(&self, name: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + patience(30);
        loop {
            let out = Command::new("journalctl")
                .args(["--namespace", &self.namespace, "--no-pager", "-o", "json"])
                .arg(format!("CONTAINER_NAME={name}"))
                .output()
                .expect("run journalctl");
            let entries: Vec<Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if entries.len() >= n || Instant::now() >= deadline {
                return entries;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.namespace));
        let _ = std::fs::remove_dir_all(format!("/run/log/journal/{}", self.namespace));
        let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
        for dir in ["/var/log/journal", "/run/log/journal"] {
            let _ = std::fs::remove_dir_all(format!("{dir}/{}.{}", machine.trim(), self.namespace));
        }
    }
}

/// A Forward-protocol receiver on 127.0.0.1: every connection's bytes
/// decoded as msgpack values, in order.
pub struct Forward {
    pub port: u16,
    events: Arc<Mutex<Vec<rmpv::Value>>>,
}

impl Forward {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = listener.local_addr().expect("addr").port();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        // Ends with the test process; it only reads.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        bytes.extend_from_slice(&buf[..n]);
                        let mut cursor = std::io::Cursor::new(&bytes[..]);
                        let mut consumed = 0;
                        while let Ok(v) = rmpv::decode::read_value(&mut cursor) {
                            consumed = cursor.position() as usize;
                            sink.lock().expect("events").push(v);
                        }
                        bytes.drain(..consumed);
                    }
                });
            }
        });
        Self { port, events }
    }

    /// The events received, once there are `n`.
    pub fn events(&self, n: usize) -> Vec<rmpv::Value> {
        let deadline = Instant::now() + patience(30);
        loop {
            let got = self.events.lock().expect("events").clone();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

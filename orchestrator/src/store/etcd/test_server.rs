//! A real etcd for tests: Debian's `etcd` on 127.0.0.1 (or an address
//! the test made) with free client and peer ports and a temporary data
//! dir, killed and removed on drop (a failing test's unwinding included).
//! [`EtcdServer`] is one member, [`EtcdCluster`] three; either can kill
//! a member and restart it on the same data dir and ports. Other crates'
//! tests get them with the `test-etcd` feature.

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh etcd may take to elect a leader.
const READY: Duration = Duration::from_secs(20);

/// A port free on `ip` right now. Another process may take it before etcd
/// binds it; starting retries on a server that exits early.
fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// TLS for the servers: their certificate and key, and the CA whose
/// clients they accept (`--client-cert-auth`); a client's certificate
/// and key to see that a member serves.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One etcd member: its name, addresses, data dir and process.
struct Member {
    name: String,
    ip: IpAddr,
    client: u16,
    peer: u16,
    dir: PathBuf,
    tls: Option<ServerTls>,
    /// --initial-cluster and --initial-cluster-token, kept for restarts.
    cluster: String,
    token: String,
    child: Option<Child>,
}

impl Member {
    fn new(name: &str, ip: IpAddr, parent: &Path, tls: Option<ServerTls>) -> Self {
        Member {
            name: name.into(),
            ip,
            client: free_port(ip),
            peer: free_port(ip),
            dir: parent.join(name),
            tls,
            cluster: String::new(),
            token: String::new(),
            child: None,
        }
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.ip, self.client)
    }

    fn peer_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.peer)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Start the process (the data dir, once made, is reused: a restart
    /// rejoins with what it had).
    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://{}", self.endpoint());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", &self.name])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &self.peer_url()])
            .args(["--initial-advertise-peer-urls", &self.peer_url()])
            .args(["--initial-cluster", &self.cluster])
            .args(["--initial-cluster-token", &self.token]);
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn etcd (apt-get install etcd-server): {e}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// An error when the process has exited, with its log's tail.
    fn exited(&mut self) -> Result<(), String> {
        let status = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return Ok(()),
        };
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
        Err(format!("etcd {} exited ({status}): {tail}", self.name))
    }

    /// The member answers a read (a quorum is up).
    fn serves(&self) -> bool {
        use crate::store::Store;
        if TcpStream::connect(self.endpoint()).is_err() {
            return false;
        }
        let endpoints = [self.endpoint()];
        let store = match &self.tls {
            None => super::EtcdStore::connect(&endpoints, "ready/"),
            Some(tls) => {
                let read = |p: &PathBuf| std::fs::read(p).unwrap_or_default();
                let pem = super::TlsPem {
                    ca: read(&tls.ca),
                    identity: Some((read(&tls.client_cert), read(&tls.client_key))),
                };
                super::EtcdStore::connect_tls(&endpoints, "ready/", "probe", pem)
            }
        };
        store.and_then(|s| s.get("probe")).is_ok()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Until every member in `members` serves, or one exits.
fn wait_ready(members: &mut [&mut Member]) -> Result<(), String> {
    let deadline = Instant::now() + READY;
    loop {
        for m in members.iter_mut() {
            m.exited()?;
        }
        if members.iter().all(|m| m.serves()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<_> = members.iter().map(|m| m.endpoint()).collect();
            return Err(format!("etcd at {names:?} not ready in {READY:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Start `n` members on `ip` as one cluster; retried (fresh ports and
/// dirs) when a member exits early, as a port taken meanwhile makes it.
fn start_members(n: usize, ip: IpAddr, tls: Option<ServerTls>) -> (tempfile::TempDir, Vec<Member>) {
    let mut last = String::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("etcd's temporary dir");
        let mut members: Vec<Member> = (0..n)
            .map(|i| Member::new(&format!("m{i}"), ip, dir.path(), tls.clone()))
            .collect();
        let cluster = initial_cluster(&members);
        let token = format!("berth-test-{}", dir.path().display());
        for m in &mut members {
            m.cluster = cluster.clone();
            m.token = token.clone();
        }
        let started = members
            .iter_mut()
            .try_for_each(Member::spawn)
            .and_then(|()| wait_ready(&mut members.iter_mut().collect::<Vec<_>>()));
        match started {
            Ok(()) => return (dir, members),
            Err(e) => {
                members.iter_mut().for_each(Member::kill);
                last = e;
            }
        }
    }
    panic!("etcd did not start: {last}");
}

pub struct EtcdServer {
    member: Member,
    pub endpoint: String,
    // Dropped after the member is killed (Drop): the data dir goes.
    _dir: tempfile::TempDir,
}

impl EtcdServer {
    /// A single-member server on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A single-member server listening on `ip` (loopback, or an address of
    /// a bridge the test made).
    pub fn start_on(ip: IpAddr) -> Self {
        Self::start_with(ip, None)
    }

    /// A single member on 127.0.0.1 speaking TLS only, to clients with a
    /// certificate `tls.ca` signed.
    pub fn start_tls(tls: ServerTls) -> Self {
        Self::start_with(IpAddr::V4(Ipv4Addr::LOCALHOST), Some(tls))
    }

    fn start_with(ip: IpAddr, tls: Option<ServerTls>) -> Self {
        let (dir, mut members) = start_members(1, ip, tls);
        let member = members.remove(0);
        EtcdServer {
            endpoint: member.endpoint(),
            member,
            _dir: dir,
        }
    }

    /// Stop the server now (kill, as a crash would).
    pub fn kill(&mut self) {
        self.member.kill();
    }

    /// Start it again on the same data dir and ports: it comes back with
    /// every record it had.
    pub fn restart(&mut self) {
        self.member.kill();
        let started = self
            .member
            .spawn()
            .and_then(|()| wait_ready(&mut [&mut self.member]));
        if let Err(e) = started {
            panic!("etcd did not restart: {e}");
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three etcd members on loopback, one cluster: a member's loss (the
/// leader's too) leaves a quorum.
pub struct EtcdCluster {
    members: Vec<Member>,
    /// `host:port` of each member, by index.
    pub endpoints: Vec<String>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub fn start() -> Self {
        let (dir, members) = start_members(3, IpAddr::V4(Ipv4Addr::LOCALHOST), None);
        EtcdCluster {
            endpoints: members.iter().map(Member::endpoint).collect(),
            members,
            _dir: dir,
        }
    }

    /// Three members listening on `ip`: an address of a bridge the test
    /// made (the cluster tests' underlay, which their hosts reach).
    pub fn start_on(ip: IpAddr) -> Self {
        let (dir, members) = start_members(3, ip, None);
        EtcdCluster {
            endpoints: members.iter().map(Member::endpoint).collect(),
            members,
            _dir: dir,
        }
    }

    /// Kill member `index` (as a crash would).
    pub fn kill(&mut self, index: usize) {
        self.members[index].kill();
    }

    /// Restart member `index` on its data dir; it rejoins the others.
    pub fn restart(&mut self, index: usize) {
        let member = &mut self.members[index];
        member.kill();
        let started = member.spawn().and_then(|()| wait_ready(&mut [member]));
        if let Err(e) = started {
            panic!("etcd member {index} did not restart: {e}");
        }
    }

    /// Until a live member leads (after a leader was killed: the others'
    /// election).
    pub fn wait_for_leader(&self) -> usize {
        let deadline = Instant::now() + READY;
        loop {
            if let Some(leader) = self.leader() {
                return leader;
            }
            assert!(Instant::now() < deadline, "no etcd leader in {READY:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the member that leads now, as the live members see
    /// it; None while there is none.
    pub fn leader(&self) -> Option<usize> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            for endpoint in &self.endpoints {
                let connect = etcd_client::Client::connect([endpoint], None);
                let Ok(Ok(mut client)) = tokio::time::timeout(READY / 10, connect).await else {
                    continue;
                };
                let Ok(Ok(status)) = tokio::time::timeout(READY / 10, client.status()).await else {
                    continue;
                };
                let me = status.header().map(|h| h.member_id());
                if me == Some(status.leader()) {
                    return self.endpoints.iter().position(|e| e == endpoint);
                }
            }
            None
        })
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.members.iter_mut().for_each(Member::kill);
    }
}

//! Several berth hosts on one machine, for the cluster tests (issue 13).
//!
//! Each "host" is a network namespace joined by a veth pair to an underlay
//! bridge the test made, with its own address on it; etcd listens on the
//! bridge's address, so the hosts reach the store over the underlay, and
//! cutting a host's link cuts it off as a pulled cable would. A host is a
//! [`World`] (its own root, cgroup parent, bridge and subnet) whose berth
//! commands run inside its namespace (`nsenter --net`: `ip netns exec`
//! would remount /sys and hide the cgroup mounts berth needs) with the
//! shared `--store` and its own CPU and memory offer.
//!
//! Dropping a [`ClusterWorld`] removes everything it made, failed test or
//! not: every process of every host, then each host's world (containers,
//! mounts, cgroups, dirs), its namespace and link, etcd and its data, the
//! bridge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_orchestrator::store::test_server::{EtcdCluster, EtcdServer};
use serde_json::Value;

use crate::{assert_ok, parse_json, patience, stderr, strings, World, COUNTER};

/// The cluster every test host's agent joins.
pub const CLUSTER: &str = "cl";

/// What a host offers and how it is labelled.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// A short name: "a", "b", "c".
    pub name: String,
    /// `ecs.availability-zone`.
    pub zone: String,
    pub cpu_units: u32,
    pub memory_mib: u32,
    /// More `--attributes` (custom names), besides the zone.
    pub attributes: Vec<(String, String)>,
}

impl HostSpec {
    /// 4 cores' worth of CPU and 512 MiB, in `zone`.
    pub fn new(name: &str, zone: &str) -> Self {
        Self {
            name: name.into(),
            zone: zone.into(),
            cpu_units: 4096,
            memory_mib: 512,
            attributes: Vec::new(),
        }
    }

    pub fn memory(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// `--attributes` as the agent takes it.
    fn attributes_flag(&self) -> String {
        std::iter::once(format!("ecs.availability-zone={}", self.zone))
            .chain(self.attributes.iter().map(|(k, v)| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Three hosts a, b, c in zones zone-a, zone-b, zone-c.
pub fn three_zones() -> Vec<HostSpec> {
    ["a", "b", "c"]
        .iter()
        .map(|n| HostSpec::new(n, &format!("zone-{n}")))
        .collect()
}

/// The underlay: a bridge with the first address of a private /24 nobody
/// on this machine routes, picked under a lock so that tests running at
/// once never pick the same one.
struct Underlay {
    bridge: String,
    /// The /24's first three octets.
    net: [u8; 3],
}

impl Underlay {
    fn new(n: u32) -> Self {
        let pid = std::process::id();
        let bridge = format!("bu{}x{n}", pid % 100_000);
        let lock = File::create("/tmp/berth-underlay.lock").expect("underlay lock file");
        // SAFETY: flock on a descriptor we own; released when `lock` drops.
        let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(locked, 0, "flock /tmp/berth-underlay.lock");
        let routed = routed_prefixes();
        let seed = pid.wrapping_mul(31).wrapping_add(n);
        let net = (0..4096u32)
            .map(|k| {
                let v = seed.wrapping_add(k) % 4096;
                [172, 16 + (v / 256) as u8, (v % 256) as u8]
            })
            // 172.17/16 is Docker's default: leave it to Docker.
            .filter(|n| n[1] != 17)
            .find(|n| {
                let ours = u32::from_be_bytes([n[0], n[1], n[2], 0]);
                !routed
                    .iter()
                    .any(|&(net, len)| overlaps((ours, 24), (net, len)))
            })
            .expect("a free private /24 for the underlay");
        let ip = format!("{}.{}.{}.1/24", net[0], net[1], net[2]);
        let made = Self { bridge, net };
        ip_ok(&["link", "add", &made.bridge, "type", "bridge"]);
        ip_ok(&["addr", "add", &ip, "dev", &made.bridge]);
        ip_ok(&["link", "set", &made.bridge, "up"]);
        made
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], last)
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        if crate::link_exists(&self.bridge) {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
    }
}

/// Every IPv4 prefix in any routing table, as (network, length).
fn routed_prefixes() -> Vec<(u32, u8)> {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let mut first = words.next()?;
            // Local-table lines start with their type.
            if matches!(first, "local" | "broadcast" | "unicast" | "multicast") {
                first = words.next()?;
            }
            let (addr, len) = first.split_once('/').unwrap_or((first, "32"));
            let addr: Ipv4Addr = addr.parse().ok()?;
            Some((u32::from(addr), len.parse().ok()?))
        })
        .collect()
}

/// Whether two prefixes share an address: the shorter contains the other.
fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let len = a.1.min(b.1).min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

#[track_caller]
fn ip_ok(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        stderr(&out)
    );
}

/// A host's network namespace and its veth pair; removed on drop (after
/// the host's processes are gone, which would keep the namespace alive).
struct HostLink {
    netns: String,
    /// The underlay's end of the veth pair (the host's end is in `netns`).
    veth: String,
}

impl HostLink {
    fn new(underlay: &Underlay, tag: &str, address: Ipv4Addr) -> Self {
        let made = Self {
            netns: format!("berth-{tag}"),
            veth: format!("{}v{}", underlay.bridge, &tag[tag.len() - 1..]),
        };
        let peer = format!("{}p", made.veth);
        ip_ok(&["netns", "add", &made.netns]);
        ip_ok(&[
            "link",
            "add",
            &made.veth,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &made.netns,
        ]);
        ip_ok(&["link", "set", &made.veth, "master", &underlay.bridge]);
        ip_ok(&["link", "set", &made.veth, "up"]);
        let n = ["-n", made.netns.as_str()];
        ip_ok(&[&n[..], &["link", "set", &peer, "name", "eth0"]].concat());
        ip_ok(
            &[
                &n[..],
                &["addr", "add", &format!("{address}/24"), "dev", "eth0"],
            ]
            .concat(),
        );
        ip_ok(&[&n[..], &["link", "set", "eth0", "up"]].concat());
        ip_ok(&[&n[..], &["link", "set", "lo", "up"]].concat());
        made
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .stderr(Stdio::null())
            .status();
        if crate::link_exists(&self.veth) {
            // Usually gone with the namespace already (asynchronously).
            let _ = Command::new("ip")
                .args(["link", "del", &self.veth])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One berth host: a [`World`] in a network namespace of its own.
pub struct Host {
    pub spec: HostSpec,
    /// Its address on the underlay.
    pub address: Ipv4Addr,
    agent: Mutex<Option<Child>>,
    // Dropped in this order: the world (containers, mounts, cgroups, its
    // root) while the namespace still exists, then the namespace.
    pub world: World,
    link: HostLink,
}

impl Host {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn netns(&self) -> &str {
        &self.link.netns
    }

    /// The underlay end of its veth pair.
    pub fn veth(&self) -> &str {
        &self.link.veth
    }

    /// `berth --root ROOT --store URL` inside this host's namespace, with
    /// its cgroup parent, bridge, subnet and CPU/memory offer.
    pub fn command(&self) -> Command {
        let inner = self.world.command();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.link.path().display()))
            .arg("--")
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.env("BERTH_HOST_CPU_UNITS", self.spec.cpu_units.to_string())
            .env("BERTH_HOST_MEMORY_MIB", self.spec.memory_mib.to_string())
            .stdin(Stdio::null());
        cmd
    }

    /// A berth verb on this host.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run berth")
    }

    /// A berth verb that must succeed; its JSON.
    #[track_caller]
    pub fn berth_json(&self, args: &[&str]) -> Value {
        let out = self.berth(args);
        assert_ok(&out);
        parse_json(&out)
    }

    /// This host's id (its container instance's), once berth made it.
    pub fn id(&self) -> Option<String> {
        std::fs::read_to_string(self.world.root.path().join("host-id"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Whether `arn` (a container instance's) is this host's.
    pub fn owns(&self, arn: &str) -> bool {
        self.id()
            .is_some_and(|id| arn.rsplit('/').next() == Some(id.as_str()))
    }

    /// The supervisor log of task `id` (if it ran here).
    pub fn task_log(&self, id: &str) -> String {
        std::fs::read_to_string(
            self.world
                .root
                .path()
                .join("tasks")
                .join(format!("{id}.log")),
        )
        .unwrap_or_default()
    }

    fn agent_log(&self) -> PathBuf {
        self.world.root.path().join("agent.log")
    }

    /// The agent's log so far (for failure messages).
    pub fn agent_log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.agent_log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Start `berth agent` in this host's namespace (none may be running).
    pub fn start_agent(&self) {
        let mut slot = self.agent.lock().expect("agent lock");
        assert!(
            slot.is_none(),
            "host {}: agent already running",
            self.name()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.agent_log())
            .expect("agent log");
        let log2 = log.try_clone().expect("agent log");
        let child = self
            .command()
            .args(["agent", "--cluster", CLUSTER, "--interval", "1"])
            .arg("--attributes")
            .arg(self.spec.attributes_flag())
            .env("BERTH_LOG", "info,libcgroups=error")
            .env("NO_COLOR", "1")
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn berth agent");
        *slot = Some(child);
    }

    /// Kill the agent alone (SIGKILL), as a crash would.
    pub fn kill_agent(&self) {
        if let Some(mut child) = self.agent.lock().expect("agent lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The agent killed and started again.
    pub fn restart_agent(&self) {
        self.kill_agent();
        self.start_agent();
    }

    /// Whether the agent this harness started is still running.
    pub fn agent_running(&self) -> bool {
        let mut slot = self.agent.lock().expect("agent lock");
        slot.as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Every process of this host: in its cgroups, in its namespace, or
    /// naming its root (agent, supervisors, monitors, containers, verbs).
    pub fn pids(&self) -> BTreeSet<i32> {
        let me = std::process::id() as i32;
        let root = self.world.root.path().display().to_string();
        let netns = std::fs::metadata(self.link.path()).map(|m| m.ino()).ok();
        let mut pids = BTreeSet::new();
        let mut dirs = Vec::new();
        for top in crate::cgroup_dirs(&self.world.cgroup_parent) {
            crate::collect_dirs(&top, &mut dirs);
        }
        for dir in dirs {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let in_netns = netns.is_some()
                && std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .map(|m| m.ino())
                    .ok()
                    == netns;
            if in_netns || String::from_utf8_lossy(&cmdline).contains(&root) {
                pids.insert(pid);
            }
        }
        pids.retain(|&p| p != me && !is_zombie(p));
        pids
    }

    /// Kill everything of this host at once (SIGKILL), as a lost machine:
    /// agent, supervisors, monitors and containers. Its state (root,
    /// cgroups, mounts) stays, as a machine's disk would.
    pub fn kill_host(&self) {
        let deadline = Instant::now() + patience(30);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            // One pass kills all; a process forked meanwhile is the next's.
            for pid in &pids {
                // SAFETY: kill(2) with a pid we just listed; a stale pid at
                // worst gets ESRCH.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            assert!(
                Instant::now() < deadline,
                "host {}: processes outlive SIGKILL: {pids:?}",
                self.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_agent();
    }

    /// The host's underlay link down: cut off as a pulled cable.
    pub fn cut_link(&self) {
        ip_ok(&["link", "set", &self.link.veth, "down"]);
    }

    pub fn restore_link(&self) {
        ip_ok(&["link", "set", &self.link.veth, "up"]);
    }

    /// Container ids of this host's runtime (`berth runtime list`).
    pub fn container_ids(&self) -> Vec<String> {
        self.world.container_ids()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_host();
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        // Gone already: nothing to kill.
        .unwrap_or(true)
}

/// The cluster's store on the underlay: one etcd server, or three members.
enum Etcd {
    One(Box<EtcdServer>),
    Three(EtcdCluster),
}

impl Etcd {
    fn endpoints(&self) -> Vec<String> {
        match self {
            Etcd::One(s) => vec![s.endpoint.clone()],
            Etcd::Three(c) => c.endpoints.clone(),
        }
    }

    fn members(&mut self) -> &mut EtcdCluster {
        match self {
            Etcd::Three(c) => c,
            Etcd::One(_) => panic!("{ONE_MEMBER}"),
        }
    }

    fn members_ref(&self) -> &EtcdCluster {
        match self {
            Etcd::Three(c) => c,
            Etcd::One(_) => panic!("{ONE_MEMBER}"),
        }
    }
}

const ONE_MEMBER: &str = "this world's etcd has one member: make it with members = 3";

/// Hosts, etcd and the underlay of one cluster test.
pub struct ClusterWorld {
    // Dropped in this order: hosts (their processes, state, namespaces),
    // etcd, the bridge.
    pub hosts: Vec<Host>,
    etcd: Etcd,
    /// etcd's `HOST:PORT`s on the underlay, joined with commas as in the
    /// store URL.
    pub etcd_endpoint: String,
    /// The `--store` every host uses.
    pub store: String,
    underlay: Underlay,
    started: Instant,
}

impl ClusterWorld {
    /// The underlay, one etcd server on it, and a host (namespace, link,
    /// world) per spec; no cluster or agent yet: [`Self::start`].
    pub fn new(name: &str, specs: &[HostSpec]) -> Self {
        Self::with_members(name, specs, 1)
    }

    /// [`Self::new`] with `members` (1 or 3) etcd members.
    pub fn with_members(name: &str, specs: &[HostSpec], members: usize) -> Self {
        crate::require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let underlay = Underlay::new(n);
        let ip = IpAddr::V4(underlay.address(1));
        let etcd = match members {
            1 => Etcd::One(Box::new(EtcdServer::start_on(ip))),
            3 => Etcd::Three(EtcdCluster::start_on(ip)),
            other => panic!("{other} etcd members: 1 or 3"),
        };
        let etcd_endpoint = etcd.endpoints().join(",");
        let pid = std::process::id();
        let store = format!("etcd://{etcd_endpoint}/berth-t{pid}-{n}");
        let hosts = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let address = underlay.address(10 + i as u8);
                let link = HostLink::new(&underlay, &format!("{pid}-{n}-{i}"), address);
                Host {
                    spec: spec.clone(),
                    address,
                    agent: Mutex::new(None),
                    world: World::new(&format!("{name}-{}", spec.name)).with_store(&store),
                    link,
                }
            })
            .collect();
        Self {
            hosts,
            etcd,
            etcd_endpoint,
            store,
            underlay,
            started: Instant::now(),
        }
    }

    /// Print how long since the world was made, and `what` (test output:
    /// `--nocapture` shows where a test spends its time).
    pub fn phase(&self, what: &str) {
        eprintln!("[{:>6.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// [`Self::new`], then the cluster created, the busybox image on every
    /// host, and every agent started and registered (connected).
    pub fn start(name: &str, specs: &[HostSpec]) -> Self {
        Self::new(name, specs).started()
    }

    /// [`Self::start`] on three etcd members.
    pub fn start_on_three_members(name: &str, specs: &[HostSpec]) -> Self {
        Self::with_members(name, specs, 3).started()
    }

    fn started(self) -> Self {
        let cw = self;
        cw.hosts[0].berth_json(&["create-cluster", "--cluster-name", CLUSTER]);
        for h in &cw.hosts {
            h.world.busybox_image("busybox:latest", &[]);
            h.start_agent();
        }
        cw.wait_connected(cw.hosts.iter().map(|h| h.name()).collect());
        cw
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name() == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// The underlay bridge's name.
    pub fn bridge(&self) -> &str {
        &self.underlay.bridge
    }

    /// Stop etcd now, every member (as a crash would).
    pub fn kill_etcd(&mut self) {
        match &mut self.etcd {
            Etcd::One(s) => s.kill(),
            Etcd::Three(c) => (0..3).for_each(|i| c.kill(i)),
        }
    }

    /// Start etcd again on its data dir and address.
    pub fn restart_etcd(&mut self) {
        match &mut self.etcd {
            Etcd::One(s) => s.restart(),
            Etcd::Three(c) => (0..3).for_each(|i| c.restart(i)),
        }
    }

    /// Kill etcd member `index` (three members only).
    pub fn kill_etcd_member(&mut self, index: usize) {
        self.etcd.members().kill(index);
    }

    pub fn restart_etcd_member(&mut self, index: usize) {
        self.etcd.members().restart(index);
    }

    /// The member leading now (three members only).
    pub fn etcd_leader(&self) -> Option<usize> {
        self.etcd.members_ref().leader()
    }

    /// A verb on the first host (scheduling works from any host).
    pub fn berth(&self, args: &[&str]) -> Output {
        self.hosts[0].berth(args)
    }

    #[track_caller]
    pub fn berth_json(&self, args: &[&str]) -> Value {
        self.hosts[0].berth_json(args)
    }

    /// Register `family`: one busybox container of `memory` MiB that loops
    /// until TERM, with no network of its own.
    pub fn register_looper(&self, family: &str, memory: u32) {
        let td = serde_json::json!({
            "family": family,
            "networkMode": "none",
            "containerDefinitions": [{
                "name": "main", "image": "busybox", "memory": memory,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
            }]
        });
        self.berth_json(&[
            "register-task-definition",
            "--cli-input-json",
            &td.to_string(),
        ]);
    }

    /// The host a container instance ARN belongs to.
    pub fn host_of_instance(&self, arn: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.owns(arn))
    }

    /// The cluster's container instances as describe-container-instances
    /// shows them.
    pub fn instances(&self) -> Vec<Value> {
        let listed = self.berth_json(&["list-container-instances", "--cluster", CLUSTER]);
        let arns = strings(&listed["containerInstanceArns"]);
        if arns.is_empty() {
            return Vec::new();
        }
        let mut args = vec![
            "describe-container-instances",
            "--cluster",
            CLUSTER,
            "--container-instances",
        ];
        args.extend(arns.iter().map(String::as_str));
        self.berth_json(&args)["containerInstances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The instance of host `name`, if registered.
    pub fn instance(&self, name: &str) -> Option<Value> {
        let host = self.host(name);
        self.instances().into_iter().find(|i| {
            i["containerInstanceArn"]
                .as_str()
                .is_some_and(|a| host.owns(a))
        })
    }

    /// Until exactly the hosts `names` are registered and connected.
    #[track_caller]
    pub fn wait_connected(&self, names: BTreeSet<&str>) {
        self.wait_until(60, &format!("connected instances {names:?}"), || {
            let connected: BTreeSet<&str> = self
                .instances()
                .iter()
                .filter(|i| i["agentConnected"] == true)
                .filter_map(|i| {
                    let arn = i["containerInstanceArn"].as_str()?;
                    Some(self.host_of_instance(arn)?.name())
                })
                .collect();
            (connected == names).then_some(())
        });
    }

    /// The tasks of `service` with desired status `desired` (RUNNING or
    /// STOPPED), described.
    pub fn service_tasks(&self, service: &str, desired: &str) -> Vec<Value> {
        let listed = self.berth_json(&[
            "list-tasks",
            "--cluster",
            CLUSTER,
            "--service-name",
            service,
            "--desired-status",
            desired,
        ]);
        self.describe_tasks(&strings(&listed["taskArns"]))
    }

    pub fn describe_tasks(&self, arns: &[String]) -> Vec<Value> {
        if arns.is_empty() {
            return Vec::new();
        }
        let mut args = vec!["describe-tasks", "--cluster", CLUSTER, "--tasks"];
        args.extend(arns.iter().map(String::as_str));
        self.berth_json(&args)["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The host name a task was placed on ("?" for none known).
    pub fn host_of_task(&self, task: &Value) -> String {
        task["containerInstanceArn"]
            .as_str()
            .and_then(|a| self.host_of_instance(a))
            .map_or("?".to_string(), |h| h.name().to_string())
    }

    /// Host name → how many of `tasks` are RUNNING there.
    pub fn running_per_host(&self, tasks: &[Value]) -> BTreeMap<String, usize> {
        let mut per = BTreeMap::new();
        for t in tasks.iter().filter(|t| t["lastStatus"] == "RUNNING") {
            *per.entry(self.host_of_task(t)).or_insert(0) += 1;
        }
        per
    }

    /// Until exactly `n` of the service's tasks are live, all RUNNING;
    /// returns them.
    #[track_caller]
    pub fn wait_service_running(&self, service: &str, n: usize) -> Vec<Value> {
        self.wait_until(90, &format!("service {service}: {n} RUNNING"), || {
            let tasks = self.service_tasks(service, "RUNNING");
            let all_running = tasks.iter().all(|t| t["lastStatus"] == "RUNNING");
            (tasks.len() == n && all_running).then_some(tasks)
        })
    }

    /// Poll `f` until it answers (every 100 ms, at most `secs` scaled by
    /// [`patience`]); the failure names `what` and each agent's last lines.
    #[track_caller]
    pub fn wait_until<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + patience(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("never: {what}\n{}", self.agent_logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Each host's agent log tail, for failure messages.
    pub fn agent_logs(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("--- agent {}:\n{}", h.name(), h.agent_log_tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Run a verb on host `name`, giving up (kill) after `secs` scaled: a
    /// verb against a dead store must answer, not hang.
    pub fn berth_bounded(&self, name: &str, args: &[&str], secs: u64) -> Output {
        let mut child = self
            .host(name)
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        let deadline = Instant::now() + patience(secs);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait_with_output();
                panic!("berth {args:?} on host {name} hung past {secs} s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("berth output")
    }

    /// What this world made, to check after drop that it is all gone.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            links: std::iter::once(self.underlay.bridge.clone())
                .chain(self.hosts.iter().map(|h| h.link.veth.clone()))
                .collect(),
            netns: self.hosts.iter().map(|h| h.link.netns.clone()).collect(),
            roots: self
                .hosts
                .iter()
                .map(|h| h.world.root.path().to_path_buf())
                .collect(),
            cgroup_parents: self
                .hosts
                .iter()
                .map(|h| h.world.cgroup_parent.clone())
                .collect(),
            etcd_endpoints: self.etcd.endpoints(),
        }
    }
}

impl Drop for ClusterWorld {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.agent_logs());
        }
        // Every host's processes first: none may write to etcd or start a
        // container while the others are cleaned.
        for h in &self.hosts {
            h.kill_host();
        }
    }
}

/// Names of what a [`ClusterWorld`] made.
#[derive(Debug)]
pub struct Footprint {
    pub links: Vec<String>,
    pub netns: Vec<String>,
    pub roots: Vec<PathBuf>,
    pub cgroup_parents: Vec<String>,
    pub etcd_endpoints: Vec<String>,
}

impl Footprint {
    /// What of it is left (empty when all is gone).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        left.extend(
            self.links
                .iter()
                .filter(|l| crate::link_exists(l))
                .map(|l| format!("link {l}")),
        );
        left.extend(
            self.netns
                .iter()
                .filter(|n| PathBuf::from("/run/netns").join(n).exists())
                .map(|n| format!("netns {n}")),
        );
        left.extend(
            self.roots
                .iter()
                .filter(|r| r.exists())
                .map(|r| format!("dir {}", r.display())),
        );
        for parent in &self.cgroup_parents {
            left.extend(
                crate::cgroup_dirs(parent)
                    .into_iter()
                    .map(|d| format!("cgroup {}", d.display())),
            );
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for root in &self.roots {
            let root = root.display().to_string();
            left.extend(
                mounts
                    .lines()
                    .filter_map(|l| l.split_whitespace().nth(4))
                    .filter(|m| m.starts_with(&root))
                    .map(|m| format!("mount {m}")),
            );
        }
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let named = self
                .roots
                .iter()
                .any(|r| cmdline.contains(&r.display().to_string()))
                || self.etcd_endpoints.iter().any(|e| cmdline.contains(e));
            if named {
                left.push(format!("process {}: {cmdline}", entry.path().display()));
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn prefixes_overlap_when_the_shorter_contains_the_other() {
        let net = |a: u8, b: u8, c: u8| u32::from_be_bytes([a, b, c, 0]);
        assert!(overlaps((net(172, 20, 5), 24), (net(172, 16, 0), 12)));
        assert!(overlaps((net(172, 20, 5), 24), (0, 0)));
        assert!(!overlaps((net(172, 20, 5), 24), (net(172, 20, 6), 24)));
        assert!(!overlaps((net(172, 20, 5), 24), (net(10, 0, 0), 8)));
        assert!(overlaps((net(172, 20, 5), 24), (net(172, 20, 5) + 7, 32)));
    }
}

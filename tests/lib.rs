//! Harness for berth's end-to-end tests. Each [`World`] has its own state
//! root and cgroup parent, and removes every container, cgroup and file it
//! made when dropped, failed test or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `berth` binary: `BERTH_BIN`, or beside the test executable's dir.
pub fn berth_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("berth");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build` (or `make test`) first",
        bin.display()
    );
    bin
}

/// The busybox root filesystem: `BERTH_TEST_ROOTFS`, or built once into
/// the workspace's .build/ by the same script `make images` runs.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            if let Some(dir) = std::env::var_os("BERTH_TEST_ROOTFS") {
                return PathBuf::from(dir);
            }
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let dir = workspace.join(".build/busybox");
            if !dir.join("bin/busybox").exists() {
                let status = Command::new(workspace.join("scripts/busybox-rootfs.sh"))
                    .arg(&dir)
                    .status()
                    .expect("run scripts/busybox-rootfs.sh");
                assert!(status.success(), "building the busybox rootfs failed");
            }
            dir.canonicalize().expect("rootfs path")
        })
        .clone()
}

/// How long to wait for what takes up to `secs` on this machine: `secs`
/// times `BERTH_TEST_PATIENCE` (a whole number, default 1). The cgroup v2
/// lane sets it, its VM being emulated (TCG) and several times slower.
pub fn patience(secs: u64) -> Duration {
    static SCALE: OnceLock<u64> = OnceLock::new();
    let scale = *SCALE.get_or_init(|| {
        std::env::var("BERTH_TEST_PATIENCE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(1)
    });
    Duration::from_secs(secs.saturating_mul(scale))
}

pub struct World {
    pub root: tempfile::TempDir,
    pub cgroup_parent: String,
    /// This world's cluster network: its own bridge and subnet.
    pub bridge: String,
    pub subnet: String,
    /// A second network of its own, for clusters given one at creation.
    pub bridge2: String,
    pub subnet2: String,
    bin: PathBuf,
    rootfs: PathBuf,
    /// `--store URL` (and its TLS flags) for every berth command; none:
    /// the default, SQLite.
    store: Vec<String>,
}

impl World {
    pub fn new(name: &str) -> Self {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = tempfile::Builder::new()
            .prefix(&format!("berth-test-{name}-"))
            .tempdir()
            .expect("state root");
        let pid = std::process::id();
        Self {
            root,
            bridge: format!("bt{}x{n}", pid % 100_000),
            subnet: format!("10.{}.{}.0/24", 100 + n % 100, pid % 250),
            bridge2: format!("bt{}y{n}", pid % 100_000),
            subnet2: format!("10.{}.{}.0/24", 200 + n % 50, pid % 250),
            cgroup_parent: format!("berth-test-{pid}-{n}-{name}"),
            bin: berth_bin(),
            rootfs: busybox_rootfs(),
            store: Vec::new(),
        }
    }

    /// This world's berth commands pass `--store url` (an etcd the test
    /// started), as a flag: the processes berth starts must be handed it.
    pub fn with_store(mut self, url: &str) -> Self {
        self.store.extend(["--store".into(), url.to_string()]);
        self
    }

    /// An etcds:// store's files: `--store-ca`, `--store-cert`, `--store-key`.
    pub fn with_store_tls(mut self, ca: &Path, cert: &Path, key: &Path) -> Self {
        for (flag, file) in [
            ("--store-ca", ca),
            ("--store-cert", cert),
            ("--store-key", key),
        ] {
            self.store
                .extend([flag.to_string(), file.display().to_string()]);
        }
        self
    }

    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root.path());
        cmd.args(&self.store);
        // Task cgroups go under this world's parent, tasks on its network.
        cmd.env("BERTH_CGROUP_PARENT", &self.cgroup_parent);
        cmd.env("BERTH_BRIDGE", &self.bridge);
        cmd.env("BERTH_SUBNET", &self.subnet);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `berth --root ROOT ARGS…`
    pub fn berth(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run berth")
    }

    /// `berth runtime run --rootfs busybox --cgroup-parent P FLAGS… -- CMD…`
    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> Output {
        self.command()
            .args(self.run_args(flags, cmd))
            .output()
            .expect("run berth")
    }

    pub fn run_args(&self, flags: &[&str], cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["runtime".into(), "run".into()];
        if !flags.contains(&"--image") {
            args.extend(["--rootfs".into(), self.rootfs.display().to_string()]);
        }
        args.extend(["--cgroup-parent".into(), self.cgroup_parent.clone()]);
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push("--".into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        args
    }

    /// Start `cmd` detached as container `id`; returns its state.
    pub fn run_detached(&self, id: &str, flags: &[&str], cmd: &[&str]) -> Value {
        let mut all = vec!["-d", "--id", id];
        all.extend_from_slice(flags);
        let out = self.run(&all, cmd);
        assert_ok(&out);
        parse_json(&out)
    }

    /// `berth runtime delete ID`, which must succeed.
    #[track_caller]
    pub fn delete(&self, id: &str) {
        assert_ok(&self.berth(&["runtime", "delete", id]));
    }

    /// `berth runtime delete --force ID`, which must succeed.
    #[track_caller]
    pub fn delete_force(&self, id: &str) {
        assert_ok(&self.berth(&["runtime", "delete", "--force", id]));
    }

    /// `register-task-definition` of `td` (a JSON task definition), which
    /// must succeed; returns its family.
    #[track_caller]
    pub fn register(&self, td: &Value) -> String {
        assert_ok(&self.berth(&[
            "register-task-definition",
            "--cli-input-json",
            &td.to_string(),
        ]));
        td["family"].as_str().expect("family").to_string()
    }

    /// The task `id` (of the default cluster) as describe-tasks shows it.
    #[track_caller]
    pub fn describe_task(&self, id: &str) -> Value {
        self.describe_task_in("default", id)
    }

    #[track_caller]
    pub fn describe_task_in(&self, cluster: &str, id: &str) -> Value {
        let out = self.berth(&["describe-tasks", "--cluster", cluster, "--tasks", id]);
        assert_ok(&out);
        parse_json(&out)["tasks"][0].clone()
    }

    /// The Udp NoPorts counter of the namespace `container` of `task` is
    /// in: datagrams that arrived with nothing listening (busybox has no UDP
    /// server to show them otherwise).
    #[track_caller]
    pub fn udp_no_ports(&self, cluster: &str, task: &str, container: &str) -> u64 {
        let out = self.berth(&[
            "execute-command",
            "--cluster",
            cluster,
            "--task",
            task,
            "--container",
            container,
            "--command",
            "grep Udp: /proc/net/snmp",
            "--interactive",
        ]);
        assert_ok(&out);
        let text = stdout(&out);
        let mut lines = text.lines();
        let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let at = names
            .split_whitespace()
            .position(|n| n == "NoPorts")
            .unwrap_or_else(|| panic!("no NoPorts in {text:?}"));
        values
            .split_whitespace()
            .nth(at)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {text:?}"))
    }

    /// Wait until task `id` has lastStatus `status`; returns it then.
    #[track_caller]
    pub fn wait_task(&self, id: &str, status: &str) -> Value {
        self.wait_task_in("default", id, status)
    }

    #[track_caller]
    pub fn wait_task_in(&self, cluster: &str, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + patience(60);
        loop {
            let t = self.describe_task_in(cluster, id);
            if t["lastStatus"] == status {
                return t;
            }
            // STOPPED is final: waiting on for anything else is waiting in vain.
            assert!(
                t["lastStatus"] != "STOPPED",
                "task {id} stopped instead of reaching {status}: {t}"
            );
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}: {t}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.berth(&["runtime", "state", id]);
        assert_ok(&out);
        parse_json(&out)
    }

    /// Wait until `pred` holds for the container's state.
    pub fn wait_for(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + patience(20);
        loop {
            let out = self.berth(&["runtime", "state", id]);
            let state = if out.status.success() {
                parse_json(&out)
            } else {
                Value::Null
            };
            if pred(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: timed out waiting for {what}: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn container_ids(&self) -> Vec<String> {
        let out = self.berth(&["runtime", "list"]);
        if !out.status.success() {
            return Vec::new();
        }
        parse_json(&out)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every cgroup directory under this world's parent, in any hierarchy.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.cgroup_parent)
            .into_iter()
            .flat_map(|d| std::fs::read_dir(&d).into_iter().flatten())
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect()
    }

    fn bridges(&self) -> [&str; 2] {
        [&self.bridge, &self.bridge2]
    }

    /// Assert nothing of the world's containers remains (call at the end).
    pub fn assert_clean(&self) {
        // Supervisors finish (bridge removal, their own exit) just after
        // they record a task STOPPED: give them a moment.
        let deadline = Instant::now() + patience(10);
        while (!self.monitors().is_empty() || self.bridges().iter().any(|b| link_exists(b)))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            self.container_ids(),
            Vec::<String>::new(),
            "containers left"
        );
        assert_eq!(
            self.leftover_cgroups(),
            Vec::<PathBuf>::new(),
            "cgroups left"
        );
        for dir in ["run/containers", "run/libcontainer"] {
            let path = self.root.path().join(dir);
            let left: Vec<_> = std::fs::read_dir(&path)
                .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{} not empty: {left:?}", path.display());
        }
        assert!(self.monitors().is_empty(), "monitors still running");
        assert_eq!(self.mounts(), Vec::<String>::new(), "mounts left");
        let copies = self.sealed_copies();
        assert!(copies.len() <= 1, "more than one sealed copy: {copies:?}");
        for bridge in self.bridges() {
            assert!(!link_exists(bridge), "bridge {bridge} left");
            let table = nft_table(bridge);
            let listed = Command::new("nft")
                .args(["list", "table", "ip", &table])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(!listed.is_ok_and(|s| s.success()), "nft table {table} left");
        }
        let snapshots = self.root.path().join("images/snapshots");
        let left: Vec<_> = std::fs::read_dir(&snapshots)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "snapshots left: {left:?}");
    }

    /// Mount points under this world's root, deepest first, but for the
    /// sealed copy of berth shared by the root's processes (see
    /// [`World::sealed_copies`]), which lives as long as the root.
    pub fn mounts(&self) -> Vec<String> {
        let copies = self.sealed_copy_dir().display().to_string() + "/";
        let mut out = self.all_mounts();
        out.retain(|m| !m.starts_with(&copies));
        out
    }

    /// Every mount point under this world's root, deepest first.
    fn all_mounts(&self) -> Vec<String> {
        let root = self.root.path().display().to_string();
        let mut out: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse(m.len()));
        out
    }

    /// Where the root's shared sealed copy of berth is mounted.
    pub fn sealed_copy_dir(&self) -> PathBuf {
        self.root
            .path()
            .join("run")
            .join(berth_runtime::sealed_exe::SHARED_DIR)
    }

    /// The shared sealed copies mounted under this world's root (each a
    /// read-only tmpfs holding `berth`).
    pub fn sealed_copies(&self) -> Vec<String> {
        let copies = self.sealed_copy_dir().display().to_string() + "/";
        let mut out = self.all_mounts();
        out.retain(|m| m.starts_with(&copies));
        out
    }

    /// `berth image build-rootfs` of the busybox rootfs as `tag`.
    pub fn busybox_image(&self, tag: &str, extra: &[&str]) -> Value {
        let rootfs = self.rootfs.display().to_string();
        let mut args = vec!["image", "build-rootfs", &rootfs, "--tag", tag];
        args.extend_from_slice(extra);
        let out = self.berth(&args);
        assert_ok(&out);
        parse_json(&out)
    }

    /// Pids of monitor and task supervisor processes of this world.
    pub fn monitors(&self) -> Vec<i32> {
        let needle = self.root.path().display().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        let c = String::from_utf8_lossy(&c);
                        (c.contains(berth_runtime::monitor::MONITOR_ARG)
                            || c.contains(berth_orchestrator::supervisor::SUPERVISOR_ARG))
                            && c.contains(&needle)
                    })
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Supervisors first, so none starts a container while we clean.
        for pid in self.monitors() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline)
                .contains(berth_orchestrator::supervisor::SUPERVISOR_ARG)
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        for id in self.container_ids() {
            let _ = self.berth(&["runtime", "delete", "--force", &id]);
        }
        for pid in self.monitors() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        // The shared sealed copy of berth too: it lives as long as the root.
        for mount in self.all_mounts() {
            let _ = Command::new("umount").args(["-l", &mount]).status();
        }
        for bridge in self.bridges() {
            if link_exists(bridge) {
                let _ = Command::new("ip").args(["link", "del", bridge]).status();
            }
            // A world's load balancer is named after its bridge.
            for table in [nft_table(bridge), berth_net::lb::table_name(bridge)] {
                let _ = Command::new("nft")
                    .args(["delete", "table", "ip", &table])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Every cgroup under the parent, deepest first, then the parent.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for top in cgroup_dirs(&self.cgroup_parent) {
            collect_dirs(&top, &mut dirs);
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The nftables table of the network on `bridge`.
pub fn nft_table(bridge: &str) -> String {
    berth_net::nat::table_name(bridge)
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_dirs(&entry.path(), out);
        }
    }
}

/// The parent's directory in every mounted hierarchy that has it.
fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    if base.join(parent).is_dir() {
        out.push(base.join(parent));
    }
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let dir = entry.path().join(parent);
        if dir.is_dir() {
            out.push(dir);
        }
    }
    out
}

/// A task's id: the last part of its ARN.
/// A host port no other test of this run maps: one the kernel hands out as
/// free for TCP and UDP alike (tests run in processes of their own, so a
/// port derived from the pid could meet a neighbour's).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = tcp.local_addr().expect("local address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn task_id(task: &Value) -> String {
    task["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_else(|| panic!("no taskArn in {task}"))
        .to_string()
}

/// The ids of the tasks a run-task answered with.
pub fn task_ids(out: &Value) -> Vec<String> {
    out["tasks"]
        .as_array()
        .map(|ts| ts.iter().map(task_id).collect())
        .unwrap_or_default()
}

/// A JSON array of strings as a Vec.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "berth failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// Require root: the suite runs real containers.
pub fn require_root() {
    assert!(nix_euid_is_root(), "berth's end-to-end tests run as root");
}

fn nix_euid_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
pub mod cluster_world;
pub mod oci;

/// A `berth agent` of a world, in the background: killed (SIGKILL, as a
/// lost host's) and reaped when dropped. Its log is `<root>/agent.log`.
pub struct Agent {
    child: std::process::Child,
}

impl World {
    /// Start this world's `berth agent ARGS…` with `env` (e.g.
    /// `BERTH_HOST_MEMORY_MIB`), as the host's agent.
    pub fn agent(&self, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("agent.log"))
            .expect("agent log");
        let child = self
            .command()
            .arg("agent")
            .args(args)
            .envs(env.iter().copied())
            .env("BERTH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth agent");
        Agent { child }
    }

    /// This world's host id (its container instance id), once a berth
    /// command made it.
    pub fn host_id(&self) -> String {
        std::fs::read_to_string(self.root.path().join("host-id"))
            .expect("host-id")
            .trim()
            .to_string()
    }

    /// Every process of this world's tasks: supervisors, monitors and
    /// the containers' processes (by cgroup).
    pub fn task_processes(&self) -> Vec<i32> {
        let mut pids = self.monitors();
        let mut dirs = Vec::new();
        for top in cgroup_dirs(&self.cgroup_parent) {
            collect_dirs(&top, &mut dirs);
        }
        for dir in dirs {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Agent {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The per-task supervisor: `berth __berth-task …`, detached like the
//! container monitors. It pulls images, makes the task's namespaces,
//! cgroup and volumes, starts containers in `dependsOn` order, writes
//! every state change and container exit into the store, stops the task
//! when an essential container exits or a stop is asked for, and cleans
//! up. Each container keeps its own monitor: if this process dies, the
//! containers run on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use berth_rootfs::image::Image;
use berth_rootfs::pull::{self, PullOptions, Quiet};
use berth_rootfs::snapshot::Snapshotter;
use berth_rootfs::{ContentStore, Reference};
use berth_runtime::exit::ExitRecord;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{cgroups, CreateOptions, Resources, Runtime, RuntimeRoot, Source};
use nix::unistd::{fork, ForkResult};

use crate::containerize::{
    container_spec, hosts_file, overrides_for, resolv_conf, volume_dirs, TaskContext, VolumeDir,
};
use crate::ecs::{now, Ecs};
use crate::health::{self, HealthCheck, HealthTracker};
use crate::model::{
    name_from_arn, ContainerCondition, ContainerDefinition, DesiredStatus, HealthStatus,
    NetworkMode, Partition, StopCode, Task, TaskDefinition, TaskStatus,
};
use crate::names;
use crate::reconcile::reconcile_now;
use crate::teardown::{self, Ports};

/// argv[1] of a task supervisor.
pub const SUPERVISOR_ARG: &str = "__berth-task";
const ADOPT_ARG: &str = "--adopt";
const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
const MONITOR_DIED_REASON: &str = "The container's monitor died; berth killed the container";
const HEALTH_REASON: &str = "Task failed container health checks";
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Further tries at releasing a task's resources before it is left to gc.
const RELEASE_ATTEMPTS: usize = 3;
const RELEASE_RETRY: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct SupervisorArgs {
    pub state_root: PathBuf,
    pub runtime_root: PathBuf,
    pub cluster: String,
    pub task_id: String,
    /// Parent of task cgroups (default `berth`).
    pub cgroup_parent: String,
    /// Take over a task whose supervisor died, rather than start it.
    pub adopt: bool,
}

impl SupervisorArgs {
    pub fn from_args(args: &[String]) -> Option<Self> {
        if args.get(1).map(String::as_str) != Some(SUPERVISOR_ARG) {
            return None;
        }
        Some(Self {
            state_root: PathBuf::from(args.get(2)?),
            runtime_root: PathBuf::from(args.get(3)?),
            cluster: args.get(4)?.clone(),
            // The id names the task's directories: never a path.
            task_id: args
                .get(5)
                .filter(|id| names::check("task", id).is_ok())?
                .clone(),
            cgroup_parent: args.get(6).cloned().unwrap_or_else(|| "berth".into()),
            adopt: args.get(7).map(String::as_str) == Some(ADOPT_ARG),
        })
    }

    /// The same roots and cgroup parent, for `task`.
    pub fn for_task(&self, task: &Task) -> Self {
        Self {
            cluster: name_from_arn(&task.cluster_arn).to_string(),
            task_id: task.id().to_string(),
            adopt: false,
            ..self.clone()
        }
    }

    /// The task's run directory: namespace files, scratch volumes, /etc.
    pub(crate) fn task_dir(&self) -> PathBuf {
        self.runtime_root.join("tasks").join(&self.task_id)
    }

    /// Bridge mode: a container's own namespaces.
    fn container_ns_dir(&self, container: &str) -> PathBuf {
        self.task_dir()
            .join(format!("ns-{}", names::file_stem(container)))
    }

    /// The task's cgroup, under which its containers' nest.
    pub(crate) fn cgroup(&self) -> String {
        format!("{}/{}", self.cgroup_parent.trim_matches('/'), self.task_id)
    }

    pub fn log_file(&self) -> PathBuf {
        self.state_root
            .join("tasks")
            .join(format!("{}.log", self.task_id))
    }

    /// A container's log, kept after the task stops.
    pub fn container_log(
        state_root: &std::path::Path,
        task_id: &str,
        container: &str,
    ) -> Result<PathBuf, names::PathNameError> {
        let dir = names::child(&state_root.join("tasks"), task_id)?;
        names::child(&dir, &format!("{}.log", names::file_stem(container)))
    }

    /// Start a detached supervisor for this task; returns once it runs.
    pub fn spawn(&self) -> std::io::Result<()> {
        use std::os::unix::process::CommandExt;
        if let Some(dir) = self.log_file().parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg(SUPERVISOR_ARG)
            .arg(&self.state_root)
            .arg(&self.runtime_root)
            .arg(&self.cluster)
            .arg(&self.task_id)
            .arg(&self.cgroup_parent)
            .args(self.adopt.then_some(ADOPT_ARG))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(Into::into));
        }
        // The supervisor forks and this child exits at once.
        cmd.spawn()?.wait().map(|_| ())
    }
}

/// Run as a task supervisor; returns the process exit code. Call before
/// any thread exists: it forks.
pub fn run(args: SupervisorArgs, partition: Partition) -> i32 {
    // SAFETY: single-threaded here (the caller's contract).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            tracing::error!("fork: {e}");
            return 1;
        }
    }
    let ecs = match Ecs::open(&args.state_root, partition) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("open store: {e}");
            return 1;
        }
    };
    let mut sup = Supervisor::new(&ecs, &args);
    match claim(&ecs, &args) {
        Ok(true) => {}
        Ok(false) => return 0,
        // Unrecorded, this supervisor would look dead: leave the task to
        // whoever finishes orphans rather than run it unseen.
        Err(e) => {
            tracing::error!("task {}: record its supervisor: {e}", args.task_id);
            return 1;
        }
    }
    let outcome = if args.adopt {
        sup.adopt()
    } else {
        sup.supervise()
    };
    if let Err(reason) = &outcome {
        tracing::error!("task {}: {reason}", args.task_id);
        sup.set(|t| {
            t.desired_status = DesiredStatus::Stopped;
            t.stop_code.get_or_insert(StopCode::TaskFailedToStart);
            t.stopped_reason.get_or_insert_with(|| reason.clone());
        });
    }
    sup.cleanup();
    // A service's task: its service is reconciled at once, so that a
    // replacement starts now rather than at the next agent pass.
    if ecs
        .task(&args.cluster, &args.task_id)
        .is_ok_and(|t| is_service_task(&t))
    {
        reconcile_now(&ecs, &args);
    }
    i32::from(outcome.is_err())
}

fn is_service_task(task: &Task) -> bool {
    task.service_name().is_some()
}

/// Whether a process may take charge of `task` (run, adopt or finish it):
/// not once it is STOPPED, nor while another's supervisor (or reaper)
/// lives. Two at once: the first to record itself has the task.
pub fn may_claim(task: &Task) -> bool {
    !task.is_stopped() && !supervisor_alive(task)
}

/// Record this process as `args`'s task's supervisor, if [`may_claim`]
/// lets it; false when another has the task or it is over.
fn claim(ecs: &Ecs, args: &SupervisorArgs) -> crate::EcsResult<bool> {
    let me = std::process::id() as i32;
    let start_time = berth_runtime::proc::start_time(me);
    let mut claimed = false;
    ecs.update_task(&args.cluster, &args.task_id, |t| {
        claimed = may_claim(t);
        if let Some(b) = t.berth.as_mut().filter(|_| claimed) {
            b.supervisor_pid = Some(me);
            b.supervisor_start_time = start_time;
        }
    })?;
    Ok(claimed)
}

/// What the supervisor's threads tell it about a container.
enum Event {
    /// How it ended (None: its monitor died first).
    Exited(String, Option<ExitRecord>),
    /// Its health check status changed.
    Health(String, HealthStatus),
}

struct Running {
    runtime_id: String,
    essential: bool,
    stop_timeout: Duration,
    exit: Option<ExitRecord>,
    health: Option<HealthWatch>,
}

impl Running {
    fn new(def: &ContainerDefinition, runtime_id: &str, health: Option<HealthWatch>) -> Self {
        Self {
            runtime_id: runtime_id.to_string(),
            essential: def.is_essential(),
            // Bounded, so that a deadline `now + timeout` cannot overflow
            // even for a definition that skipped registration's checks.
            stop_timeout: def.stop_timeout.map_or(DEFAULT_STOP_TIMEOUT, |t| {
                Duration::from_secs(t.min(crate::taskdef::MAX_TIMEOUT_SECS))
            }),
            exit: None,
            health,
        }
    }
}

/// A container's health-check thread and what it last said.
struct HealthWatch {
    status: HealthStatus,
    /// Tells the thread to stop probing.
    done: Arc<AtomicBool>,
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

struct Supervisor<'a> {
    ecs: &'a Ecs,
    args: &'a SupervisorArgs,
    runtime: Runtime,
    images: Option<ContentStore>,
    namespaces: Option<SharedNamespaces>,
    cgroup: String,
    running: BTreeMap<String, Running>,
    events: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    stopping: bool,
    /// A service task: unhealthy essential containers stop it, once its
    /// service's health check grace period (from this time) is over.
    health_enforced_after: Option<Instant>,
    /// Attached to a load balancer: how long the task serves on after it
    /// is taken out of it, before its containers are stopped.
    drain: Option<Duration>,
    /// Taken out of its load balancers; stopped at this time.
    draining_until: Option<Instant>,
    network: Option<crate::model::TaskNetwork>,
    /// Port mappings made in the kernel, to remove.
    host_ports: Vec<crate::model::HostPort>,
    /// Bridge mode: each container's namespaces and link.
    container_namespaces: Vec<SharedNamespaces>,
    links: Vec<crate::model::TaskNetwork>,
}

impl<'a> Supervisor<'a> {
    fn new(ecs: &'a Ecs, args: &'a SupervisorArgs) -> Self {
        Self {
            ecs,
            args,
            runtime: Runtime::new(RuntimeRoot::new(&args.runtime_root)),
            images: None,
            namespaces: None,
            cgroup: args.cgroup(),
            running: BTreeMap::new(),
            events: mpsc::channel(),
            stopping: false,
            health_enforced_after: None,
            drain: None,
            draining_until: None,
            network: None,
            host_ports: Vec::new(),
            container_namespaces: Vec::new(),
            links: Vec::new(),
        }
    }

    fn set(&self, change: impl FnMut(&mut Task)) -> Option<Task> {
        match self
            .ecs
            .update_task(&self.args.cluster, &self.args.task_id, change)
        {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("update task: {e}");
                None
            }
        }
    }

    fn set_container(&self, name: &str, mut change: impl FnMut(&mut crate::model::Container)) {
        self.set(|t| {
            if let Some(c) = t.containers.iter_mut().find(|c| c.name == name) {
                change(c);
            }
        });
    }

    fn task(&self) -> Result<Task, String> {
        self.ecs
            .task(&self.args.cluster, &self.args.task_id)
            .map_err(|e| e.to_string())
    }

    /// The task and its definition.
    fn task_and_definition(&self) -> Result<(Task, TaskDefinition), String> {
        let task = self.task()?;
        let td = self
            .ecs
            .task_definition(&task.task_definition_arn)
            .map_err(|e| e.to_string())?;
        Ok((task, td))
    }

    /// An essential container has ended: the task is over.
    fn essential_exited(&self) -> bool {
        self.running
            .values()
            .any(|r| r.essential && r.exit.is_some())
    }

    fn supervise(&mut self) -> Result<(), String> {
        let (task, td) = self.task_and_definition()?;
        // Stopped before it began (stop-task while it was starting):
        // nothing to start, only the cleanup.
        if task.desired_status == DesiredStatus::Stopped {
            return Ok(());
        }
        self.set(|t| {
            t.last_status = TaskStatus::Pending;
            t.pull_started_at = Some(now());
        });
        let images =
            ContentStore::open(self.args.state_root.join("images")).map_err(|e| e.to_string())?;
        let mut configs = BTreeMap::new();
        for c in &td.container_definitions {
            let image = ensure_image(&images, &c.image)
                .map_err(|e| format!("CannotPullContainerError: {e}"))?;
            configs.insert(c.name.clone(), image);
        }
        self.images = Some(images);
        self.set(|t| t.pull_stopped_at = Some(now()));

        let ctx = self.prepare_task(&td, &task)?;
        self.load_service_settings(&task);
        for def in start_order(&td.container_definitions) {
            if !self.wait_for_dependencies(def)? {
                return Ok(());
            }
            self.start_container(def, &configs[&def.name], &task, &ctx)?;
        }
        let now_running = self.set(|t| {
            if t.desired_status == DesiredStatus::Running {
                t.last_status = TaskStatus::Running;
                t.started_at.get_or_insert_with(now);
            }
        });
        // A service counts its task, and may go on with a deployment.
        let service_task = now_running
            .is_some_and(|t| t.last_status == TaskStatus::Running && is_service_task(&t));
        if service_task {
            reconcile_now(self.ecs, self.args);
        }
        // Once settled, the task may complete a deployment: say so.
        let mut settle_at =
            service_task.then(|| Instant::now() + crate::scheduler::deployments::SETTLE + POLL);
        while self.running.values().any(|r| r.exit.is_none()) {
            self.step()?;
            if settle_at.is_some_and(|at| Instant::now() >= at) {
                settle_at = None;
                reconcile_now(self.ecs, self.args);
            }
        }
        Ok(())
    }

    /// A service task: its service's health-check grace period, and the
    /// drain its load balancers ask for.
    fn load_service_settings(&mut self, task: &Task) {
        let Some(service) = task.service_name() else {
            return;
        };
        let service = self.ecs.service(&self.args.cluster, service).ok();
        let grace = service
            .as_ref()
            .and_then(|s| s.health_check_grace_period_seconds)
            .unwrap_or(0);
        self.health_enforced_after = Some(Instant::now() + Duration::from_secs(grace.into()));
        self.drain = service
            .iter()
            .flat_map(crate::load_balancing::names_of)
            .filter_map(|lb| self.ecs.load_balancer(&lb).ok())
            .map(|lb| Duration::from_secs(lb.deregistration_delay_seconds.into()))
            .max();
    }

    /// Take over a task whose supervisor died while its containers run on:
    /// what the old one made is rebuilt from the store, each live
    /// container is watched through the runtime's state, and the task goes
    /// on as if nothing happened. A task caught mid-start is stopped.
    fn adopt(&mut self) -> Result<(), String> {
        let (task, td) = self.task_and_definition()?;
        self.restore(&task);
        self.load_service_settings(&task);
        for def in &td.container_definitions {
            let runtime_id = names::runtime_id(&self.args.task_id, &def.name);
            let Ok(state) = self.runtime.state(&runtime_id) else {
                continue; // never created
            };
            let live = state.exit.is_none() && state.monitor.alive;
            let seen = task
                .containers
                .iter()
                .find(|c| c.name == def.name)
                .map_or(HealthStatus::Unknown, |c| {
                    health::status_known(&c.health_status)
                });
            let health = if live {
                self.start_health_watch(def, &runtime_id, seen)
            } else {
                None
            };
            self.running
                .insert(def.name.clone(), Running::new(def, &runtime_id, health));
            if live {
                watch_adopted(
                    self.args.runtime_root.clone(),
                    runtime_id,
                    def.name.clone(),
                    self.events.0.clone(),
                );
            } else {
                self.container_exited(&def.name, state.exit);
            }
        }
        if task.last_status != TaskStatus::Running {
            self.request_stop(
                StopCode::TaskFailedToStart,
                "The task's supervisor died while starting it",
            );
        }
        while self.running.values().any(|r| r.exit.is_none()) {
            self.step()?;
        }
        Ok(())
    }

    /// What a supervisor of `task` had made, rebuilt from its record, for
    /// a successor that cleans it up.
    fn restore(&mut self, task: &Task) {
        self.images = ContentStore::open(self.args.state_root.join("images")).ok();
        self.namespaces = Some(SharedNamespaces {
            dir: self.args.task_dir().join("ns"),
        });
        let b = task.berth.clone().unwrap_or_default();
        self.network = b.network;
        self.host_ports = b.host_ports;
        for cn in b.container_networks {
            self.container_namespaces.push(SharedNamespaces {
                dir: self.args.container_ns_dir(&cn.container),
            });
            self.links.push(cn.network);
        }
    }

    /// The task's volumes (containerize::volume_dirs, which checks the
    /// definition again: one written to the store without registration
    /// must not mount anything outside the task's volumes directory
    /// either), scratch ones made.
    fn make_volumes(
        &self,
        td: &TaskDefinition,
        task: &Task,
    ) -> Result<BTreeMap<String, PathBuf>, String> {
        let base = self.args.task_dir().join("volumes");
        let dirs = volume_dirs(td, &task.launch_type, &base).map_err(|e| e.to_string())?;
        let mut volumes = BTreeMap::new();
        for (name, dir) in dirs {
            if let VolumeDir::Scratch(d) = &dir {
                std::fs::create_dir_all(d).map_err(|e| format!("volume {name}: {e}"))?;
            }
            volumes.insert(name, dir.path().to_path_buf());
        }
        Ok(volumes)
    }

    /// Namespaces, cgroup and scratch volumes of the task.
    fn prepare_task(&mut self, td: &TaskDefinition, task: &Task) -> Result<TaskContext, String> {
        let host_network = td.network_mode == Some(NetworkMode::Host);
        let hostname: String = task
            .task_arn
            .rsplit('/')
            .next()
            .unwrap_or("task")
            .chars()
            .take(12)
            .collect();
        let ns =
            SharedNamespaces::create(&self.args.task_dir().join("ns"), !host_network, &hostname)
                .map_err(|e| e.to_string())?;
        self.namespaces = Some(ns.clone());
        if let Some(net) = task.berth.as_ref().and_then(|b| b.network.clone()) {
            let netns = ns
                .path("network")
                .ok_or("the task has no network namespace")?;
            self.network = Some(net.clone());
            plug_in(&netns, &net)?;
            self.set(|t| {
                for a in &mut t.attachments {
                    a["status"] = "ATTACHED".into();
                }
            });
        }
        // Bridge mode: each container its own namespaces, on the bridge.
        let container_nets = task
            .berth
            .as_ref()
            .map(|b| b.container_networks.clone())
            .unwrap_or_default();
        let mut per_container = BTreeMap::new();
        for cn in &container_nets {
            let dir = self.args.container_ns_dir(&cn.container);
            let cns = SharedNamespaces::create(&dir, true, &names::hostname(&cn.container))
                .map_err(|e| e.to_string())?;
            self.container_namespaces.push(cns.clone());
            let netns = cns.path("network").ok_or("no network namespace")?;
            self.links.push(cn.network.clone());
            plug_in(&netns, &cn.network)?;
            per_container.insert(
                cn.container.clone(),
                (Some(netns), cns.path("ipc"), cns.path("uts")),
            );
        }
        // Port mappings: to the task's address (awsvpc) or the container's.
        let ports = task
            .berth
            .as_ref()
            .map(|b| b.host_ports.clone())
            .unwrap_or_default();
        let target = |container: &str| -> Option<crate::model::TaskNetwork> {
            container_nets
                .iter()
                .find(|cn| cn.container == container)
                .map(|cn| cn.network.clone())
                .or_else(|| self.network.clone())
        };
        let mut table_made = false;
        for hp in &ports {
            let Some(net) = target(&hp.container) else {
                continue; // host mode: the container binds the port itself
            };
            // One table for the network, made once for all the mappings.
            if !table_made {
                let subnet: berth_net::Subnet = format!("{}/{}", net.address, net.prefix)
                    .parse()
                    .map_err(|e: berth_net::Error| e.to_string())?;
                berth_net::nat::ensure_table(&net.bridge, &subnet).map_err(|e| e.to_string())?;
                table_made = true;
            }
            berth_net::nat::add_mapping(
                &net.bridge,
                &hp.protocol,
                hp.host_port,
                &net.address,
                hp.container_port,
            )
            .map_err(|e| format!("map port {}/{}: {e}", hp.host_port, hp.protocol))?;
            self.host_ports.push(hp.clone());
        }
        // What ECS shows of the mappings.
        let bindings = task
            .berth
            .as_ref()
            .map(|b| b.host_ports.clone())
            .unwrap_or_default();
        if !bindings.is_empty() {
            self.set(|t| {
                for c in &mut t.containers {
                    c.network_bindings = bindings
                        .iter()
                        .filter(|hp| hp.container == c.name)
                        .map(|hp| {
                            serde_json::json!({
                                "bindIP": "0.0.0.0",
                                "containerPort": hp.container_port,
                                "hostPort": hp.host_port,
                                "protocol": hp.protocol,
                            })
                        })
                        .collect();
                }
            });
        }
        let resources = Resources {
            cpu_units: td.cpu.as_deref().and_then(|c| c.parse().ok()),
            memory_mib: td.memory.as_deref().and_then(|m| m.parse().ok()),
            ..Default::default()
        };
        cgroups::create_parent(&self.cgroup, &resources)?;
        let volumes = self.make_volumes(td, task)?;
        let etc = self.args.task_dir().join("etc");
        std::fs::create_dir_all(&etc).map_err(|e| format!("create {}: {e}", etc.display()))?;
        let address = task
            .berth
            .as_ref()
            .and_then(|b| b.network.as_ref())
            .map(|n| n.address.clone());
        let hosts = etc.join("hosts");
        let addresses: BTreeMap<String, String> = container_nets
            .iter()
            .map(|cn| (cn.container.clone(), cn.network.address.clone()))
            .collect();
        std::fs::write(
            &hosts,
            hosts_file(
                &hostname,
                address.as_deref(),
                &addresses,
                &td.container_definitions,
            ),
        )
        .map_err(|e| format!("write {}: {e}", hosts.display()))?;
        let resolv = etc.join("resolv.conf");
        let host_resolv = crate::resolv::task_base(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            std::fs::read_to_string(crate::resolv::SYSTEMD_RESOLV_CONF)
                .ok()
                .as_deref(),
            host_network,
        );
        std::fs::write(
            &resolv,
            resolv_conf(&host_resolv, &td.container_definitions),
        )
        .map_err(|e| format!("write {}: {e}", resolv.display()))?;
        Ok(TaskContext {
            per_container,
            etc_files: vec![
                (hosts, "/etc/hosts".into()),
                (resolv, "/etc/resolv.conf".into()),
            ],
            hostname,
            network_ns: ns.path("network"),
            ipc_ns: ns.path("ipc"),
            uts_ns: ns.path("uts"),
            volumes,
            mount_points: crate::containerize::mount_points(td),
        })
    }

    /// Wait until `def`'s dependencies allow it to start; false if the task
    /// stops first.
    fn wait_for_dependencies(&mut self, def: &ContainerDefinition) -> Result<bool, String> {
        loop {
            let mut ready = true;
            for d in &def.depends_on {
                let dep = self.running.get(&d.container_name);
                match (&d.condition, dep.and_then(|r| r.exit.as_ref())) {
                    (ContainerCondition::Start, _) => ready &= dep.is_some(),
                    (ContainerCondition::Complete, exit) => ready &= exit.is_some(),
                    (ContainerCondition::Success, Some(e)) if e.exit_code != 0 => {
                        let reason = format!(
                            "Dependency {} exited with code {} (condition SUCCESS for {})",
                            d.container_name, e.exit_code, def.name
                        );
                        self.request_stop(StopCode::TaskFailedToStart, &reason);
                        return Ok(false);
                    }
                    (ContainerCondition::Success, exit) => ready &= exit.is_some(),
                    (ContainerCondition::Healthy, exit) => {
                        let health = dep.and_then(|r| r.health.as_ref()).map(|h| &h.status);
                        if exit.is_some() || health == Some(&HealthStatus::Unhealthy) {
                            let reason = format!(
                                "Dependency {} did not become HEALTHY (condition HEALTHY for {})",
                                d.container_name, def.name
                            );
                            self.request_stop(StopCode::TaskFailedToStart, &reason);
                            return Ok(false);
                        }
                        ready &= health == Some(&HealthStatus::Healthy);
                    }
                    _ => ready &= dep.is_some(),
                }
            }
            if ready {
                return Ok(true);
            }
            self.step()?;
            if self.stopping {
                return Ok(false);
            }
        }
    }

    fn start_container(
        &mut self,
        def: &ContainerDefinition,
        image: &Image,
        task: &Task,
        ctx: &TaskContext,
    ) -> Result<(), String> {
        let ov = overrides_for(&task.overrides, &def.name);
        let spec =
            container_spec(def, &image.config.config, &ov, ctx).map_err(|e| e.to_string())?;
        let runtime_id = names::runtime_id(&self.args.task_id, &def.name);
        let images = self.images.as_ref().ok_or("no image store")?;
        let snapshot = Snapshotter::new(images)
            .prepare(&runtime_id, image)
            .map_err(|e| format!("container {}: {e}", def.name))?;
        let log_path =
            SupervisorArgs::container_log(&self.args.state_root, &self.args.task_id, &def.name)
                .map_err(|e| format!("container {}: {e}", def.name))?;
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let opts = CreateOptions {
            cgroup_parent: self.cgroup.clone(),
            cgroup_name: Some(def.name.clone()),
            log_path: Some(log_path),
            start: true,
            ..Default::default()
        };
        let created = self
            .runtime
            .create(
                &runtime_id,
                Source::Spec {
                    rootfs: &snapshot.rootfs,
                    spec: &spec,
                },
                &opts,
            )
            .map_err(|e| format!("CannotStartContainerError: container {}: {e}", def.name))?;
        let tx = self.events.0.clone();
        let name = def.name.clone();
        std::thread::spawn(move || {
            let exit = created.exit.wait().ok().flatten();
            let _ = tx.send(Event::Exited(name, exit));
        });
        let health = self.start_health_watch(def, &runtime_id, HealthStatus::Unknown);
        self.running
            .insert(def.name.clone(), Running::new(def, &runtime_id, health));
        self.set_container(&def.name, |c| {
            c.last_status = TaskStatus::Running;
            c.runtime_id = Some(runtime_id.clone());
        });
        Ok(())
    }

    /// Probe `def`'s health check in its container, if it has one.
    fn start_health_watch(
        &self,
        def: &ContainerDefinition,
        runtime_id: &str,
        status: HealthStatus,
    ) -> Option<HealthWatch> {
        let check = def.health_check.as_ref()?;
        let done = Arc::new(AtomicBool::new(false));
        watch_health(
            check.clone(),
            self.args.runtime_root.clone(),
            runtime_id.to_string(),
            def.name.clone(),
            self.events.0.clone(),
            done.clone(),
        );
        Some(HealthWatch { status, done })
    }

    /// Handle one event or notice a stop request.
    fn step(&mut self) -> Result<(), String> {
        match self.events.1.recv_timeout(POLL) {
            Ok(event) => self.handle(event),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("event channel closed".into()),
        }
        if !self.stopping && self.task()?.desired_status == DesiredStatus::Stopped {
            self.begin_stop();
        }
        if let Some(at) = self.draining_until {
            if Instant::now() >= at || self.essential_exited() {
                self.stop_containers();
            }
        }
        self.enforce_health();
        Ok(())
    }

    /// Stop the task's containers, first taking it out of its load
    /// balancers and letting its connections drain when it has some.
    fn begin_stop(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        // Only a task that was RUNNING was ever in a load balancer.
        let served = self.task().is_ok_and(|t| t.started_at.is_some());
        match self.drain {
            Some(delay) if served && !self.essential_exited() => {
                self.set(|t| t.last_status = TaskStatus::Deactivating);
                // The pass sees the task stopping and leaves it out.
                reconcile_now(self.ecs, self.args);
                self.draining_until = Some(Instant::now() + delay);
            }
            _ => self.stop_containers(),
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Exited(name, exit) => self.container_exited(&name, exit),
            Event::Health(name, status) => self.health_changed(&name, status),
        }
    }

    fn health_changed(&mut self, name: &str, status: HealthStatus) {
        if let Some(watch) = self.running.get_mut(name).and_then(|r| r.health.as_mut()) {
            watch.status = status.clone();
        }
        let task_status = health::task_health(
            self.running
                .values()
                .filter(|r| r.essential)
                .filter_map(|r| r.health.as_ref().map(|h| &h.status)),
        );
        let updated = self.set(|t| {
            if let Some(c) = t.containers.iter_mut().find(|c| c.name == name) {
                c.health_status = status.clone();
            }
            t.health_status = task_status.clone();
        });
        // A service task now in service may let a deployment go on.
        if updated.is_some_and(|t| t.in_service() && is_service_task(&t)) {
            reconcile_now(self.ecs, self.args);
        }
    }

    /// A service's scheduler stops a task whose essential container is
    /// UNHEALTHY, once the grace period is over; a standalone task lives on
    /// whatever its health (as in ECS).
    fn enforce_health(&mut self) {
        let Some(after) = self.health_enforced_after else {
            return;
        };
        let unhealthy = self.running.values().any(|r| {
            r.essential
                && r.exit.is_none()
                && r.health
                    .as_ref()
                    .is_some_and(|h| h.status == HealthStatus::Unhealthy)
        });
        let stopping = self.stopping || self.draining_until.is_some();
        if unhealthy && !stopping && Instant::now() >= after {
            self.request_stop(StopCode::ServiceSchedulerInitiated, HEALTH_REASON);
        }
    }

    fn container_exited(&mut self, name: &str, exit: Option<ExitRecord>) {
        // No record: the monitor died, and the container's processes may run
        // on with nobody to reap them or record their end. Kill them.
        let monitor_died = exit.is_none();
        if monitor_died {
            if let Some(r) = self.running.get(name) {
                if let Err(e) =
                    self.runtime
                        .kill(&r.runtime_id, nix::sys::signal::Signal::SIGKILL, true)
                {
                    tracing::warn!("kill {} after its monitor died: {e}", r.runtime_id);
                }
            }
        }
        let exit = exit.unwrap_or(ExitRecord {
            exit_code: 137,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: chrono::Utc::now(),
        });
        let essential = self.running.get(name).is_some_and(|r| r.essential);
        let code = exit.exit_code;
        let reason = if monitor_died {
            Some(MONITOR_DIED_REASON.to_string())
        } else {
            exit.oom_killed.then(|| OOM_REASON.to_string())
        };
        self.set_container(name, |c| {
            c.last_status = TaskStatus::Stopped;
            c.exit_code = Some(code);
            c.reason = reason.clone();
        });
        if let Some(r) = self.running.get_mut(name) {
            r.exit = Some(exit);
            if let Some(h) = &r.health {
                h.done.store(true, Ordering::Relaxed);
            }
        }
        if essential && !self.stopping {
            self.request_stop(
                StopCode::EssentialContainerExited,
                "Essential container in task exited",
            );
        }
    }

    fn request_stop(&mut self, code: StopCode, reason: &str) {
        self.set(|t| {
            t.desired_status = DesiredStatus::Stopped;
            t.stop_code.get_or_insert_with(|| code.clone());
            t.stopped_reason.get_or_insert_with(|| reason.to_string());
            t.stopping_at.get_or_insert_with(now);
        });
        self.begin_stop();
    }

    /// Stop signal, then SIGKILL after each container's stopTimeout; in
    /// parallel, so one slow container does not hold the others.
    fn stop_containers(&mut self) {
        self.stopping = true;
        self.draining_until = None;
        for h in self.running.values().filter_map(|r| r.health.as_ref()) {
            h.done.store(true, Ordering::Relaxed);
        }
        self.set(|t| {
            if t.last_status != TaskStatus::Stopped {
                t.last_status = TaskStatus::Deactivating;
            }
        });
        let root = self.args.runtime_root.clone();
        for r in self.running.values().filter(|r| r.exit.is_none()) {
            let (id, timeout, root) = (r.runtime_id.clone(), r.stop_timeout, root.clone());
            std::thread::spawn(move || {
                let runtime = Runtime::new(RuntimeRoot::new(root));
                if let Err(e) = runtime.stop(&id, timeout, None) {
                    tracing::warn!("stop {id}: {e}");
                }
            });
        }
    }

    fn cleanup(&mut self) {
        // Containers still running (a failure mid-start) are stopped first.
        if self.running.values().any(|r| r.exit.is_none()) {
            if !self.stopping {
                self.stop_containers();
            }
            let deadline = Instant::now() + DEFAULT_STOP_TIMEOUT + Duration::from_secs(15);
            while self.running.values().any(|r| r.exit.is_none()) && Instant::now() < deadline {
                if let Ok(event) = self.events.1.recv_timeout(POLL) {
                    self.handle(event);
                }
            }
        }
        let Some(task) = self.set(|t| t.last_status = TaskStatus::Deprovisioning) else {
            return; // no record to release from: left to gc
        };
        // Everything the task made, named from its record, whatever step
        // the start reached; a step that fails is tried again shortly.
        let mut released = teardown::release(self.args, &task, Ports::Unmap);
        for _ in 0..RELEASE_ATTEMPTS {
            if released.is_complete() {
                break;
            }
            std::thread::sleep(RELEASE_RETRY);
            released = teardown::release(self.args, &task, Ports::Unmap);
        }
        if !released.is_complete() {
            // Not STOPPED: the task keeps its address and host ports while
            // something of it may still use them. With this supervisor gone
            // it is an orphan, which `system gc` and the agent finish.
            tracing::error!(
                "task {}: left DEPROVISIONING, could not release: {}",
                self.args.task_id,
                released.failed.join("; ")
            );
            return;
        }
        let net = task.berth.as_ref().and_then(|b| {
            b.network
                .clone()
                .or_else(|| b.container_networks.first().map(|cn| cn.network.clone()))
        });
        self.set(|t| {
            t.last_status = TaskStatus::Stopped;
            t.desired_status = DesiredStatus::Stopped;
            let at = now();
            t.execution_stopped_at.get_or_insert_with(|| at.clone());
            t.stopping_at.get_or_insert_with(|| at.clone());
            t.stopped_at = Some(at);
            for c in &mut t.containers {
                if c.last_status != TaskStatus::Stopped {
                    c.last_status = TaskStatus::Stopped;
                }
            }
            for a in &mut t.attachments {
                a["status"] = "DELETED".into();
            }
        });
        // The bridge goes when no task needs it any more.
        if let Some(net) = &net {
            if let Ok(false) = self.ecs.addresses_in_use(&net.bridge) {
                if let Err(e) = berth_net::nat::remove_table(&net.bridge) {
                    tracing::warn!("remove NAT table of {}: {e}", net.bridge);
                }
                if let Err(e) = berth_net::remove_bridge(&net.bridge) {
                    tracing::warn!("remove bridge {}: {e}", net.bridge);
                }
            }
        }
    }
}

/// Probe `container` every interval (the first after one interval, as
/// Docker does) and send each change of its health, until `done`.
fn watch_health(
    check: HealthCheck,
    runtime_root: PathBuf,
    runtime_id: String,
    container: String,
    events: mpsc::Sender<Event>,
    done: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let argv = check.argv();
        let mut tracker = HealthTracker::new(&check, Instant::now());
        loop {
            let next = Instant::now() + check.interval();
            while Instant::now() < next {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(POLL);
            }
            let passed =
                berth_runtime::probe::probe(&runtime_root, &runtime_id, &argv, check.timeout())
                    .map(|outcome| outcome.passed())
                    .unwrap_or_else(|e| {
                        tracing::warn!("health check of {container}: {e}");
                        false
                    });
            // A container that stopped meanwhile failed nothing.
            if done.load(Ordering::Relaxed) {
                return;
            }
            if let Some(status) = tracker.record(passed, Instant::now()) {
                if events
                    .send(Event::Health(container.clone(), status))
                    .is_err()
                {
                    return;
                }
            }
        }
    });
}

/// Watch a container this process did not start: its exit, as its monitor
/// records it, or None once the monitor is gone without a record.
fn watch_adopted(
    runtime_root: PathBuf,
    runtime_id: String,
    container: String,
    events: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        let runtime = Runtime::new(RuntimeRoot::new(runtime_root));
        let exit = loop {
            match runtime.state(&runtime_id) {
                Ok(state) if state.exit.is_some() => break state.exit,
                Ok(state) if state.monitor.alive => std::thread::sleep(POLL),
                // The monitor may have recorded the exit as it went.
                _ => break runtime.state(&runtime_id).ok().and_then(|s| s.exit),
            }
        };
        let _ = events.send(Event::Exited(container, exit));
    });
}

/// Plug the namespace at `netns` into the network `net` describes (making
/// its bridge on first use).
fn plug_in(netns: &std::path::Path, net: &crate::model::TaskNetwork) -> Result<(), String> {
    let parse = |a: &str| {
        a.parse::<std::net::Ipv4Addr>()
            .map_err(|e| format!("{a}: {e}"))
    };
    let (address, gateway) = (parse(&net.address)?, parse(&net.gateway)?);
    berth_net::ensure_bridge(&net.bridge, gateway, net.prefix).map_err(|e| e.to_string())?;
    berth_net::attach(
        netns,
        &net.bridge,
        &net.host_ifname,
        address,
        net.prefix,
        gateway,
    )
    .map_err(|e| e.to_string())
}

/// Finish a task whose supervisor is gone (killed, or never started because
/// its `run-task` died): stop and remove what exists of it, release its
/// reservation and mark it STOPPED.
pub fn reap_orphan(ecs: &Ecs, args: &SupervisorArgs) -> Result<(), String> {
    let task = ecs
        .task(&args.cluster, &args.task_id)
        .map_err(|e| e.to_string())?;
    if task.is_stopped() {
        return Ok(());
    }
    // In charge, as a supervisor would be: a second reaper, or a
    // supervisor starting late, then leaves the task alone.
    if !claim(ecs, args).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let mut sup = Supervisor::new(ecs, args);
    sup.restore(&task);
    let runtime = Runtime::new(RuntimeRoot::new(&args.runtime_root));
    for c in &task.containers {
        let id = names::runtime_id(&args.task_id, &c.name);
        let Ok(state) = runtime.state(&id) else {
            continue; // never created: its root filesystem goes in cleanup
        };
        if state.exit.is_none() {
            let _ = runtime.stop(&id, DEFAULT_STOP_TIMEOUT, None);
        }
        if c.last_status == TaskStatus::Stopped {
            continue; // its end is recorded; cleanup deletes it
        }
        let exit = runtime.state(&id).ok().and_then(|s| s.exit);
        sup.running.insert(
            c.name.clone(),
            Running {
                runtime_id: id,
                essential: false,
                stop_timeout: DEFAULT_STOP_TIMEOUT,
                exit: None,
                health: None,
            },
        );
        // Records the end (or kills what runs on without a monitor).
        sup.container_exited(&c.name, exit);
    }
    sup.stopping = true;
    sup.cleanup();
    Ok(())
}

/// What became of a task whose supervisor had died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Its containers run on under a new supervisor.
    Adopted,
    /// Stopped and cleaned up (its service, if any, replaces it).
    Reaped,
}

/// A task whose supervisor died: adopted by a new supervisor if it was
/// RUNNING with every essential container alive under its monitor, else
/// finished.
pub fn recover_orphan(ecs: &Ecs, args: &SupervisorArgs) -> Result<Recovered, String> {
    let task = ecs
        .task(&args.cluster, &args.task_id)
        .map_err(|e| e.to_string())?;
    let td = ecs
        .task_definition(&task.task_definition_arn)
        .map_err(|e| e.to_string())?;
    let runtime = Runtime::new(RuntimeRoot::new(&args.runtime_root));
    let alive = |name: &str| {
        runtime
            .state(&format!("{}-{name}", args.task_id))
            .is_ok_and(|s| s.exit.is_none() && s.monitor.alive)
    };
    let adoptable = task.last_status == TaskStatus::Running
        && task.desired_status == DesiredStatus::Running
        && td
            .container_definitions
            .iter()
            .filter(|c| c.is_essential())
            .all(|c| alive(&c.name));
    if adoptable {
        let adopter = SupervisorArgs {
            adopt: true,
            ..args.clone()
        };
        adopter
            .spawn()
            .map_err(|e| format!("start a supervisor: {e}"))?;
        Ok(Recovered::Adopted)
    } else {
        reap_orphan(ecs, args)?;
        Ok(Recovered::Reaped)
    }
}

/// Not STOPPED, yet no supervisor lives for it. A supervisor records
/// itself within moments of run-task; before that (5 s) a task without one
/// is only starting.
pub fn is_orphaned(task: &Task) -> bool {
    let starting = chrono::DateTime::parse_from_rfc3339(&task.created_at).is_ok_and(|at| {
        chrono::Utc::now().signed_duration_since(at) <= chrono::Duration::seconds(5)
    }) && task
        .berth
        .as_ref()
        .is_none_or(|b| b.supervisor_pid.is_none());
    may_claim(task) && !starting
}

/// True while the task's supervisor process lives.
pub fn supervisor_alive(task: &Task) -> bool {
    let Some(b) = &task.berth else { return false };
    match (b.supervisor_pid, b.supervisor_start_time) {
        (Some(pid), Some(start)) => berth_runtime::proc::ProcessId {
            pid,
            start_time: start,
        }
        .is_alive(),
        _ => false,
    }
}

/// The image a container names: from the store, pulled when missing.
fn ensure_image(store: &ContentStore, image: &str) -> Result<Image, String> {
    let reference: Reference = image.parse().map_err(|e| format!("{e}"))?;
    let name = reference.to_string();
    match Image::load(store, &name) {
        Ok(i) => Ok(i),
        Err(berth_rootfs::Error::ImageNotFound(_)) => {
            let opts = PullOptions {
                insecure_registries: std::env::var("BERTH_INSECURE_REGISTRIES")
                    .map(|v| {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                max_concurrent_downloads: 4,
                ..Default::default()
            };
            pull::pull_blocking(store, &reference, &opts, std::sync::Arc::new(Quiet))
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Containers in an order where each comes after those it depends on.
fn start_order(defs: &[ContainerDefinition]) -> Vec<&ContainerDefinition> {
    let mut out: Vec<&ContainerDefinition> = Vec::new();
    let mut left: Vec<&ContainerDefinition> = defs.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|c| {
            let ready = c
                .depends_on
                .iter()
                .all(|d| out.iter().any(|o| o.name == d.container_name));
            if ready {
                out.push(c);
            }
            !ready
        });
        if left.len() == before {
            // Registration refuses cycles; keep the rest in order anyway.
            out.append(&mut left);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskInternals;

    fn task(last_status: TaskStatus, supervisor: Option<(i32, Option<u64>)>) -> Task {
        Task {
            last_status,
            berth: Some(TaskInternals {
                supervisor_pid: supervisor.map(|s| s.0),
                supervisor_start_time: supervisor.and_then(|s| s.1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_is_claimed_only_when_nobody_live_has_it_and_it_is_not_over() {
        let me = std::process::id() as i32;
        let alive = (me, berth_runtime::proc::start_time(me));
        // Nobody yet, or a claimer that died (pid reused: other start time).
        assert!(may_claim(&task(TaskStatus::Provisioning, None)));
        assert!(may_claim(&task(TaskStatus::Running, Some((me, Some(1))))));
        assert!(may_claim(&task(
            TaskStatus::Deprovisioning,
            Some((me, None))
        )));
        // A live supervisor or reaper has it.
        assert!(!may_claim(&task(TaskStatus::Pending, Some(alive))));
        // Finished: never again.
        assert!(!may_claim(&task(TaskStatus::Stopped, None)));
    }
}

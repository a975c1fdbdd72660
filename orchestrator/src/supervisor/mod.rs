//! The per-task supervisor: `berth __berth-task …`, detached like the
//! container monitors. It pulls images, makes the task's namespaces,
//! cgroup and volumes, starts containers in `dependsOn` order, writes
//! every state change and container exit into the store, stops the task
//! when an essential container exits or a stop is asked for, and cleans
//! up. Each container keeps its own monitor: if this process dies, the
//! containers run on.

mod events;
mod health;
mod orphans;
mod prepare;
mod start;
mod stop;
pub mod teardown;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_rootfs::ContentStore;
use berth_runtime::exit::ExitRecord;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{Runtime, RuntimeRoot};
use nix::unistd::{fork, ForkResult};

use crate::ecs::{now, Ecs};
use crate::model::{
    name_from_arn, ContainerDefinition, DesiredStatus, Partition, StopCode, Task, TaskDefinition,
    TaskStatus,
};
use crate::names;
use crate::reconcile::reconcile_now;
use events::{watch_adopted, Event};
use health::HealthWatch;
use orphans::claim;
pub use orphans::{
    is_orphaned, may_claim, reap_orphan, recover_orphan, supervisor_alive, Recovered,
};
use prepare::ensure_image;
use start::start_order;

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
        let mut settle_at = service_task.then(|| Instant::now() + crate::services::SETTLE + POLL);
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
            .flat_map(crate::load_balancers::names_of)
            .filter_map(|lb| self.ecs.load_balancer(&lb).ok())
            .map(|lb| Duration::from_secs(lb.deregistration_delay_seconds.into()))
            .max();
    }
}

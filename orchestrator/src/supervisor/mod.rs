//! The per-task supervisor: `berth __berth-task …`, detached like the
//! container monitors. Each container keeps its own monitor: if this
//! process dies, the containers run on, and a successor adopts them
//! ([`orphans`]).
//!
//! A task's life, file by file, in the order [`run`] walks it:
//! 1. claim: this process records itself as the task's supervisor
//!    ([`orphans`]; [`args`] is its command line);
//! 2. prepare: images, namespaces, network, port mappings, cgroup,
//!    volumes, /etc files ([`prepare`]);
//! 3. start: containers in `dependsOn` order ([`start`]), each watched for
//!    its exit and its health ([`health`]);
//! 4. watch: the event loop until every container ended ([`events`]);
//! 5. stop: asked for, or an essential container ended; a drain out of
//!    load balancers first ([`stop`]);
//! 6. clean up: release what the task made ([`teardown`]), then STOPPED.
//!
//! Every write to the task's record is in [`record`], the pure decisions
//! (start order, dependency conditions, orphans, when to stop) in
//! [`rules`], and why a task stops, with its ECS stop code, in [`error`].

mod args;
mod endpoint;
mod error;
mod events;
mod health;
mod launch_record;
mod logs;
pub mod network_timing;
mod orphans;
mod prepare;
mod record;
mod restart;
mod restart_policy;
mod rules;
mod secrets;
mod start;
mod stop;
mod task_role;
pub mod teardown;
mod wake;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_rootfs::ContentStore;
use berth_runtime::exit::ExitRecord;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{Runtime, RuntimeRoot};
use nix::unistd::{fork, ForkResult};

pub use args::{bridge_locks, SupervisorArgs, SUPERVISOR_ARG};
pub use error::{StopCause, TaskError};
use events::Event;
use health::HealthWatch;
pub use orphans::{
    is_orphaned, may_claim, reap_orphan, recover_orphan, supervisor_alive, Recovered,
};
pub use wake::wake as wake_supervisor;

use crate::ecs::Ecs;
use crate::model::{ContainerDefinition, DesiredStatus, Partition, TaskStatus};

/// How often the supervisor waits for its containers' ends while it
/// cleans up, between other events.
const POLL: Duration = Duration::from_millis(100);
/// How often a running task's supervisor reads its record for a stop
/// request nobody woke it for ([`wake`]): with SQLite, every stop on
/// this host wakes it, so this is only a safety net ...
const STORE_LOOK: Duration = Duration::from_secs(5);
/// ... while with a shared store (etcd) a stop may be committed on
/// another host, which cannot wake it: this is that stop's latency.
const SHARED_STORE_LOOK: Duration = Duration::from_secs(1);
/// How long after its start the supervisor first sheds: tasks are often
/// started many at once, and the page walk is better spent when they are
/// all running (an idle supervisor's next wait is seconds long anyway).
const FIRST_SHED_AFTER: Duration = Duration::from_secs(2);

/// Run as a task supervisor; returns the process exit code. Call before
/// any thread exists: it forks.
pub fn run(args: SupervisorArgs, partition: Partition) -> i32 {
    // Before any thread: the transient threads of set-up (netlink,
    // namespaces, image pulls) leave no arenas behind for the task's life.
    berth_runtime::memory::limit_arenas();
    // SAFETY: single-threaded here (the caller's contract).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            tracing::error!("fork: {e}");
            return 1;
        }
    }
    // Out of the starter's session (and terminal): a forked child leads no
    // process group, so this cannot fail but for a kernel out of ids.
    if let Err(e) = nix::unistd::setsid() {
        tracing::warn!("setsid: {e}");
    }
    let ecs = match Ecs::open(&args.state_root, &args.store, partition) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("open store: {e}");
            return 1;
        }
    };
    let mut sup = Supervisor::new(&ecs, &args);
    // Listening before the claim records who to wake.
    wake::listen(sup.events.0.clone());
    match orphans::claim(&ecs, &args) {
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
    if let Err(e) = &outcome {
        tracing::error!("task {}: {e}", args.task_id);
        sup.record_failure(e);
    }
    sup.cleanup();
    // A service's task: its service is reconciled at once, so that a
    // replacement starts now rather than at the next agent pass.
    if sup.task().is_ok_and(|t| rules::is_service_task(&t)) {
        sup.reconcile_service();
    }
    i32::from(outcome.is_err())
}

/// A container this supervisor started (or adopted), until it ends.
struct Running {
    runtime_id: String,
    essential: bool,
    stop_timeout: Duration,
    exit: Option<ExitRecord>,
    health: Option<HealthWatch>,
    /// When this run began (its start, or its last restart): a restart
    /// policy restarts only a run that lasted its attempt period.
    run_started: Instant,
    /// With an enabled restart policy: how to start it again, and how
    /// often it was.
    launch: Option<Box<start::Launch>>,
    restarts: u32,
}

impl Running {
    fn new(def: &ContainerDefinition, runtime_id: &str, health: Option<HealthWatch>) -> Self {
        Self {
            runtime_id: runtime_id.to_string(),
            essential: def.is_essential(),
            stop_timeout: rules::stop_timeout(def),
            exit: None,
            health,
            run_started: Instant::now(),
            launch: None,
            restarts: 0,
        }
    }

    /// What the pure rules need to know of it.
    fn seen(&self) -> rules::Seen<'_> {
        rules::Seen {
            essential: self.essential,
            exit_code: self.exit.as_ref().map(|e| e.exit_code),
            health: self.health.as_ref().map(|h| &h.status),
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
    /// A service task, once RUNNING: its service is reconciled again at
    /// this time, when the task has settled.
    settle_at: Option<Instant>,
    /// When the record is next read for a stop request nobody woke this
    /// process for.
    next_store_look: Instant,
    /// Work that faulted in code and data is over: shed it before the
    /// next wait ([`Supervisor::shed`]), from `shed_after` on.
    shed_pending: bool,
    shed_after: Instant,
    network: Option<crate::model::TaskNetwork>,
    /// Port mappings made in the kernel, to remove.
    host_ports: Vec<crate::model::HostPort>,
    /// Bridge mode: each container's namespaces and link.
    container_namespaces: Vec<SharedNamespaces>,
    links: Vec<crate::model::TaskNetwork>,
    /// The store could not be read at the last look for a stop request
    /// (etcd down): said once per outage, not every poll.
    store_unreachable: bool,
    /// The task metadata endpoint's view of the task, and the base URI
    /// its containers are told (None: not served).
    metadata: Option<crate::metadata::server::Shared>,
    metadata_base: Option<String>,
    /// The images the task found in the store: their use is recorded
    /// once it runs, off its start's path.
    image_uses: Vec<String>,
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
            settle_at: None,
            next_store_look: Instant::now(),
            shed_pending: false,
            shed_after: Instant::now() + FIRST_SHED_AFTER,
            network: None,
            host_ports: Vec::new(),
            container_namespaces: Vec::new(),
            links: Vec::new(),
            store_unreachable: false,
            metadata: None,
            metadata_base: None,
            image_uses: Vec::new(),
        }
    }

    /// Prepare, start, then watch the task until its containers ended.
    fn supervise(&mut self) -> Result<(), TaskError> {
        let (task, td) = self.task_and_definition()?;
        // Stopped before it began (stop-task while it was starting):
        // nothing to start, only the cleanup.
        if task.desired_status == DesiredStatus::Stopped {
            return Ok(());
        }
        let images = self.pull_images(&td)?;
        let ctx = self.prepare_task(&td, &task)?;
        self.serve_metadata(&task, &td, &images, &ctx)?;
        self.load_service_settings(&task);
        if !self.start_containers(&td, &images, &task, &ctx)? {
            return Ok(());
        }
        let service_task = self
            .record_running()
            .is_some_and(|t| t.last_status == TaskStatus::Running && rules::is_service_task(&t));
        self.record_image_uses();
        // A service counts its task, and may go on with a deployment.
        if service_task {
            self.reconcile_service();
        }
        self.watch(service_task)
    }

    /// The event loop, until every container ended. A service task, once
    /// settled, may complete a deployment: its service is told.
    fn watch(&mut self, service_task: bool) -> Result<(), TaskError> {
        self.settle_at =
            service_task.then(|| Instant::now() + crate::scheduler::deployments::SETTLE + POLL);
        self.shed_pending = true;
        while self.any_running() {
            self.step()?;
            if self.settle_at.is_some_and(|at| Instant::now() >= at) {
                self.settle_at = None;
                self.reconcile_service();
                self.shed_pending = true;
            }
        }
        Ok(())
    }

    /// An essential container has ended: the task is over.
    fn essential_exited(&self) -> bool {
        rules::essential_exited(self.seen())
    }
}

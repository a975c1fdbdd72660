//! Orphans: who may take charge of a task, and a task whose supervisor
//! died, adopted by a new supervisor or reaped. The pure tests
//! ([`rules::may_claim_given`], [`rules::is_orphaned_given`]) are asked
//! here with what /proc says of the recorded supervisor.

use berth_rootfs::ContentStore;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{Runtime, RuntimeRoot};

use super::error::{StopCause, TaskError};
use super::rules::{self, DEFAULT_STOP_TIMEOUT};
use super::{events, record, Running, Supervisor, SupervisorArgs};
use crate::ecs::Ecs;
use crate::health;
use crate::model::{HealthStatus, Task, TaskStatus};
use crate::names;

type Timestamp = chrono::DateTime<chrono::Utc>;

/// Whether a process may take charge of `task` (run, adopt or finish it):
/// not once it is STOPPED, nor while another's supervisor (or reaper)
/// lives. Two at once: the first to record itself has the task.
pub fn may_claim(task: &Task) -> bool {
    rules::may_claim_given(task, supervisor_alive(task))
}

/// Not STOPPED, yet no supervisor lives for it. A supervisor records
/// itself within moments of run-task; before that (5 s) a task without one
/// is only starting.
pub fn is_orphaned(task: &Task) -> bool {
    rules::is_orphaned_given(task, supervisor_alive(task), chrono::Utc::now())
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

/// Record this process as `args`'s task's supervisor, if [`may_claim`]
/// lets it; false when another has the task or it is over.
pub(super) fn claim(ecs: &Ecs, args: &SupervisorArgs) -> crate::EcsResult<bool> {
    let me = std::process::id() as i32;
    let start_time = berth_runtime::proc::start_time(me);
    record::claim(ecs, args, me, start_time, may_claim)
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
pub fn recover_orphan(ecs: &Ecs, args: &SupervisorArgs) -> Result<Recovered, TaskError> {
    let task = record::load(ecs, args)?;
    let td = record::definition(ecs, &task)?;
    let runtime = Runtime::new(RuntimeRoot::new(&args.runtime_root));
    let alive = |name: &str| {
        runtime
            .state(&format!("{}-{name}", args.task_id))
            .is_ok_and(|s| s.exit.is_none() && s.monitor.alive)
    };
    if rules::adoptable(&task, &td, alive) {
        let adopter = SupervisorArgs {
            adopt: true,
            ..args.clone()
        };
        adopter.spawn().map_err(TaskError::SpawnSupervisor)?;
        Ok(Recovered::Adopted)
    } else {
        reap_orphan(ecs, args)?;
        Ok(Recovered::Reaped)
    }
}

/// Finish a task whose supervisor is gone (killed, or never started because
/// its `run-task` died): stop and remove what exists of it, release its
/// reservation and mark it STOPPED.
pub fn reap_orphan(ecs: &Ecs, args: &SupervisorArgs) -> Result<(), TaskError> {
    let task = record::load(ecs, args)?;
    if task.is_stopped() {
        return Ok(());
    }
    // In charge, as a supervisor would be: a second reaper, or a
    // supervisor starting late, then leaves the task alone.
    if !claim(ecs, args)? {
        return Ok(());
    }
    let mut sup = Supervisor::new(ecs, args);
    sup.restore(&task);
    sup.end_containers(&task);
    sup.stopping = true;
    sup.cleanup();
    Ok(())
}

impl Supervisor<'_> {
    /// Take over a task whose supervisor died while its containers run on:
    /// what the old one made is rebuilt from the store, each live
    /// container is watched through the runtime's state, and the task goes
    /// on as if nothing happened. A task caught mid-start is stopped.
    pub(super) fn adopt(&mut self) -> Result<(), TaskError> {
        let (task, td) = self.task_and_definition()?;
        self.restore(&task);
        self.serve_metadata_again(&task, &td);
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
            let mut running = Running::new(def, &runtime_id, health);
            let ended = state.exit.as_ref().map(|e| e.finished_at);
            self.restore_restarts(&mut running, def, &task, (state.started_at, ended));
            self.running.insert(def.name.clone(), running);
            if live {
                events::watch_adopted(
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
            self.request_stop(StopCause::Failed(TaskError::SupervisorDiedStarting));
        }
        while self.any_running() {
            self.step()?;
        }
        Ok(())
    }

    /// An adopted container with an enabled restart policy: how to start
    /// it again (its predecessor's launch record), how often it was, and
    /// how long this run lasted (from its start in the runtime to its end,
    /// or to now), so that it is restarted as its first supervisor would
    /// have.
    fn restore_restarts(
        &self,
        running: &mut Running,
        def: &crate::model::ContainerDefinition,
        task: &Task,
        (started_at, ended_at): (Option<Timestamp>, Option<Timestamp>),
    ) {
        if !def.restart_policy.as_ref().is_some_and(|p| p.enabled) {
            return;
        }
        running.launch = super::launch_record::load(&self.args.task_dir(), &def.name).map(Box::new);
        running.restarts = task
            .containers
            .iter()
            .find(|c| c.name == def.name)
            .and_then(|c| c.restart_count)
            .unwrap_or(0);
        let end = ended_at.unwrap_or_else(chrono::Utc::now);
        let ran = started_at
            .and_then(|s| (end - s).to_std().ok())
            .unwrap_or_default();
        running.run_started = std::time::Instant::now()
            .checked_sub(ran)
            .unwrap_or_else(std::time::Instant::now);
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

    /// A reaper: each of the orphan's containers stopped, and the end of
    /// each not recorded yet recorded (or what runs on without a monitor
    /// killed).
    fn end_containers(&mut self, task: &Task) {
        for c in &task.containers {
            let id = names::runtime_id(&self.args.task_id, &c.name);
            let Ok(state) = self.runtime.state(&id) else {
                continue; // never created: its root filesystem goes in cleanup
            };
            if state.exit.is_none() {
                let _ = self.runtime.stop(&id, DEFAULT_STOP_TIMEOUT, None);
            }
            if c.last_status == TaskStatus::Stopped {
                continue; // its end is recorded; cleanup deletes it
            }
            let exit = self.runtime.state(&id).ok().and_then(|s| s.exit);
            self.running.insert(
                c.name.clone(),
                Running {
                    runtime_id: id,
                    essential: false,
                    stop_timeout: DEFAULT_STOP_TIMEOUT,
                    exit: None,
                    health: None,
                    run_started: std::time::Instant::now(),
                    launch: None,
                    restarts: 0,
                },
            );
            self.container_exited(&c.name, exit);
        }
    }
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

//! Orphans: who may take charge of a task, and a task whose supervisor
//! died, adopted by a new one or reaped.

use berth_rootfs::ContentStore;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{Runtime, RuntimeRoot};

use super::{watch_adopted, Running, Supervisor, SupervisorArgs, DEFAULT_STOP_TIMEOUT};
use crate::ecs::Ecs;
use crate::health;
use crate::model::{DesiredStatus, HealthStatus, StopCode, Task, TaskStatus};
use crate::names;

impl Supervisor<'_> {
    /// Take over a task whose supervisor died while its containers run on:
    /// what the old one made is rebuilt from the store, each live
    /// container is watched through the runtime's state, and the task goes
    /// on as if nothing happened. A task caught mid-start is stopped.
    pub(super) fn adopt(&mut self) -> Result<(), String> {
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
    pub(super) fn restore(&mut self, task: &Task) {
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
}

/// Whether a process may take charge of `task` (run, adopt or finish it):
/// not once it is STOPPED, nor while another's supervisor (or reaper)
/// lives. Two at once: the first to record itself has the task.
pub fn may_claim(task: &Task) -> bool {
    !task.is_stopped() && !supervisor_alive(task)
}

/// Record this process as `args`'s task's supervisor, if [`may_claim`]
/// lets it; false when another has the task or it is over.
pub(super) fn claim(ecs: &Ecs, args: &SupervisorArgs) -> crate::EcsResult<bool> {
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

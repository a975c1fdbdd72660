//! The supervisor's store I/O: every write to its task's record, the
//! reads it acts on, and the reconcile passes it asks for, in one place. The phase files call these by name and
//! do no store I/O of their own. A failed write is logged and the
//! supervisor goes on, as it did when each phase wrote for itself.

use std::time::{Duration, Instant};

use super::error::{StopCause, TaskError};
use super::{Supervisor, SupervisorArgs};
use crate::ecs::{now, Ecs};
use crate::model::{
    Container, DesiredStatus, HealthStatus, HostPort, Task, TaskDefinition, TaskStatus,
};
use crate::reconcile::reconcile_now;

/// The task's record.
pub(super) fn load(ecs: &Ecs, args: &SupervisorArgs) -> Result<Task, TaskError> {
    Ok(ecs.task(&args.cluster, &args.task_id)?)
}

/// The definition the task runs.
pub(super) fn definition(ecs: &Ecs, task: &Task) -> Result<TaskDefinition, TaskError> {
    Ok(ecs.task_definition(&task.task_definition_arn)?)
}

/// Record this process (`me`, started at `start_time`) as the task's
/// supervisor if `may_claim` lets it, in one commit, so that of two
/// claimers only the first has the task; false when it may not.
pub(super) fn claim(
    ecs: &Ecs,
    args: &SupervisorArgs,
    me: i32,
    start_time: Option<u64>,
    may_claim: impl Fn(&Task) -> bool,
) -> crate::EcsResult<bool> {
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

impl Supervisor<'_> {
    fn set(&self, change: impl FnMut(&mut Task)) -> Option<Task> {
        match self
            .ecs
            .update_task(&self.args.cluster, &self.args.task_id, change)
        {
            Ok(t) => {
                self.publish(&t);
                Some(t)
            }
            Err(e) => {
                tracing::error!("update task: {e}");
                None
            }
        }
    }

    fn set_container(&self, name: &str, mut change: impl FnMut(&mut Container)) {
        self.set(|t| {
            if let Some(c) = t.containers.iter_mut().find(|c| c.name == name) {
                change(c);
            }
        });
    }

    pub(super) fn task(&self) -> Result<Task, TaskError> {
        load(self.ecs, self.args)
    }

    /// The task and its definition.
    pub(super) fn task_and_definition(&self) -> Result<(Task, TaskDefinition), TaskError> {
        let task = self.task()?;
        let td = definition(self.ecs, &task)?;
        Ok((task, td))
    }

    /// How long the record may go unread while the task runs: a stop
    /// committed where it cannot wake this process waits this long.
    pub(super) fn store_look_period(&self) -> Duration {
        if self.ecs.store.shared() {
            super::SHARED_STORE_LOOK
        } else {
            super::STORE_LOOK
        }
    }

    /// The store client's memory between the now rare reads.
    pub(super) fn release_store_memory(&self) {
        self.ecs.store.release_memory();
    }

    /// A stop has been asked for (stop-task, a service, this supervisor).
    pub(super) fn stop_asked(&self) -> Result<bool, TaskError> {
        let task = self.task()?;
        // Also what the metadata endpoint shows: a stop asked by another
        // process is its DesiredStatus.
        self.publish(&task);
        Ok(task.desired_status == DesiredStatus::Stopped)
    }

    /// The `ecs.availability-zone` attribute of the task's instance, for
    /// the metadata endpoint's AvailabilityZone.
    pub(super) fn availability_zone(&self, task: &Task) -> Option<String> {
        let arn = task.container_instance_arn.clone()?;
        let found = self
            .ecs
            .describe_container_instances(Some(&self.args.cluster), &[arn])
            .ok()?;
        found["containerInstances"][0]["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == "ecs.availability-zone")
            .and_then(|a| a["value"].as_str())
            .map(str::to_string)
    }

    /// The task reached RUNNING: only such a task was ever in a load balancer.
    pub(super) fn served(&self) -> bool {
        self.task().is_ok_and(|t| t.started_at.is_some())
    }

    /// No task holds an address on `bridge` any more.
    pub(super) fn bridge_unused(&self, bridge: &str) -> bool {
        matches!(self.ecs.addresses_in_use(bridge), Ok(false))
    }

    /// A service task: its service's health-check grace period, and the
    /// drain its load balancers ask for.
    pub(super) fn load_service_settings(&mut self, task: &Task) {
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

    /// A reconcile pass over the task's cluster now, so that its service
    /// (if any) acts on the change at once rather than at the next agent
    /// pass.
    pub(super) fn reconcile_service(&self) {
        reconcile_now(self.ecs, self.args);
    }

    pub(super) fn record_pulling(&self) {
        self.set(|t| {
            t.last_status = TaskStatus::Pending;
            t.pull_started_at = Some(now());
        });
    }

    pub(super) fn record_pulled(&self) {
        self.set(|t| t.pull_stopped_at = Some(now()));
    }

    /// Every image was in the store: the look, from `started`, in one
    /// write.
    pub(super) fn record_pull_times(&self, started: String) {
        self.set(|t| {
            t.last_status = TaskStatus::Pending;
            t.pull_started_at = Some(started.clone());
            t.pull_stopped_at = Some(now());
        });
    }

    /// The task's network interface is plugged in.
    pub(super) fn record_attached(&self) {
        self.set(|t| {
            for a in &mut t.attachments {
                a["status"] = "ATTACHED".into();
            }
        });
    }

    /// What ECS shows of the port mappings, per container.
    pub(super) fn record_bindings(&self, ports: &[HostPort]) {
        self.set(|t| {
            for c in &mut t.containers {
                c.network_bindings = super::rules::network_bindings(ports, &c.name);
            }
        });
    }

    /// Every container started: RUNNING, unless a stop came meanwhile.
    pub(super) fn record_running(&self) -> Option<Task> {
        self.set(|t| {
            if t.desired_status == DesiredStatus::Running {
                t.last_status = TaskStatus::Running;
                t.started_at.get_or_insert_with(now);
            }
        })
    }

    pub(super) fn record_container_started(&self, name: &str, runtime_id: &str) {
        self.set_container(name, |c| {
            c.last_status = TaskStatus::Running;
            c.runtime_id = Some(runtime_id.to_string());
        });
    }

    /// Restarted in place by its restart policy: running again, counted.
    pub(super) fn record_container_restarted(&self, name: &str, count: u32, last_exit: i32) {
        self.set_container(name, |c| {
            c.last_status = TaskStatus::Running;
            c.restart_count = Some(count);
            // The last run's exit code stays visible, as ECS shows it.
            c.exit_code = Some(last_exit);
        });
    }

    pub(super) fn record_container_stopped(&self, name: &str, code: i32, reason: Option<String>) {
        self.set_container(name, |c| {
            c.last_status = TaskStatus::Stopped;
            c.exit_code = Some(code);
            c.reason = reason.clone();
        });
    }

    /// A container's health, and the task's that follows from it.
    pub(super) fn record_health(
        &self,
        name: &str,
        status: &HealthStatus,
        task_status: &HealthStatus,
    ) -> Option<Task> {
        self.set(|t| {
            if let Some(c) = t.containers.iter_mut().find(|c| c.name == name) {
                c.health_status = status.clone();
            }
            t.health_status = task_status.clone();
        })
    }

    /// The supervisor stops the task: its code and reason, unless a stop
    /// came first with its own.
    pub(super) fn record_stop(&self, cause: &StopCause) {
        let (code, reason) = (cause.stop_code(), cause.reason());
        self.set(|t| {
            t.desired_status = DesiredStatus::Stopped;
            t.stop_code.get_or_insert_with(|| code.clone());
            t.stopped_reason.get_or_insert_with(|| reason.clone());
            t.stopping_at.get_or_insert_with(now);
        });
    }

    /// The task failed to start or to be watched.
    pub(super) fn record_failure(&self, error: &TaskError) {
        let (code, reason) = (error.stop_code(), error.reason());
        self.set(|t| {
            t.desired_status = DesiredStatus::Stopped;
            t.stop_code.get_or_insert_with(|| code.clone());
            t.stopped_reason.get_or_insert_with(|| reason.clone());
        });
    }

    /// Taken out of its load balancers, the task drains.
    pub(super) fn record_draining(&self) {
        self.set(|t| t.last_status = TaskStatus::Deactivating);
    }

    /// Its containers are being stopped.
    pub(super) fn record_deactivating(&self) {
        self.set(|t| {
            if t.last_status != TaskStatus::Stopped {
                t.last_status = TaskStatus::Deactivating;
            }
        });
    }

    /// Its containers ended: what it made is being released. The record
    /// read back names what to release.
    pub(super) fn record_deprovisioning(&self) -> Option<Task> {
        self.set(|t| t.last_status = TaskStatus::Deprovisioning)
    }

    /// Everything released: STOPPED, with each container and attachment.
    pub(super) fn record_stopped(&self) {
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
    }
}

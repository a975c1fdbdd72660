//! Restart in place: a container its restart policy
//! ([`restart_policy::decide`]) starts again when it ends, in the same
//! task, namespaces, cgroup parent and root filesystem (as `docker
//! restart` keeps a container's), while the task stays RUNNING.

use std::time::Instant;

use super::restart_policy::{self, Decision, Ended};
use super::Supervisor;
use crate::model::HealthStatus;

impl Supervisor<'_> {
    /// Restart container `name`, which ended with `exit_code`, if its
    /// policy allows; true when it runs again.
    pub(super) fn restart_if_policy_allows(&mut self, name: &str, exit_code: i32) -> bool {
        let stopping = self.stopping;
        let Some(r) = self.running.get(name) else {
            return false;
        };
        let Some(launch) = r.launch.as_ref() else {
            return false;
        };
        let ended = Ended {
            exit_code: Some(exit_code),
            task_stopping: stopping,
            ran_for: r.run_started.elapsed(),
        };
        match restart_policy::decide(launch.def.restart_policy.as_ref(), ended) {
            Decision::Restart => {}
            Decision::Keep(why) => {
                tracing::info!("task {}: {name} not restarted: {why}", self.args.task_id);
                return false;
            }
        }
        let runtime_id = r.runtime_id.clone();
        if let Some(h) = &r.health {
            h.finish();
        }
        // The ended container's record goes; its root filesystem stays.
        if let Err(e) = self.runtime.delete(&runtime_id, false) {
            tracing::warn!("task {}: restart {name}: delete: {e}", self.args.task_id);
            return false;
        }
        let Some(launch) = self.running.get_mut(name).and_then(|r| r.launch.take()) else {
            return false;
        };
        let started = self.launch(&runtime_id, &launch);
        let health = started
            .is_ok()
            .then(|| self.start_health_watch(&launch.def, &runtime_id, HealthStatus::Unknown))
            .flatten();
        let Some(r) = self.running.get_mut(name) else {
            return false;
        };
        r.launch = Some(launch);
        if let Err(e) = started {
            tracing::warn!("task {}: restart {name}: {e}", self.args.task_id);
            return false;
        }
        r.restarts += 1;
        r.run_started = Instant::now();
        r.health = health;
        let count = r.restarts;
        tracing::info!("task {}: {name} restarted ({count})", self.args.task_id);
        self.record_container_restarted(name, count, exit_code);
        // The restart's work (a new monitor, the store) is over.
        self.shed_pending = true;
        true
    }
}

//! Stop and clean up: a stop request, the drain out of load balancers,
//! the containers' stop, and the release of what the task made.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use berth_runtime::{Runtime, RuntimeRoot};

use super::{Supervisor, DEFAULT_STOP_TIMEOUT, POLL, RELEASE_ATTEMPTS, RELEASE_RETRY};
use crate::ecs::now;
use crate::model::{DesiredStatus, StopCode, TaskStatus};
use crate::reconcile::reconcile_now;
use crate::supervisor::teardown::{self, Ports};

impl Supervisor<'_> {
    /// Stop the task's containers, first taking it out of its load
    /// balancers and letting its connections drain when it has some.
    pub(super) fn begin_stop(&mut self) {
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

    pub(super) fn request_stop(&mut self, code: StopCode, reason: &str) {
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
    pub(super) fn stop_containers(&mut self) {
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

    pub(super) fn cleanup(&mut self) {
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

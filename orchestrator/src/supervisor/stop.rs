//! Stop and clean up: a stop request, the drain out of load balancers,
//! the containers' stop, and the release of what the task made
//! ([`super::teardown`]), tried again a few times before it is left to gc.

use std::time::{Duration, Instant};

use berth_runtime::{Runtime, RuntimeRoot};

use super::error::StopCause;
use super::rules::DEFAULT_STOP_TIMEOUT;
use super::teardown::{self, Ports, Released};
use super::{Supervisor, POLL};
use crate::model::{Task, TaskNetwork};

/// Further tries at releasing a task's resources before it is left to gc.
const RELEASE_ATTEMPTS: usize = 3;
const RELEASE_RETRY: Duration = Duration::from_millis(500);
/// How long cleanup waits for containers beyond their stop timeout.
const STOP_SLACK: Duration = Duration::from_secs(15);
/// A container's stop waits and signals: a small stack for its thread.
const STOP_STACK: usize = 256 * 1024;

impl Supervisor<'_> {
    /// The supervisor stops the task for `cause` (unless a stop with its
    /// own code and reason came first).
    pub(super) fn request_stop(&mut self, cause: StopCause) {
        self.record_stop(&cause);
        self.begin_stop();
    }

    /// Stop the task's containers, first taking it out of its load
    /// balancers and letting its connections drain when it has some.
    pub(super) fn begin_stop(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        match self.drain {
            Some(delay) if self.served() && !self.essential_exited() => {
                self.record_draining();
                // The pass sees the task stopping and leaves it out.
                self.reconcile_service();
                self.draining_until = Some(Instant::now() + delay);
            }
            _ => self.stop_containers(),
        }
    }

    /// Stop signal, then SIGKILL after each container's stopTimeout; in
    /// parallel, so one slow container does not hold the others.
    pub(super) fn stop_containers(&mut self) {
        self.stopping = true;
        self.draining_until = None;
        for h in self.running.values().filter_map(|r| r.health.as_ref()) {
            h.finish();
        }
        self.record_deactivating();
        let root = self.args.runtime_root.clone();
        for r in self.running.values().filter(|r| r.exit.is_none()) {
            let (id, timeout, root) = (r.runtime_id.clone(), r.stop_timeout, root.clone());
            let stopper = std::thread::Builder::new()
                .stack_size(STOP_STACK)
                .spawn(move || {
                    let runtime = Runtime::new(RuntimeRoot::new(root));
                    if let Err(e) = runtime.stop(&id, timeout, None) {
                        tracing::warn!("stop {id}: {e}");
                    }
                });
            if let Err(e) = stopper {
                tracing::error!("stop {}: start a thread: {e}", r.runtime_id);
            }
        }
    }

    /// The last phase, whatever came before: containers still running
    /// stopped, everything the task made released, the task STOPPED, and
    /// its bridge removed once no task needs it.
    pub(super) fn cleanup(&mut self) {
        self.await_containers();
        let Some(task) = self.record_deprovisioning() else {
            return; // no record to release from: left to gc
        };
        let released = self.release(&task);
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
        self.record_stopped();
        if let Some(net) = bridge_of(&task) {
            self.remove_bridge_if_unused(&net.bridge);
        }
    }

    /// The bridge and its NAT table, once no task needs them any more:
    /// none holds an address on it and no link is plugged into it, both
    /// asked under the bridge's lock, which a starting task holds from
    /// making the bridge until its veth is in (`berth_net::plug_in`).
    /// Asked before, a task placed just after could find its bridge gone
    /// between making it and plugging into it.
    fn remove_bridge_if_unused(&self, bridge: &str) {
        let locks = self.args.bridge_locks();
        let keep = || !self.bridge_unused(bridge);
        if let Err(e) = berth_net::remove_bridge_if_unused(&locks, bridge, keep) {
            tracing::warn!("remove bridge {bridge} and its NAT table: {e}");
        }
    }

    /// Containers still running (a failure mid-start) are stopped, and
    /// their ends awaited for a while.
    fn await_containers(&mut self) {
        if !self.any_running() {
            return;
        }
        if !self.stopping {
            self.stop_containers();
        }
        let deadline = Instant::now() + DEFAULT_STOP_TIMEOUT + STOP_SLACK;
        while self.any_running() && Instant::now() < deadline {
            if let Ok(event) = self.events.1.recv_timeout(POLL) {
                self.handle(event);
            }
        }
    }

    /// Everything the task made, named from its record, whatever step the
    /// start reached; a step that fails is tried again shortly.
    fn release(&self, task: &Task) -> Released {
        let mut released = teardown::release(self.args, task, Ports::Unmap);
        for _ in 0..RELEASE_ATTEMPTS {
            if released.is_complete() {
                break;
            }
            std::thread::sleep(RELEASE_RETRY);
            released = teardown::release(self.args, task, Ports::Unmap);
        }
        released
    }
}

/// The network whose bridge the task used: its own, or its containers'.
fn bridge_of(task: &Task) -> Option<TaskNetwork> {
    task.berth.as_ref().and_then(|b| {
        b.network
            .clone()
            .or_else(|| b.container_networks.first().map(|cn| cn.network.clone()))
    })
}

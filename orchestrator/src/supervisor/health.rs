//! Health: each container's health-check thread, and what its changes do
//! (the task's health; a service task stopped when unhealthy). The pure
//! rules are in crate::health and [`super::rules`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::error::StopCause;
use super::events::Event;
use super::{rules, Supervisor};
use crate::health::{self, HealthCheck, HealthTracker};
use crate::model::{ContainerDefinition, HealthStatus};

impl Supervisor<'_> {
    /// Probe `def`'s health check in its container, if it has one.
    pub(super) fn start_health_watch(
        &self,
        def: &ContainerDefinition,
        runtime_id: &str,
        status: HealthStatus,
    ) -> Option<HealthWatch> {
        let check = def.health_check.as_ref()?;
        let done = Arc::new(AtomicBool::new(false));
        let thread = watch_health(
            check.clone(),
            self.args.runtime_root.clone(),
            runtime_id.to_string(),
            def.name.clone(),
            self.events.0.clone(),
            done.clone(),
        );
        Some(HealthWatch {
            status,
            done,
            thread,
        })
    }

    /// A container's health changed: recorded with the task's, which
    /// follows from its essential containers'.
    pub(super) fn health_changed(&mut self, name: &str, status: HealthStatus) {
        if let Some(watch) = self.running.get_mut(name).and_then(|r| r.health.as_mut()) {
            watch.status = status.clone();
        }
        let task_status = health::task_health(
            self.running
                .values()
                .filter(|r| r.essential)
                .filter_map(|r| r.health.as_ref().map(|h| &h.status)),
        );
        let updated = self.record_health(name, &status, &task_status);
        // A service task now in service may let a deployment go on.
        if updated.is_some_and(|t| t.in_service() && rules::is_service_task(&t)) {
            self.reconcile_service();
        }
    }

    /// A service's scheduler stops a task whose essential container is
    /// UNHEALTHY, once the grace period is over; a standalone task lives on
    /// whatever its health (as in ECS).
    pub(super) fn enforce_health(&mut self) {
        let Some(after) = self.health_enforced_after else {
            return;
        };
        let stopping = self.stopping || self.draining_until.is_some();
        if rules::stop_for_health(self.seen(), stopping, Instant::now() >= after) {
            self.request_stop(StopCause::Unhealthy);
        }
    }
}

/// A container's health-check thread and what it last said.
pub(super) struct HealthWatch {
    pub(super) status: HealthStatus,
    /// Tells the thread to stop probing.
    done: Arc<AtomicBool>,
    /// The thread, woken from its sleep to see `done`.
    thread: Option<std::thread::Thread>,
}

impl HealthWatch {
    /// No more probes: the thread ends now, not at its next probe.
    pub(super) fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The probing thread waits, signals and reads a probe's output: its stack.
const HEALTH_STACK: usize = 256 * 1024;

/// Probe `container` every interval (the first after one interval, as
/// Docker does) and send each change of its health, until `done`; the
/// thread sleeps between probes (None: it could not start).
pub(super) fn watch_health(
    check: HealthCheck,
    runtime_root: PathBuf,
    runtime_id: String,
    container: String,
    events: mpsc::Sender<Event>,
    done: Arc<AtomicBool>,
) -> Option<std::thread::Thread> {
    let spawned = std::thread::Builder::new()
        .stack_size(HEALTH_STACK)
        .spawn(move || {
            let argv = check.argv();
            let mut tracker = HealthTracker::new(&check, Instant::now());
            loop {
                let next = Instant::now() + check.interval();
                // Parked until the probe is due, or woken by `finish`.
                loop {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    std::thread::park_timeout(next - now);
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
                // The probe's spawn and read faulted code in; the thread
                // now sleeps for an interval.
                berth_runtime::memory::trim_heap();
                berth_runtime::memory::release_startup_pages();
            }
        });
    match spawned {
        Ok(handle) => Some(handle.thread().clone()),
        Err(e) => {
            tracing::error!("start the health check of a container: {e}");
            None
        }
    }
}

//! Watch: the event loop. Container exits (of containers started here, or
//! adopted: this process did not start them), health changes, and stop
//! requests, one step at a time.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use berth_runtime::exit::ExitRecord;
use berth_runtime::{ExitWaiter, Runtime, RuntimeRoot};

use super::error::{StopCause, TaskError};
use super::{rules, Running, Supervisor, POLL};
use crate::model::HealthStatus;
use crate::ErrorKind;

/// What the supervisor's threads tell it about a container.
pub(super) enum Event {
    /// How it ended (None: its monitor died first).
    Exited(String, Option<ExitRecord>),
    /// Its health check status changed.
    Health(String, HealthStatus),
}

impl Supervisor<'_> {
    /// Handle one event or notice a stop request.
    pub(super) fn step(&mut self) -> Result<(), TaskError> {
        match self.events.1.recv_timeout(POLL) {
            Ok(event) => self.handle(event),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(TaskError::EventsClosed),
        }
        if !self.stopping && self.stop_asked_or_outage()? {
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

    /// Whether a stop was asked for. A store out of reach (etcd stopped or
    /// cut off: a server-side error) is no reason to stop: the containers
    /// run on, and the question is asked again at the next step, until
    /// the store answers. Any other error (the task gone) ends the watch.
    fn stop_asked_or_outage(&mut self) -> Result<bool, TaskError> {
        match self.stop_asked() {
            Ok(asked) => {
                if std::mem::take(&mut self.store_unreachable) {
                    tracing::warn!("task {}: the store answers again", self.args.task_id);
                }
                Ok(asked)
            }
            Err(TaskError::Store(e)) if e.kind == ErrorKind::ServerException => {
                if !std::mem::replace(&mut self.store_unreachable, true) {
                    let id = &self.args.task_id;
                    tracing::warn!("task {id}: the store is out of reach, running on: {e}");
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Exited(name, exit) => self.container_exited(&name, exit),
            Event::Health(name, status) => self.health_changed(&name, status),
        }
    }

    /// A container ended (`exit` None: its monitor died first, and berth
    /// kills what may run on). Its end is recorded; an essential one stops
    /// the task.
    pub(super) fn container_exited(&mut self, name: &str, exit: Option<ExitRecord>) {
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
        // Its restart policy may start it again in place: the task runs on.
        if !monitor_died && self.restart_if_policy_allows(name, exit.exit_code) {
            return;
        }
        let essential = self.running.get(name).is_some_and(|r| r.essential);
        let reason = rules::container_reason(monitor_died, exit.oom_killed);
        self.publish_finished(name, exit.finished_at);
        self.record_container_stopped(name, exit.exit_code, reason);
        if let Some(r) = self.running.get_mut(name) {
            r.exit = Some(exit);
            if let Some(h) = &r.health {
                h.done.store(true, Ordering::Relaxed);
            }
        }
        if essential && !self.stopping {
            self.request_stop(StopCause::EssentialContainerExited);
        }
    }

    /// Whether any container still runs.
    pub(super) fn any_running(&self) -> bool {
        self.running.values().any(|r| r.exit.is_none())
    }

    /// What the rules need to know of every container.
    pub(super) fn seen(&self) -> impl Iterator<Item = rules::Seen<'_>> {
        self.running.values().map(Running::seen)
    }
}

/// Wait for the exit of a container this process started, on a thread.
pub(super) fn watch_started(exit: ExitWaiter, container: String, events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        let exit = exit.wait().ok().flatten();
        let _ = events.send(Event::Exited(container, exit));
    });
}

/// Watch a container this process did not start: its exit, as its monitor
/// records it, or None once the monitor is gone without a record.
pub(super) fn watch_adopted(
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

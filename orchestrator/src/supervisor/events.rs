//! Watch: the event loop. Container exits (of containers started here, or
//! adopted: this process did not start them), health changes, and stop
//! requests, one step at a time.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use berth_runtime::exit::ExitRecord;
use berth_runtime::{ExitWaiter, Runtime, RuntimeRoot};

use super::error::{StopCause, TaskError};
use super::{rules, Running, Supervisor};
use crate::model::HealthStatus;
use crate::ErrorKind;

/// What the supervisor's threads tell it about a container.
pub(super) enum Event {
    /// How it ended (None: its monitor died first).
    Exited(String, Option<ExitRecord>),
    /// Its health check status changed.
    Health(String, HealthStatus),
    /// Someone may have asked for a stop ([`super::wake`]): read the record.
    Wake,
}

/// The waiting threads only wait and send: small stacks.
const THREAD_STACK: usize = 64 * 1024;
/// How often an adopted container's state is read when its monitor's
/// exit cannot be waited for (no pidfd), and how long a pidfd is waited
/// on before its state is read again anyway.
const ADOPTED_POLL: Duration = Duration::from_secs(1);
const ADOPTED_WAIT: Duration = Duration::from_secs(60);

impl Supervisor<'_> {
    /// Handle one event or notice a stop request. Between events the
    /// process sleeps until the next thing due: a drain's or the service's
    /// settle time, the health grace period's end, or the next read of
    /// the record (a stop on this host wakes it at once).
    pub(super) fn step(&mut self) -> Result<(), TaskError> {
        let now = Instant::now();
        let look = (!self.stopping).then_some(self.next_store_look);
        let due = [
            look,
            self.draining_until,
            self.settle_at,
            self.health_enforced_after,
        ];
        let wait = rules::until_due(now, due).unwrap_or(self.store_look_period());
        // The first step looks at once: a stop may have come before this
        // process could be woken (an adopted task's, asked of the dead one).
        let overdue = look.is_some_and(|at| now >= at);
        let event = if overdue {
            Ok(Event::Wake)
        } else {
            // Shed right before the wait: only the few pages the wait
            // itself runs come back until the next event.
            if now >= self.shed_after && std::mem::take(&mut self.shed_pending) {
                self.shed();
            }
            self.events.1.recv_timeout(wait)
        };
        let look = match event {
            Ok(Event::Wake) => true,
            Ok(event) => {
                // Rare (an exit, a change of health) and followed by
                // writes to the record: shed what they faulted in.
                self.handle(event);
                self.shed_pending = true;
                false
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Instant::now() >= self.next_store_look,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(TaskError::EventsClosed),
        };
        if look && !self.stopping {
            self.next_store_look = Instant::now() + self.store_look_period();
            let asked = self.stop_asked_or_outage()?;
            // What the read faulted in (SQLite, serde) is not needed
            // until the next one, seconds away.
            self.shed_pending = true;
            if asked {
                self.begin_stop();
            }
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
            Event::Wake => {}
        }
    }

    /// Once the task runs, and after each rare burst of work (a read of
    /// the store, a restart, the service's settle), give back what that
    /// work left resident: the binary's pages it faulted in, the heap's
    /// free memory and the store client's cache. Only what the idle wait
    /// touches comes back.
    fn shed(&self) {
        self.release_store_memory();
        berth_runtime::memory::trim_heap();
        // Last: what runs after it faults its code back in.
        berth_runtime::memory::release_startup_pages();
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
                h.finish();
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
    spawn_waiter(move || {
        let exit = exit.wait().ok().flatten();
        let _ = events.send(Event::Exited(container, exit));
    });
}

fn spawn_waiter(wait: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(wait)
    {
        tracing::error!("start a thread: {e}");
    }
}

/// Watch a container this process did not start: its exit, as its monitor
/// records it, or None once the monitor is gone without a record.
pub(super) fn watch_adopted(
    runtime_root: PathBuf,
    runtime_id: String,
    container: String,
    events: mpsc::Sender<Event>,
) {
    spawn_waiter(move || {
        let runtime = Runtime::new(RuntimeRoot::new(runtime_root));
        let mut monitor: Option<OwnedFd> = None;
        let exit = loop {
            match runtime.state(&runtime_id) {
                Ok(state) if state.exit.is_some() => break state.exit,
                Ok(state) if state.monitor.alive => {
                    // The monitor's pidfd, opened while it is known alive
                    // (so the right process's), is readable once it ends.
                    if monitor.is_none() {
                        monitor = state.monitor.pid.and_then(pidfd_open);
                    }
                    match &monitor {
                        Some(fd) => wait_readable(fd, ADOPTED_WAIT),
                        None => std::thread::sleep(ADOPTED_POLL),
                    }
                }
                // The monitor may have recorded the exit as it went.
                _ => break runtime.state(&runtime_id).ok().and_then(|s| s.exit),
            }
        };
        let _ = events.send(Event::Exited(container, exit));
    });
}

/// A pidfd of process `pid` (Linux ≥ 5.3), None when there is none.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a new descriptor this owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sleep until `fd` is readable (a pidfd: its process ended) or `timeout`.
fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, timeout).is_err() {
        // EINTR or worse: a pause, so that a failing poll cannot spin.
        std::thread::sleep(ADOPTED_POLL);
    }
}

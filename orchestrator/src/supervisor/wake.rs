//! How a stop request reaches a task's supervisor at once: whoever
//! commits `desiredStatus=STOPPED` for a task on this host sends one
//! datagram to an abstract unix socket named after the supervisor's pid
//! and start time, as the task's record has them; the supervisor, blocked
//! on it, then reads the record. The store stays the truth: the datagram
//! carries nothing, a lost or forged one costs one read at most, and the
//! supervisor still reads the store now and then (a stop committed on
//! another host of an etcd cluster comes no other way).
//!
//! An abstract socket needs no file to clean up, its name dies with the
//! process, and the start time in it keeps a recycled pid from being
//! woken for another's task.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::mpsc;

use super::events::Event;
use crate::model::Task;

/// The wake-up thread does nothing but wait and send: a small stack.
const STACK: usize = 64 * 1024;

/// The socket's abstract name for the supervisor `pid` started at
/// `start_time` (clock ticks after boot, as /proc/PID/stat says).
fn name(pid: i32, start_time: u64) -> String {
    format!("berth-task-wake/{pid}/{start_time}")
}

/// Listen for wake-ups as this process; each becomes an [`Event::Wake`].
/// Bound before the process records itself as the task's supervisor, so
/// that whoever reads that record can wake it. None when it cannot be
/// (the slower reads of the store remain).
pub(super) fn listen(events: mpsc::Sender<Event>) -> Option<()> {
    let pid = std::process::id() as i32;
    let start = berth_runtime::proc::start_time(pid)?;
    let socket = bind(&name(pid, start))
        .map_err(|e| tracing::warn!("listen for stop requests: {e}"))
        .ok()?;
    std::thread::Builder::new()
        .name("wake".into())
        .stack_size(STACK)
        .spawn(move || {
            let mut byte = [0u8; 1];
            while socket.recv(&mut byte).is_ok() {
                if events.send(Event::Wake).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| tracing::warn!("listen for stop requests: {e}"))
        .ok()?;
    Some(())
}

fn bind(name: &str) -> std::io::Result<UnixDatagram> {
    UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name)?)
}

/// Wake `task`'s supervisor, if its record names one and it is not this
/// process: best effort, never blocking (nobody listening, a full queue:
/// the supervisor's own reads of the store find the stop).
pub fn wake(task: &Task) {
    let Some((pid, start)) = task
        .berth
        .as_ref()
        .and_then(|b| Some((b.supervisor_pid?, b.supervisor_start_time?)))
    else {
        return;
    };
    if pid == std::process::id() as i32 {
        return;
    }
    send(&name(pid, start));
}

fn send(name: &str) {
    let (Ok(socket), Ok(addr)) = (
        UnixDatagram::unbound(),
        SocketAddr::from_abstract_name(name),
    ) else {
        return;
    };
    let _ = socket.set_nonblocking(true);
    let _ = socket.send_to_addr(b"s", &addr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_processes_and_their_start_apart() {
        assert_eq!(name(42, 7), "berth-task-wake/42/7");
        assert_ne!(name(42, 7), name(42, 8));
    }

    #[test]
    fn a_wake_reaches_the_bound_name_and_nobody_listening_is_no_error() {
        let name = format!("berth-test-wake/{}", std::process::id());
        let socket = bind(&name).expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        send(&name);
        let mut byte = [0u8; 1];
        assert_eq!(socket.recv(&mut byte).expect("a wake-up"), 1);
        drop(socket);
        send(&name); // nobody: silently nothing
    }
}

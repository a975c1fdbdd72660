//! A bound on how many containers are being created at once on a host.
//!
//! Creating a container is mostly CPU and kernel locks (clones, namespace
//! and mount set-up, the cgroup v1 `cgroup.procs` write that waits for an
//! RCU grace period, the init's mounts). A thousand tasks started together
//! on two cores would otherwise all create at once: each creation then
//! takes as long as all of them together, and the monitor's bounded wait
//! for "created" (`CREATE_TIMEOUT`) would measure the queue, not the
//! creation. So a creation first takes one of a few slots (flocks on
//! `<runtime root>/start-slots/<n>`, released with the file, also when a
//! process dies), and its time limit starts once it holds one.
//!
//! No daemon and no queue file: a process that finds every slot taken
//! blocks on one of them (chosen by its pid), so the waiters spread over
//! the slots and each slot serves its waiters in turn.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::{create_private_dir_all, flock, open_lock_file};

/// The directory of the slot files under a runtime root.
const DIR: &str = "start-slots";

/// How many creations may run at once: two per CPU, at least four, so
/// that one waiting on I/O or a grace period leaves the CPUs busy.
pub fn slots() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * cpus).max(4)
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _file: File,
}

/// Take a creation slot under `runtime_root`, waiting for one if all
/// `count` are taken.
pub fn take(runtime_root: &Path, count: usize) -> Result<Slot> {
    let dir = runtime_root.join(DIR);
    create_private_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let count = count.max(1);
    let mut files = (0..count)
        .map(|n| open(&dir, n))
        .collect::<Result<Vec<File>>>()?;
    if let Some(free) = files
        .iter()
        .position(|f| flock(f, libc::LOCK_EX | libc::LOCK_NB).is_ok())
    {
        return Ok(Slot {
            _file: files.swap_remove(free),
        });
    }
    let n = std::process::id() as usize % count;
    let file = files.swap_remove(n);
    flock(&file, libc::LOCK_EX).map_err(|e| {
        let path = dir.join(n.to_string());
        Error::io(format!("lock {}", path.display()), e)
    })?;
    Ok(Slot { _file: file })
}

fn open(dir: &Path, n: usize) -> Result<File> {
    let path = dir.join(n.to_string());
    open_lock_file(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_the_slots_are_held_at_once_and_a_freed_slot_serves_a_waiter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = take(dir.path(), 2).expect("first");
        let b = take(dir.path(), 2).expect("second");
        // The two holders hold both slots, not one twice.
        let slot_dir = dir.path().join(DIR);
        for n in 0..2 {
            let file = open(&slot_dir, n).expect("open");
            assert!(
                flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err(),
                "slot {n} free"
            );
        }
        let root = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || take(&root, 2).expect("third"));
        drop(a);
        drop(b);
        drop(waiter.join().expect("thread"));
    }
}

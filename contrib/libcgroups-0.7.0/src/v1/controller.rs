use std::fs;
use std::path::Path;

use nix::unistd::Pid;

use crate::common::{self, CGROUP_PROCS, ControllerOpt, WrapIoResult, WrappedIoError};

/// v1's per-thread membership file.
const CGROUP_TASKS: &str = "tasks";

pub(super) trait Controller {
    type Error: From<WrappedIoError>;
    type Resource;

    /// Adds a new task specified by its pid to the cgroup
    /// (berth patch: a pid, or a [`Member`] decided once for several
    /// cgroups)
    fn add_task(member: impl Into<Member>, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        join(member.into(), cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}

/// berth patch: a process to put into cgroups, and how.
///
/// Writing a pid into `cgroup.procs` (or any pid into `tasks`) takes the
/// kernel's global threadgroup lock for writing, which waits for an RCU
/// grace period: 5-20 ms on a quiet host, paid by every container start.
/// A single-threaded process moving itself needs no threadgroup
/// stability, and the kernel skips that lock when the calling thread
/// writes "0" into `tasks` (cgroup_procs_write_start): that is what a
/// container's intermediate process does here. Anything else (another
/// process, or a process with several threads) is written into
/// `cgroup.procs` as before. Decided once ([`Member::of`]) for all the
/// hierarchies a process joins.
#[derive(Clone, Copy, Debug)]
pub(super) struct Member {
    pid: Pid,
    moves_itself: bool,
}

impl Member {
    pub(super) fn of(pid: Pid) -> Self {
        Self {
            pid,
            moves_itself: pid == nix::unistd::getpid() && is_single_threaded(),
        }
    }
}

impl From<Pid> for Member {
    fn from(pid: Pid) -> Self {
        Self::of(pid)
    }
}

/// berth patch: put `member` into the cgroup at `cgroup_path`.
pub(super) fn join(member: Member, cgroup_path: &Path) -> Result<(), WrappedIoError> {
    if member.moves_itself {
        common::write_cgroup_file(cgroup_path.join(CGROUP_TASKS), 0)
    } else {
        common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), member.pid)
    }
}

/// Whether this process has one thread (the 20th field of
/// /proc/self/stat); false when that cannot be read.
fn is_single_threaded() -> bool {
    use std::io::Read;
    use pathrs::flags::OpenFlags;
    use pathrs::procfs::{ProcfsBase, ProcfsHandle};
    let mut stat = String::new();
    let read = ProcfsHandle::new()
        .and_then(|h| h.open(ProcfsBase::ProcSelf, "stat", OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC))
        .map(|mut f| f.read_to_string(&mut stat));
    if !matches!(read, Ok(Ok(_))) {
        return false;
    }
    // The command name (field 2) is in parentheses and may hold spaces:
    // the fields after its closing one are 3, 4, ...
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(17))
        .is_some_and(|threads| threads == "1")
}

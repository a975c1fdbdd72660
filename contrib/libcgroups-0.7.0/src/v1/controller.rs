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
    fn add_task(pid: Pid, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        join(pid, cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}

/// berth patch: put process `pid` into the cgroup at `cgroup_path`.
///
/// Writing a pid into `cgroup.procs` (or any pid into `tasks`) takes the
/// kernel's global threadgroup lock for writing, which waits for an RCU
/// grace period: 5-20 ms on a quiet host, paid by every container start.
/// A single-threaded process moving itself needs no threadgroup
/// stability, and the kernel skips that lock when the calling thread
/// writes "0" into `tasks` (cgroup_procs_write_start): that is what a
/// container's intermediate process does here. Anything else (another
/// process, or a process with several threads) is written into
/// `cgroup.procs` as before.
pub(super) fn join(pid: Pid, cgroup_path: &Path) -> Result<(), WrappedIoError> {
    if pid == nix::unistd::getpid() && is_single_threaded() {
        common::write_cgroup_file(cgroup_path.join(CGROUP_TASKS), 0)
    } else {
        common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), pid)
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

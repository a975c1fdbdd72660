use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
///
/// berth patch: read once per process and kept (cgroup hierarchies are
/// mounted at boot), so that the processes a container start forks from
/// its runtime (the intermediate and the init) inherit the list instead of
/// reading mountinfo again: on a host with hundreds of mounts (a few per
/// running container) each read costs a millisecond or more of kernel
/// time, for every container start.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    static MOUNT_POINTS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    if let Some(known) = MOUNT_POINTS.get() {
        return Ok(known.clone());
    }
    let read = match conventional_mount_points() {
        Some(found) => found,
        None => read_subsystem_mount_points()?,
    };
    Ok(MOUNT_POINTS.get_or_init(|| read).clone())
}

/// berth patch: the cgroup v1 hierarchies mounted where every distribution
/// mounts them, in a tmpfs at /sys/fs/cgroup, found without reading
/// mountinfo: each directory there (not a symlink: `cpu` and `cpuacct`
/// link to `cpu,cpuacct`) whose filesystem is a cgroup one is a mount
/// point, as its parent is a tmpfs. None (read mountinfo) when
/// /sys/fs/cgroup is not such a tmpfs or holds no hierarchy.
fn conventional_mount_points() -> Option<Vec<PathBuf>> {
    use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
    // linux/magic.h: CGROUP_SUPER_MAGIC, the v1 hierarchies' type.
    const CGROUP_SUPER_MAGIC: FsType = FsType(0x27e0eb);
    let root = std::path::Path::new(crate::common::DEFAULT_CGROUP_ROOT);
    if statfs(root).ok()?.filesystem_type() != TMPFS_MAGIC {
        return None;
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).ok()? {
        let entry = entry.ok()?;
        if !entry.file_type().ok()?.is_dir() {
            continue;
        }
        let path = entry.path();
        if statfs(&path).ok()?.filesystem_type() == CGROUP_SUPER_MAGIC {
            found.push(path);
        }
    }
    (!found.is_empty()).then_some(found)
}

fn read_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);

    reader
        .lines()
        .map(|lr| {
            lr.map_err(V1MountPointError::Io)
                .and_then(|line| MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo))
        })
        .try_fold(Vec::new(), |mut mount_points, r| {
            r.map(|m| {
                if m.fs_type == "cgroup" {
                    mount_points.push(m.mount_point);
                }
                mount_points
            })
        })
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());
    let cgroup_mounts = list_subsystem_mount_points()?;

    for controller in CONTROLLERS {
        if let Ok(mount_point) = subsystem_mount_point(&cgroup_mounts, controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    subsystem_mount_point(&list_subsystem_mount_points()?, subsystem)
}

/// berth patch: the mount point of `subsystem` among `cgroup_mounts` (the
/// cgroup v1 mount points, as [`list_subsystem_mount_points`] lists them),
/// so that a caller resolving every subsystem reads mountinfo once.
pub fn subsystem_mount_point(
    cgroup_mounts: &[PathBuf],
    subsystem: &ControllerType,
) -> Result<PathBuf, V1MountPointError> {
    let subsystem_name = subsystem.to_string();
    cgroup_mounts
        .iter()
        .find(|mount_point| {
            // Some systems mount net_prio and net_cls in the same directory
            // other systems mount them in their own directories. This
            // should handle both cases.
            match subsystem_name.as_str() {
                "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
                    .iter()
                    .any(|s| mount_point.ends_with(s)),
                "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
                    .iter()
                    .any(|s| mount_point.ends_with(s)),
                "cpu" => ["cpu,cpuacct", "cpu"]
                    .iter()
                    .any(|s| mount_point.ends_with(s)),
                "cpuacct" => ["cpu,cpuacct", "cpuacct"]
                    .iter()
                    .any(|s| mount_point.ends_with(s)),
                _ => mount_point.ends_with(&subsystem_name),
            }
        })
        .cloned()
        .ok_or(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
}

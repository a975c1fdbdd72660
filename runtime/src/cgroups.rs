//! The host's cgroup layout, cgroup paths berth creates, OOM counters, and
//! removal of what berth made. Resource limits themselves are applied by
//! libcontainer from the OCI spec.

use std::fs;
use std::path::{Path, PathBuf};

use cgroups_rs::{hierarchies, Cgroup};

pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How resource controllers are mounted. A hybrid host (v1 controllers plus
/// a cgroup2 mount for systemd) counts as v1: its controllers live there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupLayout {
    V1,
    V2,
}

pub fn layout() -> CgroupLayout {
    match nix::sys::statfs::statfs(CGROUP_ROOT) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => CgroupLayout::V2,
        _ => CgroupLayout::V1,
    }
}

/// Read the v1 hierarchies' mount points into libcgroups' per-process
/// cache (contrib/libcgroups-0.7.0/BERTH.md) before a container is
/// created: its intermediate and init processes, forked from this one,
/// then use the list instead of each reading the host's mountinfo, which
/// grows with every running container. Nothing to do on v2; a failure
/// only leaves the reads to them.
pub fn warm_mount_cache() {
    if layout() == CgroupLayout::V1 {
        let _ = libcgroups::v1::util::list_subsystem_mount_points();
    }
}

/// `/<parent>/<id>`: the OCI `linux.cgroupsPath` of a container.
pub fn container_path(parent: &str, id: &str) -> String {
    let parent = parent.trim_matches('/');
    if parent.is_empty() {
        format!("/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// The directory holding `file` for the cgroup at `path` (a cgroupsPath).
pub fn dir_of(layout: CgroupLayout, controller: &str, path: &str) -> PathBuf {
    dir_under(Path::new(CGROUP_ROOT), layout, controller, path)
}

/// [`dir_of`] under the cgroup mount `root` (a test's fake tree).
pub fn dir_under(root: &Path, layout: CgroupLayout, controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    match layout {
        CgroupLayout::V1 => root.join(controller).join(rel),
        CgroupLayout::V2 => root.join(rel),
    }
}

/// How many processes the kernel's OOM killer has killed in the cgroup.
pub fn oom_kill_count(layout: CgroupLayout, path: &str) -> Option<u64> {
    let file = match layout {
        CgroupLayout::V1 => dir_of(layout, "memory", path).join("memory.oom_control"),
        CgroupLayout::V2 => dir_of(layout, "", path).join("memory.events"),
    };
    parse_counter(&fs::read_to_string(file).ok()?, "oom_kill")
}

/// A `key value` line from a flat-keyed cgroup file.
pub fn parse_counter(text: &str, key: &str) -> Option<u64> {
    crate::cgroup_stats::parse_flat(text).get(key).copied()
}

/// True while the cgroup at `path` exists in any hierarchy.
pub fn exists(path: &str) -> bool {
    Cgroup::load(hierarchies::auto(), path.trim_start_matches('/')).exists()
}

/// What empties the memory cgroup at `path` under the cgroup mount `root`:
/// the file and what to write to it. cgroup v1: `memory.force_empty`,
/// "0". cgroup v2: `memory.reclaim`, the bytes charged (`current`, its
/// `memory.current`); nothing when none are or the count is unknown.
pub fn reclaim_request(
    root: &Path,
    layout: CgroupLayout,
    path: &str,
    current: Option<u64>,
) -> Option<(PathBuf, String)> {
    match layout {
        CgroupLayout::V1 => Some((
            dir_under(root, layout, "memory", path).join("memory.force_empty"),
            "0".to_string(),
        )),
        CgroupLayout::V2 => current.filter(|&bytes| bytes > 0).map(|bytes| {
            (
                dir_under(root, layout, "", path).join("memory.reclaim"),
                bytes.to_string(),
            )
        }),
    }
}

/// Reclaim the page cache still charged to the memory cgroup at `path`,
/// best effort, before it is removed. Why: a removed memory cgroup whose
/// pages are still charged stays in the kernel as a dying cgroup until
/// they are reclaimed, and each finished task left one: thousands of them
/// slowed every new task's start (i16-status.md). The kernel refuses
/// (EBUSY, EAGAIN) while processes remain or pages are in use; fine.
pub fn reclaim(path: &str) {
    let layout = layout();
    let current = match layout {
        CgroupLayout::V1 => None,
        CgroupLayout::V2 => fs::read_to_string(dir_of(layout, "", path).join("memory.current"))
            .ok()
            .and_then(|t| t.trim().parse().ok()),
    };
    if let Some((file, value)) = reclaim_request(Path::new(CGROUP_ROOT), layout, path, current) {
        if let Err(e) = fs::write(&file, value) {
            tracing::debug!("reclaim {}: {e}", file.display());
        }
    }
}

/// Kill whatever is left in the cgroup at `path` and remove it from every
/// hierarchy. Missing cgroups are fine: removal must work on half-made
/// containers.
pub fn remove(path: &str) -> Result<(), String> {
    let cgroup = Cgroup::load(hierarchies::auto(), path.trim_start_matches('/'));
    if !cgroup.exists() {
        return Ok(());
    }
    for pid in cgroup.procs() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    // Killed processes leave the cgroup asynchronously; rmdir retries briefly.
    let mut last = String::new();
    let mut reclaimed = false;
    for _ in 0..50 {
        // Once the processes have gone (v1 refuses while any is left).
        if !reclaimed && cgroup.procs().is_empty() {
            reclaim(path);
            reclaimed = true;
        }
        match cgroup.delete() {
            Ok(()) if !cgroup.exists() => return Ok(()),
            Ok(()) => {}
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("remove cgroup {path}: {last}"))
}

/// Create the cgroup at `path` in every hierarchy with `resources` as its
/// limits: a task's cgroup, under which its containers' cgroups nest. The
/// CPU file gets v1 shares or the v2 weight libcontainer would write for
/// them (cgroups-rs writes the number it is given to either).
pub fn create_parent(path: &str, resources: &crate::Resources) -> Result<(), String> {
    use cgroups_rs::cgroup_builder::CgroupBuilder;
    let rel = path.trim_start_matches('/');
    let bytes = match resources.memory_mib {
        Some(mib) => Some(
            mib.checked_mul(1024 * 1024)
                .and_then(|b| i64::try_from(b).ok())
                .ok_or(format!(
                    "create cgroup {path}: memory {mib} MiB is too large"
                ))?,
        ),
        None => None,
    };
    let build = || {
        let mut builder = CgroupBuilder::new(rel);
        if let Some(units) = resources.cpu_units {
            let value = crate::resources::cpu_share_or_weight(layout(), units);
            builder = builder.cpu().shares(value).done();
        }
        if let Some(bytes) = bytes {
            builder = builder.memory().memory_hard_limit(bytes).done();
        }
        builder.build(hierarchies::auto())
    };
    // On cgroup v2, cgroups-rs makes each missing ancestor with a test and
    // a mkdir: two tasks making their first cgroup under one new parent at
    // once race, and the loser's mkdir fails with EEXIST. Its next attempt
    // finds the ancestor made.
    let mut result = build();
    for _ in 0..3 {
        match &result {
            Err(e) if lost_a_mkdir_race(e) => result = build(),
            _ => break,
        }
    }
    result
        .map(|_| ())
        .map_err(|e| format!("create cgroup {path}: {e}"))
}

/// A cgroups-rs error caused by a directory that exists already.
fn lost_a_mkdir_race(e: &cgroups_rs::error::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
}

/// Remove an empty parent cgroup (a task's or a test's) from every hierarchy.
pub fn remove_if_empty(path: &str) -> Result<(), String> {
    let cgroup = Cgroup::load(hierarchies::auto(), path.trim_start_matches('/'));
    if !cgroup.exists() {
        return Ok(());
    }
    if !cgroup.procs().is_empty() {
        return Err(format!("cgroup {path} still has processes"));
    }
    reclaim(path);
    cgroup
        .delete()
        .map_err(|e| format!("remove cgroup {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaim_writes_force_empty_on_v1_and_memory_reclaim_on_v2() {
        let root = Path::new("/cg");
        assert_eq!(
            reclaim_request(root, CgroupLayout::V1, "/berth/t1", None),
            Some((
                PathBuf::from("/cg/memory/berth/t1/memory.force_empty"),
                "0".to_string()
            ))
        );
        assert_eq!(
            reclaim_request(root, CgroupLayout::V2, "/berth/t1", Some(4096)),
            Some((
                PathBuf::from("/cg/berth/t1/memory.reclaim"),
                "4096".to_string()
            ))
        );
        // Nothing charged, or unknown: nothing to ask for.
        assert_eq!(
            reclaim_request(root, CgroupLayout::V2, "/berth/t1", Some(0)),
            None
        );
        assert_eq!(
            reclaim_request(root, CgroupLayout::V2, "/berth/t1", None),
            None
        );
    }

    /// The v1 hierarchies libcgroups finds at /sys/fs/cgroup without
    /// mountinfo (contrib/libcgroups-0.7.0/BERTH.md) are the cgroup
    /// mounts mountinfo lists: on this host's own layout (none on a v2
    /// host, where /sys/fs/cgroup is not a tmpfs of hierarchies).
    #[test]
    fn v1_hierarchies_found_without_mountinfo_are_the_mounted_ones() {
        let mut mounted: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter_map(|l| {
                let (before, after) = l.split_once(" - ")?;
                let point = before.split_whitespace().nth(4)?;
                (after.split_whitespace().next()? == "cgroup").then(|| PathBuf::from(point))
            })
            .collect();
        let mut found = libcgroups::v1::util::list_subsystem_mount_points().expect("list");
        mounted.sort();
        found.sort();
        assert_eq!(found.is_empty(), layout() == CgroupLayout::V2);
        assert_eq!(found, mounted);
    }

    /// The containers of one task are created at once, and each makes its
    /// cgroup under the task's new parent. libcgroups makes each missing
    /// ancestor with a test and a mkdir on v2 (contrib/libcgroups-0.7.0/
    /// BERTH.md): the one that loses that race must still join.
    #[test]
    fn cgroup_managers_racing_on_a_new_parent_all_join() {
        use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager};
        use std::process::{Child, Command};
        use std::sync::{Arc, Barrier};

        const ROUNDS: usize = 10;
        const RACERS: usize = 8;
        /// Kills the sleepers and removes the cgroups, deepest first,
        /// whether the test passed or not.
        struct Made {
            children: Vec<Child>,
            cgroups: Vec<String>,
        }
        impl Drop for Made {
            fn drop(&mut self) {
                for child in &mut self.children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                for path in self.cgroups.iter().rev() {
                    let _ = remove_if_empty(path);
                }
            }
        }

        let parent = format!("/berth-unit-race-{}", std::process::id());
        let mut made = Made {
            children: Vec::new(),
            cgroups: vec![parent.clone()],
        };
        let mut joined = Vec::new();
        for round in 0..ROUNDS {
            let base = format!("{parent}/r{round}");
            made.cgroups.push(base.clone());
            let start = Arc::new(Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let child = Command::new("sleep")
                        .arg("60")
                        .spawn()
                        .expect("spawn sleep");
                    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                    let path = format!("{base}/c{i}");
                    made.cgroups.push(path.clone());
                    joined.push((child.id(), path.clone()));
                    made.children.push(child);
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        let manager = create_cgroup_manager(CgroupConfig {
                            cgroup_path: PathBuf::from(&path),
                            systemd_cgroup: false,
                            container_name: format!("c{i}"),
                        })
                        .map_err(|e| format!("manager for {path}: {e}"))?;
                        manager
                            .add_task(pid)
                            .map_err(|e| format!("round {round}: join {path}: {e}"))
                    })
                })
                .collect();
            for racer in racers {
                racer.join().expect("racer panicked").expect("joined");
            }
        }
        for (pid, path) in &joined {
            let procs = dir_of(layout(), "pids", path).join("cgroup.procs");
            let listed = fs::read_to_string(&procs).expect("read cgroup.procs");
            assert_eq!(listed.trim(), pid.to_string(), "{procs:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(container_path("berth", "c1"), "/berth/c1");
        assert_eq!(container_path("/a/b/", "c1"), "/a/b/c1");
        assert_eq!(container_path("", "c1"), "/c1");
        assert_eq!(
            dir_of(CgroupLayout::V2, "memory", "/berth/c1"),
            Path::new("/sys/fs/cgroup/berth/c1")
        );
        assert_eq!(
            dir_of(CgroupLayout::V1, "memory", "/berth/c1"),
            Path::new("/sys/fs/cgroup/memory/berth/c1")
        );
    }

    #[test]
    fn oom_counters_v1_and_v2() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_counter(v1, "oom_kill"), Some(3));
        assert_eq!(parse_counter(v1, "oom_kill_disable"), Some(0));
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_counter(v2, "oom_kill"), Some(1));
        assert_eq!(parse_counter(v2, "missing"), None);
    }
}

//! The host's cgroup layout, cgroup paths berth creates, OOM counters, and
//! removal of what berth made. Resource limits themselves are applied by
//! libcontainer from the OCI spec.

use std::fs;
use std::path::{Path, PathBuf};

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

/// `path` (a cgroupsPath) relative to a hierarchy's root: None for the
/// root itself or a path with `.` or `..` in it, which would make, write
/// or remove cgroups outside the one named.
fn relative(path: &str) -> Option<&str> {
    let rel = path.trim_matches('/');
    let plain = !rel.is_empty() && rel.split('/').all(|part| !matches!(part, "." | ".."));
    plain.then_some(rel)
}

/// The directory of the cgroup `rel` in each hierarchy mounted at
/// `mounts`, each once: the v1 list may name one hierarchy twice when it
/// was read from mountinfo and the hierarchy is mounted twice.
fn dirs_in(mounts: &[PathBuf], rel: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = mounts.iter().map(|m| m.join(rel)).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The directories of the cgroup at `path`: one per v1 hierarchy (their
/// mount points come from libcgroups' per-process list, found with statfs,
/// so no call reads the host's mountinfo, which grows with every running
/// container), or the one v2 directory.
fn hierarchy_dirs(path: &str) -> Result<Vec<PathBuf>, String> {
    let rel = relative(path).ok_or("not a cgroup below the root")?;
    match layout() {
        CgroupLayout::V1 => {
            let mounts = libcgroups::v1::util::list_subsystem_mount_points()
                .map_err(|e| format!("find the cgroup v1 hierarchies: {e}"))?;
            Ok(dirs_in(&mounts, rel))
        }
        CgroupLayout::V2 => Ok(vec![Path::new(CGROUP_ROOT).join(rel)]),
    }
}

/// True while the cgroup at `path` exists in any hierarchy.
pub fn exists(path: &str) -> bool {
    hierarchy_dirs(path).is_ok_and(|dirs| dirs.iter().any(|d| d.is_dir()))
}

/// The processes in the cgroups `dirs` (not in their descendants), each
/// once: on v1 a process is listed in every hierarchy.
fn procs(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|text| parse_pids(&text))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The pids of a `cgroup.procs` file, one a line.
fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Remove the cgroup `dir` and the empty cgroups below it, deepest first
/// (the kernel refuses to remove a cgroup that has children); one already
/// gone is fine.
fn remove_tree(dir: &Path) -> Result<(), String> {
    let first = match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => e,
        _ => return Ok(()),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Err(format!("rmdir {}: {first}", dir.display()));
    };
    for entry in entries.flatten() {
        // A cgroup's files are regular files; its children are directories.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("rmdir {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// [`remove_tree`] in every hierarchy; the first failure.
fn remove_trees(dirs: &[PathBuf]) -> Result<(), String> {
    dirs.iter().try_for_each(|d| remove_tree(d))
}

/// Kill whatever is left in the cgroup at `path` and remove it from every
/// hierarchy. Missing cgroups are fine: removal must work on half-made
/// containers.
pub fn remove(path: &str) -> Result<(), String> {
    let dirs = hierarchy_dirs(path).map_err(|e| format!("remove cgroup {path}: {e}"))?;
    if !dirs.iter().any(|d| d.is_dir()) {
        return Ok(());
    }
    for pid in procs(&dirs) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    // Killed processes leave the cgroup asynchronously; rmdir retries briefly.
    let mut last = String::new();
    let mut reclaimed = false;
    for _ in 0..50 {
        // Once the processes have gone (v1 refuses while any is left).
        if !reclaimed && procs(&dirs).is_empty() {
            reclaim(path);
            reclaimed = true;
        }
        match remove_trees(&dirs) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("remove cgroup {path}: {last}"))
}

/// The bytes of a memory limit of `mib` MiB, if they fit the kernel's
/// signed 64-bit counter.
fn memory_bytes(mib: u64) -> Option<u64> {
    mib.checked_mul(1024 * 1024)
        .filter(|&bytes| i64::try_from(bytes).is_ok())
}

/// The files that set the limits of the cgroup at `path` under the cgroup
/// mount `root`, with what to write: the CPU value (v1 shares or v2 weight,
/// already converted) and the memory hard limit in bytes, each when set.
fn limit_writes(
    root: &Path,
    layout: CgroupLayout,
    path: &str,
    cpu: Option<u64>,
    memory: Option<u64>,
) -> Vec<(PathBuf, String)> {
    let (cpu_file, memory_file) = match layout {
        CgroupLayout::V1 => ("cpu.shares", "memory.limit_in_bytes"),
        CgroupLayout::V2 => ("cpu.weight", "memory.max"),
    };
    let cpu = cpu.map(|v| (dir_under(root, layout, "cpu", path).join(cpu_file), v));
    let memory = memory.map(|v| (dir_under(root, layout, "memory", path).join(memory_file), v));
    cpu.into_iter()
        .chain(memory)
        .map(|(file, value)| (file, value.to_string()))
        .collect()
}

/// The controllers of `available` (a `cgroup.controllers`) not yet in
/// `enabled` (a `cgroup.subtree_control`).
fn missing_controllers<'a>(available: &'a str, enabled: &str) -> Vec<&'a str> {
    let on: Vec<&str> = enabled.split_whitespace().collect();
    available
        .split_whitespace()
        .filter(|c| !on.contains(c))
        .collect()
}

/// Create the cgroup at `path` in every hierarchy with `resources` as its
/// limits: a task's cgroup, under which its containers' cgroups nest. The
/// CPU file gets v1 shares or the v2 weight libcontainer would write for
/// them.
pub fn create_parent(path: &str, resources: &crate::Resources) -> Result<(), String> {
    let fail = |e: String| format!("create cgroup {path}: {e}");
    let memory = match resources.memory_mib {
        Some(mib) => {
            Some(memory_bytes(mib).ok_or_else(|| fail(format!("memory {mib} MiB is too large")))?)
        }
        None => None,
    };
    let layout = layout();
    match layout {
        CgroupLayout::V1 => {
            // create_dir_all counts a directory made meanwhile by a racing
            // creator (another task's supervisor making the shared parent)
            // as made.
            for dir in hierarchy_dirs(path).map_err(fail)? {
                fs::create_dir_all(&dir)
                    .map_err(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
            }
            fill_cpuset(path).map_err(fail)?;
        }
        CgroupLayout::V2 => create_v2(path).map_err(fail)?,
    }
    let cpu = resources
        .cpu_units
        .map(|units| crate::resources::cpu_share_or_weight(layout, units));
    for (file, value) in limit_writes(Path::new(CGROUP_ROOT), layout, path, cpu, memory) {
        fs::write(&file, &value)
            .map_err(|e| fail(format!("write {value} to {}: {e}", file.display())))?;
    }
    Ok(())
}

/// cgroup v1: a new cpuset cgroup's `cpuset.cpus` and `cpuset.mems` start
/// empty, and the kernel refuses a process into a cgroup with either empty
/// (ENOSPC). Each empty one from the hierarchy's root down to `path` gets
/// its parent's, as cgroups-rs did (libcontainer does the same for the
/// containers' cgroups below). Nothing when no cpuset hierarchy is there.
fn fill_cpuset(path: &str) -> Result<(), String> {
    let mount = Path::new(CGROUP_ROOT).join("cpuset");
    let Some(rel) = relative(path) else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Ok(top) = fs::read_to_string(mount.join(file)) else {
            return Ok(());
        };
        let mut value = top.trim().to_string();
        let mut dir = mount.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            let own_file = dir.join(file);
            let own = fs::read_to_string(&own_file)
                .map_err(|e| format!("read {}: {e}", own_file.display()))?;
            if own.trim().is_empty() {
                fs::write(&own_file, &value)
                    .map_err(|e| format!("write {value} to {}: {e}", own_file.display()))?;
            } else {
                value = own.trim().to_string();
            }
        }
    }
    Ok(())
}

/// Make the v2 cgroup `path` and its missing ancestors, with every
/// controller the root offers enabled in the root's and each ancestor's
/// `cgroup.subtree_control` (not the cgroup's own: the kernel would then
/// refuse processes in it), as cgroups-rs did: the cgroup's `cpu.weight`
/// and `memory.max` exist only so. libcontainer enables the same again
/// for the containers' cgroups below. Tasks starting at once race to
/// make their shared parent: EEXIST counts as made.
fn create_v2(path: &str) -> Result<(), String> {
    let root = Path::new(CGROUP_ROOT);
    let rel = relative(path).ok_or("not a cgroup below the root")?;
    // Unreadable: nothing to enable, as with cgroups-rs; a missing limit
    // file then fails the write below with its name.
    let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    enable_controllers(root, &available);
    let mut dir = root.to_path_buf();
    let mut parts = rel.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        dir.push(part);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("mkdir {}: {e}", dir.display()));
            }
            _ => {}
        }
        if parts.peek().is_some() {
            enable_controllers(&dir, &available);
        }
    }
    Ok(())
}

/// Enable in the v2 cgroup `dir`'s subtree those of `available` not yet
/// enabled, one at a time, best effort: the kernel refuses one it cannot
/// enable there (a cgroup with processes of its own, a real-time process
/// for `cpu`) and the others must still go on. Read first so that the
/// common case, all on already, writes nothing.
fn enable_controllers(dir: &Path, available: &str) {
    let file = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&file).unwrap_or_default();
    for controller in missing_controllers(available, &enabled) {
        if let Err(e) = fs::write(&file, format!("+{controller}")) {
            tracing::debug!("enable {controller} in {}: {e}", file.display());
        }
    }
}

/// Remove an empty parent cgroup (a task's or a test's) from every hierarchy.
pub fn remove_if_empty(path: &str) -> Result<(), String> {
    let dirs = hierarchy_dirs(path).map_err(|e| format!("remove cgroup {path}: {e}"))?;
    if !dirs.iter().any(|d| d.is_dir()) {
        return Ok(());
    }
    if !procs(&dirs).is_empty() {
        return Err(format!("cgroup {path} still has processes"));
    }
    reclaim(path);
    remove_trees(&dirs).map_err(|e| format!("remove cgroup {path}: {e}"))
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
    fn relative_paths_stay_below_the_root() {
        assert_eq!(relative("/berth/t1"), Some("berth/t1"));
        assert_eq!(relative("berth/t1/"), Some("berth/t1"));
        assert_eq!(relative("/a//b"), Some("a//b"));
        assert_eq!(relative("/"), None);
        assert_eq!(relative(""), None);
        assert_eq!(relative("/berth/../etc"), None);
        assert_eq!(relative("/./berth"), None);
    }

    #[test]
    fn one_directory_per_hierarchy() {
        let mounts = [
            PathBuf::from("/cg/memory"),
            PathBuf::from("/cg/cpu,cpuacct"),
            PathBuf::from("/cg/memory"),
        ];
        assert_eq!(
            dirs_in(&mounts, "berth/t1"),
            [
                PathBuf::from("/cg/cpu,cpuacct/berth/t1"),
                PathBuf::from("/cg/memory/berth/t1")
            ]
        );
    }

    #[test]
    fn limits_go_to_shares_and_limit_in_bytes_on_v1_weight_and_max_on_v2() {
        let root = Path::new("/cg");
        let w = |layout, cpu, memory| limit_writes(root, layout, "/berth/t1", cpu, memory);
        assert_eq!(
            w(CgroupLayout::V1, Some(512), Some(1 << 20)),
            [
                (
                    PathBuf::from("/cg/cpu/berth/t1/cpu.shares"),
                    "512".to_string()
                ),
                (
                    PathBuf::from("/cg/memory/berth/t1/memory.limit_in_bytes"),
                    "1048576".to_string()
                )
            ]
        );
        assert_eq!(
            w(CgroupLayout::V2, Some(20), Some(1 << 20)),
            [
                (PathBuf::from("/cg/berth/t1/cpu.weight"), "20".to_string()),
                (
                    PathBuf::from("/cg/berth/t1/memory.max"),
                    "1048576".to_string()
                )
            ]
        );
        assert_eq!(
            w(CgroupLayout::V2, None, Some(4096)),
            [(PathBuf::from("/cg/berth/t1/memory.max"), "4096".to_string())]
        );
        assert!(w(CgroupLayout::V1, None, None).is_empty());
    }

    #[test]
    fn memory_limits_must_fit_the_kernels_counter() {
        assert_eq!(memory_bytes(512), Some(512 << 20));
        assert_eq!(memory_bytes(0), Some(0));
        assert_eq!(memory_bytes(u64::MAX), None);
        // Fits u64 but not i64.
        assert_eq!(memory_bytes(1 << 43), None);
        assert_eq!(memory_bytes((1 << 43) - 1), Some(((1 << 43) - 1) << 20));
    }

    #[test]
    fn only_controllers_not_yet_enabled_are_written() {
        let available = "cpuset cpu io memory pids\n";
        assert_eq!(
            missing_controllers(available, "cpu memory\n"),
            ["cpuset", "io", "pids"]
        );
        assert!(missing_controllers(available, "cpuset cpu io memory pids").is_empty());
        assert_eq!(missing_controllers("memory\n", ""), ["memory"]);
        assert!(missing_controllers("", "").is_empty());
    }

    #[test]
    fn pids_of_cgroup_procs() {
        assert_eq!(parse_pids("12\n345\n"), [12, 345]);
        assert!(parse_pids("").is_empty());
        assert_eq!(parse_pids("7\ngarbage\n"), [7]);
    }

    /// Children are removed before their parent, as rmdir needs.
    #[test]
    fn remove_tree_removes_children_first_and_allows_missing() {
        let base = std::env::temp_dir().join(format!("berth-cg-tree-{}", std::process::id()));
        fs::create_dir_all(base.join("a/b/c")).expect("mkdir");
        fs::create_dir_all(base.join("a/d")).expect("mkdir");
        let result = remove_tree(&base.join("a"));
        let left = base.join("a").exists();
        let _ = fs::remove_dir_all(&base);
        assert_eq!(result, Ok(()));
        assert!(!left);
        assert_eq!(remove_tree(&base.join("gone")), Ok(()));
    }

    /// A task's cgroup on this host's layout (v1 here, v2 in the VM lane):
    /// made with its limits by tasks starting at once under one new
    /// parent, then removed with a process left in it and an empty
    /// container cgroup below it.
    #[test]
    fn task_cgroups_made_at_once_with_limits_then_removed_with_what_is_in_them() {
        use std::process::{Child, Command};
        const TASKS: usize = 4;
        struct Made {
            child: Option<Child>,
            parent: String,
        }
        impl Drop for Made {
            fn drop(&mut self) {
                if let Some(child) = &mut self.child {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                for i in 0..TASKS {
                    let _ = remove(&format!("{}/t{i}", self.parent));
                }
                let _ = remove_if_empty(&self.parent);
            }
        }
        let parent = format!("/berth-unit-parent-{}", std::process::id());
        let mut made = Made {
            child: None,
            parent: parent.clone(),
        };
        let resources = crate::Resources {
            cpu_units: Some(512),
            memory_mib: Some(64),
            ..Default::default()
        };
        let start = std::sync::Arc::new(std::sync::Barrier::new(TASKS));
        let makers: Vec<_> = (0..TASKS)
            .map(|i| {
                let (path, resources, start) =
                    (format!("{parent}/t{i}"), resources.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    create_parent(&path, &resources)
                })
            })
            .collect();
        for maker in makers {
            maker
                .join()
                .expect("maker panicked")
                .expect("create_parent");
        }
        let task = format!("{parent}/t0");
        assert!(exists(&task));
        let layout = layout();
        let cpu = crate::resources::cpu_share_or_weight(layout, 512);
        for (file, value) in limit_writes(
            Path::new(CGROUP_ROOT),
            layout,
            &task,
            Some(cpu),
            Some(64 << 20),
        ) {
            assert_eq!(
                fs::read_to_string(&file).expect("read limit").trim(),
                value,
                "{file:?}"
            );
        }
        let too_large = crate::Resources {
            memory_mib: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            create_parent(&format!("{parent}/t9"), &too_large),
            Err(format!(
                "create cgroup {parent}/t9: memory {} MiB is too large",
                u64::MAX
            ))
        );

        // A process in the task's cgroup, and an empty container cgroup below.
        let child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        made.child = Some(child);
        let dirs = hierarchy_dirs(&task).expect("dirs");
        for dir in &dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("join");
            fs::create_dir_all(dir.join("c1")).expect("container cgroup");
        }
        assert_eq!(procs(&dirs), [pid as i32]);
        assert_eq!(
            remove_if_empty(&task),
            Err(format!("cgroup {task} still has processes"))
        );
        assert_eq!(remove(&task), Ok(()));
        assert!(!exists(&task));
        let status = made.child.as_mut().expect("child").wait().expect("wait");
        assert!(!status.success(), "sleep was not killed: {status}");
        made.child = None;
        // Gone already: fine.
        assert_eq!(remove(&task), Ok(()));
        assert_eq!(remove_if_empty(&task), Ok(()));
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

//! A cgroup's usage counters as Docker's stats report them (memory, CPU,
//! pids), read from cgroup v1's controllers or v2's unified files.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::cgroups::{dir_under, layout, parse_counter, CgroupLayout, CGROUP_ROOT};

/// One reading of a cgroup's counters; a counter the kernel does not show
/// is 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_usage: u64,
    /// None: no limit.
    pub memory_limit: Option<u64>,
    /// `memory.stat`, as the kernel names its keys.
    pub memory_stat: BTreeMap<String, u64>,
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub pids: u64,
}

/// v1 counts an unlimited memory cgroup as a huge page-aligned number.
const V1_UNLIMITED: u64 = 1 << 62;

/// The counters of the cgroup at `path` (a cgroupsPath); None when the
/// cgroup is gone.
pub fn read(path: &str) -> Option<CgroupStats> {
    read_under(Path::new(CGROUP_ROOT), layout(), path)
}

/// [`read`] from the cgroup mount at `root`, laid out as `l`.
pub fn read_under(root: &Path, l: CgroupLayout, path: &str) -> Option<CgroupStats> {
    let read = |controller: &str, file: &str| {
        fs::read_to_string(dir_under(root, l, controller, path).join(file)).ok()
    };
    let memory_stat = parse_flat(&read("memory", "memory.stat")?);
    let mut s = CgroupStats {
        memory_stat,
        ..Default::default()
    };
    let num = |text: Option<String>| text.and_then(|t| t.trim().parse::<u64>().ok());
    match l {
        CgroupLayout::V1 => {
            s.memory_usage = num(read("memory", "memory.usage_in_bytes")).unwrap_or(0);
            s.memory_limit =
                num(read("memory", "memory.limit_in_bytes")).filter(|&m| m < V1_UNLIMITED);
            s.cpu_total_ns = num(read("cpuacct", "cpuacct.usage")).unwrap_or(0);
            let ticks = parse_flat(&read("cpuacct", "cpuacct.stat").unwrap_or_default());
            // USER_HZ is 100 on Linux: a tick is 10 ms.
            s.cpu_user_ns = ticks
                .get("user")
                .copied()
                .unwrap_or(0)
                .saturating_mul(10_000_000);
            s.cpu_system_ns = ticks
                .get("system")
                .copied()
                .unwrap_or(0)
                .saturating_mul(10_000_000);
            s.pids = num(read("pids", "pids.current")).unwrap_or(0);
        }
        CgroupLayout::V2 => {
            s.memory_usage = num(read("", "memory.current")).unwrap_or(0);
            s.memory_limit = num(read("", "memory.max"));
            let cpu = read("", "cpu.stat").unwrap_or_default();
            let us = |k: &str| parse_counter(&cpu, k).unwrap_or(0).saturating_mul(1000);
            (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns) =
                (us("usage_usec"), us("user_usec"), us("system_usec"));
            s.pids = num(read("", "pids.current")).unwrap_or(0);
        }
    }
    Some(s)
}

/// A flat-keyed file (`key value` lines) as a map; bad lines are skipped.
pub fn parse_flat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (file, text) in files {
            let p = root.path().join(file);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn cgroup_v2_unified_files_are_read() {
        let root = tree(&[
            ("berth/t/app/memory.stat", "anon 4096\nfile 8192\n"),
            ("berth/t/app/memory.current", "12288\n"),
            ("berth/t/app/memory.max", "max\n"),
            (
                "berth/t/app/cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
            ),
            ("berth/t/app/pids.current", "3\n"),
        ]);
        let s = read_under(root.path(), CgroupLayout::V2, "/berth/t/app").unwrap();
        assert_eq!(s.memory_usage, 12288);
        assert_eq!(s.memory_limit, None, "max: no limit");
        assert_eq!(s.memory_stat["file"], 8192);
        assert_eq!(
            (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns),
            (1_500_000, 1_000_000, 500_000)
        );
        assert_eq!(s.pids, 3);
        fs::write(root.path().join("berth/t/app/memory.max"), "65536\n").unwrap();
        let s = read_under(root.path(), CgroupLayout::V2, "berth/t/app").unwrap();
        assert_eq!(s.memory_limit, Some(65536));
        assert!(read_under(root.path(), CgroupLayout::V2, "berth/t/gone").is_none());
    }

    #[test]
    fn cgroup_v1_controllers_are_read() {
        let root = tree(&[
            ("memory/berth/c/memory.stat", "rss 100\n"),
            ("memory/berth/c/memory.usage_in_bytes", "200\n"),
            (
                "memory/berth/c/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("cpuacct/berth/c/cpuacct.usage", "7000\n"),
            ("cpuacct/berth/c/cpuacct.stat", "user 2\nsystem 1\n"),
            ("pids/berth/c/pids.current", "1\n"),
        ]);
        let s = read_under(root.path(), CgroupLayout::V1, "/berth/c").unwrap();
        assert_eq!(s.memory_usage, 200);
        assert_eq!(s.memory_limit, None, "v1's huge number: no limit");
        assert_eq!(s.cpu_total_ns, 7000);
        assert_eq!((s.cpu_user_ns, s.cpu_system_ns), (20_000_000, 10_000_000));
        assert_eq!(s.pids, 1);
    }

    #[test]
    fn flat_files_parse_skipping_bad_lines() {
        let m = parse_flat("cache 10\nrss 20\nbad\nx y\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["rss"], 20);
    }
}

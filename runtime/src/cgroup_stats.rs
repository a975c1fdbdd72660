//! A cgroup's usage counters as Docker's stats report them (memory, CPU,
//! pids), read from cgroup v1's controllers or v2's unified files.

use std::collections::BTreeMap;
use std::fs;

use crate::cgroups::{dir_of, layout, parse_counter, CgroupLayout};

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
    let l = layout();
    let read = |controller: &str, file: &str| {
        fs::read_to_string(dir_of(l, controller, path).join(file)).ok()
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

    #[test]
    fn flat_files_parse_skipping_bad_lines() {
        let m = parse_flat("cache 10\nrss 20\nbad\nx y\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["rss"], 20);
    }
}

//! `/v4/<id>/stats` and `/task/stats`: Docker's stats object
//! (`docker stats --no-stream`'s JSON, which the agent passes on) built
//! from cgroup readings and the namespace's `/proc/net/dev`. Pure.

use berth_runtime::cgroup_stats::CgroupStats;
use serde_json::{json, Map, Value};

/// One reading: a container's cgroup counters and the host's CPU time.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub at: String,
    pub cgroup: CgroupStats,
    /// The host's CPU time in ns (`/proc/stat`'s cpu line).
    pub system_cpu_ns: u64,
    pub online_cpus: u64,
}

/// Docker's stats of container `id` (named `name`): `now`, with `before`
/// as `precpu_stats` (zeros on a first reading, as Docker's), and the
/// interfaces of `net_dev` but `lo`.
pub fn docker_stats(
    id: &str,
    name: &str,
    now: &Reading,
    before: Option<&Reading>,
    net_dev: &str,
) -> Value {
    let mem = &now.cgroup;
    let mut memory = json!({
        "usage": mem.memory_usage,
        "stats": mem.memory_stat,
    });
    if let (Some(limit), Value::Object(o)) = (mem.memory_limit, &mut memory) {
        o.insert("limit".into(), json!(limit));
    }
    json!({
        "read": now.at,
        "preread": before.map_or("0001-01-01T00:00:00Z", |b| b.at.as_str()),
        "id": id,
        "name": format!("/{name}"),
        "num_procs": 0,
        "pids_stats": { "current": mem.pids },
        "cpu_stats": cpu(Some(now)),
        "precpu_stats": cpu(before),
        "memory_stats": memory,
        "networks": networks(net_dev),
        "blkio_stats": {},
        "storage_stats": {},
    })
}

fn cpu(r: Option<&Reading>) -> Value {
    let c = r.map(|r| r.cgroup.clone()).unwrap_or_default();
    json!({
        "cpu_usage": {
            "total_usage": c.cpu_total_ns,
            "usage_in_kernelmode": c.cpu_system_ns,
            "usage_in_usermode": c.cpu_user_ns,
        },
        "system_cpu_usage": r.map_or(0, |r| r.system_cpu_ns),
        "online_cpus": r.map_or(0, |r| r.online_cpus),
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

/// `/proc/net/dev` as Docker's `networks`: each interface but `lo`.
pub fn networks(net_dev: &str) -> Value {
    let mut out = Map::new();
    for line in net_dev.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let n: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if name == "lo" || n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    Value::Object(out)
}

/// The host's CPU time in ns and its online CPUs, from `/proc/stat`.
pub fn system_cpu(proc_stat: &str) -> (u64, u64) {
    let mut total = 0;
    let mut cpus = 0;
    for line in proc_stat.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            // user nice system idle iowait irq softirq steal, in USER_HZ
            // (100 on Linux) ticks of 10 ms.
            let ticks: u64 = rest
                .split_whitespace()
                .take(8)
                .filter_map(|v| v.parse::<u64>().ok())
                .fold(0u64, u64::saturating_add);
            // Saturating: a hostile or corrupt count must not panic.
            total = ticks.saturating_mul(10_000_000);
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
";

    #[test]
    fn networks_leave_out_loopback() {
        let n = networks(NET_DEV);
        assert_eq!(n.as_object().map(Map::len), Some(1));
        assert_eq!(n["eth0"]["rx_bytes"], 2000);
        assert_eq!(n["eth0"]["tx_packets"], 30);
        assert_eq!(n["eth0"]["tx_dropped"], 4);
    }

    #[test]
    fn huge_cpu_counts_saturate_instead_of_overflowing() {
        let max = u64::MAX;
        let (ns, _) = system_cpu(&format!("cpu  {max} {max} 1 1 0 0 0 0\ncpu0 1\n"));
        assert_eq!(ns, u64::MAX);
        let (ns, _) = system_cpu(&format!("cpu  {} 0 0 0\n", max / 1000));
        assert_eq!(ns, u64::MAX);
    }

    #[test]
    fn system_cpu_sums_the_cpu_line() {
        let (ns, cpus) =
            system_cpu("cpu  1 2 3 4 0 0 0 0 0 0\ncpu0 1 1 1 1\ncpu1 0 1 2 1\nintr 5\n");
        assert_eq!(ns, 10 * 10_000_000);
        assert_eq!(cpus, 2);
    }

    #[test]
    fn stats_have_dockers_shape() {
        let now = Reading {
            at: "t1".into(),
            cgroup: CgroupStats {
                memory_usage: 4096,
                memory_limit: Some(16 << 20),
                cpu_total_ns: 5,
                pids: 2,
                ..Default::default()
            },
            system_cpu_ns: 100,
            online_cpus: 2,
        };
        let s = docker_stats("id", "app", &now, None, NET_DEV);
        assert_eq!(s["memory_stats"]["usage"], 4096);
        assert_eq!(s["memory_stats"]["limit"], 16 << 20);
        assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(s["cpu_stats"]["online_cpus"], 2);
        assert_eq!(s["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(s["pids_stats"]["current"], 2);
        assert_eq!(s["name"], "/app");
        assert!(s["networks"]["eth0"].is_object());
        let later = docker_stats("id", "app", &now, Some(&now), NET_DEV);
        assert_eq!(later["preread"], "t1");
    }
}

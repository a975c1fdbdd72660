//! Container resources in ECS's units, and what they become in cgroup v1
//! and v2 files.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cgroups::CgroupLayout;
use crate::error::{Error, Result};

/// The CFS period berth uses for CPU quotas (the kernel's default).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The kernel refuses fewer than 2 shares.
const MIN_CPU_SHARES: u64 = 2;
const MAX_CPU_SHARES: u64 = 262_144;
const MIB: u64 = 1024 * 1024;
/// The largest memory size whose bytes fit the kernel's and libcontainer's
/// signed 64-bit limits.
pub const MAX_MEMORY_MIB: u64 = (i64::MAX as u64) / MIB;

/// MiB as bytes; saturates rather than wraps (validate refuses sizes past
/// [`MAX_MEMORY_MIB`]).
pub fn mib_to_bytes(mib: u64) -> u64 {
    mib.saturating_mul(MIB)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// ECS CPU units (1024 a core): a relative weight, not a cap.
    pub cpu_units: Option<u64>,
    /// A hard cap in cores (Docker's `--cpus`), as a CFS quota.
    pub cpus: Option<f64>,
    /// Hard memory limit in MiB (ECS `memory`).
    pub memory_mib: Option<u64>,
    /// Soft memory reservation in MiB (ECS `memoryReservation`).
    pub memory_reservation_mib: Option<u64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
}

/// One cgroup file and the value berth expects in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupSetting {
    /// v1 controller directory (`cpu`, `memory`, `pids`); unused on v2.
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

pub fn cpu_shares(units: u64) -> u64 {
    units.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES)
}

/// The largest cgroup v2 `cpu.weight`.
const MAX_CPU_WEIGHT: u64 = 10_000;

/// cgroup v2 `cpu.weight` for v1 shares, as libcontainer writes it for the
/// OCI `cpu.shares` (runc's conversion since 1.3.2): a quadratic in
/// log2(shares) that keeps both ends (2 -> 1, 262144 -> 10000) and maps the
/// v1 default 1024 to the v2 default 100. berth writes task cgroups with it
/// too, so a task's and its containers' weights agree.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = cpu_shares(shares);
    if shares <= MIN_CPU_SHARES {
        return 1;
    }
    if shares >= MAX_CPU_SHARES {
        return MAX_CPU_WEIGHT;
    }
    let log2 = (shares as f64).log2();
    let exponent = (log2 * log2 + 125.0 * log2) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, MAX_CPU_WEIGHT)
}

/// The value of a task cgroup's CPU file on `layout`: v1 shares or v2 weight.
pub fn cpu_share_or_weight(layout: CgroupLayout, units: u64) -> u64 {
    match layout {
        CgroupLayout::V1 => cpu_shares(units),
        CgroupLayout::V2 => shares_to_weight(units),
    }
}

pub fn cpu_quota_us(cpus: f64) -> u64 {
    (cpus * CFS_PERIOD_US as f64).round() as u64
}

impl Resources {
    pub fn validate(&self) -> Result<()> {
        if let Some(cpus) = self.cpus {
            if !(cpus.is_finite() && cpus >= 0.01) {
                return Err(Error::spec("resources.cpus", "must be at least 0.01"));
            }
            // The quota in microseconds must fit the kernel's i64.
            if cpus > 1e9 {
                return Err(Error::spec("resources.cpus", "must be at most 1e9"));
            }
        }
        for (field, value) in [
            ("resources.memoryMib", self.memory_mib),
            (
                "resources.memoryReservationMib",
                self.memory_reservation_mib,
            ),
        ] {
            if let Some(mib) = value.filter(|&m| m > MAX_MEMORY_MIB) {
                return Err(Error::spec(
                    field,
                    format!("{mib} MiB is more than the maximum of {MAX_MEMORY_MIB} MiB"),
                ));
            }
        }
        if self.memory_mib == Some(0) {
            return Err(Error::spec("resources.memoryMib", "must be above 0"));
        }
        if let (Some(hard), Some(soft)) = (self.memory_mib, self.memory_reservation_mib) {
            if soft > hard {
                return Err(Error::spec(
                    "resources.memoryReservationMib",
                    format!("{soft} MiB is above the hard limit of {hard} MiB"),
                ));
            }
        }
        if matches!(self.pids_limit, Some(n) if n < 1) {
            return Err(Error::spec("resources.pidsLimit", "must be at least 1"));
        }
        Ok(())
    }

    /// The OCI `linux.resources` object; libcontainer converts it for v2.
    pub fn to_oci(&self) -> Value {
        let mut res = json!({});
        let mut cpu = serde_json::Map::new();
        if let Some(units) = self.cpu_units {
            cpu.insert("shares".into(), json!(cpu_shares(units)));
        }
        if let Some(cpus) = self.cpus {
            cpu.insert("quota".into(), json!(cpu_quota_us(cpus)));
            cpu.insert("period".into(), json!(CFS_PERIOD_US));
        }
        if !cpu.is_empty() {
            res["cpu"] = Value::Object(cpu);
        }
        let mut memory = serde_json::Map::new();
        if let Some(mib) = self.memory_mib {
            memory.insert("limit".into(), json!(mib_to_bytes(mib)));
        }
        if let Some(mib) = self.memory_reservation_mib {
            memory.insert("reservation".into(), json!(mib_to_bytes(mib)));
        }
        if !memory.is_empty() {
            res["memory"] = Value::Object(memory);
        }
        if let Some(limit) = self.pids_limit {
            res["pids"] = json!({ "limit": limit });
        }
        res
    }

    /// The cgroup files these resources set, and their values, on `layout`.
    pub fn cgroup_settings(&self, layout: CgroupLayout) -> Vec<CgroupSetting> {
        let set = |controller, file, value: String| CgroupSetting {
            controller,
            file,
            value,
        };
        let mut out = Vec::new();
        match layout {
            CgroupLayout::V1 => {
                if let Some(units) = self.cpu_units {
                    out.push(set("cpu", "cpu.shares", cpu_shares(units).to_string()));
                }
                if let Some(cpus) = self.cpus {
                    out.push(set(
                        "cpu",
                        "cpu.cfs_quota_us",
                        cpu_quota_us(cpus).to_string(),
                    ));
                    out.push(set("cpu", "cpu.cfs_period_us", CFS_PERIOD_US.to_string()));
                }
                if let Some(mib) = self.memory_mib {
                    out.push(set(
                        "memory",
                        "memory.limit_in_bytes",
                        mib_to_bytes(mib).to_string(),
                    ));
                }
                if let Some(mib) = self.memory_reservation_mib {
                    out.push(set(
                        "memory",
                        "memory.soft_limit_in_bytes",
                        mib_to_bytes(mib).to_string(),
                    ));
                }
                if let Some(limit) = self.pids_limit {
                    out.push(set("pids", "pids.max", limit.to_string()));
                }
            }
            CgroupLayout::V2 => {
                if let Some(units) = self.cpu_units {
                    out.push(set("", "cpu.weight", shares_to_weight(units).to_string()));
                }
                if let Some(cpus) = self.cpus {
                    out.push(set(
                        "",
                        "cpu.max",
                        format!("{} {}", cpu_quota_us(cpus), CFS_PERIOD_US),
                    ));
                }
                if let Some(mib) = self.memory_mib {
                    out.push(set("", "memory.max", mib_to_bytes(mib).to_string()));
                }
                if let Some(mib) = self.memory_reservation_mib {
                    out.push(set("", "memory.low", mib_to_bytes(mib).to_string()));
                }
                if let Some(limit) = self.pids_limit {
                    out.push(set("", "pids.max", limit.to_string()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Resources {
        Resources {
            cpu_units: Some(512),
            cpus: Some(1.5),
            memory_mib: Some(256),
            memory_reservation_mib: Some(128),
            pids_limit: Some(64),
        }
    }

    #[test]
    fn ecs_units_to_shares_and_weight() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(1024), 1024);
        assert_eq!(cpu_shares(10_000_000), 262_144);
        // What libcontainer writes to cpu.weight (read back on a v2 kernel).
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
        // Monotonic and within the kernel's range everywhere.
        let mut last = 0;
        for shares in (2..=262_144).step_by(97) {
            let w = shares_to_weight(shares);
            assert!((1..=10_000).contains(&w) && w >= last, "{shares} -> {w}");
            last = w;
        }
        assert_eq!(cpu_share_or_weight(CgroupLayout::V1, 16_384), 16_384);
        assert_eq!(cpu_share_or_weight(CgroupLayout::V2, 16_384), 942);
    }

    #[test]
    fn v2_files_and_values() {
        let files = all().cgroup_settings(CgroupLayout::V2);
        let get = |f: &str| {
            files
                .iter()
                .find(|s| s.file == f)
                .map(|s| s.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("cpu.weight"), "59");
        assert_eq!(get("cpu.max"), "150000 100000");
        assert_eq!(get("memory.max"), (256 * MIB).to_string());
        assert_eq!(get("memory.low"), (128 * MIB).to_string());
        assert_eq!(get("pids.max"), "64");
        assert!(files.iter().all(|s| s.controller.is_empty()));
    }

    #[test]
    fn v1_files_and_values() {
        let files = all().cgroup_settings(CgroupLayout::V1);
        let find = |f: &str| files.iter().find(|s| s.file == f).cloned();
        assert_eq!(find("cpu.shares").map(|s| s.value), Some("512".into()));
        assert_eq!(
            find("cpu.cfs_quota_us").map(|s| (s.controller, s.value)),
            Some(("cpu", "150000".into()))
        );
        assert_eq!(
            find("memory.soft_limit_in_bytes").map(|s| s.value),
            Some((128 * MIB).to_string())
        );
    }

    #[test]
    fn oci_resources() {
        let v = all().to_oci();
        assert_eq!(v["cpu"]["shares"], 512);
        assert_eq!(v["cpu"]["quota"], 150_000);
        assert_eq!(v["memory"]["limit"], 256 * MIB);
        assert_eq!(v["pids"]["limit"], 64);
        assert_eq!(Resources::default().to_oci(), json!({}));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = Resources {
            memory_mib: Some(64),
            memory_reservation_mib: Some(128),
            ..Default::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("memoryReservationMib"), "{err}");
        let bad = Resources {
            pids_limit: Some(0),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn extreme_sizes_are_refused_and_never_wrap() {
        let huge = Resources {
            memory_mib: Some(u64::MAX),
            memory_reservation_mib: Some(u64::MAX),
            ..Default::default()
        };
        let err = huge.validate().unwrap_err().to_string();
        assert!(err.contains("resources.memoryMib"), "{err}");
        // Unvalidated, the conversions saturate instead of wrapping.
        assert_eq!(huge.to_oci()["memory"]["limit"], u64::MAX);
        let v2 = huge.cgroup_settings(CgroupLayout::V2);
        assert!(v2.iter().all(|s| s.value == u64::MAX.to_string()), "{v2:?}");
        let max = Resources {
            memory_mib: Some(MAX_MEMORY_MIB),
            ..Default::default()
        };
        max.validate().expect("the largest size");
        assert!(i64::try_from(mib_to_bytes(MAX_MEMORY_MIB)).is_ok());
        let cpus = Resources {
            cpus: Some(f64::MAX),
            ..Default::default()
        };
        assert!(cpus
            .validate()
            .unwrap_err()
            .to_string()
            .contains("resources.cpus"));
    }
}

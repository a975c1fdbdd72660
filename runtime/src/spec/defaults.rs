//! The defaults Docker and runc give a container, which berth keeps so that
//! images behave as their authors tested them.

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (through CAP_CHECKPOINT_RESTORE, 5.9).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// runc's default masked paths: hidden behind /dev/null or an empty tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    // Docker 28 (moby#49560): interrupt counts per CPU leak host activity.
    "/proc/interrupts",
];

/// Masked as Docker 28 does, for each CPU that has one:
/// `/sys/devices/system/cpu/cpu*/thermal_throttle`.
pub const THERMAL_THROTTLE: &str = "thermal_throttle";

/// The masked paths for a host whose sysfs CPU directory is `cpu_dir`
/// (`/sys/devices/system/cpu` as the container sees it): the fixed list,
/// then each `cpuN/thermal_throttle` present there.
pub fn masked_paths(cpu_dir: &std::path::Path) -> Vec<String> {
    let mut paths: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    let mut cpus: Vec<String> = std::fs::read_dir(cpu_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|name| cpu_dir.join(name).join(THERMAL_THROTTLE).exists())
        .collect();
    cpus.sort();
    paths.extend(
        cpus.iter()
            .map(|cpu| format!("/sys/devices/system/cpu/{cpu}/{THERMAL_THROTTLE}")),
    );
    paths
}

/// runc's default read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default `PATH`, for images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default /dev/shm size.
pub const DEFAULT_SHM_BYTES: u64 = 64 * 1024 * 1024;

/// Character devices a default container may use (type, major, minor):
/// null, zero, full, random, urandom, tty, ptmx, and any pty.
pub const ALLOWED_CHAR_DEVICES: &[(i64, Option<i64>)] = &[
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(2)),
    (136, None),
];

/// rlimits berth knows by name, in OCI spelling.
pub const RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// A default container's open-file limit (runc's default spec).
pub const DEFAULT_NOFILE: u64 = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thermal_throttle_is_masked_for_each_cpu_that_has_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        for cpu in ["cpu0", "cpu1", "cpu12"] {
            std::fs::create_dir_all(dir.path().join(cpu).join(THERMAL_THROTTLE)).expect("cpu");
        }
        std::fs::create_dir_all(dir.path().join("cpu2")).expect("cpu2 without one");
        std::fs::create_dir_all(dir.path().join("cpufreq").join(THERMAL_THROTTLE))
            .expect("not a cpu");
        let paths = masked_paths(dir.path());
        assert!(paths.contains(&"/proc/interrupts".to_string()));
        let throttles: Vec<&String> = paths
            .iter()
            .filter(|p| p.ends_with(THERMAL_THROTTLE))
            .collect();
        assert_eq!(
            throttles,
            [
                "/sys/devices/system/cpu/cpu0/thermal_throttle",
                "/sys/devices/system/cpu/cpu1/thermal_throttle",
                "/sys/devices/system/cpu/cpu12/thermal_throttle",
            ]
        );
        assert_eq!(
            masked_paths(std::path::Path::new("/nonexistent")).len(),
            MASKED_PATHS.len()
        );
    }
}

//! Facts about this host as a container instance: its id, CPU and memory.

use std::path::Path;

use crate::files::{place, Placed, Placing};

/// This host's identity and capacity, as it registers in a cluster.
#[derive(Clone, Debug)]
pub struct Host {
    /// 32 hex digits, kept in `<state root>/host-id` once made.
    pub id: String,
    pub hostname: String,
    /// 1024 units a core.
    pub cpu_units: i64,
    pub memory_mib: i64,
    pub arch: String,
}

impl Host {
    pub fn detect(state_root: &Path) -> std::io::Result<Self> {
        let id = host_id(state_root)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        let memory_kib: i64 = std::fs::read_to_string("/proc/meminfo")?
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        // An operator may offer tasks less than the whole host.
        let env_limit = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<i64>().ok());
        Ok(Self {
            id,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            cpu_units: env_limit("BERTH_HOST_CPU_UNITS").unwrap_or(cores * 1024),
            memory_mib: env_limit("BERTH_HOST_MEMORY_MIB").unwrap_or(memory_kib / 1024),
            arch: std::env::consts::ARCH.to_string(),
        })
    }
}

/// The id in `<state root>/host-id`, made once. Processes starting at
/// once on a fresh root agree on one: the file appears whole (linked in
/// from a file already written) or not at all, and a loser of the race
/// reads the winner's id. A file that holds no id is replaced.
fn host_id(state_root: &Path) -> std::io::Result<String> {
    let id_file = state_root.join("host-id");
    let read = || {
        std::fs::read_to_string(&id_file)
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| id.len() == 32)
    };
    if let Some(id) = read() {
        return Ok(id);
    }
    let id = random_hex32()?;
    std::fs::create_dir_all(state_root)?;
    match place(&id_file, id.as_bytes(), 0o644, Placing::New)? {
        Placed::Written => Ok(id),
        Placed::Existed => match read() {
            Some(theirs) => Ok(theirs),
            // A file that holds no id (written by hand, or cut short).
            None => place(&id_file, id.as_bytes(), 0o644, Placing::Replace).map(|_| id),
        },
    }
}

/// A fresh id: 16 bytes from the kernel's generator as hex.
pub use crate::random::hex32 as random_hex32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_agree_on_one_host_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids: Vec<String> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| host_id(dir.path()).expect("host id")))
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("thread"))
                .collect()
        });
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
        assert_eq!(host_id(dir.path()).expect("again"), ids[0]);
        // Only the id is left: no file it was made in.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("host-id")]);
    }

    #[test]
    fn a_file_holding_no_id_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("host-id"), "garbage").expect("write");
        let id = host_id(dir.path()).expect("host id");
        assert_eq!(id.len(), 32);
        assert_eq!(host_id(dir.path()).expect("again"), id);
    }
}

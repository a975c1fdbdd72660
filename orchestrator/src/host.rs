//! Facts about this host as a container instance: its id, CPU and memory.

use std::path::Path;

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
        let id_file = state_root.join("host-id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(id) if id.trim().len() == 32 => id.trim().to_string(),
            _ => {
                let id = random_hex32()?;
                std::fs::create_dir_all(state_root)?;
                std::fs::write(&id_file, &id)?;
                id
            }
        };
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

/// A fresh id: 16 bytes from the kernel's generator as hex.
pub fn random_hex32() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

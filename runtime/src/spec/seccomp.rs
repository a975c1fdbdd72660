//! berth's default seccomp filter.
//!
//! Docker's profile is an allow list of ~350 syscalls; berth denies instead
//! the calls that reach kernel-global state or have been the ladder of known
//! escapes, and lets everything else through, so new syscalls used by new
//! libcs keep working. Capabilities and masked paths are the first line;
//! this is the second.

use serde_json::{json, Value};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Always denied: kernel modules, kexec, clocks, swap, reboot, accounting,
/// keyrings, BPF, perf, userfaultfd, file handles.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "init_module",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "name_to_handle_at",
    "open_by_handle_at",
    "perf_event_open",
    "quotactl",
    "reboot",
    "request_key",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "userfaultfd",
];

/// Denied unless the container holds CAP_SYS_ADMIN, as Docker does.
const DENIED_WITHOUT_SYS_ADMIN: &[&str] = &[
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "mount",
    "move_mount",
    "open_tree",
    "pivot_root",
    "setns",
    "umount2",
    "unshare",
];

/// clone flags that make new namespaces.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

fn architectures() -> Vec<&'static str> {
    if cfg!(target_arch = "x86_64") {
        vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        vec![]
    }
}

/// The OCI `linux.seccomp` object for a container with or without
/// CAP_SYS_ADMIN.
pub fn default_profile(has_sys_admin: bool) -> Value {
    let mut names: Vec<&str> = DENIED.to_vec();
    let mut syscalls = Vec::new();
    if !has_sys_admin {
        names.extend_from_slice(DENIED_WITHOUT_SYS_ADMIN);
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{ "index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ" }],
            }));
        }
        // clone3's flags sit behind a pointer seccomp cannot read; ENOSYS
        // makes libc fall back to clone, which is filtered above.
        syscalls.push(json!({
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
        }));
    }
    syscalls.insert(
        0,
        json!({ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM }),
    );
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_admin_keeps_mount() {
        let strict = default_profile(false).to_string();
        let relaxed = default_profile(true).to_string();
        assert!(strict.contains("\"mount\"") && strict.contains("clone3"));
        assert!(!relaxed.contains("\"mount\"") && !relaxed.contains("clone3"));
        assert!(relaxed.contains("kexec_load"));
    }
}

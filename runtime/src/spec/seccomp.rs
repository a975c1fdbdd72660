//! berth's default seccomp filter, in the shape of Docker's.
//!
//! As Docker's default profile: an allow list, some calls allowed only
//! with the capability that makes them meaningful, `socket`, `personality`
//! and `clone` allowed only for harmless arguments, and everything else
//! denied. Two differences in how: every call libseccomp knows that is not
//! allowed is denied by name with EPERM, and the default action is ENOSYS,
//! so that a call newer than libseccomp's table looks absent (a libc then
//! falls back to an older one) rather than forbidden, as runc arranges with
//! its own stub. The remaining differences from Docker are listed in
//! ARCHITECTURE.md.

use serde_json::{json, Value};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
/// `socket`'s address family that reaches the host's hypervisor sockets.
const AF_VSOCK: u64 = 40;
/// `personality` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff (query).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Docker's unconditional allow list (moby's profiles/seccomp/default.json),
/// less io_uring (removed in Docker 25, moby#46762) and the calls berth
/// always denies; plus the kernel 6.5–6.7 calls newer profiles allow.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Always denied, whatever the capabilities (stricter than Docker, which
/// lets some through with a capability): kernel modules, kexec, clocks,
/// swap, reboot, accounting, keyrings, BPF, perf, userfaultfd, file handles.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_settime",
    "clock_settime64",
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
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "userfaultfd",
];

/// Every other call libseccomp knows (x86_64, x86, x32, aarch64, arm) that
/// Docker's profile does not allow: denied with EPERM by name. Calls newer
/// than libseccomp's table fall to the default action, ENOSYS, so that a
/// libc falls back to an older call as it does under runc.
const NOT_ALLOWED: &[&str] = &[
    "afs_syscall",
    "bdflush",
    "break",
    "create_module",
    "ftime",
    "get_kernel_syms",
    "getpmsg",
    "gtty",
    "idle",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "lock",
    "migrate_pages",
    "move_pages",
    "mpx",
    "nfsservctl",
    "nice",
    "oldfstat",
    "oldlstat",
    "oldolduname",
    "oldstat",
    "olduname",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
    "pivot_root",
    "prof",
    "profil",
    "putpmsg",
    "query_module",
    "readdir",
    "security",
    "sgetmask",
    "sigaction",
    "signal",
    "sigpending",
    "sigsuspend",
    "ssetmask",
    "stty",
    "_sysctl",
    "sysfs",
    "tuxcall",
    "ulimit",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
    "vserver",
];

/// Allowed on one architecture family only.
const ALLOWED_X86: &[&str] = &["arch_prctl", "modify_ldt"];
const ALLOWED_ARM: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];

/// Allowed only to a container holding the capability, as Docker does
/// (less what [`DENIED`] keeps out whatever the capabilities).
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_PTRACE", &["pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (
        "CAP_SYS_ADMIN",
        &[
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
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

fn arch_allowed() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        ALLOWED_X86
    } else if cfg!(target_arch = "aarch64") {
        ALLOWED_ARM
    } else {
        &[]
    }
}

fn rule(names: &[&str], action: &str, errno: Option<u32>, args: Value) -> Value {
    let mut r = json!({ "names": names, "action": action });
    if let Some(errno) = errno {
        r["errnoRet"] = json!(errno);
    }
    if args.as_array().is_some_and(|a| !a.is_empty()) {
        r["args"] = args;
    }
    r
}

/// The OCI `linux.seccomp` object for a container holding `caps` (OCI
/// names, `CAP_…`).
pub fn default_profile(caps: &[String]) -> Value {
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut allowed: Vec<&str> = ALLOWED.to_vec();
    allowed.extend_from_slice(arch_allowed());
    let mut denied: Vec<&str> = DENIED.to_vec();
    denied.extend_from_slice(NOT_ALLOWED);
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend_from_slice(names);
        } else {
            denied.extend_from_slice(names);
        }
    }
    let sys_admin = has("CAP_SYS_ADMIN");
    // clone and clone3 are in the CAP_SYS_ADMIN list; without it clone is
    // allowed unless it asks for a namespace, and clone3, whose flags sit
    // behind a pointer seccomp cannot read, gets the default ENOSYS so that
    // libc falls back to clone.
    denied.retain(|n| *n != "clone" && *n != "clone3");

    let mut syscalls = vec![
        rule(&allowed, "SCMP_ACT_ALLOW", None, json!([])),
        rule(&denied, "SCMP_ACT_ERRNO", Some(EPERM), json!([])),
        rule(
            &["socket"],
            "SCMP_ACT_ALLOW",
            None,
            json!([{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE" }]),
        ),
        rule(
            &["socket"],
            "SCMP_ACT_ERRNO",
            Some(EPERM),
            json!([{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ" }]),
        ),
    ];
    for p in PERSONALITIES {
        syscalls.push(rule(
            &["personality"],
            "SCMP_ACT_ALLOW",
            None,
            json!([{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }]),
        ));
    }
    if !sys_admin {
        let all_flags = CLONE_NAMESPACE_FLAGS.iter().fold(0, |acc, f| acc | f);
        syscalls.push(rule(
            &["clone"],
            "SCMP_ACT_ALLOW",
            None,
            json!([{ "index": 0, "value": all_flags, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }]),
        ));
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(rule(
                &["clone"],
                "SCMP_ACT_ERRNO",
                Some(EPERM),
                json!([{ "index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ" }]),
            ));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ENOSYS,
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_with(profile: &Value, action: &str) -> Vec<String> {
        profile["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .filter(|r| r["action"] == action && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().expect("names").clone())
            .map(|n| n.as_str().expect("name").to_string())
            .collect()
    }

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn denies_what_docker_denies() {
        let p = default_profile(&caps(&["CAP_CHOWN", "CAP_NET_RAW"]));
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        let denied = names_with(&p, "SCMP_ACT_ERRNO");
        let allowed = names_with(&p, "SCMP_ACT_ALLOW");
        for name in [
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "pidfd_getfd",
            "process_madvise",
            "mbind",
            "set_mempolicy",
            "fanotify_init",
            "lookup_dcookie",
            "mount_setattr",
            "quotactl_fd",
            "sethostname",
            "setdomainname",
            "vhangup",
            "iopl",
            "ioperm",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vm86",
            "nfsservctl",
            "stime",
            "clock_settime64",
            "clock_adjtime64",
            "umount",
            "mount",
            "unshare",
            "setns",
            "kexec_load",
            "bpf",
        ] {
            assert!(denied.iter().any(|n| n == name), "{name} is not denied");
            assert!(!allowed.iter().any(|n| n == name), "{name} is allowed");
        }
        assert!(allowed.iter().any(|n| n == "read") && allowed.iter().any(|n| n == "ptrace"));
        // No name is both allowed and denied.
        assert!(allowed.iter().all(|a| !denied.contains(a)));
        assert!(
            !p.to_string().contains("clone3"),
            "clone3 gets the default ENOSYS"
        );
        assert_eq!(p["defaultErrnoRet"], ENOSYS);
    }

    #[test]
    fn capabilities_allow_their_calls() {
        let p = default_profile(&caps(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE"]));
        let allowed = names_with(&p, "SCMP_ACT_ALLOW");
        let denied = names_with(&p, "SCMP_ACT_ERRNO");
        for name in [
            "mount",
            "unshare",
            "clone",
            "clone3",
            "pidfd_getfd",
            "mbind",
        ] {
            assert!(allowed.iter().any(|n| n == name), "{name} is not allowed");
        }
        assert!(denied.iter().any(|n| n == "kexec_load"));
        assert!(denied.iter().any(|n| n == "iopl"));
        assert!(!p.to_string().contains("SCMP_CMP_MASKED_EQ"));
    }
}

//! berth's description of one container, and its OCI runtime spec.

mod defaults;
pub(crate) mod seccomp;
pub mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, Spec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use defaults::{DEFAULT_CAPABILITIES, DEFAULT_PATH};

use crate::error::{Error, Result};
use crate::resources::Resources;

/// The OCI annotation carrying an image's stop signal.
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerSpec {
    pub args: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group`, resolved in the rootfs.
    pub user: Option<String>,
    pub additional_groups: Vec<String>,
    pub hostname: Option<String>,
    pub rlimits: Vec<Rlimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only_root: bool,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub sysctls: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// /dev/shm size in bytes (Docker's default 64 MiB).
    pub shm_size: Option<u64>,
    /// Namespaces to join instead of creating, e.g. a task's network one.
    pub join_namespaces: Vec<NamespaceJoin>,
    /// Namespaces shared with the host (neither created nor joined), e.g.
    /// `network` for ECS's host network mode.
    pub host_namespaces: Vec<String>,
    pub resources: Resources,
    /// Signal that asks the container to stop (`SIGTERM` when absent).
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rlimit {
    /// `nofile`, `NOFILE` or `RLIMIT_NOFILE`.
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Mount {
    Bind {
        source: PathBuf,
        destination: String,
        #[serde(default)]
        read_only: bool,
    },
    Tmpfs {
        destination: String,
        size_bytes: Option<u64>,
        #[serde(default)]
        options: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceJoin {
    /// OCI namespace type: `network`, `ipc`, `uts`, `pid`, `mount`, `cgroup`.
    pub kind: String,
    /// e.g. `/proc/PID/ns/net` or `/run/netns/NAME`.
    pub path: PathBuf,
}

const NAMESPACES: &[&str] = &["pid", "network", "ipc", "uts", "mount", "cgroup"];

impl ContainerSpec {
    /// The stop signal, checked to be one the kernel knows.
    pub fn stop_signal(&self) -> Result<nix::sys::signal::Signal> {
        parse_signal(self.stop_signal.as_deref().unwrap_or("SIGTERM"))
            .map_err(|reason| Error::spec("stopSignal", reason))
    }

    /// Build the OCI runtime spec for a container `id` whose root
    /// filesystem is `rootfs`, in the cgroup `cgroups_path`.
    pub fn to_oci(&self, id: &str, rootfs: &Path, cgroups_path: &str) -> Result<Spec> {
        self.validate(rootfs)?;
        let user = user::resolve(rootfs, self.user.as_deref(), &self.additional_groups)?;
        let stop_signal = self.stop_signal()?;
        let caps = self.capabilities()?;

        let mut env = self.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!(
                "HOME={}",
                user.home
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .unwrap_or("/")
            ));
        }
        let hostname = self
            .hostname
            .clone()
            .unwrap_or_else(|| id.chars().take(63).collect());

        let mut rlimits: Vec<Value> = Vec::new();
        let mut have_nofile = false;
        for (i, r) in self.rlimits.iter().enumerate() {
            let name = rlimit_name(&r.name).ok_or_else(|| {
                Error::spec(
                    format!("rlimits[{i}].name"),
                    format!("unknown rlimit {:?}", r.name),
                )
            })?;
            if r.soft > r.hard {
                return Err(Error::spec(
                    format!("rlimits[{i}]"),
                    "soft limit above hard limit",
                ));
            }
            have_nofile |= name == "RLIMIT_NOFILE";
            rlimits.push(json!({ "type": name, "soft": r.soft, "hard": r.hard }));
        }
        if !have_nofile {
            rlimits.push(json!({
                "type": "RLIMIT_NOFILE",
                "soft": defaults::DEFAULT_NOFILE,
                "hard": defaults::DEFAULT_NOFILE,
            }));
        }

        // Shared with the host: neither created nor joined.
        let namespaces: Vec<Value> = NAMESPACES
            .iter()
            .filter(|kind| !self.host_namespaces.iter().any(|h| h == *kind))
            .map(
                |kind| match self.join_namespaces.iter().find(|j| j.kind == *kind) {
                    Some(join) => json!({ "type": kind, "path": join.path }),
                    None => json!({ "type": kind }),
                },
            )
            .collect();

        let mut linux = json!({
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "resources": self.resources.to_oci(),
            "sysctl": self.sysctls,
        });
        linux["resources"]["devices"] = self.device_rules();
        if !self.privileged {
            linux["maskedPaths"] =
                json!(defaults::masked_paths(Path::new("/sys/devices/system/cpu")));
            linux["readonlyPaths"] = json!(defaults::READONLY_PATHS);
            linux["seccomp"] = seccomp::default_profile(&caps);
        }

        let mut value = json!({
            "ociVersion": "1.0.2",
            "root": { "path": rootfs, "readonly": self.read_only_root },
            "hostname": hostname,
            "process": {
                "terminal": false,
                "user": {
                    "uid": user.uid,
                    "gid": user.gid,
                    "additionalGids": user.additional_gids,
                },
                "args": self.args,
                "env": env,
                "cwd": self.cwd.as_deref().unwrap_or("/"),
                "capabilities": {
                    "bounding": caps,
                    "effective": caps,
                    "permitted": caps,
                },
                "rlimits": rlimits,
            },
            "mounts": self.mounts_json(),
            "linux": linux,
            "annotations": { STOP_SIGNAL_ANNOTATION: signal_name(stop_signal) },
        });
        // libcontainer reads a present `noNewPrivileges`, even false, as set,
        // and then loads seccomp after dropping CAP_SYS_ADMIN, which fails.
        if self.no_new_privileges {
            value["process"]["noNewPrivileges"] = json!(true);
        }
        serde_json::from_value(value).map_err(|source| Error::Json {
            context: "build OCI runtime spec".into(),
            source,
        })
    }

    fn validate(&self, rootfs: &Path) -> Result<()> {
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(Error::spec("args", "no command to run"));
        }
        if !rootfs.is_dir() {
            return Err(Error::spec(
                "rootfs",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') {
                return Err(Error::spec(
                    "cwd",
                    format!("{cwd:?} is not an absolute path"),
                ));
            }
        }
        for (i, e) in self.env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return Err(Error::spec(
                    format!("env[{i}]"),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            }
        }
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > MAX_HOSTNAME {
                return Err(Error::spec(
                    "hostname",
                    format!("must be 1 to {MAX_HOSTNAME} characters"),
                ));
            }
        }
        for (i, j) in self.join_namespaces.iter().enumerate() {
            if !NAMESPACES.contains(&j.kind.as_str()) {
                return Err(Error::spec(
                    format!("joinNamespaces[{i}].kind"),
                    format!("unknown namespace {:?}", j.kind),
                ));
            }
            if !j.path.exists() {
                return Err(Error::spec(
                    format!("joinNamespaces[{i}].path"),
                    format!("{} does not exist", j.path.display()),
                ));
            }
        }
        for (i, kind) in self.host_namespaces.iter().enumerate() {
            if !matches!(kind.as_str(), "network" | "ipc" | "uts" | "pid") {
                return Err(Error::spec(
                    format!("hostNamespaces[{i}]"),
                    format!("{kind:?}: only network, ipc, uts and pid can be shared with the host"),
                ));
            }
            if self.join_namespaces.iter().any(|j| j.kind == *kind) {
                return Err(Error::spec(
                    format!("hostNamespaces[{i}]"),
                    format!("{kind:?} is both shared with the host and joined"),
                ));
            }
        }
        // A sysctl of a namespace shared with the host would change the
        // host's own (Docker refuses these too).
        if self.host_namespaces.iter().any(|h| h == "network") {
            if let Some(key) = self.sysctls.keys().find(|k| k.starts_with("net.")) {
                return Err(Error::spec(
                    format!("sysctls.{key}"),
                    "net.* sysctls cannot be set in the host's network namespace",
                ));
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            let dest = match m {
                Mount::Bind {
                    source,
                    destination,
                    ..
                } => {
                    if !source.exists() {
                        return Err(Error::spec(
                            format!("mounts[{i}].source"),
                            format!("{} does not exist", source.display()),
                        ));
                    }
                    destination
                }
                Mount::Tmpfs { destination, .. } => destination,
            };
            if !dest.starts_with('/') {
                return Err(Error::spec(
                    format!("mounts[{i}].destination"),
                    format!("{dest:?} is not an absolute path"),
                ));
            }
        }
        self.resources.validate()
    }

    /// The container's capabilities, within what this host's bounding set
    /// can grant (as Docker gives `--privileged` its daemon's set).
    fn capabilities(&self) -> Result<Vec<String>> {
        let mut caps = self.requested_capabilities()?;
        if let Some(bounding) = host_bounding_set() {
            caps.retain(|cap| {
                let grantable = defaults::ALL_CAPABILITIES
                    .iter()
                    .position(|c| c == cap)
                    .is_none_or(|bit| bounding & (1u64 << bit) != 0);
                if !grantable && !self.privileged {
                    tracing::warn!("{cap} is outside this host's bounding set; not granted");
                }
                grantable
            });
        }
        Ok(caps)
    }

    fn requested_capabilities(&self) -> Result<Vec<String>> {
        if self.privileged {
            return Ok(defaults::ALL_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect());
        }
        let mut caps: Vec<String> = defaults::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        // Drops first, then adds: `--cap-drop ALL --cap-add X` leaves X.
        for (i, drop) in self.cap_drop.iter().enumerate() {
            if drop.eq_ignore_ascii_case("ALL") {
                caps.clear();
                continue;
            }
            let cap = capability_name(drop).map_err(|r| Error::spec(format!("capDrop[{i}]"), r))?;
            caps.retain(|c| *c != cap);
        }
        for (i, add) in self.cap_add.iter().enumerate() {
            if add.eq_ignore_ascii_case("ALL") {
                caps = defaults::ALL_CAPABILITIES
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                continue;
            }
            let cap = capability_name(add).map_err(|r| Error::spec(format!("capAdd[{i}]"), r))?;
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        Ok(caps)
    }

    fn device_rules(&self) -> Value {
        if self.privileged {
            return json!([{ "allow": true, "access": "rwm" }]);
        }
        let mut rules = vec![
            json!({ "allow": false, "access": "rwm" }),
            // mknod of any device is allowed; using one is not.
            json!({ "allow": true, "type": "c", "access": "m" }),
            json!({ "allow": true, "type": "b", "access": "m" }),
        ];
        for (major, minor) in defaults::ALLOWED_CHAR_DEVICES {
            let mut rule = json!({ "allow": true, "type": "c", "major": major, "access": "rwm" });
            if let Some(minor) = minor {
                rule["minor"] = json!(minor);
            }
            rules.push(rule);
        }
        Value::Array(rules)
    }

    fn mounts_json(&self) -> Value {
        let sys_ro = if self.privileged { "rw" } else { "ro" };
        let shm = self.shm_size.unwrap_or(defaults::DEFAULT_SHM_BYTES);
        let mut mounts = vec![
            json!({ "destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"] }),
            json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
            json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
            json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                    "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")] }),
            json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                    "options": ["nosuid", "noexec", "nodev"] }),
            json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", sys_ro] }),
            json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "relatime", sys_ro] }),
        ];
        for m in &self.mounts {
            mounts.push(match m {
                Mount::Bind {
                    source,
                    destination,
                    read_only,
                } => {
                    let mut options = vec!["rbind", "rprivate"];
                    if *read_only {
                        options.push("ro");
                    }
                    json!({ "destination": destination, "type": "bind", "source": source, "options": options })
                }
                Mount::Tmpfs {
                    destination,
                    size_bytes,
                    options,
                } => {
                    let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into()];
                    opts.extend(options.iter().cloned());
                    if let Some(size) = size_bytes {
                        opts.push(format!("size={size}"));
                    }
                    json!({ "destination": destination, "type": "tmpfs", "source": "tmpfs", "options": opts })
                }
            });
        }
        Value::Array(mounts)
    }
}

/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> std::result::Result<nix::sys::signal::Signal, String> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).map_err(|_| format!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| format!("unknown signal {s:?}"))
}

pub fn signal_name(signal: nix::sys::signal::Signal) -> &'static str {
    signal.as_str()
}

/// CapBnd of this process: bit N is capability N.
fn host_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `nofile`, `NOFILE` or `RLIMIT_NOFILE` → `RLIMIT_NOFILE`, if the
/// runtime knows it.
pub fn rlimit_name(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("RLIMIT_") {
        upper
    } else {
        format!("RLIMIT_{upper}")
    };
    defaults::RLIMITS.iter().copied().find(|r| *r == full)
}

/// `net_admin`, `NET_ADMIN` or `CAP_NET_ADMIN` → `CAP_NET_ADMIN`, checked.
/// The kernel's longest hostname (`__NEW_UTS_LEN`).
pub const MAX_HOSTNAME: usize = 64;

pub fn capability_name(name: &str) -> std::result::Result<String, String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value::<Capability>(json!(full))
        .map(|_| full)
        .map_err(|_| format!("unknown capability {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n")
            .expect("passwd");
        dir
    }

    fn spec(args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_docker() {
        let r = rootfs();
        let oci = spec(&["/bin/sh"])
            .to_oci("c1", r.path(), "/berth/c1")
            .expect("spec");
        let v = serde_json::to_value(&oci).expect("json");
        let caps = v["process"]["capabilities"]["bounding"]
            .as_array()
            .expect("caps");
        assert_eq!(caps.len(), 14);
        assert!(!caps
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN" || c == "CAP_NET_ADMIN"));
        assert_eq!(v["hostname"], "c1");
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/c1");
        assert!(v["linux"]["maskedPaths"]
            .to_string()
            .contains("/proc/kcore"));
        assert_eq!(v["process"]["env"][0], format!("PATH={DEFAULT_PATH}"));
        assert!(v["process"]["env"].to_string().contains("HOME=/root"));
        assert_eq!(v["annotations"][STOP_SIGNAL_ANNOTATION], "SIGTERM");
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }

    #[test]
    fn caps_privileged_and_joins() {
        let r = rootfs();
        let mut s = spec(&["true"]);
        s.cap_add = vec!["net_admin".into()];
        s.cap_drop = vec!["CAP_CHOWN".into()];
        s.join_namespaces = vec![NamespaceJoin {
            kind: "network".into(),
            path: "/proc/self/ns/net".into(),
        }];
        let v = serde_json::to_value(s.to_oci("c", r.path(), "/p/c").expect("spec")).expect("json");
        let caps = v["process"]["capabilities"]["bounding"].to_string();
        assert!(caps.contains("CAP_NET_ADMIN") && !caps.contains("CAP_CHOWN"));
        let ns = v["linux"]["namespaces"].as_array().expect("ns");
        let net = ns.iter().find(|n| n["type"] == "network").expect("net");
        assert_eq!(net["path"], "/proc/self/ns/net");

        s.privileged = true;
        let v = serde_json::to_value(s.to_oci("c", r.path(), "/p/c").expect("spec")).expect("json");
        assert!(v["linux"]["seccomp"].is_null());
        assert!(v["process"]["capabilities"]["bounding"]
            .to_string()
            .contains("CAP_SYS_ADMIN"));
    }

    #[test]
    fn host_namespaces_are_neither_created_nor_joined() {
        let r = rootfs();
        let mut s = spec(&["true"]);
        s.host_namespaces = vec!["network".into()];
        let v = serde_json::to_value(s.to_oci("c", r.path(), "/p/c").expect("spec")).expect("json");
        let kinds: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert_eq!(kinds, ["pid", "ipc", "uts", "mount", "cgroup"]);
        // The host's own sysctls are not a container's to set.
        s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        let err = s.to_oci("c", r.path(), "/p/c").unwrap_err().to_string();
        assert!(err.contains("sysctls.net.ipv4.ip_forward"), "{err}");
        s.sysctls.clear();
        s.join_namespaces = vec![NamespaceJoin {
            kind: "network".into(),
            path: "/proc/self/ns/net".into(),
        }];
        let err = s.to_oci("c", r.path(), "/p/c").unwrap_err().to_string();
        assert!(err.contains("hostNamespaces[0]"), "{err}");
    }

    #[test]
    fn bad_input_names_the_field() {
        let r = rootfs();
        let cases: Vec<(ContainerSpec, &str)> = vec![
            (spec(&[]), "args"),
            (
                ContainerSpec {
                    cwd: Some("rel".into()),
                    ..spec(&["x"])
                },
                "cwd",
            ),
            (
                ContainerSpec {
                    env: vec!["NOEQUALS".into()],
                    ..spec(&["x"])
                },
                "env[0]",
            ),
            (
                ContainerSpec {
                    cap_add: vec!["FLY".into()],
                    ..spec(&["x"])
                },
                "capAdd[0]",
            ),
            (
                ContainerSpec {
                    user: Some("ghost".into()),
                    ..spec(&["x"])
                },
                "user",
            ),
            (
                ContainerSpec {
                    stop_signal: Some("SIGNOPE".into()),
                    ..spec(&["x"])
                },
                "stopSignal",
            ),
            (
                ContainerSpec {
                    rlimits: vec![Rlimit {
                        name: "bogus".into(),
                        soft: 1,
                        hard: 1,
                    }],
                    ..spec(&["x"])
                },
                "rlimits[0].name",
            ),
        ];
        for (s, field) in cases {
            let err = s.to_oci("c", r.path(), "/p/c").unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        let err = spec(&["x"])
            .to_oci("c", Path::new("/nonexistent/rootfs"), "/p/c")
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rootfs"));
    }

    #[test]
    fn signals() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("sigquit"), Ok(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("SIGFOO").is_err());
    }
}

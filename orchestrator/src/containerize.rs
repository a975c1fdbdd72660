//! A task's container definition, its image's config and the run's
//! overrides, made into the runtime's container spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_rootfs::image::{resolve_command, ContainerConfig};
use berth_runtime::{ContainerSpec, Mount, NamespaceJoin, Resources, Rlimit};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{EcsError, EcsResult};
use crate::model::{ContainerDefinition, LaunchType, TaskDefinition};

/// `run-task --overrides` for one container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Vec<crate::model::taskdef_types::KeyValue>,
    #[serde(default)]
    pub cpu: Option<u64>,
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub memory_reservation: Option<u64>,
}

pub fn overrides_for(overrides: &Value, name: &str) -> ContainerOverride {
    serde_json::from_value::<Vec<ContainerOverride>>(overrides["containerOverrides"].clone())
        .unwrap_or_default()
        .into_iter()
        .find(|o| o.name == name)
        .unwrap_or_default()
}

/// Where a task's volume lives on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeDir {
    /// A host directory (`host.sourcePath`, EC2 only), used as it is.
    Host(PathBuf),
    /// A scratch directory of the task, to be made: a direct child of the
    /// task's volumes directory.
    Scratch(PathBuf),
}

impl VolumeDir {
    pub fn path(&self) -> &Path {
        match self {
            Self::Host(p) | Self::Scratch(p) => p,
        }
    }
}

/// The host directory of each of `td`'s volumes, scratch ones under
/// `base`. The definition is checked for `launch_type` first, so one that
/// skipped registration cannot name a path outside `base` or a host
/// volume on Fargate. Pure: makes nothing.
pub fn volume_dirs(
    td: &TaskDefinition,
    launch_type: &LaunchType,
    base: &Path,
) -> EcsResult<BTreeMap<String, VolumeDir>> {
    crate::taskdef::check_launch(td, launch_type)?;
    let mut out = BTreeMap::new();
    for (i, v) in td.volumes.iter().enumerate() {
        let dir =
            match v.host_path() {
                Some(p) => VolumeDir::Host(PathBuf::from(p)),
                None => VolumeDir::Scratch(crate::names::child(base, &v.name).map_err(|e| {
                    EcsError::client(format!("volumes[{i}].name: {:?}: {e}", v.name))
                })?),
            };
        out.insert(v.name.clone(), dir);
    }
    Ok(out)
}

/// `run-task --overrides`: well-formed, naming the definition's
/// containers, and within the bounds registration sets. Checked at
/// run-task, so that what [`overrides_for`] reads later is sound.
pub fn check_overrides(overrides: &Value, defs: &[ContainerDefinition]) -> EcsResult<()> {
    let list = &overrides["containerOverrides"];
    if list.is_null() {
        return Ok(());
    }
    let parsed: Vec<ContainerOverride> = serde_json::from_value(list.clone())
        .map_err(|e| EcsError::invalid(format!("overrides.containerOverrides: {e}")))?;
    for (i, o) in parsed.iter().enumerate() {
        let path = format!("overrides.containerOverrides[{i}]");
        if !defs.iter().any(|d| d.name == o.name) {
            return Err(EcsError::invalid(format!(
                "{path}.name: {:?} is not a container in the task definition",
                o.name
            )));
        }
        crate::taskdef::container_size_bounds(&path, o.cpu, o.memory, o.memory_reservation)
            .map_err(EcsError::invalid)?;
    }
    Ok(())
}

/// The image's environment with later entries replacing same keys.
pub fn merge_env(base: &[String], ours: &[String]) -> Vec<String> {
    let key = |e: &String| e.split('=').next().unwrap_or_default().to_string();
    let mut out: Vec<String> = base
        .iter()
        .filter(|e| !ours.iter().any(|o| key(o) == key(e)))
        .cloned()
        .collect();
    out.extend(ours.iter().cloned());
    out
}

/// A container's own (network, ipc, uts) namespace files.
pub type OwnNamespaces = (Option<PathBuf>, Option<PathBuf>, Option<PathBuf>);

/// Where a task's containers meet: shared namespaces and volumes.
pub struct TaskContext {
    /// Bridge mode: a container's own (network, ipc, uts) namespaces, in
    /// place of the task's.
    pub per_container: BTreeMap<String, OwnNamespaces>,
    pub hostname: String,
    /// None: the host's network (ECS's host mode).
    pub network_ns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    pub uts_ns: Option<PathBuf>,
    /// Volume name → host directory.
    pub volumes: BTreeMap<String, PathBuf>,
    /// Each container's own mountPoints, for `volumesFrom`.
    pub mount_points: BTreeMap<String, Vec<Value>>,
    /// The task's /etc/hosts and /etc/resolv.conf, mounted into each
    /// container.
    pub etc_files: Vec<(PathBuf, String)>,
    /// Each container's environment files and secrets, resolved when the
    /// task started (none: the container has neither).
    pub extra_env: BTreeMap<String, crate::secrets::env_files::ExtraEnv>,
}

/// Each container's `mountPoints`, by container name.
pub fn mount_points(td: &TaskDefinition) -> BTreeMap<String, Vec<Value>> {
    td.container_definitions
        .iter()
        .map(|c| (c.name.clone(), c.mount_points.clone()))
        .collect()
}

/// The task's /etc/hosts: localhost, the task's own name and its
/// containers' names on its address, and every container's extraHosts.
/// In bridge mode each container has its own address (`addresses`), and
/// `links` aliases go with the names they link to.
pub fn hosts_file(
    hostname: &str,
    address: Option<&str>,
    addresses: &BTreeMap<String, String>,
    defs: &[ContainerDefinition],
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if addresses.is_empty() {
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        out.push_str(&format!(
            "{}\t{hostname} {}\n",
            address.unwrap_or("127.0.1.1"),
            names.join(" ")
        ));
    } else {
        for (name, ip) in addresses {
            let mut names = vec![name.as_str()];
            for link in defs.iter().flat_map(|d| &d.links) {
                if let Some((target, alias)) = link.split_once(':') {
                    if target == name && !names.contains(&alias) {
                        names.push(alias);
                    }
                }
            }
            out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    for d in defs {
        for h in &d.extra_hosts {
            out.push_str(&format!("{}\t{}\n", h.ip_address, h.hostname));
        }
    }
    out
}

/// The task's /etc/resolv.conf: the host's, unless a container names DNS
/// servers or search domains.
pub fn resolv_conf(host: &str, defs: &[ContainerDefinition]) -> String {
    let servers: Vec<&String> = defs.iter().flat_map(|d| &d.dns_servers).collect();
    let search: Vec<&String> = defs.iter().flat_map(|d| &d.dns_search_domains).collect();
    if servers.is_empty() && search.is_empty() {
        return host.to_string();
    }
    let mut out = String::new();
    if !search.is_empty() {
        let s: Vec<&str> = search.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("search {}\n", s.join(" ")));
    }
    if servers.is_empty() {
        out.extend(
            host.lines()
                .filter(|l| l.starts_with("nameserver"))
                .map(|l| format!("{l}\n")),
        );
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out
}

/// The runtime's spec of container `def` of a task: the image's config
/// under the definition and the run-task override, in the task's context.
pub fn container_spec(
    def: &ContainerDefinition,
    image: &ContainerConfig,
    ov: &ContainerOverride,
    ctx: &TaskContext,
) -> EcsResult<ContainerSpec> {
    let command = ov.command.clone().or_else(|| def.command.clone());
    let args = resolve_command(image, def.entry_point.as_deref(), command.as_deref());
    if args.is_empty() {
        return Err(EcsError::client(format!(
            "container {:?}: neither the definition nor its image names a command",
            def.name
        )));
    }
    let environment: Vec<(String, String)> = def
        .environment
        .iter()
        .chain(ov.environment.iter())
        .map(|kv| (kv.name.clone(), kv.value.clone()))
        .collect();
    // ECS's precedence: environment files, then environment (and the
    // run's overrides), then secrets.
    let extra = ctx.extra_env.get(&def.name).cloned().unwrap_or_default();
    let ours = crate::secrets::env_files::layer(&extra.files, &environment, &extra.secrets);
    let env = merge_env(image.env.as_deref().unwrap_or_default(), &ours);
    let own = ctx.per_container.get(&def.name);
    let (join_namespaces, host_namespaces) = namespaces(own, ctx);
    Ok(ContainerSpec {
        args,
        env,
        cwd: def
            .working_directory
            .clone()
            .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty())),
        user: def
            .user
            .clone()
            .or_else(|| image.user.clone().filter(|u| !u.is_empty())),
        hostname: Some(def.hostname.clone().unwrap_or_else(|| {
            if own.is_some() {
                crate::names::hostname(&def.name)
            } else {
                ctx.hostname.clone()
            }
        })),
        rlimits: rlimits(def),
        cap_add: def.cap_add().to_vec(),
        cap_drop: def.cap_drop().to_vec(),
        no_new_privileges: crate::taskdef::no_new_privileges(def),
        read_only_root: def.readonly_root_filesystem.unwrap_or(false),
        privileged: def.privileged.unwrap_or(false),
        sysctls: sysctls(def),
        mounts: mounts(def, ctx)?,
        join_namespaces,
        host_namespaces,
        resources: Resources {
            cpu_units: ov.cpu.or((def.cpu > 0).then_some(def.cpu)),
            memory_mib: ov.memory.or(def.memory),
            memory_reservation_mib: ov.memory_reservation.or(def.memory_reservation),
            ..Default::default()
        },
        stop_signal: image.stop_signal.clone(),
        ..Default::default()
    })
}

/// `ulimits` as the runtime's rlimits (registration checked their shape).
fn rlimits(def: &ContainerDefinition) -> Vec<Rlimit> {
    def.ulimits
        .iter()
        .flatten()
        .filter_map(|u| {
            Some(Rlimit {
                name: u.get("name")?.as_str()?.to_string(),
                soft: u.get("softLimit")?.as_u64()?,
                hard: u.get("hardLimit")?.as_u64()?,
            })
        })
        .collect()
}

/// `systemControls` as (sysctl, value) pairs.
fn sysctls(def: &ContainerDefinition) -> BTreeMap<String, String> {
    def.system_controls
        .iter()
        .filter_map(|s| {
            Some((
                s.get("namespace")?.as_str()?.to_string(),
                s.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Its own mount points, then those of the containers it takes volumes
/// from (read-only when it says so), each bound from the task's volume
/// directory; then the task's /etc files.
fn mounts(def: &ContainerDefinition, ctx: &TaskContext) -> EcsResult<Vec<Mount>> {
    let mut points: Vec<Value> = def.mount_points.clone();
    for (i, from) in def.volumes_from.iter().enumerate() {
        let source = from
            .get("sourceContainer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let theirs = ctx.mount_points.get(source).ok_or_else(|| {
            EcsError::client(format!(
                "container {:?}: volumesFrom[{i}].sourceContainer: no container named {source:?}",
                def.name
            ))
        })?;
        let read_only = from
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for mp in theirs {
            let mut mp = mp.clone();
            if read_only {
                mp["readOnly"] = Value::Bool(true);
            }
            points.push(mp);
        }
    }
    let mut mounts = Vec::new();
    for (i, mp) in points.iter().enumerate() {
        let source = mp
            .get("sourceVolume")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dest = mp
            .get("containerPath")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dir = ctx.volumes.get(source).ok_or_else(|| {
            EcsError::client(format!(
                "container {:?}: mountPoints[{i}].sourceVolume: no volume named {source:?} in the task definition",
                def.name
            ))
        })?;
        mounts.push(Mount::Bind {
            source: dir.clone(),
            destination: dest.to_string(),
            read_only: mp.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    for (source, dest) in &ctx.etc_files {
        mounts.push(Mount::Bind {
            source: source.clone(),
            destination: dest.clone(),
            read_only: false,
        });
    }
    Ok(mounts)
}

/// The namespaces a container joins (the task's, or its own in bridge
/// mode) and those it shares with the host (the network, when the task
/// has no network namespace: host mode).
fn namespaces(own: Option<&OwnNamespaces>, ctx: &TaskContext) -> (Vec<NamespaceJoin>, Vec<String>) {
    let network_ns = own.map_or(ctx.network_ns.clone(), |o| o.0.clone());
    let (ipc_ns, uts_ns) = own.map_or((ctx.ipc_ns.clone(), ctx.uts_ns.clone()), |o| {
        (o.1.clone(), o.2.clone())
    });
    let host_namespaces = if network_ns.is_none() {
        vec!["network".to_string()]
    } else {
        vec![]
    };
    let join = [("network", network_ns), ("ipc", ipc_ns), ("uts", uts_ns)]
        .into_iter()
        .filter_map(|(kind, path)| {
            Some(NamespaceJoin {
                kind: kind.into(),
                path: path?,
            })
        })
        .collect();
    (join, host_namespaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: Value) -> ContainerDefinition {
        serde_json::from_value(v).expect("def")
    }

    fn td(v: Value) -> TaskDefinition {
        serde_json::from_value(v).expect("td")
    }

    #[test]
    fn volumes_stay_under_their_base_even_unregistered() {
        let base = Path::new("/run/berth/tasks/t/volumes");
        let with = |volume: Value| {
            td(serde_json::json!({
                "family": "f", "volumes": [volume], "networkMode": "awsvpc",
                "cpu": "256", "memory": "512",
                "containerDefinitions": [{ "name": "a", "image": "i", "memory": 8 }],
            }))
        };
        let dirs = volume_dirs(
            &with(serde_json::json!({ "name": "data" })),
            &LaunchType::Ec2,
            base,
        )
        .expect("a scratch volume");
        assert_eq!(dirs["data"], VolumeDir::Scratch(base.join("data")));
        let host = with(serde_json::json!({ "name": "h", "host": { "sourcePath": "/srv" } }));
        assert_eq!(
            volume_dirs(&host, &LaunchType::Ec2, base).expect("EC2")["h"],
            VolumeDir::Host("/srv".into())
        );
        let e = volume_dirs(&host, &LaunchType::Fargate, base).expect_err("Fargate");
        assert!(e.message.contains("volumes[0].host.sourcePath"), "{e}");
        for name in ["/", "..", "../../../../etc", "a/b", "", "a\0"] {
            let e = volume_dirs(
                &with(serde_json::json!({ "name": name })),
                &LaunchType::Ec2,
                base,
            )
            .expect_err(name);
            assert!(e.message.starts_with("volumes[0].name: "), "{name:?}: {e}");
        }
    }

    /// A task context with nothing but `per_container`.
    fn bare_context(per_container: BTreeMap<String, OwnNamespaces>) -> TaskContext {
        TaskContext {
            per_container,
            hostname: "h".into(),
            network_ns: None,
            ipc_ns: None,
            uts_ns: None,
            volumes: BTreeMap::new(),
            mount_points: BTreeMap::new(),
            etc_files: Vec::new(),
            extra_env: BTreeMap::new(),
        }
    }

    #[test]
    fn security_options_and_capabilities_reach_the_spec() {
        let image = ContainerConfig::default();
        let ctx = bare_context(BTreeMap::new());
        let d = def(serde_json::json!({
            "name": "a", "image": "i", "command": ["true"],
            "dockerSecurityOptions": ["no-new-privileges"],
            "linuxParameters": { "capabilities": { "add": ["SYS_PTRACE"], "drop": ["NET_RAW"] } },
        }));
        let spec = container_spec(&d, &image, &ContainerOverride::default(), &ctx).expect("spec");
        assert!(spec.no_new_privileges);
        assert_eq!(spec.cap_add, ["SYS_PTRACE"]);
        assert_eq!(spec.cap_drop, ["NET_RAW"]);
        let plain = def(serde_json::json!({ "name": "a", "image": "i", "command": ["true"] }));
        let spec =
            container_spec(&plain, &image, &ContainerOverride::default(), &ctx).expect("spec");
        assert!(!spec.no_new_privileges);
    }

    #[test]
    fn overrides_are_checked_naming_the_field() {
        let defs = [def(serde_json::json!({ "name": "a", "image": "i" }))];
        let ok = serde_json::json!({ "containerOverrides": [{ "name": "a", "cpu": 512 }] });
        check_overrides(&ok, &defs).expect("valid");
        check_overrides(&Value::Null, &defs).expect("none");
        let cases = [
            (
                serde_json::json!({ "containerOverrides": [{ "name": "b" }] }),
                "containerOverrides[0].name",
            ),
            (
                serde_json::json!({ "containerOverrides": [{ "name": "a", "cpu": u64::MAX }] }),
                "containerOverrides[0].cpu",
            ),
            (
                serde_json::json!({ "containerOverrides": [{ "name": "a", "memory": 1u64 << 63 }] }),
                "containerOverrides[0].memory",
            ),
            (
                serde_json::json!({ "containerOverrides": "x" }),
                "overrides.containerOverrides",
            ),
        ];
        for (ov, needle) in cases {
            let e = check_overrides(&ov, &defs)
                .expect_err("refused")
                .to_string();
            assert!(e.contains(needle), "{ov}: {e}");
        }
    }

    /// Found by the taskdef_spec fuzz target: in bridge mode a container's
    /// hostname is its name, and ECS allows names (255) longer than a
    /// hostname (64), so every such task failed to start.
    #[test]
    fn a_long_container_name_makes_a_hostname_that_fits() {
        let name = "c".repeat(255);
        let d = def(serde_json::json!({ "name": name, "image": "i" }));
        let ctx = bare_context([(name.clone(), (None, None, None))].into());
        let image = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let spec = container_spec(&d, &image, &ContainerOverride::default(), &ctx).expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some(&name[..63]));
    }

    #[test]
    fn names_files() {
        let defs = [
            def(
                serde_json::json!({ "name": "web", "image": "i", "extraHosts": [{ "hostname": "db", "ipAddress": "10.0.0.9" }] }),
            ),
            def(
                serde_json::json!({ "name": "side", "image": "i", "dnsServers": ["10.0.0.53"], "dnsSearchDomains": ["lab"] }),
            ),
        ];
        let hosts = hosts_file("abc123", Some("10.88.0.2"), &BTreeMap::new(), &defs);
        let bridged: BTreeMap<String, String> =
            [("web".to_string(), "10.88.0.5".to_string())].into();
        assert!(hosts_file("x", None, &bridged, &defs).contains("10.88.0.5\tweb\n"));
        let linking = [
            defs[0].clone(),
            def(serde_json::json!({ "name": "app", "image": "i", "links": ["web:www"] })),
        ];
        assert!(hosts_file("x", None, &bridged, &linking).contains("10.88.0.5\tweb www\n"));
        assert!(hosts.contains("10.88.0.2\tabc123 web side\n"), "{hosts}");
        assert!(hosts.contains("10.0.0.9\tdb\n"));
        let host = "nameserver 1.1.1.1\noptions ndots:1\n";
        assert_eq!(resolv_conf(host, &defs[..1]), host);
        assert_eq!(
            resolv_conf(host, &defs),
            "search lab\nnameserver 10.0.0.53\n"
        );
    }
}

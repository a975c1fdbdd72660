//! Prepare: the task's images, namespaces, network plug-in, port mappings,
//! cgroup, volumes and /etc files, before any container starts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_rootfs::image::Image;
use berth_rootfs::pull::{self, PullOptions, Quiet};
use berth_rootfs::{ContentStore, Reference};
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{cgroups, Resources};

use super::Supervisor;
use crate::containerize::{hosts_file, resolv_conf, volume_dirs, TaskContext, VolumeDir};
use crate::model::{NetworkMode, Task, TaskDefinition};
use crate::names;

impl Supervisor<'_> {
    /// The task's volumes (containerize::volume_dirs, which checks the
    /// definition again: one written to the store without registration
    /// must not mount anything outside the task's volumes directory
    /// either), scratch ones made.
    pub(super) fn make_volumes(
        &self,
        td: &TaskDefinition,
        task: &Task,
    ) -> Result<BTreeMap<String, PathBuf>, String> {
        let base = self.args.task_dir().join("volumes");
        let dirs = volume_dirs(td, &task.launch_type, &base).map_err(|e| e.to_string())?;
        let mut volumes = BTreeMap::new();
        for (name, dir) in dirs {
            if let VolumeDir::Scratch(d) = &dir {
                std::fs::create_dir_all(d).map_err(|e| format!("volume {name}: {e}"))?;
            }
            volumes.insert(name, dir.path().to_path_buf());
        }
        Ok(volumes)
    }

    /// Namespaces, cgroup and scratch volumes of the task.
    pub(super) fn prepare_task(
        &mut self,
        td: &TaskDefinition,
        task: &Task,
    ) -> Result<TaskContext, String> {
        let host_network = td.network_mode == Some(NetworkMode::Host);
        let hostname: String = task
            .task_arn
            .rsplit('/')
            .next()
            .unwrap_or("task")
            .chars()
            .take(12)
            .collect();
        let ns =
            SharedNamespaces::create(&self.args.task_dir().join("ns"), !host_network, &hostname)
                .map_err(|e| e.to_string())?;
        self.namespaces = Some(ns.clone());
        if let Some(net) = task.berth.as_ref().and_then(|b| b.network.clone()) {
            let netns = ns
                .path("network")
                .ok_or("the task has no network namespace")?;
            self.network = Some(net.clone());
            plug_in(&netns, &net)?;
            self.set(|t| {
                for a in &mut t.attachments {
                    a["status"] = "ATTACHED".into();
                }
            });
        }
        // Bridge mode: each container its own namespaces, on the bridge.
        let container_nets = task
            .berth
            .as_ref()
            .map(|b| b.container_networks.clone())
            .unwrap_or_default();
        let mut per_container = BTreeMap::new();
        for cn in &container_nets {
            let dir = self.args.container_ns_dir(&cn.container);
            let cns = SharedNamespaces::create(&dir, true, &names::hostname(&cn.container))
                .map_err(|e| e.to_string())?;
            self.container_namespaces.push(cns.clone());
            let netns = cns.path("network").ok_or("no network namespace")?;
            self.links.push(cn.network.clone());
            plug_in(&netns, &cn.network)?;
            per_container.insert(
                cn.container.clone(),
                (Some(netns), cns.path("ipc"), cns.path("uts")),
            );
        }
        // Port mappings: to the task's address (awsvpc) or the container's.
        let ports = task
            .berth
            .as_ref()
            .map(|b| b.host_ports.clone())
            .unwrap_or_default();
        let target = |container: &str| -> Option<crate::model::TaskNetwork> {
            container_nets
                .iter()
                .find(|cn| cn.container == container)
                .map(|cn| cn.network.clone())
                .or_else(|| self.network.clone())
        };
        let mut table_made = false;
        for hp in &ports {
            let Some(net) = target(&hp.container) else {
                continue; // host mode: the container binds the port itself
            };
            // One table for the network, made once for all the mappings.
            if !table_made {
                let subnet: berth_net::Subnet = format!("{}/{}", net.address, net.prefix)
                    .parse()
                    .map_err(|e: berth_net::Error| e.to_string())?;
                berth_net::nat::ensure_table(&net.bridge, &subnet).map_err(|e| e.to_string())?;
                table_made = true;
            }
            berth_net::nat::add_mapping(
                &net.bridge,
                &hp.protocol,
                hp.host_port,
                &net.address,
                hp.container_port,
            )
            .map_err(|e| format!("map port {}/{}: {e}", hp.host_port, hp.protocol))?;
            self.host_ports.push(hp.clone());
        }
        // What ECS shows of the mappings.
        let bindings = task
            .berth
            .as_ref()
            .map(|b| b.host_ports.clone())
            .unwrap_or_default();
        if !bindings.is_empty() {
            self.set(|t| {
                for c in &mut t.containers {
                    c.network_bindings = bindings
                        .iter()
                        .filter(|hp| hp.container == c.name)
                        .map(|hp| {
                            serde_json::json!({
                                "bindIP": "0.0.0.0",
                                "containerPort": hp.container_port,
                                "hostPort": hp.host_port,
                                "protocol": hp.protocol,
                            })
                        })
                        .collect();
                }
            });
        }
        let resources = Resources {
            cpu_units: td.cpu.as_deref().and_then(|c| c.parse().ok()),
            memory_mib: td.memory.as_deref().and_then(|m| m.parse().ok()),
            ..Default::default()
        };
        cgroups::create_parent(&self.cgroup, &resources)?;
        let volumes = self.make_volumes(td, task)?;
        let etc = self.args.task_dir().join("etc");
        std::fs::create_dir_all(&etc).map_err(|e| format!("create {}: {e}", etc.display()))?;
        let address = task
            .berth
            .as_ref()
            .and_then(|b| b.network.as_ref())
            .map(|n| n.address.clone());
        let hosts = etc.join("hosts");
        let addresses: BTreeMap<String, String> = container_nets
            .iter()
            .map(|cn| (cn.container.clone(), cn.network.address.clone()))
            .collect();
        std::fs::write(
            &hosts,
            hosts_file(
                &hostname,
                address.as_deref(),
                &addresses,
                &td.container_definitions,
            ),
        )
        .map_err(|e| format!("write {}: {e}", hosts.display()))?;
        let resolv = etc.join("resolv.conf");
        let host_resolv = crate::resolv::task_base(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            std::fs::read_to_string(crate::resolv::SYSTEMD_RESOLV_CONF)
                .ok()
                .as_deref(),
            host_network,
        );
        std::fs::write(
            &resolv,
            resolv_conf(&host_resolv, &td.container_definitions),
        )
        .map_err(|e| format!("write {}: {e}", resolv.display()))?;
        Ok(TaskContext {
            per_container,
            etc_files: vec![
                (hosts, "/etc/hosts".into()),
                (resolv, "/etc/resolv.conf".into()),
            ],
            hostname,
            network_ns: ns.path("network"),
            ipc_ns: ns.path("ipc"),
            uts_ns: ns.path("uts"),
            volumes,
            mount_points: crate::containerize::mount_points(td),
        })
    }
}

/// Plug the namespace at `netns` into the network `net` describes (making
/// its bridge on first use).
pub(super) fn plug_in(
    netns: &std::path::Path,
    net: &crate::model::TaskNetwork,
) -> Result<(), String> {
    let parse = |a: &str| {
        a.parse::<std::net::Ipv4Addr>()
            .map_err(|e| format!("{a}: {e}"))
    };
    let (address, gateway) = (parse(&net.address)?, parse(&net.gateway)?);
    berth_net::ensure_bridge(&net.bridge, gateway, net.prefix).map_err(|e| e.to_string())?;
    berth_net::attach(
        netns,
        &net.bridge,
        &net.host_ifname,
        address,
        net.prefix,
        gateway,
    )
    .map_err(|e| e.to_string())
}

/// The image a container names: from the store, pulled when missing.
pub(super) fn ensure_image(store: &ContentStore, image: &str) -> Result<Image, String> {
    let reference: Reference = image.parse().map_err(|e| format!("{e}"))?;
    let name = reference.to_string();
    match Image::load(store, &name) {
        Ok(i) => Ok(i),
        Err(berth_rootfs::Error::ImageNotFound(_)) => {
            let opts = PullOptions {
                insecure_registries: std::env::var("BERTH_INSECURE_REGISTRIES")
                    .map(|v| {
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                max_concurrent_downloads: 4,
                ..Default::default()
            };
            pull::pull_blocking(store, &reference, &opts, std::sync::Arc::new(Quiet))
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

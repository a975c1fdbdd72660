//! Prepare: the task's images, namespaces, network plug-in, port mappings,
//! cgroup, volumes and /etc files, before any container starts. Kernel and
//! file work only: what the store is told goes through [`super::record`].

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use berth_rootfs::image::Image;
use berth_rootfs::pull::{self, PullOptions, Quiet};
use berth_rootfs::{ContentStore, Reference};
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{cgroups, Resources};

use super::error::TaskError;
use super::secrets::RegistryCredentials;
use super::{rules, Supervisor};
use crate::agent_config::PullBehavior;
use crate::containerize::{
    hosts_file, resolv_conf, volume_dirs, OwnNamespaces, TaskContext, VolumeDir,
};
use crate::model::{ContainerNetwork, NetworkMode, Task, TaskDefinition, TaskNetwork};
use crate::names;

/// A failure to make the task's resources: its text as the step said it.
fn init(e: impl Display) -> TaskError {
    TaskError::ResourceInitialization(e.to_string())
}

impl Supervisor<'_> {
    /// Every container's image, from the store or pulled (PENDING meanwhile).
    pub(super) fn pull_images(
        &mut self,
        td: &TaskDefinition,
    ) -> Result<BTreeMap<String, Image>, TaskError> {
        // Registry credentials first: a secret that cannot be read stops
        // the task before anything is pulled.
        let credentials = self.registry_credentials(td)?;
        let started = crate::ecs::now();
        // PULLING is recorded when a pull begins; a task whose images are
        // all in the store records its pull times once, at the end.
        let mut pulling = false;
        let images = ContentStore::open(self.args.state_root.join("images"))?;
        let mut configs = BTreeMap::new();
        for c in &td.container_definitions {
            let before_pull = || {
                if !std::mem::replace(&mut pulling, true) {
                    self.record_pulling();
                }
            };
            let (image, pulled) = ensure_image(
                &images,
                &c.image,
                credentials.get(&c.name),
                self.args.pull,
                before_pull,
            )
            .map_err(TaskError::CannotPull)?;
            match pulled {
                // `once` asks whether it was ever pulled: recorded now.
                ImageUse::Pulled(name) => record_use(&images, &name, true),
                // Only its time, once the task runs (Supervisor::supervise).
                ImageUse::Cached(name) => self.image_uses.push(name),
            }
            configs.insert(c.name.clone(), image);
        }
        self.images = Some(images);
        if pulling {
            self.record_pulled();
        } else {
            self.record_pull_times(started);
        }
        Ok(configs)
    }

    /// Record the use of the images the task found in the store.
    pub(super) fn record_image_uses(&mut self) {
        if let Some(images) = &self.images {
            for name in std::mem::take(&mut self.image_uses) {
                record_use(images, &name, false);
            }
        }
    }

    /// Namespaces, network, port mappings, cgroup, scratch volumes and
    /// /etc files of the task: what its containers start into.
    pub(super) fn prepare_task(
        &mut self,
        td: &TaskDefinition,
        task: &Task,
    ) -> Result<TaskContext, TaskError> {
        // First: a secret that cannot be read stops the task before
        // anything is made for it.
        let extra_env = self.resolve_extra_env(td)?;
        let host_network = td.network_mode == Some(NetworkMode::Host);
        let hostname = rules::hostname(&task.task_arn);
        let ns = self.make_task_namespaces(task, host_network, &hostname)?;
        let container_nets = task
            .berth
            .as_ref()
            .map(|b| b.container_networks.clone())
            .unwrap_or_default();
        let per_container = self.make_container_namespaces(&container_nets)?;
        self.map_ports(task, &container_nets)?;
        let resources = Resources {
            cpu_units: td.cpu.as_deref().and_then(|c| c.parse().ok()),
            memory_mib: td.memory.as_deref().and_then(|m| m.parse().ok()),
            ..Default::default()
        };
        cgroups::create_parent(&self.cgroup, &resources).map_err(init)?;
        let volumes = self.make_volumes(td, task)?;
        let etc_files = self.write_etc(td, task, &container_nets, &hostname, host_network)?;
        Ok(TaskContext {
            per_container,
            etc_files,
            hostname,
            network_ns: ns.path("network"),
            ipc_ns: ns.path("ipc"),
            uts_ns: ns.path("uts"),
            volumes,
            mount_points: crate::containerize::mount_points(td),
            extra_env,
        })
    }

    /// The task's own namespaces (a network one unless host mode), plugged
    /// into its network when it has one (awsvpc).
    fn make_task_namespaces(
        &mut self,
        task: &Task,
        host_network: bool,
        hostname: &str,
    ) -> Result<SharedNamespaces, TaskError> {
        let ns =
            SharedNamespaces::create(&self.args.task_dir().join("ns"), !host_network, hostname)
                .map_err(init)?;
        self.namespaces = Some(ns.clone());
        if let Some(net) = task.berth.as_ref().and_then(|b| b.network.clone()) {
            let netns = ns
                .path("network")
                .ok_or_else(|| init("the task has no network namespace"))?;
            self.network = Some(net.clone());
            plug_in(&self.args.bridge_locks(), &netns, &net)?;
            self.record_attached();
        }
        Ok(ns)
    }

    /// Bridge mode: each container its own namespaces, on the bridge.
    fn make_container_namespaces(
        &mut self,
        container_nets: &[ContainerNetwork],
    ) -> Result<BTreeMap<String, OwnNamespaces>, TaskError> {
        let mut per_container = BTreeMap::new();
        for cn in container_nets {
            let dir = self.args.container_ns_dir(&cn.container);
            let cns = SharedNamespaces::create(&dir, true, &names::hostname(&cn.container))
                .map_err(init)?;
            self.container_namespaces.push(cns.clone());
            let netns = cns
                .path("network")
                .ok_or_else(|| init("no network namespace"))?;
            self.links.push(cn.network.clone());
            plug_in(&self.args.bridge_locks(), &netns, &cn.network)?;
            per_container.insert(
                cn.container.clone(),
                (Some(netns), cns.path("ipc"), cns.path("uts")),
            );
        }
        Ok(per_container)
    }

    /// Port mappings: to the task's address (awsvpc) or the container's
    /// (bridge); then what ECS shows of them.
    fn map_ports(
        &mut self,
        task: &Task,
        container_nets: &[ContainerNetwork],
    ) -> Result<(), TaskError> {
        let ports = task
            .berth
            .as_ref()
            .map(|b| b.host_ports.clone())
            .unwrap_or_default();
        let target = |container: &str| -> Option<TaskNetwork> {
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
                    .map_err(init)?;
                berth_net::nat::ensure_table(&net.bridge, &subnet).map_err(init)?;
                table_made = true;
            }
            berth_net::nat::add_mapping(
                &net.bridge,
                &hp.protocol,
                hp.host_port,
                &net.address,
                hp.container_port,
            )
            .map_err(|e| init(format!("map port {}/{}: {e}", hp.host_port, hp.protocol)))?;
            self.host_ports.push(hp.clone());
        }
        if !ports.is_empty() {
            self.record_bindings(&ports);
        }
        Ok(())
    }

    /// The task's volumes (containerize::volume_dirs, which checks the
    /// definition again: one written to the store without registration
    /// must not mount anything outside the task's volumes directory
    /// either), scratch ones made.
    fn make_volumes(
        &self,
        td: &TaskDefinition,
        task: &Task,
    ) -> Result<BTreeMap<String, PathBuf>, TaskError> {
        let base = self.args.task_dir().join("volumes");
        let dirs = volume_dirs(td, &task.launch_type, &base).map_err(init)?;
        let mut volumes = BTreeMap::new();
        for (name, dir) in dirs {
            if let VolumeDir::Scratch(d) = &dir {
                std::fs::create_dir_all(d).map_err(|e| init(format!("volume {name}: {e}")))?;
            }
            volumes.insert(name, dir.path().to_path_buf());
        }
        Ok(volumes)
    }

    /// The task's /etc/hosts and /etc/resolv.conf, bound into each container.
    fn write_etc(
        &self,
        td: &TaskDefinition,
        task: &Task,
        container_nets: &[ContainerNetwork],
        hostname: &str,
        host_network: bool,
    ) -> Result<Vec<(PathBuf, String)>, TaskError> {
        let etc = self.args.task_dir().join("etc");
        std::fs::create_dir_all(&etc)
            .map_err(|e| init(format!("create {}: {e}", etc.display())))?;
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
        let mut text = hosts_file(
            hostname,
            address.as_deref(),
            &addresses,
            &td.container_definitions,
        );
        // The cluster's services' names (service discovery): kept up to
        // date after this by each reconcile pass (`discovery_sync`).
        match self.ecs.discovery_hosts(&self.args.cluster) {
            Ok((block, true)) => text = crate::discovery::with_block(&text, &block),
            Ok(_) => {}
            Err(e) => tracing::warn!("service discovery names: {e}"),
        }
        std::fs::write(&hosts, text)
            .map_err(|e| init(format!("write {}: {e}", hosts.display())))?;
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
        .map_err(|e| init(format!("write {}: {e}", resolv.display())))?;
        Ok(vec![
            (hosts, "/etc/hosts".into()),
            (resolv, "/etc/resolv.conf".into()),
        ])
    }
}

/// Plug the namespace at `netns` into the network `net` describes (making
/// its bridge on first use), under the bridge's lock in `locks`: a
/// supervisor removing the bridge as its last task stops waits for the
/// veth to be in, and then keeps the bridge.
fn plug_in(locks: &Path, netns: &Path, net: &TaskNetwork) -> Result<(), TaskError> {
    let parse = |a: &str| {
        a.parse::<std::net::Ipv4Addr>()
            .map_err(|e| init(format!("{a}: {e}")))
    };
    let (address, gateway) = (parse(&net.address)?, parse(&net.gateway)?);
    berth_net::plug_in(
        locks,
        netns,
        &net.bridge,
        &net.host_ifname,
        address,
        net.prefix,
        gateway,
    )
    .map_err(init)
}

/// The image a container names: from the store, or pulled as `behavior`
/// says (`ECS_IMAGE_PULL_BEHAVIOR`), with the container's registry
/// credentials if it has some (`before_pull` is called before a pull);
/// and whether it was pulled. The error is the text after
/// `CannotPullContainerError: `.
fn ensure_image(
    store: &ContentStore,
    image: &str,
    credentials: Option<&RegistryCredentials>,
    behavior: PullBehavior,
    before_pull: impl FnOnce(),
) -> Result<(Image, ImageUse), String> {
    let reference: Reference = image.parse().map_err(|e| format!("{e}"))?;
    let name = reference.to_string();
    let cached = match Image::load(store, &name) {
        Ok(i) => Some(i),
        Err(berth_rootfs::Error::ImageNotFound(_)) => None,
        Err(e) => return Err(e.to_string()),
    };
    let pulled_before = store
        .refs()
        .ok()
        .and_then(|refs| refs.get(&name).and_then(|e| e.pulled_at))
        .is_some();
    let pull = behavior.should_pull(cached.is_some(), pulled_before);
    let image = match cached {
        Some(image) if !pull => image,
        _ => {
            before_pull();
            pull_image(store, &reference, credentials)?
        }
    };
    Ok((
        image,
        if pull {
            ImageUse::Pulled(name)
        } else {
            ImageUse::Cached(name)
        },
    ))
}

/// How a task came by an image, by the image's name.
enum ImageUse {
    Pulled(String),
    Cached(String),
}

/// Record for image cleanup (least recently used first) and for `once`
/// that a task uses image `name`. Only bookkeeping: a task never fails
/// for it.
fn record_use(store: &ContentStore, name: &str, pulled: bool) {
    if let Err(e) = store.record_use(name, pulled) {
        tracing::warn!("record the use of image {name}: {e}");
    }
}

/// Pull `reference` into `store` from its registry.
fn pull_image(
    store: &ContentStore,
    reference: &Reference,
    credentials: Option<&RegistryCredentials>,
) -> Result<Image, String> {
    let opts = PullOptions {
        insecure_registries: std::env::var("BERTH_INSECURE_REGISTRIES")
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        credentials: credentials.map(|c| (c.username.clone(), c.password.clone())),
        max_concurrent_downloads: 4,
        ..Default::default()
    };
    pull::pull_blocking(store, reference, &opts, std::sync::Arc::new(Quiet))
        .map_err(|e| pull_error(e, credentials))
}

/// A pull's error as a task's reason: a registry that refused says which
/// credentials a task gives it (its `repositoryCredentials`), not the
/// CLI's flags.
fn pull_error(e: berth_rootfs::Error, credentials: Option<&RegistryCredentials>) -> String {
    match (e, credentials) {
        (berth_rootfs::Error::Unauthorized { image, url }, None) => format!(
            "pull {image}: {url}: 401 Unauthorized: the registry wants credentials; give the \
             container definition repositoryCredentials (a Secrets Manager secret holding \
             {{\"username\":…,\"password\":…}})"
        ),
        (berth_rootfs::Error::Unauthorized { image, url }, Some(c)) => format!(
            "pull {image}: {url}: 401 Unauthorized: the registry refused the username {:?} of \
             repositoryCredentials {}",
            c.username, c.secret
        ),
        (e, _) => e.to_string(),
    }
}

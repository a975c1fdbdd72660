//! Releasing what a task's supervisor made, whatever step it had reached
//! (or died at). Every resource is named from the task's record: the
//! runtime id `<task id>-<container>` of each container and of its root
//! filesystem, the task's run directory (namespace bind mounts, scratch
//! volumes, /etc files), its cgroup, its port mappings. So the supervisor's
//! own cleanup, a reaper of its orphan and `system gc` can each release a
//! task again: every step is idempotent, what is gone already is no error,
//! and a step that fails is reported rather than skipped over.

use std::path::Path;

use berth_rootfs::snapshot::Snapshotter;
use berth_rootfs::ContentStore;
use berth_runtime::namespaces::SharedNamespaces;
use berth_runtime::{cgroups, Runtime, RuntimeRoot};

use crate::model::Task;
use crate::names::runtime_id;
use crate::supervisor::SupervisorArgs;

/// What a release found and removed, and what it could not.
#[derive(Debug, Default)]
pub struct Released {
    pub removed: Vec<String>,
    pub failed: Vec<String>,
}

impl Released {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Whether port mappings are released too: only while the task still
/// holds its host ports (not STOPPED), as a STOPPED task's ports may
/// already map to another task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    Unmap,
    Keep,
}

/// Names in `dir` starting with `prefix` (none if `dir` is missing).
fn names_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Release every container, root filesystem, namespace, the cgroup and
/// the run directory of `task` (and with [`Ports::Unmap`] its port
/// mappings) and its links.
pub fn release(args: &SupervisorArgs, task: &Task, ports: Ports) -> Released {
    let mut out = Released::default();
    let task_id = task.id();
    let runtime = Runtime::new(RuntimeRoot::new(&args.runtime_root));
    // Each container of the record, and any other the runtime holds under
    // the task's prefix.
    let prefix = format!("{task_id}-");
    let mut ids: Vec<String> = task
        .containers
        .iter()
        .map(|c| runtime_id(task_id, &c.name))
        .collect();
    let containers_dir = runtime.root().containers_dir();
    let snapshots_dir = args.state_root.join("images").join("snapshots");
    for dir in [&containers_dir, &snapshots_dir] {
        ids.extend(names_with_prefix(dir, &prefix));
    }
    ids.sort();
    ids.dedup();
    let images = ContentStore::open(args.state_root.join("images"));
    for id in &ids {
        if containers_dir.join(id).exists() {
            match runtime.delete(id, true) {
                Ok(()) => out.removed.push(format!("container {id}")),
                Err(berth_runtime::Error::NotFound(_)) => {}
                Err(e) => {
                    // Its root filesystem may still be in use: kept.
                    out.failed.push(format!("delete container {id}: {e}"));
                    continue;
                }
            }
        }
        if snapshots_dir.join(id).exists() {
            let removed = match &images {
                Ok(images) => Snapshotter::new(images)
                    .remove(id)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("open the image store: {e}")),
            };
            match removed {
                Ok(()) => out.removed.push(format!("root filesystem {id}")),
                Err(e) => out.failed.push(format!("remove root filesystem {id}: {e}")),
            }
        }
    }
    if ports == Ports::Unmap {
        unmap(task, &mut out);
    }
    let task_dir = args.task_dir();
    for ns in names_with_prefix(&task_dir, "ns") {
        let ns = SharedNamespaces {
            dir: task_dir.join(ns),
        };
        match ns.remove() {
            Ok(()) => out.removed.push(format!("namespaces {}", ns.dir.display())),
            Err(e) => out.failed.push(format!("remove namespaces: {e}")),
        }
    }
    // A link normally goes with its namespace, but the kernel destroys a
    // network namespace asynchronously after its last user leaves, and a
    // link made just before its supervisor died may never have been moved
    // into one: each is deleted here, once no container of the task is
    // left to use it.
    if out.is_complete() {
        out.removed
            .extend(remove_links(task).into_iter().map(|l| format!("link {l}")));
    }
    let cgroup = args.cgroup();
    if cgroups::exists(&cgroup) {
        match cgroups::remove(&cgroup) {
            Ok(()) => out.removed.push(format!("cgroup {cgroup}")),
            Err(e) => out.failed.push(e),
        }
    }
    if task_dir.exists() {
        match std::fs::remove_dir_all(&task_dir) {
            Ok(()) => out
                .removed
                .push(format!("directory {}", task_dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out
                .failed
                .push(format!("remove {}: {e}", task_dir.display())),
        }
    }
    out
}

/// Remove the task's port mappings from its network's table: each host
/// port it holds maps to it alone. Ports already unmapped are no error.
fn unmap(task: &Task, out: &mut Released) {
    let Some(b) = &task.berth else { return };
    let net = b
        .network
        .as_ref()
        .or_else(|| b.container_networks.first().map(|cn| &cn.network));
    let Some(net) = net else { return };
    let mappings: Vec<(&str, u16)> = b
        .host_ports
        .iter()
        .filter(|hp| hp.host_port != 0)
        .map(|hp| (hp.protocol.as_str(), hp.host_port))
        .collect();
    if mappings.is_empty() {
        return;
    }
    if let Err(e) = berth_net::nat::remove_mappings(&net.bridge, &mappings) {
        out.failed.push(format!("unmap ports {mappings:?}: {e}"));
    }
}

/// The links of a task's network places (its own, awsvpc, or its
/// containers', bridge mode) that still exist, deleted.
fn remove_links(task: &Task) -> Vec<String> {
    let Some(b) = &task.berth else {
        return Vec::new();
    };
    let own = b.network.iter();
    own.chain(b.container_networks.iter().map(|cn| &cn.network))
        .filter(|net| {
            berth_net::link_exists(&net.host_ifname).unwrap_or(false)
                && berth_net::detach(&net.host_ifname).is_ok()
        })
        .map(|net| net.host_ifname.clone())
        .collect()
}

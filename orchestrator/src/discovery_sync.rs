//! Service discovery applied on this host, after each reconcile pass
//! (while its lease is held, so passes apply in order): each service
//! address's nftables tables (`berth_net::vip`, the load balancer's rules
//! with the service's in-service tasks as backends), the tables and
//! addresses of services that are gone, and berth's part of the /etc/hosts
//! of the cluster's tasks here. Kernel and file work only; what to apply is
//! `ecs::discovery`'s plan. Nothing stays resident: the kernel translates
//! and the tasks read their hosts files while no berth process runs.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::ecs::discovery::DiscoveryPlan;
use crate::ecs::Ecs;
use crate::error::{EcsError, EcsResult};
use crate::model::Task;

/// Bring `cluster`'s discovery in step with the store; `task_dir` says
/// where a task of this host keeps its /etc. A failure is logged: the next
/// pass tries again.
pub(crate) fn sync(ecs: &Ecs, cluster: &str, task_dir: impl Fn(&Task) -> PathBuf) {
    let outcome = ecs.discovery_plan(cluster).and_then(|plan| {
        apply_tables(ecs, &plan)?;
        rewrite_hosts(ecs, cluster, &plan, &task_dir)
    });
    if let Err(e) = outcome {
        tracing::warn!("service discovery of {cluster}: {e}");
    }
}

fn kernel(e: berth_net::Error) -> EcsError {
    EcsError::invalid(format!("service discovery: {e}"))
}

/// Each listener's table made or replaced; tables of ports a service no
/// longer serves and of services that are gone removed, then the gone
/// services' addresses given back.
fn apply_tables(ecs: &Ecs, plan: &DiscoveryPlan) -> EcsResult<()> {
    for l in &plan.listeners {
        berth_net::vip::apply(l.vip, l.port, &l.protocol, &l.backends).map_err(kernel)?;
    }
    if plan.held.is_empty() && plan.stale.is_empty() {
        return Ok(());
    }
    let wanted: BTreeSet<(Ipv4Addr, u16)> =
        plan.listeners.iter().map(|l| (l.vip, l.port)).collect();
    let stale: BTreeSet<Ipv4Addr> = plan.stale.iter().map(|(vip, _)| *vip).collect();
    for (vip, port) in berth_net::vip::tables().map_err(kernel)? {
        let unused = plan.held.contains(&vip) && !wanted.contains(&(vip, port));
        if unused || stale.contains(&vip) {
            berth_net::vip::remove(vip, port).map_err(kernel)?;
        }
    }
    for (vip, revision) in &plan.stale {
        ecs.free_vip(*vip, *revision)?;
    }
    Ok(())
}

/// berth's part of the hosts file of each of the cluster's tasks on this
/// host, rewritten where it changed. In place, not by rename: the file is
/// bind-mounted into the containers, and a mount keeps the inode it was
/// made with (Docker rewrites its /etc/hosts in place too).
fn rewrite_hosts(
    ecs: &Ecs,
    cluster: &str,
    plan: &DiscoveryPlan,
    task_dir: &impl Fn(&Task) -> PathBuf,
) -> EcsResult<()> {
    for task in ecs.local_tasks(cluster)? {
        if task.is_stopped() {
            continue;
        }
        let path = task_dir(&task).join("etc").join("hosts");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not prepared yet: its supervisor writes it whole
        };
        if !plan.any_names && !text.contains(crate::discovery::HOSTS_MARK) {
            continue;
        }
        let new = crate::discovery::with_block(&text, &plan.hosts);
        if new != text {
            write_in_place(&path, &new).map_err(|e| {
                EcsError::invalid(format!("service discovery: write {}: {e}", path.display()))
            })?;
        }
    }
    Ok(())
}

/// One write of the whole text over the file's own inode.
fn write_in_place(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

//! `berth system gc`: find and release what crashes left behind, whatever
//! step a supervisor, monitor or CLI died at.
//!
//! 1. Tasks not STOPPED whose supervisor is dead are finished (stopped,
//!    released, marked STOPPED), as stop-task and the agent do.
//! 2. Of every STOPPED task, whatever still exists is released: its
//!    containers, root filesystems, namespace bind mounts, links, cgroup
//!    and run directory, all named from the task's record (see
//!    [`teardown`]). A STOPPED task's port mappings are not touched here,
//!    as its ports may map to another task by now: step 4 finds them.
//! 3. Address and host-port reservations whose task is gone or STOPPED
//!    are released.
//! 4. Port mappings in a network's table that no task holds a host port
//!    for are removed.
//! 5. Networks (bridge and table) no task has an address on are removed.
//! 6. STOPPED tasks past their cleanup wait are removed, and with
//!    `--images` unused images collected ([`super::housekeeping`]).

use std::collections::BTreeSet;
use std::path::Path;

use berth_net::Removal;

use crate::model::Task;
use crate::supervisor::teardown::{self, Ports};
use crate::supervisor::{self, SupervisorArgs};
use crate::{Ecs, EcsResult};

/// What a gc pass did.
#[derive(Debug, Default)]
pub struct Report {
    /// ARNs of orphaned tasks finished.
    pub tasks_finished: Vec<String>,
    /// Resources of STOPPED tasks released.
    pub released: Vec<String>,
    pub reservations_released: Vec<String>,
    /// `bridge protocol/port` of stale port mappings removed.
    pub mappings_removed: Vec<String>,
    pub networks_removed: Vec<String>,
    /// ARNs of STOPPED tasks removed after their cleanup wait (record,
    /// directories, logs).
    pub tasks_removed: Vec<String>,
    /// Images collected (unused, old enough).
    pub images_removed: Vec<String>,
    /// What could not be done (the next pass tries again).
    pub failed: Vec<String>,
}

/// One pass over `clusters`; `args_for` names each task's supervisor
/// (roots and cgroup parent); `bridge_locks` holds the bridges' locks.
pub fn collect(
    ecs: &Ecs,
    clusters: &[String],
    bridge_locks: &Path,
    args_for: impl Fn(&Task) -> SupervisorArgs,
) -> EcsResult<Report> {
    let mut report = Report::default();
    for cluster in clusters {
        release_tasks(ecs, cluster, &args_for, &mut report)?;
    }
    report.reservations_released = ecs.gc_reservations()?;
    let mut bridges: Vec<String> = ecs
        .cluster_networks()?
        .into_iter()
        .map(|(_, n)| n.bridge)
        .collect();
    bridges.sort();
    bridges.dedup();
    for bridge in &bridges {
        remove_stale_mappings(ecs, bridge, &mut report)?;
    }
    // Each cluster network, once no task holds an address on it and no
    // link is plugged into it, under the bridge's lock (see
    // `berth_net::plug_in`).
    for bridge in bridges {
        if !berth_net::link_exists(&bridge).unwrap_or(false) {
            continue;
        }
        let keep = || ecs.addresses_in_use(&bridge).unwrap_or(true);
        match berth_net::remove_bridge_if_unused(bridge_locks, &bridge, keep) {
            Ok(Removal::Removed) => report.networks_removed.push(bridge),
            Ok(_) => {}
            Err(e) => report.failed.push(format!("remove bridge {bridge}: {e}")),
        }
    }
    Ok(report)
}

/// Steps 1 and 2 over `cluster`'s tasks on this host (supervisor pids,
/// containers and mounts are local; another host's gc does its own):
/// orphans finished, then what each STOPPED task left here released. Also
/// the agent's fencing: what the cluster stopped while this host was away.
pub fn release_tasks(
    ecs: &Ecs,
    cluster: &str,
    args_for: &impl Fn(&Task) -> SupervisorArgs,
    report: &mut Report,
) -> EcsResult<()> {
    for task in ecs.local_tasks(cluster)? {
        if !supervisor::is_orphaned(&task) {
            continue;
        }
        match supervisor::reap_orphan(ecs, &args_for(&task)) {
            Ok(()) => report.tasks_finished.push(task.task_arn.clone()),
            Err(e) => report
                .failed
                .push(format!("finish task {}: {e}", task.id())),
        }
    }
    // Read again: the tasks just finished are STOPPED now. One whose
    // supervisor lives is that supervisor's to release (a task the cluster
    // stopped while its host was away: its supervisor is stopping it).
    for task in ecs.local_tasks(cluster)? {
        if !task.is_stopped() || supervisor::supervisor_alive(&task) {
            continue;
        }
        let released = teardown::release(&args_for(&task), &task, Ports::Keep);
        report.released.extend(released.removed);
        report.failed.extend(released.failed);
    }
    Ok(())
}

/// Remove the mappings of `bridge`'s table whose host port no task holds:
/// left by a supervisor that died between mapping a port and giving it
/// back. Listed before the reservations are read, so that a mapping made
/// meanwhile has its reservation read too.
fn remove_stale_mappings(ecs: &Ecs, bridge: &str, report: &mut Report) -> EcsResult<()> {
    let mapped = match berth_net::nat::mappings(bridge) {
        Ok(m) => m,
        Err(e) => {
            report
                .failed
                .push(format!("list the port mappings of {bridge}: {e}"));
            return Ok(());
        }
    };
    let held: BTreeSet<(String, u16)> = ecs.reserved_host_ports()?;
    let stale: Vec<(String, u16)> = mapped.into_iter().filter(|m| !held.contains(m)).collect();
    if stale.is_empty() {
        return Ok(());
    }
    let keys: Vec<(&str, u16)> = stale.iter().map(|(p, n)| (p.as_str(), *n)).collect();
    match berth_net::nat::remove_mappings(bridge, &keys) {
        Ok(()) => report.mappings_removed.extend(
            stale
                .iter()
                .map(|(protocol, port)| format!("{bridge} {protocol}/{port}")),
        ),
        Err(e) => report
            .failed
            .push(format!("unmap stale ports {keys:?} on {bridge}: {e}")),
    }
    Ok(())
}

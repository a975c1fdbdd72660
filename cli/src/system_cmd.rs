//! `berth system gc`: reclaim what a crash left behind.

use berth_orchestrator::supervisor::{self, reap_orphan};
use berth_orchestrator::Ecs;
use clap::Subcommand;
use serde_json::json;

use crate::{ecs_cmd, output, Roots};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Finish tasks whose supervisor died, release leaked address and port
    /// reservations, and remove task links and networks no task uses.
    Gc {
        /// One cluster (default: all).
        #[arg(long)]
        cluster: Option<String>,
    },
}

pub fn run(cmd: SystemCommand, roots: &Roots) -> anyhow::Result<i32> {
    let SystemCommand::Gc { cluster } = cmd;
    let ecs = Ecs::open(&roots.state, ecs_cmd::partition())
        .map_err(|e| anyhow::anyhow!("open the store in {}: {e}", roots.state.display()))?;
    let clusters = match cluster {
        Some(c) => vec![c],
        None => ecs.cluster_names().map_err(anyhow::Error::msg)?,
    };
    let mut reaped = Vec::new();
    let mut freed = Vec::new();
    let mut links_removed = Vec::new();
    for c in &clusters {
        for task in ecs.all_tasks(c).map_err(anyhow::Error::msg)? {
            if task.is_stopped() {
                // A STOPPED task's link should be gone; one left by a crash
                // is removed. Links this store does not know are left be.
                if let Some(net) = task.berth.as_ref().and_then(|b| b.network.as_ref()) {
                    if berth_net::link_exists(&net.host_ifname).unwrap_or(false)
                        && berth_net::detach(&net.host_ifname).is_ok()
                    {
                        links_removed.push(net.host_ifname.clone());
                    }
                }
                continue;
            }
            if supervisor::supervisor_alive(&task) || !ecs_cmd::started_long_enough_ago(&task) {
                continue;
            }
            let args = ecs_cmd::supervisor_args(roots, &task);
            match reap_orphan(&ecs, &args) {
                Ok(()) => reaped.push(task.task_arn.clone()),
                Err(e) => eprintln!("berth: finish task {}: {e}", task.id()),
            }
        }
        freed.extend(ecs.gc_reservations(c).map_err(anyhow::Error::msg)?);
    }
    // The network, once no task holds an address.
    let net = ecs.network_config();
    let in_use = clusters
        .iter()
        .any(|c| ecs.addresses_in_use(c).unwrap_or(true));
    let mut network_removed = false;
    if !in_use && berth_net::link_exists(&net.bridge).unwrap_or(false) {
        let _ = berth_net::nat::remove_table(&net.bridge);
        network_removed = berth_net::remove_bridge(&net.bridge).is_ok();
    }
    output::json(&json!({
        "tasksFinished": reaped,
        "reservationsReleased": freed,
        "linksRemoved": links_removed,
        "networkRemoved": network_removed,
    }))?;
    Ok(0)
}

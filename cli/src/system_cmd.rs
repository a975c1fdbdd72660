//! `berth system`: gc (reclaim what a crash left behind) and the
//! timings `make bench` prints.

use berth_orchestrator::Ecs;
use berth_orchestrator::{reconcile, supervisor};
use clap::Subcommand;
use serde_json::json;

use crate::{ecs, output, Roots};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Finish tasks whose supervisor died, release what stopped tasks left
    /// (containers, root filesystems, namespaces, cgroups, links), leaked
    /// address and port reservations and port mappings, and remove
    /// networks no task uses.
    Gc {
        /// One cluster (default: all).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Time a task network's setup and teardown (namespaces, veth, address,
    /// route, port mapping) against a bare network namespace, on the
    /// BERTH_BRIDGE/BERTH_SUBNET network, which must be unused.
    NetworkTiming {
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// Time the pure scheduler: binpack(memory) then spread(AZ) over
    /// simulated container instances.
    PlacementBench {
        #[arg(long, default_value_t = 5000)]
        instances: usize,
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
    },
}

pub fn run(cmd: SystemCommand, roots: &Roots) -> anyhow::Result<i32> {
    let cluster = match cmd {
        SystemCommand::Gc { cluster } => cluster,
        SystemCommand::NetworkTiming { runs } => return network_timing(roots, runs),
        SystemCommand::PlacementBench { instances, tasks } => {
            let (placed, elapsed) =
                berth_orchestrator::scheduler::placement::bench(instances, tasks);
            output::json(&json!({
                "instances": instances,
                "placements": placed,
                "seconds": elapsed.as_secs_f64(),
                "placementsPerSecond": placed as f64 / elapsed.as_secs_f64().max(1e-9),
            }))?;
            return Ok(0);
        }
    };
    let ecs =
        Ecs::open(&roots.state, &roots.store, ecs::partition()).map_err(|e| roots.open_error(e))?;
    let report =
        reconcile::gc(&ecs, &roots.reconcile_config(), cluster).map_err(anyhow::Error::msg)?;
    for failure in &report.failed {
        eprintln!("berth: gc: {failure}");
    }
    output::json(&json!({
        "tasksFinished": report.tasks_finished,
        "resourcesReleased": report.released,
        "reservationsReleased": report.reservations_released,
        "linksRemoved": report.links_removed,
        "mappingsRemoved": report.mappings_removed,
        "networksRemoved": report.networks_removed,
        "failed": report.failed,
    }))?;
    Ok(0)
}

fn network_timing(roots: &Roots, runs: usize) -> anyhow::Result<i32> {
    let net = berth_orchestrator::ecs::NetworkConfig::from_env().map_err(anyhow::Error::msg)?;
    let t = supervisor::network_timing::network_timing(
        &roots.runtime.join("network-timing"),
        &net,
        runs,
    )?;
    output::json(&json!({
        "runs": t.runs,
        "bareNamespaceMs": t.bare_namespace_ms,
        "setupMs": t.setup_ms,
        "teardownMs": t.teardown_ms,
    }))?;
    Ok(0)
}

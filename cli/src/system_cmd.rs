//! `berth system gc`: reclaim what a crash left behind.

use anyhow::Context;
use berth_orchestrator::reconcile;
use berth_orchestrator::Ecs;
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
    let ecs = Ecs::open(&roots.state, ecs::partition())
        .map_err(|e| anyhow::anyhow!("open the store in {}: {e}", roots.state.display()))?;
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
    use berth_runtime::namespaces::SharedNamespaces;
    use std::time::Instant;
    let net = berth_orchestrator::ecs::NetworkConfig::from_env().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !berth_net::link_exists(&net.bridge)?,
        "bridge {} exists: time on a network of its own (BERTH_BRIDGE)",
        net.bridge
    );
    let dir = roots.runtime.join("network-timing");
    let gateway = net.subnet.gateway();
    let address = berth_net::allocate(&net.subnet, &Default::default()).context("no address")?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let (mut bare, mut setup, mut teardown) = (Vec::new(), Vec::new(), Vec::new());
    let result = (|| -> anyhow::Result<()> {
        berth_net::ensure_bridge(&net.bridge, gateway, net.subnet.prefix)?;
        berth_net::nat::ensure_table(&net.bridge, &net.subnet)?;
        for i in 0..runs {
            let t = Instant::now();
            let ns = SharedNamespaces::create(&dir.join(format!("bare{i}")), true, "t")?;
            ns.remove()?;
            bare.push(ms(t.elapsed()));

            let t = Instant::now();
            let ns = SharedNamespaces::create(&dir.join(format!("task{i}")), true, "t")?;
            let netns = ns.path("network").context("no netns")?;
            berth_net::attach(
                &netns,
                &net.bridge,
                "vbtiming0",
                address,
                net.subnet.prefix,
                gateway,
            )?;
            berth_net::nat::add_mapping(&net.bridge, "tcp", 40000, &address.to_string(), 80)?;
            setup.push(ms(t.elapsed()));

            // As a task's teardown: the veth pair goes with its namespace.
            let t = Instant::now();
            berth_net::nat::remove_mappings(&net.bridge, &[("tcp", 40000)])?;
            ns.remove()?;
            teardown.push(ms(t.elapsed()));
            // The kernel frees the namespace (and the veth) asynchronously;
            // wait for it outside the timing, so the next run's name is free.
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            while berth_net::link_exists("vbtiming0")? && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        Ok(())
    })();
    let _ = berth_net::detach("vbtiming0");
    let _ = berth_net::nat::remove_table(&net.bridge);
    let _ = berth_net::remove_bridge(&net.bridge);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    output::json(&json!({
        "runs": runs,
        "bareNamespaceMs": median(&mut bare),
        "setupMs": median(&mut setup),
        "teardownMs": median(&mut teardown),
    }))?;
    Ok(0)
}

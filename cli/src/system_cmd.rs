//! `berth system`: gc (reclaim what a crash left behind), the secret
//! store's key from host to host, and the timings `make bench` prints.

use std::time::Duration;

use berth_orchestrator::ecs::bench::BenchPlan;
use berth_orchestrator::secrets::sealing::Imported;
use berth_orchestrator::secrets::SealingKey;
use berth_orchestrator::Ecs;
use berth_orchestrator::{reconcile, supervisor};
use clap::Subcommand;
use serde_json::json;

use crate::{agent_settings, ecs, output, Roots};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Finish tasks whose supervisor died, release what stopped tasks left
    /// (containers, root filesystems, namespaces, cgroups, links), leaked
    /// address and port reservations and port mappings, and remove
    /// networks no task uses; remove STOPPED tasks past their cleanup wait
    /// (record, logs, directories) and, with --images, unused images.
    Gc(GcArgs),
    /// Time a task network's setup and teardown (namespaces, veth, address,
    /// route, port mapping) against a bare network namespace, on the
    /// BERTH_BRIDGE/BERTH_SUBNET network, which must be unused.
    NetworkTiming {
        /// Setups and teardowns to time.
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// Time the pure scheduler: binpack(memory) then spread(AZ) over
    /// simulated container instances. With --through-store: seed a fresh
    /// cluster in the --store with that many connected instances and
    /// RUNNING tasks, then time real run-task placements (10 a call).
    PlacementBench {
        /// Container instances to place on.
        #[arg(long, default_value_t = 5000)]
        instances: usize,
        /// Tasks to place.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Place through the store (`Ecs::run_task`) instead of in memory.
        #[arg(long)]
        through_store: bool,
        /// --through-store: the cluster to seed (must not exist).
        #[arg(long, default_value = "placement-bench")]
        cluster: String,
        /// --through-store: run-task calls of 10 to time.
        #[arg(long, default_value_t = 20)]
        calls: usize,
        /// --through-store: the seeded agent leases' TTL, in seconds
        /// (longer than the run).
        #[arg(long, default_value_t = 3600)]
        lease_ttl: u64,
    },
    /// The secret store's key (<state root>/secrets.key, or the file
    /// BERTH_SECRETS_KEY_FILE names): every host of a shared store needs
    /// the same one. `export` on the first host, `import` on the others.
    #[command(subcommand)]
    SecretsKey(SecretsKeyCommand),
}

#[derive(Subcommand)]
pub enum SecretsKeyCommand {
    /// Print this host's key (base64; made if there is none), for
    /// `import` on another host: `berth system secrets-key export | ssh
    /// HOST berth system secrets-key import`.
    Export,
    /// Make the key read on stdin (what `export` printed) this host's.
    Import {
        /// Replace a key file holding another key (what was sealed under
        /// it no longer opens).
        #[arg(long)]
        force: bool,
    },
}

/// `berth system gc`'s flags.
#[derive(clap::Args)]
pub struct GcArgs {
    /// One cluster (default: all).
    #[arg(long)]
    cluster: Option<String>,
    /// Remove the STOPPED tasks that stopped at least this long ago (Go
    /// syntax: 3h, 90m, 0s; default: the agent's
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, 3h).
    #[arg(long, value_name = "DURATION")]
    task_cleanup_wait: Option<String>,
    /// Also collect unused images, as the agent does every
    /// ECS_IMAGE_CLEANUP_INTERVAL (never one a task not STOPPED uses).
    #[arg(long)]
    images: bool,
    /// With --images: keep the images pulled more recently than this
    /// (default: ECS_IMAGE_MINIMUM_CLEANUP_AGE, 1h).
    #[arg(long, value_name = "DURATION")]
    image_minimum_cleanup_age: Option<String>,
    /// With --images: remove at most this many (default:
    /// ECS_NUM_IMAGES_DELETE_PER_CYCLE, 5).
    #[arg(long, value_name = "N")]
    images_delete_per_cycle: Option<String>,
    /// The agent's settings file (default /etc/berth/agent.config).
    #[arg(long, env = "BERTH_AGENT_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

impl GcArgs {
    /// The agent's settings with these flags over them.
    fn housekeeping(&self) -> anyhow::Result<reconcile::cleanup_plan::Housekeeping> {
        let mut config = agent_settings::load(self.config.as_deref())?.config;
        agent_settings::apply_flags(
            &mut config,
            &[
                (
                    "--task-cleanup-wait",
                    "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
                    self.task_cleanup_wait.clone(),
                ),
                (
                    "--image-minimum-cleanup-age",
                    "ECS_IMAGE_MINIMUM_CLEANUP_AGE",
                    self.image_minimum_cleanup_age.clone(),
                ),
                (
                    "--images-delete-per-cycle",
                    "ECS_NUM_IMAGES_DELETE_PER_CYCLE",
                    self.images_delete_per_cycle.clone(),
                ),
            ],
        )?;
        // Asked for: collected even where the agent's are disabled.
        config.disable_image_cleanup = !self.images;
        Ok(reconcile::cleanup_plan::Housekeeping::from_config(&config))
    }
}

pub fn run(cmd: SystemCommand, roots: &Roots) -> anyhow::Result<i32> {
    let gc = match cmd {
        SystemCommand::Gc(gc) => gc,
        SystemCommand::NetworkTiming { runs } => return network_timing(roots, runs),
        SystemCommand::SecretsKey(cmd) => return secrets_key(roots, cmd),
        SystemCommand::PlacementBench {
            instances,
            tasks,
            through_store: true,
            cluster,
            calls,
            lease_ttl,
        } => {
            let plan = BenchPlan {
                cluster,
                instances,
                tasks,
                calls,
                lease_ttl: Duration::from_secs(lease_ttl),
            };
            return placement_through_store(roots, &plan);
        }
        SystemCommand::PlacementBench {
            instances, tasks, ..
        } => {
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
    let keep = gc.housekeeping()?;
    let report = reconcile::gc(&ecs, &roots.reconcile_config()?, gc.cluster, &keep)
        .map_err(anyhow::Error::msg)?;
    for failure in &report.failed {
        eprintln!("berth: gc: {failure}");
    }
    output::json(&json!({
        "tasksFinished": report.tasks_finished,
        "resourcesReleased": report.released,
        "reservationsReleased": report.reservations_released,
        "mappingsRemoved": report.mappings_removed,
        "networksRemoved": report.networks_removed,
        "tasksRemoved": report.tasks_removed,
        "imagesRemoved": report.images_removed,
        "failed": report.failed,
    }))?;
    Ok(0)
}

/// Seed a fresh cluster in the store and time run-task on it.
fn placement_through_store(roots: &Roots, plan: &BenchPlan) -> anyhow::Result<i32> {
    let ecs =
        Ecs::open(&roots.state, &roots.store, ecs::partition()).map_err(|e| roots.open_error(e))?;
    let r = ecs.placement_bench(plan).map_err(anyhow::Error::msg)?;
    let secs = r.place_time.as_secs_f64().max(1e-9);
    output::json(&json!({
        "instances": r.seeded_instances,
        "runningTasks": r.seeded_tasks,
        "seedSeconds": r.seed_time.as_secs_f64(),
        "placements": r.placed,
        "failures": r.failures,
        "seconds": r.place_time.as_secs_f64(),
        "placementsPerSecond": r.placed as f64 / secs,
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

fn secrets_key(roots: &Roots, cmd: SecretsKeyCommand) -> anyhow::Result<i32> {
    match cmd {
        SecretsKeyCommand::Export => {
            // Raw, one line: it is piped into `import`.
            println!("{}", SealingKey::export(&roots.state)?);
        }
        SecretsKeyCommand::Import { force } => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| anyhow::anyhow!("read the key on stdin: {e}"))?;
            let (path, written) = match SealingKey::import(&roots.state, &text, force)? {
                Imported::Written(p) => (p, true),
                Imported::Unchanged(p) => (p, false),
            };
            let key = SealingKey::open_or_create(&roots.state)?;
            output::json(&json!({
                "keyFile": path.display().to_string(),
                "keyId": key.id(),
                "written": written,
            }))?;
        }
    }
    Ok(0)
}

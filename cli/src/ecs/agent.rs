//! berth's own verbs over services: one reconcile pass (`reconcile`) and
//! the agent loop (`agent`). Both are the orchestrator's `reconcile`; this
//! prints.

use std::time::Duration;

use berth_orchestrator::reconcile::{self, AgentOptions, Config};
use berth_orchestrator::scheduler::hosts;
use berth_orchestrator::{Ecs, EcsError};

use super::Outcome;

pub(super) fn reconcile(
    ecs: &Ecs,
    cfg: &Config,
    cluster: Option<&str>,
) -> Result<Outcome, EcsError> {
    let report = reconcile::pass(ecs, cfg, cluster)?;
    Ok(Outcome::Value(serde_json::json!({
        "clusters": report.clusters,
        "tasksAdopted": report.adopted,
        "tasksFinished": report.finished,
        "tasksStarted": report.started,
    })))
}

/// `berth agent`'s flags.
#[derive(clap::Args)]
pub struct AgentArgs {
    /// The cluster this host joins (it must exist).
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Attributes of this host: `k=v,...` (`ecs.availability-zone`,
    /// `ecs.instance-type` and names of your own).
    #[arg(long, default_value = "")]
    attributes: String,
    /// Seconds the host's lease lives unrenewed: how soon the cluster
    /// counts the host lost (etcd's own minimum is 2).
    #[arg(long, default_value_t = 3)]
    lease_ttl: u64,
    /// Seconds between reconcile passes.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// This host's underlay address, which the other hosts route its
    /// slice of each cluster network via (default: the source address
    /// toward the store, else the first global address).
    #[arg(long, env = "BERTH_HOST_ADDRESS", value_name = "IP")]
    host_address: Option<std::net::Ipv4Addr>,
}

/// In the foreground until killed (systemd stops it with SIGTERM).
pub(super) fn run(ecs: &Ecs, cfg: &Config, args: AgentArgs) -> Result<Outcome, EcsError> {
    if args.lease_ttl == 0 {
        return Err(EcsError::invalid("--lease-ttl: must be at least 1 second"));
    }
    let opts = AgentOptions {
        attributes: hosts::parse_attributes(&args.attributes)?,
        lease_ttl: Duration::from_secs(args.lease_ttl),
        interval: args.interval,
        ..AgentOptions::new(&args.cluster)
    };
    // Networks across hosts: the other hosts route this host's slices via
    // this address (hosts sharing this machine's one network have nothing
    // to route).
    if let Some(address) = reconcile::routes::host_address(args.host_address, &cfg.store.url)? {
        ecs.set_host_address(address);
    }
    reconcile::agent(ecs, cfg, &opts, || false)?;
    Ok(Outcome::Printed)
}

//! berth's own verbs over services: one reconcile pass (`reconcile`) and
//! the agent loop (`agent`). Both are the orchestrator's `reconcile`; this
//! prints.

use berth_orchestrator::reconcile::{self, Config};
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

/// In the foreground until killed (systemd stops it with SIGTERM).
pub(super) fn run(
    ecs: &Ecs,
    cfg: &Config,
    interval: u64,
    host_address: Option<std::net::Ipv4Addr>,
) -> Result<Outcome, EcsError> {
    // Networks across hosts: the other hosts route this host's slices via
    // this address (one host alone has nothing to route).
    if ecs.shared_store() || host_address.is_some() {
        let store = std::env::var("BERTH_STORE").ok();
        ecs.set_host_address(reconcile::routes::host_address(
            host_address,
            store.as_deref(),
        )?);
    }
    reconcile::agent(ecs, cfg, interval, || false)?;
    Ok(Outcome::Printed)
}

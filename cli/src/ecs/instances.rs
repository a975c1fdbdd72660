//! Container instances: register this host (with custom attributes) and
//! change instances' state.

use berth_orchestrator::model::{Attribute, InstanceStatus};
use berth_orchestrator::reconcile::{self, Config};
use berth_orchestrator::{Ecs, EcsError};

use super::input::parse_shorthand;
use super::{usage, value, Outcome};

// update-container-instances-state's flags.
#[derive(clap::Args)]
pub struct UpdateState {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// Container instances by id or ARN.
    #[arg(long, num_args = 1.., required = true)]
    container_instances: Vec<String>,
    /// ACTIVE or DRAINING.
    #[arg(long)]
    status: InstanceStatus,
}

pub(super) fn update_state(
    ecs: &Ecs,
    cfg: &Config,
    args: UpdateState,
) -> Result<Outcome, EcsError> {
    let cluster = args.cluster.as_deref();
    let out =
        ecs.update_container_instances_state(cluster, &args.container_instances, &args.status)?;
    // Services follow at once: DAEMON tasks leave a DRAINING
    // instance and come back to an ACTIVE one.
    reconcile::reconcile_cluster(ecs, cfg, cluster.unwrap_or("default"))?;
    Ok(Outcome::Value(out))
}

/// `--attributes name=N,value=V …`.
pub(super) fn register(
    ecs: &Ecs,
    cluster: Option<&str>,
    attributes: &[String],
) -> Result<Outcome, EcsError> {
    let attrs = match attributes
        .iter()
        .map(|a| parse_shorthand(a, "attributes"))
        .collect::<anyhow::Result<Vec<_>>>()
    {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(name, value)| Attribute { name, value })
            .collect::<Vec<_>>(),
        Err(e) => return usage(e),
    };
    value(ecs.register_container_instance(cluster, &attrs))
}

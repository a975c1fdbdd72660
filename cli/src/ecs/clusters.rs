//! Clusters: create (with berth's bridge and subnet); list, describe and
//! delete are one call each.

use berth_orchestrator::{Ecs, EcsError};

use super::input::parse_tags;
use super::{usage, value, Outcome};

// create-cluster's flags.
#[derive(clap::Args)]
pub struct Create {
    /// The cluster's name: letters, digits, - and _ (up to 255).
    #[arg(long)]
    cluster_name: String,
    /// key=K,value=V … (or a JSON array).
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
    /// berth: the bridge the cluster's tasks join (default berth0, or
    /// BERTH_BRIDGE).
    #[arg(long)]
    bridge: Option<String>,
    /// berth: the bridge's subnet, A.B.C.D/N (default: the bridge's
    /// own, or a free /24 of 10.89.0.0/16).
    #[arg(long, requires = "bridge")]
    subnet: Option<String>,
}

pub(super) fn create(ecs: &Ecs, args: Create) -> Result<Outcome, EcsError> {
    let tags = match parse_tags(&args.tags) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let network = match &args.bridge {
        Some(b) => Some(ecs.network_for(b, args.subnet.as_deref())?),
        None => None,
    };
    value(ecs.create_cluster(&args.cluster_name, tags, network))
}

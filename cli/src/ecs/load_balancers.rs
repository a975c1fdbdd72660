//! Load balancers: create (describe and delete are one call each).

use berth_orchestrator::ecs::load_balancers::CreateLoadBalancer;
use berth_orchestrator::{Ecs, EcsError};

use super::{value, Outcome};

// create-load-balancer's flags.
#[derive(clap::Args)]
pub struct Create {
    /// The load balancer's name, unique on this host.
    #[arg(long)]
    name: String,
    /// [ADDR:]PORT; without ADDR, every address of the host.
    #[arg(long)]
    listen: String,
    /// tcp (default) or udp.
    #[arg(long)]
    protocol: Option<String>,
    /// Seconds a task taken out of service keeps serving its
    /// connections before it is stopped (default 300, as ELB).
    #[arg(long)]
    deregistration_delay: Option<u32>,
}

pub(super) fn create(ecs: &Ecs, args: Create) -> Result<Outcome, EcsError> {
    value(ecs.create_load_balancer(&CreateLoadBalancer {
        name: args.name,
        listen: args.listen,
        protocol: args.protocol,
        deregistration_delay_seconds: args.deregistration_delay,
    }))
}

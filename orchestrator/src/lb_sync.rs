//! Load balancers in the kernel: brings `berth_net::lb`'s listeners and
//! backends in step with the store.

use crate::ecs::Ecs;
use crate::error::{EcsError, EcsResult};

impl Ecs {
    /// Bring the kernel's rules for the load balancers `names` in step with
    /// their services' tasks.
    pub fn sync_load_balancers(&self, names: &[String]) -> EcsResult<()> {
        for name in names {
            // Deleted while a draining service still named it.
            let Ok(lb) = self.load_balancer(name) else {
                continue;
            };
            let backends: Vec<berth_net::lb::Backend> =
                self.targets(name)?.into_iter().map(|(_, _, b)| b).collect();
            berth_net::lb::apply(&lb.listener()?, &backends)
                .map_err(|e| EcsError::invalid(format!("load balancer {name}: {e}")))?;
        }
        Ok(())
    }
}

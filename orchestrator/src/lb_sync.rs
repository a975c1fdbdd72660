//! Load balancers in the kernel: `berth_net::lb`'s listeners and their
//! backends, opened, brought in step with the store, removed. What each
//! listener should send to is read by `ecs::load_balancers`; this file
//! only applies it.

use crate::ecs::Ecs;
use crate::error::{EcsError, EcsResult};
use crate::model::LoadBalancer;

/// Open `lb`'s listener, with no backend yet.
pub(crate) fn open(lb: &LoadBalancer) -> EcsResult<()> {
    berth_net::lb::apply(&lb.listener()?, &[]).map_err(|e| EcsError::invalid(e.to_string()))
}

/// Remove the listener of the load balancer `name` and its backends.
pub(crate) fn remove(name: &str) -> EcsResult<()> {
    berth_net::lb::remove(name).map_err(|e| EcsError::invalid(e.to_string()))
}

impl Ecs {
    /// Bring the kernel's rules for the load balancers `names` in step with
    /// their services' tasks.
    pub fn sync_load_balancers(&self, names: &[String]) -> EcsResult<()> {
        for name in names {
            // Deleted while a draining service still named it.
            let Some((lb, backends)) = self.load_balancer_backends(name)? else {
                continue;
            };
            // A listener is its host's (its port is reserved there); its
            // backends are the in-service tasks of every host, reached by
            // their addresses through the routes between hosts.
            if self.shared_store() && lb.host != self.host_id() {
                continue;
            }
            berth_net::lb::apply(&lb.listener()?, &backends)
                .map_err(|e| EcsError::invalid(format!("load balancer {name}: {e}")))?;
            // A delete-load-balancer between the read above and the apply
            // removed the record and then the table, which the apply has
            // just made again: the record's absence now says to remove it.
            // (Present now, the delete's removal comes after this apply.)
            if !self.load_balancer_exists(name)? {
                remove(name)?;
            }
        }
        Ok(())
    }
}

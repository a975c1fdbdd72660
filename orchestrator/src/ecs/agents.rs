//! Hosts and their agents over the store (issue 13): an agent registers
//! its host as a container instance and keeps it alive with a lease
//! (`keys::agent_lease`); a reconcile pass finds instances whose lease
//! expired and stops their tasks, giving back what they reserved. With the
//! embedded store (SQLite) this host is the whole cluster: it registers
//! itself on first use and is always connected, as before.
//!
//! Store I/O only: what to register and what a lost host's tasks become
//! are `scheduler::hosts`'s decisions.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::{decode, encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::model::{Attribute, Cluster, ContainerInstance, Task};
use crate::scheduler::hosts::{self, HostLoss, Seen};
use crate::scheduler::reserved::{self, Reserved};
use crate::store::{keys, Expect, Op};

use super::instances::AGENT_VERSION;

impl Ecs {
    /// This host's id: its container instance's in every cluster.
    pub fn host_id(&self) -> &str {
        &self.host.id
    }

    /// Whether `task` was placed on this host, whose supervisors, monitors
    /// and containers are the only ones this process can see.
    pub fn is_local(&self, task: &Task) -> bool {
        hosts::is_local(task.host_id(), &self.host.id)
    }

    /// Refuse what only the task's own host can do (its logs, a command in
    /// its containers) for a task placed on another host, naming that
    /// host: never a silent empty answer.
    pub fn ensure_local(&self, cluster: &str, task: &Task) -> EcsResult<()> {
        if self.is_local(task) {
            return Ok(());
        }
        let id = task.host_id().unwrap_or_default();
        let hostname = self
            .store
            .get(&keys::instance(cluster, id))?
            .and_then(|rec| decode::<ContainerInstance>(&rec.value).ok())
            .map(|ci| ci.ec2_instance_id)
            .filter(|h| !h.is_empty())
            .map(|h| format!(" (host {h})"))
            .unwrap_or_default();
        Err(EcsError::invalid(format!(
            "task {}: it runs on container instance {id}{hostname}, not this host: run this there",
            task.id()
        )))
    }

    /// First use of `cluster` on this host: with a store of its own the
    /// host registers itself, as it always has; with a shared store only
    /// `berth agent` registers hosts.
    pub(crate) fn implicit_instance(&self, cluster: &Cluster) -> EcsResult<()> {
        if !self.store.shared() {
            self.host_instance(cluster)?;
        }
        Ok(())
    }

    /// Whether instance `id`'s agent is connected: its lease lives. With
    /// a store of one host's, that host is always there.
    pub fn agent_connected(&self, cluster: &str, id: &str) -> EcsResult<bool> {
        if !self.store.shared() {
            return Ok(true);
        }
        Ok(self
            .store
            .lease_holder(&keys::agent_lease(cluster, id))?
            .is_some())
    }

    /// The hosts of `cluster` whose agent lease lives, in one read; None
    /// with a store of one host's own, whose instance is always connected
    /// (as [`Ecs::agent_connected`]).
    pub fn connected_agents(&self, cluster: &str) -> EcsResult<Option<BTreeSet<String>>> {
        if !self.store.shared() {
            return Ok(None);
        }
        let leases = self.store.lease_holders(&keys::agent_leases_of(cluster))?;
        Ok(Some(
            leases
                .iter()
                .filter_map(|(name, _)| keys::agent_lease_host(cluster, name))
                .map(str::to_string)
                .collect(),
        ))
    }

    /// Take or renew this host's agent lease in `cluster` for `ttl`; false
    /// when another holder has it.
    pub fn renew_agent_lease(&self, cluster: &str, ttl: Duration) -> EcsResult<bool> {
        let lease = keys::agent_lease(cluster, &self.host.id);
        Ok(self.store.acquire_lease(&lease, &self.host.id, ttl)?)
    }

    /// Give the agent lease up (the agent stops): the host counts as lost
    /// at the next reconcile pass rather than a TTL later.
    pub fn release_agent_lease(&self, cluster: &str) -> EcsResult<()> {
        let lease = keys::agent_lease(cluster, &self.host.id);
        Ok(self.store.release_lease(&lease, &self.host.id)?)
    }

    /// `berth agent`: register this host in `cluster` (again), connected,
    /// with `attributes` (checked by `hosts::parse_attributes`) over its
    /// facts. A host registered before keeps its status and what its tasks
    /// reserve.
    pub fn register_agent(
        &self,
        cluster: &str,
        attributes: &[Attribute],
    ) -> EcsResult<ContainerInstance> {
        self.register_agent_reserving(cluster, attributes, &Reserved::default())
    }

    /// [`Ecs::register_agent`], keeping `reserved` from the host's tasks
    /// (`ECS_RESERVED_MEMORY`, `ECS_RESERVED_PORTS`): recorded on the
    /// instance at every registration, as ECS's agent does.
    pub fn register_agent_reserving(
        &self,
        cluster: &str,
        attributes: &[Attribute],
        reserved: &Reserved,
    ) -> EcsResult<ContainerInstance> {
        let cluster = self.cluster(Some(cluster)).map_err(|e| {
            EcsError::new(
                e.kind,
                format!("--cluster: {} (create it first)", e.message),
            )
        })?;
        let key = keys::instance(&cluster.cluster_name, &self.host.id);
        retry(|| {
            let current = self.store.get(&key)?;
            let (mut ci, expect) = match &current {
                Some(rec) => (
                    decode::<ContainerInstance>(&rec.value)?,
                    Expect::Revision(rec.revision),
                ),
                None => (self.new_host_instance(&cluster), Expect::Absent),
            };
            ci.attributes = hosts::merge_attributes(&ci.attributes, attributes);
            reserved::apply(&mut ci, self.host.memory_mib, reserved);
            ci.agent_connected = true;
            ci.version_info = json!({ "agentVersion": AGENT_VERSION });
            if current.is_some() {
                ci.version += 1;
            }
            let op = Op::Put {
                key: key.clone(),
                value: encode(&ci)?,
                expect,
            };
            Ok(self.store.commit(&[op]).map(|_| ci))
        })
    }

    /// The store's revision now: read it before reading the tasks that
    /// [`Ecs::wait_for_tasks`] is then to watch.
    pub fn store_revision(&self) -> EcsResult<u64> {
        Ok(self.store.revision()?)
    }

    /// Sleep until a task of `cluster` changes after revision `after`, or
    /// `timeout` passes (true: something changed, or may have).
    pub fn wait_for_tasks(&self, cluster: &str, after: u64, timeout: Duration) -> EcsResult<bool> {
        Ok(self.store.wait(&keys::tasks_of(cluster), after, timeout)?)
    }

    /// The tasks of `cluster` placed on this host.
    pub fn local_tasks(&self, cluster: &str) -> EcsResult<Vec<Task>> {
        let mut tasks = self.all_tasks(cluster)?;
        tasks.retain(|t| self.is_local(t));
        Ok(tasks)
    }

    /// Host loss, in a reconcile pass under the cluster's lease: instances
    /// whose agent's lease expired are recorded disconnected and their
    /// tasks not yet STOPPED become STOPPED, each in one commit with the
    /// reservations it gives back, so that the services' plan that follows
    /// replaces them elsewhere. Nothing with a store of one host's. The
    /// ids of the tasks stopped.
    pub(crate) fn stop_lost_hosts(&self, cluster: &str) -> EcsResult<Vec<String>> {
        if !self.store.shared() {
            return Ok(Vec::new());
        }
        let mut seen = Vec::new();
        for (_, rec) in self.store.list(&keys::instances_of(cluster))? {
            let ci: ContainerInstance = decode(&rec.value)?;
            // A host never counts itself lost: it is here, and its agent
            // takes the lease again (fencing first) when it can.
            if ci.id() == self.host.id {
                continue;
            }
            seen.push(Seen {
                id: ci.id().to_string(),
                recorded_connected: ci.agent_connected,
                // Not the deadline but the store's own expiry: an etcd
                // outage leaves every host's deadline behind it, and none
                // of them is lost for that.
                lease_alive: !self
                    .store
                    .lease_lapsed(&keys::agent_lease(cluster, ci.id()))?,
            });
        }
        if seen.iter().all(|s| s.lease_alive) {
            return Ok(Vec::new());
        }
        let HostLoss { disconnect, stop } = hosts::host_loss(&seen, &self.all_tasks(cluster)?);
        for id in &disconnect {
            tracing::warn!(
                "cluster {cluster}: container instance {id} lost (its agent's lease expired)"
            );
            self.record_disconnected(cluster, id)?;
        }
        let mut stopped = Vec::new();
        for (id, reason) in stop {
            let at = now();
            self.update_task(cluster, &id, |t| hosts::stop_lost(t, &reason, &at))?;
            stopped.push(id);
        }
        Ok(stopped)
    }

    /// Record instance `id` as disconnected, unless its agent came back
    /// meanwhile (it records itself connected when it registers again).
    fn record_disconnected(&self, cluster: &str, id: &str) -> EcsResult<()> {
        let key = keys::instance(cluster, id);
        retry(|| {
            let Some(rec) = self.store.get(&key)? else {
                return Ok(Ok(()));
            };
            let mut ci: ContainerInstance = decode(&rec.value)?;
            if !ci.agent_connected || self.agent_connected(cluster, id)? {
                return Ok(Ok(()));
            }
            ci.agent_connected = false;
            ci.version += 1;
            let op = Op::Put {
                key: key.clone(),
                value: encode(&ci)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| ()))
        })
    }
}

/// Several hosts over one etcd: each `Ecs` its own client, as each host's
/// `berth` processes are.
#[cfg(test)]
mod tests;

//! Service discovery in the store: a service's virtual address claimed in
//! its create-service commit (`vips/<address>`), what the cluster's tasks
//! should resolve and where each address should send (read for
//! `discovery_sync`, which applies it), and the addresses of services that
//! are gone given back. The rules are `discovery`'s.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::discovery::{self, Discovery};
use crate::ecs::{decode, Ecs};
use crate::error::EcsResult;
use crate::model::{Cluster, Service, ServiceStatus, TaskDefinition};
use crate::store::{keys, Expect, Op};

/// One virtual address's port and the tasks it should send to.
#[derive(Clone, Debug)]
pub struct VipListener {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: String,
    pub backends: Vec<berth_net::lb::Backend>,
}

/// What a cluster's discovery should be now.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryPlan {
    /// berth's part of every task's /etc/hosts.
    pub hosts: String,
    /// Whether any service of the cluster has names (else a task's hosts
    /// file without berth's part is left alone).
    pub any_names: bool,
    pub listeners: Vec<VipListener>,
    /// The cluster's addresses still held by an ACTIVE service.
    pub held: BTreeSet<Ipv4Addr>,
    /// Addresses of the cluster's services that are gone: their tables go,
    /// then (`free_vip`) their keys, at the revision read.
    pub stale: Vec<(Ipv4Addr, u64)>,
}

/// The cluster's `serviceConnectDefaults.namespace`, if it has one.
fn cluster_namespace(cluster: &Cluster) -> Option<&str> {
    cluster
        .service_connect_defaults
        .as_ref()?
        .get("namespace")?
        .as_str()
}

impl Ecs {
    /// Check `service`'s discovery settings against `td` and, when it has
    /// any, claim a virtual address: the op that claims it goes in the
    /// service's own commit, with the address set on the record.
    pub(crate) fn discovery_claim(
        &self,
        cluster: &Cluster,
        service: &mut Service,
        td: &TaskDefinition,
    ) -> EcsResult<Option<Op>> {
        discovery::discovery_of(service, td, cluster_namespace(cluster))?;
        if !discovery::wanted(service) {
            return Ok(None);
        }
        let range = discovery::vip_range(
            &std::env::var("BERTH_SERVICE_VIP_RANGE")
                .unwrap_or_else(|_| discovery::DEFAULT_VIP_RANGE.into()),
        )?;
        let used: BTreeSet<Ipv4Addr> = self
            .store
            .list(keys::VIPS)?
            .iter()
            .filter_map(|(k, _)| keys::parse_vip(k))
            .collect();
        let vip = discovery::pick_vip(&range, &used)?;
        service.berth_virtual_address = Some(vip.to_string());
        Ok(Some(Op::Put {
            key: keys::vip(vip),
            value: keys::vip_holder(&cluster.cluster_name, &service.service_name),
            expect: Expect::Absent,
        }))
    }

    /// Whether the address `claim` claims is someone's now.
    pub(crate) fn vip_taken(&self, claim: &Option<Op>) -> EcsResult<bool> {
        match claim {
            Some(Op::Put { key, .. }) => Ok(self.store.get(key)?.is_some()),
            _ => Ok(false),
        }
    }

    /// The ACTIVE services of `cluster` with discovery: each with its
    /// address and what its settings say.
    fn discoveries(&self, cluster: &str) -> EcsResult<Vec<(Service, Ipv4Addr, Discovery)>> {
        let record = self.cluster(Some(cluster))?;
        let mut out = Vec::new();
        for (_, rec) in self.store.list(&keys::services_of(cluster))? {
            let service: Service = decode(&rec.value)?;
            let vip = service
                .berth_virtual_address
                .as_deref()
                .and_then(|a| a.parse().ok());
            let (ServiceStatus::Active, Some(vip)) = (&service.status, vip) else {
                continue;
            };
            // Checked at create-service; a record that no longer passes
            // (written by hand) is left out rather than stopping the rest.
            let checked = self
                .task_definition(&service.task_definition)
                .and_then(|td| discovery::discovery_of(&service, &td, cluster_namespace(&record)));
            match checked {
                Ok(d) => out.push((service, vip, d)),
                Err(e) => tracing::warn!("service {}: discovery: {e}", service.service_name),
            }
        }
        Ok(out)
    }

    /// berth's part of /etc/hosts for a task of `cluster` starting now.
    pub fn discovery_hosts(&self, cluster: &str) -> EcsResult<(String, bool)> {
        let entries: Vec<(Ipv4Addr, Vec<String>)> = self
            .discoveries(cluster)?
            .into_iter()
            .map(|(_, vip, d)| (vip, d.names))
            .collect();
        Ok((discovery::hosts_block(&entries), !entries.is_empty()))
    }

    /// What `cluster`'s discovery should be: names, listeners with their
    /// in-service tasks, and the addresses to give back.
    pub fn discovery_plan(&self, cluster: &str) -> EcsResult<DiscoveryPlan> {
        // The addresses before the services: one claimed after this read
        // is not seen at all, rather than seen without its service.
        let claimed = self.store.list(keys::VIPS)?;
        let found = self.discoveries(cluster)?;
        let tasks = if found.is_empty() {
            Vec::new()
        } else {
            self.all_tasks(cluster)?
        };
        let mut plan = DiscoveryPlan::default();
        let mut entries = Vec::new();
        for (service, vip, d) in &found {
            plan.held.insert(*vip);
            for p in &d.ports {
                plan.listeners.push(VipListener {
                    vip: *vip,
                    port: p.port,
                    protocol: p.protocol.clone(),
                    backends: discovery::backends(service, p, &tasks),
                });
            }
            entries.push((*vip, d.names.clone()));
        }
        plan.any_names = !entries.is_empty();
        plan.hosts = discovery::hosts_block(&entries);
        let prefix = format!("{cluster}/");
        for (key, rec) in claimed {
            let holder = String::from_utf8_lossy(&rec.value);
            let (Some(vip), Some(_)) = (keys::parse_vip(&key), holder.strip_prefix(&prefix)) else {
                continue;
            };
            if !plan.held.contains(&vip) {
                plan.stale.push((vip, rec.revision));
            }
        }
        Ok(plan)
    }

    /// Give back a gone service's address (its tables are gone already);
    /// taken again since it was read: left to its new holder.
    pub fn free_vip(&self, vip: Ipv4Addr, revision: u64) -> EcsResult<()> {
        match self.store.commit(&[Op::Delete {
            key: keys::vip(vip),
            expect: Expect::Revision(revision),
        }]) {
            Ok(_) | Err(crate::store::StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

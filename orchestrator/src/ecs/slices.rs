//! Per-host slices of a cluster network (flannel's host-gw shape): on a
//! shared store each host's bridge carries its own slice of the network,
//! leased in the store (`slices/<bridge>/<slice>`, see [`keys`]), and a
//! task takes its address from the slice of the host it is placed on, so
//! the other hosts route that slice via its host. With the embedded store
//! the one host's slice is the whole network, and nothing is written.
//!
//! The slice belongs to the host and the bridge, not to one cluster:
//! clusters sharing a bridge share its network, and a host's bridge has one
//! gateway. The slicing rule is `berth_net`'s (`Subnet::slice`).
//!
//! The other hosts route a host's slice via its underlay address, kept on
//! its container instances as the attribute [`HOST_ADDRESS_ATTRIBUTE`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use berth_net::Subnet;

use super::{decode, retry, Ecs, NetworkConfig};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{Attribute, Cluster, ClusterStatus, ContainerInstance};
use crate::store::{keys, Expect, Op};

/// The attribute of a container instance holding its host's underlay
/// address.
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";

impl Ecs {
    /// True when other hosts share this store (see `Store::shared`).
    pub fn shared_store(&self) -> bool {
        self.store.shared()
    }

    /// Set this host's underlay address, once (the agent does at start).
    pub fn set_host_address(&self, address: Ipv4Addr) {
        let _ = self.host_address.set(address);
    }

    /// This host's underlay address, when the agent set it.
    pub fn host_address(&self) -> Option<Ipv4Addr> {
        self.host_address.get().copied()
    }

    /// Whether this host has a container instance in `cluster`.
    pub fn has_instance(&self, cluster: &str) -> EcsResult<bool> {
        Ok(self
            .store
            .get(&keys::instance(cluster, &self.host.id))?
            .is_some())
    }

    /// Keep [`Self::host_address`] on this host's instance in `cluster` as
    /// [`HOST_ADDRESS_ATTRIBUTE`] (written only when it differs); nothing
    /// when the host has no instance there or no address.
    pub fn record_host_address(&self, cluster: &Cluster) -> EcsResult<()> {
        let Some(address) = self.host_address() else {
            return Ok(());
        };
        let key = keys::instance(&cluster.cluster_name, &self.host.id);
        retry(|| {
            let Some(rec) = self.store.get(&key)? else {
                return Ok(Ok(()));
            };
            let mut ci: ContainerInstance = decode(&rec.value)?;
            let value = Some(address.to_string());
            if instance_address(&ci) == Some(address) {
                return Ok(Ok(()));
            }
            ci.attributes.retain(|a| a.name != HOST_ADDRESS_ATTRIBUTE);
            ci.attributes.push(Attribute {
                name: HOST_ADDRESS_ATTRIBUTE.into(),
                value,
            });
            ci.version += 1;
            let op = Op::Put {
                key: key.clone(),
                value: super::encode(&ci)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| ()))
        })
    }

    /// Each host's underlay address, by host id, from its instances in
    /// every ACTIVE cluster on `net`'s bridge (they share its slices).
    pub fn host_addresses(&self, net: &NetworkConfig) -> EcsResult<BTreeMap<String, Ipv4Addr>> {
        let mut out = BTreeMap::new();
        for (_, rec) in self.store.list(keys::CLUSTERS)? {
            let c: Cluster = decode(&rec.value)?;
            if c.status != ClusterStatus::Active || self.cluster_network(&c)?.bridge != net.bridge {
                continue;
            }
            for (_, rec) in self.store.list(&keys::instances_of(&c.cluster_name))? {
                let ci: ContainerInstance = decode(&rec.value)?;
                if let Some(address) = instance_address(&ci) {
                    out.insert(ci.id().to_string(), address);
                }
            }
        }
        Ok(out)
    }

    /// The slice of `net` the bridge of `host` carries: the whole network
    /// with the embedded store; on a shared store the slice the host holds,
    /// leased now (the lowest free one) when it holds none.
    pub fn host_slice(&self, net: &NetworkConfig, host: &str) -> EcsResult<Subnet> {
        if !self.store.shared() {
            return Ok(net.subnet);
        }
        retry(|| {
            let held = self.slices(net)?;
            if let Some((slice, _)) = held.get(host) {
                return Ok(Ok(*slice));
            }
            let taken: BTreeSet<_> = held.values().map(|(s, _)| s.network).collect();
            let Some(slice) = berth_net::free_slice(&net.subnet, &taken) else {
                return Err(EcsError::new(
                    ErrorKind::ClientException,
                    format!(
                        "network: no free /{} slice of {} (bridge {}) left for host {host}: {} hosts hold them all",
                        net.subnet.slice_prefix(),
                        net.subnet,
                        net.bridge,
                        held.len()
                    ),
                ));
            };
            let op = Op::Put {
                key: keys::slice(&net.bridge, slice.network),
                value: host.as_bytes().to_vec(),
                expect: Expect::Absent,
            };
            Ok(self.store.commit(&[op]).map(|_| slice))
        })
    }

    /// Every host's slice of `net` (with the revision of its lease), by
    /// host id; none with the embedded store.
    pub fn slices(&self, net: &NetworkConfig) -> EcsResult<BTreeMap<String, (Subnet, u64)>> {
        let mut out = BTreeMap::new();
        for (key, rec) in self.store.list(&keys::slices_of(&net.bridge))? {
            // A key of another cut (a network re-made on the bridge with
            // another subnet) is no slice of this one.
            let Some(slice) = keys::parse_slice(&key).and_then(|n| net.subnet.slice_at(n)) else {
                continue;
            };
            let host = String::from_utf8_lossy(&rec.value).to_string();
            out.insert(host, (slice, rec.revision));
        }
        Ok(out)
    }

    /// Whether this host routes a slice of the network on `bridge` to the
    /// other hosts: it holds one, and its agent recorded its address on an
    /// instance in a cluster on that bridge. Never with the embedded store.
    pub fn routes_slice(&self, bridge: &str) -> EcsResult<bool> {
        if !self.store.shared() {
            return Ok(false);
        }
        let mine = |rec: &crate::store::Record| rec.value == self.host.id.as_bytes();
        if !self
            .store
            .list(&keys::slices_of(bridge))?
            .iter()
            .any(|(_, r)| mine(r))
        {
            return Ok(false);
        }
        for (_, rec) in self.store.list(keys::CLUSTERS)? {
            let c: Cluster = decode(&rec.value)?;
            if c.status != ClusterStatus::Active || self.cluster_network(&c)?.bridge != bridge {
                continue;
            }
            if let Some(rec) = self
                .store
                .get(&keys::instance(&c.cluster_name, &self.host.id))?
            {
                if instance_address(&decode(&rec.value)?).is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The operations that free `host`'s slice of `cluster`'s network as
    /// its instance leaves the cluster, unless the host still has an
    /// instance in another cluster on the same bridge (whose tasks use it).
    pub(crate) fn release_slice_ops(&self, cluster: &Cluster, host: &str) -> EcsResult<Vec<Op>> {
        if !self.store.shared() {
            return Ok(Vec::new());
        }
        let net = self.cluster_network(cluster)?;
        for (_, rec) in self.store.list(keys::CLUSTERS)? {
            let other: Cluster = decode(&rec.value)?;
            if other.cluster_name == cluster.cluster_name || other.status != ClusterStatus::Active {
                continue;
            }
            let same_bridge = self.cluster_network(&other)?.bridge == net.bridge;
            if same_bridge
                && self
                    .store
                    .get(&keys::instance(&other.cluster_name, host))?
                    .is_some()
            {
                return Ok(Vec::new());
            }
        }
        Ok(self
            .slices(&net)?
            .get(host)
            .map(|(slice, revision)| Op::Delete {
                key: keys::slice(&net.bridge, slice.network),
                expect: Expect::Revision(*revision),
            })
            .into_iter()
            .collect())
    }
}

/// The underlay address an instance's attribute holds.
pub fn instance_address(ci: &ContainerInstance) -> Option<Ipv4Addr> {
    ci.attributes
        .iter()
        .find(|a| a.name == HOST_ADDRESS_ATTRIBUTE)
        .and_then(|a| a.value.as_deref()?.parse().ok())
}

/// Ecs handles of several hosts over one store that says it is shared:
/// the embedded SQLite store, shared by handles in one process, with
/// `shared()` true, stands in for etcd in unit tests (the etcd backend
/// passes the same store contract).
#[cfg(test)]
pub(crate) mod fixtures {
    use std::sync::Arc;

    use crate::ecs::Ecs;
    use crate::host::Host;
    use crate::model::Partition;
    use crate::store::{Op, Record, SqliteStore, Store, StoreResult};

    struct Shared(Arc<SqliteStore>);

    impl Store for Shared {
        fn get(&self, key: &str) -> StoreResult<Option<Record>> {
            self.0.get(key)
        }
        fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>> {
            self.0.list(prefix)
        }
        fn commit(&self, ops: &[Op]) -> StoreResult<u64> {
            self.0.commit(ops)
        }
        fn acquire_lease(
            &self,
            name: &str,
            holder: &str,
            ttl: std::time::Duration,
        ) -> StoreResult<bool> {
            self.0.acquire_lease(name, holder, ttl)
        }
        fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
            self.0.release_lease(name, holder)
        }
        fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
            self.0.lease_holder(name)
        }
        fn lease_holders(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
            self.0.lease_holders(prefix)
        }
        fn revision(&self) -> StoreResult<u64> {
            self.0.revision()
        }
        fn wait(
            &self,
            prefix: &str,
            after: u64,
            timeout: std::time::Duration,
        ) -> StoreResult<bool> {
            self.0.wait(prefix, after, timeout)
        }
        fn shared(&self) -> bool {
            true
        }
    }

    /// One Ecs per host id in `hosts`, all over one shared store.
    pub(crate) fn hosts(hosts: &[&str]) -> (tempfile::TempDir, Vec<Ecs>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("store"));
        let ecs = hosts
            .iter()
            .map(|id| {
                let host = Host {
                    id: id.to_string(),
                    hostname: format!("host-{id}"),
                    cpu_units: 4096,
                    memory_mib: 4096,
                    arch: "x86_64".into(),
                };
                Ecs::with_store(Box::new(Shared(store.clone())), Partition::default(), host)
                    .expect("ecs")
            })
            .collect();
        (dir, ecs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    fn net(subnet: &str) -> NetworkConfig {
        NetworkConfig::new("lab0", subnet, ("bridge", "subnet")).expect("net")
    }

    #[test]
    fn one_host_of_the_embedded_store_has_the_whole_network() {
        let (_d, ecs) = ecs();
        let n = net("10.77.0.0/16");
        assert_eq!(ecs.host_slice(&n, "h1").expect("slice"), n.subnet);
        assert!(ecs.slices(&n).expect("none").is_empty());
        let cluster = ecs.cluster(None).expect("default");
        assert!(ecs
            .release_slice_ops(&cluster, "h1")
            .expect("ops")
            .is_empty());
    }

    #[test]
    fn each_host_leases_its_own_slice_once() {
        let (_d, hosts) = fixtures::hosts(&["h1", "h2"]);
        let n = net("10.77.0.0/16");
        let a = hosts[0].host_slice(&n, "h1").expect("h1");
        let b = hosts[1].host_slice(&n, "h2").expect("h2");
        assert_eq!(a.to_string(), "10.77.0.0/24");
        assert_eq!(b.to_string(), "10.77.1.0/24");
        // Asked again, from any host: the same slice.
        assert_eq!(hosts[1].host_slice(&n, "h1").expect("again"), a);
        let held: Vec<(String, String)> = hosts[0]
            .slices(&n)
            .expect("slices")
            .into_iter()
            .map(|(h, (s, _))| (h, s.to_string()))
            .collect();
        assert_eq!(
            held,
            [
                ("h1".to_string(), "10.77.0.0/24".to_string()),
                ("h2".to_string(), "10.77.1.0/24".to_string())
            ]
        );
    }

    #[test]
    fn a_small_network_runs_out_of_slices_with_a_clear_error() {
        let (_d, hosts) = fixtures::hosts(&["h1"]);
        let n = net("10.77.0.0/24");
        let slices: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|h| hosts[0].host_slice(&n, h).expect("slice").to_string())
            .collect();
        assert_eq!(
            slices,
            [
                "10.77.0.0/26",
                "10.77.0.64/26",
                "10.77.0.128/26",
                "10.77.0.192/26"
            ]
        );
        let e = hosts[0].host_slice(&n, "e").expect_err("full");
        assert!(
            e.message
                .starts_with("network: no free /26 slice of 10.77.0.0/24"),
            "{}",
            e.message
        );
    }

    #[test]
    fn concurrent_hosts_never_share_a_slice() {
        let ids: Vec<String> = (0..6).map(|i| format!("h{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (_d, hosts) = fixtures::hosts(&refs);
        let n = net("10.77.0.0/16");
        let slices: BTreeSet<String> = std::thread::scope(|s| {
            let runs: Vec<_> = hosts
                .iter()
                .zip(&ids)
                .map(|(ecs, id)| s.spawn(|| ecs.host_slice(&n, id).expect("slice").to_string()))
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("thread"))
                .collect()
        });
        assert_eq!(slices.len(), 6);
    }

    #[test]
    fn a_task_takes_its_address_from_the_slice_of_the_host_it_lands_on() {
        use crate::ecs::RunTask;
        use crate::model::TaskDefinition;
        let (_d, hosts) = fixtures::hosts(&["h1", "h2"]);
        hosts[0]
            .create_cluster("lab", vec![], Some(net("10.77.0.0/16")))
            .expect("lab");
        for ecs in &hosts {
            // As each host's agent does: a live lease, then the instance.
            let ttl = std::time::Duration::from_secs(600);
            assert!(ecs.renew_agent_lease("lab", ttl).expect("lease"));
            ecs.register_agent("lab", &[]).expect("register");
        }
        let td: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "web",
            "networkMode": "awsvpc",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": 64 }],
        }))
        .expect("td");
        hosts[0].register_task_definition(td).expect("register");
        let req = RunTask {
            cluster: Some("lab".into()),
            task_definition: "web".into(),
            ..Default::default()
        };
        let on = |host: &str| {
            let (out, tasks) = hosts[0]
                .start_task(&req, &[host.to_string()])
                .expect("start-task");
            assert_eq!(tasks.len(), 1, "{out}");
            let n = tasks[0].berth.as_ref().and_then(|b| b.network.clone());
            let n = n.expect("network");
            (n.address, n.prefix, n.gateway)
        };
        let h2 = hosts[1].host_slice(&net("10.77.0.0/16"), "h2").expect("h2");
        assert_eq!(
            on("h2"),
            (
                format!(
                    "{}",
                    berth_net::allocate(&h2, &BTreeSet::new()).expect("first")
                ),
                24,
                h2.gateway().to_string()
            )
        );
        let h1 = hosts[0].host_slice(&net("10.77.0.0/16"), "h1").expect("h1");
        assert_ne!(h1, h2);
        assert_eq!(on("h1").2, h1.gateway().to_string());
        assert_eq!(on("h2").0, {
            let mut second = h2.gateway().octets();
            second[3] += 2;
            std::net::Ipv4Addr::from(second).to_string()
        });
    }

    #[test]
    fn each_host_address_is_kept_on_its_instances() {
        let (_d, hosts) = fixtures::hosts(&["h1", "h2", "h3"]);
        hosts[0]
            .create_cluster("lab", vec![], Some(net("10.77.0.0/16")))
            .expect("lab");
        let lab = hosts[0].cluster(Some("lab")).expect("lab");
        for (i, ecs) in hosts.iter().enumerate() {
            ecs.host_instance(&lab).expect("register");
            if i < 2 {
                ecs.set_host_address(Ipv4Addr::new(192, 0, 2, 1 + i as u8));
            }
            ecs.record_host_address(&lab).expect("record");
            // Unchanged: no new version.
            ecs.record_host_address(&lab).expect("again");
        }
        let h1 = hosts[0].host_instance(&lab).expect("h1");
        assert_eq!(instance_address(&h1), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(h1.version, 2);
        let addresses = hosts[2].host_addresses(&net("10.77.0.0/16")).expect("all");
        assert_eq!(
            addresses.into_iter().collect::<Vec<_>>(),
            [
                ("h1".to_string(), Ipv4Addr::new(192, 0, 2, 1)),
                ("h2".to_string(), Ipv4Addr::new(192, 0, 2, 2))
            ]
        );
        // Another bridge's clusters are not asked.
        let other = NetworkConfig::new("lab1", "10.78.0.0/16", ("b", "s")).expect("net");
        assert!(hosts[0].host_addresses(&other).expect("none").is_empty());
    }

    #[test]
    fn the_slice_is_freed_with_the_hosts_last_instance_on_the_bridge() {
        let (_d, hosts) = fixtures::hosts(&["h1"]);
        let ecs = &hosts[0];
        ecs.create_cluster("a", vec![], Some(net("10.77.0.0/16")))
            .expect("a");
        ecs.create_cluster("b", vec![], Some(net("10.77.0.0/16")))
            .expect("b");
        let a = ecs.cluster(Some("a")).expect("a");
        let b = ecs.cluster(Some("b")).expect("b");
        ecs.host_instance(&a).expect("in a");
        ecs.host_instance(&b).expect("in b");
        ecs.host_slice(&net("10.77.0.0/16"), "h1").expect("slice");
        // Still in b, on the same bridge: the slice stays.
        assert!(ecs.release_slice_ops(&a, "h1").expect("ops").is_empty());
        ecs.deregister_container_instance(Some("b"), "h1", false)
            .expect("leave b");
        assert_eq!(ecs.slices(&net("10.77.0.0/16")).expect("held").len(), 1);
        // Held but not routed (no address recorded): the bridge is unused.
        assert!(!ecs.addresses_in_use("lab0").expect("unused"));
        // Routed: it counts as used while the host holds its slice.
        ecs.set_host_address(Ipv4Addr::new(192, 0, 2, 1));
        ecs.record_host_address(&a).expect("record");
        assert!(ecs.addresses_in_use("lab0").expect("in use"));
        ecs.deregister_container_instance(Some("a"), "h1", false)
            .expect("leave a");
        assert!(ecs.slices(&net("10.77.0.0/16")).expect("freed").is_empty());
        assert!(!ecs.addresses_in_use("lab0").expect("unused"));
    }
}

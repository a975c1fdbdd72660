//! Clusters and the networks their tasks join (the network rules are
//! `networks.rs`'s).

use serde_json::json;

use super::{decode, encode, retry, Ecs, NetworkConfig, DEFAULT_CLUSTER};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{
    name_from_arn, Cluster, ClusterStatus, Failure, Service, ServiceStatus, Tag, TaskStatus,
};
use crate::names;
use crate::store::{keys, Expect, Op, StoreError};

fn not_found(name: &str) -> EcsError {
    EcsError::new(
        ErrorKind::ClusterNotFoundException,
        format!("Cluster not found: {name}"),
    )
}

impl Ecs {
    /// The `default` cluster exists on first use, as in ECS.
    pub(super) fn ensure_cluster(&self, name: &str) -> EcsResult<()> {
        if self.store.get(&keys::cluster(name))?.is_some() {
            return Ok(());
        }
        let cluster = self.new_cluster(name, Vec::new(), &self.network);
        match self.store.commit(&[Op::Put {
            key: keys::cluster(name),
            value: encode(&cluster)?,
            expect: Expect::Absent,
        }]) {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn new_cluster(&self, name: &str, tags: Vec<Tag>, network: &NetworkConfig) -> Cluster {
        Cluster {
            cluster_arn: self.cluster_arn(name),
            cluster_name: name.to_string(),
            status: ClusterStatus::Active,
            tags,
            network: Some(network.record()),
            ..Default::default()
        }
    }

    /// The network `cluster`'s tasks join.
    pub fn cluster_network(&self, cluster: &Cluster) -> EcsResult<NetworkConfig> {
        match &cluster.network {
            Some(n) => {
                NetworkConfig::new(&n.bridge, &n.subnet, ("network.bridge", "network.subnet"))
            }
            None => Ok(self.network.clone()),
        }
    }

    /// The network for a cluster on `bridge`: with `subnet`, or the subnet
    /// the bridge already has, or else the first free /24 of 10.89.0.0/16
    /// (as Podman picks for a new network).
    pub fn network_for(&self, bridge: &str, subnet: Option<&str>) -> EcsResult<NetworkConfig> {
        if let Some(subnet) = subnet {
            return NetworkConfig::new(bridge, subnet, ("bridge", "subnet"));
        }
        NetworkConfig::for_bridge(bridge, &self.cluster_networks()?)
    }

    /// The networks of every ACTIVE cluster, by cluster name.
    pub fn cluster_networks(&self) -> EcsResult<Vec<(String, NetworkConfig)>> {
        let mut nets = Vec::new();
        for (_, rec) in self.store.list(keys::CLUSTERS)? {
            let c: Cluster = decode(&rec.value)?;
            if c.status == ClusterStatus::Active {
                nets.push((c.cluster_name.clone(), self.cluster_network(&c)?));
            }
        }
        Ok(nets)
    }

    /// The ACTIVE cluster a name or ARN refers to (default when absent).
    pub fn cluster(&self, name_or_arn: Option<&str>) -> EcsResult<Cluster> {
        let name = names::lookup("cluster", name_or_arn.unwrap_or(DEFAULT_CLUSTER))?;
        match self.store.get(&keys::cluster(name))? {
            Some(rec) => {
                // Without counts: counting reads every task of the cluster,
                // which only describe-clusters needs.
                let c: Cluster = decode(&rec.value)?;
                if c.status == ClusterStatus::Active {
                    return Ok(c);
                }
                Err(EcsError::new(
                    ErrorKind::ClusterNotFoundException,
                    format!("Cluster not found: {name} is INACTIVE"),
                ))
            }
            None => Err(not_found(name)),
        }
    }

    /// Cluster `name`'s record changed by `change`, written back (again
    /// on a concurrent write); the cluster as written.
    pub(super) fn change_cluster(
        &self,
        name: &str,
        change: impl Fn(&mut Cluster),
    ) -> EcsResult<Cluster> {
        retry(|| {
            let rec = self
                .store
                .get(&keys::cluster(name))?
                .ok_or_else(|| not_found(name))?;
            let mut c: Cluster = decode(&rec.value)?;
            change(&mut c);
            let op = Op::Put {
                key: keys::cluster(name),
                value: encode(&c)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| c))
        })
    }

    /// Counts ECS reports with a cluster, from what the store holds.
    pub(super) fn with_counts(&self, mut c: Cluster) -> EcsResult<Cluster> {
        let count =
            |prefix: String| -> EcsResult<u64> { Ok(self.store.list(&prefix)?.len() as u64) };
        c.registered_container_instances_count = count(keys::instances_of(&c.cluster_name))?;
        // Deleted services stay describable as INACTIVE: not counted.
        c.active_services_count = 0;
        for (_, rec) in self.store.list(&keys::services_of(&c.cluster_name))? {
            if decode::<Service>(&rec.value)?.status == ServiceStatus::Active {
                c.active_services_count += 1;
            }
        }
        let mut running = 0;
        let mut pending = 0;
        for (_, rec) in self.store.list(&keys::tasks_of(&c.cluster_name))? {
            let task: serde_json::Value = decode(&rec.value)?;
            match task["lastStatus"].as_str().map(TaskStatus::parse) {
                Some(TaskStatus::Running) => running += 1,
                Some(TaskStatus::Stopped) => {}
                _ => pending += 1,
            }
        }
        c.running_tasks_count = running;
        c.pending_tasks_count = pending;
        Ok(c)
    }

    /// `network`: the cluster's own bridge and subnet (the host's default
    /// when absent).
    pub fn create_cluster(
        &self,
        name: &str,
        tags: Vec<Tag>,
        network: Option<NetworkConfig>,
    ) -> EcsResult<serde_json::Value> {
        names::check("clusterName", name)?;
        crate::tags::check("tags", &tags)?;
        let network = network.unwrap_or_else(|| self.network.clone());
        let cluster = retry(|| {
            let existing = self.store.get(&keys::cluster(name))?;
            let expect = match existing {
                // CreateCluster is idempotent for an ACTIVE cluster with the
                // same network.
                Some(rec) => {
                    let c: Cluster = decode(&rec.value)?;
                    if c.status == ClusterStatus::Active {
                        let theirs = self.cluster_network(&c)?;
                        if theirs != network {
                            return Err(EcsError::invalid(format!(
                                "network: cluster {name} exists on bridge {} ({})",
                                theirs.bridge, theirs.subnet
                            )));
                        }
                        return Ok(Ok(c));
                    }
                    Expect::Revision(rec.revision)
                }
                None => Expect::Absent,
            };
            for (other, theirs) in self.cluster_networks()? {
                if let Some(why) = network.clash(&theirs) {
                    return Err(EcsError::invalid(format!(
                        "network: {why} (cluster {other})"
                    )));
                }
            }
            let cluster = self.new_cluster(name, tags.clone(), &network);
            let op = Op::Put {
                key: keys::cluster(name),
                value: encode(&cluster)?,
                expect,
            };
            Ok(self.store.commit(&[op]).map(|_| cluster))
        })?;
        Ok(json!({ "cluster": self.with_counts(cluster)? }))
    }

    pub fn describe_clusters(&self, names: &[String]) -> EcsResult<serde_json::Value> {
        let names: Vec<String> = if names.is_empty() {
            vec![DEFAULT_CLUSTER.to_string()]
        } else {
            names.to_vec()
        };
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for n in &names {
            let name = name_from_arn(n);
            if let Err(e) = names::check("clusters", name) {
                failures.push(Failure::on(n, "MISSING", Some(e.message)));
                continue;
            }
            match self.store.get(&keys::cluster(name))? {
                Some(rec) => clusters.push(self.with_counts(decode(&rec.value)?)?),
                None => failures.push(Failure::missing(&self.cluster_arn(name))),
            }
        }
        Ok(json!({ "clusters": clusters, "failures": failures }))
    }

    pub fn list_clusters(&self) -> EcsResult<serde_json::Value> {
        let mut arns = Vec::new();
        for (_, rec) in self.store.list(keys::CLUSTERS)? {
            let c: Cluster = decode(&rec.value)?;
            if c.status == ClusterStatus::Active {
                arns.push(c.cluster_arn);
            }
        }
        Ok(json!({ "clusterArns": arns }))
    }

    /// Whether a deleted service of `cluster` still stops its tasks.
    fn draining_services(&self, cluster: &str) -> EcsResult<bool> {
        for (_, rec) in self.store.list(&keys::services_of(cluster))? {
            if decode::<Service>(&rec.value)?.status == ServiceStatus::Draining {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The ops deleting this host's implicit container instance of
    /// `cluster` (a store of its own only; none when it is not there).
    fn implicit_instance_removal(&self, cluster: &str) -> EcsResult<Vec<Op>> {
        if self.store.shared() {
            return Ok(Vec::new());
        }
        let key = keys::instance(cluster, &self.host.id);
        Ok(match self.store.get(&key)? {
            Some(rec) => vec![Op::Delete {
                key,
                expect: Expect::Revision(rec.revision),
            }],
            None => Vec::new(),
        })
    }

    pub fn delete_cluster(&self, name_or_arn: &str) -> EcsResult<serde_json::Value> {
        let name = names::lookup("cluster", name_or_arn)?.to_string();
        let cluster = retry(|| {
            let rec = self
                .store
                .get(&keys::cluster(&name))?
                .ok_or_else(|| not_found(&name))?;
            let c = self.with_counts(decode(&rec.value)?)?;
            if c.running_tasks_count + c.pending_tasks_count > 0 {
                return Err(EcsError::new(
                    ErrorKind::ClusterContainsTasksException,
                    "The Cluster cannot be deleted while Tasks are active.",
                ));
            }
            if c.active_services_count > 0 || self.draining_services(&name)? {
                return Err(EcsError::new(
                    ErrorKind::ClusterContainsServicesException,
                    "The Cluster cannot be deleted while Services are active.",
                ));
            }
            // This host's implicit instance (a store of its own) goes with
            // the cluster once it runs nothing (no task is left, above):
            // Terraform's destroy deletes the cluster right after its
            // services. Any other instance must be deregistered first.
            let mut ops = self.implicit_instance_removal(&name)?;
            if c.registered_container_instances_count > ops.len() as u64 {
                return Err(EcsError::new(
                    ErrorKind::ClusterContainsContainerInstancesException,
                    "The Cluster cannot be deleted while Container Instances are active.",
                ));
            }
            let mut inactive = c;
            inactive.status = ClusterStatus::Inactive;
            inactive.registered_container_instances_count = 0;
            ops.push(Op::Put {
                key: keys::cluster(&name),
                value: encode(&inactive)?,
                expect: Expect::Revision(rec.revision),
            });
            Ok(self.store.commit(&ops).map(|_| inactive))
        })?;
        Ok(json!({ "cluster": cluster }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::{ecs, register_web};

    #[test]
    fn clusters() {
        let (_d, ecs) = ecs();
        let listed = ecs.list_clusters().expect("list");
        assert_eq!(
            listed["clusterArns"][0],
            "arn:aws:ecs:local:000000000000:cluster/default"
        );
        let c = ecs
            .create_cluster(
                "lab",
                vec![Tag {
                    key: "team".into(),
                    value: "x".into(),
                }],
                None,
            )
            .expect("create");
        assert_eq!(c["cluster"]["status"], "ACTIVE");
        assert_eq!(
            ecs.create_cluster("lab", vec![], None).expect("again")["cluster"]["tags"][0]["key"],
            "team"
        );
        let d = ecs
            .describe_clusters(&["lab".into(), "nope".into()])
            .expect("describe");
        assert_eq!(d["clusters"][0]["clusterName"], "lab");
        assert_eq!(d["failures"][0]["reason"], "MISSING");
        assert_eq!(
            ecs.delete_cluster("lab").expect("delete")["cluster"]["status"],
            "INACTIVE"
        );
        assert_eq!(
            ecs.cluster(Some("lab")).unwrap_err().kind,
            ErrorKind::ClusterNotFoundException
        );
        assert!(ecs.create_cluster("bad name", vec![], None).is_err());
    }

    #[test]
    fn cluster_networks() {
        let (_d, ecs) = ecs();
        let net = |b: &str, s: &str| NetworkConfig::new(b, s, ("bridge", "subnet")).expect("net");
        let own = ecs
            .create_cluster("lab", vec![], Some(net("lab0", "10.77.0.0/24")))
            .expect("own network");
        assert_eq!(own["cluster"]["network"]["bridge"], "lab0");
        // Sharing a bridge means sharing its subnet.
        ecs.create_cluster("lab2", vec![], Some(net("lab0", "10.77.0.0/24")))
            .expect("shared bridge");
        for (name, bad) in [
            ("a", net("lab0", "10.78.0.0/24")),
            ("b", net("lab1", "10.77.0.128/25")),
            ("c", net("lab1", "10.0.0.0/8")),
            // The same cluster again, elsewhere.
            ("lab", net("lab1", "10.79.0.0/24")),
        ] {
            let e = ecs.create_cluster(name, vec![], Some(bad)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameterException, "{name}");
            assert!(e.message.starts_with("network: "), "{}", e.message);
            assert!(ecs.cluster(Some(name)).is_err() || name == "lab");
        }
        // A bridge alone: the subnet it has, or a free one.
        assert_eq!(
            ecs.network_for("lab0", None).expect("known").subnet,
            net("lab0", "10.77.0.0/24").subnet
        );
        let fresh = ecs.network_for("lab9", None).expect("fresh");
        assert_eq!(fresh.subnet.to_string(), "10.89.0.0/24");
        ecs.create_cluster("lab9", vec![], Some(fresh))
            .expect("lab9");
        assert_eq!(
            ecs.network_for("lab8", None)
                .expect("next")
                .subnet
                .to_string(),
            "10.89.1.0/24"
        );
        for (bridge, subnet) in [
            ("", "10.1.0.0/24"),
            ("x y", "10.1.0.0/24"),
            ("a", "10.1.0.0"),
        ] {
            assert!(NetworkConfig::new(bridge, subnet, ("b", "s")).is_err());
        }
    }

    #[test]
    fn delete_cluster_takes_the_implicit_instance_along() {
        let (_d, ecs) = ecs();
        ecs.create_cluster("lab", vec![], None).expect("create");
        register_web(&ecs);
        let req = crate::ecs::RunTask {
            cluster: Some("lab".into()),
            task_definition: "web".into(),
            count: 1,
            ..Default::default()
        };
        let (_, placed) = ecs.run_task(&req).expect("run");
        let e = ecs.delete_cluster("lab").unwrap_err();
        assert_eq!(e.kind, ErrorKind::ClusterContainsTasksException);
        ecs.update_task("lab", placed[0].id(), |t| {
            t.last_status = TaskStatus::Stopped;
            t.desired_status = crate::model::DesiredStatus::Stopped;
        })
        .expect("stop");
        let out = ecs.delete_cluster("lab").expect("delete");
        assert_eq!(out["cluster"]["status"], "INACTIVE");
        assert_eq!(out["cluster"]["registeredContainerInstancesCount"], 0);
        assert!(ecs
            .store
            .list(&keys::instances_of("lab"))
            .expect("list")
            .is_empty());
    }
}

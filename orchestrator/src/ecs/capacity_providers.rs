//! DescribeCapacityProviders and PutClusterCapacityProviders: the
//! built-in FARGATE and FARGATE_SPOT, and which of them a cluster uses
//! (in its record, with its default strategy). The rules are
//! `capacity.rs`'s.

use serde_json::{json, Value};

use super::{decode, Ecs};
use crate::capacity;
pub use crate::capacity::BUILT_IN;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{name_from_arn, CapacityProviderStrategyItem, Failure, Service};
use crate::store::keys;

impl Ecs {
    /// The built-in providers named (all when none is), in ECS's shape;
    /// other names are MISSING failures.
    pub fn describe_capacity_providers(
        &self,
        names: &[String],
        cluster: Option<&str>,
    ) -> EcsResult<Value> {
        if cluster.is_some() {
            self.cluster(cluster)?;
        }
        let wanted: Vec<String> = if names.is_empty() {
            BUILT_IN.iter().map(|s| s.to_string()).collect()
        } else {
            names.to_vec()
        };
        let mut providers = Vec::new();
        let mut failures = Vec::new();
        for n in &wanted {
            match capacity::built_in("capacityProviders", n) {
                Ok(name) => providers.push(json!({
                    "capacityProviderArn": self.partition.arn(&format!("capacity-provider/{name}")),
                    "name": name,
                    "status": "ACTIVE",
                    "type": name,
                    "tags": [],
                })),
                Err(_) => failures.push(Failure::missing(n)),
            }
        }
        Ok(json!({ "capacityProviders": providers, "failures": failures }))
    }

    /// Set the providers `cluster` uses and its default strategy. A
    /// provider a service's strategy names cannot be taken away
    /// (ResourceInUseException).
    pub fn put_cluster_capacity_providers(
        &self,
        cluster: &str,
        providers: &[String],
        strategy: &[CapacityProviderStrategyItem],
    ) -> EcsResult<Value> {
        let name = self.cluster(Some(cluster))?.cluster_name;
        let mut names: Vec<String> = Vec::new();
        for (i, p) in providers.iter().enumerate() {
            let n = capacity::built_in(&format!("capacityProviders[{i}]"), p)?;
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        capacity::check_strategy("defaultCapacityProviderStrategy", strategy, Some(&names))?;
        let strategy: Vec<CapacityProviderStrategyItem> = strategy
            .iter()
            .map(|i| CapacityProviderStrategyItem {
                capacity_provider: name_from_arn(&i.capacity_provider).to_string(),
                ..i.clone()
            })
            .collect();
        self.check_providers_unused(&name, &names)?;
        let updated = self.change_cluster(&name, |c| {
            c.capacity_providers = names.clone();
            c.default_capacity_provider_strategy = strategy.clone();
        })?;
        Ok(json!({ "cluster": self.with_counts(updated)? }))
    }

    /// Refuse to drop a provider an ACTIVE service of `cluster` uses.
    fn check_providers_unused(&self, cluster: &str, keep: &[String]) -> EcsResult<()> {
        for (_, rec) in self.store.list(&keys::services_of(cluster))? {
            let s: Service = decode(&rec.value)?;
            if s.status == crate::model::ServiceStatus::Inactive {
                continue;
            }
            for item in &s.capacity_provider_strategy {
                let p = name_from_arn(&item.capacity_provider);
                if !keep.iter().any(|k| k == p) {
                    return Err(EcsError::new(
                        ErrorKind::ResourceInUseException,
                        format!(
                            "capacityProviders: {p} is in use by service {}: \
                             The specified capacity provider is in use and cannot be removed.",
                            s.service_name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::{ecs, register};

    #[test]
    fn built_ins_and_a_clusters_choice() {
        let (_d, ecs) = ecs();
        let d = ecs
            .describe_capacity_providers(&[], None)
            .expect("describe");
        assert_eq!(d["capacityProviders"][1]["name"], "FARGATE_SPOT");
        let d = ecs
            .describe_capacity_providers(&["FARGATE".into(), "EC2".into()], None)
            .expect("describe");
        assert_eq!(d["capacityProviders"].as_array().map(Vec::len), Some(1));
        assert_eq!(d["failures"][0]["reason"], "MISSING");
        let item = |p: &str, weight, base| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight,
            base,
        };
        let out = ecs
            .put_cluster_capacity_providers(
                "default",
                &["FARGATE".into(), "FARGATE_SPOT".into()],
                &[item("FARGATE", 1, 1)],
            )
            .expect("put");
        assert_eq!(out["cluster"]["capacityProviders"][1], "FARGATE_SPOT");
        assert_eq!(
            out["cluster"]["defaultCapacityProviderStrategy"][0]["base"],
            1
        );
        let e = ecs
            .put_cluster_capacity_providers(
                "default",
                &["FARGATE".into()],
                &[item("FARGATE_SPOT", 1, 0)],
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterException);
        let e = ecs
            .put_cluster_capacity_providers("nope", &[], &[])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ClusterNotFoundException);
    }

    #[test]
    fn run_task_follows_the_strategy() {
        let (_d, ecs) = ecs();
        register(
            &ecs,
            json!({
                "family": "web",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [{ "name": "a", "image": "busybox" }],
            }),
        );
        let item = |p: &str, weight, base| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight,
            base,
        };
        let req = crate::ecs::RunTask {
            task_definition: "web".into(),
            count: 3,
            capacity_provider_strategy: vec![item("FARGATE", 0, 1), item("FARGATE_SPOT", 1, 0)],
            ..Default::default()
        };
        let e = ecs.run_task(&req).unwrap_err();
        assert!(e.message.contains("not associated"), "{}", e.message);
        ecs.put_cluster_capacity_providers(
            "default",
            &["FARGATE".into(), "FARGATE_SPOT".into()],
            &[item("FARGATE", 1, 0)],
        )
        .expect("put");
        let (out, _) = ecs.run_task(&req).expect("run");
        let names: Vec<&str> = out["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["capacityProviderName"].as_str())
            .collect();
        assert_eq!(names, ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT"]);
        assert_eq!(out["tasks"][0]["launchType"], "FARGATE");
        // No launch type and no strategy: the cluster's default strategy.
        let plain = crate::ecs::RunTask {
            count: 1,
            capacity_provider_strategy: vec![],
            ..req.clone()
        };
        let (out, _) = ecs.run_task(&plain).expect("default strategy");
        assert_eq!(out["tasks"][0]["capacityProviderName"], "FARGATE");
        let both = crate::ecs::RunTask {
            launch_type: Some(crate::model::LaunchType::Fargate),
            ..req
        };
        assert!(ecs.run_task(&both).is_err(), "exclusive with a launch type");
    }
}

//! Container instances: this host's, registered on first use, and the
//! ECS actions on them.

use serde_json::{json, Value};

use super::{decode, encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::model::{
    name_from_arn, Attribute, Cluster, ContainerInstance, Failure, InstanceStatus, Resource, Task,
    TaskStatus,
};
use crate::names;
use crate::store::{keys, Expect, Op, StoreError};

pub const AGENT_VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

impl Ecs {
    /// This host's container instance in `cluster`, registered on first use.
    pub fn host_instance(&self, cluster: &Cluster) -> EcsResult<ContainerInstance> {
        let key = keys::instance(&cluster.cluster_name, &self.host.id);
        if let Some(rec) = self.store.get(&key)? {
            return decode(&rec.value);
        }
        let instance = self.new_host_instance(cluster);
        match self.store.commit(&[Op::Put {
            key: key.clone(),
            value: encode(&instance)?,
            expect: Expect::Absent,
        }]) {
            Ok(_) => Ok(instance),
            // Another berth registered it meanwhile: theirs serves.
            Err(StoreError::Conflict(_)) => decode(
                &self
                    .store
                    .get(&key)?
                    .ok_or_else(|| EcsError::client("container instance vanished"))?
                    .value,
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// This host as a new container instance of `cluster`: its CPU,
    /// memory and facts, all of it remaining.
    pub(crate) fn new_host_instance(&self, cluster: &Cluster) -> ContainerInstance {
        let int = |name: &str, v: i64| Resource {
            name: name.into(),
            kind: "INTEGER".into(),
            integer_value: v,
            string_set_value: vec![],
        };
        let resources = vec![
            int("CPU", self.host.cpu_units),
            int("MEMORY", self.host.memory_mib),
        ];
        ContainerInstance {
            container_instance_arn: self.partition.arn(&format!(
                "container-instance/{}/{}",
                cluster.cluster_name, self.host.id
            )),
            ec2_instance_id: self.host.hostname.clone(),
            status: InstanceStatus::Active,
            agent_connected: true,
            registered_resources: resources.clone(),
            remaining_resources: resources,
            attributes: vec![
                Attribute {
                    name: "ecs.os-type".into(),
                    value: Some("linux".into()),
                },
                Attribute {
                    name: "ecs.cpu-architecture".into(),
                    value: Some(self.host.arch.clone()),
                },
                Attribute {
                    name: "ecs.instance-type".into(),
                    value: Some("berth-host".into()),
                },
            ],
            version_info: json!({ "agentVersion": AGENT_VERSION }),
            registered_at: now(),
            version: 1,
            ..Default::default()
        }
    }

    pub fn list_container_instances(&self, cluster: Option<&str>) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        self.implicit_instance(&cluster)?;
        let mut arns = Vec::new();
        for (_, rec) in self
            .store
            .list(&keys::instances_of(&cluster.cluster_name))?
        {
            arns.push(decode::<ContainerInstance>(&rec.value)?.container_instance_arn);
        }
        Ok(json!({ "containerInstanceArns": arns }))
    }

    pub fn describe_container_instances(
        &self,
        cluster: Option<&str>,
        ids: &[String],
    ) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        self.implicit_instance(&cluster)?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            if let Err(e) = names::check("containerInstances", name_from_arn(id)) {
                failures.push(Failure::on(id, "MISSING", Some(e.message)));
                continue;
            }
            match self
                .store
                .get(&keys::instance(&cluster.cluster_name, name_from_arn(id)))?
            {
                Some(rec) => {
                    let mut ci: ContainerInstance = decode(&rec.value)?;
                    let (running, pending) =
                        self.task_counts(&cluster.cluster_name, Some(&ci.container_instance_arn))?;
                    ci.running_tasks_count = running;
                    ci.pending_tasks_count = pending;
                    ci.agent_connected = self.agent_connected(&cluster.cluster_name, ci.id())?;
                    found.push(ci);
                }
                None => failures.push(Failure::missing(id)),
            }
        }
        Ok(json!({ "containerInstances": found, "failures": failures }))
    }

    fn task_counts(&self, cluster: &str, instance: Option<&str>) -> EcsResult<(u64, u64)> {
        let (mut running, mut pending) = (0, 0);
        for (_, rec) in self.store.list(&keys::tasks_of(cluster))? {
            let t: Task = decode(&rec.value)?;
            if instance.is_some() && t.container_instance_arn.as_deref() != instance {
                continue;
            }
            match t.last_status {
                TaskStatus::Running => running += 1,
                TaskStatus::Stopped => {}
                _ => pending += 1,
            }
        }
        Ok((running, pending))
    }

    /// Place and record up to `count` tasks, reserving their CPU and memory
    /// on this host's instance in the same transaction; capacity that runs
    /// Register this host in `cluster` (again), adding custom attributes.
    pub fn register_container_instance(
        &self,
        cluster: Option<&str>,
        attributes: &[Attribute],
    ) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        self.host_instance(&cluster)?;
        let key = keys::instance(&cluster.cluster_name, &self.host.id);
        let ci = retry(|| {
            let rec = self
                .store
                .get(&key)?
                .ok_or_else(|| EcsError::client("container instance vanished"))?;
            let mut ci: ContainerInstance = decode(&rec.value)?;
            for a in attributes {
                if a.name.starts_with("ecs.") {
                    return Err(EcsError::invalid(format!(
                        "attributes: {:?}: names starting with ecs. are reserved",
                        a.name
                    )));
                }
                ci.attributes.retain(|x| x.name != a.name);
                ci.attributes.push(a.clone());
            }
            ci.status = InstanceStatus::Active;
            ci.version += 1;
            let op = Op::Put {
                key: key.clone(),
                value: encode(&ci)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| ci))
        })?;
        Ok(json!({ "containerInstance": ci }))
    }

    /// Set container instances ACTIVE or DRAINING; DRAINING ones get no new
    /// tasks.
    pub fn update_container_instances_state(
        &self,
        cluster: Option<&str>,
        ids: &[String],
        status: &InstanceStatus,
    ) -> EcsResult<Value> {
        if !matches!(status, InstanceStatus::Active | InstanceStatus::Draining) {
            return Err(EcsError::invalid(format!(
                "status: {:?} is not ACTIVE or DRAINING",
                status.as_str()
            )));
        }
        let cluster = self.cluster(cluster)?;
        self.implicit_instance(&cluster)?;
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            let key = keys::instance(
                &cluster.cluster_name,
                names::lookup("containerInstances", id)?,
            );
            let updated = retry(|| {
                let Some(rec) = self.store.get(&key)? else {
                    return Ok(Ok(None));
                };
                let mut ci: ContainerInstance = decode(&rec.value)?;
                ci.status = status.clone();
                ci.version += 1;
                let op = Op::Put {
                    key: key.clone(),
                    value: encode(&ci)?,
                    expect: Expect::Revision(rec.revision),
                };
                Ok(self.store.commit(&[op]).map(|_| Some(ci)))
            })?;
            match updated {
                Some(ci) => done.push(ci),
                None => failures.push(Failure::missing(id)),
            }
        }
        Ok(json!({ "containerInstances": done, "failures": failures }))
    }

    /// Remove a container instance from its cluster (refused while it runs
    /// tasks, unless `force`).
    pub fn deregister_container_instance(
        &self,
        cluster: Option<&str>,
        id: &str,
        force: bool,
    ) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let key = keys::instance(
            &cluster.cluster_name,
            names::lookup("containerInstance", id)?,
        );
        let rec = self
            .store
            .get(&key)?
            .ok_or_else(|| EcsError::invalid(format!("containerInstance: {id} not found")))?;
        let ci: ContainerInstance = decode(&rec.value)?;
        let (running, pending) =
            self.task_counts(&cluster.cluster_name, Some(&ci.container_instance_arn))?;
        if running + pending > 0 && !force {
            return Err(EcsError::invalid(format!(
                "containerInstance: {} has {} task(s) running; stop them or use --force",
                ci.id(),
                running + pending
            )));
        }
        // Its slice of the cluster network goes with it (issue 13).
        let mut ops = self.release_slice_ops(&cluster, ci.id())?;
        ops.push(Op::Delete {
            key,
            expect: Expect::Revision(rec.revision),
        });
        self.store.commit(&ops)?;
        let mut out = ci;
        out.status = InstanceStatus::Inactive;
        Ok(json!({ "containerInstance": out }))
    }
}

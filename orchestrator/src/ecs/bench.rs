//! `berth system placement-bench --through-store`: the scheduler against a
//! big store (issue 13's benchmark). A fresh cluster is seeded with
//! registered, connected container instances (agent leases alive for the
//! run) and RUNNING tasks on them, written through the [`Store`] trait in
//! transactions of at most [`BATCH`] operations; then real placements go
//! through [`Ecs::run_task`], count 10 a call, and are timed.
//!
//! The shapes (an instance, a task on it) are pure builders; [`Ecs`]'s
//! methods here only write them. Nothing starts the placed tasks: no agent
//! runs for the simulated hosts, and none is needed to time placement.
//!
//! [`Store`]: crate::store::Store

use std::time::{Duration, Instant};

use serde_json::json;

use super::{encode, now, Ecs, RunTask};
use crate::error::{EcsError, EcsResult};
use crate::model::{
    Attribute, ContainerInstance, InstanceStatus, LaunchType, Partition, Resource, Task,
    TaskDefinition, TaskInternals, TaskStatus,
};
use crate::store::{keys, Expect, Op};

/// Records seeded per commit: within the etcd store's 127 operations a
/// commit (etcd's default 128, less the commit's marker).
pub const BATCH: usize = 100;

/// What each seeded and placed task asks for (as the pure bench's).
pub const TASK_CPU: i64 = 128;
pub const TASK_MEMORY: i64 = 256;

/// The family every bench task is of: one container, no network, no ports.
pub const FAMILY: &str = "placement-bench";

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// (instance type, CPU units, MiB), as the pure bench's fleet.
const TYPES: [(&str, i64, i64); 3] = [
    ("m5.xlarge", 4096, 16384),
    ("m5.2xlarge", 8192, 32768),
    ("c5.2xlarge", 8192, 16384),
];

/// The bench's shape.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    pub cluster: String,
    pub instances: usize,
    pub tasks: usize,
    /// run-task calls of 10 to time.
    pub calls: usize,
    /// How long the seeded agent leases live: longer than the run.
    pub lease_ttl: Duration,
}

/// What the run measured.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub seeded_instances: usize,
    pub seeded_tasks: usize,
    pub seed_time: Duration,
    pub placed: usize,
    pub failures: usize,
    pub place_time: Duration,
}

/// The id of simulated host `n`: 32 hex digits, as a real host's.
pub fn host_id(n: usize) -> String {
    format!("{:032x}", 0xbe4c_0000_0000_0000_u64 as u128 + n as u128)
}

/// The id of seeded task `n`.
pub fn task_id(n: usize) -> String {
    format!("{:032x}", 0x7a5c_0000_0000_0000_u64 as u128 + n as u128)
}

fn int(name: &str, v: i64) -> Resource {
    Resource {
        name: name.into(),
        kind: "INTEGER".into(),
        integer_value: v,
        string_set_value: vec![],
    }
}

fn attribute(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: Some(value.into()),
    }
}

/// Simulated instance `n` of `cluster` holding `tasks` bench tasks: a
/// zone and instance type by turns, its CPU and memory less theirs.
pub fn instance(partition: &Partition, cluster: &str, n: usize, tasks: usize) -> ContainerInstance {
    let (instance_type, cpu, memory) = TYPES[n % TYPES.len()];
    let used = tasks as i64;
    ContainerInstance {
        container_instance_arn: partition
            .arn(&format!("container-instance/{cluster}/{}", host_id(n))),
        ec2_instance_id: format!("bench-{n}"),
        status: InstanceStatus::Active,
        agent_connected: true,
        registered_resources: vec![int("CPU", cpu), int("MEMORY", memory)],
        remaining_resources: vec![
            int("CPU", cpu - used * TASK_CPU),
            int("MEMORY", memory - used * TASK_MEMORY),
        ],
        attributes: vec![
            attribute("ecs.availability-zone", ZONES[(n / 7) % ZONES.len()]),
            attribute("ecs.instance-type", instance_type),
            attribute("ecs.os-type", "linux"),
            attribute("ecs.cpu-architecture", "x86_64"),
        ],
        version_info: json!({ "agentVersion": super::AGENT_VERSION }),
        registered_at: now(),
        version: 1,
        ..Default::default()
    }
}

/// Seeded task `n`, RUNNING on instance `on` of `cluster`.
pub fn task(partition: &Partition, cluster: &str, td_arn: &str, n: usize, on: usize) -> Task {
    let id = task_id(n);
    Task {
        task_arn: partition.arn(&format!("task/{cluster}/{id}")),
        cluster_arn: partition.arn(&format!("cluster/{cluster}")),
        task_definition_arn: td_arn.to_string(),
        container_instance_arn: Some(
            partition.arn(&format!("container-instance/{cluster}/{}", host_id(on))),
        ),
        last_status: TaskStatus::Running,
        desired_status: TaskStatus::Running,
        launch_type: LaunchType::Ec2,
        group: Some(format!("family:{FAMILY}")),
        version: 1,
        created_at: now(),
        connectivity: "CONNECTED".into(),
        berth: Some(TaskInternals {
            reserved_cpu: TASK_CPU as u64,
            reserved_memory: TASK_MEMORY as u64,
            host: Some(host_id(on)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How many of `tasks` go on instance `n` of `instances`: as evenly as
/// they divide, the first ones one more.
pub fn tasks_on(n: usize, instances: usize, tasks: usize) -> usize {
    if instances == 0 {
        return 0;
    }
    tasks / instances + usize::from(n < tasks % instances)
}

/// The bench's task definition: one busybox container, no network.
pub fn task_definition() -> EcsResult<TaskDefinition> {
    Ok(serde_json::from_value(json!({
        "family": FAMILY,
        "networkMode": "none",
        "containerDefinitions": [{
            "name": "app", "image": "busybox",
            "cpu": TASK_CPU, "memory": TASK_MEMORY,
            "command": ["sleep", "3600"]
        }]
    }))?)
}

impl Ecs {
    /// Seed `plan`'s cluster (which must not exist: the bench wants a
    /// fresh one) and time its placements.
    pub fn placement_bench(&self, plan: &BenchPlan) -> EcsResult<BenchReport> {
        if self.store.get(&keys::cluster(&plan.cluster))?.is_some() {
            return Err(EcsError::invalid(format!(
                "cluster {}: exists already; the bench seeds a fresh one",
                plan.cluster
            )));
        }
        let started = Instant::now();
        self.create_cluster(&plan.cluster, Vec::new(), None)?;
        let (_, _) = self.register_task_definition(task_definition()?)?;
        let td_arn = self.partition.arn(&format!("task-definition/{FAMILY}:1"));
        self.seed_instances(plan)?;
        self.seed_tasks(plan, &td_arn)?;
        let mut report = BenchReport {
            seeded_instances: plan.instances,
            seeded_tasks: plan.tasks,
            seed_time: started.elapsed(),
            ..Default::default()
        };
        let req = RunTask {
            cluster: Some(plan.cluster.clone()),
            task_definition: FAMILY.into(),
            count: 10,
            ..Default::default()
        };
        let placing = Instant::now();
        for _ in 0..plan.calls {
            let (_, placed) = self.run_task(&req)?;
            report.placed += placed.len();
            report.failures += 10 - placed.len();
        }
        report.place_time = placing.elapsed();
        Ok(report)
    }

    /// The instances, [`BATCH`] a transaction, and each one's agent lease.
    fn seed_instances(&self, plan: &BenchPlan) -> EcsResult<()> {
        let mut ops = Vec::with_capacity(BATCH);
        for n in 0..plan.instances {
            let ci = instance(
                &self.partition,
                &plan.cluster,
                n,
                tasks_on(n, plan.instances, plan.tasks),
            );
            ops.push(Op::Put {
                key: keys::instance(&plan.cluster, &host_id(n)),
                value: encode(&ci)?,
                expect: Expect::Absent,
            });
            if ops.len() == BATCH {
                self.store.commit(&std::mem::take(&mut ops))?;
            }
        }
        if !ops.is_empty() {
            self.store.commit(&ops)?;
        }
        for n in 0..plan.instances {
            let id = host_id(n);
            self.store.acquire_lease(
                &keys::agent_lease(&plan.cluster, &id),
                &id,
                plan.lease_ttl,
            )?;
        }
        Ok(())
    }

    /// The RUNNING tasks, dealt over the instances in turn, [`BATCH`] a
    /// transaction.
    fn seed_tasks(&self, plan: &BenchPlan, td_arn: &str) -> EcsResult<()> {
        if plan.instances == 0 {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(BATCH);
        for n in 0..plan.tasks {
            let t = task(
                &self.partition,
                &plan.cluster,
                td_arn,
                n,
                n % plan.instances,
            );
            ops.push(Op::Put {
                key: keys::task(&plan.cluster, &task_id(n)),
                value: encode(&t)?,
                expect: Expect::Absent,
            });
            if ops.len() == BATCH {
                self.store.commit(&std::mem::take(&mut ops))?;
            }
        }
        if !ops.is_empty() {
            self.store.commit(&ops)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    #[test]
    fn tasks_are_dealt_evenly_and_instances_account_for_them() {
        let per: Vec<usize> = (0..3).map(|n| tasks_on(n, 3, 7)).collect();
        assert_eq!(per, vec![3, 2, 2]);
        assert_eq!(tasks_on(0, 0, 5), 0);
        let ci = instance(&Partition::default(), "c", 1, 20);
        assert_eq!(
            ci.remaining_resources[0].integer_value,
            8192 - 20 * TASK_CPU
        );
        assert_eq!(
            ci.remaining_resources[1].integer_value,
            32768 - 20 * TASK_MEMORY
        );
        assert_eq!(ci.id(), host_id(1));
        let t = task(&Partition::default(), "c", "td", 4, 1);
        assert_eq!(t.host_id(), Some(host_id(1).as_str()));
        assert_ne!(task_id(4), host_id(4));
    }

    #[test]
    fn a_small_bench_places_every_task_through_the_store() {
        let (_dir, ecs) = ecs();
        let plan = BenchPlan {
            cluster: "bench".into(),
            instances: 130,
            tasks: 300,
            calls: 3,
            lease_ttl: Duration::from_secs(60),
        };
        let report = ecs.placement_bench(&plan).expect("bench");
        assert_eq!((report.placed, report.failures), (30, 0));
        let listed = ecs.store.list(&keys::tasks_of("bench")).expect("list");
        assert_eq!(listed.len(), 330);
        // A second run refuses the cluster it seeded.
        assert!(ecs.placement_bench(&plan).is_err());
    }
}

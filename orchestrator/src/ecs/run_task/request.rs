//! What a run-task asks for, checked: the launch type, the CPU and memory
//! it needs, the host ports it binds, and [`Validated`], everything the
//! validate step settles once for all of a request's tasks. Pure: the
//! store reads (cluster, definition) are the caller's.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use serde_json::Value;

use crate::containerize::overrides_for;
use crate::ecs::NetworkConfig;
use crate::error::{EcsError, EcsResult};
use crate::model::{
    CapacityProviderStrategyItem, Cluster, HostPort, LaunchType, NetworkMode, Tag, TaskDefinition,
};
use crate::scheduler::placement::{Capacity, Constraint, PlacementError, Request, Strategy};

/// ECS's default ephemeral host port range.
pub(super) const EPHEMERAL_PORTS: RangeInclusive<u16> = 49153..=65535;

/// The host ports a task holds: in awsvpc and host modes, each mapping's
/// hostPort (registration makes it the containerPort); in bridge mode,
/// a hostPort of 0 (or none) is picked from [`EPHEMERAL_PORTS`] at
/// placement.
pub(super) fn host_ports(td: &TaskDefinition, mode: &NetworkMode) -> Vec<HostPort> {
    if *mode == NetworkMode::None {
        return Vec::new();
    }
    td.container_definitions
        .iter()
        .flat_map(|c| {
            c.port_mappings.iter().filter_map(move |pm| {
                Some(HostPort {
                    container: c.name.clone(),
                    protocol: pm.protocol.clone().unwrap_or_else(|| "tcp".into()),
                    // Bridge mode: none or 0 means "any free port".
                    host_port: if *mode == NetworkMode::Bridge {
                        pm.host_port.unwrap_or(0)
                    } else {
                        pm.host_port.or(pm.container_port)?
                    },
                    container_port: pm.container_port?,
                    reserved: false,
                })
            })
        })
        .collect()
}

/// `run-task`'s parameters.
#[derive(Clone, Debug, Default)]
pub struct RunTask {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: u32,
    pub launch_type: Option<LaunchType>,
    pub overrides: Value,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<Tag>,
    /// ECS's `placementStrategy` and `placementConstraints` (a service's
    /// own, for its tasks).
    pub placement_strategy: Vec<Value>,
    pub placement_constraints: Vec<Value>,
    /// ECS's `capacityProviderStrategy` (exclusive with `launch_type`;
    /// empty: the cluster's default strategy, if it has one).
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// How many tasks of the same group each capacity provider already
    /// runs (a service's), so the strategy's base and weights count them.
    pub capacity_running: BTreeMap<String, u32>,
    /// ECS's `clientToken`: a retry with the same token (in the same
    /// cluster, within 24 hours) answers the first result.
    pub client_token: Option<String>,
}

/// The capacity provider strategy a run-task follows: the request's, or
/// the cluster's default when the request names no launch type either;
/// checked against the providers the cluster uses.
pub(crate) fn strategy_for(
    req_launch_type: Option<&LaunchType>,
    req_strategy: &[CapacityProviderStrategyItem],
    cluster: &Cluster,
) -> EcsResult<Vec<CapacityProviderStrategyItem>> {
    if req_launch_type.is_some() && !req_strategy.is_empty() {
        return Err(EcsError::invalid(
            "capacityProviderStrategy: Specifying both a launchType and \
             capacityProviderStrategy is not supported.",
        ));
    }
    let strategy = match (req_launch_type, req_strategy.is_empty()) {
        (None, true) => cluster.default_capacity_provider_strategy.clone(),
        _ => req_strategy.to_vec(),
    };
    crate::capacity::check_strategy(
        "capacityProviderStrategy",
        &strategy,
        Some(&cluster.capacity_providers),
    )?;
    Ok(strategy)
}

/// The launch type a task of `td` runs as: `requested`, EC2 by default;
/// FARGATE only for a definition that requires it. The definition is
/// checked again for that launch type (Fargate's sandbox rules, volume
/// names), whether or not it came through registration.
pub(crate) fn launch_type_for(
    td: &TaskDefinition,
    requested: Option<&LaunchType>,
) -> EcsResult<LaunchType> {
    let launch_type = launch_type_name(td, requested)?;
    crate::taskdef::check_launch(td, &launch_type)?;
    Ok(launch_type)
}

fn launch_type_name(td: &TaskDefinition, requested: Option<&LaunchType>) -> EcsResult<LaunchType> {
    match requested.unwrap_or(&LaunchType::Ec2) {
        LaunchType::Ec2 => Ok(LaunchType::Ec2),
        LaunchType::Fargate if td.requires_compatibilities.contains(&LaunchType::Fargate) => {
            Ok(LaunchType::Fargate)
        }
        LaunchType::Fargate => Err(EcsError::invalid(
            "launchType: Task definition does not support launch_type FARGATE.",
        )),
        other => Err(EcsError::invalid(format!(
            "launchType: {:?} is not one of EC2, FARGATE",
            other.as_str()
        ))),
    }
}

/// CPU units and MiB a task reserves: task-level values, else the sum of
/// its containers' (after overrides). Each is at most `i64::MAX`, so it can
/// be taken from an instance's signed remaining resources; a sum past that
/// (only a definition that skipped registration's bounds has one) is an
/// error naming the field.
pub fn task_needs(td: &TaskDefinition, overrides: &Value) -> EcsResult<(u64, u64)> {
    let too_big = |field: &str| {
        EcsError::client(format!("{field}: the task's total is too large to account"))
    };
    let mut cpu: u64 = 0;
    let mut mem: u64 = 0;
    for c in &td.container_definitions {
        let o = overrides_for(overrides, &c.name);
        cpu = cpu
            .checked_add(o.cpu.unwrap_or(c.cpu))
            .ok_or_else(|| too_big("containerDefinitions.cpu"))?;
        mem = mem
            .checked_add(
                o.memory
                    .or(o.memory_reservation)
                    .or(c.memory)
                    .or(c.memory_reservation)
                    .unwrap_or(0),
            )
            .ok_or_else(|| too_big("containerDefinitions.memory"))?;
    }
    let task_cpu = td.cpu.as_deref().and_then(|c| c.parse().ok());
    let task_mem = td.memory.as_deref().and_then(|m| m.parse().ok());
    let (cpu, mem) = (task_cpu.unwrap_or(cpu), task_mem.unwrap_or(mem));
    if i64::try_from(cpu).is_err() {
        return Err(too_big("cpu"));
    }
    if i64::try_from(mem).is_err() {
        return Err(too_big("memory"));
    }
    Ok((cpu, mem))
}

/// A need from [`task_needs`] as the signed amount an instance's
/// remaining resources count in.
pub(super) fn signed(need: u64, field: &str) -> EcsResult<i64> {
    i64::try_from(need)
        .map_err(|_| EcsError::client(format!("{field}: {need} is too large to account")))
}

/// What the validate step settles once for all of a request's tasks: each
/// task is then placed, reserved and committed from it.
#[derive(Clone, Debug)]
pub(crate) struct Validated {
    pub cluster: Cluster,
    pub td: TaskDefinition,
    pub launch_type: LaunchType,
    pub mode: NetworkMode,
    /// The network the cluster's tasks join.
    pub net: NetworkConfig,
    /// CPU units and MiB, as the task records them.
    pub cpu: u64,
    pub memory: u64,
    /// The same, as an instance's signed remaining resources count them.
    pub signed_cpu: i64,
    pub signed_memory: i64,
    /// `family:<family>` unless the request names one.
    pub group: String,
    /// The task's host ports; a `host_port` of 0 is picked at placement.
    pub ports: Vec<HostPort>,
    /// The fixed ones, (protocol, port): an instance holding one cannot
    /// take the task.
    pub fixed_ports: Vec<(String, u16)>,
    /// Where the tasks may go and which instances are preferred.
    pub strategies: Vec<Strategy>,
    pub constraints: Vec<Constraint>,
    /// Overrides, startedBy, tags: copied onto each task.
    pub req: RunTask,
    /// The capacity provider strategy the tasks follow (empty: the
    /// launch type alone), and the provider of the task being placed.
    pub strategy: Vec<CapacityProviderStrategyItem>,
    pub capacity_provider: Option<String>,
}

impl Validated {
    /// Checks what depends on the definition and the request alone, in
    /// run-task's order: launch type, network mode, overrides, needs.
    /// `cluster`, `td` and `net` come from the store.
    pub fn new(
        req: &RunTask,
        cluster: Cluster,
        td: TaskDefinition,
        net: NetworkConfig,
    ) -> EcsResult<Self> {
        // A capacity provider strategy (FARGATE, FARGATE_SPOT) runs its
        // tasks as FARGATE ones, in berth's Fargate sandbox.
        let strategy = strategy_for(
            req.launch_type.as_ref(),
            &req.capacity_provider_strategy,
            &cluster,
        )?;
        let launch_type = match strategy.is_empty() {
            true => launch_type_for(&td, req.launch_type.as_ref())?,
            false => launch_type_for(&td, Some(&LaunchType::Fargate))?,
        };
        // No networkMode: bridge, as ECS has it on EC2.
        let mode = td.network_mode.clone().unwrap_or(NetworkMode::Bridge);
        if mode == NetworkMode::Host && launch_type == LaunchType::Fargate {
            return Err(EcsError::invalid(
                "networkMode: FARGATE tasks cannot use host networking",
            ));
        }
        crate::containerize::check_overrides(&req.overrides, &td.container_definitions)?;
        crate::tags::check("tags", &req.tags)?;
        let (cpu, memory) = task_needs(&td, &req.overrides)?;
        let (signed_cpu, signed_memory) = (signed(cpu, "cpu")?, signed(memory, "memory")?);
        let ports = host_ports(&td, &mode);
        let fixed_ports = ports
            .iter()
            .filter(|hp| hp.host_port != 0)
            .map(|hp| (hp.protocol.clone(), hp.host_port))
            .collect();
        let group = req
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{}", td.family));
        let invalid = |e: PlacementError| EcsError::invalid(e.to_string());
        let strategies =
            Strategy::list_from_json(Some(&Value::from(req.placement_strategy.clone())))
                .map_err(invalid)?;
        let constraints =
            Constraint::list_from_json(Some(&Value::from(req.placement_constraints.clone())))
                .map_err(invalid)?;
        Ok(Self {
            cluster,
            td,
            launch_type,
            mode,
            net,
            cpu,
            memory,
            signed_cpu,
            signed_memory,
            group,
            ports,
            fixed_ports,
            strategies,
            constraints,
            req: req.clone(),
            strategy,
            capacity_provider: None,
        })
    }

    /// Addresses each task takes: awsvpc one for the task, bridge one for
    /// each container, host and none none.
    pub fn addresses_wanted(&self) -> usize {
        match self.mode {
            NetworkMode::Awsvpc => 1,
            NetworkMode::Bridge => self.td.container_definitions.len(),
            _ => 0,
        }
    }

    /// Whether placement reads the groups of the tasks on each instance
    /// (spread, distinctInstance, memberOf): else the snapshot skips
    /// reading every task of the cluster.
    pub fn reads_task_groups(&self) -> bool {
        !self.strategies.is_empty() || !self.constraints.is_empty()
    }

    /// The protocols of the task's host ports: the instances' held ports
    /// to read.
    pub fn protocols(&self) -> BTreeSet<&str> {
        self.ports.iter().map(|hp| hp.protocol.as_str()).collect()
    }

    /// What the scheduler places: the task's CPU and memory (FARGATE's are
    /// not the instance's to account, as run-task has always had it), its
    /// group, constraints and fixed host ports.
    pub fn request(&self) -> Request<'_> {
        let capacity = match self.launch_type {
            LaunchType::Ec2 => Capacity::Instance,
            _ => Capacity::Unaccounted,
        };
        Request::new(
            self.signed_cpu,
            self.signed_memory,
            &self.group,
            &self.constraints,
        )
        .with_host_ports(&self.fixed_ports)
        .with_capacity(capacity)
    }
}

/// Fixtures the run-task steps' tests share.
#[cfg(test)]
pub(super) mod fixtures {
    use serde_json::{json, Value};

    use super::*;

    pub fn td(value: Value) -> TaskDefinition {
        serde_json::from_value(value).expect("task definition")
    }

    /// A Fargate task of one container: task-level cpu and memory, awsvpc.
    pub fn fargate_td() -> TaskDefinition {
        td(json!({
            "family": "web",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{ "name": "a", "image": "busybox" }]
        }))
    }

    /// Two containers in bridge mode: one with an ephemeral host port and
    /// one with a fixed 8080/tcp.
    pub fn bridge_td() -> TaskDefinition {
        td(json!({
            "family": "web",
            "taskDefinitionArn": "arn:aws:ecs:local:000000000000:task-definition/web:1",
            "containerDefinitions": [
                { "name": "a", "image": "busybox", "cpu": 256, "memory": 100,
                  "portMappings": [{ "containerPort": 80, "hostPort": 0 }] },
                { "name": "b", "image": "busybox", "memory": 28,
                  "portMappings": [{ "containerPort": 8080, "hostPort": 8080 }] }
            ]
        }))
    }

    pub fn cluster() -> Cluster {
        Cluster {
            cluster_name: "default".into(),
            cluster_arn: "arn:aws:ecs:local:000000000000:cluster/default".into(),
            ..Default::default()
        }
    }

    pub fn net() -> NetworkConfig {
        NetworkConfig::new("berth0", "10.88.0.0/29", ("bridge", "subnet")).expect("net")
    }

    pub fn validated(td: TaskDefinition, launch_type: Option<LaunchType>) -> Validated {
        let req = RunTask {
            task_definition: "web".into(),
            count: 1,
            launch_type,
            ..Default::default()
        };
        Validated::new(&req, cluster(), td, net()).expect("valid")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::{bridge_td, cluster, net, td, validated};
    use super::*;

    #[test]
    fn needs_come_from_task_or_containers_and_overrides() {
        let td = td(json!({
            "family": "f",
            "containerDefinitions": [
                { "name": "a", "image": "i", "cpu": 128, "memory": 100 },
                { "name": "b", "image": "i", "memoryReservation": 50 }
            ]
        }));
        assert_eq!(task_needs(&td, &json!({})).expect("needs"), (128, 150));
        let ov = json!({ "containerOverrides": [{ "name": "a", "memory": 300, "cpu": 512 }] });
        assert_eq!(task_needs(&td, &ov).expect("needs"), (512, 350));
        let mut sized = td.clone();
        sized.cpu = Some("1024".into());
        sized.memory = Some("2048".into());
        assert_eq!(task_needs(&sized, &json!({})).expect("needs"), (1024, 2048));
    }

    #[test]
    fn validated_settles_ports_addresses_and_the_request() {
        let v = validated(bridge_td(), None);
        assert_eq!(v.launch_type, LaunchType::Ec2);
        assert_eq!(v.mode, NetworkMode::Bridge);
        assert_eq!((v.signed_cpu, v.signed_memory), (256, 128));
        assert_eq!(v.group, "family:web");
        // Bridge mode: an address per container; port 0 is picked later.
        assert_eq!(v.addresses_wanted(), 2);
        assert_eq!(
            v.ports.iter().map(|p| p.host_port).collect::<Vec<_>>(),
            [0, 8080]
        );
        assert_eq!(v.fixed_ports, [("tcp".to_string(), 8080)]);
        assert_eq!(v.protocols().into_iter().collect::<Vec<_>>(), ["tcp"]);
        let request = v.request();
        assert_eq!((request.need_cpu, request.need_memory), (256, 128));
        assert_eq!(request.capacity, Capacity::Instance);
        assert_eq!(request.host_ports, v.fixed_ports.as_slice());
    }

    #[test]
    fn fargate_capacity_is_unaccounted_and_host_mode_refused() {
        let mut fargate = fixtures::fargate_td();
        let v = validated(fargate.clone(), Some(LaunchType::Fargate));
        assert_eq!(v.request().capacity, Capacity::Unaccounted);
        assert_eq!(v.addresses_wanted(), 1);
        fargate.network_mode = Some(NetworkMode::Host);
        let req = RunTask {
            launch_type: Some(LaunchType::Fargate),
            ..Default::default()
        };
        let e = Validated::new(&req, cluster(), fargate, net()).expect_err("host");
        assert!(e.message.starts_with("networkMode: "), "{}", e.message);
        // An EC2 definition cannot run as FARGATE.
        let e = Validated::new(&req, cluster(), bridge_td(), net()).expect_err("ec2 only");
        assert!(e.message.starts_with("launchType: "), "{}", e.message);
    }
}

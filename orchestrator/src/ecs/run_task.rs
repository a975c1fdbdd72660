//! run-task and start-task: place tasks and record them with their
//! reservations.

use serde_json::{json, Value};

use super::{decode, encode, now, public, retry, Ecs, NetworkConfig};
use crate::containerize::overrides_for;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::random_hex32;
use crate::model::{
    name_from_arn, Cluster, Container, ContainerInstance, DesiredStatus, Failure, HealthStatus,
    InstanceStatus, LaunchType, NetworkMode, Tag, Task, TaskDefinition, TaskInternals, TaskStatus,
};
use crate::store::{keys, Expect, Op};

/// The host ports a task holds: in awsvpc and host modes, each mapping's
/// hostPort (registration makes it the containerPort).
/// ECS's default ephemeral host port range.
const EPHEMERAL_PORTS: (u16, u16) = (49153, 65535);

fn host_ports(td: &TaskDefinition, mode: &NetworkMode) -> Vec<crate::model::HostPort> {
    if *mode == NetworkMode::None {
        return Vec::new();
    }
    td.container_definitions
        .iter()
        .flat_map(|c| {
            c.port_mappings.iter().filter_map(move |pm| {
                Some(crate::model::HostPort {
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
fn signed(need: u64, field: &str) -> EcsResult<i64> {
    i64::try_from(need)
        .map_err(|_| EcsError::client(format!("{field}: {need} is too large to account")))
}

impl Ecs {
    /// Place and record up to `count` tasks, reserving their CPU and memory
    /// on this host's instance in the same transaction; capacity that runs
    /// out becomes `failures`, as ECS answers.
    pub fn run_task(&self, req: &RunTask) -> EcsResult<(Value, Vec<Task>)> {
        let cluster = self.cluster(req.cluster.as_deref())?;
        if !(1..=10).contains(&req.count) {
            return Err(EcsError::invalid("count: must be between 1 and 10"));
        }
        let td = self.active_task_definition(&req.task_definition)?;
        let launch_type = launch_type_for(&td, req.launch_type.as_ref())?;
        // No networkMode: bridge, as ECS has it on EC2.
        let mode = td.network_mode.clone().unwrap_or(NetworkMode::Bridge);
        if mode == NetworkMode::Host && launch_type == LaunchType::Fargate {
            return Err(EcsError::invalid(
                "networkMode: FARGATE tasks cannot use host networking",
            ));
        }
        let awsvpc = mode == NetworkMode::Awsvpc;
        let bridged = mode == NetworkMode::Bridge;
        let net = self.cluster_network(&cluster)?;
        crate::containerize::check_overrides(&req.overrides, &td.container_definitions)?;
        let (cpu, memory) = task_needs(&td, &req.overrides)?;
        let (signed_cpu, signed_memory) = (signed(cpu, "cpu")?, signed(memory, "memory")?);
        let instance = self.host_instance(&cluster)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for _ in 0..req.count {
            let id = random_hex32()
                .map_err(|e| EcsError::new(ErrorKind::ServerException, e.to_string()))?;
            let task = self.new_task(
                &cluster,
                &td,
                &id,
                &launch_type,
                req,
                cpu,
                memory,
                &instance,
            );
            let placed = retry(|| {
                let mut ops = Vec::new();
                let mut task = task.clone();
                // Addresses: a key per address, so two placements can never
                // take the same one. awsvpc: one for the task; bridge: one
                // for each container.
                let wanted = match (awsvpc, bridged) {
                    (true, _) => 1,
                    (_, true) => td.container_definitions.len(),
                    _ => 0,
                };
                let mut used = if wanted > 0 {
                    self.taken_addresses(&net.bridge)?
                } else {
                    Default::default()
                };
                let mut addresses = Vec::new();
                for _ in 0..wanted {
                    let Some(ip) = berth_net::allocate(&net.subnet, &used) else {
                        return Ok(Ok(Err(Failure::on(
                            &instance.container_instance_arn,
                            "RESOURCE:ENI",
                            Some(format!("no free address in {}", net.subnet)),
                        ))));
                    };
                    used.insert(ip);
                    ops.push(Op::Put {
                        key: keys::ip(&net.bridge, &ip.to_string()),
                        value: keys::task_holder(&cluster.cluster_name, &id),
                        expect: Expect::Absent,
                    });
                    addresses.push(ip);
                }
                if awsvpc {
                    attach_network(&net, &mut task, addresses[0]);
                }
                if bridged {
                    let mut nets = Vec::new();
                    for (i, (c, ip)) in td.container_definitions.iter().zip(&addresses).enumerate()
                    {
                        nets.push(crate::model::ContainerNetwork {
                            container: c.name.clone(),
                            network: task_network(&net, *ip, format!("vb{}{i}", &id[..10])),
                        });
                        if let Some(tc) = task.containers.iter_mut().find(|x| x.name == c.name) {
                            tc.network_interfaces =
                                vec![json!({ "privateIpv4Address": ip.to_string() })];
                        }
                    }
                    if let Some(b) = task.berth.as_mut() {
                        b.container_networks = nets;
                    }
                }
                // Host ports: a key each on this host, so a taken one fails
                // the whole placement. Bridge mode's hostPort 0 takes a free
                // one from the ephemeral range, as ECS does.
                let mut ports = host_ports(&td, &mode);
                let mut chosen: std::collections::BTreeSet<(String, u16)> =
                    std::collections::BTreeSet::new();
                for hp in ports.iter_mut().filter(|hp| hp.host_port == 0) {
                    let taken: std::collections::BTreeSet<u16> = self
                        .store
                        .list(&keys::ports_of(instance.id(), &hp.protocol))?
                        .into_iter()
                        .filter_map(|(k, _)| Some(keys::parse_port(&k)?.port))
                        .collect();
                    let free = (EPHEMERAL_PORTS.0..=EPHEMERAL_PORTS.1).find(|p| {
                        !taken.contains(p) && !chosen.contains(&(hp.protocol.clone(), *p))
                    });
                    let Some(port) = free else {
                        return Ok(Ok(Err(Failure::on(
                            &instance.container_instance_arn,
                            "RESOURCE:PORTS",
                            Some("no free ephemeral port".into()),
                        ))));
                    };
                    chosen.insert((hp.protocol.clone(), port));
                    hp.host_port = port;
                    ops.push(Op::Put {
                        key: keys::port(instance.id(), &hp.protocol, port),
                        value: keys::task_holder(&cluster.cluster_name, &id),
                        expect: Expect::Absent,
                    });
                    hp.reserved = true;
                }
                if let Some(b) = task.berth.as_mut() {
                    b.host_ports = ports;
                }
                for hp in task
                    .berth
                    .as_ref()
                    .map(|b| b.host_ports.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|hp| !hp.reserved)
                {
                    let key = keys::port(instance.id(), &hp.protocol, hp.host_port);
                    if self.store.get(&key)?.is_some() {
                        return Ok(Ok(Err(Failure::on(
                            &instance.container_instance_arn,
                            "RESOURCE:PORTS",
                            Some(format!("{}/{}", hp.host_port, hp.protocol)),
                        ))));
                    }
                    ops.push(Op::Put {
                        key,
                        value: keys::task_holder(&cluster.cluster_name, &id),
                        expect: Expect::Absent,
                    });
                }
                ops.push(Op::Put {
                    key: keys::task(&cluster.cluster_name, &id),
                    value: encode(&task)?,
                    expect: Expect::Absent,
                });
                // Fargate capacity is not this host's to account.
                if launch_type == LaunchType::Ec2 {
                    let key = keys::instance(&cluster.cluster_name, instance.id());
                    let rec = self
                        .store
                        .get(&key)?
                        .ok_or_else(|| EcsError::client("container instance vanished"))?;
                    let mut ci: ContainerInstance = decode(&rec.value)?;
                    if ci.status != InstanceStatus::Active {
                        return Ok(Ok(Err(Failure::on(
                            &ci.container_instance_arn,
                            "AGENT",
                            Some("the container instance is DRAINING".into()),
                        ))));
                    }
                    if ci.remaining("CPU") < signed_cpu {
                        return Ok(Ok(Err(Failure::on(
                            &ci.container_instance_arn,
                            "RESOURCE:CPU",
                            None,
                        ))));
                    }
                    if ci.remaining("MEMORY") < signed_memory {
                        return Ok(Ok(Err(Failure::on(
                            &ci.container_instance_arn,
                            "RESOURCE:MEMORY",
                            None,
                        ))));
                    }
                    ci.adjust(signed_cpu, signed_memory);
                    ci.version += 1;
                    ops.push(Op::Put {
                        key,
                        value: encode(&ci)?,
                        expect: Expect::Revision(rec.revision),
                    });
                }
                Ok(self.store.commit(&ops).map(|_| Ok(task)))
            })?;
            match placed {
                Ok(task) => tasks.push(task),
                Err(f) => failures.push(f),
            }
        }
        let shown: Vec<Value> = tasks.iter().map(public).collect();
        Ok((json!({ "tasks": shown, "failures": failures }), tasks))
    }

    /// `start-task`: one task on each named container instance (this host's,
    /// the only one a single-host cluster has).
    pub fn start_task(
        &self,
        req: &RunTask,
        container_instances: &[String],
    ) -> EcsResult<(Value, Vec<Task>)> {
        let cluster = self.cluster(req.cluster.as_deref())?;
        let here = self.host_instance(&cluster)?;
        if container_instances.is_empty() || container_instances.len() > 10 {
            return Err(EcsError::invalid(
                "containerInstances: name 1 to 10 container instances",
            ));
        }
        let mut missing = Vec::new();
        let mut count = 0;
        for ci in container_instances {
            if name_from_arn(ci) == here.id() {
                count += 1;
            } else {
                missing.push(Failure::missing(ci));
            }
        }
        if count == 0 {
            return Ok((json!({ "tasks": [], "failures": missing }), Vec::new()));
        }
        let req = RunTask {
            count,
            launch_type: Some(LaunchType::Ec2),
            ..req.clone()
        };
        let (mut out, tasks) = self.run_task(&req)?;
        if let Some(f) = out["failures"].as_array_mut() {
            f.extend(
                missing
                    .into_iter()
                    .map(|m| serde_json::to_value(m).unwrap_or(Value::Null)),
            );
        }
        Ok((out, tasks))
    }

    #[allow(clippy::too_many_arguments)]
    fn new_task(
        &self,
        cluster: &Cluster,
        td: &TaskDefinition,
        id: &str,
        launch_type: &LaunchType,
        req: &RunTask,
        cpu: u64,
        memory: u64,
        instance: &ContainerInstance,
    ) -> Task {
        let task_arn = self
            .partition
            .arn(&format!("task/{}/{id}", cluster.cluster_name));
        let containers = td
            .container_definitions
            .iter()
            .map(|c| Container {
                container_arn: self.partition.arn(&format!(
                    "container/{}/{id}/{}",
                    cluster.cluster_name, c.name
                )),
                task_arn: task_arn.clone(),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: TaskStatus::Pending,
                health_status: HealthStatus::Unknown,
                cpu: c.cpu.to_string(),
                memory: c.memory.map(|m| m.to_string()),
                memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                ..Default::default()
            })
            .collect();
        let mut overrides = req.overrides.clone();
        if !overrides.is_object() {
            overrides = json!({});
        }
        if overrides.get("containerOverrides").is_none() {
            overrides["containerOverrides"] = json!([]);
        }
        Task {
            task_arn,
            cluster_arn: cluster.cluster_arn.clone(),
            task_definition_arn: td.task_definition_arn.clone().unwrap_or_default(),
            container_instance_arn: (*launch_type == LaunchType::Ec2)
                .then(|| instance.container_instance_arn.clone()),
            last_status: TaskStatus::Provisioning,
            desired_status: DesiredStatus::Running,
            launch_type: launch_type.clone(),
            cpu: Some(cpu.to_string()),
            memory: Some(memory.to_string()),
            containers,
            overrides,
            started_by: req.started_by.clone(),
            group: Some(
                req.group
                    .clone()
                    .unwrap_or_else(|| format!("family:{}", td.family)),
            ),
            version: 1,
            created_at: now(),
            health_status: HealthStatus::Unknown,
            connectivity: "CONNECTED".into(),
            tags: req.tags.clone(),
            berth: Some(TaskInternals {
                reserved_cpu: if *launch_type == LaunchType::Ec2 {
                    cpu
                } else {
                    0
                },
                reserved_memory: if *launch_type == LaunchType::Ec2 {
                    memory
                } else {
                    0
                },
                health_checked: td
                    .container_definitions
                    .iter()
                    .any(|c| c.is_essential() && c.health_check.is_some()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
    /// Addresses on `bridge` that some task holds.
    fn taken_addresses(
        &self,
        bridge: &str,
    ) -> EcsResult<std::collections::BTreeSet<std::net::Ipv4Addr>> {
        Ok(self
            .store
            .list(&keys::ips_of(bridge))?
            .into_iter()
            .filter_map(|(k, _)| keys::parse_ip(&k))
            .collect())
    }
}

/// Give a task its ENI attachment and its place on `net`.
fn attach_network(net: &NetworkConfig, task: &mut Task, ip: std::net::Ipv4Addr) {
    let id = task.id().to_string();
    let attachment_id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    );
    let eni = format!("eni-{}", &id[..17]);
    task.attachments = vec![json!({
        "id": attachment_id,
        "type": "ElasticNetworkInterface",
        "status": "PRECREATED",
        "details": [
            { "name": "subnetId", "value": net.subnet.to_string() },
            { "name": "networkInterfaceId", "value": eni },
            { "name": "privateIPv4Address", "value": ip.to_string() },
        ],
    })];
    for c in &mut task.containers {
        c.network_interfaces =
            vec![json!({ "attachmentId": attachment_id, "privateIpv4Address": ip.to_string() })];
    }
    if let Some(b) = task.berth.as_mut() {
        b.network = Some(task_network(net, ip, format!("vb{}", &id[..11])));
    }
}

/// A place on `net`: `ip` behind the veth `host_ifname`.
fn task_network(
    net: &NetworkConfig,
    ip: std::net::Ipv4Addr,
    host_ifname: String,
) -> crate::model::TaskNetwork {
    crate::model::TaskNetwork {
        bridge: net.bridge.clone(),
        address: ip.to_string(),
        prefix: net.subnet.prefix,
        gateway: net.subnet.gateway().to_string(),
        host_ifname,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_come_from_task_or_containers_and_overrides() {
        let td: TaskDefinition = serde_json::from_value(json!({
            "family": "f",
            "containerDefinitions": [
                { "name": "a", "image": "i", "cpu": 128, "memory": 100 },
                { "name": "b", "image": "i", "memoryReservation": 50 }
            ]
        }))
        .expect("td");
        assert_eq!(task_needs(&td, &json!({})).expect("needs"), (128, 150));
        let ov = json!({ "containerOverrides": [{ "name": "a", "memory": 300, "cpu": 512 }] });
        assert_eq!(task_needs(&td, &ov).expect("needs"), (512, 350));
        let mut sized = td.clone();
        sized.cpu = Some("1024".into());
        sized.memory = Some("2048".into());
        assert_eq!(task_needs(&sized, &json!({})).expect("needs"), (1024, 2048));
    }
}

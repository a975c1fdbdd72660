//! Container instances and tasks: placement with resource reservation,
//! the task state machine as records in the store.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::containerize::overrides_for;
use crate::ecs::{decode, encode, now, retry, Ecs, NetworkConfig};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::random_hex32;
use crate::model::{
    name_from_arn, Attribute, Cluster, Container, ContainerInstance, DesiredStatus, Failure,
    HealthStatus, InstanceStatus, LaunchType, NetworkMode, Resource, StopCode, Tag, Task,
    TaskDefinition, TaskInternals, TaskStatus,
};
use crate::names;
use crate::store::{keys, Expect, Op, StoreError};

pub const AGENT_VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

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

/// list-tasks' filters (each None: any).
#[derive(Clone, Debug, Default)]
pub struct TaskFilter<'a> {
    /// RUNNING (the default) or STOPPED.
    pub desired_status: Option<DesiredStatus>,
    pub family: Option<&'a str>,
    pub started_by: Option<&'a str>,
    pub container_instance: Option<&'a str>,
    pub service_name: Option<&'a str>,
}

impl Ecs {
    /// This host's container instance in `cluster`, registered on first use.
    pub fn host_instance(&self, cluster: &Cluster) -> EcsResult<ContainerInstance> {
        let key = keys::instance(&cluster.cluster_name, &self.host.id);
        if let Some(rec) = self.store.get(&key)? {
            return decode(&rec.value);
        }
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
        let instance = ContainerInstance {
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
        };
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

    pub fn list_container_instances(&self, cluster: Option<&str>) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        self.host_instance(&cluster)?;
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
        self.host_instance(&cluster)?;
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

    pub fn task(&self, cluster: &str, id: &str) -> EcsResult<Task> {
        let rec = self
            .store
            .get(&keys::task(cluster, names::lookup("task", id)?))?
            .ok_or_else(|| {
                EcsError::invalid(format!("task {id}: not found in cluster {cluster}"))
            })?;
        decode(&rec.value)
    }

    /// Change a task with `change` (re-run on conflicts). A task becoming
    /// STOPPED gives its reservation back in the same transaction.
    pub fn update_task(
        &self,
        cluster: &str,
        id: &str,
        mut change: impl FnMut(&mut Task),
    ) -> EcsResult<Task> {
        retry(|| {
            let key = keys::task(cluster, id);
            let rec = self
                .store
                .get(&key)?
                .ok_or_else(|| EcsError::invalid(format!("task {id}: not found")))?;
            let before: Task = decode(&rec.value)?;
            let mut task = before.clone();
            change(&mut task);
            if task == before {
                return Ok(Ok(task));
            }
            task.version += 1;
            let mut ops = vec![Op::Put {
                key,
                value: encode(&task)?,
                expect: Expect::Revision(rec.revision),
            }];
            if task.is_stopped() && !before.is_stopped() {
                if let Some(net) = task.berth.as_ref().and_then(|b| b.network.as_ref()) {
                    ops.push(Op::Delete {
                        key: keys::ip(&net.bridge, &net.address),
                        expect: Expect::Any,
                    });
                }
                for cn in task.berth.iter().flat_map(|b| b.container_networks.iter()) {
                    ops.push(Op::Delete {
                        key: keys::ip(&cn.network.bridge, &cn.network.address),
                        expect: Expect::Any,
                    });
                }
                if let (Some(b), Some(arn)) = (&task.berth, &task.container_instance_arn) {
                    for hp in &b.host_ports {
                        ops.push(Op::Delete {
                            key: keys::port(name_from_arn(arn), &hp.protocol, hp.host_port),
                            expect: Expect::Any,
                        });
                    }
                }
                if let (Some(arn), Some(b)) = (&task.container_instance_arn, &task.berth) {
                    let ikey = keys::instance(cluster, name_from_arn(arn));
                    if let Some(irec) = self.store.get(&ikey)? {
                        let mut ci: ContainerInstance = decode(&irec.value)?;
                        ci.release(b.reserved_cpu, b.reserved_memory);
                        ci.version += 1;
                        ops.push(Op::Put {
                            key: ikey,
                            value: encode(&ci)?,
                            expect: Expect::Revision(irec.revision),
                        });
                    }
                }
            }
            Ok(self.store.commit(&ops).map(|_| task))
        })
    }

    pub fn describe_tasks(&self, cluster: Option<&str>, ids: &[String]) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            if let Err(e) = names::check("tasks", name_from_arn(id)) {
                failures.push(Failure::on(id, "MISSING", Some(e.message)));
                continue;
            }
            match self
                .store
                .get(&keys::task(&cluster.cluster_name, name_from_arn(id)))?
            {
                Some(rec) => tasks.push(public(&decode(&rec.value)?)),
                None => failures.push(Failure::missing(id)),
            }
        }
        Ok(json!({ "tasks": tasks, "failures": failures }))
    }

    pub fn list_tasks(&self, cluster: Option<&str>, filter: &TaskFilter<'_>) -> EcsResult<Value> {
        let TaskFilter {
            desired_status,
            family,
            started_by,
            container_instance,
            service_name,
        } = filter;
        let cluster = self.cluster(cluster)?;
        let desired = desired_status.as_ref().unwrap_or(&DesiredStatus::Running);
        let mut arns = Vec::new();
        // Only the fields the filters need: listing reads every task.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listed {
            task_arn: String,
            task_definition_arn: String,
            desired_status: DesiredStatus,
            #[serde(default)]
            started_by: Option<String>,
            #[serde(default)]
            container_instance_arn: Option<String>,
            #[serde(default)]
            group: Option<String>,
        }
        for (_, rec) in self.store.list(&keys::tasks_of(&cluster.cluster_name))? {
            let t: Listed = decode(&rec.value)?;
            let family_of = name_from_arn(&t.task_definition_arn)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            let keep = t.desired_status == *desired
                && family.is_none_or(|f| f == family_of)
                && started_by.is_none_or(|s| t.started_by.as_deref() == Some(s))
                && service_name.is_none_or(|s| {
                    t.group.as_deref().and_then(|g| g.strip_prefix("service:")) == Some(s)
                })
                && container_instance.is_none_or(|ci| {
                    t.container_instance_arn
                        .as_deref()
                        .is_some_and(|a| a == ci || name_from_arn(a) == ci)
                });
            if keep {
                arns.push(t.task_arn);
            }
        }
        Ok(json!({ "taskArns": arns }))
    }

    /// Ask a task to stop; its supervisor stops the containers.
    pub fn stop_task(
        &self,
        cluster: Option<&str>,
        id: &str,
        reason: Option<&str>,
    ) -> EcsResult<Task> {
        self.stop_task_as(cluster, id, StopCode::UserInitiated, reason)
    }

    /// Ask task `id` to stop, saying who asked (`stop_code`: UserInitiated,
    /// ServiceSchedulerInitiated…).
    pub fn stop_task_as(
        &self,
        cluster: Option<&str>,
        id: &str,
        stop_code: StopCode,
        reason: Option<&str>,
    ) -> EcsResult<Task> {
        let cluster = self.cluster(cluster)?;
        let id = names::lookup("task", id)?.to_string();
        self.task(&cluster.cluster_name, &id)?;
        self.update_task(&cluster.cluster_name, &id, |t| {
            if t.desired_status != DesiredStatus::Stopped {
                t.desired_status = DesiredStatus::Stopped;
                t.stop_code.get_or_insert_with(|| stop_code.clone());
                t.stopped_reason
                    .get_or_insert_with(|| reason.unwrap_or("Task stopped by user").to_string());
                t.stopping_at.get_or_insert_with(now);
            }
        })
    }
}

impl Ecs {
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

    /// True while any task, of any cluster, holds an address on `bridge`.
    pub fn addresses_in_use(&self, bridge: &str) -> EcsResult<bool> {
        Ok(!self.store.list(&keys::ips_of(bridge))?.is_empty())
    }
}

impl Ecs {
    /// Address and host-port reservations whose task is gone or STOPPED
    /// (left by a crash between steps): released. Returns the keys freed.
    pub fn gc_reservations(&self) -> EcsResult<Vec<String>> {
        let mut freed = Vec::new();
        for prefix in keys::RESERVATIONS {
            for (key, rec) in self.store.list(prefix)? {
                let holder = String::from_utf8_lossy(&rec.value).to_string();
                let Some(keys::Holder::Task { cluster, task_id }) = keys::Holder::parse(&holder)
                else {
                    continue;
                };
                let live = match self.store.get(&keys::task(cluster, task_id))? {
                    Some(t) => !decode::<Task>(&t.value)?.is_stopped(),
                    None => false,
                };
                if !live {
                    let op = Op::Delete {
                        key: key.clone(),
                        expect: Expect::Revision(rec.revision),
                    };
                    match self.store.commit(&[op]) {
                        Ok(_) | Err(StoreError::Conflict(_)) => freed.push(key),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(freed)
    }

    /// The host ports (protocol, port) some task holds, on any host.
    pub fn reserved_host_ports(&self) -> EcsResult<std::collections::BTreeSet<(String, u16)>> {
        Ok(self
            .store
            .list(keys::PORTS)?
            .into_iter()
            .filter_map(|(k, _)| {
                let p = keys::parse_port(&k)?;
                Some((p.protocol.to_string(), p.port))
            })
            .collect())
    }

    /// Every task of `cluster`.
    pub fn all_tasks(&self, cluster: &str) -> EcsResult<Vec<Task>> {
        self.store
            .list(&keys::tasks_of(cluster))?
            .into_iter()
            .map(|(_, rec)| decode::<Task>(&rec.value))
            .collect()
    }

    pub fn cluster_names(&self) -> EcsResult<Vec<String>> {
        Ok(self
            .store
            .list(keys::CLUSTERS)?
            .into_iter()
            .filter_map(|(k, _)| keys::cluster_name(&k).map(str::to_string))
            .collect())
    }
}

/// A task as ECS shows it: without berth's bookkeeping.
pub fn public(task: &Task) -> Value {
    let mut t = task.clone();
    t.berth = None;
    serde_json::to_value(t).unwrap_or(Value::Null)
}

impl Ecs {
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
        self.host_instance(&cluster)?;
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
        self.store.commit(&[Op::Delete {
            key,
            expect: Expect::Revision(rec.revision),
        }])?;
        let mut out = ci;
        out.status = InstanceStatus::Inactive;
        Ok(json!({ "containerInstance": out }))
    }

    /// FARGATE usage as AWS bills it: vCPU-seconds and GiB-seconds of the
    /// task-level sizes, from start to stop (or now).
    pub fn usage(&self, cluster: Option<&str>) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let tasks: Vec<Task> = self
            .store
            .list(&keys::tasks_of(&cluster.cluster_name))?
            .into_iter()
            .map(|(_, rec)| decode(&rec.value))
            .collect::<EcsResult<_>>()?;
        Ok(usage_of(&tasks, chrono::Utc::now()))
    }
}

/// Per launch type: tasks, vCPU-seconds and GiB-seconds.
pub fn usage_of(tasks: &[Task], now: chrono::DateTime<chrono::Utc>) -> Value {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let mut totals: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
    for t in tasks {
        let Some(start) = parse(&t.started_at) else {
            continue;
        };
        let end = parse(&t.stopped_at).unwrap_or(now);
        let secs = (end - start).num_milliseconds().max(0) as f64 / 1000.0;
        let vcpu = t
            .cpu
            .as_deref()
            .and_then(|c| c.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
        let gib = t
            .memory
            .as_deref()
            .and_then(|m| m.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
        let e = totals.entry(t.launch_type.to_string()).or_default();
        e.0 += 1;
        e.1 += vcpu * secs;
        e.2 += gib * secs;
    }
    let rows: Vec<Value> = totals
        .into_iter()
        .map(|(lt, (n, cpu, mem))| {
            json!({
                "launchType": lt,
                "tasks": n,
                "vcpuSeconds": (cpu * 1000.0).round() / 1000.0,
                "gibSeconds": (mem * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    json!({ "usage": rows })
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

    fn task(lt: LaunchType, cpu: &str, mem: &str, start: &str, stop: Option<&str>) -> Task {
        Task {
            launch_type: lt,
            cpu: Some(cpu.into()),
            memory: Some(mem.into()),
            started_at: Some(start.into()),
            stopped_at: stop.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn usage_is_metered_per_launch_type() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc);
        let tasks = [
            task(
                LaunchType::Fargate,
                "512",
                "1024",
                "2026-01-01T00:00:00Z",
                Some("2026-01-01T00:01:40Z"),
            ),
            task(
                LaunchType::Fargate,
                "1024",
                "2048",
                "2026-01-01T00:09:00Z",
                None,
            ),
            task(
                LaunchType::Ec2,
                "256",
                "512",
                "2026-01-01T00:00:00Z",
                Some("2026-01-01T00:00:10Z"),
            ),
            task(LaunchType::Ec2, "256", "512", "2026-01-01T00:00:00Z", None).clone(),
        ];
        let mut never_started = tasks[2].clone();
        never_started.started_at = None;
        let mut all = tasks.to_vec();
        all.push(never_started);
        let u = usage_of(&all, now);
        let fargate = &u["usage"][1];
        assert_eq!(fargate["launchType"], "FARGATE");
        assert_eq!(fargate["tasks"], 2);
        // 0.5 vCPU × 100 s + 1 vCPU × 60 s; 1 GiB × 100 s + 2 GiB × 60 s.
        assert_eq!(fargate["vcpuSeconds"], 110.0);
        assert_eq!(fargate["gibSeconds"], 220.0);
        assert_eq!(u["usage"][0]["tasks"], 2);
    }

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

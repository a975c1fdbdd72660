//! The JSON of the task metadata endpoint v4, as the ECS agent serves it
//! (`ecs-agent/tmds/handlers/v4/state/response.go`), built from berth's
//! task record and definition. Pure: no store, no kernel.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::{
    ContainerDefinition, NetworkMode, Task, TaskDefinition, TaskNetwork, TaskStatus,
};

/// The address the containers reach the endpoint at, as on ECS.
pub const ADDRESS: &str = "169.254.170.2";

/// What the endpoint knows of its task: the supervisor's latest snapshot.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub task: Task,
    pub definition: TaskDefinition,
    /// Each container's image id (its config's digest), by container name.
    pub image_ids: BTreeMap<String, String>,
    /// The host's `ecs.availability-zone` attribute, if it has one.
    pub availability_zone: Option<String>,
    /// The task's cgroup (a cgroupsPath): each container's is under it,
    /// named as the container.
    pub cgroup_parent: String,
    /// The task role's credentials, served on the same listener (None:
    /// the task has no role).
    pub credentials: Option<std::sync::Arc<crate::credentials::Provider>>,
    /// Each container's own times, by name, as the runtime recorded them
    /// (RFC 3339); a container not in it shows its task's.
    pub times: BTreeMap<String, ContainerTimes>,
}

/// When a container was created, started and ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerTimes {
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A request's route: which answer and for which container id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Container(&'a str),
    Task(&'a str),
    TaskWithTags(&'a str),
    Stats(&'a str),
    TaskStats(&'a str),
}

/// The route of `path` (its query string ignored): `/v3/<id>…` and
/// `/v4/<id>…` alike, as the agent serves both from one task state.
pub fn route(path: &str) -> Option<Route<'_>> {
    let path = path.split('?').next().unwrap_or(path);
    let rest = path
        .strip_prefix("/v4/")
        .or_else(|| path.strip_prefix("/v3/"))?;
    let rest = rest.trim_end_matches('/');
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return None;
    }
    match tail {
        "" => Some(Route::Container(id)),
        "task" => Some(Route::Task(id)),
        "taskWithTags" => Some(Route::TaskWithTags(id)),
        "stats" => Some(Route::Stats(id)),
        "task/stats" => Some(Route::TaskStats(id)),
        _ => None,
    }
}

impl Snapshot {
    /// The container whose runtime id (the endpoint id) is `id`. Computed,
    /// not read from the record: a container may ask before its start is
    /// recorded.
    pub fn definition_of(&self, id: &str) -> Option<&ContainerDefinition> {
        self.definition
            .container_definitions
            .iter()
            .find(|d| self.runtime_id(&d.name) == id)
    }

    /// Each container's runtime id (endpoint id) and name.
    pub fn containers(&self) -> Vec<(String, String)> {
        self.definition
            .container_definitions
            .iter()
            .map(|d| (self.runtime_id(&d.name), d.name.clone()))
            .collect()
    }

    fn runtime_id(&self, container: &str) -> String {
        crate::names::runtime_id(self.task.id(), container)
    }

    /// `/v4/<id>`: one container, or None if `id` is none of the task's.
    pub fn container_json(&self, id: &str) -> Option<Value> {
        let def = self.definition_of(id)?;
        Some(self.container(def))
    }

    /// `/v4/<id>/task` (with tags for `/taskWithTags`); None if `id` is
    /// none of the task's containers.
    pub fn task_json(&self, id: &str, with_tags: bool) -> Option<Value> {
        self.definition_of(id)?;
        let t = &self.task;
        let td = &self.definition;
        let mut out = json!({
            "Cluster": t.cluster_arn,
            "TaskARN": t.task_arn,
            "Family": td.family,
            "Revision": td.revision.map(|r| r.to_string()).unwrap_or_default(),
            "DesiredStatus": t.desired_status.as_str(),
            "KnownStatus": t.last_status.as_str(),
            "Containers": td.container_definitions.iter()
                .map(|d| self.container(d)).collect::<Vec<_>>(),
            "LaunchType": t.launch_type.as_str(),
        });
        let o = object(&mut out);
        if let Some(limits) = task_limits(t, td) {
            o.insert("Limits".into(), limits);
        }
        let times = [
            ("PullStartedAt", &t.pull_started_at),
            ("PullStoppedAt", &t.pull_stopped_at),
            ("ExecutionStoppedAt", &t.execution_stopped_at),
        ];
        for (key, value) in times {
            if let Some(v) = value {
                o.insert(key.into(), json!(v));
            }
        }
        if let Some(az) = &self.availability_zone {
            o.insert("AvailabilityZone".into(), json!(az));
        }
        if let Some(service) = t.service_name() {
            o.insert("ServiceName".into(), json!(service));
        }
        if let Some(group) = &t.group {
            o.insert("Group".into(), json!(group));
        }
        if with_tags {
            let tags: Map<String, Value> = t
                .tags
                .iter()
                .map(|tag| (tag.key.clone(), json!(tag.value)))
                .collect();
            o.insert("TaskTags".into(), Value::Object(tags));
            o.insert("ContainerInstanceTags".into(), json!({}));
        }
        Some(out)
    }

    /// One container's object, as in `/v4/<id>` and the task's list.
    fn container(&self, def: &ContainerDefinition) -> Value {
        let t = &self.task;
        let record = t.containers.iter().find(|c| c.name == def.name);
        let runtime_id = self.runtime_id(&def.name);
        let known = record.map_or(&t.last_status, |c| &c.last_status);
        let mut out = json!({
            "DockerId": runtime_id,
            "Name": def.name,
            "DockerName": runtime_id,
            "Image": def.image,
            "ImageID": self.image_ids.get(&def.name).cloned().unwrap_or_default(),
            "Labels": self.labels(def),
            "DesiredStatus": t.desired_status.as_str(),
            "KnownStatus": known.as_str(),
            "Limits": container_limits(def),
            "Type": "NORMAL",
            "ContainerARN": record.map(|c| c.container_arn.clone()).unwrap_or_default(),
            "LogDriver": log_driver(def),
            "LogOptions": log_options(def),
            "Networks": self.networks(&def.name),
            "Snapshotter": "overlayfs",
        });
        let o = object(&mut out);
        let own = self.times.get(&def.name);
        // Without its own times (not yet created, or adopted without a
        // runtime state), a container shows its task's: it is made once
        // the images are pulled, and started with its task.
        let created = own
            .map(|c| &c.created_at)
            .or(t.pull_stopped_at.as_ref())
            .unwrap_or(&t.created_at);
        o.insert("CreatedAt".into(), json!(created));
        if *known >= TaskStatus::Running {
            let started = own.and_then(|c| c.started_at.as_ref());
            if let Some(at) = started
                .or(t.started_at.as_ref())
                .or(t.pull_stopped_at.as_ref())
            {
                o.insert("StartedAt".into(), json!(at));
            }
        }
        if let Some(code) = record.and_then(|c| c.exit_code) {
            o.insert("ExitCode".into(), json!(code));
            let finished = own.and_then(|c| c.finished_at.as_ref());
            if let Some(at) = finished.or(t.execution_stopped_at.as_ref()) {
                o.insert("FinishedAt".into(), json!(at));
            }
        }
        if def.health_check.is_some() {
            let status = record.map(|c| c.health_status.clone()).unwrap_or_default();
            o.insert("Health".into(), json!({"status": status.as_str()}));
        }
        let ports = self.ports(&def.name);
        if !ports.is_empty() {
            o.insert("Ports".into(), Value::Array(ports));
        }
        out
    }

    /// The definition's `dockerLabels` and the `com.amazonaws.ecs.*` ones
    /// the agent adds (those win, as on ECS).
    fn labels(&self, def: &ContainerDefinition) -> Value {
        let mut labels: Map<String, Value> = def
            .other
            .get("dockerLabels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let td = &self.definition;
        let ours = [
            ("com.amazonaws.ecs.cluster", self.task.cluster_arn.clone()),
            ("com.amazonaws.ecs.container-name", def.name.clone()),
            ("com.amazonaws.ecs.task-arn", self.task.task_arn.clone()),
            (
                "com.amazonaws.ecs.task-definition-family",
                td.family.clone(),
            ),
            (
                "com.amazonaws.ecs.task-definition-version",
                td.revision.map(|r| r.to_string()).unwrap_or_default(),
            ),
        ];
        for (k, v) in ours {
            labels.insert(k.into(), json!(v));
        }
        Value::Object(labels)
    }

    /// The container's network: the task's (awsvpc), its own (bridge), or
    /// the host's (no address of its own to show).
    fn networks(&self, container: &str) -> Value {
        let mode = self.definition.network_mode.clone().unwrap_or_default();
        let b = self.task.berth.as_ref();
        let own = b.and_then(|b| {
            b.container_networks
                .iter()
                .find(|cn| cn.container == container)
                .map(|cn| &cn.network)
        });
        let net = own.or_else(|| b.and_then(|b| b.network.as_ref()));
        match net {
            Some(n) if mode != NetworkMode::Host => json!([network(mode, n)]),
            _ => json!([{ "NetworkMode": mode.as_str(), "IPv4Addresses": [] }]),
        }
    }

    /// Port mappings of the container, as the agent lists them.
    fn ports(&self, container: &str) -> Vec<Value> {
        self.task
            .berth
            .iter()
            .flat_map(|b| &b.host_ports)
            .filter(|p| p.container == container)
            .map(|p| {
                json!({
                    "ContainerPort": p.container_port,
                    "Protocol": p.protocol,
                    "HostPort": p.host_port,
                    "HostIp": "0.0.0.0",
                })
            })
            .collect()
    }
}

fn object(v: &mut Value) -> &mut Map<String, Value> {
    match v {
        Value::Object(o) => o,
        // Only called on the `json!({...})` objects above.
        _ => unreachable!("an object literal"),
    }
}

/// One network entry: address, subnet, gateway and the private DNS name
/// EC2 would give the address (`ip-10-0-0-5.ec2.internal`'s shape).
fn network(mode: NetworkMode, n: &TaskNetwork) -> Value {
    let subnet = format!("{}/{}", n.address, n.prefix)
        .parse::<berth_net::Subnet>()
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "NetworkMode": mode.as_str(),
        "IPv4Addresses": [n.address],
        "AttachmentIndex": 0,
        "IPv4SubnetCIDRBlock": subnet,
        "PrivateDNSName": private_dns_name(&n.address),
        "SubnetGatewayIpv4Address": format!("{}/{}", n.gateway, n.prefix),
    })
}

/// EC2's name for a private address: `ip-a-b-c-d.ec2.internal`.
pub fn private_dns_name(address: &str) -> String {
    format!("ip-{}.ec2.internal", address.replace('.', "-"))
}

/// A container's limits: CPU units and MiB, as the agent reports them.
fn container_limits(def: &ContainerDefinition) -> Value {
    let mut limits = json!({ "CPU": def.cpu });
    if let Some(m) = def.memory.or(def.memory_reservation) {
        object(&mut limits).insert("Memory".into(), json!(m));
    }
    limits
}

/// The task's limits: CPU in vCPUs (units / 1024) and memory in MiB.
fn task_limits(t: &Task, td: &TaskDefinition) -> Option<Value> {
    let cpu = t.cpu.as_ref().or(td.cpu.as_ref())?.parse::<f64>().ok();
    let memory = t
        .memory
        .as_ref()
        .or(td.memory.as_ref())?
        .parse::<u64>()
        .ok();
    let mut limits = Map::new();
    if let Some(c) = cpu {
        limits.insert("CPU".into(), json!(c / 1024.0));
    }
    if let Some(m) = memory {
        limits.insert("Memory".into(), json!(m));
    }
    Some(Value::Object(limits))
}

/// The container's log driver: its `logConfiguration`'s, else berth's
/// default, json-file.
fn log_driver(def: &ContainerDefinition) -> String {
    def.log_configuration
        .as_ref()
        .map(|l| l.log_driver.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or("json-file")
        .to_string()
}

fn log_options(def: &ContainerDefinition) -> Value {
    def.log_configuration
        .as_ref()
        .and_then(|l| l.options.as_ref())
        .map_or_else(|| json!({}), |o| json!(o))
}

#[cfg(test)]
mod tests;

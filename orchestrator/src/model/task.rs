use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::{
    DesiredStatus, HealthStatus, InstanceStatus, LaunchType, StopCode, TaskStatus,
};
use super::Tag;

/// A task, as `describe-tasks` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub launch_type: LaunchType,
    /// The capacity provider (FARGATE or FARGATE_SPOT) a task run by a
    /// capacity provider strategy ran on; absent for a launch type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub overrides: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub version: u64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<StopCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub health_status: HealthStatus,
    #[serde(default)]
    pub connectivity: String,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// berth's own bookkeeping: what the task reserved on its instance,
    /// and the pid of its supervisor. Not part of ECS's shape.
    #[serde(default, rename = "x-berth", skip_serializing_if = "Option::is_none")]
    pub berth: Option<TaskInternals>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInternals {
    pub reserved_cpu: u64,
    pub reserved_memory: u64,
    #[serde(default)]
    pub supervisor_pid: Option<i32>,
    #[serde(default)]
    pub supervisor_start_time: Option<u64>,
    /// An awsvpc task's place on the cluster network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<TaskNetwork>,
    /// Host ports the task holds on its instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPort>,
    /// Bridge mode: each container's own place on the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_networks: Vec<ContainerNetwork>,
    /// An essential container has a health check: the task is in service
    /// only once HEALTHY.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub health_checked: bool,
    /// The id of the host (container instance) the task was placed on,
    /// whose agent runs it: also for FARGATE tasks, which show no
    /// container instance. None in records older than multi-host berth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNetwork {
    pub container: String,
    pub network: TaskNetwork,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPort {
    pub container: String,
    pub protocol: String,
    pub host_port: u16,
    pub container_port: u16,
    /// Taken during placement already (an ephemeral pick).
    #[serde(default, skip_serializing)]
    pub reserved: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetwork {
    pub bridge: String,
    pub address: String,
    pub prefix: u8,
    pub gateway: String,
    /// The host end of the task's veth pair.
    pub host_ifname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    pub last_status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<Value>,
    #[serde(default)]
    pub network_interfaces: Vec<Value>,
    #[serde(default)]
    pub health_status: HealthStatus,
    #[serde(default)]
    pub cpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// Times its restart policy restarted it in place (only with a policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
}

impl Task {
    /// The service whose task this is (its group is `service:NAME`).
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }

    /// RUNNING, not being stopped, and HEALTHY if it has checks: what a
    /// service counts as healthy and a load balancer sends traffic to.
    pub fn in_service(&self) -> bool {
        let checked = self.berth.as_ref().is_some_and(|b| b.health_checked);
        self.last_status == TaskStatus::Running
            && self.desired_status != DesiredStatus::Stopped
            && if checked {
                self.health_status == HealthStatus::Healthy
            } else {
                self.health_status != HealthStatus::Unhealthy
            }
    }

    /// The task id: the last part of its ARN.
    pub fn id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }

    /// The id of the host the task was placed on: recorded at placement,
    /// else its container instance's; None for a record that says neither.
    pub fn host_id(&self) -> Option<&str> {
        self.berth
            .as_ref()
            .and_then(|b| b.host.as_deref())
            .or_else(|| {
                let arn = self.container_instance_arn.as_deref()?;
                arn.rsplit('/').next()
            })
    }
}

/// A registered host, as `describe-container-instances` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub registered_resources: Vec<Resource>,
    pub remaining_resources: Vec<Resource>,
    pub running_tasks_count: u64,
    pub pending_tasks_count: u64,
    pub attributes: Vec<Attribute>,
    pub version_info: Value,
    pub registered_at: String,
    pub version: u64,
    /// TagResource's (an instance takes no tags at registration here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<super::Tag>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub integer_value: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub string_set_value: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl ContainerInstance {
    pub fn id(&self) -> &str {
        self.container_instance_arn
            .rsplit('/')
            .next()
            .unwrap_or(&self.container_instance_arn)
    }

    fn resource(list: &[Resource], name: &str) -> i64 {
        list.iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.integer_value)
    }

    pub fn remaining(&self, name: &str) -> i64 {
        Self::resource(&self.remaining_resources, name)
    }

    pub fn registered(&self, name: &str) -> i64 {
        Self::resource(&self.registered_resources, name)
    }

    /// Take (positive) or give back (negative) CPU units and MiB. Never
    /// wraps: amounts saturate at i64's ends.
    pub fn adjust(&mut self, cpu: i64, memory: i64) {
        for r in &mut self.remaining_resources {
            match r.name.as_str() {
                "CPU" => r.integer_value = r.integer_value.saturating_sub(cpu),
                "MEMORY" => r.integer_value = r.integer_value.saturating_sub(memory),
                _ => {}
            }
        }
    }

    /// Give back what a task reserved (unsigned, as tasks record it).
    pub fn release(&mut self, cpu: u64, memory: u64) {
        let neg = |v: u64| i64::try_from(v).map_or(i64::MIN, |v| -v);
        self.adjust(neg(cpu), neg(memory));
    }
}

//! ECS's shapes (botocore's `ecs/2014-11-13`), in the camelCase JSON that
//! `aws ecs` prints.

mod cluster;
mod discovery;
mod load_balancer;
mod service;
pub mod status;
mod task;
mod taskdef;
/// Shapes used inside task definitions.
pub mod taskdef_types {
    pub use super::taskdef::KeyValue;
}

pub use cluster::{CapacityProviderStrategyItem, Cluster, ClusterNetwork, ClusterSetting};
pub use discovery::{
    ClientAlias, ServiceConnectConfiguration, ServiceConnectService, ServiceRegistry,
};
pub use load_balancer::{LoadBalancer, ServiceLoadBalancer};
pub use service::{CircuitBreaker, Deployment, DeploymentConfiguration, Service, ServiceEvent};
pub use status::{
    ClusterStatus, ContainerCondition, DeploymentStatus, DesiredStatus, HealthStatus,
    InstanceStatus, LaunchType, NetworkMode, RolloutState, SchedulingStrategy, ServiceStatus,
    StopCode, TaskDefinitionStatus, TaskStatus,
};
pub use task::{
    Attribute, Container, ContainerInstance, ContainerNetwork, HostPort, Resource, Task,
    TaskInternals, TaskNetwork,
};
pub use taskdef::{
    ContainerDefinition, DependsOn, HostVolume, KernelCapabilities, LinuxParameters,
    LogConfiguration, PortMapping, RestartPolicy, TaskDefinition, Volume,
};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Failure {
    /// `reason` (RESOURCE:MEMORY, AGENT…) for the resource `arn`.
    pub fn on(arn: &str, reason: &str, detail: Option<String>) -> Self {
        Self {
            arn: Some(arn.to_string()),
            reason: reason.to_string(),
            detail,
        }
    }

    /// ECS's answer for a name or ARN it does not know.
    pub fn missing(arn: &str) -> Self {
        Self::on(arn, "MISSING", None)
    }
}

/// Where ARNs say berth's resources live.
#[derive(Clone, Debug)]
pub struct Partition {
    pub region: String,
    pub account: String,
}

impl Default for Partition {
    fn default() -> Self {
        Self {
            region: "local".into(),
            account: "000000000000".into(),
        }
    }
}

impl Partition {
    /// `arn:aws:ecs:<region>:<account>:<resource>`
    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{resource}", self.region, self.account)
    }
}

/// The last path part of an ARN, or the name itself: ECS takes either.
pub fn name_from_arn(s: &str) -> &str {
    if s.starts_with("arn:") {
        s.rsplit('/').next().unwrap_or(s)
    } else {
        s
    }
}

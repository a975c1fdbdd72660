use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::{
    DeploymentStatus, LaunchType, RolloutState, SchedulingStrategy, ServiceStatus,
};
use super::Tag;

/// An ECS service, as describe-services prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    /// ACTIVE, DRAINING (deleted, tasks stopping) or INACTIVE.
    pub status: ServiceStatus,
    pub task_definition: String,
    pub desired_count: u32,
    #[serde(default)]
    pub running_count: u32,
    #[serde(default)]
    pub pending_count: u32,
    pub launch_type: LaunchType,
    /// The strategy its tasks' capacity providers follow (exclusive with
    /// a launch type the request named; launchType is FARGATE then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<super::CapacityProviderStrategyItem>,
    pub scheduling_strategy: SchedulingStrategy,
    #[serde(default)]
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Newest first, as ECS lists them.
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub placement_strategy: Vec<Value>,
    #[serde(default)]
    pub placement_constraints: Vec<Value>,
    #[serde(default)]
    pub load_balancers: Vec<crate::model::ServiceLoadBalancer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
    /// Cloud Map registries (`discovery.rs` names them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_registries: Vec<super::ServiceRegistry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_configuration: Option<super::ServiceConnectConfiguration>,
    /// berth: the service's virtual address, which its discovery names
    /// resolve to in every task of the cluster (`vips/<address>` holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_virtual_address: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_at: String,
    #[serde(default)]
    pub version: u64,
    /// berth: the task definition of the last deployment that COMPLETED,
    /// where the circuit breaker rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed_task_definition: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<CircuitBreaker>,
}

impl Default for DeploymentConfiguration {
    /// ECS's defaults for a replica service.
    fn default() -> Self {
        Self {
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            deployment_circuit_breaker: None,
        }
    }
}

impl DeploymentConfiguration {
    /// ECS's JSON as create-service and update-service take it (the CLI's
    /// flag and the API's member alike): absent percentages keep ECS's
    /// defaults.
    pub fn from_json(mut value: serde_json::Value) -> serde_json::Result<Self> {
        let d = Self::default();
        if let Some(o) = value.as_object_mut() {
            o.entry("maximumPercent")
                .or_insert(d.maximum_percent.into());
            o.entry("minimumHealthyPercent")
                .or_insert(d.minimum_healthy_percent.into());
        }
        serde_json::from_value(value)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/<digits>`: tasks carry it as `startedBy`.
    pub id: String,
    /// PRIMARY (the newest) or ACTIVE (being replaced).
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub desired_count: u32,
    #[serde(default)]
    pub pending_count: u32,
    #[serde(default)]
    pub running_count: u32,
    #[serde(default)]
    pub failed_tasks: u32,
    pub launch_type: LaunchType,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: RolloutState,
    #[serde(default)]
    pub rollout_state_reason: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_configuration_json_keeps_ecs_defaults_for_what_is_absent() {
        let d = DeploymentConfiguration::from_json(serde_json::json!({"maximumPercent": 150}))
            .expect("valid");
        assert_eq!((d.maximum_percent, d.minimum_healthy_percent), (150, 100));
        let d = DeploymentConfiguration::from_json(serde_json::json!({})).expect("valid");
        assert_eq!(d, DeploymentConfiguration::default());
        assert!(
            DeploymentConfiguration::from_json(serde_json::json!({"maximumPercent": "x"})).is_err()
        );
    }
}

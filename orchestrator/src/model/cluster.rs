use serde::{Deserialize, Serialize};

use super::status::ClusterStatus;
use super::Tag;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    /// ACTIVE, or INACTIVE once deleted.
    pub status: ClusterStatus,
    #[serde(default)]
    pub registered_container_instances_count: u64,
    #[serde(default)]
    pub running_tasks_count: u64,
    #[serde(default)]
    pub pending_tasks_count: u64,
    #[serde(default)]
    pub active_services_count: u64,
    #[serde(default)]
    pub statistics: Vec<serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// UpdateClusterSettings' (containerInsights): stored and echoed.
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    /// UpdateCluster's `configuration` (execute command, managed
    /// storage): stored and echoed, berth acts on none of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
    /// UpdateCluster's `serviceConnectDefaults`, as ECS answers it
    /// (`{namespace}`): stored and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<serde_json::Value>,
    /// PutClusterCapacityProviders': FARGATE and/or FARGATE_SPOT.
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// berth: the bridge and subnet its tasks' addresses come from (absent
    /// in records from before it existed: the host's default then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ClusterNetwork>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetwork {
    pub bridge: String,
    pub subnet: String,
}

/// A cluster setting (`{"name": "containerInsights", "value": "enabled"}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

/// One line of a capacity provider strategy: `base` tasks first on the
/// one provider that has a base, the rest spread by `weight`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub base: u32,
}

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
    #[serde(default)]
    pub settings: Vec<serde_json::Value>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<serde_json::Value>,
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

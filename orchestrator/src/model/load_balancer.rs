use serde::{Deserialize, Serialize};

/// berth's load balancer: a listener on this host that spreads connections
/// over the tasks of the services attached to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub load_balancer_name: String,
    pub load_balancer_arn: String,
    /// "tcp" or "udp".
    pub protocol: String,
    /// One host address; absent: all of the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub port: u16,
    /// How long a task taken out of service still runs for the
    /// connections it has (ELB's deregistration delay).
    pub deregistration_delay_seconds: u32,
    pub created_at: String,
    /// The host the listener lives on (its container-instance id).
    pub host: String,
}

/// A service's `loadBalancers` entry (ECS's shape for a Classic Load
/// Balancer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default)]
    pub container_name: String,
    #[serde(default)]
    pub container_port: u16,
}

//! A service's discovery settings, in ECS's shapes: `serviceRegistries`
//! (Cloud Map) and `serviceConnectConfiguration` (Service Connect).

use serde::{Deserialize, Serialize};

/// `serviceRegistries[]`: a Cloud Map service the tasks register in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    #[serde(default)]
    pub registry_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
}

/// `serviceConnectConfiguration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectConfiguration {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub services: Vec<ServiceConnectService>,
    /// Accepted as ECS takes it; berth's logs are the task's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<serde_json::Value>,
}

/// `serviceConnectConfiguration.services[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectService {
    #[serde(default)]
    pub port_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_name: Option<String>,
    #[serde(default)]
    pub client_aliases: Vec<ClientAlias>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_port_override: Option<u16>,
}

/// `clientAliases[]`: the name and port clients use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAlias {
    #[serde(default)]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

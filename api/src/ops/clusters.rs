//! Clusters: CreateCluster (with its settings, configuration and
//! capacity providers, checked before anything is made), DescribeClusters
//! (`include`), ListClusters (paged), DeleteCluster. `serviceConnectDefaults`
//! is stored as UpdateCluster stores it.

use berth_orchestrator::ecs::UpdateCluster;
use berth_orchestrator::model::{CapacityProviderStrategyItem, ClusterSetting, Tag};
use berth_orchestrator::{account_settings, capacity};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{includes, input, Context};
use crate::paging;
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    cluster_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
}

impl Create {
    /// Refuse bad settings and providers before the cluster is made, so a
    /// refused call leaves nothing behind.
    fn check(&self) -> Result<(), ApiError> {
        for (i, s) in self.settings.iter().flatten().enumerate() {
            account_settings::check_cluster_setting(&format!("settings[{i}]"), &s.name, &s.value)?;
        }
        if self.configuration.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(ApiError::invalid("configuration: must be an object"));
        }
        let mut providers = Vec::new();
        for (i, p) in self.capacity_providers.iter().flatten().enumerate() {
            providers.push(capacity::built_in(&format!("capacityProviders[{i}]"), p)?.to_string());
        }
        let strategy = self.default_capacity_provider_strategy.as_deref();
        capacity::check_strategy(
            "defaultCapacityProviderStrategy",
            strategy.unwrap_or_default(),
            Some(&providers),
        )?;
        Ok(())
    }
}

pub fn create(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Create = input(body)?;
    req.check()?;
    // ECS: no name makes (or answers) the cluster "default".
    let name = req.cluster_name.clone().unwrap_or_else(|| "default".into());
    let mut out = ctx.ecs.create_cluster(&name, req.tags, None)?;
    if req.settings.is_some()
        || req.configuration.is_some()
        || req.service_connect_defaults.is_some()
    {
        out = ctx.ecs.update_cluster(&UpdateCluster {
            cluster: name.clone(),
            settings: req.settings,
            configuration: req.configuration,
            service_connect_defaults: req.service_connect_defaults,
        })?;
    }
    if req.capacity_providers.is_some() || req.default_capacity_provider_strategy.is_some() {
        out = ctx.ecs.put_cluster_capacity_providers(
            &name,
            &req.capacity_providers.unwrap_or_default(),
            &req.default_capacity_provider_strategy.unwrap_or_default(),
        )?;
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Describe {
    #[serde(default)]
    clusters: Vec<String>,
    include: Option<Vec<String>>,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    let mut out = ctx.ecs.describe_clusters(&req.clusters)?;
    // What `include` does not ask for is left out, as ECS does.
    let optional = [
        ("TAGS", "tags"),
        ("SETTINGS", "settings"),
        ("CONFIGURATIONS", "configuration"),
        ("STATISTICS", "statistics"),
        ("ATTACHMENTS", "attachments"),
    ];
    for c in out["clusters"].as_array_mut().into_iter().flatten() {
        if let Some(o) = c.as_object_mut() {
            for (what, member) in optional {
                if !includes(&req.include, what) {
                    o.remove(member);
                }
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List {
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: List = input(body)?;
    let out = ctx.ecs.list_clusters()?;
    let (arns, next) = paging::strings(
        strings(&out["clusterArns"]),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(json!({ "clusterArns": arns, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delete {
    cluster: String,
}

pub fn delete(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Delete = input(body)?;
    Ok(ctx.ecs.delete_cluster(&req.cluster)?)
}

/// A JSON array of strings (the orchestrator's ARN lists).
pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

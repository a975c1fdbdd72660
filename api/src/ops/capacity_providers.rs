//! DescribeCapacityProviders (paged: at most 10) and
//! PutClusterCapacityProviders.

use berth_orchestrator::model::CapacityProviderStrategyItem;
use serde::Deserialize;
use serde_json::Value;

use super::{input, Context};
use crate::paging::sorted_page;
use crate::protocol::ApiError;

/// ECS's largest DescribeCapacityProviders page.
const MOST: i64 = 10;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Describe {
    #[serde(default)]
    capacity_providers: Vec<String>,
    cluster: Option<String>,
    /// TAGS: the built-in providers' (empty) tags are always there.
    #[serde(default)]
    include: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutCluster {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<StrategyItem>,
}

/// The model's CapacityProviderStrategyItem, strictly.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StrategyItem {
    capacity_provider: String,
    #[serde(default)]
    weight: u32,
    #[serde(default)]
    base: u32,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    if let Some(bad) = req.include.iter().find(|i| *i != "TAGS") {
        return Err(ApiError::invalid(format!("include: {bad:?}: only TAGS")));
    }
    let out = ctx
        .ecs
        .describe_capacity_providers(&req.capacity_providers, req.cluster.as_deref())?;
    let mut answer = sorted_page(
        "capacityProviders",
        &out,
        req.max_results,
        req.next_token.as_deref(),
        MOST,
        |p| p["name"].as_str().unwrap_or("").to_string(),
    )?;
    answer["failures"] = out["failures"].clone();
    Ok(answer)
}

pub fn put_cluster(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: PutCluster = input(body)?;
    let strategy: Vec<CapacityProviderStrategyItem> = req
        .default_capacity_provider_strategy
        .into_iter()
        .map(|i| CapacityProviderStrategyItem {
            capacity_provider: i.capacity_provider,
            weight: i.weight,
            base: i.base,
        })
        .collect();
    Ok(ctx
        .ecs
        .put_cluster_capacity_providers(&req.cluster, &req.capacity_providers, &strategy)?)
}

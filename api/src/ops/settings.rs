//! UpdateCluster, UpdateClusterSettings and the account settings
//! (ListAccountSettings paged: at most 10).

use berth_orchestrator::ecs::{ListAccountSettings, UpdateCluster};
use berth_orchestrator::model::ClusterSetting;
use serde::Deserialize;
use serde_json::Value;

use super::{input, Context};
use crate::paging::sorted_page;
use crate::protocol::ApiError;

/// ECS's largest ListAccountSettings page.
const MOST: i64 = 10;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateClusterSettings {
    cluster: String,
    settings: Vec<ClusterSetting>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutSetting {
    name: String,
    value: String,
    principal_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutDefault {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteSetting {
    name: String,
    principal_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListSettings {
    name: Option<String>,
    value: Option<String>,
    principal_arn: Option<String>,
    #[serde(default)]
    effective_settings: bool,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn update_cluster(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: UpdateClusterRequest = input(body)?;
    Ok(ctx.ecs.update_cluster(&UpdateCluster {
        cluster: req.cluster,
        settings: req.settings,
        configuration: req.configuration,
        service_connect_defaults: req.service_connect_defaults,
    })?)
}

pub fn update_cluster_settings(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: UpdateClusterSettings = input(body)?;
    Ok(ctx
        .ecs
        .update_cluster_settings(&req.cluster, &req.settings)?)
}

pub fn put(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: PutSetting = input(body)?;
    Ok(ctx
        .ecs
        .put_account_setting(&req.name, &req.value, req.principal_arn.as_deref())?)
}

pub fn put_default(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: PutDefault = input(body)?;
    Ok(ctx.ecs.put_account_setting_default(&req.name, &req.value)?)
}

pub fn delete(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: DeleteSetting = input(body)?;
    Ok(ctx
        .ecs
        .delete_account_setting(&req.name, req.principal_arn.as_deref())?)
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: ListSettings = input(body)?;
    let out = ctx.ecs.list_account_settings(&ListAccountSettings {
        name: req.name,
        value: req.value,
        principal_arn: req.principal_arn,
        effective_settings: req.effective_settings,
    })?;
    sorted_page(
        "settings",
        &out,
        req.max_results,
        req.next_token.as_deref(),
        MOST,
        |s| s["name"].as_str().unwrap_or("").to_string(),
    )
}

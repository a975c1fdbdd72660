//! Clusters: CreateCluster, DescribeClusters (`include`), ListClusters
//! (paged), DeleteCluster. Members of the model berth does not act on
//! (capacity providers, service connect defaults) are accepted and
//! ignored, as `wire::check_request` has already checked their types.

use berth_orchestrator::model::Tag;
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
}

pub fn create(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Create = input(body)?;
    // ECS: no name makes (or answers) the cluster "default".
    let name = req.cluster_name.unwrap_or_else(|| "default".into());
    Ok(ctx.ecs.create_cluster(&name, req.tags, None)?)
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

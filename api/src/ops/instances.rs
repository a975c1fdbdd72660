//! Container instances: this host registers (with custom attributes);
//! Deregister, List (paged), Describe, UpdateContainerInstancesState
//! (followed by a reconcile pass, as DAEMON tasks follow the state).
//! Members berth does not act on (identity documents, totalResources,
//! platformDevices, tags) are accepted and ignored.

use berth_orchestrator::model::{Attribute, InstanceStatus};
use berth_orchestrator::reconcile;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::strings;
use super::{input, Context};
use crate::paging;
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
    cluster: Option<String>,
    #[serde(default)]
    attributes: Vec<ModelAttribute>,
}

/// The model's Attribute (berth's custom attributes are name and value).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelAttribute {
    name: String,
    value: Option<String>,
}

pub fn register(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Register = input(body)?;
    let attrs: Vec<Attribute> = req
        .attributes
        .into_iter()
        .map(|a| Attribute {
            name: a.name,
            value: a.value,
        })
        .collect();
    Ok(ctx
        .ecs
        .register_container_instance(req.cluster.as_deref(), &attrs)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deregister {
    cluster: Option<String>,
    container_instance: String,
    #[serde(default)]
    force: bool,
}

pub fn deregister(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Deregister = input(body)?;
    Ok(ctx.ecs.deregister_container_instance(
        req.cluster.as_deref(),
        &req.container_instance,
        req.force,
    )?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List {
    cluster: Option<String>,
    filter: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: List = input(body)?;
    if let Some(f) = req.filter.as_ref().or(req.status.as_ref()) {
        return Err(ApiError::invalid(format!(
            "berth does not filter ListContainerInstances by a query or status ({f})"
        )));
    }
    let out = ctx.ecs.list_container_instances(req.cluster.as_deref())?;
    let (arns, next) = paging::strings(
        strings(&out["containerInstanceArns"]),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(json!({ "containerInstanceArns": arns, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Describe {
    cluster: Option<String>,
    container_instances: Vec<String>,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    Ok(ctx
        .ecs
        .describe_container_instances(req.cluster.as_deref(), &req.container_instances)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateState {
    cluster: Option<String>,
    container_instances: Vec<String>,
    status: InstanceStatus,
}

pub fn update_state(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: UpdateState = input(body)?;
    let cluster = req.cluster.as_deref();
    let out =
        ctx.ecs
            .update_container_instances_state(cluster, &req.container_instances, &req.status)?;
    let name = ctx.ecs.cluster(cluster)?.cluster_name;
    reconcile::reconcile_cluster(ctx.ecs, ctx.cfg, &name)?;
    Ok(out)
}

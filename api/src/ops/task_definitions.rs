//! Task definitions: Register, Describe (`include TAGS`), List and
//! ListFamilies (paged), Deregister.

use berth_orchestrator::model::TaskDefinition;
use berth_orchestrator::EcsError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::strings;
use super::{includes, input, Context};
use crate::paging;
use crate::protocol::ApiError;

pub fn register(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    // The request is the definition's own shape (with `tags`); a member
    // of the wrong shape is ECS's ClientException, as the CLI answers.
    let request: TaskDefinition = serde_path_to_error::deserialize(body).map_err(|e| {
        EcsError::client(format!(
            "the task definition does not have ECS's shape: {}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let (out, ignored) = ctx.ecs.register_task_definition(request)?;
    if !ignored.is_empty() {
        tracing::info!(
            "RegisterTaskDefinition: accepted but not acted on: {}",
            ignored.join(", ")
        );
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Describe {
    task_definition: String,
    include: Option<Vec<String>>,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    let tags = includes(&req.include, "TAGS");
    Ok(ctx
        .ecs
        .describe_task_definition(&req.task_definition, tags)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: List = input(body)?;
    let out = ctx.ecs.list_task_definitions(
        req.family_prefix.as_deref(),
        req.status.as_deref(),
        req.sort.as_deref() == Some("DESC"),
    )?;
    // In the orchestrator's order (family, then revision; or reversed).
    let (arns, next) = paging::page(
        &strings(&out["taskDefinitionArns"]),
        req.max_results,
        req.next_token.as_deref(),
        Clone::clone,
    )?;
    Ok(json!({ "taskDefinitionArns": arns, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFamilies {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn list_families(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: ListFamilies = input(body)?;
    let out = ctx
        .ecs
        .list_task_definition_families(req.family_prefix.as_deref(), req.status.as_deref())?;
    let (families, next) = paging::strings(
        strings(&out["families"]),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(json!({ "families": families, "nextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deregister {
    task_definition: String,
}

pub fn deregister(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Deregister = input(body)?;
    Ok(ctx.ecs.deregister_task_definition(&req.task_definition)?)
}

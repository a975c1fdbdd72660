//! Services: Create, Update, Delete (each followed at once by a
//! reconcile pass of the cluster, as the CLI does, so tasks start or stop
//! now), DescribeServices (`include TAGS`; deleted services stay
//! describable as INACTIVE), ListServices (paged). Members berth does not
//! act on (networkConfiguration, deploymentController, propagateTags …)
//! are accepted and ignored; a CreateService repeated with the same
//! parameters answers the first (the orchestrator's, whatever the
//! `clientToken`).

use berth_orchestrator::ecs::services::CreateService;
use berth_orchestrator::model::{
    CapacityProviderStrategyItem, DeploymentConfiguration, LaunchType, SchedulingStrategy,
    ServiceLoadBalancer, Tag,
};
use berth_orchestrator::reconcile::{self, Config};
use berth_orchestrator::Ecs;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::strings;
use super::tasks::strip_member;
use super::{includes, input, Context};
use crate::paging;
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    cluster: Option<String>,
    service_name: String,
    task_definition: Option<String>,
    desired_count: Option<u32>,
    launch_type: Option<LaunchType>,
    deployment_configuration: Option<Value>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    load_balancers: Vec<ServiceLoadBalancer>,
    health_check_grace_period_seconds: Option<u32>,
    scheduling_strategy: Option<SchedulingStrategy>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default)]
    service_registries: Vec<berth_orchestrator::model::ServiceRegistry>,
    service_connect_configuration: Option<berth_orchestrator::model::ServiceConnectConfiguration>,
}

/// ECS's deployment configuration (absent percentages at ECS's defaults,
/// as the CLI reads it); members berth does not act on (alarms, strategy
/// …) are ignored.
fn deployment(v: Option<Value>) -> Result<Option<DeploymentConfiguration>, ApiError> {
    v.map(DeploymentConfiguration::from_json)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("deploymentConfiguration: {e}")))
}

/// One reconcile pass of `cluster` after a change, as the CLI's verbs run.
fn reconcile_now(ecs: &Ecs, cfg: &Config, cluster: Option<&str>) -> Result<(), ApiError> {
    let name = match cluster {
        Some(c) => ecs.cluster(Some(c))?.cluster_name,
        None => "default".to_string(),
    };
    reconcile::reconcile_cluster(ecs, cfg, &name)?;
    Ok(())
}

pub fn create(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Create = input(body)?;
    let task_definition = req
        .task_definition
        .ok_or_else(|| ApiError::invalid("taskDefinition: berth needs a task definition"))?;
    let create = CreateService {
        cluster: req.cluster,
        service_name: req.service_name,
        task_definition,
        desired_count: req.desired_count.unwrap_or(1),
        launch_type: req.launch_type,
        deployment_configuration: deployment(req.deployment_configuration)?,
        placement_strategy: req.placement_strategy,
        placement_constraints: req.placement_constraints,
        load_balancers: req.load_balancers,
        health_check_grace_period_seconds: req.health_check_grace_period_seconds,
        scheduling_strategy: req.scheduling_strategy,
        tags: req.tags,
        capacity_provider_strategy: req.capacity_provider_strategy,
        service_registries: req.service_registries,
        service_connect_configuration: req.service_connect_configuration,
    };
    let out = ctx.ecs.create_service(&create)?;
    reconcile_now(ctx.ecs, ctx.cfg, create.cluster.as_deref())?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Update {
    cluster: Option<String>,
    service: String,
    desired_count: Option<u32>,
    task_definition: Option<String>,
    #[serde(default)]
    force_new_deployment: bool,
    deployment_configuration: Option<Value>,
}

pub fn update(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Update = input(body)?;
    let out = ctx.ecs.update_service(
        req.cluster.as_deref(),
        &req.service,
        req.desired_count,
        req.task_definition.as_deref(),
        req.force_new_deployment,
        deployment(req.deployment_configuration)?,
    )?;
    reconcile_now(ctx.ecs, ctx.cfg, req.cluster.as_deref())?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delete {
    cluster: Option<String>,
    service: String,
    #[serde(default)]
    force: bool,
}

pub fn delete(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Delete = input(body)?;
    let out = ctx
        .ecs
        .delete_service(req.cluster.as_deref(), &req.service, req.force)?;
    reconcile_now(ctx.ecs, ctx.cfg, req.cluster.as_deref())?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Describe {
    cluster: Option<String>,
    services: Vec<String>,
    include: Option<Vec<String>>,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    let mut out = ctx
        .ecs
        .describe_services(req.cluster.as_deref(), &req.services)?;
    if !includes(&req.include, "TAGS") {
        strip_member(&mut out["services"], "tags");
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List {
    cluster: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: List = input(body)?;
    if let Some(f) = req
        .launch_type
        .as_ref()
        .or(req.scheduling_strategy.as_ref())
    {
        return Err(ApiError::invalid(format!(
            "berth does not filter ListServices by launch type or scheduling strategy ({f})"
        )));
    }
    let out = ctx.ecs.list_services(req.cluster.as_deref())?;
    let (arns, next) = paging::strings(
        strings(&out["serviceArns"]),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(json!({ "serviceArns": arns, "nextToken": next }))
}

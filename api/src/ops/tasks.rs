//! Tasks: RunTask and StartTask (their supervisors started at once, as
//! the CLI starts them), StopTask, DescribeTasks (`include TAGS`),
//! ListTasks (paged). `capacityProviderStrategy` (FARGATE, FARGATE_SPOT)
//! and RunTask's `clientToken` (a retry answers the first result) are the
//! orchestrator's; members berth does not act on (networkConfiguration,
//! propagateTags, enableExecuteCommand …) are accepted and ignored.

use berth_orchestrator::ecs::{RunTask, TaskFilter};
use berth_orchestrator::model::{CapacityProviderStrategyItem, DesiredStatus, LaunchType, Tag};
use berth_orchestrator::reconcile;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::strings;
use super::{includes, input, Context};
use crate::paging;
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    cluster: Option<String>,
    task_definition: String,
    count: Option<u32>,
    launch_type: Option<LaunchType>,
    overrides: Option<Value>,
    started_by: Option<String>,
    group: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    client_token: Option<String>,
    /// StartTask's: the instances to start on.
    #[serde(default)]
    container_instances: Vec<String>,
}

impl Run {
    fn request(self) -> (RunTask, Vec<String>) {
        let req = RunTask {
            cluster: self.cluster,
            task_definition: self.task_definition,
            count: self.count.unwrap_or(1),
            launch_type: self.launch_type,
            overrides: self.overrides.unwrap_or_else(|| json!({})),
            started_by: self.started_by,
            group: self.group,
            tags: self.tags,
            placement_strategy: self.placement_strategy,
            placement_constraints: self.placement_constraints,
            capacity_provider_strategy: self.capacity_provider_strategy,
            client_token: self.client_token,
            ..Default::default()
        };
        (req, self.container_instances)
    }
}

pub fn run(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let (req, _) = input::<Run>(body)?.request();
    let (out, tasks) = ctx.ecs.run_task(&req)?;
    reconcile::start(ctx.ecs, ctx.cfg, &tasks);
    Ok(out)
}

pub fn start(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let (req, instances) = input::<Run>(body)?.request();
    let (out, tasks) = ctx.ecs.start_task(&req, &instances)?;
    reconcile::start(ctx.ecs, ctx.cfg, &tasks);
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stop {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

pub fn stop(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Stop = input(body)?;
    let t = ctx
        .ecs
        .stop_task(req.cluster.as_deref(), &req.task, req.reason.as_deref())?;
    // A task whose supervisor is gone is finished here, as the CLI does.
    if let Err(e) = reconcile::finish_if_orphaned(ctx.ecs, ctx.cfg, &t) {
        tracing::warn!("StopTask: clean up task {}: {e}", t.id());
    }
    Ok(json!({ "task": berth_orchestrator::ecs::public(&t) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Describe {
    cluster: Option<String>,
    tasks: Vec<String>,
    include: Option<Vec<String>>,
}

pub fn describe(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: Describe = input(body)?;
    let mut out = ctx.ecs.describe_tasks(req.cluster.as_deref(), &req.tasks)?;
    if !includes(&req.include, "TAGS") {
        strip_member(&mut out["tasks"], "tags");
    }
    Ok(out)
}

/// Leave `member` out of each object of the list `v` (what `include`
/// did not ask for).
pub(super) fn strip_member(v: &mut Value, member: &str) {
    for item in v.as_array_mut().into_iter().flatten() {
        if let Some(o) = item.as_object_mut() {
            o.remove(member);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<DesiredStatus>,
    launch_type: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: List = input(body)?;
    if let Some(lt) = &req.launch_type {
        // The orchestrator's listing does not read launch types: say so
        // rather than answer an unfiltered list.
        return Err(ApiError::invalid(format!(
            "launchType: berth does not filter ListTasks by launch type ({lt})"
        )));
    }
    let filter = TaskFilter {
        desired_status: req.desired_status,
        family: req.family.as_deref(),
        started_by: req.started_by.as_deref(),
        container_instance: req.container_instance.as_deref(),
        service_name: req.service_name.as_deref(),
    };
    let out = ctx.ecs.list_tasks(req.cluster.as_deref(), &filter)?;
    let (arns, next) = paging::strings(
        strings(&out["taskArns"]),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(json!({ "taskArns": arns, "nextToken": next }))
}

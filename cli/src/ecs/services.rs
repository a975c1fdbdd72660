//! Services: create, update and delete, each followed at once by a
//! reconcile pass of the cluster (the orchestrator's), so that tasks start
//! or stop now rather than at the agent's next pass.

use anyhow::Context;
use berth_orchestrator::ecs::services::CreateService;
use berth_orchestrator::model::{LaunchType, SchedulingStrategy};
use berth_orchestrator::reconcile::{self, Config};
use berth_orchestrator::{Ecs, EcsError};
use serde_json::Value;

use super::input::{json_arg, parse_deployment_configuration, parse_tags, typed};
use super::{usage, Outcome};

// create-service's flags.
#[derive(clap::Args)]
pub struct Create {
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long)]
    service_name: String,
    #[arg(long)]
    task_definition: String,
    #[arg(long, default_value_t = 1)]
    desired_count: u32,
    /// EC2 (default) or FARGATE.
    #[arg(long)]
    launch_type: Option<LaunchType>,
    /// JSON, or maximumPercent=N,minimumHealthyPercent=N.
    #[arg(long)]
    deployment_configuration: Option<String>,
    /// JSON array, or file://PATH.
    #[arg(long)]
    placement_strategy: Option<String>,
    /// JSON array, or file://PATH.
    #[arg(long)]
    placement_constraints: Option<String>,
    /// JSON array, or file://PATH.
    #[arg(long)]
    load_balancers: Option<String>,
    #[arg(long)]
    health_check_grace_period_seconds: Option<u32>,
    /// REPLICA (default).
    #[arg(long)]
    scheduling_strategy: Option<SchedulingStrategy>,
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
    /// capacityProvider=FARGATE|FARGATE_SPOT,weight=W,base=B … (or a
    /// JSON array); not with --launch-type.
    #[arg(long, num_args = 1..)]
    capacity_provider_strategy: Vec<String>,
    /// Accepted as aws sends it: the same create-service again answers
    /// the first result whatever the token.
    #[arg(long)]
    client_token: Option<String>,
}

// update-service's flags.
#[derive(clap::Args)]
pub struct Update {
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long)]
    service: String,
    #[arg(long)]
    desired_count: Option<u32>,
    #[arg(long)]
    task_definition: Option<String>,
    #[arg(long)]
    force_new_deployment: bool,
    #[arg(long)]
    deployment_configuration: Option<String>,
}

pub(super) fn create(ecs: &Ecs, cfg: &Config, args: Create) -> Result<Outcome, EcsError> {
    let req = match create_request(args) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let out = ecs.create_service(&req)?;
    reconcile::reconcile_cluster(ecs, cfg, req.cluster.as_deref().unwrap_or("default"))?;
    Ok(Outcome::Value(out))
}

/// `--placement-strategy` and `--placement-constraints`: JSON arrays.
fn list(flag: &str, v: &Option<String>) -> anyhow::Result<Vec<Value>> {
    match v {
        Some(v) => typed(json_arg(flag, v)?).with_context(|| format!("--{flag}: not a JSON array")),
        None => Ok(Vec::new()),
    }
}

fn create_request(args: Create) -> anyhow::Result<CreateService> {
    let Create {
        cluster,
        service_name,
        task_definition,
        desired_count,
        launch_type,
        deployment_configuration,
        placement_strategy,
        placement_constraints,
        load_balancers,
        health_check_grace_period_seconds,
        scheduling_strategy,
        tags,
        capacity_provider_strategy,
        client_token: _,
    } = args;
    Ok(CreateService {
        cluster,
        service_name,
        task_definition,
        desired_count,
        launch_type,
        deployment_configuration: deployment_configuration
            .as_deref()
            .map(parse_deployment_configuration)
            .transpose()?,
        placement_strategy: list("placement-strategy", &placement_strategy)?,
        placement_constraints: list("placement-constraints", &placement_constraints)?,
        load_balancers: match &load_balancers {
            Some(v) => typed(json_arg("load-balancers", v)?).context(
                "--load-balancers: not a JSON array of {loadBalancerName, containerName, containerPort}",
            )?,
            None => Vec::new(),
        },
        health_check_grace_period_seconds,
        scheduling_strategy,
        tags: parse_tags(&tags)?,
        capacity_provider_strategy: match capacity_provider_strategy.as_slice() {
            [] => Vec::new(),
            some => super::ops_input::strategy("capacity-provider-strategy", some)?,
        },
    })
}

pub(super) fn update(ecs: &Ecs, cfg: &Config, args: Update) -> Result<Outcome, EcsError> {
    let Update {
        cluster,
        service,
        desired_count,
        task_definition,
        force_new_deployment,
        deployment_configuration,
    } = args;
    let deployment = match deployment_configuration
        .as_deref()
        .map(parse_deployment_configuration)
        .transpose()
    {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let out = ecs.update_service(
        cluster.as_deref(),
        &service,
        desired_count,
        task_definition.as_deref(),
        force_new_deployment,
        deployment,
    )?;
    reconcile::reconcile_cluster(ecs, cfg, cluster.as_deref().unwrap_or("default"))?;
    Ok(Outcome::Value(out))
}

// delete-service's flags.
#[derive(clap::Args)]
pub struct Delete {
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long)]
    service: String,
    #[arg(long)]
    force: bool,
}

pub(super) fn delete(ecs: &Ecs, cfg: &Config, args: Delete) -> Result<Outcome, EcsError> {
    let cluster = args.cluster.as_deref();
    let out = ecs.delete_service(cluster, &args.service, args.force)?;
    reconcile::reconcile_cluster(ecs, cfg, cluster.unwrap_or("default"))?;
    Ok(Outcome::Value(out))
}

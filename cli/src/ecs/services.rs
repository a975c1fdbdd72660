//! Services: create, update and delete, each followed at once by a
//! reconcile pass of the cluster (the orchestrator's), so that tasks start
//! or stop now rather than at the agent's next pass.

use anyhow::Context;
use berth_orchestrator::ecs::services::CreateService;
use berth_orchestrator::model::{
    LaunchType, SchedulingStrategy, ServiceConnectConfiguration, ServiceLoadBalancer,
    ServiceRegistry,
};
use berth_orchestrator::reconcile::{self, Config};
use berth_orchestrator::{Ecs, EcsError};
use serde_json::Value;

use super::input::{parse_deployment_configuration, parse_tags, typed};
use super::{structured, usage, Outcome};

// create-service's flags.
#[derive(clap::Args)]
pub struct Create {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// The service's name, unique in its cluster.
    #[arg(long)]
    service_name: String,
    /// family:revision, family (its latest ACTIVE revision) or ARN.
    #[arg(long)]
    task_definition: String,
    /// How many tasks to keep running.
    #[arg(long, default_value_t = 1)]
    desired_count: u32,
    /// EC2 (default) or FARGATE.
    #[arg(long)]
    launch_type: Option<LaunchType>,
    /// JSON, or maximumPercent=N,minimumHealthyPercent=N.
    #[arg(long)]
    deployment_configuration: Option<String>,
    /// How tasks spread over hosts: type=spread,field=F or
    /// type=binpack,field=memory … (or a JSON array, or file://PATH).
    #[arg(long, num_args = 1..)]
    placement_strategy: Vec<String>,
    /// Where tasks may run: type=memberOf,expression=E or
    /// type=distinctInstance … (or a JSON array, or file://PATH).
    #[arg(long, num_args = 1..)]
    placement_constraints: Vec<String>,
    /// loadBalancerName=N,containerName=C,containerPort=P … (or a JSON
    /// array, or file://PATH).
    #[arg(long, num_args = 1..)]
    load_balancers: Vec<String>,
    /// Seconds a new task's failing health checks are ignored.
    #[arg(long)]
    health_check_grace_period_seconds: Option<u32>,
    /// REPLICA (default).
    #[arg(long)]
    scheduling_strategy: Option<SchedulingStrategy>,
    /// key=K,value=V … (or a JSON array).
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
    /// Cloud Map: registryArn=arn:…:servicediscovery:…:service/NAME,port=P
    /// … (or a JSON array): NAME resolves to the service in every task of
    /// the cluster.
    #[arg(long, num_args = 1..)]
    service_registries: Vec<String>,
    /// Service Connect, as JSON (or file://PATH): enabled, namespace,
    /// services[{portName, discoveryName, clientAliases[{port, dnsName}]}].
    #[arg(long)]
    service_connect_configuration: Option<String>,
}

// update-service's flags.
#[derive(clap::Args)]
pub struct Update {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// The service, by name or ARN.
    #[arg(long)]
    service: String,
    /// The new number of tasks to keep running.
    #[arg(long)]
    desired_count: Option<u32>,
    /// Roll the service to this task definition: family:revision, family (its latest ACTIVE revision) or ARN.
    #[arg(long)]
    task_definition: Option<String>,
    /// Replace every task, even with the same task definition.
    #[arg(long)]
    force_new_deployment: bool,
    /// maximumPercent=N,minimumHealthyPercent=N (or JSON, or file://PATH).
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
        service_registries,
        service_connect_configuration,
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
        placement_strategy: structured::list_values::<Value>(
            "placement-strategy",
            &placement_strategy,
        )?,
        placement_constraints: structured::list_values::<Value>(
            "placement-constraints",
            &placement_constraints,
        )?,
        load_balancers: structured::list::<ServiceLoadBalancer>("load-balancers", &load_balancers)?,
        health_check_grace_period_seconds,
        scheduling_strategy,
        tags: parse_tags(&tags)?,
        capacity_provider_strategy: match capacity_provider_strategy.as_slice() {
            [] => Vec::new(),
            some => super::ops_input::strategy("capacity-provider-strategy", some)?,
        },
        service_registries: structured::list::<ServiceRegistry>(
            "service-registries",
            &service_registries,
        )?,
        service_connect_configuration: service_connect_configuration
            .map(|v| {
                let value = structured::one_value::<ServiceConnectConfiguration>(
                    "service-connect-configuration",
                    &v,
                )?;
                typed(value).context("--service-connect-configuration")
            })
            .transpose()?,
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
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// The service, by name or ARN.
    #[arg(long)]
    service: String,
    /// Delete it even while its desired count is not 0 (its tasks stop).
    #[arg(long)]
    force: bool,
}

pub(super) fn delete(ecs: &Ecs, cfg: &Config, args: Delete) -> Result<Outcome, EcsError> {
    let cluster = args.cluster.as_deref();
    let out = ecs.delete_service(cluster, &args.service, args.force)?;
    reconcile::reconcile_cluster(ecs, cfg, cluster.unwrap_or("default"))?;
    Ok(Outcome::Value(out))
}

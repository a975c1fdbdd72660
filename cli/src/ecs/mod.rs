//! The `aws ecs`-shaped verbs: same names, same flags, same JSON.
//!
//! This module parses and dispatches: each verb's arm calls one function
//! of its resource's file (clusters, task_definitions, tasks, logs,
//! services, load_balancers, instances, agent); `input` reads the flag
//! values. What is orchestration rather than parsing (supervisors,
//! reconcile passes, orphans, the agent loop) is the orchestrator's
//! `reconcile`.

use berth_orchestrator::model::Partition;
use berth_orchestrator::reconcile::Config;
use berth_orchestrator::{Ecs, EcsError, EcsResult};
use clap::Subcommand;
use serde_json::Value;

use crate::output::Printer;
use crate::Roots;

mod agent;
mod clusters;
mod input;
mod instances;
mod load_balancers;
mod log_groups;
mod logs;
// Issue 14's verbs (tags, attributes, settings, capacity providers).
mod ops;
mod ops_input;
// Issue 15: berth's secret store in aws ssm's and secretsmanager's shapes.
mod secrets;
mod services;
mod shorthand;
mod structured;
mod task_definitions;
mod tasks;

pub use input::expand_cli_input_json;

#[derive(Subcommand)]
pub enum EcsCommand {
    /// Create a cluster (idempotent for an existing one).
    CreateCluster(clusters::Create),
    /// List the clusters' ARNs.
    ListClusters,
    /// Describe clusters (deleted ones as INACTIVE; unknown ones under
    /// failures).
    DescribeClusters {
        /// Clusters by name or ARN (default: default).
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
    },
    /// Delete a cluster with no tasks, services or container instances.
    DeleteCluster {
        /// The cluster, by name or ARN.
        #[arg(long)]
        cluster: String,
    },
    /// Register a task definition: ECS's JSON as AWS documents it.
    RegisterTaskDefinition(task_definitions::Register),
    /// Describe a task definition: family:revision, family (its latest
    /// ACTIVE revision) or ARN.
    DescribeTaskDefinition {
        /// family:revision, family (the latest ACTIVE revision) or ARN.
        #[arg(long)]
        task_definition: String,
        /// TAGS to include the definition's tags.
        #[arg(long, num_args = 1..)]
        include: Vec<String>,
    },
    /// List task definition ARNs.
    ListTaskDefinitions {
        /// Only the revisions of this family.
        #[arg(long)]
        family_prefix: Option<String>,
        /// ACTIVE (default), INACTIVE or ALL.
        #[arg(long)]
        status: Option<String>,
        /// ASC (default) or DESC.
        #[arg(long)]
        sort: Option<String>,
    },
    /// List task definition families.
    ListTaskDefinitionFamilies {
        /// Only families whose names start with this.
        #[arg(long)]
        family_prefix: Option<String>,
        /// ACTIVE (default: families with an ACTIVE revision), INACTIVE
        /// or ALL.
        #[arg(long)]
        status: Option<String>,
    },
    /// Mark a revision INACTIVE: running tasks go on, new runs are refused.
    DeregisterTaskDefinition {
        /// family:revision or ARN.
        #[arg(long)]
        task_definition: String,
    },
    /// Run tasks of a task definition on this host.
    RunTask(tasks::Run),
    /// A service: keep --desired-count tasks of a definition running.
    CreateService(services::Create),
    /// A load balancer: a listener on this host whose connections nftables
    /// spreads over the tasks of the services attached to it.
    CreateLoadBalancer(load_balancers::Create),
    /// Load balancers and the tasks each sends to (all without --names).
    DescribeLoadBalancers {
        /// Load balancers by name (default: all).
        #[arg(long, num_args = 1..)]
        names: Vec<String>,
    },
    /// Delete a load balancer no service uses.
    DeleteLoadBalancer {
        /// The load balancer's name.
        #[arg(long)]
        name: String,
    },
    /// Scale a service, or roll it to another task definition.
    UpdateService(services::Update),
    /// Delete a service (scaled to 0 first, or --force); its tasks stop.
    DeleteService(services::Delete),
    /// Describe services (deleted ones as INACTIVE; unknown ones under
    /// failures).
    DescribeServices {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// Services by name or ARN.
        #[arg(long, num_args = 1.., required = true)]
        services: Vec<String>,
    },
    /// List a cluster's services' ARNs.
    ListServices {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// berth: one reconcile pass over the services (all clusters, or one).
    Reconcile {
        /// Only this cluster (default: all).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// berth: this host's agent, in the foreground (for systemd): joins
    /// the cluster as a container instance, keeps it alive with a lease,
    /// starts the tasks placed here, and reconciles in a loop.
    Agent(agent::AgentArgs),
    /// Start tasks on named container instances.
    StartTask(tasks::Start),
    /// Stop a task: its containers get SIGTERM, then SIGKILL after their
    /// stop timeout.
    StopTask(tasks::Stop),
    /// Describe tasks (unknown ones under failures).
    DescribeTasks {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// Tasks by id or ARN.
        #[arg(long, num_args = 1.., required = true)]
        tasks: Vec<String>,
    },
    /// List a cluster's tasks' ARNs (RUNNING ones by default).
    ListTasks(tasks::List),
    /// Print a task's container logs (ECS's task id or ARN).
    Logs(logs::Logs),
    /// Run a command in a task's container (ECS Exec's shape); exits with
    /// its exit code.
    #[command(name = "execute-command", visible_alias = "exec")]
    Exec(tasks::Exec),
    /// vCPU-seconds and GiB-seconds of tasks, per launch type.
    Usage {
        /// Only this cluster's tasks (default: all clusters).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Drain container instances (DRAINING: their service tasks move
    /// elsewhere, no new tasks land) or make them ACTIVE again.
    UpdateContainerInstancesState(instances::UpdateState),
    /// Register this host in a cluster (it also registers on first use).
    RegisterContainerInstance {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// name=N,value=V … custom attributes.
        #[arg(long, num_args = 1..)]
        attributes: Vec<String>,
    },
    /// Take a container instance out of its cluster.
    DeregisterContainerInstance {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// The container instance, by id or ARN.
        #[arg(long)]
        container_instance: String,
        /// Even with tasks on it (they are not stopped).
        #[arg(long)]
        force: bool,
    },
    /// List a cluster's container instances' ARNs.
    ListContainerInstances {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Describe container instances: their resources, attributes and
    /// running tasks.
    DescribeContainerInstances {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// Container instances by id or ARN.
        #[arg(long, num_args = 1.., required = true)]
        container_instances: Vec<String>,
    },
    #[command(flatten)]
    Ops(ops::OpsCommand),
    #[command(flatten)]
    Secrets(secrets::SecretsCommand),
}

/// What run-task and start-task share.
#[derive(clap::Args)]
pub struct LaunchArgs {
    /// JSON ({"containerOverrides": [...]}), file://PATH, or aws's
    /// shorthand (containerOverrides=[{name=app,command=[sh,-c,date]}]).
    #[arg(long)]
    overrides: Option<String>,
    /// Who started the tasks (list-tasks --started-by finds them).
    #[arg(long)]
    started_by: Option<String>,
    /// The tasks' group (default: family:FAMILY).
    #[arg(long)]
    group: Option<String>,
    /// key=K,value=V … (or a JSON array).
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
}

impl EcsCommand {
    /// ECS's name for the call, as aws prints it in errors.
    fn operation(&self) -> &'static str {
        match self {
            Self::CreateCluster { .. } => "CreateCluster",
            Self::ListClusters => "ListClusters",
            Self::DescribeClusters { .. } => "DescribeClusters",
            Self::DeleteCluster { .. } => "DeleteCluster",
            Self::RegisterTaskDefinition { .. } => "RegisterTaskDefinition",
            Self::DescribeTaskDefinition { .. } => "DescribeTaskDefinition",
            Self::ListTaskDefinitions { .. } => "ListTaskDefinitions",
            Self::ListTaskDefinitionFamilies { .. } => "ListTaskDefinitionFamilies",
            Self::DeregisterTaskDefinition { .. } => "DeregisterTaskDefinition",
            Self::RunTask { .. } => "RunTask",
            Self::CreateService { .. } => "CreateService",
            Self::UpdateService { .. } => "UpdateService",
            Self::CreateLoadBalancer { .. } => "CreateLoadBalancer",
            Self::DescribeLoadBalancers { .. } => "DescribeLoadBalancers",
            Self::DeleteLoadBalancer { .. } => "DeleteLoadBalancer",
            Self::DeleteService { .. } => "DeleteService",
            Self::DescribeServices { .. } => "DescribeServices",
            Self::ListServices { .. } => "ListServices",
            Self::Reconcile { .. } => "Reconcile",
            Self::Agent(_) => "Agent",
            Self::StopTask { .. } => "StopTask",
            Self::StartTask { .. } => "StartTask",
            Self::DescribeTasks { .. } => "DescribeTasks",
            Self::ListTasks { .. } => "ListTasks",
            Self::ListContainerInstances { .. } => "ListContainerInstances",
            Self::Logs { .. } => "Logs",
            Self::Exec { .. } => "ExecuteCommand",
            Self::Usage { .. } => "Usage",
            Self::UpdateContainerInstancesState { .. } => "UpdateContainerInstancesState",
            Self::DeregisterContainerInstance { .. } => "DeregisterContainerInstance",
            Self::RegisterContainerInstance { .. } => "RegisterContainerInstance",
            Self::DescribeContainerInstances { .. } => "DescribeContainerInstances",
            Self::Ops(op) => op.operation(),
            Self::Secrets(op) => op.operation(),
        }
    }
}

pub fn partition() -> Partition {
    let mut p = Partition::default();
    if let Ok(region) = std::env::var("BERTH_REGION") {
        p.region = region;
    }
    if let Ok(account) = std::env::var("BERTH_ACCOUNT") {
        p.account = account;
    }
    p
}

pub fn run(cmd: EcsCommand, roots: &Roots, printer: &Printer) -> anyhow::Result<i32> {
    let operation = cmd.operation();
    let ecs =
        Ecs::open(&roots.state, &roots.store, partition()).map_err(|e| roots.open_error(e))?;
    match call(&ecs, &roots.reconcile_config()?, cmd) {
        Ok(Outcome::Value(v)) => {
            if let Err(e) = printer.print(operation, &v) {
                eprintln!("berth: {e:#}");
                return Ok(2);
            }
        }
        Ok(Outcome::Printed) => {}
        Ok(Outcome::Exit(code)) => return Ok(code),
        Ok(Outcome::Usage(e)) => return Err(e),
        Err(e) => {
            eprintln!(
                "\nAn error occurred ({}) when calling the {operation} operation: {}",
                e.kind.as_str(),
                e.message
            );
            return Ok(1);
        }
    }
    Ok(0)
}

enum Outcome {
    Value(Value),
    /// Already written to stdout.
    Printed,
    /// Exit with this code (a command's, as `exec` passes it on).
    Exit(i32),
    /// A flag could not be read: not the service's error.
    Usage(anyhow::Error),
}

/// A verb's answer, to print.
fn value(v: EcsResult<Value>) -> Result<Outcome, EcsError> {
    v.map(Outcome::Value)
}

/// A flag could not be read: the CLI's error, not the service's.
fn usage(e: anyhow::Error) -> Result<Outcome, EcsError> {
    Ok(Outcome::Usage(e))
}

/// One arm a verb, one call each.
fn call(ecs: &Ecs, cfg: &Config, cmd: EcsCommand) -> Result<Outcome, EcsError> {
    use EcsCommand as C;
    match cmd {
        C::CreateCluster(args) => clusters::create(ecs, args),
        C::ListClusters => value(ecs.list_clusters()),
        C::DescribeClusters { clusters } => value(ecs.describe_clusters(&clusters)),
        C::DeleteCluster { cluster } => value(ecs.delete_cluster(&cluster)),
        C::RegisterTaskDefinition(args) => task_definitions::register(ecs, args),
        C::DescribeTaskDefinition {
            task_definition,
            include,
        } => task_definitions::describe(ecs, &task_definition, &include),
        C::ListTaskDefinitions {
            family_prefix,
            status,
            sort,
        } => task_definitions::list(ecs, family_prefix, status, sort),
        C::ListTaskDefinitionFamilies {
            family_prefix,
            status,
        } => value(ecs.list_task_definition_families(family_prefix.as_deref(), status.as_deref())),
        C::DeregisterTaskDefinition { task_definition } => {
            value(ecs.deregister_task_definition(&task_definition))
        }
        C::RunTask(args) => tasks::run(ecs, cfg, args),
        C::StartTask(args) => tasks::start(ecs, cfg, args),
        C::StopTask(args) => tasks::stop(ecs, cfg, args),
        C::DescribeTasks { cluster, tasks } => {
            value(ecs.describe_tasks(cluster.as_deref(), &tasks))
        }
        C::ListTasks(args) => tasks::list(ecs, args),
        C::Exec(args) => tasks::exec(ecs, cfg, args),
        C::Logs(args) => logs::print(ecs, cfg, args),
        C::Usage { cluster } => value(ecs.usage(cluster.as_deref())),
        C::CreateService(args) => services::create(ecs, cfg, args),
        C::UpdateService(args) => services::update(ecs, cfg, args),
        C::DeleteService(args) => services::delete(ecs, cfg, args),
        C::DescribeServices { cluster, services } => {
            value(ecs.describe_services(cluster.as_deref(), &services))
        }
        C::ListServices { cluster } => value(ecs.list_services(cluster.as_deref())),
        C::Reconcile { cluster } => agent::reconcile(ecs, cfg, cluster.as_deref()),
        C::Agent(args) => agent::run(ecs, cfg, args),
        C::CreateLoadBalancer(args) => load_balancers::create(ecs, args),
        C::DescribeLoadBalancers { names } => value(ecs.describe_load_balancers(&names)),
        C::DeleteLoadBalancer { name } => value(ecs.delete_load_balancer(&name)),
        C::UpdateContainerInstancesState(args) => instances::update_state(ecs, cfg, args),
        C::RegisterContainerInstance {
            cluster,
            attributes,
        } => instances::register(ecs, cluster.as_deref(), &attributes),
        C::DeregisterContainerInstance {
            cluster,
            container_instance,
            force,
        } => {
            value(ecs.deregister_container_instance(cluster.as_deref(), &container_instance, force))
        }
        C::ListContainerInstances { cluster } => {
            value(ecs.list_container_instances(cluster.as_deref()))
        }
        C::DescribeContainerInstances {
            cluster,
            container_instances,
        } => value(ecs.describe_container_instances(cluster.as_deref(), &container_instances)),
        C::Ops(cmd) => ops::call(ecs, cmd),
        C::Secrets(cmd) => secrets::call(ecs, &cfg.state_root, cmd),
    }
}

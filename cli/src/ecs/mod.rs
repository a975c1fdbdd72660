//! The `aws ecs`-shaped verbs: same names, same flags, same JSON.

use anyhow::Context;
use berth_orchestrator::model::Task;
use berth_orchestrator::model::{name_from_arn, Partition, TaskDefinition};
use berth_orchestrator::services::CreateService;
use berth_orchestrator::supervisor::{self, SupervisorArgs};
use berth_orchestrator::{Ecs, EcsError};
use clap::Subcommand;
use serde_json::Value;

use crate::output::{self, Format};
use crate::Roots;

mod input;

pub use input::expand_cli_input_json;
use input::{
    json_arg, merge_run_input, parse_deployment_configuration, parse_shorthand, parse_since,
    parse_tags, run_request, typed,
};

#[derive(Subcommand)]
pub enum EcsCommand {
    /// Create a cluster (idempotent for an existing one).
    CreateCluster {
        #[arg(long)]
        cluster_name: String,
        /// key=K,value=V … (or a JSON array).
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
        /// berth: the bridge the cluster's tasks join (default berth0, or
        /// BERTH_BRIDGE).
        #[arg(long)]
        bridge: Option<String>,
        /// berth: the bridge's subnet, A.B.C.D/N (default: the bridge's
        /// own, or a free /24 of 10.89.0.0/16).
        #[arg(long, requires = "bridge")]
        subnet: Option<String>,
    },
    ListClusters,
    DescribeClusters {
        #[arg(long, num_args = 1..)]
        clusters: Vec<String>,
    },
    /// Delete a cluster with no tasks, services or container instances.
    DeleteCluster {
        #[arg(long)]
        cluster: String,
    },
    /// Register a task definition: ECS's JSON as AWS documents it.
    RegisterTaskDefinition {
        /// The whole request: JSON, or file://PATH.
        #[arg(long)]
        cli_input_json: Option<String>,
        #[arg(long)]
        family: Option<String>,
        /// JSON array, or file://PATH.
        #[arg(long)]
        container_definitions: Option<String>,
        #[arg(long)]
        network_mode: Option<String>,
        #[arg(long, num_args = 1..)]
        requires_compatibilities: Vec<String>,
        #[arg(long)]
        cpu: Option<String>,
        #[arg(long)]
        memory: Option<String>,
        /// JSON array, or file://PATH.
        #[arg(long)]
        volumes: Option<String>,
        #[arg(long)]
        task_role_arn: Option<String>,
        #[arg(long)]
        execution_role_arn: Option<String>,
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
    },
    DescribeTaskDefinition {
        #[arg(long)]
        task_definition: String,
        /// TAGS to include the definition's tags.
        #[arg(long, num_args = 1..)]
        include: Vec<String>,
    },
    ListTaskDefinitions {
        #[arg(long)]
        family_prefix: Option<String>,
        /// ACTIVE (default), INACTIVE or ALL.
        #[arg(long)]
        status: Option<String>,
        /// ASC (default) or DESC.
        #[arg(long)]
        sort: Option<String>,
    },
    ListTaskDefinitionFamilies {
        #[arg(long)]
        family_prefix: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Mark a revision INACTIVE: running tasks go on, new runs are refused.
    DeregisterTaskDefinition {
        #[arg(long)]
        task_definition: String,
    },
    /// Run tasks of a task definition on this host.
    RunTask {
        /// The whole request as aws takes it: JSON, or file://PATH; flags
        /// given as well win.
        #[arg(long)]
        cli_input_json: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, required_unless_present = "cli_input_json")]
        task_definition: Option<String>,
        #[arg(long)]
        count: Option<u32>,
        /// EC2 (default) or FARGATE.
        #[arg(long)]
        launch_type: Option<String>,
        #[command(flatten)]
        launch: LaunchArgs,
    },
    /// A service: keep --desired-count tasks of a definition running.
    CreateService {
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
        launch_type: Option<String>,
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
        scheduling_strategy: Option<String>,
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
    },
    /// A load balancer: a listener on this host whose connections nftables
    /// spreads over the tasks of the services attached to it.
    CreateLoadBalancer {
        #[arg(long)]
        name: String,
        /// [ADDR:]PORT; without ADDR, every address of the host.
        #[arg(long)]
        listen: String,
        /// tcp (default) or udp.
        #[arg(long)]
        protocol: Option<String>,
        /// Seconds a task taken out of service keeps serving its
        /// connections before it is stopped (default 300, as ELB).
        #[arg(long)]
        deregistration_delay: Option<u32>,
    },
    /// Load balancers and the tasks each sends to (all without --names).
    DescribeLoadBalancers {
        #[arg(long, num_args = 1..)]
        names: Vec<String>,
    },
    /// Delete a load balancer no service uses.
    DeleteLoadBalancer {
        #[arg(long)]
        name: String,
    },
    /// Scale a service, or roll it to another task definition.
    UpdateService {
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
    },
    /// Delete a service (scaled to 0 first, or --force); its tasks stop.
    DeleteService {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        service: String,
        #[arg(long)]
        force: bool,
    },
    DescribeServices {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, num_args = 1.., required = true)]
        services: Vec<String>,
    },
    ListServices {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// berth: one reconcile pass over the services (all clusters, or one).
    Reconcile {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// berth: reconcile in a loop, in the foreground (for systemd).
    Agent {
        /// Seconds between passes.
        #[arg(long, default_value_t = 5)]
        interval: u64,
    },
    /// Start tasks on named container instances.
    StartTask {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        task_definition: String,
        #[arg(long, num_args = 1.., required = true)]
        container_instances: Vec<String>,
        #[command(flatten)]
        launch: LaunchArgs,
    },
    StopTask {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
    DescribeTasks {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, num_args = 1.., required = true)]
        tasks: Vec<String>,
    },
    ListTasks {
        #[arg(long)]
        cluster: Option<String>,
        /// RUNNING (default) or STOPPED.
        #[arg(long)]
        desired_status: Option<String>,
        #[arg(long)]
        family: Option<String>,
        #[arg(long)]
        started_by: Option<String>,
        #[arg(long)]
        container_instance: Option<String>,
        /// Tasks of this service.
        #[arg(long)]
        service_name: Option<String>,
    },
    /// Print a task's container logs (ECS's task id or ARN).
    Logs {
        task: String,
        #[arg(long)]
        cluster: Option<String>,
        /// One container (default: all, each line prefixed with its name).
        #[arg(long)]
        container: Option<String>,
        /// Keep printing new lines until the task stops.
        #[arg(long, short)]
        follow: bool,
        /// Only lines newer than this: a duration (30s, 5m, 2h) or an
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Run a command in a task's container (ECS Exec's shape); exits with
    /// its exit code.
    #[command(name = "execute-command", visible_alias = "exec")]
    Exec {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        task: String,
        #[arg(long)]
        container: String,
        /// Run by /bin/sh -c in the container.
        #[arg(long)]
        command: String,
        /// Accepted for ECS's shape; output streams as it comes.
        #[arg(long)]
        interactive: bool,
    },
    /// vCPU-seconds and GiB-seconds of tasks, per launch type.
    Usage {
        #[arg(long)]
        cluster: Option<String>,
    },
    UpdateContainerInstancesState {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, num_args = 1.., required = true)]
        container_instances: Vec<String>,
        /// ACTIVE or DRAINING.
        #[arg(long)]
        status: String,
    },
    /// Register this host in a cluster (it also registers on first use).
    RegisterContainerInstance {
        #[arg(long)]
        cluster: Option<String>,
        /// name=N,value=V … custom attributes.
        #[arg(long, num_args = 1..)]
        attributes: Vec<String>,
    },
    DeregisterContainerInstance {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        container_instance: String,
        #[arg(long)]
        force: bool,
    },
    ListContainerInstances {
        #[arg(long)]
        cluster: Option<String>,
    },
    DescribeContainerInstances {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, num_args = 1.., required = true)]
        container_instances: Vec<String>,
    },
}

/// What run-task and start-task share.
#[derive(clap::Args)]
pub struct LaunchArgs {
    /// JSON ({"containerOverrides": [...]}) or file://PATH.
    #[arg(long)]
    overrides: Option<String>,
    #[arg(long)]
    started_by: Option<String>,
    #[arg(long)]
    group: Option<String>,
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
            Self::Agent { .. } => "Agent",
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
        }
    }
}

/// A detached supervisor for each new task; one that cannot start leaves
/// its task STOPPED with the reason.
fn start_supervisors(ecs: &Ecs, roots: &Roots, tasks: &[Task]) {
    supervisor::launch(ecs, tasks, |t| supervisor_args(roots, t));
}

/// The supervisor of `task` under these roots.
pub fn supervisor_args(roots: &Roots, task: &Task) -> SupervisorArgs {
    SupervisorArgs {
        state_root: roots.state.clone(),
        runtime_root: roots.runtime.clone(),
        cluster: task
            .cluster_arn
            .rsplit('/')
            .next()
            .unwrap_or("default")
            .to_string(),
        task_id: task.id().to_string(),
        cgroup_parent: std::env::var("BERTH_CGROUP_PARENT").unwrap_or_else(|_| "berth".into()),
        adopt: false,
    }
}

/// One reconcile pass of `cluster`, starting what it placed; the ids of
/// the tasks started.
/// Tasks of `cluster` whose supervisor died: adopted when they run whole,
/// else finished (then their services replace them). Returns the ids
/// (adopted, finished).
fn recover_orphans(
    ecs: &Ecs,
    roots: &Roots,
    cluster: &str,
) -> Result<(Vec<String>, Vec<String>), EcsError> {
    let (mut adopted, mut reaped) = (Vec::new(), Vec::new());
    for task in ecs.all_tasks(cluster)? {
        if !supervisor::is_orphaned(&task) {
            continue;
        }
        match supervisor::recover_orphan(ecs, &supervisor_args(roots, &task)) {
            Ok(supervisor::Recovered::Adopted) => adopted.push(task.id().to_string()),
            Ok(supervisor::Recovered::Reaped) => reaped.push(task.id().to_string()),
            Err(e) => tracing::warn!("task {}: {e}", task.id()),
        }
    }
    Ok((adopted, reaped))
}

fn reconcile_cluster(ecs: &Ecs, roots: &Roots, cluster: &str) -> Result<Vec<String>, EcsError> {
    let patience = std::time::Duration::from_secs(30);
    let pass =
        supervisor::reconcile_and_launch(ecs, cluster, patience, |t| supervisor_args(roots, t))?;
    Ok(pass
        .map(|p| p.placed.iter().map(|t| t.id().to_string()).collect())
        .unwrap_or_default())
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

pub fn run(cmd: EcsCommand, roots: &Roots, format: Format) -> anyhow::Result<i32> {
    let operation = cmd.operation();
    let ecs = Ecs::open(&roots.state, partition())
        .map_err(|e| anyhow::anyhow!("open the store in {}: {e}", roots.state.display()))?;
    match call(&ecs, roots, cmd) {
        Ok(Outcome::Value(v)) => print(&v, format)?,
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

fn call(ecs: &Ecs, roots: &Roots, cmd: EcsCommand) -> Result<Outcome, EcsError> {
    let usage = |e: anyhow::Error| Ok(Outcome::Usage(e));
    let v = match cmd {
        EcsCommand::CreateCluster {
            cluster_name,
            tags,
            bridge,
            subnet,
        } => {
            let tags = match parse_tags(&tags) {
                Ok(t) => t,
                Err(e) => return usage(e),
            };
            let network = match &bridge {
                Some(b) => Some(ecs.network_for(b, subnet.as_deref())?),
                None => None,
            };
            ecs.create_cluster(&cluster_name, tags, network)?
        }
        EcsCommand::ListClusters => ecs.list_clusters()?,
        EcsCommand::DescribeClusters { clusters } => ecs.describe_clusters(&clusters)?,
        EcsCommand::DeleteCluster { cluster } => ecs.delete_cluster(&cluster)?,
        EcsCommand::RegisterTaskDefinition {
            cli_input_json,
            family,
            container_definitions,
            network_mode,
            requires_compatibilities,
            cpu,
            memory,
            volumes,
            task_role_arn,
            execution_role_arn,
            tags,
        } => {
            let request = (|| -> anyhow::Result<TaskDefinition> {
                let mut req = match &cli_input_json {
                    Some(j) => json_arg("cli-input-json", j)?,
                    None => serde_json::json!({}),
                };
                let set = |req: &mut Value, k: &str, v: Value| req[k] = v;
                if let Some(f) = family {
                    set(&mut req, "family", f.into());
                }
                if let Some(c) = &container_definitions {
                    set(
                        &mut req,
                        "containerDefinitions",
                        json_arg("container-definitions", c)?,
                    );
                }
                if let Some(v) = &volumes {
                    set(&mut req, "volumes", json_arg("volumes", v)?);
                }
                for (k, v) in [
                    ("networkMode", network_mode),
                    ("cpu", cpu),
                    ("memory", memory),
                    ("taskRoleArn", task_role_arn),
                    ("executionRoleArn", execution_role_arn),
                ] {
                    if let Some(v) = v {
                        set(&mut req, k, v.into());
                    }
                }
                if !requires_compatibilities.is_empty() {
                    set(
                        &mut req,
                        "requiresCompatibilities",
                        requires_compatibilities.into(),
                    );
                }
                if !tags.is_empty() {
                    set(&mut req, "tags", serde_json::to_value(parse_tags(&tags)?)?);
                }
                typed(req).context("the task definition does not have ECS's shape")
            })();
            let request = match request {
                Ok(r) => r,
                Err(e) => return Err(EcsError::client(format!("{e:#}"))),
            };
            let (out, ignored) = ecs.register_task_definition(request)?;
            if !ignored.is_empty() {
                eprintln!(
                    "berth: note: accepted but not acted on by berth: {}",
                    ignored.join(", ")
                );
            }
            out
        }
        EcsCommand::DescribeTaskDefinition {
            task_definition,
            include,
        } => ecs.describe_task_definition(&task_definition, include.iter().any(|i| i == "TAGS"))?,
        EcsCommand::ListTaskDefinitions {
            family_prefix,
            status,
            sort,
        } => ecs.list_task_definitions(
            family_prefix.as_deref(),
            status.as_deref(),
            sort.as_deref() == Some("DESC"),
        )?,
        EcsCommand::ListTaskDefinitionFamilies {
            family_prefix,
            status,
        } => ecs.list_task_definition_families(family_prefix.as_deref(), status.as_deref())?,
        EcsCommand::DeregisterTaskDefinition { task_definition } => {
            ecs.deregister_task_definition(&task_definition)?
        }
        EcsCommand::RunTask {
            cli_input_json,
            cluster,
            task_definition,
            count,
            launch_type,
            launch,
        } => {
            let request = (|| {
                let mut req = run_request(
                    cluster,
                    task_definition.unwrap_or_default(),
                    count.unwrap_or(1),
                    launch_type,
                    launch,
                )?;
                if let Some(input) = &cli_input_json {
                    merge_run_input(
                        &mut req,
                        &json_arg("cli-input-json", input)?,
                        count.is_some(),
                    )?;
                }
                Ok(req)
            })();
            let request = match request {
                Ok(r) => r,
                Err(e) => return usage(e),
            };
            let (out, tasks) = ecs.run_task(&request)?;
            start_supervisors(ecs, roots, &tasks);
            out
        }
        EcsCommand::StartTask {
            cluster,
            task_definition,
            container_instances,
            launch,
        } => {
            let request = match run_request(cluster, task_definition, 1, None, launch) {
                Ok(r) => r,
                Err(e) => return usage(e),
            };
            let (out, tasks) = ecs.start_task(&request, &container_instances)?;
            start_supervisors(ecs, roots, &tasks);
            out
        }
        EcsCommand::StopTask {
            cluster,
            task,
            reason,
        } => {
            let t = ecs.stop_task(cluster.as_deref(), &task, reason.as_deref())?;
            // No supervisor to act on it (killed, or its run-task died
            // before starting one): finish the task here.
            if supervisor::is_orphaned(&t) {
                let args = supervisor_args(roots, &t);
                if let Err(e) = supervisor::reap_orphan(ecs, &args) {
                    eprintln!("berth: clean up task {}: {e}", t.id());
                }
            }
            serde_json::json!({ "task": berth_orchestrator::tasks::public(&t) })
        }
        EcsCommand::DescribeTasks { cluster, tasks } => {
            ecs.describe_tasks(cluster.as_deref(), &tasks)?
        }
        EcsCommand::ListTasks {
            cluster,
            desired_status,
            family,
            started_by,
            container_instance,
            service_name,
        } => ecs.list_tasks(
            cluster.as_deref(),
            &berth_orchestrator::tasks::TaskFilter {
                desired_status: desired_status.as_deref(),
                family: family.as_deref(),
                started_by: started_by.as_deref(),
                container_instance: container_instance.as_deref(),
                service_name: service_name.as_deref(),
            },
        )?,
        EcsCommand::ListContainerInstances { cluster } => {
            ecs.list_container_instances(cluster.as_deref())?
        }
        EcsCommand::Exec {
            cluster,
            task,
            container,
            command,
            interactive: _,
        } => {
            let c = ecs.cluster(cluster.as_deref())?;
            let t = ecs.task(&c.cluster_name, &task)?;
            if !t.containers.iter().any(|x| x.name == container) {
                return Err(EcsError::invalid(format!(
                    "container: task {task} has no container {container:?}"
                )));
            }
            if t.last_status != "RUNNING" {
                return Err(EcsError::invalid(format!(
                    "task {task} is {}, not RUNNING",
                    t.last_status
                )));
            }
            let runtime =
                berth_runtime::Runtime::new(berth_runtime::RuntimeRoot::new(&roots.runtime));
            let spec = berth_runtime::ExecSpec {
                args: vec!["/bin/sh".into(), "-c".into(), command],
                ..Default::default()
            };
            let code = runtime
                .exec(&format!("{}-{container}", t.id()), &spec)
                .map_err(|e| EcsError::invalid(e.to_string()))?;
            return Ok(Outcome::Exit(code));
        }
        EcsCommand::Usage { cluster } => ecs.usage(cluster.as_deref())?,
        EcsCommand::CreateService {
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
        } => {
            let parsed = (|| -> anyhow::Result<_> {
                let list = |flag: &str, v: &Option<String>| -> anyhow::Result<Vec<Value>> {
                    match v {
                        Some(v) => typed(json_arg(flag, v)?)
                            .with_context(|| format!("--{flag}: not a JSON array")),
                        None => Ok(Vec::new()),
                    }
                };
                Ok(CreateService {
                    cluster: cluster.clone(),
                    service_name: service_name.clone(),
                    task_definition: task_definition.clone(),
                    desired_count,
                    launch_type: launch_type.clone(),
                    deployment_configuration: deployment_configuration
                        .as_deref()
                        .map(parse_deployment_configuration)
                        .transpose()?,
                    placement_strategy: list("placement-strategy", &placement_strategy)?,
                    placement_constraints: list("placement-constraints", &placement_constraints)?,
                    load_balancers: match &load_balancers {
                        Some(v) => typed(json_arg("load-balancers", v)?)
                            .context("--load-balancers: not a JSON array of {loadBalancerName, containerName, containerPort}")?,
                        None => Vec::new(),
                    },
                    health_check_grace_period_seconds,
                    scheduling_strategy: scheduling_strategy.clone(),
                    tags: parse_tags(&tags)?,
                })
            })();
            let req = match parsed {
                Ok(r) => r,
                Err(e) => return usage(e),
            };
            let out = ecs.create_service(&req)?;
            reconcile_cluster(ecs, roots, req.cluster.as_deref().unwrap_or("default"))?;
            out
        }
        EcsCommand::UpdateService {
            cluster,
            service,
            desired_count,
            task_definition,
            force_new_deployment,
            deployment_configuration,
        } => {
            let cfg = match deployment_configuration
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
                cfg,
            )?;
            reconcile_cluster(ecs, roots, cluster.as_deref().unwrap_or("default"))?;
            out
        }
        EcsCommand::DeleteService {
            cluster,
            service,
            force,
        } => {
            let out = ecs.delete_service(cluster.as_deref(), &service, force)?;
            reconcile_cluster(ecs, roots, cluster.as_deref().unwrap_or("default"))?;
            out
        }
        EcsCommand::CreateLoadBalancer {
            name,
            listen,
            protocol,
            deregistration_delay,
        } => ecs.create_load_balancer(&berth_orchestrator::load_balancers::CreateLoadBalancer {
            name,
            listen,
            protocol,
            deregistration_delay_seconds: deregistration_delay,
        })?,
        EcsCommand::DescribeLoadBalancers { names } => ecs.describe_load_balancers(&names)?,
        EcsCommand::DeleteLoadBalancer { name } => ecs.delete_load_balancer(&name)?,
        EcsCommand::DescribeServices { cluster, services } => {
            ecs.describe_services(cluster.as_deref(), &services)?
        }
        EcsCommand::ListServices { cluster } => ecs.list_services(cluster.as_deref())?,
        EcsCommand::Reconcile { cluster } => {
            let clusters = match cluster {
                Some(c) => vec![name_from_arn(&c).to_string()],
                None => ecs.clusters_with_services()?,
            };
            let (mut started, mut adopted, mut reaped) = (Vec::new(), Vec::new(), Vec::new());
            for c in &clusters {
                let (a, r) = recover_orphans(ecs, roots, c)?;
                adopted.extend(a);
                reaped.extend(r);
                started.extend(reconcile_cluster(ecs, roots, c)?);
            }
            serde_json::json!({
                "clusters": clusters,
                "tasksAdopted": adopted,
                "tasksFinished": reaped,
                "tasksStarted": started,
            })
        }
        EcsCommand::Agent { interval } => {
            // Each pass also finishes tasks whose supervisor died, so that
            // their services replace them.
            loop {
                for c in ecs.clusters_with_services()? {
                    if let Err(e) = recover_orphans(ecs, roots, &c) {
                        tracing::warn!("recover the tasks of {c}: {e}");
                    }
                    if let Err(e) = reconcile_cluster(ecs, roots, &c) {
                        tracing::warn!("reconcile {c}: {e}");
                    }
                }
                // Listeners come back after a reboot, used or not.
                if let Err(e) = ecs.sync_load_balancers(&ecs.load_balancer_names()?) {
                    tracing::warn!("{e}");
                }
                std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            }
        }
        EcsCommand::UpdateContainerInstancesState {
            cluster,
            container_instances,
            status,
        } => {
            let out = ecs.update_container_instances_state(
                cluster.as_deref(),
                &container_instances,
                &status,
            )?;
            // Services follow at once: DAEMON tasks leave a DRAINING
            // instance and come back to an ACTIVE one.
            reconcile_cluster(ecs, roots, cluster.as_deref().unwrap_or("default"))?;
            out
        }
        EcsCommand::RegisterContainerInstance {
            cluster,
            attributes,
        } => {
            let attrs = match attributes
                .iter()
                .map(|a| parse_shorthand(a, "attributes"))
                .collect::<anyhow::Result<Vec<_>>>()
            {
                Ok(pairs) => pairs
                    .into_iter()
                    .map(|(name, value)| berth_orchestrator::model::Attribute { name, value })
                    .collect::<Vec<_>>(),
                Err(e) => return usage(e),
            };
            ecs.register_container_instance(cluster.as_deref(), &attrs)?
        }
        EcsCommand::DeregisterContainerInstance {
            cluster,
            container_instance,
            force,
        } => ecs.deregister_container_instance(cluster.as_deref(), &container_instance, force)?,
        EcsCommand::Logs {
            task,
            cluster,
            container,
            follow,
            since,
        } => {
            let c = ecs.cluster(cluster.as_deref())?;
            let t = ecs.task(&c.cluster_name, &task)?;
            let names: Vec<String> = match &container {
                Some(n) if t.containers.iter().any(|c| &c.name == n) => vec![n.clone()],
                Some(n) => {
                    return Err(EcsError::invalid(format!(
                        "container: task {task} has no container {n:?}"
                    )))
                }
                None => t.containers.iter().map(|c| c.name.clone()).collect(),
            };
            let since = match since.as_deref().map(parse_since).transpose() {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let mut printed = vec![0usize; names.len()];
            loop {
                for (i, name) in names.iter().enumerate() {
                    let path = SupervisorArgs::container_log(&roots.state, t.id(), name)
                        .map_err(|e| EcsError::invalid(format!("container {name:?}: {e}")))?;
                    let entries = berth_runtime::logs::read_entries(
                        &path,
                        berth_runtime::logs::DEFAULT_MAX_FILES,
                    )
                    .unwrap_or_default();
                    for e in entries.iter().skip(printed[i]) {
                        if since.is_some_and(|s| e.time < s) {
                            continue;
                        }
                        if names.len() > 1 {
                            print!("{name} | {}", e.log);
                        } else {
                            print!("{}", e.log);
                        }
                    }
                    printed[i] = printed[i].max(entries.len());
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
                if !follow || ecs.task(&c.cluster_name, &task)?.is_stopped() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            return Ok(Outcome::Printed);
        }
        EcsCommand::DescribeContainerInstances {
            cluster,
            container_instances,
        } => ecs.describe_container_instances(cluster.as_deref(), &container_instances)?,
    };
    Ok(Outcome::Value(v))
}

/// JSON as aws prints it, or a table: a list of strings becomes a column,
/// a list of objects becomes rows of their plain fields.
fn print(v: &Value, format: Format) -> anyhow::Result<()> {
    if let Format::Json = format {
        return output::json(v);
    }
    let Some((key, list)) = v
        .as_object()
        .and_then(|o| o.iter().find(|(_, val)| val.is_array()))
    else {
        return output::json(v);
    };
    let items = list.as_array().cloned().unwrap_or_default();
    if items.iter().all(Value::is_string) {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|s| vec![s.as_str().unwrap_or_default().to_string()])
            .collect();
        output::table(&[key.as_str()], &rows);
        return Ok(());
    }
    let columns: Vec<String> = items
        .first()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.is_string() || v.is_number())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match &item[c] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    output::table(&headers, &rows);
    Ok(())
}

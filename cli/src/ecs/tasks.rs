//! Tasks: run, start, stop, list, and exec into a container. Starting
//! and finishing supervisors is the orchestrator's (`reconcile`).

use berth_orchestrator::ecs::TaskFilter;
use berth_orchestrator::model::{DesiredStatus, LaunchType, TaskStatus};
use berth_orchestrator::reconcile::{self, Config};
use berth_orchestrator::{Ecs, EcsError};

use super::input::{json_arg, merge_run_input, run_request};
use super::{structured, usage, value, LaunchArgs, Outcome};

// run-task's flags; --cli-input-json fills what they leave out.
#[derive(clap::Args)]
pub struct Run {
    /// The whole request as aws takes it: JSON, or file://PATH; flags
    /// given as well win.
    #[arg(long)]
    cli_input_json: Option<String>,
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// family:revision, family (its latest ACTIVE revision) or ARN.
    #[arg(long, required_unless_present = "cli_input_json")]
    task_definition: Option<String>,
    /// How many tasks to run (default 1).
    #[arg(long)]
    count: Option<u32>,
    /// EC2 (default) or FARGATE.
    #[arg(long)]
    launch_type: Option<LaunchType>,
    /// How tasks spread over hosts: type=spread,field=F or
    /// type=binpack,field=memory … (or a JSON array, or file://PATH).
    #[arg(long, num_args = 1..)]
    placement_strategy: Vec<String>,
    /// Where tasks may run: type=memberOf,expression=E or
    /// type=distinctInstance … (or a JSON array, or file://PATH).
    #[arg(long, num_args = 1..)]
    placement_constraints: Vec<String>,
    /// capacityProvider=FARGATE|FARGATE_SPOT,weight=W,base=B … (or a
    /// JSON array); not with --launch-type.
    #[arg(long, num_args = 1..)]
    capacity_provider_strategy: Vec<String>,
    /// A retry with the same token and parameters answers the first
    /// call's tasks (24 hours, per cluster).
    #[arg(long)]
    client_token: Option<String>,
    #[command(flatten)]
    launch: LaunchArgs,
}

pub(super) fn run(ecs: &Ecs, cfg: &Config, args: Run) -> Result<Outcome, EcsError> {
    let request = match request(args) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let (out, tasks) = ecs.run_task(&request)?;
    reconcile::start(ecs, cfg, &tasks);
    Ok(Outcome::Value(out))
}

/// The flags' request, with what they left out from --cli-input-json.
fn request(args: Run) -> anyhow::Result<berth_orchestrator::ecs::RunTask> {
    let Run {
        cli_input_json,
        cluster,
        task_definition,
        count,
        launch_type,
        placement_strategy,
        placement_constraints,
        capacity_provider_strategy,
        client_token,
        launch,
    } = args;
    let mut req = run_request(
        cluster,
        task_definition.unwrap_or_default(),
        count.unwrap_or(1),
        launch_type,
        launch,
    )?;
    req.placement_strategy =
        structured::list_values::<serde_json::Value>("placement-strategy", &placement_strategy)?;
    req.placement_constraints = structured::list_values::<serde_json::Value>(
        "placement-constraints",
        &placement_constraints,
    )?;
    if !capacity_provider_strategy.is_empty() {
        req.capacity_provider_strategy =
            super::ops_input::strategy("capacity-provider-strategy", &capacity_provider_strategy)?;
    }
    req.client_token = client_token;
    if let Some(input) = &cli_input_json {
        merge_run_input(
            &mut req,
            &json_arg("cli-input-json", input)?,
            count.is_some(),
        )?;
    }
    Ok(req)
}

// start-task's flags.
#[derive(clap::Args)]
pub struct Start {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// family:revision, family (its latest ACTIVE revision) or ARN.
    #[arg(long)]
    task_definition: String,
    /// Container instances by id or ARN: a task on each.
    #[arg(long, num_args = 1.., required = true)]
    container_instances: Vec<String>,
    #[command(flatten)]
    launch: LaunchArgs,
}

pub(super) fn start(ecs: &Ecs, cfg: &Config, args: Start) -> Result<Outcome, EcsError> {
    let Start {
        cluster,
        task_definition,
        container_instances,
        launch,
    } = args;
    let request = match run_request(cluster, task_definition, 1, None, launch) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let (out, tasks) = ecs.start_task(&request, &container_instances)?;
    reconcile::start(ecs, cfg, &tasks);
    Ok(Outcome::Value(out))
}

// stop-task's flags.
#[derive(clap::Args)]
pub struct Stop {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// The task, by id or ARN.
    #[arg(long)]
    task: String,
    /// Why it is stopped (the task's stoppedReason).
    #[arg(long)]
    reason: Option<String>,
}

pub(super) fn stop(ecs: &Ecs, cfg: &Config, args: Stop) -> Result<Outcome, EcsError> {
    let t = ecs.stop_task(args.cluster.as_deref(), &args.task, args.reason.as_deref())?;
    if let Err(e) = reconcile::finish_if_orphaned(ecs, cfg, &t) {
        eprintln!("berth: clean up task {}: {e}", t.id());
    }
    Ok(Outcome::Value(
        serde_json::json!({ "task": berth_orchestrator::ecs::public(&t) }),
    ))
}

// list-tasks' flags: the cluster and the filters.
#[derive(clap::Args)]
pub struct List {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// RUNNING (default) or STOPPED.
    #[arg(long)]
    desired_status: Option<DesiredStatus>,
    /// Only tasks of this family.
    #[arg(long)]
    family: Option<String>,
    /// Only tasks started by this (run-task --started-by).
    #[arg(long)]
    started_by: Option<String>,
    /// Only tasks on this container instance (id or ARN).
    #[arg(long)]
    container_instance: Option<String>,
    /// Tasks of this service.
    #[arg(long)]
    service_name: Option<String>,
}

pub(super) fn list(ecs: &Ecs, args: List) -> Result<Outcome, EcsError> {
    let filter = TaskFilter {
        desired_status: args.desired_status.clone(),
        family: args.family.as_deref(),
        started_by: args.started_by.as_deref(),
        container_instance: args.container_instance.as_deref(),
        service_name: args.service_name.as_deref(),
    };
    value(ecs.list_tasks(args.cluster.as_deref(), &filter))
}

/// Run `command` by /bin/sh -c in a RUNNING task's container; its exit
/// code becomes berth's.
// execute-command's flags.
#[derive(clap::Args)]
pub struct Exec {
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// The task, by id or ARN.
    #[arg(long)]
    task: String,
    /// The container's name in the task.
    #[arg(long)]
    container: String,
    /// Run by /bin/sh -c in the container.
    #[arg(long)]
    command: String,
    /// Accepted for ECS's shape; output streams as it comes.
    #[arg(long)]
    interactive: bool,
}

pub(super) fn exec(ecs: &Ecs, cfg: &Config, args: Exec) -> Result<Outcome, EcsError> {
    let Exec {
        cluster,
        task,
        container,
        command,
        interactive: _,
    } = args;
    let c = ecs.cluster(cluster.as_deref())?;
    let t = ecs.task(&c.cluster_name, &task)?;
    ecs.ensure_local(&c.cluster_name, &t)?;
    if !t.containers.iter().any(|x| x.name == container) {
        return Err(EcsError::invalid(format!(
            "container: task {task} has no container {container:?}"
        )));
    }
    if t.last_status != TaskStatus::Running {
        return Err(EcsError::invalid(format!(
            "task {task} is {}, not RUNNING",
            t.last_status
        )));
    }
    let runtime = berth_runtime::Runtime::new(berth_runtime::RuntimeRoot::new(&cfg.runtime_root));
    let spec = berth_runtime::ExecSpec {
        args: vec!["/bin/sh".into(), "-c".into(), command],
        ..Default::default()
    };
    let code = runtime
        .exec(&format!("{}-{container}", t.id()), &spec)
        .map_err(|e| EcsError::invalid(e.to_string()))?;
    Ok(Outcome::Exit(code))
}

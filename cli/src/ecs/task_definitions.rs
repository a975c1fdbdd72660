//! Task definitions: register (from --cli-input-json and flags),
//! describe, list.

use anyhow::Context;
use berth_orchestrator::model::{ContainerDefinition, TaskDefinition, Volume};
use berth_orchestrator::{Ecs, EcsError};
use serde_json::Value;

use super::input::{json_arg, parse_tags, typed};
use super::{structured, value, Outcome};

// register-task-definition's flags: its JSON and the fields flags may set.
#[derive(clap::Args)]
pub struct Register {
    /// The whole request: JSON, or file://PATH.
    #[arg(long)]
    cli_input_json: Option<String>,
    /// The family: the revisions of one name.
    #[arg(long)]
    family: Option<String>,
    /// The containers: a JSON array (or file://PATH), or aws's
    /// shorthand, one container a value (name=web,image=busybox,memory=64).
    #[arg(long, num_args = 1..)]
    container_definitions: Vec<String>,
    /// bridge (default), host, awsvpc or none.
    #[arg(long)]
    network_mode: Option<String>,
    /// EC2 and/or FARGATE: the launch types the definition must fit.
    #[arg(long, num_args = 1..)]
    requires_compatibilities: Vec<String>,
    /// The task's CPU units (1024 a vCPU), e.g. 256, or 1 vCPU.
    #[arg(long)]
    cpu: Option<String>,
    /// The task's memory: MiB (512), or 1 GB.
    #[arg(long)]
    memory: Option<String>,
    /// The task's volumes: a JSON array (or file://PATH), or
    /// name=N,host={sourcePath=P} … one a value.
    #[arg(long, num_args = 1..)]
    volumes: Vec<String>,
    /// The task's IAM role (recorded and shown; berth has no IAM).
    #[arg(long)]
    task_role_arn: Option<String>,
    /// The execution IAM role (recorded and shown; berth has no IAM).
    #[arg(long)]
    execution_role_arn: Option<String>,
    /// key=K,value=V … (or a JSON array).
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
}

pub(super) fn register(ecs: &Ecs, args: Register) -> Result<Outcome, EcsError> {
    // ECS answers a request of the wrong shape with a ClientException.
    let request = request(args).map_err(|e| EcsError::client(format!("{e:#}")))?;
    let (out, ignored) = ecs.register_task_definition(request)?;
    if !ignored.is_empty() {
        eprintln!(
            "berth: note: accepted but not acted on by berth: {}",
            ignored.join(", ")
        );
    }
    Ok(Outcome::Value(out))
}

/// The request: --cli-input-json's, with the flags given set over it.
fn request(args: Register) -> anyhow::Result<TaskDefinition> {
    let Register {
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
    } = args;
    let mut req = match &cli_input_json {
        Some(j) => json_arg("cli-input-json", j)?,
        None => serde_json::json!({}),
    };
    let set = |req: &mut Value, k: &str, v: Value| req[k] = v;
    if let Some(f) = family {
        set(&mut req, "family", f.into());
    }
    if !container_definitions.is_empty() {
        let defs = structured::list_values::<ContainerDefinition>(
            "container-definitions",
            &container_definitions,
        )?;
        set(&mut req, "containerDefinitions", defs.into());
    }
    if !volumes.is_empty() {
        let v = structured::list_values::<Volume>("volumes", &volumes)?;
        set(&mut req, "volumes", v.into());
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
}

/// `--include TAGS` adds the definition's tags.
pub(super) fn describe(
    ecs: &Ecs,
    task_definition: &str,
    include: &[String],
) -> Result<Outcome, EcsError> {
    value(ecs.describe_task_definition(task_definition, include.iter().any(|i| i == "TAGS")))
}

/// `--sort DESC` lists the newest first.
pub(super) fn list(
    ecs: &Ecs,
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
) -> Result<Outcome, EcsError> {
    value(ecs.list_task_definitions(
        family_prefix.as_deref(),
        status.as_deref(),
        sort.as_deref() == Some("DESC"),
    ))
}

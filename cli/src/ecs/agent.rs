//! berth's own verbs over services: one reconcile pass (`reconcile`) and
//! the agent loop (`agent`). Both are the orchestrator's `reconcile`; this
//! prints.

use std::time::Duration;

use berth_orchestrator::agent_config::AgentConfig;
use berth_orchestrator::model::Attribute;
use berth_orchestrator::reconcile::cleanup_plan::Housekeeping;
use berth_orchestrator::reconcile::{self, AgentOptions, Config};
use berth_orchestrator::scheduler::hosts;
use berth_orchestrator::scheduler::reserved::Reserved;
use berth_orchestrator::{Ecs, EcsError};

use crate::agent_settings;

use super::Outcome;

pub(super) fn reconcile(
    ecs: &Ecs,
    cfg: &Config,
    cluster: Option<&str>,
) -> Result<Outcome, EcsError> {
    let report = reconcile::pass(ecs, cfg, cluster)?;
    Ok(Outcome::Value(serde_json::json!({
        "clusters": report.clusters,
        "tasksAdopted": report.adopted,
        "tasksFinished": report.finished,
        "tasksStarted": report.started,
    })))
}

/// `berth agent`'s flags.
#[derive(clap::Args)]
pub struct AgentArgs {
    /// The cluster this host joins (it must exist; default: ECS_CLUSTER of
    /// the settings, else `default`).
    #[arg(long)]
    cluster: Option<String>,
    /// Attributes of this host: `k=v,...` (`ecs.availability-zone`,
    /// `ecs.instance-type` and names of your own).
    #[arg(long, default_value = "")]
    attributes: String,
    /// Seconds the host's lease lives unrenewed: how soon the cluster
    /// counts the host lost (etcd's own minimum is 2).
    #[arg(long, default_value_t = 3)]
    lease_ttl: u64,
    /// Seconds between reconcile passes.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// This host's underlay address, which the other hosts route its
    /// slice of each cluster network via (default: the source address
    /// toward the store, else the first global address).
    #[arg(long, env = "BERTH_HOST_ADDRESS", value_name = "IP")]
    host_address: Option<std::net::Ipv4Addr>,
    /// The agent's settings, `KEY=value` lines with the ECS agent's names
    /// (default /etc/berth/agent.config); ECS_* variables in the
    /// environment override it, and the flags below both.
    #[arg(long, env = "BERTH_AGENT_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: how long a STOPPED task is
    /// kept (3h).
    #[arg(long, value_name = "DURATION")]
    task_cleanup_wait: Option<String>,
    /// ECS_IMAGE_CLEANUP_INTERVAL (30m).
    #[arg(long, value_name = "DURATION")]
    image_cleanup_interval: Option<String>,
    /// ECS_IMAGE_MINIMUM_CLEANUP_AGE (1h).
    #[arg(long, value_name = "DURATION")]
    image_minimum_cleanup_age: Option<String>,
    /// ECS_NUM_IMAGES_DELETE_PER_CYCLE (5).
    #[arg(long, value_name = "N")]
    images_delete_per_cycle: Option<String>,
    /// ECS_DISABLE_IMAGE_CLEANUP.
    #[arg(long)]
    disable_image_cleanup: bool,
    /// ECS_IMAGE_PULL_BEHAVIOR: default, always, once or prefer-cached.
    #[arg(long, value_name = "BEHAVIOR")]
    image_pull_behavior: Option<String>,
    /// ECS_RESERVED_MEMORY: MiB kept from tasks (0).
    #[arg(long, value_name = "MIB")]
    reserved_memory: Option<String>,
    /// ECS_RESERVED_PORTS: TCP host ports kept from tasks, a JSON list
    /// ([22,2375,2376,51678,51679]).
    #[arg(long, value_name = "JSON")]
    reserved_ports: Option<String>,
}

impl AgentArgs {
    /// The settings file, the environment, then these flags.
    fn settings(&self) -> anyhow::Result<AgentConfig> {
        let loaded = agent_settings::load(self.config.as_deref())?;
        for key in &loaded.unknown {
            tracing::warn!(
                "{}: {key} is not a setting berth reads; ignored",
                loaded.path.display()
            );
        }
        let mut config = loaded.config;
        let flag = |f: &Option<String>| f.clone();
        agent_settings::apply_flags(
            &mut config,
            &[
                (
                    "--task-cleanup-wait",
                    "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
                    flag(&self.task_cleanup_wait),
                ),
                (
                    "--image-cleanup-interval",
                    "ECS_IMAGE_CLEANUP_INTERVAL",
                    flag(&self.image_cleanup_interval),
                ),
                (
                    "--image-minimum-cleanup-age",
                    "ECS_IMAGE_MINIMUM_CLEANUP_AGE",
                    flag(&self.image_minimum_cleanup_age),
                ),
                (
                    "--images-delete-per-cycle",
                    "ECS_NUM_IMAGES_DELETE_PER_CYCLE",
                    flag(&self.images_delete_per_cycle),
                ),
                (
                    "--image-pull-behavior",
                    "ECS_IMAGE_PULL_BEHAVIOR",
                    flag(&self.image_pull_behavior),
                ),
                (
                    "--reserved-memory",
                    "ECS_RESERVED_MEMORY",
                    flag(&self.reserved_memory),
                ),
                (
                    "--reserved-ports",
                    "ECS_RESERVED_PORTS",
                    flag(&self.reserved_ports),
                ),
            ],
        )?;
        config.disable_image_cleanup |= self.disable_image_cleanup;
        Ok(config)
    }
}

/// In the foreground until killed (systemd stops it with SIGTERM).
pub(super) fn run(ecs: &Ecs, cfg: &Config, args: AgentArgs) -> Result<Outcome, EcsError> {
    if args.lease_ttl == 0 {
        return Err(EcsError::invalid("--lease-ttl: must be at least 1 second"));
    }
    let settings = args
        .settings()
        .map_err(|e| EcsError::invalid(format!("{e:#}")))?;
    let cluster = args
        .cluster
        .clone()
        .or_else(|| settings.cluster.clone())
        .unwrap_or_else(|| "default".into());
    // ECS_INSTANCE_ATTRIBUTES, then --attributes over them.
    let mut configured: Vec<Attribute> = Vec::new();
    for (name, value) in &settings.instance_attributes {
        hosts::check_attribute_name(name).map_err(|e| {
            EcsError::invalid(format!(
                "ECS_INSTANCE_ATTRIBUTES: {}",
                e.message.trim_start_matches("--attributes: ")
            ))
        })?;
        configured.push(Attribute {
            name: name.clone(),
            value: Some(value.clone()),
        });
    }
    let opts = AgentOptions {
        attributes: hosts::merge_attributes(
            &configured,
            &hosts::parse_attributes(&args.attributes)?,
        ),
        lease_ttl: Duration::from_secs(args.lease_ttl),
        interval: args.interval,
        reserved: Reserved {
            memory_mib: settings.reserved_memory,
            ports_tcp: settings.reserved_ports.clone(),
            ports_udp: settings.reserved_ports_udp.clone(),
        },
        housekeeping: Housekeeping::from_config(&settings),
        ..AgentOptions::new(&cluster)
    };
    // Its supervisors pull as its settings say.
    let cfg = &Config {
        pull: settings.image_pull_behavior,
        ..cfg.clone()
    };
    // Networks across hosts: the other hosts route this host's slices via
    // this address (hosts sharing this machine's one network have nothing
    // to route).
    if let Some(address) = reconcile::routes::host_address(args.host_address, &cfg.store.url)? {
        ecs.set_host_address(address);
    }
    reconcile::agent(ecs, cfg, &opts, || false)?;
    Ok(Outcome::Printed)
}

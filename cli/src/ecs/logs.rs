//! `berth logs`: a task's container logs, as they were written, and
//! (with --follow) as they come until the task stops.

use std::io::Write;
use std::time::Duration;

use berth_orchestrator::model::Task;
use berth_orchestrator::reconcile::Config;
use berth_orchestrator::supervisor::SupervisorArgs;
use berth_orchestrator::{Ecs, EcsError};
use chrono::{DateTime, Utc};

use super::input::parse_since;
use super::{usage, Outcome};

// logs' flags: the task (its id or ARN) and what to print of it.
#[derive(clap::Args)]
pub struct Logs {
    /// The task, by id or ARN.
    #[arg(required_unless_present = "log_group")]
    task: Option<String>,
    /// An awslogs log group instead of a task: its streams' lines, kept
    /// after their tasks, oldest first, each prefixed with its stream.
    #[arg(long, conflicts_with_all = ["task", "container"])]
    log_group: Option<String>,
    /// With --log-group: only the streams whose names start with this.
    #[arg(long, requires = "log_group")]
    log_stream_prefix: Option<String>,
    /// The cluster, by name or ARN (default: default).
    #[arg(long)]
    cluster: Option<String>,
    /// One container (default: all, each line prefixed with its name).
    #[arg(long)]
    container: Option<String>,
    /// Keep printing new lines until the task stops (with --log-group:
    /// until no task of the cluster writes to its streams).
    #[arg(long, short)]
    follow: bool,
    /// Only lines newer than this: a duration (30s, 5m, 2h) or an
    /// RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
}

/// How often --follow looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub(super) fn print(ecs: &Ecs, cfg: &Config, args: Logs) -> Result<Outcome, EcsError> {
    let Logs {
        task,
        log_group,
        log_stream_prefix,
        cluster,
        container,
        follow,
        since,
    } = args;
    let since = match since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let task = match (task, log_group) {
        (_, Some(group)) => {
            let prefix = log_stream_prefix.as_deref().unwrap_or("");
            follow_group(ecs, cfg, cluster.as_deref(), &group, prefix, since, follow)?;
            return Ok(Outcome::Printed);
        }
        (Some(task), None) => task,
        (None, None) => return usage(anyhow::anyhow!("logs: give a task, or --log-group")),
    };
    let c = ecs.cluster(cluster.as_deref())?;
    let t = ecs.task(&c.cluster_name, &task)?;
    // Its log files are on its own host.
    ecs.ensure_local(&c.cluster_name, &t)?;
    let names = containers(&t, &task, container.as_ref())?;
    let mut printed = vec![0usize; names.len()];
    loop {
        for (i, name) in names.iter().enumerate() {
            printed[i] = print_new(cfg, &t, name, names.len() > 1, since, printed[i])?;
        }
        let _ = std::io::stdout().flush();
        if !follow || ecs.task(&c.cluster_name, &task)?.is_stopped() {
            break;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    Ok(Outcome::Printed)
}

/// A log group's lines; with `follow`, new ones until no task of the
/// cluster that is not STOPPED writes to its streams. Whether one does is
/// looked at before reading, so the lines it wrote before it stopped are
/// printed by the last read.
fn follow_group(
    ecs: &Ecs,
    cfg: &Config,
    cluster: Option<&str>,
    group: &str,
    prefix: &str,
    since: Option<DateTime<Utc>>,
    follow: bool,
) -> Result<(), EcsError> {
    let cluster = match follow {
        true => Some(ecs.cluster(cluster)?.cluster_name),
        false => None,
    };
    let mut printed = super::log_groups::Printed::default();
    loop {
        let writing = match &cluster {
            Some(c) => group_writers(ecs, c, group, prefix)?,
            None => false,
        };
        // A task just started may not have made the group yet.
        let made = berth_orchestrator::awslogs::group_dir(&cfg.state_root, group).exists();
        if made || !writing {
            super::log_groups::print(&cfg.state_root, group, prefix, since, &mut printed)?;
        }
        let _ = std::io::stdout().flush();
        if !writing {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Whether a task of `cluster` not STOPPED writes to `group`'s streams
/// starting with `prefix`.
fn group_writers(ecs: &Ecs, cluster: &str, group: &str, prefix: &str) -> Result<bool, EcsError> {
    for t in ecs.all_tasks(cluster)? {
        if t.is_stopped() {
            continue;
        }
        let def = ecs.task_definition(&t.task_definition_arn)?;
        if berth_orchestrator::awslogs::writes_to(&def, t.id(), group, prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The containers to print: the one named, or all.
fn containers(t: &Task, task: &str, container: Option<&String>) -> Result<Vec<String>, EcsError> {
    Ok(match container {
        Some(n) if t.containers.iter().any(|c| &c.name == n) => vec![n.clone()],
        Some(n) => {
            return Err(EcsError::invalid(format!(
                "container: task {task} has no container {n:?}"
            )))
        }
        None => t.containers.iter().map(|c| c.name.clone()).collect(),
    })
}

/// Print `name`'s entries after the first `printed` (those not older than
/// `since`), each prefixed with the container's name when several are
/// printed; returns how many entries are printed now.
fn print_new(
    cfg: &Config,
    t: &Task,
    name: &str,
    prefixed: bool,
    since: Option<DateTime<Utc>>,
    printed: usize,
) -> Result<usize, EcsError> {
    let path = SupervisorArgs::container_log(&cfg.state_root, t.id(), name)
        .map_err(|e| EcsError::invalid(format!("container {name:?}: {e}")))?;
    // A container not started yet has no log: nothing to print so far.
    let entries = berth_runtime::logs::read_entries(&path, berth_runtime::logs::DEFAULT_MAX_FILES)
        .unwrap_or_default();
    for e in entries.iter().skip(printed) {
        if since.is_some_and(|s| e.time < s) {
            continue;
        }
        if prefixed {
            print!("{name} | {}", e.log);
        } else {
            print!("{}", e.log);
        }
    }
    Ok(printed.max(entries.len()))
}

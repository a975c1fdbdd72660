//! Applies what the services' scheduler decides, on this host: a reconcile
//! pass under the cluster's lease and the supervisors of what it placed,
//! orphan recovery (tasks whose supervisor died), the agent loop that does
//! both every few seconds, and the glue of a gc pass. Effects only (the
//! store, spawning supervisors); the decisions they follow are in [`plan`].
//!
//! The CLI fills a [`Config`] from its flags and environment and calls in;
//! a supervisor whose task stopped calls [`reconcile_now`] so that its
//! service's replacement starts at once.

mod agent;
pub mod cleanup_plan;
pub mod gc;
pub mod housekeeping;
mod plan;
pub mod routes;
mod scheduler;

use std::time::{Duration, Instant};

pub use agent::{agent, fence};
pub use plan::{
    agent_pause, backoff_wait, AgentOptions, Config, Recovery, MAX_BACKOFF_WAIT, PASS_PATIENCE,
    STOPPED_TASK_PATIENCE,
};
pub use scheduler::{schedule, SCHEDULER_TICK};

use crate::model::{name_from_arn, DesiredStatus, StopCode, Task, TaskStatus};
use crate::supervisor::{self, SupervisorArgs};
use crate::{Ecs, EcsResult};

/// Run a reconcile pass of `args.cluster` and start what it placed. When
/// another reconciler holds the lease, wait for it: it may have read the
/// tasks before this one stopped.
pub fn reconcile_now(ecs: &Ecs, args: &SupervisorArgs) {
    loop {
        match reconcile_and_launch(ecs, &args.cluster, STOPPED_TASK_PATIENCE, |t| {
            args.for_task(t)
        }) {
            // A service backing off: wait it out here (a stopped task's
            // supervisor has nothing else to do), up to a point; longer
            // waits are the agent's.
            Ok(Some(pass)) => match backoff_wait(pass.retry_after) {
                Some(wait) => std::thread::sleep(wait),
                None => return,
            },
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("reconcile {}: {e}", args.cluster);
                return;
            }
        }
    }
}

/// One reconcile pass of `cluster`, waiting up to `patience` while another
/// reconciler holds the cluster's lease, then starting the supervisors of
/// what it placed. None: the lease never came.
pub fn reconcile_and_launch(
    ecs: &Ecs,
    cluster: &str,
    patience: Duration,
    args_for: impl Fn(&Task) -> SupervisorArgs,
) -> EcsResult<Option<crate::ecs::services::Pass>> {
    // Pids repeat across hosts: the host's id makes the holder unique.
    // One process (berth serve: its scheduler and its API calls) may pass
    // from several threads at once, and a holder renews its own lease:
    // the call's number keeps two passes from both holding it.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let holder = format!("{}-pid-{}-{call}", ecs.host_id(), std::process::id());
    let deadline = Instant::now() + patience;
    loop {
        let discovery =
            |ecs: &Ecs| crate::discovery_sync::sync(ecs, cluster, |t| args_for(t).task_dir());
        if let Some(pass) = ecs.reconcile_then(cluster, &holder, discovery)? {
            launch(ecs, &pass.placed, args_for);
            return Ok(Some(pass));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start a supervisor for each of `tasks` placed on this host (the others
/// are their hosts' agents' to start); a task whose supervisor cannot
/// start is recorded STOPPED with the reason.
pub fn launch(ecs: &Ecs, tasks: &[Task], args_for: impl Fn(&Task) -> SupervisorArgs) {
    for task in tasks.iter().filter(|t| ecs.is_local(t)) {
        let args = args_for(task);
        if let Err(e) = args.spawn() {
            let reason = format!("start the task supervisor: {e}");
            let _ = ecs.update_task(&args.cluster, &args.task_id, |t| {
                t.last_status = TaskStatus::Stopped;
                t.desired_status = DesiredStatus::Stopped;
                t.stop_code = Some(StopCode::TaskFailedToStart);
                t.stopped_reason = Some(reason.clone());
            });
        }
    }
}

/// A detached supervisor for each new task of run-task or start-task.
pub fn start(ecs: &Ecs, cfg: &Config, tasks: &[Task]) {
    launch(ecs, tasks, |t| cfg.supervisor_args(t));
}

/// One reconcile pass of `cluster`, starting what it placed; the ids of
/// the tasks started (none when another reconciler kept the lease).
pub fn reconcile_cluster(ecs: &Ecs, cfg: &Config, cluster: &str) -> EcsResult<Vec<String>> {
    let pass = reconcile_and_launch(ecs, cluster, PASS_PATIENCE, |t| cfg.supervisor_args(t))?;
    Ok(pass
        .map(|p| p.placed.iter().map(|t| t.id().to_string()).collect())
        .unwrap_or_default())
}

/// Tasks of `cluster` on this host whose supervisor died: adopted when
/// they run whole, else finished (then their services replace them). A
/// task that cannot be recovered is logged and left to the next pass.
/// Another host's tasks are never this host's orphans: their supervisors'
/// pids mean nothing here.
pub fn recover_orphans(ecs: &Ecs, cfg: &Config, cluster: &str) -> EcsResult<Recovery> {
    let mut recovery = Recovery::default();
    for task in ecs.local_tasks(cluster)? {
        if !supervisor::is_orphaned(&task) {
            continue;
        }
        let outcome =
            supervisor::recover_orphan(ecs, &cfg.supervisor_args(&task)).map_err(|e| e.to_string());
        recovery.record(task.id(), outcome);
    }
    for (id, e) in &recovery.failed {
        tracing::warn!("task {id}: {e}");
    }
    Ok(recovery)
}

/// What `berth reconcile` did: the clusters passed over and the ids of
/// the tasks adopted, finished and started.
#[derive(Debug, Default)]
pub struct PassReport {
    pub clusters: Vec<String>,
    pub adopted: Vec<String>,
    pub finished: Vec<String>,
    pub started: Vec<String>,
}

/// One pass over `cluster` (or every cluster with services): recover the
/// orphans, then reconcile. Stops at the first error.
pub fn pass(ecs: &Ecs, cfg: &Config, cluster: Option<&str>) -> EcsResult<PassReport> {
    let clusters = match cluster {
        Some(c) => vec![name_from_arn(c).to_string()],
        None => ecs.clusters_with_services()?,
    };
    let mut report = PassReport::default();
    for c in &clusters {
        let recovery = recover_orphans(ecs, cfg, c)?;
        report.adopted.extend(recovery.adopted);
        report.finished.extend(recovery.finished);
        report.started.extend(reconcile_cluster(ecs, cfg, c)?);
    }
    report.clusters = clusters;
    Ok(report)
}

/// stop-task's follow-up: a task with no supervisor to act on the stop
/// (killed, or its run-task died before starting one) is finished here.
/// Another host's task is its agent's to finish (or, its host lost, the
/// cluster's).
pub fn finish_if_orphaned(ecs: &Ecs, cfg: &Config, task: &Task) -> Result<(), String> {
    if !ecs.is_local(task) || !supervisor::is_orphaned(task) {
        return Ok(());
    }
    supervisor::reap_orphan(ecs, &cfg.supervisor_args(task)).map_err(|e| e.to_string())
}

/// `berth system gc` over `cluster` (default: every cluster): what
/// crashes left, then the STOPPED tasks past `keep.task_cleanup_wait`,
/// then (`keep.images` set) one image collection.
pub fn gc(
    ecs: &Ecs,
    cfg: &Config,
    cluster: Option<String>,
    keep: &cleanup_plan::Housekeeping,
) -> EcsResult<gc::Report> {
    let clusters = match cluster {
        Some(c) => vec![c],
        None => ecs.cluster_names()?,
    };
    let args_for = |t: &Task| cfg.supervisor_args(t);
    let locks = supervisor::bridge_locks(&cfg.runtime_root);
    let mut report = gc::collect(ecs, &clusters, &locks, args_for)?;
    for c in &clusters {
        housekeeping::remove_stopped_tasks(ecs, c, keep.task_cleanup_wait, &args_for, &mut report)?;
    }
    if let Some(images) = &keep.images {
        housekeeping::collect_images(ecs, &cfg.state_root, images, &mut report)?;
    }
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::model::Partition;

    /// A store of its own, and roots beside it.
    pub(crate) fn store() -> (tempfile::TempDir, Ecs, Config) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ecs = Ecs::open(dir.path(), &Default::default(), Partition::default())
            .expect("open the store");
        let cfg = Config {
            state_root: dir.path().to_path_buf(),
            runtime_root: dir.path().join("run"),
            cgroup_parent: "berth".into(),
            store: Default::default(),
            pull: Default::default(),
        };
        (dir, ecs, cfg)
    }

    #[test]
    fn the_agent_stops_when_asked_after_its_pass() {
        let (_dir, ecs, cfg) = store();
        let passes = Cell::new(0);
        let opts = AgentOptions {
            interval: 0,
            ..AgentOptions::new("default")
        };
        agent(&ecs, &cfg, &opts, || {
            passes.set(passes.get() + 1);
            true
        })
        .expect("an agent pass over an empty store");
        assert_eq!(passes.get(), 1);
    }

    #[test]
    fn a_pass_over_no_services_does_nothing() {
        let (_dir, ecs, cfg) = store();
        let report = pass(&ecs, &cfg, None).expect("a pass");
        assert!(report.clusters.is_empty());
        assert!(report.adopted.is_empty() && report.finished.is_empty());
        assert!(report.started.is_empty());
    }
}

//! The agent's housekeeping, as the ECS agent does it: STOPPED tasks
//! removed once they waited `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION` (their
//! record, whatever is left of their containers and directories, their
//! logs), and unused images collected. Run by the agent loop and by
//! `berth system gc`. Effects only: the choices are [`super::cleanup_plan`]'s.
//!
//! What a task leaves on its host after it stopped, all named from its id:
//! `<state>/tasks/<id>/` (its containers' json-file logs, and any other
//! per-task output a log driver keeps there: that directory is the hook
//! for awslogs' streams, removed with it) and `<state>/tasks/<id>.log` (its
//! supervisor's log). Its containers, root filesystems, cgroup and run
//! directory (scratch volumes, /etc files) are already gone at STOPPED;
//! [`teardown::release`] runs again first, so a task whose release failed
//! keeps its record until it succeeds.

use std::collections::BTreeSet;
use std::path::Path;

use berth_rootfs::{images, ContentStore, Reference};

use super::cleanup_plan::{cleanup_due, images_to_remove, ImageCleanup, StoredImage};
use super::gc::Report;
use crate::model::Task;
use crate::supervisor::teardown::{self, Ports};
use crate::supervisor::{self, SupervisorArgs};
use crate::{Ecs, EcsResult};

/// Remove the STOPPED tasks of `cluster` on this host that stopped at
/// least `wait` ago: what is left of them on the host, then their record.
pub fn remove_stopped_tasks(
    ecs: &Ecs,
    cluster: &str,
    wait: std::time::Duration,
    args_for: &impl Fn(&Task) -> SupervisorArgs,
    report: &mut Report,
) -> EcsResult<()> {
    let now = chrono::Utc::now();
    for task in ecs.local_tasks(cluster)? {
        if !cleanup_due(&task, wait, now) || supervisor::supervisor_alive(&task) {
            continue;
        }
        let args = args_for(&task);
        let released = teardown::release(&args, &task, Ports::Keep);
        let mut failed = released.failed;
        failed.extend(remove_task_files(&args.state_root, task.id()));
        if !failed.is_empty() {
            // Kept: the next pass tries again, and the record still names
            // what is left.
            report.failed.extend(failed);
            continue;
        }
        if ecs.remove_stopped_task(cluster, task.id())? {
            report.tasks_removed.push(task.task_arn.clone());
        }
    }
    Ok(())
}

/// The files and directories a STOPPED task's logs left on its host.
///
/// Hook for log drivers that keep a task's output elsewhere: awslogs'
/// streams (`<state>/logs/awslogs/GROUP/STREAM.log`, branch i15-e) are
/// named from the task definition's `logConfiguration`, not from the task
/// id alone; once that branch is merged, add here each container's
/// `awslogs::stream_file(state_root, &stream_of(...))` (the task
/// definition is `Ecs::task_definition` of `task.task_definition_arn`).
fn log_paths(state_root: &Path, task_id: &str) -> Vec<std::path::PathBuf> {
    let tasks = state_root.join("tasks");
    vec![tasks.join(task_id), tasks.join(format!("{task_id}.log"))]
}

/// Remove what [`log_paths`] names; what could not be removed.
fn remove_task_files(state_root: &Path, task_id: &str) -> Vec<String> {
    let mut failed = Vec::new();
    for path in log_paths(state_root, task_id) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failed.push(format!("remove {}: {e}", path.display())),
        }
    }
    failed
}

/// One image collection in the image store under `state_root`: the
/// images [`images_to_remove`] picks, untagged, then the blobs and layers
/// no image uses any more freed. The names removed go in the report.
pub fn collect_images(
    ecs: &Ecs,
    state_root: &Path,
    c: &ImageCleanup,
    report: &mut Report,
) -> EcsResult<()> {
    let store = match ContentStore::open(state_root.join("images")) {
        Ok(s) => s,
        Err(e) => {
            report.failed.push(format!("open the image store: {e}"));
            return Ok(());
        }
    };
    // Read before the store's images: an image a task starts to use
    // after this read was in the store before it, and a task placed
    // after it is a race ECS's agent has too (its supervisor pulls again).
    let in_use = normalized(ecs.local_images_in_use()?);
    let stored: Vec<StoredImage> = match store.refs() {
        Ok(refs) => refs
            .into_iter()
            .map(|(name, e)| StoredImage {
                name,
                created_at: e.created_at,
                last_used_at: e.last_used_at,
            })
            .collect(),
        Err(e) => {
            report.failed.push(format!("list the images: {e}"));
            return Ok(());
        }
    };
    for name in images_to_remove(&stored, &in_use, chrono::Utc::now(), c) {
        // Refused while a container's root filesystem uses it (a task of
        // `berth run`, or one whose record is gone): kept.
        match images::remove(&store, &name) {
            Ok(_) => report.images_removed.push(name),
            Err(e) => report.failed.push(format!("remove image {name}: {e}")),
        }
    }
    if !report.images_removed.is_empty() {
        if let Err(e) = images::prune(&store) {
            report
                .failed
                .push(format!("free the removed images' layers: {e}"));
        }
    }
    Ok(())
}

/// Image names as the store keys them (`busybox` is
/// `docker.io/library/busybox:latest`); a name that does not parse is kept
/// as written (no stored image has it).
fn normalized(names: BTreeSet<String>) -> BTreeSet<String> {
    names
        .into_iter()
        .map(|n| n.parse::<Reference>().map(|r| r.to_string()).unwrap_or(n))
        .collect()
}

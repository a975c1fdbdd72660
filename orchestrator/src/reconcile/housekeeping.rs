//! The agent's housekeeping, as the ECS agent does it: STOPPED tasks
//! removed once they waited `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION` (their
//! record, whatever is left of their containers and directories, their
//! logs), and unused images collected. Run by the agent loop and by
//! `berth system gc`. Effects only: the choices are [`super::cleanup_plan`]'s.
//!
//! What a task leaves on its host after it stopped, named from its id:
//! `<state>/tasks/<id>/` (its containers' json-file logs, or links to the
//! log streams a driver keeps under `<state>/logs/`, removed with it) and
//! `<state>/tasks/<id>.log` (its supervisor's log). Its containers, root filesystems, cgroup and run
//! directory (scratch volumes, /etc files) are already gone at STOPPED;
//! [`teardown::release`] runs again first, so a task whose release failed
//! keeps its record until it succeeds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

/// The files and directories a STOPPED task's logs left on its host: its
/// directory under `<state>/tasks/` and its supervisor's log, and the log
/// files its directory links to under `<state>/logs/` (awslogs' streams,
/// `<state>/logs/awslogs/GROUP/STREAM.log`, which live apart from the task
/// so that they outlive it, until now) with their rotated copies.
fn log_paths(state_root: &Path, task_id: &str) -> Vec<PathBuf> {
    let tasks = state_root.join("tasks");
    let dir = tasks.join(task_id);
    let mut paths = linked_logs(&dir, &state_root.join("logs"));
    paths.push(dir);
    paths.push(tasks.join(format!("{task_id}.log")));
    paths
}

/// The targets of the symbolic links in `dir` that lie under `logs`
/// (never anything else a link may name), each with its rotated copies
/// (`FILE.1`, `FILE.2`, …).
fn linked_logs(dir: &Path, logs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        // Lexically: a target with `..` could climb out of `logs`.
        let inside = target.starts_with(logs)
            && !target
                .components()
                .any(|c| c == std::path::Component::ParentDir);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            continue;
        };
        if !inside {
            continue;
        }
        let rotated = format!("{}.", name.to_string_lossy());
        out.extend(
            std::fs::read_dir(parent)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&rotated))
                .map(|e| e.path()),
        );
        out.push(target);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tasks_logs_and_the_streams_it_links_to_are_named() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let dir = root.join("tasks/abc");
        let group = root.join("logs/awslogs/g");
        std::fs::create_dir_all(&dir).expect("task dir");
        std::fs::create_dir_all(&group).expect("group");
        for f in ["s.log", "s.log.1", "other.log"] {
            std::fs::write(group.join(f), "x").expect("stream");
        }
        std::fs::write(root.join("elsewhere"), "x").expect("outside");
        std::os::unix::fs::symlink(group.join("s.log"), dir.join("app.log")).expect("link");
        std::os::unix::fs::symlink(root.join("elsewhere"), dir.join("evil.log")).expect("link");
        let sneaky = root.join("logs/awslogs/../../elsewhere");
        std::os::unix::fs::symlink(&sneaky, dir.join("sneaky.log")).expect("link");
        let mut paths = log_paths(root, "abc");
        paths.sort();
        let mut expected = vec![
            group.join("s.log"),
            group.join("s.log.1"),
            dir.clone(),
            root.join("tasks/abc.log"),
        ];
        expected.sort();
        assert_eq!(paths, expected);
        assert!(remove_task_files(root, "abc").is_empty());
        assert!(!dir.exists() && !group.join("s.log").exists() && !group.join("s.log.1").exists());
        assert!(group.join("other.log").exists() && root.join("elsewhere").exists());
    }
}

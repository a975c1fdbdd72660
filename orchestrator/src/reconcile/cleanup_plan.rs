//! The pure decisions of the agent's housekeeping, as the ECS agent makes
//! them: which STOPPED tasks have waited long enough to be removed
//! (`ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`) and which images to delete in
//! one cycle (unused, older than `ECS_IMAGE_MINIMUM_CLEANUP_AGE`, least
//! recently used first, at most `ECS_NUM_IMAGES_DELETE_PER_CYCLE`). No
//! store, no files: unit-tested without root.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::agent_config::AgentConfig;
use crate::model::Task;

/// What a housekeeping pass does (`berth agent`'s settings, or `berth
/// system gc`'s flags).
#[derive(Clone, Debug, PartialEq)]
pub struct Housekeeping {
    /// STOPPED tasks are removed this long after they stopped.
    pub task_cleanup_wait: Duration,
    /// None: images are never collected (`ECS_DISABLE_IMAGE_CLEANUP`).
    pub images: Option<ImageCleanup>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImageCleanup {
    /// Between the agent's image collections.
    pub interval: Duration,
    /// An image pulled (or imported) more recently is kept.
    pub minimum_age: Duration,
    /// At most this many images per collection.
    pub per_cycle: usize,
}

impl Housekeeping {
    pub fn from_config(c: &AgentConfig) -> Self {
        Self {
            task_cleanup_wait: c.task_cleanup_wait,
            images: (!c.disable_image_cleanup).then_some(ImageCleanup {
                interval: c.image_cleanup_interval,
                minimum_age: c.image_minimum_cleanup_age,
                per_cycle: c.images_delete_per_cycle,
            }),
        }
    }
}

impl Default for Housekeeping {
    fn default() -> Self {
        Self::from_config(&AgentConfig::default())
    }
}

/// When `task` stopped: its `stoppedAt`, else the earlier marks a task
/// stopped by a crash may have only, else its creation (a record with no
/// time at all is as old as it says it is).
fn stopped_at(task: &Task) -> Option<DateTime<Utc>> {
    [
        &task.stopped_at,
        &task.execution_stopped_at,
        &task.stopping_at,
        &Some(task.created_at.clone()),
    ]
    .into_iter()
    .flatten()
    .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
    .map(|t| t.with_timezone(&Utc))
}

/// Whether `task` is STOPPED and has been for at least `wait` at `now`.
pub fn cleanup_due(task: &Task, wait: Duration, now: DateTime<Utc>) -> bool {
    if !task.is_stopped() {
        return false;
    }
    let Some(at) = stopped_at(task) else {
        return false;
    };
    let Ok(wait) = chrono::Duration::from_std(wait) else {
        return false;
    };
    at + wait <= now
}

/// An image in this host's store, as cleanup sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredImage {
    pub name: String,
    /// When it was pulled or imported (tagged).
    pub created_at: DateTime<Utc>,
    /// When a task last started from it.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The images to delete in one cycle, in order: none that `in_use` names
/// (the images of tasks not STOPPED), none younger than `c.minimum_age`,
/// the least recently used (else oldest) first, at most `c.per_cycle`.
pub fn images_to_remove(
    images: &[StoredImage],
    in_use: &BTreeSet<String>,
    now: DateTime<Utc>,
    c: &ImageCleanup,
) -> Vec<String> {
    let min_age = chrono::Duration::from_std(c.minimum_age).unwrap_or(chrono::Duration::MAX);
    let mut old: Vec<&StoredImage> = images
        .iter()
        .filter(|i| !in_use.contains(&i.name))
        .filter(|i| i.created_at + min_age <= now)
        .collect();
    old.sort_by_key(|i| (i.last_used_at.unwrap_or(i.created_at), i.name.clone()));
    old.into_iter()
        .take(c.per_cycle)
        .map(|i| i.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn task(status: TaskStatus, stopped_at: Option<&str>) -> Task {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123456789abcdef",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/c",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "launchType": "EC2",
            "containers": [],
            "version": 1,
            "createdAt": "2026-01-01T00:00:00Z",
        }))
        .expect("a task");
        t.last_status = status;
        t.stopped_at = stopped_at.map(str::to_string);
        t
    }

    #[test]
    fn a_stopped_task_waits_its_time() {
        let wait = Duration::from_secs(3 * 3600);
        let t = task(TaskStatus::Stopped, Some("2026-01-01T10:00:00.000Z"));
        assert!(!cleanup_due(&t, wait, at("2026-01-01T12:59:59Z")));
        assert!(cleanup_due(&t, wait, at("2026-01-01T13:00:00Z")));
        assert!(cleanup_due(&t, Duration::ZERO, at("2026-01-01T10:00:00Z")));
        // Running: never, however old.
        let r = task(TaskStatus::Running, None);
        assert!(!cleanup_due(&r, Duration::ZERO, at("2030-01-01T00:00:00Z")));
        // No stoppedAt (stopped by an older berth): from its creation.
        let old = task(TaskStatus::Stopped, None);
        assert!(cleanup_due(&old, wait, at("2026-01-01T03:00:00Z")));
        assert!(!cleanup_due(&old, wait, at("2026-01-01T02:00:00Z")));
    }

    fn image(name: &str, created: &str, used: Option<&str>) -> StoredImage {
        StoredImage {
            name: name.into(),
            created_at: at(created),
            last_used_at: used.map(at),
        }
    }

    #[test]
    fn unused_old_images_go_least_recently_used_first() {
        let images = [
            image("a:1", "2026-01-01T00:00:00Z", Some("2026-01-01T05:00:00Z")),
            image("b:1", "2026-01-01T01:00:00Z", None),
            image("c:1", "2026-01-01T00:00:00Z", Some("2026-01-01T02:00:00Z")),
            image("used:1", "2026-01-01T00:00:00Z", None),
            image("young:1", "2026-01-01T09:30:00Z", None),
        ];
        let in_use: BTreeSet<String> = ["used:1".to_string()].into();
        let c = ImageCleanup {
            interval: Duration::from_secs(1800),
            minimum_age: Duration::from_secs(3600),
            per_cycle: 5,
        };
        let now = at("2026-01-01T10:00:00Z");
        assert_eq!(
            images_to_remove(&images, &in_use, now, &c),
            ["b:1", "c:1", "a:1"]
        );
        let two = ImageCleanup {
            per_cycle: 2,
            ..c.clone()
        };
        assert_eq!(
            images_to_remove(&images, &in_use, now, &two),
            ["b:1", "c:1"]
        );
        let none = ImageCleanup {
            per_cycle: 0,
            ..c.clone()
        };
        assert!(images_to_remove(&images, &in_use, now, &none).is_empty());
        let any_age = ImageCleanup {
            minimum_age: Duration::ZERO,
            ..c
        };
        let all = images_to_remove(&images, &in_use, now, &any_age);
        assert!(all.contains(&"young:1".to_string()) && !all.contains(&"used:1".to_string()));
    }

    #[test]
    fn disabled_cleanup_collects_no_image() {
        let c = AgentConfig {
            disable_image_cleanup: true,
            ..Default::default()
        };
        assert_eq!(Housekeeping::from_config(&c).images, None);
        assert!(Housekeeping::default().images.is_some());
    }
}

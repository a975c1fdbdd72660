//! DAEMON services: one task on every ACTIVE container instance, none on
//! the others. Which instances those are is the store glue's to read
//! (`ecs::services`); this decides from them and the service's tasks.

use std::collections::BTreeSet;

use crate::model::{DesiredStatus, Task};

/// What a DAEMON service needs, given the cluster's ACTIVE instances.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonPlan {
    /// One task for each ACTIVE instance.
    pub desired_count: u32,
    /// Live tasks on an instance that is no longer ACTIVE (draining,
    /// deregistered): they stop, and the deployment plan counts them for
    /// nothing.
    pub off_instance: Vec<String>,
    /// ACTIVE instances with no live task of the service. Run-task places
    /// the missing tasks itself for now (one host, one instance), so this
    /// is what a multi-host placement should target.
    pub lacking: Vec<String>,
}

/// A task that runs or is on its way, and that no one is stopping.
fn live(t: &Task) -> bool {
    !t.is_stopped() && t.desired_status != DesiredStatus::Stopped
}

/// Decide for a DAEMON service whose tasks are `ours`, in a cluster whose
/// ACTIVE container instances are `active` (ARNs).
pub fn plan(ours: &[&Task], active: &[String]) -> DaemonPlan {
    let off_instance = ours
        .iter()
        .filter(|t| live(t))
        .filter(|t| {
            t.container_instance_arn
                .as_ref()
                .is_some_and(|a| !active.contains(a))
        })
        .map(|t| t.id().to_string())
        .collect();
    let served: BTreeSet<&str> = ours
        .iter()
        .filter(|t| live(t))
        .filter_map(|t| t.container_instance_arn.as_deref())
        .collect();
    let lacking = active
        .iter()
        .filter(|a| !served.contains(a.as_str()))
        .cloned()
        .collect();
    DaemonPlan {
        desired_count: u32::try_from(active.len()).unwrap_or(u32::MAX),
        off_instance,
        lacking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;

    fn task(id: &str, instance: Option<&str>, last: TaskStatus, desired: DesiredStatus) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
            container_instance_arn: instance.map(str::to_string),
            last_status: last,
            desired_status: desired,
            ..Default::default()
        }
    }

    fn running(id: &str, instance: &str) -> Task {
        task(
            id,
            Some(instance),
            TaskStatus::Running,
            DesiredStatus::Running,
        )
    }

    #[test]
    fn one_task_per_active_instance() {
        let tasks = [running("a", "i-1"), running("b", "i-2")];
        let ours: Vec<&Task> = tasks.iter().collect();
        let active = ["i-1".to_string(), "i-2".to_string()];
        assert_eq!(
            plan(&ours, &active),
            DaemonPlan {
                desired_count: 2,
                off_instance: vec![],
                lacking: vec![],
            }
        );
    }

    #[test]
    fn tasks_on_inactive_instances_stop_and_new_instances_lack_one() {
        let tasks = [running("a", "i-1"), running("b", "i-gone")];
        let ours: Vec<&Task> = tasks.iter().collect();
        let active = ["i-1".to_string(), "i-new".to_string()];
        let p = plan(&ours, &active);
        assert_eq!(p.desired_count, 2);
        assert_eq!(p.off_instance, vec!["b".to_string()]);
        assert_eq!(p.lacking, vec!["i-new".to_string()]);
    }

    #[test]
    fn stopped_and_stopping_tasks_count_for_nothing() {
        let tasks = [
            task(
                "gone",
                Some("i-x"),
                TaskStatus::Stopped,
                DesiredStatus::Stopped,
            ),
            task(
                "going",
                Some("i-1"),
                TaskStatus::Running,
                DesiredStatus::Stopped,
            ),
            // Not placed yet: on no instance, so on none to leave.
            task(
                "new",
                None,
                TaskStatus::Provisioning,
                DesiredStatus::Running,
            ),
        ];
        let ours: Vec<&Task> = tasks.iter().collect();
        let p = plan(&ours, &["i-1".to_string()]);
        assert!(p.off_instance.is_empty(), "{p:?}");
        assert_eq!(p.lacking, vec!["i-1".to_string()]);
    }

    #[test]
    fn no_instance_no_task() {
        let tasks = [running("a", "i-1")];
        let ours: Vec<&Task> = tasks.iter().collect();
        let p = plan(&ours, &[]);
        assert_eq!(p.desired_count, 0);
        assert_eq!(p.off_instance, vec!["a".to_string()]);
    }
}

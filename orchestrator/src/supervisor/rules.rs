//! The supervisor's pure decisions: no store, no kernel, no clock of its
//! own (the time is an argument). The phase files ask these and act.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::TaskError;
use crate::model::{
    ContainerCondition, ContainerDefinition, DesiredStatus, HealthStatus, HostPort, Task,
    TaskDefinition, TaskStatus,
};

/// A container's stop timeout when its definition names none.
pub(super) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// A container's reason when the kernel killed it for its memory.
pub(super) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
/// A container's reason when its monitor died before it and berth killed it.
pub(super) const MONITOR_DIED_REASON: &str =
    "The container's monitor died; berth killed the container";
/// How long a task without a recorded supervisor counts as starting.
const START_GRACE_SECS: i64 = 5;

/// What the supervisor knows of one of its containers.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Seen<'a> {
    pub essential: bool,
    /// Its exit code, once it ended.
    pub exit_code: Option<i32>,
    /// Its health check's last status, if it has one.
    pub health: Option<&'a HealthStatus>,
}

/// A service's task: its service hears of its changes at once.
pub(super) fn is_service_task(task: &Task) -> bool {
    task.service_name().is_some()
}

/// Containers in an order where each comes after those it depends on.
pub(super) fn start_order(defs: &[ContainerDefinition]) -> Vec<&ContainerDefinition> {
    let mut out: Vec<&ContainerDefinition> = Vec::new();
    let mut left: Vec<&ContainerDefinition> = defs.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|c| {
            let ready = c
                .depends_on
                .iter()
                .all(|d| out.iter().any(|o| o.name == d.container_name));
            if ready {
                out.push(c);
            }
            !ready
        });
        if left.len() == before {
            // Registration refuses cycles; keep the rest in order anyway.
            out.append(&mut left);
        }
    }
    out
}

/// Whether a container may start, given its dependencies.
#[derive(Debug)]
pub(super) enum Gate {
    Ready,
    Wait,
    /// A dependency can no longer meet its condition: the task fails.
    Fail(TaskError),
}

/// `def`'s `dependsOn` against what is known of the containers started so
/// far (`seen` is None for one not started).
pub(super) fn dependency_gate<'a>(
    def: &ContainerDefinition,
    seen: impl Fn(&str) -> Option<Seen<'a>>,
) -> Gate {
    let mut ready = true;
    for d in &def.depends_on {
        let dep = seen(&d.container_name);
        let exit = dep.and_then(|s| s.exit_code);
        match (&d.condition, exit) {
            (ContainerCondition::Start, _) => ready &= dep.is_some(),
            (ContainerCondition::Complete, exit) => ready &= exit.is_some(),
            (ContainerCondition::Success, Some(code)) if code != 0 => {
                return Gate::Fail(TaskError::DependencyFailed {
                    dependency: d.container_name.clone(),
                    code,
                    container: def.name.clone(),
                });
            }
            (ContainerCondition::Success, exit) => ready &= exit.is_some(),
            (ContainerCondition::Healthy, exit) => {
                let health = dep.and_then(|s| s.health);
                if exit.is_some() || health == Some(&HealthStatus::Unhealthy) {
                    return Gate::Fail(TaskError::DependencyUnhealthy {
                        dependency: d.container_name.clone(),
                        container: def.name.clone(),
                    });
                }
                ready &= health == Some(&HealthStatus::Healthy);
            }
            _ => ready &= dep.is_some(),
        }
    }
    if ready {
        Gate::Ready
    } else {
        Gate::Wait
    }
}

/// An essential container has ended: the task is over.
pub(super) fn essential_exited<'a>(containers: impl IntoIterator<Item = Seen<'a>>) -> bool {
    containers
        .into_iter()
        .any(|s| s.essential && s.exit_code.is_some())
}

/// A service task's health is enforced: an essential container still
/// running is UNHEALTHY, nothing stops the task yet and its grace period
/// is over.
pub(super) fn stop_for_health<'a>(
    containers: impl IntoIterator<Item = Seen<'a>>,
    stopping: bool,
    grace_over: bool,
) -> bool {
    let unhealthy = containers.into_iter().any(|s| {
        s.essential && s.exit_code.is_none() && s.health == Some(&HealthStatus::Unhealthy)
    });
    unhealthy && !stopping && grace_over
}

/// A container's reason once it ended: its monitor died (no exit record),
/// or the kernel killed it for its memory.
pub(super) fn container_reason(monitor_died: bool, oom_killed: bool) -> Option<String> {
    if monitor_died {
        Some(MONITOR_DIED_REASON.to_string())
    } else {
        oom_killed.then(|| OOM_REASON.to_string())
    }
}

/// A container's stop timeout, bounded so that a deadline `now + timeout`
/// cannot overflow even for a definition that skipped registration's checks.
pub(super) fn stop_timeout(def: &ContainerDefinition) -> Duration {
    def.stop_timeout.map_or(DEFAULT_STOP_TIMEOUT, |t| {
        Duration::from_secs(t.min(crate::taskdef::MAX_TIMEOUT_SECS))
    })
}

/// The task's hostname: the first 12 characters of its id, as ECS's.
pub(super) fn hostname(task_arn: &str) -> String {
    task_arn
        .rsplit('/')
        .next()
        .unwrap_or("task")
        .chars()
        .take(12)
        .collect()
}

/// What ECS shows of `container`'s port mappings.
pub(super) fn network_bindings(ports: &[HostPort], container: &str) -> Vec<Value> {
    ports
        .iter()
        .filter(|hp| hp.container == container)
        .map(|hp| {
            serde_json::json!({
                "bindIP": "0.0.0.0",
                "containerPort": hp.container_port,
                "hostPort": hp.host_port,
                "protocol": hp.protocol,
            })
        })
        .collect()
}

/// Whether a process may take charge of `task`, knowing whether the
/// supervisor it records still lives: not once it is STOPPED, nor while
/// another's supervisor (or reaper) lives.
pub(super) fn may_claim_given(task: &Task, supervisor_alive: bool) -> bool {
    !task.is_stopped() && !supervisor_alive
}

/// Whether `task` is an orphan at `now`: one that may be claimed, unless it
/// is only starting (created within moments and no supervisor recorded yet:
/// a supervisor records itself within moments of run-task).
pub(super) fn is_orphaned_given(task: &Task, supervisor_alive: bool, now: DateTime<Utc>) -> bool {
    let starting = DateTime::parse_from_rfc3339(&task.created_at).is_ok_and(|at| {
        now.signed_duration_since(at) <= chrono::Duration::seconds(START_GRACE_SECS)
    }) && task
        .berth
        .as_ref()
        .is_none_or(|b| b.supervisor_pid.is_none());
    may_claim_given(task, supervisor_alive) && !starting
}

/// An orphan may be adopted: RUNNING and meant to, with every essential
/// container alive under its monitor (`alive`).
pub(super) fn adoptable(task: &Task, td: &TaskDefinition, alive: impl Fn(&str) -> bool) -> bool {
    task.last_status == TaskStatus::Running
        && task.desired_status == DesiredStatus::Running
        && td
            .container_definitions
            .iter()
            .filter(|c| c.is_essential())
            .all(|c| alive(&c.name))
}

/// How long to sleep from `now` until the first of `due` still ahead;
/// None when nothing is (the caller's default wait).
pub(super) fn until_due(
    now: Instant,
    due: impl IntoIterator<Item = Option<Instant>>,
) -> Option<Duration> {
    due.into_iter()
        .flatten()
        .filter(|at| *at > now)
        .min()
        .map(|at| at - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_ends_at_the_first_time_still_ahead() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let due = [Some(now + s(5)), None, Some(now + s(2)), Some(now)];
        assert_eq!(until_due(now, due), Some(s(2)));
        // Past times and none at all: nothing due, the default wait.
        assert_eq!(until_due(now + s(9), due), None);
        assert_eq!(until_due(now, [None, None]), None);
    }
    use crate::model::{DependsOn, TaskInternals};

    fn def(name: &str, deps: &[(&str, ContainerCondition)]) -> ContainerDefinition {
        ContainerDefinition {
            name: name.into(),
            depends_on: deps
                .iter()
                .map(|(n, c)| DependsOn {
                    container_name: (*n).into(),
                    condition: c.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn names<'a>(defs: &[&'a ContainerDefinition]) -> Vec<&'a str> {
        defs.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn containers_start_after_what_they_depend_on() {
        let defs = vec![
            def("app", &[("db", ContainerCondition::Healthy)]),
            def("db", &[("init", ContainerCondition::Success)]),
            def("init", &[]),
            def("side", &[]),
        ];
        assert_eq!(names(&start_order(&defs)), ["init", "side", "db", "app"]);
    }

    #[test]
    fn a_cycle_or_unknown_dependency_keeps_definition_order() {
        let defs = vec![
            def("a", &[("b", ContainerCondition::Start)]),
            def("b", &[("a", ContainerCondition::Start)]),
            def("c", &[("missing", ContainerCondition::Start)]),
        ];
        assert_eq!(names(&start_order(&defs)), ["a", "b", "c"]);
    }

    fn gate(condition: ContainerCondition, dep: Option<Seen<'_>>) -> Gate {
        dependency_gate(&def("app", &[("dep", condition)]), |_| dep)
    }

    fn exited(code: i32) -> Option<Seen<'static>> {
        Some(Seen {
            exit_code: Some(code),
            ..Default::default()
        })
    }

    #[test]
    fn dependency_conditions_wait_pass_or_fail() {
        use ContainerCondition::*;
        let started = Some(Seen::default());
        assert!(matches!(gate(Start, None), Gate::Wait));
        assert!(matches!(gate(Start, started), Gate::Ready));
        assert!(matches!(gate(Complete, started), Gate::Wait));
        assert!(matches!(gate(Complete, exited(1)), Gate::Ready));
        assert!(matches!(gate(Success, started), Gate::Wait));
        assert!(matches!(gate(Success, exited(0)), Gate::Ready));
        let Gate::Fail(e) = gate(Success, exited(2)) else {
            panic!("SUCCESS after exit 2 fails");
        };
        assert_eq!(
            e.reason(),
            "Dependency dep exited with code 2 (condition SUCCESS for app)"
        );
        let healthy = HealthStatus::Healthy;
        let unhealthy = HealthStatus::Unhealthy;
        let with = |h| {
            Some(Seen {
                health: Some(h),
                ..Default::default()
            })
        };
        assert!(matches!(gate(Healthy, started), Gate::Wait));
        assert!(matches!(gate(Healthy, with(&healthy)), Gate::Ready));
        for failed in [with(&unhealthy), exited(0)] {
            let Gate::Fail(e) = gate(Healthy, failed) else {
                panic!("HEALTHY fails once unhealthy or ended");
            };
            assert_eq!(
                e.reason(),
                "Dependency dep did not become HEALTHY (condition HEALTHY for app)"
            );
        }
        // No dependencies: ready at once.
        assert!(matches!(
            dependency_gate(&def("app", &[]), |_| None),
            Gate::Ready
        ));
    }

    #[test]
    fn the_task_stops_when_an_essential_container_ends_or_is_unhealthy() {
        let essential = |exit_code, health| Seen {
            essential: true,
            exit_code,
            health,
        };
        let side_ended = Seen {
            exit_code: Some(0),
            ..Default::default()
        };
        assert!(!essential_exited([essential(None, None), side_ended]));
        assert!(essential_exited([essential(Some(0), None)]));

        let bad = HealthStatus::Unhealthy;
        let sick = [essential(None, Some(&bad))];
        assert!(stop_for_health(sick, false, true));
        // Within its grace period, or already stopping: not (again).
        assert!(!stop_for_health(sick, false, false));
        assert!(!stop_for_health(sick, true, true));
        // Ended already, or not essential: its exit decides, not its health.
        assert!(!stop_for_health(
            [essential(Some(1), Some(&bad))],
            false,
            true
        ));
        let side = Seen {
            health: Some(&bad),
            ..Default::default()
        };
        assert!(!stop_for_health([side], false, true));
    }

    #[test]
    fn a_container_reason_says_how_it_was_killed() {
        assert_eq!(
            container_reason(true, false).as_deref(),
            Some(MONITOR_DIED_REASON)
        );
        assert_eq!(container_reason(false, true).as_deref(), Some(OOM_REASON));
        assert_eq!(container_reason(false, false), None);
    }

    #[test]
    fn stop_timeouts_are_bounded() {
        let mut d = def("app", &[]);
        assert_eq!(stop_timeout(&d), DEFAULT_STOP_TIMEOUT);
        d.stop_timeout = Some(u64::MAX);
        assert_eq!(
            stop_timeout(&d),
            Duration::from_secs(crate::taskdef::MAX_TIMEOUT_SECS)
        );
    }

    #[test]
    fn hostnames_and_bindings_are_ecs_own() {
        assert_eq!(
            hostname("arn:aws:ecs:r:1:task/default/0123456789abcdef0123"),
            "0123456789ab"
        );
        let ports = [HostPort {
            container: "web".into(),
            container_port: 80,
            host_port: 8080,
            protocol: "tcp".into(),
            ..Default::default()
        }];
        assert_eq!(
            network_bindings(&ports, "web"),
            [serde_json::json!({
                "bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"
            })]
        );
        assert!(network_bindings(&ports, "other").is_empty());
    }

    fn task(status: TaskStatus, created_at: &str, supervisor_pid: Option<i32>) -> Task {
        Task {
            last_status: status,
            created_at: created_at.into(),
            berth: Some(TaskInternals {
                supervisor_pid,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_orphan_is_a_task_nobody_live_has_once_past_its_start() {
        let now: DateTime<Utc> = "2026-01-01T00:00:10Z".parse().expect("time");
        let old = "2026-01-01T00:00:00Z";
        let new = "2026-01-01T00:00:08Z";
        let running = TaskStatus::Running;
        // Its supervisor died (or never recorded itself, past the grace).
        assert!(is_orphaned_given(
            &task(running.clone(), old, Some(7)),
            false,
            now
        ));
        assert!(is_orphaned_given(
            &task(running.clone(), old, None),
            false,
            now
        ));
        // A supervisor that recorded itself and died: at once.
        assert!(is_orphaned_given(
            &task(running.clone(), new, Some(7)),
            false,
            now
        ));
        // Only starting: run-task's supervisor has not recorded itself yet.
        assert!(!is_orphaned_given(
            &task(running.clone(), new, None),
            false,
            now
        ));
        // Alive, or over.
        assert!(!is_orphaned_given(
            &task(running.clone(), old, Some(7)),
            true,
            now
        ));
        assert!(!is_orphaned_given(
            &task(TaskStatus::Stopped, old, None),
            false,
            now
        ));
        assert!(may_claim_given(&task(running.clone(), new, None), false));
        assert!(!may_claim_given(&task(running, new, Some(7)), true));
    }
}

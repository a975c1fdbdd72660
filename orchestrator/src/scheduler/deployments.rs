//! Service deployments: what the scheduler decides for a service on each
//! reconcile pass, from the service record and its tasks alone. The store
//! glue that reads them and applies the decisions is `ecs::services`.

use std::time::Duration;

use crate::ecs::now;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::random_hex32;
use crate::model::{
    Deployment, DeploymentConfiguration, DeploymentStatus, LaunchType, RolloutState, Service,
    ServiceStatus, StopCode, Task, TaskDefinition,
};

/// A task counts toward a steady state (and a completed deployment) once it
/// has run this long: one that exits at once must not complete a rollout.
pub const SETTLE: Duration = Duration::from_secs(1);
/// Restart backoff after a deployment's n-th failed task: BASE·2^(n-1),
/// capped, as ECS throttles services whose tasks keep failing.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// ECS's quota of tasks per service.
pub const MAX_DESIRED_COUNT: u32 = 5_000;

pub(crate) fn check_desired_count(n: u32) -> EcsResult<()> {
    if n > MAX_DESIRED_COUNT {
        return Err(EcsError::invalid(format!(
            "desiredCount: {n} is more than the maximum of {MAX_DESIRED_COUNT} tasks per service"
        )));
    }
    Ok(())
}

/// What one pass decided for one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// (deployment id, task definition, how many) to start.
    pub start: Vec<(String, String, u32)>,
    /// Task ids to stop.
    pub stop: Vec<String>,
}

/// A service's task as the planner sees it.
#[derive(Clone, Debug)]
pub struct LiveTask {
    pub id: String,
    pub deployment: String,
    pub running: bool,
}

/// Decide starts and stops for `service` given its live (not STOPPED)
/// tasks: the PRIMARY deployment is brought to the desired count while
/// older ones drain, never above maximumPercent of the desired count in
/// all and, while replacing, never below minimumHealthyPercent running.
pub fn plan(service: &Service, live: &[LiveTask]) -> Plan {
    let mut plan = Plan::default();
    let Some(primary) = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
    else {
        return plan;
    };
    let desired = if service.status == ServiceStatus::Active {
        service.desired_count
    } else {
        0
    };
    let cfg = &service.deployment_configuration;
    // In u64, so no count or percentage can wrap; the results are at most
    // `desired` × 100 / 100 scaled by percentages, clamped back to u32.
    let percent_of = |p: u32, round_up: bool| -> u32 {
        let product = u64::from(desired) * u64::from(p);
        let n = if round_up {
            product.div_ceil(100)
        } else {
            product / 100
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let max_total = percent_of(cfg.maximum_percent, false).max(desired);
    let min_running = percent_of(cfg.minimum_healthy_percent, true);
    let of_primary: Vec<&LiveTask> = live.iter().filter(|t| t.deployment == primary.id).collect();
    let old: Vec<&LiveTask> = live.iter().filter(|t| t.deployment != primary.id).collect();
    // Extra primary tasks go, pending ones first.
    if of_primary.len() as u32 > desired {
        let mut extra: Vec<&&LiveTask> = of_primary.iter().collect();
        extra.sort_by_key(|t| t.running);
        let n = of_primary.len() - desired as usize;
        plan.stop
            .extend(extra.into_iter().take(n).map(|t| t.id.clone()));
    }
    let missing = desired.saturating_sub(of_primary.len() as u32);
    let room = max_total.saturating_sub(live.len() as u32);
    // With no room at all (maximumPercent 100), an old task must go first.
    let start = missing.min(room);
    if start > 0 {
        plan.start
            .push((primary.id.clone(), primary.task_definition.clone(), start));
    }
    // Old tasks drain as far as minimumHealthyPercent allows.
    let running_now = live.iter().filter(|t| t.running).count() as u32
        - plan
            .stop
            .iter()
            .filter(|id| live.iter().any(|t| &t.id == *id && t.running))
            .count() as u32;
    let mut may_stop = running_now.saturating_sub(min_running);
    let mut old_sorted = old.clone();
    old_sorted.sort_by_key(|t| t.running);
    for t in old_sorted {
        if !t.running {
            plan.stop.push(t.id.clone());
        } else if may_stop > 0 {
            plan.stop.push(t.id.clone());
            may_stop -= 1;
        }
    }
    plan
}

/// A registered definition's ARN (always set once registered).
pub(crate) fn arn_of(td: &TaskDefinition) -> String {
    td.task_definition_arn.clone().unwrap_or_default()
}

/// True once `t` has been RUNNING for [`SETTLE`].
pub(crate) fn settled(t: &Task) -> bool {
    t.started_at
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| {
            chrono::Utc::now().signed_duration_since(at)
                >= chrono::Duration::from_std(SETTLE).unwrap_or_default()
        })
}

/// How much longer `service` waits before starting tasks again after its
/// PRIMARY deployment's latest failure (None: no wait).
pub(crate) fn backoff(service: &Service, ours: &[&Task]) -> Option<Duration> {
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)?;
    let n = primary.failed_tasks;
    if n == 0 {
        return None;
    }
    let last = ours
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(primary.id.as_str()))
        .filter(|t| t.is_stopped() && task_failed(t))
        .filter_map(|t| t.stopped_at.as_deref())
        .filter_map(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .max()?;
    let delay = BACKOFF_BASE
        .saturating_mul(1u32 << (n - 1).min(20))
        .min(BACKOFF_CAP);
    let since = chrono::Utc::now()
        .signed_duration_since(last)
        .to_std()
        .unwrap_or_default();
    delay.checked_sub(since).filter(|d| !d.is_zero())
}

/// A task that failed: it stopped on its own account (not by a user or
/// the scheduler) before it had settled. One that ran a while and then died
/// is replaced at once, not held against its deployment.
pub(crate) fn task_failed(t: &Task) -> bool {
    if matches!(
        t.stop_code,
        Some(StopCode::UserInitiated | StopCode::ServiceSchedulerInitiated)
    ) {
        return false;
    }
    let time = |at: &Option<String>| {
        at.as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
    };
    match (time(&t.started_at), time(&t.stopped_at)) {
        (Some(started), Some(stopped)) => stopped
            .signed_duration_since(started)
            .to_std()
            .is_ok_and(|ran| ran < SETTLE),
        // Never ran.
        _ => true,
    }
}

pub(crate) fn check_deployment_configuration(cfg: &DeploymentConfiguration) -> EcsResult<()> {
    if cfg.maximum_percent < 100 {
        return Err(EcsError::invalid(
            "deploymentConfiguration.maximumPercent: must be at least 100",
        ));
    }
    if cfg.minimum_healthy_percent > 100 {
        return Err(EcsError::invalid(
            "deploymentConfiguration.minimumHealthyPercent: must be at most 100",
        ));
    }
    if cfg.maximum_percent == 100 && cfg.minimum_healthy_percent == 100 {
        return Err(EcsError::invalid(
            "deploymentConfiguration: maximumPercent 100 with minimumHealthyPercent 100 leaves no room to deploy",
        ));
    }
    Ok(())
}

pub(crate) fn new_deployment(
    td: &TaskDefinition,
    desired: u32,
    launch_type: &LaunchType,
) -> EcsResult<Deployment> {
    // A new definition meets the service's launch type (Fargate's sandbox).
    crate::taskdef::check_launch(td, launch_type)?;
    let digits: String = random_hex32()
        .map_err(|e| EcsError::new(ErrorKind::ServerException, e.to_string()))?
        .chars()
        .take(20)
        .collect();
    let at = now();
    Ok(Deployment {
        id: format!("ecs-svc/{digits}"),
        status: DeploymentStatus::Primary,
        task_definition: arn_of(td),
        desired_count: desired,
        launch_type: launch_type.clone(),
        rollout_state: RolloutState::InProgress,
        rollout_state_reason: "ECS deployment in progress.".into(),
        created_at: at.clone(),
        updated_at: at,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(desired: u32, max: u32, min: u32, deployments: &[&str]) -> Service {
        Service {
            status: ServiceStatus::Active,
            desired_count: desired,
            deployment_configuration: DeploymentConfiguration {
                maximum_percent: max,
                minimum_healthy_percent: min,
                deployment_circuit_breaker: None,
            },
            deployments: deployments
                .iter()
                .enumerate()
                .map(|(i, id)| Deployment {
                    id: id.to_string(),
                    status: if i == 0 {
                        DeploymentStatus::Primary
                    } else {
                        DeploymentStatus::Active
                    },
                    task_definition: format!("td:{id}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn live(n: usize, deployment: &str, running: bool) -> Vec<LiveTask> {
        (0..n)
            .map(|i| LiveTask {
                id: format!("{deployment}-{i}"),
                deployment: deployment.into(),
                running,
            })
            .collect()
    }

    #[test]
    fn scales_up_and_down() {
        let s = service(3, 200, 100, &["new"]);
        assert_eq!(
            plan(&s, &[]).start,
            vec![("new".into(), "td:new".into(), 3)]
        );
        let five = live(5, "new", true);
        let p = plan(&s, &five);
        assert_eq!(p.stop.len(), 2);
        assert!(p.start.is_empty());
        assert_eq!(plan(&s, &live(3, "new", true)), Plan::default());
    }

    #[test]
    fn rolls_within_min_and_max() {
        // 4 desired, 150% max, 50% min: 2 new may start, 2 old may stop.
        let s = service(4, 150, 50, &["new", "old"]);
        let p = plan(&s, &live(4, "old", true));
        assert_eq!(p.start, vec![("new".into(), "td:new".into(), 2)]);
        assert_eq!(p.stop.len(), 2);
        // 100% min, 200% max: all 4 new start, no old stops yet.
        let s = service(4, 200, 100, &["new", "old"]);
        let p = plan(&s, &live(4, "old", true));
        assert_eq!(p.start, vec![("new".into(), "td:new".into(), 4)]);
        assert!(p.stop.is_empty());
        // Once the new ones run, the old ones go.
        let mut both = live(4, "old", true);
        both.extend(live(4, "new", true));
        assert_eq!(plan(&s, &both).stop.len(), 4);
        // 100% max: an old task has to go before a new one starts.
        let s = service(2, 100, 50, &["new", "old"]);
        let p = plan(&s, &live(2, "old", true));
        assert!(p.start.is_empty());
        assert_eq!(p.stop.len(), 1);
    }

    #[test]
    fn extreme_counts_and_percentages_do_not_wrap() {
        // u32::MAX × 200% overflowed u32 before; now it plans in u64.
        let s = service(u32::MAX, u32::MAX, 100, &["new"]);
        let p = plan(&s, &live(1, "new", true));
        assert_eq!(p.start, vec![("new".into(), "td:new".into(), u32::MAX - 1)]);
        let s = service(u32::MAX, 200, u32::MAX, &["new", "old"]);
        let p = plan(&s, &live(2, "old", true));
        assert!(p.stop.is_empty(), "{:?}", p.stop);
        assert!(check_desired_count(MAX_DESIRED_COUNT).is_ok());
        let e = check_desired_count(u32::MAX).expect_err("too many");
        assert!(e.to_string().contains("desiredCount: 4294967295"), "{e}");
    }

    #[test]
    fn draining_stops_everything() {
        let mut s = service(3, 200, 100, &["d"]);
        s.status = ServiceStatus::Draining;
        assert_eq!(plan(&s, &live(3, "d", true)).stop.len(), 3);
    }
}

//! Service deployments: what the scheduler decides for a service on each
//! reconcile pass, from the service record, its tasks and the time alone.
//! The store glue that reads them and applies the decisions (stop, run,
//! record, events) is `ecs::services`; [`decide`] is one pass's plan for
//! one service, [`record_pass`] the record it leaves.
//!
//! The clock (`now`) and new ids come in as arguments, so that every
//! decision can be replayed in a unit test.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{
    Deployment, DeploymentConfiguration, DeploymentStatus, DesiredStatus, LaunchType, RolloutState,
    SchedulingStrategy, Service, ServiceStatus, StopCode, Task, TaskDefinition, TaskStatus,
};
use crate::scheduler::placement::{Constraint, PlacementError, Strategy};

/// A task counts toward a steady state (and a completed deployment) once it
/// has run this long: one that exits at once must not complete a rollout.
pub const SETTLE: Duration = Duration::from_secs(1);
/// Restart backoff after a deployment's n-th failed task: BASE·2^(n-1),
/// capped, as ECS throttles services whose tasks keep failing.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// ECS's quota of tasks per service.
pub const MAX_DESIRED_COUNT: u32 = 5_000;

pub fn check_desired_count(n: u32) -> EcsResult<()> {
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
pub fn arn_of(td: &TaskDefinition) -> String {
    td.task_definition_arn.clone().unwrap_or_default()
}

/// True once `t` has been RUNNING for [`SETTLE`] at `now`.
pub fn settled(t: &Task, now: DateTime<Utc>) -> bool {
    t.started_at
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| {
            now.signed_duration_since(at) >= chrono::Duration::from_std(SETTLE).unwrap_or_default()
        })
}

/// How much longer `service` waits before starting tasks again after its
/// PRIMARY deployment's latest failure (None: no wait).
pub fn backoff(service: &Service, ours: &[&Task], now: DateTime<Utc>) -> Option<Duration> {
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
    let since = now.signed_duration_since(last).to_std().unwrap_or_default();
    delay.checked_sub(since).filter(|d| !d.is_zero())
}

/// A task that failed: it stopped on its own account (not by a user or
/// the scheduler) before it had settled. One that ran a while and then died
/// is replaced at once, not held against its deployment.
pub fn task_failed(t: &Task) -> bool {
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

pub fn check_deployment_configuration(cfg: &DeploymentConfiguration) -> EcsResult<()> {
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

/// A new PRIMARY deployment of `td` for `desired` tasks, named `id`
/// (`ecs-svc/` and 20 random hex digits, made by the caller) at `at`.
pub fn new_deployment(
    td: &TaskDefinition,
    desired: u32,
    launch_type: &LaunchType,
    id: String,
    at: &str,
) -> EcsResult<Deployment> {
    // A new definition meets the service's launch type (Fargate's sandbox).
    crate::taskdef::check_launch(td, launch_type)?;
    let at = at.to_string();
    Ok(Deployment {
        id,
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

/// The service's PRIMARY deployment (the one it deploys now), if any.
pub fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
}

/// Set the service's desired count, and its PRIMARY deployment's (older
/// deployments drain to 0 whatever the count).
pub fn set_desired_count(service: &mut Service, n: u32) {
    service.desired_count = n;
    for d in service
        .deployments
        .iter_mut()
        .filter(|d| d.status == DeploymentStatus::Primary)
    {
        d.desired_count = n;
    }
}

/// Refuse to change a service that is not ACTIVE (DRAINING or INACTIVE).
pub fn check_active(s: &Service) -> EcsResult<()> {
    if s.status != ServiceStatus::Active {
        return Err(EcsError::new(
            ErrorKind::ServiceNotActiveException,
            format!("Service {} is {}", s.service_name, s.status),
        ));
    }
    Ok(())
}

/// Make `deployment` (of `td`) the service's PRIMARY; the others become
/// ACTIVE and drain to 0.
pub fn deploy(s: &mut Service, td: &TaskDefinition, deployment: Deployment) {
    for d in &mut s.deployments {
        d.status = DeploymentStatus::Active;
        d.desired_count = 0;
    }
    s.task_definition = arn_of(td);
    s.deployments.insert(0, deployment);
}

/// delete-service: an ACTIVE service scaled to 0 (or any, with `force`)
/// becomes DRAINING with nothing desired; the reconciler stops its tasks.
pub fn drain(s: &mut Service, force: bool) -> EcsResult<()> {
    check_active(s)?;
    if s.desired_count > 0 && !force {
        return Err(EcsError::invalid(
            "The service cannot be stopped while it is scaled above 0.",
        ));
    }
    s.status = ServiceStatus::Draining;
    s.desired_count = 0;
    Ok(())
}

/// Whether a service of `strategy` is a DAEMON, refusing what ECS refuses:
/// an unknown strategy, and for a DAEMON another launch type than EC2 or a
/// placement strategy (it places one task on every instance).
pub fn check_scheduling(
    strategy: &SchedulingStrategy,
    launch_type: &LaunchType,
    placement_strategy: &[Value],
) -> EcsResult<bool> {
    let daemon = match strategy {
        SchedulingStrategy::Replica => false,
        SchedulingStrategy::Daemon => true,
        SchedulingStrategy::Other(other) => {
            return Err(EcsError::invalid(format!(
                "schedulingStrategy: {other:?} is not REPLICA or DAEMON"
            )))
        }
    };
    if daemon && *launch_type != LaunchType::Ec2 {
        return Err(EcsError::invalid(
            "schedulingStrategy: DAEMON services run on container instances (EC2), not FARGATE",
        ));
    }
    if daemon && !placement_strategy.is_empty() {
        return Err(EcsError::invalid(
            "placementStrategy: a DAEMON service places one task on every instance and takes no strategy",
        ));
    }
    Ok(daemon)
}

/// The deployment configuration of a service that names none.
pub fn default_configuration(daemon: bool) -> DeploymentConfiguration {
    if daemon {
        // ECS's DAEMON default: a task is replaced in place (stop, then start).
        DeploymentConfiguration {
            maximum_percent: 100,
            minimum_healthy_percent: 0,
            deployment_circuit_breaker: None,
        }
    } else {
        DeploymentConfiguration::default()
    }
}

/// Parse a service's placement strategy and constraints now, so that a bad
/// expression fails at create-service and not at placement.
pub fn check_placement(strategy: &[Value], constraints: &[Value]) -> EcsResult<()> {
    let invalid = |e: PlacementError| EcsError::invalid(e.to_string());
    Strategy::list_from_json(Some(&Value::from(strategy.to_vec()))).map_err(invalid)?;
    Constraint::list_from_json(Some(&Value::from(constraints.to_vec()))).map_err(invalid)?;
    Ok(())
}

/// What the circuit breaker decided for a service's PRIMARY deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// The PRIMARY deployment's id.
    pub deployment: String,
    /// How many of its tasks have failed (see [`task_failed`]).
    pub failed: u32,
    /// The breaker is on and the deployment fails now.
    pub trips: bool,
    /// With rollback on: the task definition to deploy again.
    pub rollback_to: Option<String>,
}

/// Count the PRIMARY deployment's failed tasks; with the circuit breaker
/// on, trip it at ECS's threshold (half the desired count, 3 to 200) and,
/// with rollback, name the last completed task definition to deploy again.
/// None: nothing changed since the record was written.
pub fn circuit_breaker(service: &Service, ours: &[&Task]) -> Option<Breaker> {
    let primary = primary(service)?;
    let failed = ours
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(primary.id.as_str()))
        .filter(|t| t.is_stopped() && task_failed(t))
        .count() as u32;
    let breaker = service
        .deployment_configuration
        .deployment_circuit_breaker
        .clone()
        .unwrap_or_default();
    let threshold = service.desired_count.div_ceil(2).clamp(3, 200);
    let trips =
        breaker.enable && primary.rollout_state == RolloutState::InProgress && failed >= threshold;
    if failed == primary.failed_tasks && !trips {
        return None;
    }
    let rollback_to = match (
        &service.last_completed_task_definition,
        trips && breaker.rollback,
    ) {
        (Some(td), true) if *td != primary.task_definition => Some(td.clone()),
        _ => None,
    };
    Some(Breaker {
        deployment: primary.id.clone(),
        failed,
        trips,
        rollback_to,
    })
}

/// Write `b` into the record `s` (as stored now, which may have moved on
/// since `b` was decided): the failed count, and when it trips the FAILED
/// rollout and, given `rollback` (the definition `b.rollback_to` names and
/// a new deployment id), the deployment that rolls back. The events to add.
pub fn apply_breaker(
    s: &mut Service,
    b: &Breaker,
    rollback: Option<(&TaskDefinition, String)>,
    at: &str,
) -> EcsResult<Vec<String>> {
    let mut events = Vec::new();
    let launch_type = s.launch_type.clone();
    let desired = s.desired_count;
    let Some(d) = s.deployments.iter_mut().find(|d| d.id == b.deployment) else {
        return Ok(events);
    };
    d.failed_tasks = b.failed;
    if !b.trips || d.rollout_state != RolloutState::InProgress {
        return Ok(events);
    }
    d.rollout_state = RolloutState::Failed;
    d.rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
    d.updated_at = at.to_string();
    events.push(format!(
        "(service {}) (deployment {}) deployment failed: tasks failed to start.",
        s.service_name, b.deployment
    ));
    if let Some((td, id)) = rollback {
        let back = new_deployment(td, desired, &launch_type, id, at)?;
        events.push(format!(
            "(service {}) rolling back to deployment {}.",
            s.service_name, back.id
        ));
        deploy(s, td, back);
    }
    Ok(events)
}

/// What one reconcile pass decided for one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub plan: Plan,
    /// The service backs off: its starts wait this long.
    pub retry_after: Option<Duration>,
    /// Events to add before the stops' and starts'.
    pub events: Vec<String>,
}

/// One pass's decision for `service` (a DAEMON's desired count already
/// following its instances): the tasks `off_instance` (on instances a
/// DAEMON service leaves) stop and count for nothing, the other live tasks
/// are planned by [`plan`], and no task starts while the service backs off.
///
/// Tasks `draining` (on a DRAINING instance) are planned as an old
/// deployment's: replaced first, within maximumPercent, then stopped as
/// far as minimumHealthyPercent allows, as ECS drains an instance.
pub fn decide(
    service: &Service,
    ours: &[&Task],
    off_instance: Vec<String>,
    draining: &[String],
    now: DateTime<Utc>,
) -> Decision {
    let live: Vec<LiveTask> = ours
        .iter()
        .filter(|t| !t.is_stopped() && t.desired_status != DesiredStatus::Stopped)
        .filter(|t| !off_instance.iter().any(|id| id == t.id()))
        .map(|t| LiveTask {
            id: t.id().to_string(),
            deployment: if draining.iter().any(|id| id == t.id()) {
                DRAINING_INSTANCE.to_string()
            } else {
                t.started_by.clone().unwrap_or_default()
            },
            // Minimum healthy counts the healthy.
            running: t.in_service(),
        })
        .collect();
    let mut decision = Decision {
        plan: plan(service, &live),
        ..Default::default()
    };
    decision.plan.stop.extend(off_instance);
    let wait = backoff(service, ours, now).filter(|_| !decision.plan.start.is_empty());
    if let Some(wait) = wait {
        decision.plan.start.clear();
        decision.retry_after = Some(wait);
        let said = service
            .events
            .first()
            .is_some_and(|e| e.message.ends_with(UNABLE_TO_START));
        if !said {
            decision.events.push(format!(
                "(service {}) {UNABLE_TO_START}",
                service.service_name
            ));
        }
    }
    decision
}

/// The deployment a task on a DRAINING instance counts in: none of the
/// service's (theirs are `ecs-svc/…`), so it is replaced like an old one.
const DRAINING_INSTANCE: &str = "(draining instance)";

const UNABLE_TO_START: &str = "is unable to consistently start tasks successfully.";
const STEADY: &str = "has reached a steady state.";

/// Why the scheduler stops a task: for the newest deployment.
pub fn stop_reason(service: &Service) -> String {
    format!(
        "Scaling activity initiated by (deployment {})",
        service.deployments.first().map_or("", |d| d.id.as_str())
    )
}

/// The event for tasks a pass stopped.
pub fn stopped_event(service: &str, ids: &[String]) -> String {
    format!(
        "(service {service}) has stopped {} running tasks: {}.",
        ids.len(),
        task_list(ids.iter().map(String::as_str))
    )
}

/// The event for tasks a pass started.
pub fn started_event<'a>(service: &str, ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    format!(
        "(service {service}) has started {} tasks: {}.",
        ids.len(),
        task_list(ids)
    )
}

/// The event for tasks a pass could not place, with placement's reasons.
pub fn unplaced_event(service: &str, reasons: &[&str]) -> String {
    format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements. Reason: {}.",
        reasons.join(", ")
    )
}

/// `(task a) (task b)`, as ECS's events list tasks.
fn task_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which of a service's tasks a pass counts: RUNNING (and not being
/// stopped), in service for [`SETTLE`], or on their way (PENDING).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    Running,
    Settled,
    Pending,
}

/// How many of `ours` (of `deployment`, or all) count as `kind` once
/// `plan` is done: the tasks it stops count for nothing.
pub fn count(
    ours: &[&Task],
    plan: &Plan,
    deployment: Option<&str>,
    kind: Counted,
    now: DateTime<Utc>,
) -> u32 {
    ours.iter()
        .filter(|t| deployment.is_none_or(|d| t.started_by.as_deref() == Some(d)))
        .filter(|t| !plan.stop.iter().any(|id| id == t.id()))
        .filter(|t| match kind {
            Counted::Running => {
                t.last_status == TaskStatus::Running && t.desired_status != DesiredStatus::Stopped
            }
            Counted::Settled => t.in_service() && settled(t, now),
            Counted::Pending => !t.is_stopped() && t.last_status != TaskStatus::Running,
        })
        .count() as u32
}

/// The steady-state event, when `plan` leaves `seen` steady (nothing to
/// start or stop, one deployment, its desired count settled, none pending)
/// and its newest event does not say so already.
pub fn steady_event(
    seen: &Service,
    ours: &[&Task],
    plan: &Plan,
    now: DateTime<Utc>,
) -> Option<String> {
    let started: u32 = plan.start.iter().map(|(_, _, n)| n).sum();
    let steady = plan.stop.is_empty()
        && started == 0
        && seen.deployments.len() == 1
        && count(ours, plan, None, Counted::Settled, now) == seen.desired_count
        && count(ours, plan, None, Counted::Pending, now) == 0;
    let said = seen
        .events
        .first()
        .is_some_and(|e| e.message.ends_with(STEADY));
    (steady && !said).then(|| format!("(service {}) {STEADY}", seen.service_name))
}

/// The record `s` (as stored now) after a pass that saw `seen` and `ours`
/// and carried out `plan`: counts, a DAEMON's desired count, old
/// deployments drained away, the PRIMARY's rollout completed once all its
/// tasks settled, and a DRAINING service INACTIVE once no task is left.
pub fn record_pass(
    s: &mut Service,
    seen: &Service,
    ours: &[&Task],
    plan: &Plan,
    now: DateTime<Utc>,
    at: &str,
) {
    let count = |deployment: Option<&str>, kind| count(ours, plan, deployment, kind, now);
    let started: u32 = plan.start.iter().map(|(_, _, n)| n).sum();
    // A DAEMON service's count follows its instances.
    if s.scheduling_strategy == SchedulingStrategy::Daemon && s.status == ServiceStatus::Active {
        set_desired_count(s, seen.desired_count);
    }
    s.running_count = count(None, Counted::Running);
    s.pending_count = count(None, Counted::Pending) + started;
    let primary_running = primary(s).map(|d| count(Some(&d.id), Counted::Settled));
    for d in &mut s.deployments {
        d.running_count = count(Some(&d.id), Counted::Running);
        d.pending_count = count(Some(&d.id), Counted::Pending);
    }
    // Old deployments with no task left are done with.
    let drained: Vec<String> = s
        .deployments
        .iter()
        .filter(|d| d.status == DeploymentStatus::Active && d.running_count + d.pending_count == 0)
        .filter(|d| {
            !ours
                .iter()
                .any(|t| t.started_by.as_deref() == Some(&d.id) && !t.is_stopped())
        })
        .map(|d| d.id.clone())
        .collect();
    s.deployments.retain(|d| !drained.contains(&d.id));
    let only_primary = s.deployments.len() == 1;
    let desired = s.desired_count;
    if let Some(d) = s
        .deployments
        .iter_mut()
        .find(|d| d.status == DeploymentStatus::Primary)
    {
        if d.rollout_state == RolloutState::InProgress
            && only_primary
            && primary_running == Some(desired)
        {
            d.rollout_state = RolloutState::Completed;
            d.rollout_state_reason = "ECS deployment completed.".into();
            d.updated_at = at.to_string();
        }
    }
    if let Some(d) = primary(s).filter(|d| d.rollout_state == RolloutState::Completed) {
        s.last_completed_task_definition = Some(d.task_definition.clone());
    }
    let live_total = ours.iter().filter(|t| !t.is_stopped()).count();
    if s.status == ServiceStatus::Draining && live_total == 0 {
        s.status = ServiceStatus::Inactive;
    }
}

/// Whether `again` (a create-service's new record) asks for what
/// `first` (the service already there) was created with: ECS answers a
/// repeated CreateService with the first result, and refuses one with
/// other parameters ("Creation of service was not idempotent").
pub fn same_creation(first: &Service, again: &Service) -> bool {
    first.task_definition == again.task_definition
        && first.desired_count == again.desired_count
        && first.launch_type == again.launch_type
        && first.capacity_provider_strategy == again.capacity_provider_strategy
        && first.scheduling_strategy == again.scheduling_strategy
        && first.deployment_configuration == again.deployment_configuration
        && first.placement_strategy == again.placement_strategy
        && first.placement_constraints == again.placement_constraints
        && first.load_balancers == again.load_balancers
        && first.service_registries == again.service_registries
        && first.service_connect_configuration == again.service_connect_configuration
        && first.health_check_grace_period_seconds == again.health_check_grace_period_seconds
        && first.tags == again.tags
}

#[cfg(test)]
mod same_creation_tests {
    use super::*;

    #[test]
    fn only_the_same_parameters_are_the_same_creation() {
        let first = Service {
            task_definition: "arn:td/web:1".into(),
            desired_count: 2,
            created_at: "then".into(),
            ..Default::default()
        };
        let again = Service {
            created_at: "now".into(),
            ..first.clone()
        };
        assert!(
            same_creation(&first, &again),
            "times differ, parameters do not"
        );
        let more = Service {
            desired_count: 3,
            ..again.clone()
        };
        assert!(!same_creation(&first, &more));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CircuitBreaker;

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

    /// A fixed clock: 2026-01-01T00:00:00Z plus `secs`.
    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("a valid time")
    }

    fn stamp(secs: i64) -> String {
        at(secs).to_rfc3339()
    }

    /// A task of `deployment` that started at `started` (seconds) and, if
    /// `stopped` is given, stopped then with `code`.
    fn task(
        id: &str,
        deployment: &str,
        started: Option<i64>,
        stopped: Option<(i64, Option<StopCode>)>,
    ) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
            started_by: Some(deployment.into()),
            group: Some("service:web".into()),
            started_at: started.map(stamp),
            last_status: if stopped.is_some() {
                TaskStatus::Stopped
            } else if started.is_some() {
                TaskStatus::Running
            } else {
                TaskStatus::Pending
            },
            desired_status: if stopped.is_some() {
                DesiredStatus::Stopped
            } else {
                DesiredStatus::Running
            },
            stopped_at: stopped.as_ref().map(|(s, _)| stamp(*s)),
            stop_code: stopped.and_then(|(_, c)| c),
            ..Default::default()
        }
    }

    fn td(arn: &str) -> TaskDefinition {
        TaskDefinition {
            task_definition_arn: Some(arn.into()),
            ..Default::default()
        }
    }

    #[test]
    fn settles_after_a_second_of_running() {
        let t = task("a", "d", Some(0), None);
        assert!(!settled(&t, at(0)));
        assert!(settled(&t, at(1)));
        assert!(!settled(&task("p", "d", None, None), at(100)));
    }

    #[test]
    fn failed_tasks_are_the_quick_deaths_not_the_stopped_ones() {
        let essential = Some(StopCode::EssentialContainerExited);
        assert!(task_failed(&task(
            "a",
            "d",
            Some(0),
            Some((0, essential.clone()))
        )));
        assert!(task_failed(&task(
            "a",
            "d",
            None,
            Some((0, essential.clone()))
        )));
        // Ran for a while: replaced, not held against the deployment.
        assert!(!task_failed(&task("a", "d", Some(0), Some((5, essential)))));
        for code in [StopCode::UserInitiated, StopCode::ServiceSchedulerInitiated] {
            assert!(!task_failed(&task("a", "d", None, Some((0, Some(code))))));
        }
    }

    #[test]
    fn backoff_doubles_from_the_latest_failure() {
        let mut s = service(1, 200, 100, &["d"]);
        let died = task("a", "d", None, Some((10, None)));
        let ours = [&died];
        assert_eq!(backoff(&s, &ours, at(10)), None, "no failure counted yet");
        s.deployments[0].failed_tasks = 1;
        assert_eq!(backoff(&s, &ours, at(10)), Some(BACKOFF_BASE));
        s.deployments[0].failed_tasks = 3;
        assert_eq!(backoff(&s, &ours, at(10)), Some(BACKOFF_BASE * 4));
        // Waited out.
        assert_eq!(backoff(&s, &ours, at(11)), None);
        s.deployments[0].failed_tasks = 40;
        assert_eq!(backoff(&s, &ours, at(10)), Some(BACKOFF_CAP));
    }

    #[test]
    fn the_breaker_trips_at_the_threshold_and_rolls_back() {
        let mut s = service(2, 200, 100, &["new"]);
        s.deployments[0].rollout_state = RolloutState::InProgress;
        s.last_completed_task_definition = Some("td:old".into());
        s.deployment_configuration.deployment_circuit_breaker = Some(CircuitBreaker {
            enable: true,
            rollback: true,
        });
        let failed: Vec<Task> = (0..3)
            .map(|i| task(&format!("f{i}"), "new", None, Some((i, None))))
            .collect();
        let two: Vec<&Task> = failed.iter().take(2).collect();
        let b = circuit_breaker(&s, &two).expect("a new failed count");
        assert_eq!((b.failed, b.trips, b.rollback_to), (2, false, None));
        let three: Vec<&Task> = failed.iter().collect();
        let b = circuit_breaker(&s, &three).expect("trips");
        assert!(b.trips);
        assert_eq!(b.rollback_to.as_deref(), Some("td:old"));
        let old = td("td:old");
        let events =
            apply_breaker(&mut s, &b, Some((&old, "ecs-svc/back".into())), "t").expect("applies");
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(s.task_definition, "td:old");
        assert_eq!(s.deployments[0].id, "ecs-svc/back");
        assert_eq!(s.deployments[0].status, DeploymentStatus::Primary);
        assert_eq!(s.deployments[1].rollout_state, RolloutState::Failed);
        assert_eq!(s.deployments[1].failed_tasks, 3);
        assert_eq!(s.deployments[1].status, DeploymentStatus::Active);
        // Once recorded, nothing more to decide.
        s.deployments.remove(0);
        s.deployments[0].status = DeploymentStatus::Primary;
        assert_eq!(circuit_breaker(&s, &three), None);
    }

    #[test]
    fn decide_stops_off_instance_tasks_and_holds_starts_while_backing_off() {
        let mut s = service(2, 200, 100, &["d"]);
        let on = task("on", "d", Some(0), None);
        let off = task("off", "d", Some(0), None);
        let died = task("died", "d", None, Some((10, None)));
        let ours = [&on, &off, &died];
        let d = decide(&s, &ours, vec!["off".into()], &[], at(10));
        assert_eq!(d.plan.stop, vec!["off".to_string()]);
        assert_eq!(d.plan.start, vec![("d".into(), "td:d".into(), 1)]);
        assert_eq!(d.retry_after, None);
        s.deployments[0].failed_tasks = 1;
        let d = decide(&s, &ours, vec!["off".into()], &[], at(10));
        assert!(d.plan.start.is_empty());
        assert_eq!(d.retry_after, Some(BACKOFF_BASE));
        assert_eq!(d.events.len(), 1);
        assert!(d.events[0].ends_with(UNABLE_TO_START), "{:?}", d.events);
    }

    #[test]
    fn draining_tasks_are_replaced_first_then_stopped_within_the_limits() {
        // 3 tasks, one instance DRAINING under two of them; 200%/100%:
        // both replacements start, nothing stops while they are not up.
        let s = service(3, 200, 100, &["d"]);
        let (a, b, c) = (
            task("a", "d", Some(0), None),
            task("b", "d", Some(0), None),
            task("c", "d", Some(0), None),
        );
        let draining = ["b".to_string(), "c".to_string()];
        let d = decide(&s, &[&a, &b, &c], vec![], &draining, at(100));
        assert_eq!(d.plan.start, vec![("d".into(), "td:d".into(), 2)]);
        assert!(d.plan.stop.is_empty(), "{:?}", d.plan.stop);
        // The replacements run: the drained ones go.
        let (n1, n2) = (
            task("n1", "d", Some(50), None),
            task("n2", "d", Some(50), None),
        );
        let d = decide(&s, &[&a, &b, &c, &n1, &n2], vec![], &draining, at(100));
        assert!(d.plan.start.is_empty());
        assert_eq!(d.plan.stop, vec!["b".to_string(), "c".to_string()]);
        // 100%/50%: no room above the count, so one stops first.
        let s = service(2, 100, 50, &["d"]);
        let d = decide(&s, &[&a, &b], vec![], &draining[..1], at(100));
        assert!(d.plan.start.is_empty());
        assert_eq!(d.plan.stop, vec!["b".to_string()]);
    }

    #[test]
    fn a_pass_records_counts_completes_the_rollout_and_says_steady() {
        let mut s = service(2, 200, 100, &["new", "old"]);
        s.service_name = "web".into();
        s.deployments[0].rollout_state = RolloutState::InProgress;
        let a = task("a", "new", Some(0), None);
        let b = task("b", "new", Some(0), None);
        let gone = task(
            "c",
            "old",
            Some(0),
            Some((5, Some(StopCode::ServiceSchedulerInitiated))),
        );
        let ours = [&a, &b, &gone];
        let p = Plan::default();
        let seen = s.clone();
        // Two deployments seen: not steady yet.
        assert_eq!(steady_event(&seen, &ours, &p, at(10)), None);
        record_pass(&mut s, &seen, &ours, &p, at(10), "t");
        assert_eq!((s.running_count, s.pending_count), (2, 0));
        assert_eq!(s.deployments.len(), 1, "the drained old deployment goes");
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Completed);
        assert_eq!(s.last_completed_task_definition.as_deref(), Some("td:new"));
        let seen = s.clone();
        let steady = steady_event(&seen, &ours, &p, at(10)).expect("steady");
        assert_eq!(steady, "(service web) has reached a steady state.");
        // Not yet settled: not steady.
        assert_eq!(steady_event(&seen, &ours, &p, at(0)), None);
    }

    #[test]
    fn a_drained_service_becomes_inactive() {
        let mut s = service(0, 200, 100, &["d"]);
        s.status = ServiceStatus::Draining;
        let gone = task("a", "d", Some(0), Some((5, None)));
        let seen = s.clone();
        record_pass(&mut s, &seen, &[&gone], &Plan::default(), at(10), "t");
        assert_eq!(s.status, ServiceStatus::Inactive);
    }

    #[test]
    fn scheduling_checks() {
        let none: Vec<Value> = Vec::new();
        let spread = vec![serde_json::json!({"type": "spread", "field": "instanceId"})];
        let daemon = SchedulingStrategy::Daemon;
        assert_eq!(
            check_scheduling(&SchedulingStrategy::Replica, &LaunchType::Fargate, &spread).ok(),
            Some(false)
        );
        assert_eq!(
            check_scheduling(&daemon, &LaunchType::Ec2, &none).ok(),
            Some(true)
        );
        assert!(check_scheduling(&daemon, &LaunchType::Fargate, &none).is_err());
        assert!(check_scheduling(&daemon, &LaunchType::Ec2, &spread).is_err());
        let other = SchedulingStrategy::Other("SOMETIMES".into());
        assert!(check_scheduling(&other, &LaunchType::Ec2, &none).is_err());
        let cfg = default_configuration(true);
        assert_eq!((cfg.maximum_percent, cfg.minimum_healthy_percent), (100, 0));
        assert!(check_deployment_configuration(&cfg).is_ok());
        assert!(check_deployment_configuration(&default_configuration(false)).is_ok());
        assert!(check_placement(&spread, &none).is_ok());
        let bad = vec![serde_json::json!({"type": "memberOf", "expression": "attribute:"})];
        assert!(check_placement(&none, &bad).is_err());
    }

    #[test]
    fn deployment_configurations_ecs_refuses() {
        for (max, min) in [(99, 50), (200, 101), (100, 100)] {
            let cfg = DeploymentConfiguration {
                maximum_percent: max,
                minimum_healthy_percent: min,
                deployment_circuit_breaker: None,
            };
            assert!(check_deployment_configuration(&cfg).is_err(), "{max} {min}");
        }
    }

    #[test]
    fn events_read_as_ecs_writes_them() {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            stopped_event("web", &ids),
            "(service web) has stopped 2 running tasks: (task a) (task b)."
        );
        assert_eq!(
            started_event("web", ["a"].into_iter()),
            "(service web) has started 1 tasks: (task a)."
        );
        assert!(unplaced_event("web", &["RESOURCE:CPU", "AGENT"])
            .ends_with("Reason: RESOURCE:CPU, AGENT."));
        let s = service(1, 200, 100, &["ecs-svc/1"]);
        assert_eq!(
            stop_reason(&s),
            "Scaling activity initiated by (deployment ecs-svc/1)"
        );
    }

    #[test]
    fn desired_count_moves_the_primary_only() {
        let mut s = service(1, 200, 100, &["new", "old"]);
        set_desired_count(&mut s, 4);
        assert_eq!(s.desired_count, 4);
        assert_eq!(s.deployments[0].desired_count, 4);
        assert_eq!(s.deployments[1].desired_count, 0);
    }

    #[test]
    fn deleting_drains_a_service_scaled_to_zero_or_forced() {
        let mut s = service(2, 200, 100, &["d"]);
        let e = drain(&mut s, false).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameterException);
        drain(&mut s, true).expect("forced");
        assert_eq!(
            (s.status.clone(), s.desired_count),
            (ServiceStatus::Draining, 0)
        );
        let e = drain(&mut s, true).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::ServiceNotActiveException);
        let mut idle = service(0, 200, 100, &["d"]);
        drain(&mut idle, false).expect("scaled to 0");
    }

    #[test]
    fn a_new_deployment_becomes_primary_and_the_others_drain() {
        let mut s = service(3, 200, 100, &["old"]);
        s.deployments[0].desired_count = 3;
        let next = new_deployment(&td("td:next"), 3, &LaunchType::Ec2, "ecs-svc/n".into(), "t")
            .expect("a deployment");
        deploy(&mut s, &td("td:next"), next);
        assert_eq!(s.task_definition, "td:next");
        let states: Vec<(&str, DeploymentStatus, u32)> = s
            .deployments
            .iter()
            .map(|d| (d.id.as_str(), d.status.clone(), d.desired_count))
            .collect();
        assert_eq!(
            states,
            vec![
                ("ecs-svc/n", DeploymentStatus::Primary, 3),
                ("old", DeploymentStatus::Active, 0),
            ]
        );
        assert_eq!(s.deployments[0].rollout_state, RolloutState::InProgress);
    }
}

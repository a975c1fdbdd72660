//! Services: records, the aws-ecs verbs on them, and the reconciler that
//! keeps each one's desired count running. There is no daemon: whoever
//! notices a change (a task's supervisor when its task stops, `berth
//! reconcile`, `berth agent`) runs a pass, under a lease in the store so
//! that two passes at once never start extra tasks.
//!
//! This file is the store glue: it reads a service and its tasks, asks
//! `scheduler::deployments` (and `scheduler::daemon` for a DAEMON) what to
//! do, and applies the decision: stop-task, run-task, the record, events.
//! The load balancers' kernel rules follow each pass (`lb_sync`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::ecs::run_task::strategy_for;
use crate::ecs::{decode, encode, now, retry, Ecs};
use crate::ecs::{launch_type_for, RunTask};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::random_hex32;
use crate::model::{
    name_from_arn, CapacityProviderStrategyItem, Deployment, DeploymentConfiguration, Failure,
    LaunchType, SchedulingStrategy, Service, ServiceEvent, ServiceStatus, StopCode, Tag, Task,
    TaskDefinition,
};
use crate::scheduler::deployments::{
    self, arn_of, check_deployment_configuration, check_desired_count, Decision,
};
use crate::scheduler::{daemon, hosts};
use crate::store::{keys, Expect, Op};

/// Events a service keeps (ECS shows the last 100).
const MAX_EVENTS: usize = 100;
/// How long a reconciler holds a cluster's lease without renewing it: it
/// renews it after each service, so a reconciler that died (its host
/// lost) holds up the cluster's next pass, and its host loss, that long
/// at most.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// What a reconcile pass did.
#[derive(Debug, Default)]
pub struct Pass {
    /// Tasks placed, whose supervisors the caller starts.
    pub placed: Vec<Task>,
    /// A service is backing off: pass again after this long.
    pub retry_after: Option<Duration>,
    /// Tasks of lost hosts this pass marked STOPPED.
    pub lost: Vec<String>,
}

/// `create-service`'s parameters.
#[derive(Clone, Debug, Default)]
pub struct CreateService {
    pub cluster: Option<String>,
    pub service_name: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub launch_type: Option<LaunchType>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub placement_strategy: Vec<Value>,
    pub placement_constraints: Vec<Value>,
    pub load_balancers: Vec<crate::model::ServiceLoadBalancer>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub scheduling_strategy: Option<SchedulingStrategy>,
    pub tags: Vec<Tag>,
    /// ECS's `capacityProviderStrategy` (exclusive with `launch_type`).
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// Service discovery (`discovery.rs`): Cloud Map registries.
    pub service_registries: Vec<crate::model::ServiceRegistry>,
    /// Service discovery: Service Connect's names and client aliases.
    pub service_connect_configuration: Option<crate::model::ServiceConnectConfiguration>,
}

impl Ecs {
    pub fn create_service(&self, req: &CreateService) -> EcsResult<Value> {
        let cluster = self.cluster(req.cluster.as_deref())?;
        let name = &req.service_name;
        crate::names::check("serviceName", name)?;
        crate::tags::check("tags", &req.tags)?;
        check_desired_count(req.desired_count)?;
        let td = self.active_task_definition(&req.task_definition)?;
        let capacity = strategy_for(
            req.launch_type.as_ref(),
            &req.capacity_provider_strategy,
            &cluster,
        )?;
        // A capacity provider strategy runs FARGATE tasks (berth's sandbox).
        let launch_type = match capacity.is_empty() {
            true => launch_type_for(&td, req.launch_type.as_ref())?,
            false => launch_type_for(&td, Some(&LaunchType::Fargate))?,
        };
        self.check_service_load_balancers(&req.load_balancers, &td)?;
        let strategy = req.scheduling_strategy.clone().unwrap_or_default();
        let daemon =
            deployments::check_scheduling(&strategy, &launch_type, &req.placement_strategy)?;
        let cfg = req
            .deployment_configuration
            .clone()
            .unwrap_or_else(|| deployments::default_configuration(daemon));
        check_deployment_configuration(&cfg)?;
        deployments::check_placement(&req.placement_strategy, &req.placement_constraints)?;
        let desired_count = if daemon {
            self.daemon_instances(&cluster)?.len() as u32
        } else {
            req.desired_count
        };
        let at = now();
        let mut service = Service {
            service_arn: self
                .partition
                .arn(&format!("service/{}/{name}", cluster.cluster_name)),
            service_name: name.clone(),
            cluster_arn: cluster.cluster_arn.clone(),
            status: ServiceStatus::Active,
            task_definition: arn_of(&td),
            desired_count,
            launch_type: launch_type.clone(),
            capacity_provider_strategy: capacity,
            scheduling_strategy: strategy,
            deployment_configuration: cfg,
            deployments: vec![new_deployment(&td, desired_count, &launch_type, &at)?],
            placement_strategy: req.placement_strategy.clone(),
            placement_constraints: req.placement_constraints.clone(),
            load_balancers: req.load_balancers.clone(),
            health_check_grace_period_seconds: req.health_check_grace_period_seconds,
            service_registries: req.service_registries.clone(),
            service_connect_configuration: req.service_connect_configuration.clone(),
            tags: req.tags.clone(),
            created_at: at.clone(),
            version: 1,
            ..Default::default()
        };
        // Discovery's settings checked, its virtual address picked.
        let mut claim = self.discovery_claim(&cluster, &mut service, &td)?;
        let key = keys::service(&cluster.cluster_name, name);
        let existing = self.store.get(&key)?;
        let expect = match &existing {
            Some(rec) => match decode::<Service>(&rec.value)? {
                // The same request again answers the first result, as ECS.
                first if first.status != ServiceStatus::Inactive => {
                    return match deployments::same_creation(&first, &service) {
                        true => Ok(json!({ "service": first })),
                        false => Err(EcsError::invalid(format!(
                            "serviceName: Creation of service was not idempotent: {name} \
                             exists with other parameters"
                        ))),
                    }
                }
                _ => Expect::Revision(rec.revision),
            },
            None => Expect::Absent,
        };
        // The record and its virtual address in one commit; an address
        // another service took meanwhile: pick again.
        for _ in 0..8 {
            let mut ops: Vec<Op> = claim.iter().cloned().collect();
            ops.push(Op::Put {
                key: key.clone(),
                value: encode(&service)?,
                expect,
            });
            match self.store.commit(&ops) {
                Err(crate::store::StoreError::Conflict(_)) if self.vip_taken(&claim)? => {
                    claim = self.discovery_claim(&cluster, &mut service, &td)?;
                }
                other => {
                    other?;
                    return Ok(json!({ "service": service }));
                }
            }
        }
        Err(EcsError::new(
            ErrorKind::ServerException,
            "too much contention on the store for a service address; try again",
        ))
    }

    /// How many of service `name`'s tasks that are not STOPPED each
    /// capacity provider runs: what its strategy's base and weights count.
    fn capacity_running(&self, cluster: &str, name: &str) -> EcsResult<BTreeMap<String, u32>> {
        let group = format!("service:{name}");
        let mut running = BTreeMap::new();
        for (_, rec) in self.store.list(&keys::tasks_of(cluster))? {
            let t: Task = decode(&rec.value)?;
            if t.group.as_deref() != Some(group.as_str()) || t.is_stopped() {
                continue;
            }
            if let Some(p) = t.capacity_provider_name {
                *running.entry(p).or_insert(0) += 1;
            }
        }
        Ok(running)
    }

    /// The service `name` of `cluster` (any status).
    pub fn service(&self, cluster: &str, name: &str) -> EcsResult<Service> {
        let name = crate::names::lookup("service", name)?;
        match self.store.get(&keys::service(cluster, name))? {
            Some(rec) => decode(&rec.value),
            None => Err(EcsError::new(
                ErrorKind::ServiceNotFoundException,
                format!("Service not found: {}", name_from_arn(name)),
            )),
        }
    }

    /// Change a service with `change`, retried on conflicts.
    fn update_service_record(
        &self,
        cluster: &str,
        name: &str,
        mut change: impl FnMut(&mut Service) -> EcsResult<()>,
    ) -> EcsResult<Service> {
        let key = keys::service(cluster, crate::names::lookup("service", name)?);
        retry(|| {
            let Some(rec) = self.store.get(&key)? else {
                return Err(EcsError::new(
                    ErrorKind::ServiceNotFoundException,
                    format!("Service not found: {}", name_from_arn(name)),
                ));
            };
            let mut service: Service = decode(&rec.value)?;
            let before = service.clone();
            change(&mut service)?;
            if service == before {
                return Ok(Ok(service));
            }
            service.version += 1;
            let op = Op::Put {
                key: key.clone(),
                value: encode(&service)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| service))
        })
    }

    pub fn update_service(
        &self,
        cluster: Option<&str>,
        name: &str,
        desired_count: Option<u32>,
        task_definition: Option<&str>,
        force_new_deployment: bool,
        deployment_configuration: Option<DeploymentConfiguration>,
    ) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let td = match task_definition {
            Some(t) => Some(self.active_task_definition(t)?),
            None => None,
        };
        if let Some(cfg) = &deployment_configuration {
            check_deployment_configuration(cfg)?;
        }
        if let Some(n) = desired_count {
            check_desired_count(n)?;
        }
        let service = self.update_service_record(&cluster.cluster_name, name, |s| {
            deployments::check_active(s)?;
            if desired_count.is_some() && s.scheduling_strategy == SchedulingStrategy::Daemon {
                return Err(EcsError::invalid(
                    "desiredCount: a DAEMON service runs one task on every ACTIVE instance",
                ));
            }
            if let Some(n) = desired_count {
                deployments::set_desired_count(s, n);
            }
            if let Some(cfg) = &deployment_configuration {
                s.deployment_configuration = cfg.clone();
            }
            let new_revision = td
                .as_ref()
                .is_some_and(|td| arn_of(td) != s.task_definition);
            if new_revision || force_new_deployment {
                let td = match &td {
                    Some(td) => td.clone(),
                    None => self.active_task_definition(&s.task_definition)?,
                };
                self.check_service_load_balancers(&s.load_balancers, &td)?;
                let deployment = new_deployment(&td, s.desired_count, &s.launch_type, &now())?;
                deployments::deploy(s, &td, deployment);
            }
            Ok(())
        })?;
        Ok(json!({ "service": service }))
    }

    /// Delete a service: it must be scaled to 0 first unless `force`; its
    /// tasks are then stopped by the reconciler (DRAINING) and it becomes
    /// INACTIVE once none is left.
    pub fn delete_service(
        &self,
        cluster: Option<&str>,
        name: &str,
        force: bool,
    ) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let service = self.update_service_record(&cluster.cluster_name, name, |s| {
            deployments::drain(s, force)
        })?;
        Ok(json!({ "service": service }))
    }

    pub fn describe_services(&self, cluster: Option<&str>, names: &[String]) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            match self.service(&cluster.cluster_name, n) {
                Ok(s) => services.push(s),
                Err(e) if e.kind == ErrorKind::ServiceNotFoundException => {
                    failures.push(Failure::missing(&self.partition.arn(&format!(
                        "service/{}/{}",
                        cluster.cluster_name,
                        name_from_arn(n)
                    ))))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(json!({ "services": services, "failures": failures }))
    }

    pub fn list_services(&self, cluster: Option<&str>) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let mut arns = Vec::new();
        for (_, rec) in self.store.list(&keys::services_of(&cluster.cluster_name))? {
            let s: Service = decode(&rec.value)?;
            if s.status != ServiceStatus::Inactive {
                arns.push(s.service_arn);
            }
        }
        Ok(json!({ "serviceArns": arns }))
    }

    /// One reconcile pass over `cluster`'s services, under the cluster's
    /// lease. Returns the tasks it placed (their supervisors are the
    /// caller's to start) or None when another reconciler holds the lease.
    pub fn reconcile(&self, cluster: &str, holder: &str) -> EcsResult<Option<Pass>> {
        self.reconcile_then(cluster, holder, |_| {})
    }

    /// [`Ecs::reconcile`], then `then` while the lease is still held: what
    /// follows the pass on this host (service discovery's tables and hosts
    /// files, `discovery_sync`) applies the passes in the order they ran.
    pub fn reconcile_then(
        &self,
        cluster: &str,
        holder: &str,
        then: impl FnOnce(&Self),
    ) -> EcsResult<Option<Pass>> {
        let lease = keys::reconcile_lease(cluster);
        if !self.store.acquire_lease(&lease, holder, LEASE_TTL)? {
            return Ok(None);
        }
        let outcome = self.reconcile_held(cluster, holder);
        if outcome.is_ok() {
            then(self);
        }
        self.store.release_lease(&lease, holder)?;
        outcome.map(Some)
    }

    fn reconcile_held(&self, cluster: &str, holder: &str) -> EcsResult<Pass> {
        let lease = keys::reconcile_lease(cluster);
        let mut pass = Pass {
            // Lost hosts first: their tasks' services replace them below.
            lost: self.stop_lost_hosts(cluster)?,
            ..Default::default()
        };
        let mut load_balancers: Vec<String> = Vec::new();
        let tasks = self.all_tasks(cluster)?;
        let instances = self.instances_seen(cluster)?;
        for (_, rec) in self.store.list(&keys::services_of(cluster))? {
            let service: Service = decode(&rec.value)?;
            if service.status == ServiceStatus::Inactive {
                continue;
            }
            let ours: Vec<&Task> = tasks
                .iter()
                .filter(|t| t.service_name() == Some(service.service_name.as_str()))
                .collect();
            let service = self.reconcile_service(cluster, service, &ours, &instances, &mut pass)?;
            for lb in crate::load_balancing::names_of(&service) {
                if !load_balancers.contains(&lb) {
                    load_balancers.push(lb);
                }
            }
            // Still the cluster's reconciler? (A pass that outlived its
            // lease stops: another may be passing now.)
            if !self.store.acquire_lease(&lease, holder, LEASE_TTL)? {
                tracing::warn!("reconcile {cluster}: the lease was lost mid-pass");
                break;
            }
        }
        // Every pass: this one's stops and starts, and any health change
        // or stop since the last.
        if let Err(e) = self.sync_load_balancers(&load_balancers) {
            tracing::warn!("{e}");
        }
        Ok(pass)
    }

    /// One service's share of a pass: read what the scheduler needs (the
    /// circuit breaker's record, a DAEMON's instances), decide, apply, and
    /// record. The service as the pass saw it.
    fn reconcile_service(
        &self,
        cluster: &str,
        service: Service,
        ours: &[&Task],
        instances: &[hosts::Instance],
        pass: &mut Pass,
    ) -> EcsResult<Service> {
        let mut service = self.circuit_breaker(cluster, service, ours)?;
        // DAEMON: one task on every ACTIVE connected instance, none on the
        // others; its starts go to the instances lacking one.
        let mut off_instance = Vec::new();
        let mut targets = None;
        let daemon = service.scheduling_strategy == SchedulingStrategy::Daemon;
        if daemon && service.status == ServiceStatus::Active {
            let active = hosts::daemon_instances(instances);
            let daemon = daemon::plan(ours, &active);
            deployments::set_desired_count(&mut service, daemon.desired_count);
            off_instance = daemon.off_instance;
            targets = Some(daemon.lacking);
        }
        // A replica service moves its tasks off DRAINING instances.
        let draining = if daemon {
            Vec::new()
        } else {
            hosts::on_draining_instances(ours, instances)
        };
        let decision =
            deployments::decide(&service, ours, off_instance, &draining, chrono::Utc::now());
        if let Some(wait) = decision.retry_after {
            pass.retry_after = Some(pass.retry_after.map_or(wait, |r| r.min(wait)));
        }
        let events = self.apply_decision(cluster, &service, &decision, targets, pass)?;
        self.record_pass(cluster, &service, ours, &decision.plan, events)?;
        Ok(service)
    }

    /// Carry out a decision: the scheduler's stops, then its starts through
    /// run-task (whose placement picks the instances). The tasks placed go
    /// into `pass`; the events to record come back.
    fn apply_decision(
        &self,
        cluster: &str,
        service: &Service,
        decision: &Decision,
        mut targets: Option<Vec<String>>,
        pass: &mut Pass,
    ) -> EcsResult<Vec<String>> {
        let mut events = decision.events.clone();
        let p = &decision.plan;
        let reason = deployments::stop_reason(service);
        for id in &p.stop {
            self.stop_task_as(
                Some(cluster),
                id,
                StopCode::ServiceSchedulerInitiated,
                Some(&reason),
            )?;
        }
        if !p.stop.is_empty() {
            events.push(deployments::stopped_event(&service.service_name, &p.stop));
        }
        let mut failures = Vec::new();
        for (deployment, td, count) in &p.start {
            let req = RunTask {
                cluster: Some(cluster.to_string()),
                task_definition: td.clone(),
                count: *count,
                // A strategy is exclusive with a launch type.
                launch_type: service
                    .capacity_provider_strategy
                    .is_empty()
                    .then(|| service.launch_type.clone()),
                overrides: json!({}),
                started_by: Some(deployment.clone()),
                group: Some(format!("service:{}", service.service_name)),
                tags: Vec::new(),
                placement_strategy: service.placement_strategy.clone(),
                placement_constraints: service.placement_constraints.clone(),
                capacity_provider_strategy: service.capacity_provider_strategy.clone(),
                capacity_running: self.capacity_running(cluster, &service.service_name)?,
                client_token: None,
            };
            // A DAEMON's tasks go to the instances lacking one, in turn.
            let (out, new) = match targets.as_mut() {
                Some(lacking) => {
                    let n = (*count as usize).min(lacking.len());
                    let on: Vec<String> = lacking.drain(..n).collect();
                    self.run_task_on(&req, &on)?
                }
                None => self.run_task(&req)?,
            };
            if !new.is_empty() {
                events.push(deployments::started_event(
                    &service.service_name,
                    new.iter().map(Task::id),
                ));
            }
            if let Some(f) = out["failures"].as_array().filter(|f| !f.is_empty()) {
                failures.extend(f.iter().cloned());
            }
            pass.placed.extend(new);
        }
        if !failures.is_empty() {
            let reasons: Vec<&str> = failures
                .iter()
                .filter_map(|f| f["reason"].as_str())
                .collect();
            events.push(deployments::unplaced_event(&service.service_name, &reasons));
        }
        Ok(events)
    }

    /// The cluster's container instances as a pass sees them: id, ARN,
    /// status and whether their agent is connected.
    fn instances_seen(&self, cluster: &str) -> EcsResult<Vec<hosts::Instance>> {
        self.implicit_instance(&self.cluster(Some(cluster))?)?;
        let mut out = Vec::new();
        for (_, rec) in self.store.list(&keys::instances_of(cluster))? {
            let ci: crate::model::ContainerInstance = decode(&rec.value)?;
            out.push(hosts::Instance {
                connected: self.agent_connected(cluster, ci.id())?,
                id: ci.id().to_string(),
                arn: ci.container_instance_arn,
                status: ci.status,
            });
        }
        Ok(out)
    }

    /// ARNs of the cluster's ACTIVE, connected container instances, where
    /// a DAEMON service runs a task each.
    fn daemon_instances(&self, cluster: &crate::model::Cluster) -> EcsResult<Vec<String>> {
        Ok(hosts::daemon_instances(
            &self.instances_seen(&cluster.cluster_name)?,
        ))
    }

    /// Record what the circuit breaker decided for the PRIMARY deployment
    /// (its failed count, a FAILED rollout, the deployment rolling back)
    /// and its events.
    fn circuit_breaker(
        &self,
        cluster: &str,
        service: Service,
        ours: &[&Task],
    ) -> EcsResult<Service> {
        let Some(breaker) = deployments::circuit_breaker(&service, ours) else {
            return Ok(service);
        };
        let rollback_to = match &breaker.rollback_to {
            Some(td) => Some(self.active_task_definition(td)?),
            None => None,
        };
        let at = now();
        let mut events = Vec::new();
        let updated = self.update_service_record(cluster, &service.service_name, |s| {
            let rollback = match &rollback_to {
                Some(td) => Some((td, deployment_id()?)),
                None => None,
            };
            events = deployments::apply_breaker(s, &breaker, rollback, &at)?;
            Ok(())
        })?;
        self.add_events(cluster, &updated.service_name, events)
    }

    /// Add `messages` as the service's newest events.
    fn add_events(&self, cluster: &str, name: &str, messages: Vec<String>) -> EcsResult<Service> {
        let at = now();
        let mut fresh = Vec::new();
        for message in messages {
            fresh.push(ServiceEvent {
                id: random_hex32()
                    .map_err(|e| EcsError::new(ErrorKind::ServerException, e.to_string()))?,
                created_at: at.clone(),
                message,
            });
        }
        self.update_service_record(cluster, name, |s| {
            for e in fresh.iter().rev() {
                s.events.insert(0, e.clone());
            }
            s.events.truncate(MAX_EVENTS);
            Ok(())
        })
    }

    /// Counts, deployment states and events after a pass.
    fn record_pass(
        &self,
        cluster: &str,
        seen: &Service,
        ours: &[&Task],
        p: &deployments::Plan,
        mut events: Vec<String>,
    ) -> EcsResult<()> {
        let clock = chrono::Utc::now();
        events.extend(deployments::steady_event(seen, ours, p, clock));
        let at = now();
        self.update_service_record(cluster, &seen.service_name, |s| {
            deployments::record_pass(s, seen, ours, p, clock, &at);
            Ok(())
        })?;
        self.add_events(cluster, &seen.service_name, events)?;
        Ok(())
    }

    /// Names of clusters with a service that is not INACTIVE.
    pub fn clusters_with_services(&self) -> EcsResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (key, rec) in self.store.list(keys::SERVICES)? {
            let s: Service = decode(&rec.value)?;
            let cluster = keys::service_cluster(&key).unwrap_or_default().to_string();
            if s.status != ServiceStatus::Inactive && !out.contains(&cluster) {
                out.push(cluster);
            }
        }
        Ok(out)
    }
}

/// A new PRIMARY deployment of `td`, with a fresh id.
fn new_deployment(
    td: &TaskDefinition,
    desired: u32,
    launch_type: &LaunchType,
    at: &str,
) -> EcsResult<Deployment> {
    deployments::new_deployment(td, desired, launch_type, deployment_id()?, at)
}

/// `ecs-svc/` and 20 random hex digits, as ECS names deployments.
fn deployment_id() -> EcsResult<String> {
    let digits: String = random_hex32()
        .map_err(|e| EcsError::new(ErrorKind::ServerException, e.to_string()))?
        .chars()
        .take(20)
        .collect();
    Ok(format!("ecs-svc/{digits}"))
}

//! run-task and start-task as named steps, each failing with ECS's
//! `Failure` (a request error is an `EcsError`):
//!
//! 1. validate ([`Ecs::validate`], `request.rs`): cluster, count,
//!    definition, launch type, network mode, overrides, needs;
//! 2. place (`decide.rs`): over a snapshot of the candidate instances
//!    ([`Ecs::snapshot`]), addresses and ephemeral host ports, then the
//!    scheduler's `place_tasks`;
//! 3. reserve (`record.rs`): the task record and its addresses, host ports
//!    and the instance's capacity as store operations;
//! 4. commit ([`Ecs::place_one`]): one transaction per task, the instance
//!    at the revision the snapshot read; a conflict (a concurrent run-task
//!    took a port, an address or capacity) retries from place on a fresh
//!    snapshot, so none is ever over-committed.
//!
//! One snapshot serves all of a run-task's `count`: after each commit the
//! chosen candidate is updated in place from what was committed
//! ([`Snapshot::apply`]: its new record and revision, ports, addresses,
//! group), so the next task sees it without reading the store again. The
//! snapshot reads a cluster's instances, agent leases and (when the task
//! maps host ports) held ports in one range read each, and the task
//! groups (when placement reads them) as a narrow view of each task.
//!
//! This file is the store glue; the steps' decisions are pure.

mod decide;
mod record;
mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::{decode, now, public, retry, Ecs};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::random_hex32;
use crate::model::{name_from_arn, ContainerInstance, Failure, LaunchType, Task};
use crate::store::{keys, StoreError};
use decide::{decide, groups_by_host, Candidate, Decision, PlacedTask, Snapshot};
use request::Validated;
pub(crate) use request::{launch_type_for, strategy_for};
pub use request::{task_needs, RunTask};

/// The tasks placed and the failures, in order, as run-task answers.
#[derive(Default)]
struct Outcome {
    tasks: Vec<Task>,
    failures: Vec<Failure>,
}

impl Outcome {
    fn push(&mut self, placed: Result<Task, Failure>) {
        match placed {
            Ok(task) => self.tasks.push(task),
            Err(f) => self.failures.push(f),
        }
    }

    fn response(self) -> (Value, Vec<Task>) {
        let shown: Vec<Value> = self.tasks.iter().map(public).collect();
        (
            json!({ "tasks": shown, "failures": self.failures }),
            self.tasks,
        )
    }
}

impl Ecs {
    /// Place and record up to `count` tasks, reserving their addresses,
    /// host ports, CPU and memory in the same transaction as each task;
    /// what runs out becomes `failures`, as ECS answers.
    /// With a `clientToken`, a retry answers the first call's result
    /// (`idempotency.rs`).
    pub fn run_task(&self, req: &RunTask) -> EcsResult<(Value, Vec<Task>)> {
        match &req.client_token {
            Some(token) => self.run_task_once(req, token),
            None => self.run_task_fresh(req),
        }
    }

    /// run-task itself: each task takes the next capacity provider of the
    /// strategy (if any) as it is placed.
    pub(super) fn run_task_fresh(&self, req: &RunTask) -> EcsResult<(Value, Vec<Task>)> {
        let mut v = self.validate(req)?;
        // This host's instance exists in the cluster on first use (with a
        // store of its own; with a shared one, agents register hosts).
        self.implicit_instance(&v.cluster)?;
        let mut outcome = Outcome::default();
        let mut snapshot = None;
        let mut running = req.capacity_running.clone();
        for _ in 0..req.count {
            v.capacity_provider = crate::capacity::next_provider(&v.strategy, &running);
            let placed = self.place_one(&v, None, &mut snapshot)?;
            if let (Ok(_), Some(p)) = (&placed, &v.capacity_provider) {
                *running.entry(p.clone()).or_insert(0) += 1;
            }
            outcome.push(placed);
        }
        Ok(outcome.response())
    }

    /// `start-task`: one task on each named container instance of the
    /// cluster; names it does not have are `MISSING`.
    pub fn start_task(
        &self,
        req: &RunTask,
        container_instances: &[String],
    ) -> EcsResult<(Value, Vec<Task>)> {
        let cluster = self.cluster(req.cluster.as_deref())?;
        self.implicit_instance(&cluster)?;
        if container_instances.is_empty() || container_instances.len() > 10 {
            return Err(EcsError::invalid(
                "containerInstances: name 1 to 10 container instances",
            ));
        }
        let registered = self.instance_ids(&cluster.cluster_name)?;
        let (named, missing): (Vec<&String>, Vec<&String>) = container_instances
            .iter()
            .partition(|ci| registered.contains(name_from_arn(ci)));
        if named.is_empty() {
            let missing: Vec<Failure> = missing.iter().map(|ci| Failure::missing(ci)).collect();
            return Ok((json!({ "tasks": [], "failures": missing }), Vec::new()));
        }
        let v = self.validate(&RunTask {
            count: u32::try_from(named.len()).unwrap_or(u32::MAX),
            launch_type: Some(LaunchType::Ec2),
            ..req.clone()
        })?;
        let mut outcome = Outcome::default();
        for ci in named {
            outcome.push(self.place_one(&v, Some(name_from_arn(ci)), &mut None)?);
        }
        outcome
            .failures
            .extend(missing.iter().map(|ci| Failure::missing(ci)));
        Ok(outcome.response())
    }

    /// A DAEMON service's starts: one task of `req` on each of
    /// `instances` (ids or ARNs); one that cannot take it is a failure.
    pub(crate) fn run_task_on(
        &self,
        req: &RunTask,
        instances: &[String],
    ) -> EcsResult<(Value, Vec<Task>)> {
        let mut outcome = Outcome::default();
        if instances.is_empty() {
            return Ok(outcome.response());
        }
        let v = self.validate(&RunTask {
            count: 1,
            ..req.clone()
        })?;
        for ci in instances {
            outcome.push(self.place_one(&v, Some(name_from_arn(ci)), &mut None)?);
        }
        Ok(outcome.response())
    }

    /// Step 1: what the request and its definition settle for all tasks.
    fn validate(&self, req: &RunTask) -> EcsResult<Validated> {
        let cluster = self.cluster(req.cluster.as_deref())?;
        if !(1..=10).contains(&req.count) {
            return Err(EcsError::invalid("count: must be between 1 and 10"));
        }
        let td = self.active_task_definition(&req.task_definition)?;
        let net = self.cluster_network(&cluster)?;
        Validated::new(req, cluster, td, net)
    }

    /// Steps 2 to 4 for one task, on the instance `only` when given: place
    /// on `cached` (read when None), reserve, commit; the commit is booked
    /// on the snapshot for the run-task's next task. A conflict drops the
    /// snapshot and starts over on a fresh one, and so does a failure
    /// found on a snapshot read for an earlier task (what others freed
    /// since counts), so a failure is always a fresh snapshot's.
    fn place_one(
        &self,
        v: &Validated,
        only: Option<&str>,
        cached: &mut Option<Snapshot>,
    ) -> EcsResult<Result<Task, Failure>> {
        let id =
            random_hex32().map_err(|e| EcsError::new(ErrorKind::ServerException, e.to_string()))?;
        // The task's own random id seeds a `random` strategy.
        let seed = u64::from_str_radix(&id[..16], 16).unwrap_or_default();
        let mut fresh = false;
        retry(|| {
            let snapshot = match cached.take() {
                Some(snapshot) if !fresh => snapshot,
                _ => {
                    fresh = true;
                    self.snapshot(v, only)?
                }
            };
            let snapshot = cached.insert(Snapshot { seed, ..snapshot });
            let decision = match decide(v, snapshot) {
                Ok(decision) => decision,
                Err(failure) if fresh => return Ok(Ok(Err(failure))),
                // Found on a snapshot of an earlier task: read again.
                Err(_) => {
                    *cached = None;
                    return Ok(Err(StoreError::Conflict("snapshot".into())));
                }
            };
            let (task, ops) = reserve(self, v, &id, &decision)?;
            match self.store.commit(&ops) {
                Ok(revision) => {
                    let committed =
                        record::reserved_instance(v, &decision).map(|record| (record, revision));
                    snapshot.apply(&decision, committed, &v.group);
                    Ok(Ok(Ok(task)))
                }
                Err(e) => {
                    *cached = None;
                    Ok(Err(e))
                }
            }
        })
    }

    /// What the place step reads: the candidate instances (those whose
    /// agent lives) with the host ports held on them and the groups of
    /// their tasks, and the addresses taken on the task's bridge. One
    /// range read each, whatever the cluster's size.
    fn snapshot(&self, v: &Validated, only: Option<&str>) -> EcsResult<Snapshot> {
        let cluster = &v.cluster.cluster_name;
        // Every host's tasks, so that spread and distinctInstance see them.
        let mut groups = if v.reads_task_groups() {
            let placed = self
                .store
                .list(&keys::tasks_of(cluster))?
                .into_iter()
                .map(|(_, rec)| decode::<PlacedTask>(&rec.value))
                .collect::<EcsResult<Vec<_>>>()?;
            groups_by_host(&placed)
        } else {
            Default::default()
        };
        // A host whose agent is gone runs nothing new.
        let connected = self.connected_agents(cluster)?;
        let mut held = self.held_ports(&v.protocols())?;
        let mut instances = Vec::new();
        for (_, rec) in self.store.list(&keys::instances_of(cluster))? {
            let ci: ContainerInstance = decode(&rec.value)?;
            if only.is_some_and(|id| id != ci.id())
                || connected.as_ref().is_some_and(|c| !c.contains(ci.id()))
            {
                continue;
            }
            let ports = held.remove(ci.id()).unwrap_or_default();
            let task_groups = groups.remove(ci.id()).unwrap_or_default();
            let mut candidate = Candidate::new(ci, rec.revision, ports, task_groups);
            if v.addresses_wanted() > 0 {
                let slice = self.host_slice(&v.net, candidate.record.id())?;
                candidate = candidate.with_slice(slice);
            }
            instances.push(candidate);
        }
        let taken_addresses = if v.addresses_wanted() > 0 {
            self.taken_addresses(&v.net.bridge)?
        } else {
            BTreeSet::new()
        };
        Ok(Snapshot {
            instances,
            taken_addresses,
            seed: 0,
        })
    }

    /// The ids of `cluster`'s container instances.
    fn instance_ids(&self, cluster: &str) -> EcsResult<BTreeSet<String>> {
        self.store
            .list(&keys::instances_of(cluster))?
            .into_iter()
            .map(|(_, rec)| Ok(decode::<ContainerInstance>(&rec.value)?.id().to_string()))
            .collect()
    }

    /// The host ports of `protocols` held on each host (by tasks or load
    /// balancer listeners), in one range read over every host's; none
    /// read when the task maps no host port.
    fn held_ports(
        &self,
        protocols: &BTreeSet<&str>,
    ) -> EcsResult<BTreeMap<String, BTreeSet<(String, u16)>>> {
        let mut held: BTreeMap<String, BTreeSet<(String, u16)>> = BTreeMap::new();
        if protocols.is_empty() {
            return Ok(held);
        }
        for (key, _) in self.store.list(keys::PORTS)? {
            if let Some(p) = keys::parse_port(&key).filter(|p| protocols.contains(p.protocol)) {
                held.entry(p.host.to_string())
                    .or_default()
                    .insert((p.protocol.to_string(), p.port));
            }
        }
        Ok(held)
    }

    /// Addresses on `bridge` that some task holds.
    fn taken_addresses(&self, bridge: &str) -> EcsResult<BTreeSet<Ipv4Addr>> {
        Ok(self
            .store
            .list(&keys::ips_of(bridge))?
            .into_iter()
            .filter_map(|(k, _)| keys::parse_ip(&k))
            .collect())
    }
}

/// Step 3: the task record on its chosen instance and the operations that
/// commit it with its reservations.
fn reserve(
    ecs: &Ecs,
    v: &Validated,
    id: &str,
    decision: &Decision,
) -> EcsResult<(Task, Vec<crate::store::Op>)> {
    let mut task = record::new_task(&ecs.partition, v, id, &decision.record, now());
    record::place_on_network(v, &mut task, decision);
    let ops = record::reservation_ops(v, &mut task, decision)?;
    Ok((task, ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;
    use crate::model::TaskDefinition;

    /// A family whose tasks need a third of the host's memory.
    fn third_of_the_host(ecs: &Ecs) -> i64 {
        let cluster = ecs.cluster(None).expect("cluster");
        let memory = ecs
            .host_instance(&cluster)
            .expect("host")
            .remaining("MEMORY")
            / 3;
        let td: TaskDefinition = serde_json::from_value(json!({
            "family": "third",
            "networkMode": "host",
            "containerDefinitions": [{ "name": "a", "image": "busybox", "memory": memory }],
        }))
        .expect("td");
        ecs.register_task_definition(td).expect("register");
        memory
    }

    fn run(ecs: &Ecs, count: u32) -> (Vec<Task>, Vec<String>) {
        let req = RunTask {
            task_definition: "third".into(),
            count,
            ..Default::default()
        };
        let (out, tasks) = ecs.run_task(&req).expect("run-task");
        let reasons = out["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .map(|f| f["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        (tasks, reasons)
    }

    fn remaining_memory(ecs: &Ecs) -> i64 {
        let cluster = ecs.cluster(None).expect("cluster");
        ecs.host_instance(&cluster)
            .expect("host")
            .remaining("MEMORY")
    }

    #[test]
    fn tasks_take_the_instance_until_it_is_full() {
        let (_d, ecs) = ecs();
        let before = remaining_memory(&ecs);
        let third = third_of_the_host(&ecs);
        let (tasks, reasons) = run(&ecs, 4);
        assert_eq!(tasks.len(), 3);
        assert_eq!(reasons, ["RESOURCE:MEMORY"]);
        assert_eq!(remaining_memory(&ecs), before - 3 * third);
        // Stopping one gives its memory back: the next one fits.
        let stopped = &tasks[0];
        ecs.update_task("default", stopped.id(), |t| {
            t.last_status = crate::model::TaskStatus::Stopped
        })
        .expect("stop");
        assert_eq!(run(&ecs, 1).0.len(), 1);
    }

    #[test]
    fn concurrent_run_tasks_never_over_commit() {
        let (_d, ecs) = ecs();
        let before = remaining_memory(&ecs);
        let third = third_of_the_host(&ecs);
        let placed: usize = std::thread::scope(|s| {
            let runs: Vec<_> = (0..3).map(|_| s.spawn(|| run(&ecs, 2).0.len())).collect();
            runs.into_iter().map(|r| r.join().expect("thread")).sum()
        });
        assert_eq!(placed, 3);
        assert_eq!(remaining_memory(&ecs), before - 3 * third);
    }

    #[test]
    fn start_task_places_on_the_named_instances() {
        let (_d, ecs) = ecs();
        third_of_the_host(&ecs);
        let cluster = ecs.cluster(None).expect("cluster");
        let here = ecs.host_instance(&cluster).expect("host");
        let req = RunTask {
            task_definition: "third".into(),
            ..Default::default()
        };
        let named = [here.container_instance_arn.clone(), "elsewhere".to_string()];
        let (out, tasks) = ecs.start_task(&req, &named).expect("start-task");
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            tasks[0].container_instance_arn.as_deref(),
            Some(here.container_instance_arn.as_str())
        );
        assert_eq!(out["failures"][0]["arn"], "elsewhere");
        assert_eq!(out["failures"][0]["reason"], "MISSING");
        let (out, tasks) = ecs
            .start_task(&req, &["elsewhere".to_string()])
            .expect("none");
        assert!(tasks.is_empty());
        assert_eq!(out["failures"].as_array().map(Vec::len), Some(1));
    }
}

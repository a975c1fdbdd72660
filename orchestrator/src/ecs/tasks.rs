//! Tasks: the task state machine as records in the store.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{decode, encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::model::{
    name_from_arn, ContainerInstance, DesiredStatus, Failure, StopCode, Task, TaskStatus,
};
use crate::names;
use crate::store::{keys, Expect, Op};

/// list-tasks' filters (each None: any).
#[derive(Clone, Debug, Default)]
pub struct TaskFilter<'a> {
    /// RUNNING (the default) or STOPPED.
    pub desired_status: Option<DesiredStatus>,
    pub family: Option<&'a str>,
    pub started_by: Option<&'a str>,
    pub container_instance: Option<&'a str>,
    pub service_name: Option<&'a str>,
}

impl Ecs {
    pub fn task(&self, cluster: &str, id: &str) -> EcsResult<Task> {
        let rec = self
            .store
            .get(&keys::task(cluster, names::lookup("task", id)?))?
            .ok_or_else(|| {
                EcsError::invalid(format!("task {id}: not found in cluster {cluster}"))
            })?;
        decode(&rec.value)
    }

    /// Change a task with `change` (re-run on conflicts). A task becoming
    /// STOPPED gives its reservation back in the same transaction.
    pub fn update_task(
        &self,
        cluster: &str,
        id: &str,
        mut change: impl FnMut(&mut Task),
    ) -> EcsResult<Task> {
        // A stop asked for here reaches the task's supervisor at once.
        let mut stop_asked = false;
        let task = retry(|| {
            stop_asked = false;
            let key = keys::task(cluster, id);
            let rec = self
                .store
                .get(&key)?
                .ok_or_else(|| EcsError::invalid(format!("task {id}: not found")))?;
            let before: Task = decode(&rec.value)?;
            let mut task = before.clone();
            change(&mut task);
            // STOPPED is final: a late writer (the supervisor of a task
            // the cluster stopped when its host was lost) never brings it
            // back, nor gives its reservations back twice.
            if before.is_stopped() {
                task.last_status = TaskStatus::Stopped;
                task.desired_status = DesiredStatus::Stopped;
            }
            if task == before {
                return Ok(Ok(task));
            }
            task.version += 1;
            let mut ops = vec![Op::Put {
                key,
                value: encode(&task)?,
                expect: Expect::Revision(rec.revision),
            }];
            if task.is_stopped() && !before.is_stopped() {
                if let Some(net) = task.berth.as_ref().and_then(|b| b.network.as_ref()) {
                    ops.push(Op::Delete {
                        key: keys::ip(&net.bridge, &net.address),
                        expect: Expect::Any,
                    });
                }
                for cn in task.berth.iter().flat_map(|b| b.container_networks.iter()) {
                    ops.push(Op::Delete {
                        key: keys::ip(&cn.network.bridge, &cn.network.address),
                        expect: Expect::Any,
                    });
                }
                if let (Some(b), Some(arn)) = (&task.berth, &task.container_instance_arn) {
                    for hp in &b.host_ports {
                        ops.push(Op::Delete {
                            key: keys::port(name_from_arn(arn), &hp.protocol, hp.host_port),
                            expect: Expect::Any,
                        });
                    }
                }
                if let (Some(arn), Some(b)) = (&task.container_instance_arn, &task.berth) {
                    let ikey = keys::instance(cluster, name_from_arn(arn));
                    if let Some(irec) = self.store.get(&ikey)? {
                        let mut ci: ContainerInstance = decode(&irec.value)?;
                        ci.release(b.reserved_cpu, b.reserved_memory);
                        ci.version += 1;
                        ops.push(Op::Put {
                            key: ikey,
                            value: encode(&ci)?,
                            expect: Expect::Revision(irec.revision),
                        });
                    }
                }
            }
            stop_asked = task.desired_status == DesiredStatus::Stopped
                && before.desired_status != DesiredStatus::Stopped;
            Ok(self.store.commit(&ops).map(|_| task))
        })?;
        if stop_asked && self.is_local(&task) {
            crate::supervisor::wake_supervisor(&task);
        }
        Ok(task)
    }

    pub fn describe_tasks(&self, cluster: Option<&str>, ids: &[String]) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            if let Err(e) = names::check("tasks", name_from_arn(id)) {
                failures.push(Failure::on(id, "MISSING", Some(e.message)));
                continue;
            }
            match self
                .store
                .get(&keys::task(&cluster.cluster_name, name_from_arn(id)))?
            {
                Some(rec) => tasks.push(public(&decode(&rec.value)?)),
                None => failures.push(Failure::missing(id)),
            }
        }
        Ok(json!({ "tasks": tasks, "failures": failures }))
    }

    pub fn list_tasks(&self, cluster: Option<&str>, filter: &TaskFilter<'_>) -> EcsResult<Value> {
        let TaskFilter {
            desired_status,
            family,
            started_by,
            container_instance,
            service_name,
        } = filter;
        let cluster = self.cluster(cluster)?;
        let desired = desired_status.as_ref().unwrap_or(&DesiredStatus::Running);
        let mut arns = Vec::new();
        // Only the fields the filters need: listing reads every task.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listed {
            task_arn: String,
            task_definition_arn: String,
            desired_status: DesiredStatus,
            #[serde(default)]
            started_by: Option<String>,
            #[serde(default)]
            container_instance_arn: Option<String>,
            #[serde(default)]
            group: Option<String>,
        }
        for (_, rec) in self.store.list(&keys::tasks_of(&cluster.cluster_name))? {
            let t: Listed = decode(&rec.value)?;
            let family_of = name_from_arn(&t.task_definition_arn)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            let keep = t.desired_status == *desired
                && family.is_none_or(|f| f == family_of)
                && started_by.is_none_or(|s| t.started_by.as_deref() == Some(s))
                && service_name.is_none_or(|s| {
                    t.group.as_deref().and_then(|g| g.strip_prefix("service:")) == Some(s)
                })
                && container_instance.is_none_or(|ci| {
                    t.container_instance_arn
                        .as_deref()
                        .is_some_and(|a| a == ci || name_from_arn(a) == ci)
                });
            if keep {
                arns.push(t.task_arn);
            }
        }
        Ok(json!({ "taskArns": arns }))
    }

    /// Ask a task to stop; its supervisor stops the containers.
    pub fn stop_task(
        &self,
        cluster: Option<&str>,
        id: &str,
        reason: Option<&str>,
    ) -> EcsResult<Task> {
        self.stop_task_as(cluster, id, StopCode::UserInitiated, reason)
    }

    /// Ask task `id` to stop, saying who asked (`stop_code`: UserInitiated,
    /// ServiceSchedulerInitiated…).
    pub fn stop_task_as(
        &self,
        cluster: Option<&str>,
        id: &str,
        stop_code: StopCode,
        reason: Option<&str>,
    ) -> EcsResult<Task> {
        let cluster = self.cluster(cluster)?;
        let id = names::lookup("task", id)?.to_string();
        self.task(&cluster.cluster_name, &id)?;
        self.update_task(&cluster.cluster_name, &id, |t| {
            if t.desired_status != DesiredStatus::Stopped {
                t.desired_status = DesiredStatus::Stopped;
                t.stop_code.get_or_insert_with(|| stop_code.clone());
                t.stopped_reason
                    .get_or_insert_with(|| reason.unwrap_or("Task stopped by user").to_string());
                t.stopping_at.get_or_insert_with(now);
            }
        })
    }
}

/// A task as ECS shows it: without berth's bookkeeping.
pub fn public(task: &Task) -> Value {
    let mut t = task.clone();
    t.berth = None;
    serde_json::to_value(t).unwrap_or(Value::Null)
}

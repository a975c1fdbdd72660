//! Hosts of a shared store (issue 13): what an agent may register, when an
//! instance counts as lost, and what a lost host's tasks become. The store
//! glue (`ecs::agents`) reads the instances, their agents' leases and the
//! tasks, and commits what this decides.

use crate::error::{EcsError, EcsResult};
use crate::model::{Attribute, DesiredStatus, InstanceStatus, StopCode, Task, TaskStatus};

/// The `ecs.` attributes an agent may set itself (`--attributes`); the
/// others (`ecs.os-type`, `ecs.cpu-architecture`) are the host's facts.
pub const AGENT_SETTABLE: [&str; 2] = ["ecs.availability-zone", "ecs.instance-type"];

/// Parse `--attributes k=v,k2=v2` (a name alone has no value, as ECS
/// allows), refusing the reserved `ecs.` names an agent may not set.
pub fn parse_attributes(spec: &str) -> EcsResult<Vec<Attribute>> {
    let mut out: Vec<Attribute> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (part, None),
        };
        check_attribute_name(name)?;
        out.retain(|a| a.name != name);
        out.push(Attribute {
            name: name.to_string(),
            value,
        });
    }
    Ok(out)
}

/// ECS's attribute name rule: 1-128 letters, digits, `- _ . / @ :`.
pub fn attribute_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@:".contains(c))
}

pub fn check_attribute_name(name: &str) -> EcsResult<()> {
    if !attribute_name_ok(name) {
        return Err(EcsError::invalid(format!(
            "--attributes: {name:?} is not an attribute name (1-128 letters, digits, - _ . / @ :)"
        )));
    }
    if name.starts_with("ecs.") && !AGENT_SETTABLE.contains(&name) {
        return Err(EcsError::invalid(format!(
            "--attributes: {name}: names starting with ecs. are reserved (an agent may set {})",
            AGENT_SETTABLE.join(" and ")
        )));
    }
    Ok(())
}

/// `base` (the instance's attributes) with `given` set over it, by name.
pub fn merge_attributes(base: &[Attribute], given: &[Attribute]) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = base
        .iter()
        .filter(|a| !given.iter().any(|g| g.name == a.name))
        .cloned()
        .collect();
    out.extend(given.iter().cloned());
    out
}

/// A container instance as the host-loss check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The instance id (the host's).
    pub id: String,
    /// What its record says (`agentConnected`).
    pub recorded_connected: bool,
    /// Whether its agent's lease lives now.
    pub lease_alive: bool,
}

/// What a reconcile pass does about lost hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostLoss {
    /// Instances to record as disconnected (their agent's lease expired).
    pub disconnect: Vec<String>,
    /// Tasks (id, stoppedReason) to mark STOPPED: placed on a lost
    /// instance and not STOPPED yet.
    pub stop: Vec<(String, String)>,
}

/// Why a lost instance's task stopped: the instance is named.
pub fn lost_reason(instance: &str) -> String {
    format!("Container instance {instance} was lost: its agent stopped renewing its lease")
}

/// Decide for a cluster whose instances are `instances` and tasks `tasks`:
/// every instance whose agent's lease is gone is lost, whatever its record
/// says (a pass that died midway left some of its tasks running), and its
/// tasks not yet STOPPED stop, naming it. Tasks of hosts the cluster does
/// not know (a deregistered instance) are left to whoever deregistered it.
pub fn host_loss(instances: &[Seen], tasks: &[Task]) -> HostLoss {
    let lost: Vec<&Seen> = instances.iter().filter(|i| !i.lease_alive).collect();
    let disconnect = lost
        .iter()
        .filter(|i| i.recorded_connected)
        .map(|i| i.id.clone())
        .collect();
    let stop = tasks
        .iter()
        .filter(|t| !t.is_stopped())
        .filter_map(|t| {
            let host = t.host_id()?;
            lost.iter()
                .any(|i| i.id == host)
                .then(|| (t.id().to_string(), lost_reason(host)))
        })
        .collect();
    HostLoss { disconnect, stop }
}

/// A lost host's task `t`, STOPPED at `at` (nobody is left there to stop
/// it), with its containers, naming the instance.
pub fn stop_lost(t: &mut Task, reason: &str, at: &str) {
    if t.is_stopped() {
        return;
    }
    t.last_status = TaskStatus::Stopped;
    t.desired_status = DesiredStatus::Stopped;
    t.stop_code = Some(StopCode::TerminationNotice);
    t.stopped_reason = Some(reason.to_string());
    t.stopping_at.get_or_insert_with(|| at.to_string());
    t.execution_stopped_at.get_or_insert_with(|| at.to_string());
    t.stopped_at = Some(at.to_string());
    for c in &mut t.containers {
        c.last_status = TaskStatus::Stopped;
    }
}

/// Whether a task placed on `task_host` is this host's (`here`) to run,
/// adopt, reap and clean up: supervisor pids and containers are local. A
/// record that names no host is from a single-host berth: this host's.
pub fn is_local(task_host: Option<&str>, here: &str) -> bool {
    task_host.is_none_or(|h| h == here)
}

/// A container instance as a reconcile pass sees it.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub arn: String,
    pub status: InstanceStatus,
    pub connected: bool,
}

/// ARNs of the ACTIVE, connected instances of `instances`.
pub fn daemon_instances(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Active && i.connected)
        .map(|i| i.arn.clone())
        .collect()
}

/// Ids of the tasks of `ours` placed on a DRAINING instance.
pub fn on_draining_instances(ours: &[&Task], instances: &[Instance]) -> Vec<String> {
    ours.iter()
        .filter(|t| {
            let host = t.host_id();
            instances
                .iter()
                .any(|i| i.status == InstanceStatus::Draining && Some(i.id.as_str()) == host)
        })
        .map(|t| t.id().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskInternals;

    fn task(id: &str, host: &str, last: TaskStatus) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
            last_status: last,
            desired_status: DesiredStatus::Running,
            berth: Some(TaskInternals {
                host: Some(host.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn seen(id: &str, recorded: bool, alive: bool) -> Seen {
        Seen {
            id: id.into(),
            recorded_connected: recorded,
            lease_alive: alive,
        }
    }

    #[test]
    fn a_lost_hosts_live_tasks_stop_naming_it() {
        let instances = [seen("a", true, true), seen("b", true, false)];
        let tasks = [
            task("t1", "a", TaskStatus::Running),
            task("t2", "b", TaskStatus::Running),
            task("t3", "b", TaskStatus::Pending),
            task("t4", "b", TaskStatus::Stopped),
        ];
        let d = host_loss(&instances, &tasks);
        assert_eq!(d.disconnect, ["b"]);
        assert_eq!(
            d.stop,
            [
                ("t2".to_string(), lost_reason("b")),
                ("t3".to_string(), lost_reason("b"))
            ]
        );
        assert!(lost_reason("b").contains("Container instance b"));
    }

    #[test]
    fn an_instance_recorded_lost_is_not_recorded_again_but_its_tasks_still_stop() {
        let d = host_loss(
            &[seen("b", false, false)],
            &[task("t", "b", TaskStatus::Running)],
        );
        assert!(d.disconnect.is_empty());
        assert_eq!(d.stop.len(), 1);
    }

    #[test]
    fn live_hosts_and_unknown_hosts_are_left_alone() {
        let d = host_loss(
            &[seen("a", true, true)],
            &[
                task("t1", "a", TaskStatus::Running),
                task("t2", "gone", TaskStatus::Running),
            ],
        );
        assert_eq!(d, HostLoss::default());
        // A task of no host (an old record) belongs to no lost instance.
        let mut old = task("t3", "b", TaskStatus::Running);
        old.berth = None;
        assert!(host_loss(&[seen("b", true, false)], &[old]).stop.is_empty());
    }

    #[test]
    fn a_lost_task_is_stopped_with_its_containers_once() {
        let mut t = task("t", "b", TaskStatus::Running);
        t.containers = vec![Default::default()];
        t.stopped_reason = Some("Task stopped by user".into());
        stop_lost(&mut t, &lost_reason("b"), "2026-01-01T00:00:00Z");
        assert!(t.is_stopped());
        assert_eq!(t.desired_status, DesiredStatus::Stopped);
        assert_eq!(t.stop_code, Some(StopCode::TerminationNotice));
        assert_eq!(t.stopped_reason.as_deref(), Some(lost_reason("b").as_str()));
        assert_eq!(t.containers[0].last_status, TaskStatus::Stopped);
        let before = t.clone();
        stop_lost(&mut t, "again", "2027-01-01T00:00:00Z");
        assert_eq!(t, before, "a STOPPED task is left as it is");
    }

    #[test]
    fn daemons_go_to_active_connected_instances_and_drains_are_found() {
        let i = |id: &str, status: InstanceStatus, connected: bool| Instance {
            id: id.into(),
            arn: format!("arn/{id}"),
            status,
            connected,
        };
        let instances = [
            i("a", InstanceStatus::Active, true),
            i("b", InstanceStatus::Active, false),
            i("c", InstanceStatus::Draining, true),
        ];
        assert_eq!(daemon_instances(&instances), ["arn/a"]);
        let tasks = [
            task("t1", "a", TaskStatus::Running),
            task("t2", "c", TaskStatus::Running),
        ];
        let ours: Vec<&Task> = tasks.iter().collect();
        assert_eq!(on_draining_instances(&ours, &instances), ["t2"]);
    }

    #[test]
    fn tasks_are_local_to_the_host_they_were_placed_on() {
        assert!(is_local(Some("h1"), "h1"));
        assert!(!is_local(Some("h2"), "h1"));
        assert!(is_local(None, "h1"), "a single-host record");
    }

    #[test]
    fn agent_attributes_parse_and_reserved_names_are_refused() {
        let a = parse_attributes("ecs.availability-zone=az1, rack=r2,gpu,rack=r3").expect("ok");
        let names: Vec<(&str, Option<&str>)> = a
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("ecs.availability-zone", Some("az1")),
                ("gpu", None),
                ("rack", Some("r3"))
            ]
        );
        assert!(parse_attributes("").expect("none").is_empty());
        let e = parse_attributes("ecs.os-type=windows").expect_err("reserved");
        assert!(e.message.contains("--attributes: ecs.os-type"), "{e:?}");
        let e = parse_attributes("bad name=1").expect_err("invalid");
        assert!(e.message.contains("--attributes"), "{e:?}");
    }

    #[test]
    fn given_attributes_replace_the_base_by_name() {
        let a = |n: &str, v: &str| Attribute {
            name: n.into(),
            value: Some(v.into()),
        };
        let merged = merge_attributes(
            &[
                a("ecs.os-type", "linux"),
                a("ecs.instance-type", "berth-host"),
            ],
            &[a("ecs.instance-type", "big")],
        );
        assert_eq!(
            merged,
            [a("ecs.os-type", "linux"), a("ecs.instance-type", "big")]
        );
    }
}

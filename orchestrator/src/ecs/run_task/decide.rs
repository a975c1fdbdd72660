//! The place step: over a snapshot of the cluster read just before, which
//! instance takes one task, with which addresses and host ports, or ECS's
//! failure. Pure: the snapshot comes in, a decision goes out.
//!
//! The order of failures is run-task's: addresses (RESOURCE:ENI) first,
//! then ephemeral host ports, then what the scheduler checks (fixed host
//! ports, ACTIVE, CPU, memory).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::request::{Validated, EPHEMERAL_PORTS};
use berth_net::Subnet;

use serde::Deserialize;

use crate::model::{ContainerInstance, DesiredStatus, Failure, HostPort, TaskStatus};
use crate::scheduler::placement::{self, choose_one};

/// A container instance as read: its record and revision (the commit
/// expects it unchanged) and what placement sees of it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub record: ContainerInstance,
    pub revision: u64,
    pub placement: placement::Instance,
    /// The instance's slice of the cluster network, whence its tasks take
    /// their addresses; None: the whole network (one host).
    pub slice: Option<Subnet>,
}

impl Candidate {
    /// `held`: the host ports (protocol, port) reserved on the instance;
    /// `task_groups`: the group of each live task on it (read only when
    /// placement looks at groups).
    pub fn new(
        record: ContainerInstance,
        revision: u64,
        held: BTreeSet<(String, u16)>,
        task_groups: Vec<String>,
    ) -> Self {
        // The ports the host's agent reserves (ECS_RESERVED_PORTS) are
        // held as a task's are.
        let mut held = held;
        held.extend(crate::scheduler::reserved::reserved_ports(&record));
        let placement = placement::Instance {
            arn: record.container_instance_arn.clone(),
            id: record.id().to_string(),
            remaining_cpu: record.remaining("CPU"),
            remaining_memory: record.remaining("MEMORY"),
            attributes: record
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone().unwrap_or_default()))
                .collect::<BTreeMap<_, _>>(),
            task_groups,
            status: record.status.as_str().to_string(),
            host_ports: held,
        };
        Self {
            record,
            revision,
            placement,
            slice: None,
        }
    }

    /// The candidate with its host's slice of the network.
    pub fn with_slice(self, slice: Subnet) -> Self {
        Self {
            slice: Some(slice),
            ..self
        }
    }
}

/// What the place step reads: the candidate instances (the cluster's, or
/// the ones start-task names) and the addresses taken on the task's bridge.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub instances: Vec<Candidate>,
    pub taken_addresses: BTreeSet<Ipv4Addr>,
    /// Seeds a `random` strategy's choice.
    pub seed: u64,
}

/// Where one task goes and what it takes there.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decision {
    /// Where the chosen instance is in the snapshot's `instances`.
    pub index: usize,
    /// The chosen instance's record and revision, as read.
    pub record: ContainerInstance,
    pub revision: u64,
    /// The slice `addresses` come from: its gateway and prefix are the
    /// task's.
    pub slice: Subnet,
    pub addresses: Vec<Ipv4Addr>,
    /// The task's host ports, each 0 replaced by a free ephemeral one
    /// (marked `reserved`).
    pub host_ports: Vec<HostPort>,
}

/// Places one task of `v` on the snapshot, which it gives back as it was
/// ([`Snapshot::apply`] books what the commit took).
pub(crate) fn decide(v: &Validated, snapshot: &mut Snapshot) -> Result<Decision, Failure> {
    let first_arn = snapshot.instances.first().map(|c| c.placement.arn.clone());
    let first_arn = first_arn.as_deref();
    // Addresses first, per instance from its slice: one whose slice is
    // full cannot take the task, and when none can, that is the failure.
    let first_slice = snapshot.instances.first().and_then(|c| c.slice);
    let taken = &snapshot.taken_addresses;
    let mut addressed = Vec::new();
    for (index, c) in snapshot.instances.iter().enumerate() {
        let slice = c.slice.unwrap_or(v.net.subnet);
        if let Some(addresses) = pick_addresses(v, &slice, taken) {
            addressed.push((index, slice, addresses));
        }
    }
    let with_no_instance = first_arn.is_none() && pick_addresses(v, &v.net.subnet, taken).is_none();
    if (addressed.is_empty() && first_arn.is_some()) || with_no_instance {
        let full = first_slice.unwrap_or(v.net.subnet);
        return Err(failure(
            first_arn,
            "RESOURCE:ENI",
            format!("no free address in {full}"),
        ));
    }
    // Then ephemeral ports, per instance likewise.
    let any = !addressed.is_empty();
    let mut eligible = Vec::new();
    for (index, slice, addresses) in addressed {
        if let Some(ports) = pick_ephemeral_ports(&v.ports, &snapshot.instances[index].placement) {
            eligible.push((index, ports, slice, addresses));
        }
    }
    // Placement reads the eligible ones side by side: moved out of the
    // snapshot and back, not copied (thousands of them, once per task).
    let candidates: Vec<placement::Instance> = eligible
        .iter()
        .map(|e| std::mem::take(&mut snapshot.instances[e.0].placement))
        .collect();
    let outcome = choose_one(&candidates, &v.request(), &v.strategies, snapshot.seed);
    for (e, placement) in eligible.iter().zip(candidates) {
        snapshot.instances[e.0].placement = placement;
    }
    if eligible.is_empty() && any {
        return Err(failure(
            first_arn,
            "RESOURCE:PORTS",
            "no free ephemeral port".into(),
        ));
    }
    match outcome {
        Ok(chosen) => {
            let (index, host_ports, slice, addresses) = eligible.swap_remove(chosen);
            let c = &snapshot.instances[index];
            Ok(Decision {
                index,
                record: c.record.clone(),
                revision: c.revision,
                slice,
                addresses,
                host_ports,
            })
        }
        Err(f) => Err(f),
    }
}

impl Snapshot {
    /// Book on the snapshot what the commit of `decision` took, so that
    /// the next task of the same run-task is placed without reading the
    /// store again: the instance's `committed` record and revision (None:
    /// the commit left the record as it was, FARGATE), its host ports and
    /// a task of `group`, and the addresses. Only a commit that succeeded
    /// is booked; a conflict drops the snapshot instead.
    pub fn apply(
        &mut self,
        decision: &Decision,
        committed: Option<(ContainerInstance, u64)>,
        group: &str,
    ) {
        self.taken_addresses
            .extend(decision.addresses.iter().copied());
        let Some(c) = self.instances.get_mut(decision.index) else {
            return;
        };
        if let Some((record, revision)) = committed {
            c.placement.remaining_cpu = record.remaining("CPU");
            c.placement.remaining_memory = record.remaining("MEMORY");
            c.record = record;
            c.revision = revision;
        }
        c.placement.host_ports.extend(
            decision
                .host_ports
                .iter()
                .map(|hp| (hp.protocol.clone(), hp.host_port)),
        );
        c.placement.task_groups.push(group.to_string());
    }
}

/// What placement reads of a task record: only the fields that say its
/// group, where it runs and whether it is live, so that reading the
/// groups of a cluster's tens of thousands of tasks skips the rest of
/// each record (containers, network, overrides) instead of building it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlacedTask {
    #[serde(default)]
    container_instance_arn: Option<String>,
    last_status: TaskStatus,
    desired_status: DesiredStatus,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, rename = "x-berth")]
    berth: Option<PlacedOn>,
}

#[derive(Clone, Debug, Deserialize)]
struct PlacedOn {
    #[serde(default)]
    host: Option<String>,
}

impl PlacedTask {
    /// The host it was placed on, as [`crate::model::Task::host_id`] tells it.
    fn host_id(&self) -> Option<&str> {
        self.berth
            .as_ref()
            .and_then(|b| b.host.as_deref())
            .or_else(|| self.container_instance_arn.as_deref()?.rsplit('/').next())
    }
}

/// The group of each live task (not STOPPED, not being stopped), by the
/// host it was placed on: what spread, distinctInstance and memberOf's
/// `task:group` count on each instance.
pub(crate) fn groups_by_host(tasks: &[PlacedTask]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tasks {
        if t.last_status == TaskStatus::Stopped || t.desired_status == DesiredStatus::Stopped {
            continue;
        }
        if let (Some(host), Some(group)) = (t.host_id(), t.group.as_ref()) {
            out.entry(host.to_string()).or_default().push(group.clone());
        }
    }
    out
}

fn failure(arn: Option<&str>, reason: &str, detail: String) -> Failure {
    Failure {
        arn: arn.map(str::to_string),
        reason: reason.to_string(),
        detail: Some(detail),
    }
}

/// The task's addresses: the lowest free ones of `slice`, or None when
/// it runs out.
fn pick_addresses(
    v: &Validated,
    slice: &Subnet,
    taken: &BTreeSet<Ipv4Addr>,
) -> Option<Vec<Ipv4Addr>> {
    let mut used = taken.clone();
    let mut addresses = Vec::new();
    for _ in 0..v.addresses_wanted() {
        let ip = berth_net::allocate(slice, &used)?;
        used.insert(ip);
        addresses.push(ip);
    }
    Some(addresses)
}

/// `ports` with each host port of 0 given the lowest ephemeral port
/// `instance` does not hold (nor the task already took), as ECS does; None
/// when the range runs out.
fn pick_ephemeral_ports(
    ports: &[HostPort],
    instance: &placement::Instance,
) -> Option<Vec<HostPort>> {
    let mut ports = ports.to_vec();
    // Picks come lowest first, so the task's next pick of a protocol is
    // the lowest free port above its last one (None: that was the end).
    let mut next: BTreeMap<String, Option<u16>> = BTreeMap::new();
    for hp in ports.iter_mut().filter(|hp| hp.host_port == 0) {
        let from = match next.get(&hp.protocol) {
            Some(after_last) => (*after_last)?,
            None => *EPHEMERAL_PORTS.start(),
        };
        let port = instance.free_port(&hp.protocol, from..=*EPHEMERAL_PORTS.end())?;
        next.insert(hp.protocol.clone(), port.checked_add(1));
        hp.host_port = port;
        hp.reserved = true;
    }
    Some(ports)
}

#[cfg(test)]
mod tests {
    use super::super::request::fixtures::{bridge_td, validated};
    use super::*;
    use crate::model::{InstanceStatus, LaunchType, Resource, Task};

    fn instance(cpu: i64, memory: i64, status: InstanceStatus) -> ContainerInstance {
        let int = |name: &str, v: i64| Resource {
            name: name.into(),
            kind: "INTEGER".into(),
            integer_value: v,
            string_set_value: vec![],
        };
        ContainerInstance {
            container_instance_arn: "arn:aws:ecs:local:000000000000:container-instance/default/h1"
                .into(),
            status,
            remaining_resources: vec![int("CPU", cpu), int("MEMORY", memory)],
            ..Default::default()
        }
    }

    fn snapshot(record: ContainerInstance, held: &[(&str, u16)]) -> Snapshot {
        let held = held.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        Snapshot {
            instances: vec![Candidate::new(record, 7, held, Vec::new())],
            taken_addresses: BTreeSet::new(),
            seed: 0,
        }
    }

    fn reason(outcome: Result<Decision, Failure>) -> (String, Option<String>) {
        let f = outcome.expect_err("a failure");
        (f.reason, f.detail)
    }

    #[test]
    fn groups_are_the_live_tasks_by_host() {
        let t =
            |id: &str, host: &str, group: &str, last: TaskStatus, desired: DesiredStatus| Task {
                task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
                group: Some(group.into()),
                last_status: last,
                desired_status: desired,
                berth: Some(crate::model::TaskInternals {
                    host: Some(host.into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
        let (run, stop) = (DesiredStatus::Running, DesiredStatus::Stopped);
        let tasks = [
            t("1", "h1", "service:web", TaskStatus::Running, run.clone()),
            t("2", "h1", "family:x", TaskStatus::Pending, run.clone()),
            t("3", "h2", "service:web", TaskStatus::Running, run.clone()),
            t("4", "h2", "service:web", TaskStatus::Running, stop.clone()),
            t("5", "h3", "service:web", TaskStatus::Stopped, stop),
        ];
        // Read as run-task reads them: only the fields placement needs.
        let placed: Vec<PlacedTask> = tasks
            .iter()
            .map(|t| {
                let bytes = serde_json::to_vec(t).expect("encode");
                serde_json::from_slice(&bytes).expect("decode the placed view")
            })
            .collect();
        let groups = groups_by_host(&placed);
        assert_eq!(groups["h1"], ["service:web", "family:x"]);
        assert_eq!(groups["h2"], ["service:web"]);
        assert!(!groups.contains_key("h3"));
    }

    #[test]
    fn a_candidate_is_what_placement_sees_of_the_record() {
        let c = snapshot(
            instance(1024, 2048, InstanceStatus::Draining),
            &[("tcp", 80)],
        )
        .instances
        .remove(0);
        assert_eq!(c.placement.id, "h1");
        assert_eq!(
            (c.placement.remaining_cpu, c.placement.remaining_memory),
            (1024, 2048)
        );
        assert_eq!(c.placement.status, "DRAINING");
        assert!(c.placement.host_ports.contains(&("tcp".to_string(), 80)));
        assert_eq!(c.revision, 7);
    }

    #[test]
    fn places_with_the_lowest_free_addresses_and_ephemeral_ports() {
        let v = validated(bridge_td(), None);
        let mut snap = snapshot(
            instance(4096, 4096, InstanceStatus::Active),
            &[("tcp", 49153)],
        );
        snap.taken_addresses.insert(Ipv4Addr::new(10, 88, 0, 2));
        let d = decide(&v, &mut snap).expect("placed");
        assert_eq!(d.revision, 7);
        assert_eq!(
            d.addresses,
            [Ipv4Addr::new(10, 88, 0, 3), Ipv4Addr::new(10, 88, 0, 4)]
        );
        let ports: Vec<(u16, bool)> = d
            .host_ports
            .iter()
            .map(|p| (p.host_port, p.reserved))
            .collect();
        assert_eq!(ports, [(49154, true), (8080, false)]);
    }

    #[test]
    fn a_committed_task_is_booked_on_the_snapshot() {
        let mut td = bridge_td();
        td.container_definitions[1].port_mappings[0].host_port = Some(0);
        let v = validated(td, None);
        let mut snap = snapshot(instance(4096, 4096, InstanceStatus::Active), &[]);
        let first = decide(&v, &mut snap).expect("placed");
        let mut after = first.record.clone();
        after.adjust(v.signed_cpu, v.signed_memory);
        snap.apply(&first, Some((after.clone(), 9)), &v.group);
        let second = decide(&v, &mut snap).expect("placed again");
        // The instance as committed, at the commit's revision.
        assert_eq!((&second.record, second.revision), (&after, 9));
        let c = &snap.instances[0].placement;
        assert_eq!(c.remaining_memory, after.remaining("MEMORY"));
        assert_eq!(c.task_groups, std::slice::from_ref(&v.group));
        // Its ports and addresses are taken: the next ones come.
        let ports = |d: &Decision| d.host_ports.iter().map(|p| p.host_port).collect::<Vec<_>>();
        assert_eq!(
            (ports(&first), ports(&second)),
            (vec![49153, 49154], vec![49155, 49156])
        );
        assert!(second
            .addresses
            .iter()
            .all(|a| !first.addresses.contains(a)));
        // A FARGATE-like commit (no record written) keeps the revision.
        snap.apply(&second, None, &v.group);
        assert_eq!(snap.instances[0].revision, 9);
        // The subnet's 5 addresses are all but one taken now.
        assert_eq!(reason(decide(&v, &mut snap)).0, "RESOURCE:ENI");
    }

    #[test]
    fn a_fixed_host_port_booked_on_the_snapshot_is_held() {
        let v = validated(bridge_td(), None);
        let mut snap = snapshot(instance(4096, 4096, InstanceStatus::Active), &[]);
        let first = decide(&v, &mut snap).expect("placed");
        snap.apply(&first, None, &v.group);
        assert_eq!(
            reason(decide(&v, &mut snap)),
            ("RESOURCE:PORTS".into(), Some("8080/tcp".into()))
        );
    }

    #[test]
    fn two_ephemeral_ports_of_one_task_differ() {
        let mut td = bridge_td();
        td.container_definitions[1].port_mappings[0].host_port = Some(0);
        let v = validated(td, None);
        let d = decide(
            &v,
            &mut snapshot(instance(4096, 4096, InstanceStatus::Active), &[]),
        )
        .expect("placed");
        let ports: Vec<u16> = d.host_ports.iter().map(|p| p.host_port).collect();
        assert_eq!(ports, [49153, 49154]);
    }

    #[test]
    fn the_last_ephemeral_port_can_be_taken() {
        let v = validated(bridge_td(), None);
        let mut held: Vec<(&str, u16)> = EPHEMERAL_PORTS.map(|p| ("tcp", p)).collect();
        held.pop();
        let d = decide(
            &v,
            &mut snapshot(instance(4096, 4096, InstanceStatus::Active), &held),
        )
        .expect("placed");
        assert_eq!(d.host_ports[0].host_port, 65535);
        // Two of them do not fit in the one port left.
        let mut td = bridge_td();
        td.container_definitions[1].port_mappings[0].host_port = Some(0);
        let v = validated(td, None);
        let f = decide(
            &v,
            &mut snapshot(instance(4096, 4096, InstanceStatus::Active), &held),
        )
        .expect_err("one port left");
        assert_eq!(f.detail.as_deref(), Some("no free ephemeral port"));
    }

    #[test]
    fn failures_come_in_run_tasks_order() {
        let v = validated(bridge_td(), None);
        // Addresses first: a full subnet wins over everything else.
        let mut snap = snapshot(instance(0, 0, InstanceStatus::Draining), &[("tcp", 8080)]);
        snap.taken_addresses = (2..=6).map(|n| Ipv4Addr::new(10, 88, 0, n)).collect();
        let (r, detail) = reason(decide(&v, &mut snap));
        assert_eq!(
            (r.as_str(), detail.as_deref()),
            ("RESOURCE:ENI", Some("no free address in 10.88.0.0/29"))
        );
        // Then ephemeral ports.
        let every: Vec<(&str, u16)> = EPHEMERAL_PORTS.map(|p| ("tcp", p)).collect();
        let mut snap = snapshot(instance(0, 0, InstanceStatus::Draining), &every);
        assert_eq!(
            reason(decide(&v, &mut snap)),
            (
                "RESOURCE:PORTS".into(),
                Some("no free ephemeral port".into())
            )
        );
        // Then the scheduler's: fixed ports, ACTIVE, CPU, memory.
        let mut snap = snapshot(instance(0, 0, InstanceStatus::Draining), &[("tcp", 8080)]);
        assert_eq!(
            reason(decide(&v, &mut snap)),
            ("RESOURCE:PORTS".into(), Some("8080/tcp".into()))
        );
        let mut snap = snapshot(instance(0, 0, InstanceStatus::Draining), &[]);
        assert_eq!(
            reason(decide(&v, &mut snap)),
            (
                "AGENT".into(),
                Some("the container instance is DRAINING".into())
            )
        );
        let mut snap = snapshot(instance(255, 0, InstanceStatus::Active), &[]);
        assert_eq!(reason(decide(&v, &mut snap)), ("RESOURCE:CPU".into(), None));
        let mut snap = snapshot(instance(256, 127, InstanceStatus::Active), &[]);
        let arn = snap.instances[0].placement.arn.clone();
        let f = decide(&v, &mut snap).expect_err("memory");
        assert_eq!((f.reason.as_str(), f.arn), ("RESOURCE:MEMORY", Some(arn)));
        assert!(decide(
            &v,
            &mut snapshot(instance(256, 128, InstanceStatus::Active), &[])
        )
        .is_ok());
    }

    #[test]
    fn a_task_takes_its_addresses_from_its_instances_slice() {
        let v = validated(bridge_td(), None);
        let on = |id: &str, slice: &str| {
            let mut record = instance(4096, 4096, InstanceStatus::Active);
            record.container_instance_arn =
                format!("arn:aws:ecs:local:000000000000:container-instance/default/{id}");
            Candidate::new(record, 7, BTreeSet::new(), Vec::new())
                .with_slice(slice.parse().expect("slice"))
        };
        // h1's slice has room for one address only; the task needs two.
        let mut taken: BTreeSet<Ipv4Addr> = (2..=5).map(|n| Ipv4Addr::new(10, 88, 0, n)).collect();
        let mut snap = Snapshot {
            instances: vec![on("h1", "10.88.0.0/29"), on("h2", "10.88.0.8/29")],
            taken_addresses: taken.clone(),
            ..Default::default()
        };
        let d = decide(&v, &mut snap).expect("placed");
        assert_eq!(d.record.id(), "h2");
        assert_eq!(d.slice.to_string(), "10.88.0.8/29");
        assert_eq!(
            d.addresses,
            [Ipv4Addr::new(10, 88, 0, 10), Ipv4Addr::new(10, 88, 0, 11)]
        );
        // Both full: RESOURCE:ENI, naming the first instance's slice.
        taken.extend((10..=13).map(|n| Ipv4Addr::new(10, 88, 0, n)));
        let mut snap = Snapshot {
            instances: vec![on("h1", "10.88.0.0/29"), on("h2", "10.88.0.8/29")],
            taken_addresses: taken,
            ..Default::default()
        };
        assert_eq!(
            reason(decide(&v, &mut snap)),
            (
                "RESOURCE:ENI".into(),
                Some("no free address in 10.88.0.0/29".into())
            )
        );
    }

    #[test]
    fn no_instance_is_missing() {
        let v = validated(bridge_td(), None);
        let f = decide(&v, &mut Snapshot::default()).expect_err("missing");
        assert_eq!((f.arn, f.reason.as_str()), (None, "MISSING"));
    }

    #[test]
    fn fargate_ignores_the_instances_status_and_capacity() {
        let td = super::super::request::fixtures::td(serde_json::json!({
            "family": "web",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": [{ "name": "a", "image": "busybox",
                "portMappings": [{ "containerPort": 80 }] }]
        }));
        let v = validated(td, Some(LaunchType::Fargate));
        let d = decide(
            &v,
            &mut snapshot(instance(0, 0, InstanceStatus::Draining), &[]),
        )
        .expect("placed");
        assert_eq!(d.host_ports[0].host_port, 80);
        let mut held = snapshot(instance(0, 0, InstanceStatus::Draining), &[("tcp", 80)]);
        assert_eq!(reason(decide(&v, &mut held)).0, "RESOURCE:PORTS");
    }
}

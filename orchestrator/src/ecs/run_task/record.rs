//! The reserve step: a placed task as records, its task record with its
//! addresses and host ports, and the store operations that reserve them
//! and the instance's capacity in one commit. Pure: the caller commits.

use std::net::Ipv4Addr;

use serde_json::json;

use super::decide::Decision;
use super::request::Validated;
use crate::ecs::{encode, NetworkConfig};
use crate::error::EcsResult;
use crate::model::{
    Container, ContainerInstance, ContainerNetwork, DesiredStatus, HealthStatus, LaunchType,
    Partition, Task, TaskInternals, TaskNetwork, TaskStatus,
};
use crate::store::{keys, Expect, Op};

/// The task record of `v`'s task `id` on `instance`, PROVISIONING, before
/// its network and host ports ([`place_on_network`], [`reservation_ops`]).
pub(crate) fn new_task(
    partition: &Partition,
    v: &Validated,
    id: &str,
    instance: &ContainerInstance,
    created_at: String,
) -> Task {
    let Validated {
        cluster,
        td,
        launch_type,
        req,
        cpu,
        memory,
        ..
    } = v;
    let (cpu, memory) = (*cpu, *memory);
    let task_arn = partition.arn(&format!("task/{}/{id}", cluster.cluster_name));
    let containers = td
        .container_definitions
        .iter()
        .map(|c| Container {
            container_arn: partition.arn(&format!(
                "container/{}/{id}/{}",
                cluster.cluster_name, c.name
            )),
            task_arn: task_arn.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            last_status: TaskStatus::Pending,
            health_status: HealthStatus::Unknown,
            cpu: c.cpu.to_string(),
            memory: c.memory.map(|m| m.to_string()),
            memory_reservation: c.memory_reservation.map(|m| m.to_string()),
            // Counted from 0 once a policy may restart it.
            restart_count: c.restart_policy.as_ref().filter(|p| p.enabled).map(|_| 0),
            ..Default::default()
        })
        .collect();
    let mut overrides = req.overrides.clone();
    if !overrides.is_object() {
        overrides = json!({});
    }
    if overrides.get("containerOverrides").is_none() {
        overrides["containerOverrides"] = json!([]);
    }
    Task {
        task_arn,
        cluster_arn: cluster.cluster_arn.clone(),
        task_definition_arn: td.task_definition_arn.clone().unwrap_or_default(),
        container_instance_arn: (*launch_type == LaunchType::Ec2)
            .then(|| instance.container_instance_arn.clone()),
        last_status: TaskStatus::Provisioning,
        desired_status: DesiredStatus::Running,
        launch_type: launch_type.clone(),
        capacity_provider_name: v.capacity_provider.clone(),
        cpu: Some(cpu.to_string()),
        memory: Some(memory.to_string()),
        containers,
        overrides,
        started_by: req.started_by.clone(),
        group: Some(v.group.clone()),
        version: 1,
        created_at,
        health_status: HealthStatus::Unknown,
        connectivity: "CONNECTED".into(),
        tags: req.tags.clone(),
        berth: Some(TaskInternals {
            reserved_cpu: if *launch_type == LaunchType::Ec2 {
                cpu
            } else {
                0
            },
            reserved_memory: if *launch_type == LaunchType::Ec2 {
                memory
            } else {
                0
            },
            health_checked: td
                .container_definitions
                .iter()
                .any(|c| c.is_essential() && c.health_check.is_some()),
            host: Some(instance.id().to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Gives the task its addresses on the cluster's network: awsvpc an ENI
/// attachment, bridge an address per container (the decision's addresses
/// in container order, as [`super::decide`] picked them). Its gateway and
/// prefix are its instance's slice's: each host's bridge carries its own.
pub(crate) fn place_on_network(v: &Validated, task: &mut Task, decision: &Decision) {
    let net = NetworkConfig {
        bridge: v.net.bridge.clone(),
        subnet: decision.slice,
    };
    let addresses = &decision.addresses;
    match (v.mode.clone(), addresses.first()) {
        (crate::model::NetworkMode::Awsvpc, Some(ip)) => attach_network(&net, task, *ip),
        (crate::model::NetworkMode::Bridge, _) => bridge_networks(v, &net, task, addresses),
        _ => {}
    }
}

/// Bridge mode: each container its own address and veth.
fn bridge_networks(v: &Validated, net: &NetworkConfig, task: &mut Task, addresses: &[Ipv4Addr]) {
    let id = task.id().to_string();
    let mut nets = Vec::new();
    for (i, (c, ip)) in v.td.container_definitions.iter().zip(addresses).enumerate() {
        nets.push(ContainerNetwork {
            container: c.name.clone(),
            network: task_network(net, *ip, format!("vb{}{i}", &id[..10])),
        });
        if let Some(tc) = task.containers.iter_mut().find(|x| x.name == c.name) {
            tc.network_interfaces = vec![json!({ "privateIpv4Address": ip.to_string() })];
        }
    }
    if let Some(b) = task.berth.as_mut() {
        b.container_networks = nets;
    }
}

/// The commit that records `task` (given its host ports here) with its
/// reservations: a key per address and per host port, expected absent so
/// two placements never take the same one, and for EC2 the instance's
/// remaining CPU and memory, expected at the revision the decision read.
/// FARGATE capacity is not the instance's to account.
pub(crate) fn reservation_ops(
    v: &Validated,
    task: &mut Task,
    decision: &Decision,
) -> EcsResult<Vec<Op>> {
    let cluster = &v.cluster.cluster_name;
    let id = task.id().to_string();
    let holder = || keys::task_holder(cluster, &id);
    let mut ops = Vec::new();
    for ip in &decision.addresses {
        ops.push(Op::Put {
            key: keys::ip(&v.net.bridge, &ip.to_string()),
            value: holder(),
            expect: Expect::Absent,
        });
    }
    // Ephemeral picks first, then the fixed ports, as run-task always
    // wrote them.
    let host = decision.record.id();
    let (picked, fixed): (Vec<_>, Vec<_>) = decision.host_ports.iter().partition(|hp| hp.reserved);
    for hp in picked.into_iter().chain(fixed) {
        ops.push(Op::Put {
            key: keys::port(host, &hp.protocol, hp.host_port),
            value: holder(),
            expect: Expect::Absent,
        });
    }
    if let Some(b) = task.berth.as_mut() {
        b.host_ports = decision.host_ports.clone();
    }
    ops.push(Op::Put {
        key: keys::task(cluster, &id),
        value: encode(&*task)?,
        expect: Expect::Absent,
    });
    if let Some(ci) = reserved_instance(v, decision) {
        ops.push(Op::Put {
            key: keys::instance(cluster, host),
            value: encode(&ci)?,
            expect: Expect::Revision(decision.revision),
        });
    }
    Ok(ops)
}

/// The chosen instance's record with the task's CPU and memory reserved,
/// as the commit writes it; None for FARGATE, whose capacity is not the
/// instance's to account (the record is not written).
pub(crate) fn reserved_instance(v: &Validated, decision: &Decision) -> Option<ContainerInstance> {
    if v.launch_type != LaunchType::Ec2 {
        return None;
    }
    let mut ci = decision.record.clone();
    ci.adjust(v.signed_cpu, v.signed_memory);
    ci.version += 1;
    Some(ci)
}

/// Give a task its ENI attachment and its place on `net`.
fn attach_network(net: &NetworkConfig, task: &mut Task, ip: Ipv4Addr) {
    let id = task.id().to_string();
    let attachment_id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    );
    let eni = format!("eni-{}", &id[..17]);
    task.attachments = vec![json!({
        "id": attachment_id,
        "type": "ElasticNetworkInterface",
        "status": "PRECREATED",
        "details": [
            { "name": "subnetId", "value": net.subnet.to_string() },
            { "name": "networkInterfaceId", "value": eni },
            { "name": "privateIPv4Address", "value": ip.to_string() },
        ],
    })];
    for c in &mut task.containers {
        c.network_interfaces =
            vec![json!({ "attachmentId": attachment_id, "privateIpv4Address": ip.to_string() })];
    }
    if let Some(b) = task.berth.as_mut() {
        b.network = Some(task_network(net, ip, format!("vb{}", &id[..11])));
    }
}

/// A place on `net`: `ip` behind the veth `host_ifname`.
fn task_network(net: &NetworkConfig, ip: Ipv4Addr, host_ifname: String) -> TaskNetwork {
    TaskNetwork {
        bridge: net.bridge.clone(),
        address: ip.to_string(),
        prefix: net.subnet.prefix,
        gateway: net.subnet.gateway().to_string(),
        host_ifname,
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::{decide, Candidate, Snapshot};
    use super::super::request::fixtures::{bridge_td, validated};
    use super::*;
    use crate::model::{InstanceStatus, Resource};

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn candidate() -> Candidate {
        let int = |name: &str, v: i64| Resource {
            name: name.into(),
            kind: "INTEGER".into(),
            integer_value: v,
            string_set_value: vec![],
        };
        let record = ContainerInstance {
            container_instance_arn: "arn:aws:ecs:local:000000000000:container-instance/default/h1"
                .into(),
            status: InstanceStatus::Active,
            remaining_resources: vec![int("CPU", 1024), int("MEMORY", 1024)],
            version: 3,
            ..Default::default()
        };
        Candidate::new(record, 41, Default::default(), Vec::new())
    }

    fn placed(v: &Validated) -> (Task, Vec<Op>) {
        let mut snapshot = Snapshot {
            instances: vec![candidate()],
            ..Default::default()
        };
        let decision = decide(v, &mut snapshot).expect("placed");
        let mut task = new_task(&Partition::default(), v, ID, &decision.record, "now".into());
        place_on_network(v, &mut task, &decision);
        let ops = reservation_ops(v, &mut task, &decision).expect("ops");
        (task, ops)
    }

    fn key_and_expect(op: &Op) -> (String, Expect) {
        match op {
            Op::Put { key, expect, .. } | Op::Delete { key, expect } => (key.clone(), *expect),
        }
    }

    #[test]
    fn an_ec2_task_commits_with_its_addresses_ports_and_capacity() {
        let v = validated(bridge_td(), None);
        let (task, ops) = placed(&v);
        let keys: Vec<(String, Expect)> = ops.iter().map(key_and_expect).collect();
        assert_eq!(
            keys,
            [
                ("ips/berth0/10.88.0.2".into(), Expect::Absent),
                ("ips/berth0/10.88.0.3".into(), Expect::Absent),
                ("ports/h1/tcp/49153".into(), Expect::Absent),
                ("ports/h1/tcp/8080".into(), Expect::Absent),
                (format!("tasks/default/{ID}"), Expect::Absent),
                ("instances/default/h1".into(), Expect::Revision(41)),
            ]
        );
        let Op::Put { value, .. } = &ops[5] else {
            panic!("a put");
        };
        let ci: ContainerInstance = serde_json::from_slice(value).expect("instance");
        assert_eq!(
            (ci.remaining("CPU"), ci.remaining("MEMORY"), ci.version),
            (768, 896, 4)
        );
        let Op::Put { value, .. } = &ops[0] else {
            panic!("a put");
        };
        assert_eq!(value, &keys::task_holder("default", ID));
        // The task record committed is the task returned (but for
        // `reserved`, which is never stored).
        let Op::Put { value, .. } = &ops[4] else {
            panic!("a put");
        };
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(value).expect("task"),
            serde_json::to_value(&task).expect("json")
        );
        assert_eq!(
            task.container_instance_arn.as_deref(),
            Some(candidate().placement.arn.as_str())
        );
        assert_eq!(task.group.as_deref(), Some("family:web"));
        let berth = task.berth.as_ref().expect("internals");
        assert_eq!((berth.reserved_cpu, berth.reserved_memory), (256, 128));
        let nets: Vec<(&str, &str)> = berth
            .container_networks
            .iter()
            .map(|n| (n.container.as_str(), n.network.address.as_str()))
            .collect();
        assert_eq!(nets, [("a", "10.88.0.2"), ("b", "10.88.0.3")]);
        assert_eq!(berth.host_ports.len(), 2);
    }

    #[test]
    fn a_task_on_a_slice_has_the_slices_gateway_and_prefix() {
        let v = validated(bridge_td(), None);
        let mut snapshot = Snapshot {
            instances: vec![candidate().with_slice("10.88.3.0/24".parse().expect("slice"))],
            ..Default::default()
        };
        let decision = decide(&v, &mut snapshot).expect("placed");
        let mut task = new_task(
            &Partition::default(),
            &v,
            ID,
            &decision.record,
            "now".into(),
        );
        place_on_network(&v, &mut task, &decision);
        let ops = reservation_ops(&v, &mut task, &decision).expect("ops");
        assert_eq!(key_and_expect(&ops[0]).0, "ips/berth0/10.88.3.2");
        let net = &task.berth.as_ref().expect("internals").container_networks[1].network;
        assert_eq!(
            (
                net.bridge.as_str(),
                net.address.as_str(),
                net.prefix,
                net.gateway.as_str()
            ),
            ("berth0", "10.88.3.3", 24, "10.88.3.1")
        );
    }

    #[test]
    fn a_fargate_task_takes_no_instance_capacity() {
        let td = super::super::request::fixtures::fargate_td();
        let v = validated(td, Some(LaunchType::Fargate));
        let (task, ops) = placed(&v);
        let keys: Vec<String> = ops.iter().map(|op| key_and_expect(op).0).collect();
        assert_eq!(
            keys,
            [
                "ips/berth0/10.88.0.2".to_string(),
                format!("tasks/default/{ID}")
            ]
        );
        assert_eq!(task.container_instance_arn, None);
        assert_eq!(task.attachments.len(), 1);
        let net = task
            .berth
            .as_ref()
            .and_then(|b| b.network.clone())
            .expect("network");
        assert_eq!(
            (net.address.as_str(), net.host_ifname.as_str()),
            ("10.88.0.2", "vb0123456789a")
        );
    }
}

//! What an agent keeps from its host's tasks (`ECS_RESERVED_MEMORY`,
//! `ECS_RESERVED_PORTS`, `ECS_RESERVED_PORTS_UDP`), as ECS records it on
//! the container instance: MEMORY registered less the reserved MiB, and
//! the reserved ports as `PORTS`/`PORTS_UDP` string sets in its registered
//! and remaining resources, which placement then counts as taken (a task
//! asking for one fails with RESOURCE:PORTS). Pure.

use std::collections::BTreeSet;

use crate::model::{ContainerInstance, Resource};

/// What the agent keeps from tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    pub memory_mib: i64,
    pub ports_tcp: Vec<u16>,
    pub ports_udp: Vec<u16>,
}

/// The names of the resources ECS lists reserved ports under.
const PORTS: [(&str, &str); 2] = [("PORTS", "tcp"), ("PORTS_UDP", "udp")];

/// Record `r` on `ci`, a host of `host_memory_mib`: registered MEMORY
/// becomes the host's less the reserved (never below 0), remaining MEMORY
/// moves by as much as registered did (what its tasks reserved stays
/// taken), and the port sets are replaced.
pub fn apply(ci: &mut ContainerInstance, host_memory_mib: i64, r: &Reserved) {
    let registered = (host_memory_mib - r.memory_mib).max(0);
    let before = ci.registered("MEMORY");
    set_integer(&mut ci.registered_resources, "MEMORY", registered);
    let remaining = ci.remaining("MEMORY") + (registered - before);
    set_integer(&mut ci.remaining_resources, "MEMORY", remaining);
    for ((name, _), ports) in PORTS.iter().zip([&r.ports_tcp, &r.ports_udp]) {
        for list in [&mut ci.registered_resources, &mut ci.remaining_resources] {
            set_ports(list, name, ports);
        }
    }
}

fn set_integer(list: &mut Vec<Resource>, name: &str, value: i64) {
    match list.iter_mut().find(|r| r.name == name) {
        Some(r) => r.integer_value = value,
        None => list.push(Resource {
            name: name.into(),
            kind: "INTEGER".into(),
            integer_value: value,
            string_set_value: vec![],
        }),
    }
}

fn set_ports(list: &mut Vec<Resource>, name: &str, ports: &[u16]) {
    list.retain(|r| r.name != name);
    if ports.is_empty() {
        return;
    }
    list.push(Resource {
        name: name.into(),
        kind: "STRINGSET".into(),
        integer_value: 0,
        string_set_value: ports.iter().map(u16::to_string).collect(),
    });
}

/// The (protocol, port) pairs `ci` reserves: placement counts them held.
pub fn reserved_ports(ci: &ContainerInstance) -> BTreeSet<(String, u16)> {
    PORTS
        .iter()
        .flat_map(|(name, protocol)| {
            ci.registered_resources
                .iter()
                .filter(move |r| r.name == *name)
                .flat_map(|r| r.string_set_value.iter())
                .filter_map(move |p| Some((protocol.to_string(), p.parse().ok()?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(memory: i64, remaining: i64) -> ContainerInstance {
        let int = |v| Resource {
            name: "MEMORY".into(),
            kind: "INTEGER".into(),
            integer_value: v,
            string_set_value: vec![],
        };
        ContainerInstance {
            registered_resources: vec![int(memory)],
            remaining_resources: vec![int(remaining)],
            ..Default::default()
        }
    }

    #[test]
    fn reserved_memory_is_kept_from_tasks() {
        let r = Reserved {
            memory_mib: 512,
            ..Default::default()
        };
        let mut ci = instance(4096, 4096);
        apply(&mut ci, 4096, &r);
        assert_eq!(
            (ci.registered("MEMORY"), ci.remaining("MEMORY")),
            (3584, 3584)
        );
        // Registered again with a task holding 1000 MiB: it stays held.
        let mut ci = instance(3584, 2584);
        apply(&mut ci, 4096, &Reserved::default());
        assert_eq!(
            (ci.registered("MEMORY"), ci.remaining("MEMORY")),
            (4096, 3096)
        );
        // More than the host: nothing left, never negative.
        let mut ci = instance(1024, 1024);
        apply(
            &mut ci,
            1024,
            &Reserved {
                memory_mib: 5000,
                ..r
            },
        );
        assert_eq!(ci.registered("MEMORY"), 0);
    }

    #[test]
    fn reserved_ports_are_listed_and_read_back() {
        let r = Reserved {
            memory_mib: 0,
            ports_tcp: vec![22, 8080],
            ports_udp: vec![53],
        };
        let mut ci = instance(1024, 1024);
        apply(&mut ci, 1024, &r);
        let ports = ci
            .registered_resources
            .iter()
            .find(|x| x.name == "PORTS")
            .expect("PORTS");
        assert_eq!(ports.kind, "STRINGSET");
        assert_eq!(ports.string_set_value, ["22", "8080"]);
        let held = reserved_ports(&ci);
        assert!(held.contains(&("tcp".into(), 8080)));
        assert!(held.contains(&("udp".into(), 53)));
        assert!(!held.contains(&("udp".into(), 22)));
        // Registered again without: gone.
        apply(&mut ci, 1024, &Reserved::default());
        assert!(reserved_ports(&ci).is_empty());
    }
}

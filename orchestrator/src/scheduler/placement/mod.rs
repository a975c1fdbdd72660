//! ECS task placement: choose a container instance for a task.
//!
//! Pure functions over a snapshot of container instances: no store, no I/O,
//! so the scheduler's decisions can be tested (and benchmarked) without root.
//!
//! The order is ECS's: drop instances that are not ACTIVE, lack CPU or
//! memory, or break a placement constraint; then let each placement strategy
//! in turn narrow the survivors to its favourites. `memberOf` constraints use
//! ECS's cluster query language, parsed here by [`Expr::parse`].
//!
//! - `strategy.rs`: the strategies and constraints, parsed from ECS's JSON;
//! - `query.rs`: the cluster query language of `memberOf`;
//! - `planner.rs`: the ranking and the scan that picks an instance;
//! - `bench.rs`: a synthetic fleet to time placement on (`system bench`).

mod bench;
mod planner;
mod query;
mod refusal;
mod strategy;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use crate::model::Failure;

pub use bench::bench;
use planner::Planner;
pub use planner::{Capacity, Request};
pub use query::Expr;
pub use refusal::Refusal;
pub use strategy::{Constraint, Resource, SpreadField, Strategy};

/// A placement input that ECS would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A JSON field is missing, mistyped or out of range; `path` names it the
    /// way the API caller wrote it, e.g. `placementStrategy[0].field`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A `memberOf` expression does not parse. `position` is the 1-based
    /// character column of `token`, the text the parser stumbled on.
    #[error("{path}: {message} at position {position} (found {token})")]
    Expression {
        path: String,
        position: usize,
        token: String,
        message: String,
    },
}

impl PlacementError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// Puts `prefix` in front of the path, so errors from one list element
    /// name the element (`placementStrategy[2]` + `field`).
    fn within(mut self, prefix: &str) -> Self {
        let (Self::Invalid { path, .. } | Self::Expression { path, .. }) = &mut self;
        *path = if path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        self
    }
}

/// A container instance as placement sees it: what is left of it, and what
/// already runs there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    pub arn: String,
    /// The host's instance id (`instanceId` / `ec2InstanceId` in ECS terms).
    pub id: String,
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    /// Built-in (`ecs.instance-type`, `ecs.availability-zone`, `ecs.os-type`,
    /// `ecs.cpu-architecture`) and custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// The group of each task already on the instance (`family:web`,
    /// `service:api`...), one entry per task.
    pub task_groups: Vec<String>,
    /// `ACTIVE` or `DRAINING`; only ACTIVE instances take new tasks.
    pub status: String,
    /// The host ports (protocol, port) tasks on the instance hold: each
    /// can be bound by one task at a time.
    pub host_ports: BTreeSet<(String, u16)>,
}

impl Instance {
    pub const ACTIVE: &'static str = "ACTIVE";

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// The lowest port of `range` the instance does not hold for
    /// `protocol`: how a host port of 0 (bridge mode) gets one from the
    /// ephemeral range. The caller inserts the port into `host_ports` before
    /// picking the next, so one task's ports differ too.
    pub fn free_port(&self, protocol: &str, range: RangeInclusive<u16>) -> Option<u16> {
        let (start, end) = range.into_inner();
        let held = (protocol.to_owned(), start)..=(protocol.to_owned(), end);
        // The held ports come in order: the first gap is the answer.
        let mut next = start;
        for (_, port) in self.host_ports.range(held) {
            if *port != next {
                break;
            }
            if next == end {
                return None;
            }
            next += 1;
        }
        (next <= end).then_some(next)
    }

    fn tasks_in_group(&self, group: &str) -> u32 {
        let count = self.task_groups.iter().filter(|g| *g == group).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// Chooses the instance for one task as `request` describes it, or `None`
/// when no instance qualifies.
///
/// After the strategies, ties go to the lowest index unless a `random`
/// strategy was given; `rng_seed` makes random choices reproducible.
pub fn place(
    instances: &[Instance],
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Option<usize> {
    Planner::new(instances, request, strategies, rng_seed).choose()
}

/// Places up to `count` tasks one after the other, each seeing the ones
/// before it: the chosen instance loses the resources and gains the task's
/// group. Returns the chosen indices in order; fewer than `count` means the
/// cluster ran out of room (resources only shrink, so the rest cannot fit).
pub fn place_many(
    instances: &mut [Instance],
    count: usize,
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Vec<usize> {
    let mut planner = Planner::new(instances, request, strategies, rng_seed);
    let mut placed = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(chosen) = planner.choose() else {
            break;
        };
        planner.record(&mut instances[chosen], chosen, request);
        placed.push(chosen);
    }
    placed
}

/// Places `count` tasks as run-task does: one after the other, each seeing
/// the ones before it (the chosen instance loses the CPU and memory, holds
/// the host ports and gains the task's group, in `instances` too, so the
/// caller can commit what is left). Gives, for each task in order, the
/// index of its instance or ECS's failure for it.
///
/// A task no instance takes fails with the [`Refusal`] of the instance that
/// came closest (the latest check it failed, in run-task's order: host
/// ports, ACTIVE, CPU, memory, then the constraints), naming that
/// instance's ARN; ties go to the lowest index. With no instance at all,
/// the failure is `MISSING` without an ARN. Once one task fails, the rest
/// fail alike: nothing changed in between.
pub fn place_tasks(
    instances: &mut [Instance],
    count: usize,
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Vec<Result<usize, Failure>> {
    let mut planner = Planner::new(instances, request, strategies, rng_seed);
    let mut outcomes = Vec::with_capacity(count);
    while outcomes.len() < count {
        let Some(chosen) = planner.choose() else {
            let (closest, refusal) = Refusal::closest(instances, request);
            let failure = refusal.failure(closest.map(|i| i.arn.as_str()));
            outcomes.resize(count, Err(failure));
            break;
        };
        planner.record(&mut instances[chosen], chosen, request);
        outcomes.push(Ok(chosen));
    }
    outcomes
}

/// One task's instance, as [`place_tasks`] answers for a count of one,
/// without booking it: `instances` are only read, so a caller placing
/// over a big snapshot needs no copy of it (run-task books what it
/// commits itself).
pub fn choose_one(
    instances: &[Instance],
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Result<usize, Failure> {
    match Planner::new(instances, request, strategies, rng_seed).choose() {
        Some(chosen) => Ok(chosen),
        None => {
            let (closest, refusal) = Refusal::closest(instances, request);
            Err(refusal.failure(closest.map(|i| i.arn.as_str())))
        }
    }
}

/// Instances and expressions the tests of every placement module share.
#[cfg(test)]
mod fixtures {
    use super::*;

    pub(super) fn instance(
        id: &str,
        cpu: i64,
        memory: i64,
        attributes: &[(&str, &str)],
    ) -> Instance {
        Instance {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/test/{id}"),
            id: id.to_owned(),
            remaining_cpu: cpu,
            remaining_memory: memory,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            task_groups: Vec::new(),
            status: Instance::ACTIVE.to_owned(),
            host_ports: BTreeSet::new(),
        }
    }

    pub(super) fn zoned(id: &str, zone: &str) -> Instance {
        instance(id, 4096, 8192, &[("ecs.availability-zone", zone)])
    }

    pub(super) fn expr(source: &str) -> Expr {
        match Expr::parse(source) {
            Ok(expr) => expr,
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    pub(super) fn binpack_memory() -> Vec<Strategy> {
        vec![Strategy::Binpack(Resource::Memory)]
    }

    pub(super) fn fleet() -> Vec<Instance> {
        vec![
            instance(
                "i-0a",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "t2.micro"),
                    ("ecs.availability-zone", "us-east-1a"),
                    ("ecs.os-type", "linux"),
                    ("ecs.cpu-architecture", "x86_64"),
                    ("disk-gb", "100"),
                    ("stage", "prod"),
                ],
            ),
            instance(
                "i-0b",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "m5.large"),
                    ("ecs.availability-zone", "us-east-1b"),
                    ("ecs.os-type", "linux"),
                    ("ecs.cpu-architecture", "arm64"),
                    ("disk-gb", "20"),
                ],
            ),
            instance(
                "i-0c",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "t3.small"),
                    ("ecs.availability-zone", "us-east-1c"),
                    ("ecs.os-type", "linux"),
                    ("disk-gb", "9"),
                ],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::instance;

    #[test]
    fn free_ports_skip_the_ones_held_for_that_protocol() {
        let mut host = instance("host", 1, 1, &[]);
        host.host_ports.extend(
            [("tcp", 49153), ("tcp", 49155), ("udp", 49154)].map(|(p, n)| (p.to_owned(), n)),
        );
        assert_eq!(host.free_port("tcp", 49153..=65535), Some(49154));
        assert_eq!(host.free_port("udp", 49153..=65535), Some(49153));
        host.host_ports.insert(("tcp".into(), 49154));
        assert_eq!(host.free_port("tcp", 49153..=49155), None);
        assert_eq!(host.free_port("tcp", 49156..=65535), Some(49156));
        assert_eq!(host.free_port("tcp", 65535..=65535), Some(65535));
        host.host_ports.insert(("tcp".into(), 65535));
        assert_eq!(host.free_port("tcp", 65535..=65535), None);
    }
}

//! Why no instance takes a task, in ECS's failure reasons: the other half
//! of a placement decision, worked out only when placement fails.

use crate::model::Failure;

use super::{Capacity, Instance, Request};

/// Why an instance cannot take a task (or why no instance can), in the
/// order run-task checks: host ports, then ACTIVE, CPU and memory, then the
/// placement constraints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The instance already holds a host port the task binds.
    Port { protocol: String, port: u16 },
    /// The instance is not ACTIVE (it is DRAINING): its agent takes no new
    /// task.
    NotActive { status: String },
    /// Not enough CPU units left.
    Cpu,
    /// Not enough memory left.
    Memory,
    /// A placement constraint (`memberOf`, `distinctInstance`) excludes the
    /// instance.
    Constraints,
    /// The cluster has no container instance at all.
    NoInstance,
}

impl Refusal {
    /// Why `instance` cannot take the task: the first check it fails, or
    /// `None` when it can.
    pub fn of(instance: &Instance, request: &Request<'_>) -> Option<Self> {
        if let Some((protocol, port)) = request.port_taken_on(instance) {
            return Some(Self::Port {
                protocol: protocol.clone(),
                port: *port,
            });
        }
        if request.capacity == Capacity::Instance {
            if instance.status != Instance::ACTIVE {
                return Some(Self::NotActive {
                    status: instance.status.clone(),
                });
            }
            if instance.remaining_cpu < request.need_cpu {
                return Some(Self::Cpu);
            }
            if instance.remaining_memory < request.need_memory {
                return Some(Self::Memory);
            }
        }
        let crowded = request.distinct_instance() && instance.tasks_in_group(request.group) > 0;
        if crowded || !request.is_member(instance) {
            return Some(Self::Constraints);
        }
        None
    }

    /// The instance that came closest to taking the task and why it did
    /// not: the refusal latest in check order, ties to the lowest index. A
    /// cluster of one instance thus answers as that instance's checks do.
    pub(super) fn closest<'i>(
        instances: &'i [Instance],
        request: &Request<'_>,
    ) -> (Option<&'i Instance>, Self) {
        let mut closest: Option<(&Instance, Self)> = None;
        for instance in instances {
            let Some(refusal) = Self::of(instance, request) else {
                continue;
            };
            if closest
                .as_ref()
                .is_none_or(|(_, best)| refusal.stage() > best.stage())
            {
                closest = Some((instance, refusal));
            }
        }
        match closest {
            Some((instance, refusal)) => (Some(instance), refusal),
            None => (None, Self::NoInstance),
        }
    }

    /// Where the check that refused comes in run-task's order.
    fn stage(&self) -> u8 {
        match self {
            Self::NoInstance => 0,
            Self::Port { .. } => 1,
            Self::NotActive { .. } => 2,
            Self::Cpu => 3,
            Self::Memory => 4,
            Self::Constraints => 5,
        }
    }

    /// ECS's failure reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Port { .. } => "RESOURCE:PORTS",
            Self::NotActive { .. } => "AGENT",
            Self::Cpu => "RESOURCE:CPU",
            Self::Memory => "RESOURCE:MEMORY",
            Self::Constraints | Self::NoInstance => "MISSING",
        }
    }

    /// The failure run-task reports, on the instance `arn` (none when the
    /// cluster has no instance).
    pub fn failure(&self, arn: Option<&str>) -> Failure {
        let detail = match self {
            Self::Port { protocol, port } => Some(format!("{port}/{protocol}")),
            Self::NotActive { status } => Some(format!("the container instance is {status}")),
            Self::Cpu | Self::Memory => None,
            Self::Constraints => Some("the placement constraints exclude it".to_owned()),
            Self::NoInstance => Some("no container instance in the cluster".to_owned()),
        };
        Failure {
            arn: arn.map(str::to_owned),
            reason: self.reason().to_owned(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{binpack_memory, expr, fleet, instance};
    use super::super::{place_many, place_tasks, Constraint};
    use super::*;

    fn ports(list: &[(&str, u16)]) -> Vec<(String, u16)> {
        list.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()
    }

    /// Each outcome as the index placed on or the failure's reason.
    fn outcomes(outcomes: &[Result<usize, Failure>]) -> Vec<String> {
        outcomes
            .iter()
            .map(|o| match o {
                Ok(index) => index.to_string(),
                Err(f) => f.reason.clone(),
            })
            .collect()
    }

    fn only_failure(instances: &mut [Instance], request: &Request<'_>) -> Failure {
        match place_tasks(instances, 1, request, &[], 0).as_slice() {
            [Err(failure)] => failure.clone(),
            other => panic!("expected one failure, got {other:?}"),
        }
    }

    #[test]
    fn an_instance_fills_up_across_a_count_of_ten() {
        let mut instances = [instance("host", 1024, 700, &[])];
        let placed = place_tasks(
            &mut instances,
            10,
            &Request::new(100, 100, "family:web", &[]),
            &binpack_memory(),
            0,
        );
        assert_eq!(
            outcomes(&placed),
            [
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "RESOURCE:MEMORY",
                "RESOURCE:MEMORY",
                "RESOURCE:MEMORY"
            ]
        );
        let Err(failure) = &placed[9] else {
            panic!("{placed:?}");
        };
        assert_eq!(failure.arn.as_deref(), Some(instances[0].arn.as_str()));
        assert_eq!(failure.detail, None);
        // What is left is what the caller commits.
        let host = &instances[0];
        assert_eq!((host.remaining_cpu, host.remaining_memory), (324, 0));
        assert_eq!(host.task_groups, vec!["family:web"; 7]);
    }

    #[test]
    fn cpu_is_reported_before_memory() {
        let mut short_of_both = [instance("host", 100, 100, &[])];
        let request = Request::new(200, 200, "g", &[]);
        assert_eq!(
            only_failure(&mut short_of_both, &request),
            Failure {
                arn: Some(short_of_both[0].arn.clone()),
                reason: "RESOURCE:CPU".into(),
                detail: None,
            }
        );
        let mut short_of_memory = [instance("host", 4096, 100, &[])];
        assert_eq!(
            only_failure(&mut short_of_memory, &request).reason,
            "RESOURCE:MEMORY"
        );
    }

    #[test]
    fn a_held_host_port_is_refused_before_status_and_resources() {
        let mut host = instance("host", 1, 1, &[]);
        host.status = "DRAINING".into();
        host.host_ports.insert(("tcp".into(), 80));
        let mut instances = [host];
        let wanted = ports(&[("udp", 80), ("tcp", 80)]);
        let request = Request::new(512, 512, "g", &[]).with_host_ports(&wanted);
        let failure = only_failure(&mut instances, &request);
        assert_eq!(
            (failure.reason.as_str(), failure.detail.as_deref()),
            ("RESOURCE:PORTS", Some("80/tcp"))
        );
        // Another protocol's port 80 is another port.
        instances[0].status = Instance::ACTIVE.into();
        let udp = ports(&[("udp", 80)]);
        let request = Request::new(1, 1, "g", &[]).with_host_ports(&udp);
        assert_eq!(place_tasks(&mut instances, 1, &request, &[], 0), [Ok(0)]);
    }

    #[test]
    fn a_fixed_host_port_takes_one_task_per_instance() {
        let mut instances = fleet();
        let wanted = ports(&[("tcp", 8080)]);
        let request = Request::new(1, 1, "service:web", &[]).with_host_ports(&wanted);
        let placed = place_tasks(&mut instances, 10, &request, &[], 0);
        let mut expected = vec!["0", "1", "2"];
        expected.extend(["RESOURCE:PORTS"; 7]);
        assert_eq!(outcomes(&placed), expected);
        // Every instance refuses alike: the first one is named.
        assert_eq!(
            placed[3],
            Err(Failure {
                arn: Some(instances[0].arn.clone()),
                reason: "RESOURCE:PORTS".into(),
                detail: Some("8080/tcp".into()),
            })
        );
        assert!(instances
            .iter()
            .all(|i| i.host_ports.contains(&("tcp".to_owned(), 8080))));
    }

    #[test]
    fn a_draining_instance_fails_with_agent() {
        let mut draining = instance("host", 4096, 8192, &[]);
        draining.status = "DRAINING".into();
        let mut instances = [draining];
        let failure = only_failure(&mut instances, &Request::new(1, 1, "g", &[]));
        assert_eq!(
            failure,
            Failure {
                arn: Some(instances[0].arn.clone()),
                reason: "AGENT".into(),
                detail: Some("the container instance is DRAINING".into()),
            }
        );
    }

    #[test]
    fn no_instance_or_constraints_excluding_all_is_missing() {
        let request = Request::new(1, 1, "g", &[]);
        assert_eq!(
            place_tasks(&mut [], 2, &request, &[], 0),
            vec![
                Err(Failure {
                    arn: None,
                    reason: "MISSING".into(),
                    detail: Some("no container instance in the cluster".into()),
                });
                2
            ]
        );

        let windows = [Constraint::MemberOf(expr(
            "attribute:ecs.os-type == windows",
        ))];
        let mut instances = fleet();
        let failure = only_failure(&mut instances, &Request::new(1, 1, "g", &windows));
        assert_eq!(
            (failure.arn.as_deref(), failure.reason.as_str()),
            (Some(instances[0].arn.as_str()), "MISSING")
        );

        let distinct = [Constraint::DistinctInstance];
        let mut instances = [instance("host", 4096, 8192, &[])];
        let placed = place_tasks(
            &mut instances,
            2,
            &Request::new(1, 1, "service:web", &distinct),
            &[],
            0,
        );
        assert_eq!(outcomes(&placed), ["0", "MISSING"]);
    }

    #[test]
    fn the_instance_that_came_closest_names_the_failure() {
        let mut draining = instance("draining", 4096, 8192, &[]);
        draining.status = "DRAINING".into();
        let mut instances = [draining, instance("small", 4096, 128, &[])];
        let failure = only_failure(&mut instances, &Request::new(1, 256, "g", &[]));
        assert_eq!(
            (failure.arn.as_deref(), failure.reason.as_str()),
            (Some(instances[1].arn.as_str()), "RESOURCE:MEMORY")
        );

        // An instance with room that the constraints exclude came closer
        // than one without room.
        let linux_only = [Constraint::MemberOf(expr("attribute:ecs.os-type == linux"))];
        let mut instances = [
            instance("linux", 1, 1, &[("ecs.os-type", "linux")]),
            instance("windows", 4096, 8192, &[("ecs.os-type", "windows")]),
        ];
        let failure = only_failure(&mut instances, &Request::new(2, 2, "g", &linux_only));
        assert_eq!(
            (failure.arn.as_deref(), failure.reason.as_str()),
            (Some(instances[1].arn.as_str()), "MISSING")
        );
    }

    #[test]
    fn unaccounted_capacity_ignores_status_and_resources_but_not_ports() {
        // Nothing left (less, even) and DRAINING: neither counts here.
        let mut full = instance("host", -1, -1, &[]);
        full.status = "DRAINING".into();
        let mut instances = [full];
        let wanted = ports(&[("tcp", 80)]);
        let request = Request::new(256, 512, "g", &[])
            .with_capacity(Capacity::Unaccounted)
            .with_host_ports(&wanted);
        let placed = place_tasks(&mut instances, 2, &request, &[], 0);
        assert_eq!(outcomes(&placed), ["0", "RESOURCE:PORTS"]);
        assert_eq!(
            (instances[0].remaining_cpu, instances[0].remaining_memory),
            (-1, -1)
        );
    }

    #[test]
    fn place_tasks_chooses_as_place_many_does() {
        let request = Request::new(300, 700, "service:web", &[]);
        let (mut one, mut two) = (fleet(), fleet());
        let placed = place_many(&mut one, 40, &request, &binpack_memory(), 3);
        let outcomes = place_tasks(&mut two, 40, &request, &binpack_memory(), 3);
        let chosen: Vec<usize> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
        assert_eq!(chosen, placed);
        assert_eq!(one, two);
        assert!(outcomes[placed.len()..].iter().all(Result::is_err));
        assert_eq!(Refusal::of(&fleet()[0], &request), None);
    }
}

//! A synthetic fleet to time placement on: `berth system bench`.

use std::time::{Duration, Instant};

use super::{place_many, Instance, Request, Resource, SpreadField, Strategy};

/// Places `tasks` tasks (128 CPU units, 256 MiB, one group) over `instances`
/// simulated instances spread over three availability zones and three
/// instance types, with binpack(memory) then spread(availability zone).
/// Returns how many were placed and how long placing took (building the
/// snapshot is not timed).
pub fn bench(instances: usize, tasks: usize) -> (usize, Duration) {
    const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
    const TYPES: [(&str, i64, i64); 3] = [
        ("m5.xlarge", 4096, 16384),
        ("m5.2xlarge", 8192, 32768),
        ("c5.2xlarge", 8192, 16384),
    ];
    let mut fleet: Vec<Instance> = (0..instances)
        .map(|n| {
            let (instance_type, cpu, memory) = TYPES[n % TYPES.len()];
            let attributes = [
                ("ecs.availability-zone", ZONES[(n / 7) % ZONES.len()]),
                ("ecs.instance-type", instance_type),
                ("ecs.os-type", "linux"),
                ("ecs.cpu-architecture", "x86_64"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            Instance {
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{n}"),
                id: format!("i-{n:017x}"),
                remaining_cpu: cpu,
                remaining_memory: memory,
                attributes,
                task_groups: Vec::new(),
                status: Instance::ACTIVE.to_owned(),
                host_ports: Default::default(),
            }
        })
        .collect();
    let strategies = [
        Strategy::Binpack(Resource::Memory),
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
    ];
    let started = Instant::now();
    let placed = place_many(
        &mut fleet,
        tasks,
        &Request::new(128, 256, "family:bench", &[]),
        &strategies,
        0,
    );
    (placed.len(), started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_places_every_task_it_has_room_for() {
        let (placed, _elapsed) = bench(30, 300);
        assert_eq!(placed, 300);
        // One of each instance type holds 32 + 64 + 64 such tasks.
        let (placed, _) = bench(3, 10_000);
        assert_eq!(placed, 160);
    }
}

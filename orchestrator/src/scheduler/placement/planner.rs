//! The placement scan: what one task asks for ([`Request`]), and the
//! `Planner` that ranks instances by the strategies and books each chosen
//! one so the next task sees it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Constraint, Instance, Resource, SpreadField, Strategy};

/// One task to place: what it needs, its group (`service:web`,
/// `family:web`) and the constraints on where it may go.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// CPU units.
    pub need_cpu: i64,
    /// MiB.
    pub need_memory: i64,
    pub group: &'a str,
    pub constraints: &'a [Constraint],
    /// The fixed host ports (protocol, port) the task binds: an instance
    /// holding any of them cannot take it. Ports to be picked from the
    /// ephemeral range are not listed (any instance has some).
    pub host_ports: &'a [(String, u16)],
    /// Whether the instance's CPU, memory and status count.
    pub capacity: Capacity,
}

/// Whose capacity a task runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Capacity {
    /// The container instance's (EC2): it must be ACTIVE and have the CPU
    /// and memory left, and placing the task takes them.
    #[default]
    Instance,
    /// Not the instance's to account (FARGATE on berth's hosts): only host
    /// ports and constraints decide, and the instance's CPU, memory and
    /// ACTIVE/DRAINING status are left alone, as run-task has always done.
    Unaccounted,
}

impl<'a> Request<'a> {
    pub fn new(
        need_cpu: i64,
        need_memory: i64,
        group: &'a str,
        constraints: &'a [Constraint],
    ) -> Self {
        Self {
            need_cpu,
            need_memory,
            group,
            constraints,
            host_ports: &[],
            capacity: Capacity::Instance,
        }
    }

    /// The same request, binding these fixed host ports.
    pub fn with_host_ports(self, host_ports: &'a [(String, u16)]) -> Self {
        Self { host_ports, ..self }
    }

    /// The same request, on `capacity`.
    pub fn with_capacity(self, capacity: Capacity) -> Self {
        Self { capacity, ..self }
    }

    /// What placing the task takes from the instance, (CPU units, MiB),
    /// if anything.
    fn charge(&self) -> Option<(i64, i64)> {
        match self.capacity {
            Capacity::Instance => Some((self.need_cpu, self.need_memory)),
            Capacity::Unaccounted => None,
        }
    }

    /// The first of the task's host ports the instance already holds.
    pub(super) fn port_taken_on<'i>(&self, instance: &'i Instance) -> Option<&'i (String, u16)> {
        self.host_ports
            .iter()
            .find_map(|port| instance.host_ports.get(port))
    }

    pub(super) fn distinct_instance(&self) -> bool {
        self.constraints
            .iter()
            .any(|c| matches!(c, Constraint::DistinctInstance))
    }

    /// ACTIVE (when its capacity counts) and selected by every `memberOf`:
    /// the part of eligibility that does not depend on resources.
    fn admits(&self, instance: &Instance) -> bool {
        (self.capacity == Capacity::Unaccounted || instance.status == Instance::ACTIVE)
            && self.is_member(instance)
    }

    /// Selected by every `memberOf`.
    pub(super) fn is_member(&self, instance: &Instance) -> bool {
        self.constraints.iter().all(|c| match c {
            Constraint::DistinctInstance => true,
            Constraint::MemberOf(expr) => expr.matches(instance),
        })
    }
}

/// One step of the ranking the strategies define; lower ranks first.
#[derive(Clone, Copy)]
enum Rank {
    Remaining(Resource),
    /// Tasks of the group on the instance itself.
    GroupOnInstance,
    /// Tasks of the group in the instance's bucket of `spreads[i]`.
    GroupInBucket(usize),
}

/// Per-value task counts for one `spread` over an attribute.
struct SpreadIndex {
    bucket_of: Vec<u32>,
    tasks_in_bucket: Vec<u32>,
}

/// The little of an instance the scan reads, packed together: `Instance`
/// is large, and striding over it would miss the cache on every step.
#[derive(Clone, Copy)]
struct Slot {
    cpu: i64,
    memory: i64,
    group_tasks: u32,
    /// ACTIVE (when its capacity counts) and selected by every `memberOf`.
    admitted: bool,
    /// Holds none of the task's fixed host ports.
    ports_free: bool,
}

/// What placement keeps between tasks so each choice is a cheap linear scan:
/// no string comparisons, no allocation per instance.
pub(super) struct Planner {
    ranks: Vec<Rank>,
    /// A random strategy ends the ranking: it leaves one candidate, so later
    /// strategies have nothing to narrow.
    random: bool,
    rng: SplitMix64,
    slots: Vec<Slot>,
    spreads: Vec<SpreadIndex>,
    distinct_instance: bool,
    /// What each task takes from its instance, (CPU units, MiB), if its
    /// capacity counts.
    charge: Option<(i64, i64)>,
    /// Whether `Slot::admitted` must be refreshed after a placement.
    membership_depends_on_tasks: bool,
}

impl Planner {
    pub(super) fn new(
        instances: &[Instance],
        request: &Request<'_>,
        strategies: &[Strategy],
        rng_seed: u64,
    ) -> Self {
        let mut ranks = Vec::new();
        let mut spreads = Vec::new();
        let mut random = false;
        for strategy in strategies {
            match strategy {
                Strategy::Binpack(resource) => ranks.push(Rank::Remaining(*resource)),
                Strategy::Spread(SpreadField::InstanceId) => ranks.push(Rank::GroupOnInstance),
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    ranks.push(Rank::GroupInBucket(spreads.len()));
                    spreads.push(SpreadIndex::new(instances, name, request.group));
                }
                Strategy::Random => {
                    random = true;
                    break;
                }
            }
        }
        Self {
            ranks,
            random,
            rng: SplitMix64(rng_seed),
            slots: instances
                .iter()
                .map(|i| Slot {
                    cpu: i.remaining_cpu,
                    memory: i.remaining_memory,
                    group_tasks: i.tasks_in_group(request.group),
                    admitted: request.admits(i),
                    ports_free: request.port_taken_on(i).is_none(),
                })
                .collect(),
            spreads,
            distinct_instance: request.distinct_instance(),
            charge: request.charge(),
            membership_depends_on_tasks: request.constraints.iter().any(|c| match c {
                Constraint::MemberOf(expr) => expr.depends_on_tasks(),
                Constraint::DistinctInstance => false,
            }),
        }
    }

    fn fits(&self, slot: &Slot) -> bool {
        slot.admitted
            && slot.ports_free
            && self
                .charge
                .is_none_or(|(cpu, memory)| slot.cpu >= cpu && slot.memory >= memory)
            && !(self.distinct_instance && slot.group_tasks > 0)
    }

    /// How `a` compares with `b` under the strategies; `Less` is preferred.
    fn compare(&self, a: usize, b: usize) -> Ordering {
        let (slot_a, slot_b) = (&self.slots[a], &self.slots[b]);
        for rank in &self.ranks {
            let ordering = match *rank {
                Rank::Remaining(Resource::Cpu) => slot_a.cpu.cmp(&slot_b.cpu),
                Rank::Remaining(Resource::Memory) => slot_a.memory.cmp(&slot_b.memory),
                Rank::GroupOnInstance => slot_a.group_tasks.cmp(&slot_b.group_tasks),
                Rank::GroupInBucket(s) => self.spreads[s]
                    .tasks_near(a)
                    .cmp(&self.spreads[s].tasks_near(b)),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }

    pub(super) fn choose(&mut self) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut ties: u64 = 0;
        for index in 0..self.slots.len() {
            if !self.fits(&self.slots[index]) {
                continue;
            }
            let Some(current) = best else {
                best = Some(index);
                ties = 1;
                continue;
            };
            match self.compare(index, current) {
                Ordering::Less => {
                    best = Some(index);
                    ties = 1;
                }
                // Reservoir sampling: each of the n tied instances ends up
                // chosen with probability 1/n, in one pass, without a list.
                Ordering::Equal if self.random => {
                    ties += 1;
                    if self.rng.below(ties) == 0 {
                        best = Some(index);
                    }
                }
                Ordering::Equal | Ordering::Greater => {}
            }
        }
        best
    }

    /// Books one task of the request's group onto `instances[index]`.
    pub(super) fn record(&mut self, instance: &mut Instance, index: usize, request: &Request<'_>) {
        if let Some((cpu, memory)) = self.charge {
            instance.remaining_cpu = instance.remaining_cpu.saturating_sub(cpu);
            instance.remaining_memory = instance.remaining_memory.saturating_sub(memory);
        }
        instance.task_groups.push(request.group.to_owned());
        instance
            .host_ports
            .extend(request.host_ports.iter().cloned());
        let slot = &mut self.slots[index];
        // The instance now holds every one of the task's ports.
        slot.ports_free = request.host_ports.is_empty();
        slot.cpu = instance.remaining_cpu;
        slot.memory = instance.remaining_memory;
        slot.group_tasks = slot.group_tasks.saturating_add(1);
        for spread in &mut self.spreads {
            let bucket = spread.bucket_of[index] as usize;
            spread.tasks_in_bucket[bucket] = spread.tasks_in_bucket[bucket].saturating_add(1);
        }
        if self.membership_depends_on_tasks {
            slot.admitted = request.admits(instance);
        }
    }
}

impl SpreadIndex {
    fn new(instances: &[Instance], attribute: &str, group: &str) -> Self {
        // Instances lacking the attribute share the `None` bucket.
        let mut buckets: BTreeMap<Option<&str>, u32> = BTreeMap::new();
        let mut tasks_in_bucket = Vec::new();
        let bucket_of = instances
            .iter()
            .map(|instance| {
                let next = u32::try_from(buckets.len()).unwrap_or(u32::MAX);
                let bucket = *buckets.entry(instance.attribute(attribute)).or_insert(next);
                if bucket as usize == tasks_in_bucket.len() {
                    tasks_in_bucket.push(0u32);
                }
                let tasks = &mut tasks_in_bucket[bucket as usize];
                *tasks = tasks.saturating_add(instance.tasks_in_group(group));
                bucket
            })
            .collect();
        Self {
            bucket_of,
            tasks_in_bucket,
        }
    }

    fn tasks_near(&self, index: usize) -> u32 {
        self.tasks_in_bucket[self.bucket_of[index] as usize]
    }
}

/// splitmix64: tiny, fast and good enough to break ties; seeded so a
/// placement can be replayed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), by multiply-shift; the bias is
    /// negligible for tie counts.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{binpack_memory, expr, fleet, instance, zoned};
    use super::super::{place, place_many};
    use super::*;

    #[test]
    fn binpack_picks_the_fullest_instance_that_fits() {
        let instances = [
            instance("roomy", 4096, 8192, &[]),
            instance("too-full", 4096, 256, &[]),
            instance("snug", 4096, 1024, &[]),
            instance("middling", 4096, 2048, &[]),
        ];
        let chosen = place(
            &instances,
            &Request::new(256, 512, "g", &[]),
            &binpack_memory(),
            0,
        );
        assert_eq!(chosen, Some(2));

        let by_cpu = [instance("a", 1024, 512, &[]), instance("b", 512, 8192, &[])];
        let cpu = [Strategy::Binpack(Resource::Cpu)];
        assert_eq!(
            place(&by_cpu, &Request::new(256, 512, "g", &[]), &cpu, 0),
            Some(1)
        );
    }

    #[test]
    fn spread_over_availability_zones_balances_three_zones() {
        let mut instances = vec![
            zoned("a1", "us-east-1a"),
            zoned("a2", "us-east-1a"),
            zoned("a3", "us-east-1a"),
            zoned("b1", "us-east-1b"),
            zoned("c1", "us-east-1c"),
            zoned("c2", "us-east-1c"),
        ];
        let spread = [Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        let placed = place_many(
            &mut instances,
            9,
            &Request::new(128, 128, "service:web", &[]),
            &spread,
            0,
        );
        assert_eq!(placed.len(), 9);
        let mut per_zone = BTreeMap::new();
        for &index in &placed {
            let zone = instances[index].attribute("ecs.availability-zone");
            *per_zone.entry(zone).or_insert(0) += 1;
        }
        assert_eq!(per_zone.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
        // The one instance in zone b took all of that zone's share.
        assert_eq!(instances[3].task_groups.len(), 3);
    }

    #[test]
    fn spread_counts_tasks_already_running_and_ignores_other_groups() {
        let mut busy = zoned("a1", "us-east-1a");
        busy.task_groups = vec!["service:web".into(), "service:web".into()];
        let mut other_group = zoned("b1", "us-east-1b");
        other_group.task_groups = vec!["service:db".into(); 5];
        let instances = [busy, other_group, zoned("c1", "us-east-1c")];
        let spread = [Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        // Zones b and c both have no web tasks; ties go to the lowest index.
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "service:web", &[]),
                &spread,
                0
            ),
            Some(1)
        );
    }

    #[test]
    fn spread_instance_id_puts_one_task_on_each_before_doubling_up() {
        let mut instances: Vec<_> = (0..4)
            .map(|n| instance(&format!("i-{n}"), 4096, 8192, &[]))
            .collect();
        instances[0].task_groups.push("g".into());
        let spread = [Strategy::Spread(SpreadField::InstanceId)];
        let placed = place_many(&mut instances, 7, &Request::new(1, 1, "g", &[]), &spread, 0);
        assert_eq!(placed[..3], [1, 2, 3]);
        assert!(instances.iter().all(|i| i.task_groups.len() == 2));
    }

    #[test]
    fn binpack_then_spread_breaks_binpack_ties_by_zone() {
        let mut full_a = zoned("a1", "us-east-1a");
        full_a.task_groups.push("g".into());
        let instances = [full_a, zoned("a2", "us-east-1a"), zoned("b1", "us-east-1b")];
        let strategies = [
            Strategy::Binpack(Resource::Memory),
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        ];
        assert_eq!(
            place(&instances, &Request::new(1, 1, "g", &[]), &strategies, 0),
            Some(2)
        );
    }

    #[test]
    fn random_is_deterministic_by_seed_and_only_picks_fitting_instances() {
        let instances: Vec<_> = (0..10)
            .map(|n| {
                let memory = if n % 3 == 0 { 100 } else { 4096 };
                instance(&format!("i-{n}"), 4096, memory, &[])
            })
            .collect();
        let random = [Strategy::Random];
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let first = place(&instances, &Request::new(1, 512, "g", &[]), &random, seed);
            assert_eq!(
                first,
                place(&instances, &Request::new(1, 512, "g", &[]), &random, seed)
            );
            let Some(index) = first else {
                panic!("something fits");
            };
            assert_ne!(index % 3, 0, "instance {index} lacks memory");
            seen.insert(index);
        }
        assert_eq!(
            seen.len(),
            6,
            "every fitting instance gets picked: {seen:?}"
        );

        let mut one = instances.clone();
        let mut two = instances.clone();
        assert_eq!(
            place_many(&mut one, 20, &Request::new(1, 512, "g", &[]), &random, 42),
            place_many(&mut two, 20, &Request::new(1, 512, "g", &[]), &random, 42),
        );
    }

    #[test]
    fn random_after_binpack_only_picks_among_the_fullest() {
        let instances = [
            instance("a", 4096, 1024, &[]),
            instance("b", 4096, 4096, &[]),
            instance("c", 4096, 1024, &[]),
        ];
        let strategies = [Strategy::Binpack(Resource::Memory), Strategy::Random];
        for seed in 0..50 {
            let chosen = place(&instances, &Request::new(1, 1, "g", &[]), &strategies, seed);
            assert!(matches!(chosen, Some(0 | 2)), "{chosen:?}");
        }
    }

    #[test]
    fn distinct_instance_avoids_instances_running_the_group() {
        let mut taken = instance("taken", 4096, 1024, &[]);
        taken.task_groups.push("family:web".into());
        let mut instances = vec![
            taken,
            instance("free", 4096, 8192, &[]),
            instance("spare", 4096, 8192, &[]),
        ];
        let distinct = [Constraint::DistinctInstance];
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "family:web", &distinct),
                &binpack_memory(),
                0
            ),
            Some(1)
        );
        // Another group may share the instance.
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "family:db", &distinct),
                &binpack_memory(),
                0
            ),
            Some(0)
        );
        // Two more fit, one on each free instance; then there is nowhere left.
        let placed = place_many(
            &mut instances,
            5,
            &Request::new(1, 1, "family:web", &distinct),
            &[],
            0,
        );
        assert_eq!(placed, [1, 2]);
    }

    #[test]
    fn place_many_books_resources_and_groups_as_it_goes() {
        let mut instances = vec![
            instance("small", 1024, 1024, &[]),
            instance("large", 1024, 4096, &[]),
        ];
        let placed = place_many(
            &mut instances,
            10,
            &Request::new(256, 512, "g", &[]),
            &binpack_memory(),
            0,
        );
        // Binpack fills the small one first; CPU (4 x 256 per instance) is
        // what runs out in the end.
        assert_eq!(placed, [0, 0, 1, 1, 1, 1]);
        assert_eq!(
            (instances[0].remaining_cpu, instances[0].remaining_memory),
            (512, 0)
        );
        assert_eq!(
            (instances[1].remaining_cpu, instances[1].remaining_memory),
            (0, 2048)
        );
        assert_eq!(instances[1].task_groups, vec!["g"; 4]);
        assert_eq!(
            place(&instances, &Request::new(256, 512, "g", &[]), &[], 0),
            None
        );
    }

    #[test]
    fn draining_instances_are_skipped() {
        let mut draining = instance("draining", 4096, 512, &[]);
        draining.status = "DRAINING".into();
        let instances = [draining, instance("active", 4096, 8192, &[])];
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "g", &[]),
                &binpack_memory(),
                0
            ),
            Some(1)
        );
        assert_eq!(
            place(&instances[..1], &Request::new(1, 1, "g", &[]), &[], 0),
            None
        );
    }

    #[test]
    fn nothing_fits_gives_none() {
        let instances = [instance("a", 256, 8192, &[]), instance("b", 4096, 256, &[])];
        assert_eq!(
            place(
                &instances,
                &Request::new(512, 512, "g", &[]),
                &binpack_memory(),
                0
            ),
            None
        );
        assert_eq!(place(&[], &Request::new(1, 1, "g", &[]), &[], 0), None);
        let member = [Constraint::MemberOf(expr(
            "attribute:ecs.os-type == windows",
        ))];
        let roomy = [instance("c", 4096, 8192, &[("ecs.os-type", "linux")])];
        assert_eq!(
            place(&roomy, &Request::new(1, 1, "g", &member), &[], 0),
            None
        );
    }

    #[test]
    fn member_of_task_group_sees_placements_as_they_happen() {
        // Affinity: only where a `service:db` task runs, and each placed task
        // must not make the next one see stale state.
        let mut instances = fleet();
        instances[1].task_groups.push("service:db".into());
        let affinity = [Constraint::MemberOf(expr("task:group == service:db"))];
        let placed = place_many(
            &mut instances,
            2,
            &Request::new(1, 1, "service:web", &affinity),
            &[],
            0,
        );
        assert_eq!(placed, [1, 1]);

        // Anti-affinity with itself: one task, and then nowhere.
        let mut instances = fleet();
        let alone = [Constraint::MemberOf(expr("not task:group == service:web"))];
        let placed = place_many(
            &mut instances,
            5,
            &Request::new(1, 1, "service:web", &alone),
            &[],
            0,
        );
        assert_eq!(placed, [0, 1, 2]);
    }
}

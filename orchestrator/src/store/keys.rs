//! The store's key schema, written down once: every key berth writes is
//! built here, and this table is the schema. The key strings are the
//! on-disk format (existing `state.db` files must stay readable), so a
//! builder's output never changes; a new kind of record gets a new prefix.
//!
//! | key | value | written by |
//! |-----|-------|------------|
//! | `clusters/<cluster>` | [`Cluster`] (JSON) | create-cluster, first use of `default`, delete-cluster (INACTIVE) |
//! | `families/<family>` | `Family { latest }` (ecs.rs): the newest revision | register-task-definition |
//! | `taskdefs/<family>/<revision>` | `StoredTaskDefinition` (ecs.rs): the [`TaskDefinition`] and its tags; the revision is zero-padded to 10 digits so keys sort by revision | register- / deregister-task-definition |
//! | `instances/<cluster>/<host-id>` | [`ContainerInstance`] | `berth agent` (registers its host, connected; its registered MEMORY less `ECS_RESERVED_MEMORY`, `PORTS`/`PORTS_UDP` string sets of its reserved ports, `ECS_INSTANCE_ATTRIBUTES`), first use of a cluster on a host (SQLite only), (de)register-container-instance, update-container-instances-state; run-task reserves and a task's stop gives back its CPU and memory; a reconcile pass records a lost host disconnected |
//! | `tasks/<cluster>/<task-id>` | [`Task`] (with berth's `TaskInternals`, which name the host it was placed on) | run-task / start-task create; every change after (stop-task, the supervisor, reconcile passes, which stop a lost host's tasks) goes through `Ecs::update_task`; STOPPED is final; deleted once STOPPED for `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION` by its host's agent or `system gc` (`Ecs::remove_stopped_task`) |
//! | `services/<cluster>/<service>` | [`Service`] | create- / update- / delete-service, reconcile passes (deployments, events) |
//! | `load-balancers/<name>` | [`LoadBalancer`] | create- / delete-load-balancer |
//! | `ports/<host-id>/<protocol>/<port>` | holder bytes: `<cluster>/<task-id>` or `load-balancer:<name>` | run-task (a task's host ports), create-load-balancer (its listener) |
//! | `ips/<bridge>/<address>` | holder bytes: `<cluster>/<task-id>` | run-task (awsvpc and bridge modes) |
//! | `account-settings/defaults` | `StoredSettings` (ecs/settings.rs): the account's default settings | put-account-setting-default |
//! | `account-settings/principals/<principal>` | `StoredSettings`: one principal's settings; `<principal>` is its ARN with `/` and `%` escaped (`account_settings::principal_key_part`) | put- / delete-account-setting |
//! | `client-tokens/<cluster>/<token>` | `ClientToken` (ecs/idempotency.rs): a run-task's request fingerprint, its answer and when; `<token>` escaped as principals are | run-task with a `clientToken` (written in the commit of its first task; read by a retry within 24 h) |
//! | `slices/<bridge>/<slice-network>` | the host id holding the slice | shared store only (`ecs/slices.rs`): a host's first placement on, or agent pass over, a cluster on `<bridge>`; deleted with the host's last instance on that bridge (deregister-container-instance) |
//! | `parameters/<name>` | `StoredParameter` (secrets/records.rs): an SSM parameter, its value sealed under the host's `secrets.key`; `<name>` escaped as principals are | put- / delete-parameter |
//! | `vips/<address>` | holder bytes: `<cluster>/<service>` | create-service with `serviceConnectConfiguration` or `serviceRegistries` (in the service's own commit: the service's virtual address, `discovery.rs`); freed by the reconcile pass (`ecs/discovery.rs`) once the service is no longer ACTIVE, after its tables are gone |
//! | `secrets/<name>` | `StoredSecret` (secrets/records.rs): a Secrets Manager secret, its ARN and its labelled versions, each value sealed | create-secret, put-secret-value |
//!
//! Leases are not keys: they live in the store's own lease namespace
//! ([`super::Store::acquire_lease`]), named `reconcile/<cluster>` (held by
//! a reconcile pass over the cluster's services) and
//! `agents/<cluster>/<host-id>` (held by the host's `berth agent`, renewed
//! every third of its TTL: while it lives the instance is connected; once
//! it expired, a reconcile pass stops the instance's tasks; run-task lists
//! a cluster's under `agents/<cluster>/` in one read).
//!
//! Invariants (kept by writing the records of each line in one commit):
//! - Every part between slashes is a checked name that holds no `/`
//!   (clusters, services, families and load balancers by `names::check`
//!   or the load balancer rule, task and host ids are hex, bridges are
//!   interface names, protocols `tcp`/`udp`). So a prefix ending in `/`
//!   lists one cluster's (host's, bridge's) records only: `tasks/a/` never
//!   lists `tasks/ab/…`.
//! - A `ports/` or `ips/` key held by a task exists iff that task's record
//!   exists and is not STOPPED: run-task writes the task and its
//!   reservations in one commit, and the update that makes it STOPPED
//!   deletes them. `system gc` frees any that break this (records written
//!   by hand or by an older berth).
//! - A `ports/` key held by `load-balancer:<name>` exists iff
//!   `load-balancers/<name>` does (created and deleted together). Its
//!   holder has no `/`, so it is never mistaken for a task's.
//! - An instance's remaining CPU and memory are its registered ones minus
//!   what its EC2 tasks that are not STOPPED reserved: reserved in the
//!   commit that creates the task, given back in the one that stops it.
//! - `families/<f>`'s `latest` is the highest revision under
//!   `taskdefs/<f>/`: both are written in one commit, the family at the
//!   revision it was read at.
//!
//! [`Cluster`]: crate::model::Cluster
//! [`TaskDefinition`]: crate::model::TaskDefinition
//! [`ContainerInstance`]: crate::model::ContainerInstance
//! [`Task`]: crate::model::Task
//! [`Service`]: crate::model::Service
//! [`LoadBalancer`]: crate::model::LoadBalancer

use std::net::Ipv4Addr;

/// Every record (the prefix of all keys): what `berth serve`'s scheduler
/// watches between passes.
pub const EVERYTHING: &str = "";
/// Every cluster.
pub const CLUSTERS: &str = "clusters/";
/// Every service, of every cluster.
pub const SERVICES: &str = "services/";
/// Every load balancer (they are not a cluster's).
pub const LOAD_BALANCERS: &str = "load-balancers/";
/// Every host port reservation, of every host.
pub const PORTS: &str = "ports/";
/// Every address reservation, of every bridge.
pub const IPS: &str = "ips/";
/// The reservations a task can hold, whose holders `system gc` checks.
pub const RESERVATIONS: [&str; 2] = [IPS, PORTS];

pub fn cluster(name: &str) -> String {
    format!("{CLUSTERS}{name}")
}

/// The cluster a [`cluster`] key names.
pub fn cluster_name(key: &str) -> Option<&str> {
    key.strip_prefix(CLUSTERS)
}

/// A family's record: its latest revision.
pub fn family(family: &str) -> String {
    format!("families/{family}")
}

pub fn task_definition(family: &str, revision: u64) -> String {
    // Zero-padded so that keys sort by revision.
    format!("taskdefs/{family}/{revision:010}")
}

/// Every revision of `family`, oldest first.
pub fn task_definitions_of(family: &str) -> String {
    format!("taskdefs/{family}/")
}

/// Every revision of every family whose name starts with `prefix` (ECS's
/// `familyPrefix`; empty: all), by family then revision.
pub fn task_definitions_with_family_prefix(prefix: &str) -> String {
    format!("taskdefs/{prefix}")
}

/// A host's container instance in a cluster.
pub fn instance(cluster: &str, host_id: &str) -> String {
    format!("instances/{cluster}/{host_id}")
}

pub fn instances_of(cluster: &str) -> String {
    format!("instances/{cluster}/")
}

pub fn task(cluster: &str, id: &str) -> String {
    format!("tasks/{cluster}/{id}")
}

pub fn tasks_of(cluster: &str) -> String {
    format!("tasks/{cluster}/")
}

pub fn service(cluster: &str, name: &str) -> String {
    format!("{SERVICES}{cluster}/{name}")
}

pub fn services_of(cluster: &str) -> String {
    format!("{SERVICES}{cluster}/")
}

/// The cluster of a [`service`] key.
pub fn service_cluster(key: &str) -> Option<&str> {
    key.strip_prefix(SERVICES)?.split('/').next()
}

pub fn load_balancer(name: &str) -> String {
    format!("{LOAD_BALANCERS}{name}")
}

/// The name a [`load_balancer`] key holds.
pub fn load_balancer_name(key: &str) -> Option<&str> {
    key.strip_prefix(LOAD_BALANCERS)
}

/// A host port is the host's, whichever cluster's task holds it.
pub fn port(host: &str, protocol: &str, port: u16) -> String {
    format!("{PORTS}{host}/{protocol}/{port}")
}

/// The ports of `protocol` reserved on `host`.
pub fn ports_of(host: &str, protocol: &str) -> String {
    format!("{PORTS}{host}/{protocol}/")
}

/// The parts of a [`port`] key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortKey<'a> {
    pub host: &'a str,
    pub protocol: &'a str,
    pub port: u16,
}

pub fn parse_port(key: &str) -> Option<PortKey<'_>> {
    let mut parts = key.strip_prefix(PORTS)?.rsplitn(3, '/');
    let port = parts.next()?.parse().ok()?;
    let protocol = parts.next()?;
    let host = parts.next()?;
    Some(PortKey {
        host,
        protocol,
        port,
    })
}

/// An address belongs to the network (bridge) it is on: clusters sharing
/// a bridge share its addresses.
pub fn ip(bridge: &str, address: &str) -> String {
    format!("{IPS}{bridge}/{address}")
}

/// The addresses reserved on `bridge`.
pub fn ips_of(bridge: &str) -> String {
    format!("{IPS}{bridge}/")
}

/// The address an [`ip`] key reserves.
pub fn parse_ip(key: &str) -> Option<Ipv4Addr> {
    let (_, address) = key.strip_prefix(IPS)?.rsplit_once('/')?;
    address.parse().ok()
}

/// Services' virtual addresses (service discovery), cluster-wide.
pub const VIPS: &str = "vips/";

/// A service's virtual address: Absent on create keeps it one service's.
pub fn vip(address: Ipv4Addr) -> String {
    format!("{VIPS}{address}")
}

/// The address a [`vip`] key holds.
pub fn parse_vip(key: &str) -> Option<Ipv4Addr> {
    key.strip_prefix(VIPS)?.parse().ok()
}

/// A virtual address's holder: `<cluster>/<service>`.
pub fn vip_holder(cluster: &str, service: &str) -> Vec<u8> {
    format!("{cluster}/{service}").into_bytes()
}

/// Every per-host slice of the network on `bridge` (a shared store only:
/// one host's embedded store gives it the whole network).
pub fn slices_of(bridge: &str) -> String {
    format!("slices/{bridge}/")
}

/// The slice of `bridge`'s network starting at `network`: whose host
/// holds it is the value, and Absent on create keeps it one host's.
pub fn slice(bridge: &str, network: Ipv4Addr) -> String {
    format!("slices/{bridge}/{network}")
}

/// The slice network a [`slice`] key names.
pub fn parse_slice(key: &str) -> Option<Ipv4Addr> {
    let (_, network) = key.strip_prefix("slices/")?.rsplit_once('/')?;
    network.parse().ok()
}

/// The account's default settings (PutAccountSettingDefault).
pub fn account_setting_defaults() -> String {
    "account-settings/defaults".to_string()
}

/// One principal's account settings; `principal` already escaped.
pub fn account_settings_of(principal: &str) -> String {
    format!("account-settings/principals/{principal}")
}

/// A run-task's idempotency token in `cluster` (ECS scopes tokens by
/// cluster); `token` already escaped.
pub fn client_token(cluster: &str, token: &str) -> String {
    format!("client-tokens/{cluster}/{token}")
}

/// The lease a reconcile pass over `cluster`'s services holds.
pub fn reconcile_lease(cluster: &str) -> String {
    format!("reconcile/{cluster}")
}

/// The liveness lease of `host`'s agent in `cluster`: held while the
/// agent runs (its holder is the host id).
pub fn agent_lease(cluster: &str, host: &str) -> String {
    format!("agents/{cluster}/{host}")
}

/// The agent leases of `cluster`, all of them listed in one read
/// ([`super::Store::lease_holders`]).
pub fn agent_leases_of(cluster: &str) -> String {
    format!("agents/{cluster}/")
}

/// The host an [`agent_lease`] of `cluster` names.
pub fn agent_lease_host<'a>(cluster: &str, lease: &'a str) -> Option<&'a str> {
    lease
        .strip_prefix("agents/")?
        .strip_prefix(cluster)?
        .strip_prefix('/')
        .filter(|host| !host.is_empty() && !host.contains('/'))
}

/// What a `ports/` or `ips/` key holds: who reserved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder<'a> {
    Task { cluster: &'a str, task_id: &'a str },
    LoadBalancer(&'a str),
}

const LB_HOLDER: &str = "load-balancer:";

impl Holder<'_> {
    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            Holder::Task { cluster, task_id } => format!("{cluster}/{task_id}").into_bytes(),
            // No `/`: never taken for a task's.
            Holder::LoadBalancer(name) => format!("{LB_HOLDER}{name}").into_bytes(),
        }
    }
}

impl<'a> Holder<'a> {
    /// The holder a reservation's value names; None for what berth never
    /// writes.
    pub fn parse(value: &'a str) -> Option<Self> {
        if let Some(name) = value.strip_prefix(LB_HOLDER) {
            return Some(Holder::LoadBalancer(name));
        }
        let (cluster, task_id) = value.split_once('/')?;
        Some(Holder::Task { cluster, task_id })
    }
}

/// A task's reservation value.
pub fn task_holder(cluster: &str, task_id: &str) -> Vec<u8> {
    Holder::Task { cluster, task_id }.to_bytes()
}

/// A load balancer listener's port reservation value.
pub fn load_balancer_holder(name: &str) -> Vec<u8> {
    Holder::LoadBalancer(name).to_bytes()
}

/// An SSM parameter (berth's secret store). Its name may hold `/`, so it
/// is escaped as principals are: one parameter is one part.
pub fn parameter(name: &str) -> String {
    format!(
        "parameters/{}",
        crate::account_settings::principal_key_part(name)
    )
}

/// A Secrets Manager secret, its name escaped as a parameter's.
pub fn secret(name: &str) -> String {
    format!(
        "secrets/{}",
        crate::account_settings::principal_key_part(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_on_disk_strings() {
        // These strings are in existing state.db files: never change them.
        assert_eq!(cluster("default"), "clusters/default");
        assert_eq!(family("web"), "families/web");
        assert_eq!(task_definition("web", 7), "taskdefs/web/0000000007");
        assert_eq!(task_definitions_of("web"), "taskdefs/web/");
        assert_eq!(task_definitions_with_family_prefix("we"), "taskdefs/we");
        assert_eq!(task_definitions_with_family_prefix(""), "taskdefs/");
        assert_eq!(instance("c", "h1"), "instances/c/h1");
        assert_eq!(instances_of("c"), "instances/c/");
        assert_eq!(task("c", "t1"), "tasks/c/t1");
        assert_eq!(tasks_of("c"), "tasks/c/");
        assert_eq!(service("c", "s"), "services/c/s");
        assert_eq!(services_of("c"), "services/c/");
        assert_eq!(load_balancer("lb"), "load-balancers/lb");
        assert_eq!(port("h1", "tcp", 8080), "ports/h1/tcp/8080");
        assert_eq!(ports_of("h1", "udp"), "ports/h1/udp/");
        assert_eq!(ip("berth0", "10.89.0.2"), "ips/berth0/10.89.0.2");
        assert_eq!(ips_of("berth0"), "ips/berth0/");
        assert_eq!(reconcile_lease("c"), "reconcile/c");
        assert_eq!(slices_of("berth0"), "slices/berth0/");
        assert_eq!(
            slice("berth0", Ipv4Addr::new(10, 88, 3, 0)),
            "slices/berth0/10.88.3.0"
        );
        assert_eq!(
            parse_slice("slices/berth0/10.88.3.0"),
            Some(Ipv4Addr::new(10, 88, 3, 0))
        );
        assert_eq!(parse_slice("ips/berth0/10.88.3.0"), None);
        assert_eq!(agent_lease("c", "h1"), "agents/c/h1");
        assert_eq!(agent_leases_of("c"), "agents/c/");
        assert_eq!(account_setting_defaults(), "account-settings/defaults");
        assert_eq!(account_settings_of("p"), "account-settings/principals/p");
        assert_eq!(client_token("c", "t"), "client-tokens/c/t");
        assert_eq!(task_holder("c", "t1"), b"c/t1");
        assert_eq!(load_balancer_holder("lb"), b"load-balancer:lb");
    }

    #[test]
    fn parses_invert_builders() {
        assert_eq!(cluster_name(&cluster("a-b_c")), Some("a-b_c"));
        assert_eq!(load_balancer_name(&load_balancer("web-1")), Some("web-1"));
        assert_eq!(service_cluster(&service("prod", "web")), Some("prod"));
        assert_eq!(
            parse_port(&port("0123abcd", "udp", 65535)),
            Some(PortKey {
                host: "0123abcd",
                protocol: "udp",
                port: 65535
            })
        );
        assert_eq!(
            parse_ip(&ip("berth0", "10.89.0.254")),
            Some(Ipv4Addr::new(10, 89, 0, 254))
        );
        let holder = task_holder("c", "t1");
        assert_eq!(
            Holder::parse(std::str::from_utf8(&holder).expect("utf-8")),
            Some(Holder::Task {
                cluster: "c",
                task_id: "t1"
            })
        );
        let holder = load_balancer_holder("lb");
        assert_eq!(
            Holder::parse(std::str::from_utf8(&holder).expect("utf-8")),
            Some(Holder::LoadBalancer("lb"))
        );
    }

    #[test]
    fn parses_refuse_other_keys() {
        assert_eq!(cluster_name("tasks/a/b"), None);
        assert_eq!(load_balancer_name("clusters/a"), None);
        assert_eq!(service_cluster("tasks/a/b"), None);
        assert_eq!(parse_port("ips/berth0/10.0.0.1"), None);
        assert_eq!(parse_port("ports/h/tcp/http"), None);
        assert_eq!(parse_port("ports/h/70000"), None);
        assert_eq!(parse_ip("ports/h/tcp/80"), None);
        assert_eq!(parse_ip("ips/berth0/not-an-address"), None);
        assert_eq!(Holder::parse("no-slash"), None);
        assert_eq!(agent_lease_host("a", &agent_lease("a", "h1")), Some("h1"));
        assert_eq!(agent_lease_host("a", &agent_lease("ab", "h1")), None);
        assert_eq!(agent_lease_host("a", "agents/a/"), None);
        assert_eq!(agent_lease_host("a", "reconcile/a"), None);
    }

    #[test]
    fn a_prefix_lists_its_own_records_only() {
        // `a` is a prefix of `ab` as a name, never as a key prefix.
        let of_a = [
            tasks_of("a"),
            instances_of("a"),
            services_of("a"),
            task_definitions_of("a"),
            ports_of("a", "tcp"),
            ips_of("a"),
            slices_of("a"),
        ];
        let of_ab = [
            task("ab", "t"),
            instance("ab", "h"),
            service("ab", "s"),
            task_definition("ab", 1),
            port("ab", "tcp", 80),
            ip("ab", "10.0.0.1"),
            slice("ab", Ipv4Addr::new(10, 0, 0, 0)),
        ];
        for (prefix, other) in of_a.iter().zip(&of_ab) {
            assert!(
                !other.starts_with(prefix.as_str()),
                "{prefix} lists {other}"
            );
        }
        assert!(task("a", "t").starts_with(&tasks_of("a")));
        assert!(port("a", "tcp", 80).starts_with(&ports_of("a", "tcp")));
        assert!(!port("a", "tcp", 80).starts_with(&ports_of("a", "tcp6")));
        // Every key of a kind lies under that kind's all-of prefix.
        assert!(cluster("a").starts_with(CLUSTERS));
        assert!(service("a", "s").starts_with(SERVICES));
        assert!(load_balancer("a").starts_with(LOAD_BALANCERS));
        assert!(RESERVATIONS
            .iter()
            .any(|p| port("h", "tcp", 1).starts_with(p)));
        assert!(RESERVATIONS
            .iter()
            .any(|p| ip("b", "10.0.0.1").starts_with(p)));
    }

    #[test]
    fn revisions_sort_as_numbers() {
        let mut keys: Vec<String> = [10, 2, 1_000_000_000, 9]
            .into_iter()
            .map(|r| task_definition("f", r))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [2, 9, 10, 1_000_000_000].map(|r| task_definition("f", r))
        );
    }
}

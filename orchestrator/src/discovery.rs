//! Service discovery's rules, pure: which names a service gets, on which
//! ports, from its `serviceConnectConfiguration` or `serviceRegistries`;
//! its virtual address from the cluster-wide range; and the /etc/hosts
//! lines every task of the cluster gets.
//!
//! The shape is kube-proxy's ClusterIP, as the ECS agent's Service Connect
//! gives each client alias a virtual address in the task's /etc/hosts: a
//! service's names resolve (through /etc/hosts, no DNS server) to one
//! stable address, allocated at create-service, which nftables translates
//! to one of its in-service tasks (`discovery_sync`). Names change only
//! when services come and go; tasks coming and going only change the
//! nftables table. The store side is `ecs::discovery`.
//!
//! Names:
//! - Service Connect: `<discoveryName>.<namespace>` (discoveryName
//!   defaults to the portName, as ECS) and each client alias's `dnsName`
//!   (default `<discoveryName>.<namespace>`), on the alias's port; with no
//!   client alias, the name is served on the container port. The namespace
//!   is the configuration's or the cluster's `serviceConnectDefaults`; an
//!   ARN is taken by its last part.
//! - Cloud Map: berth has no Cloud Map, so the registry ARN's resource part
//!   is the name: `arn:aws:servicediscovery:<region>:<account>:service/web.local`
//!   resolves `web.local` (a real `srv-…` id resolves as itself). The port
//!   is `port` or `containerPort` (one port), else every port the
//!   container maps.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::error::{EcsError, EcsResult};
use crate::model::{
    ContainerDefinition, NetworkMode, Service, ServiceLoadBalancer, Task, TaskDefinition,
};

/// Where services' virtual addresses come from unless
/// `BERTH_SERVICE_VIP_RANGE` says otherwise (kube's default service range
/// is 10.96.0.0/12; this one sits apart from berth's 10.88/10.89 networks).
pub const DEFAULT_VIP_RANGE: &str = "10.255.0.0/16";

/// The line that starts berth's part of a task's /etc/hosts: what follows
/// it is rewritten whenever the cluster's services change.
pub const HOSTS_MARK: &str = "# berth service discovery: rewritten when services change\n";

/// One port of a service's virtual address, and where its tasks take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipPort {
    pub port: u16,
    pub protocol: String,
    pub container: String,
    pub container_port: u16,
}

/// What a service's discovery settings say: its names and ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub names: Vec<String>,
    pub ports: Vec<VipPort>,
}

/// Whether `service` asks for discovery (an enabled Service Connect
/// configuration with services, or a registry).
pub fn wanted(service: &Service) -> bool {
    !service.service_registries.is_empty()
        || service
            .service_connect_configuration
            .as_ref()
            .is_some_and(|c| c.enabled && !c.services.is_empty())
}

/// `service`'s names and ports against its task definition `td`, or an
/// error naming the field; `cluster_namespace` is the cluster's
/// `serviceConnectDefaults.namespace`.
pub fn discovery_of(
    service: &Service,
    td: &TaskDefinition,
    cluster_namespace: Option<&str>,
) -> EcsResult<Discovery> {
    if !wanted(service) {
        return Ok(Discovery::default());
    }
    if matches!(td.network_mode, Some(NetworkMode::Host | NetworkMode::None)) {
        return Err(EcsError::invalid(
            "serviceConnectConfiguration/serviceRegistries: service discovery needs the awsvpc or bridge network mode (each task its own address)",
        ));
    }
    let mut d = Discovery::default();
    if let Some(c) = service
        .service_connect_configuration
        .as_ref()
        .filter(|c| c.enabled)
    {
        let ns = c
            .namespace
            .as_deref()
            .or(cluster_namespace)
            .map(namespace_name)
            .ok_or_else(|| {
                EcsError::invalid(
                    "serviceConnectConfiguration.namespace: missing, and the cluster has no serviceConnectDefaults namespace",
                )
            })?;
        check_dns_name("serviceConnectConfiguration.namespace", ns)?;
        for (i, s) in c.services.iter().enumerate() {
            service_connect_entry(&mut d, i, s, ns, &td.container_definitions)?;
        }
    }
    if service.service_registries.len() > 1 {
        return Err(EcsError::invalid(
            "serviceRegistries: at most one registry per service (as ECS)",
        ));
    }
    if let Some(r) = service.service_registries.first() {
        registry_entry(&mut d, r, td)?;
    }
    Ok(d)
}

/// A Cloud Map registry's name and ports (see the module's doc).
fn registry_entry(
    d: &mut Discovery,
    r: &crate::model::ServiceRegistry,
    td: &TaskDefinition,
) -> EcsResult<()> {
    let name = registry_name(&r.registry_arn)?;
    add_name(d, name);
    let container = match &r.container_name {
        Some(n) => td
            .container_definitions
            .iter()
            .find(|c| &c.name == n)
            .ok_or_else(|| {
                EcsError::invalid(format!(
                    "serviceRegistries[0].containerName: the task definition has no container {n:?}"
                ))
            })?,
        None => td
            .container_definitions
            .iter()
            .find(|c| c.port_mappings.iter().any(|p| p.container_port.is_some()))
            .ok_or_else(|| {
                EcsError::invalid(
                    "serviceRegistries[0]: no container maps a port; name containerName and containerPort",
                )
            })?,
    };
    let ports: Vec<(u16, String)> = match r.port.or(r.container_port) {
        Some(p) => vec![(p, protocol_of(container, r.container_port.unwrap_or(p)))],
        None => container
            .port_mappings
            .iter()
            .filter_map(|p| {
                Some((
                    p.container_port?,
                    p.protocol.clone().unwrap_or_else(|| "tcp".into()),
                ))
            })
            .collect(),
    };
    for (port, protocol) in ports {
        add_port(
            d,
            "serviceRegistries[0]",
            VipPort {
                port,
                protocol,
                container: container.name.clone(),
                container_port: r.container_port.unwrap_or(port),
            },
        )?;
    }
    Ok(())
}

fn service_connect_entry(
    d: &mut Discovery,
    i: usize,
    s: &crate::model::ServiceConnectService,
    ns: &str,
    defs: &[ContainerDefinition],
) -> EcsResult<()> {
    let field = format!("serviceConnectConfiguration.services[{i}]");
    let (container, mapping) = defs
        .iter()
        .flat_map(|c| c.port_mappings.iter().map(move |p| (c, p)))
        .find(|(_, p)| p.other.get("name").and_then(|n| n.as_str()) == Some(s.port_name.as_str()))
        .ok_or_else(|| {
            EcsError::invalid(format!(
                "{field}.portName: no container's portMappings has the name {:?}",
                s.port_name
            ))
        })?;
    let container_port = mapping.container_port.ok_or_else(|| {
        EcsError::invalid(format!(
            "{field}.portName: the port mapping has no containerPort"
        ))
    })?;
    let protocol = mapping.protocol.clone().unwrap_or_else(|| "tcp".into());
    let discovery = s.discovery_name.as_deref().unwrap_or(&s.port_name);
    let own = format!("{discovery}.{ns}");
    check_dns_name(&format!("{field}.discoveryName"), &own)?;
    add_name(d, &own);
    if s.client_aliases.len() > 1 {
        return Err(EcsError::invalid(format!(
            "{field}.clientAliases: at most one (as ECS)"
        )));
    }
    let port = match s.client_aliases.first() {
        Some(a) => {
            let name = a.dns_name.clone().unwrap_or_else(|| own.clone());
            check_dns_name(&format!("{field}.clientAliases[0].dnsName"), &name)?;
            if a.port == 0 {
                return Err(EcsError::invalid(format!(
                    "{field}.clientAliases[0].port: 1–65535"
                )));
            }
            add_name(d, &name);
            a.port
        }
        None => container_port,
    };
    add_port(
        d,
        &field,
        VipPort {
            port,
            protocol,
            container: container.name.clone(),
            container_port,
        },
    )
}

fn add_name(d: &mut Discovery, name: &str) {
    if !d.names.iter().any(|n| n == name) {
        d.names.push(name.to_string());
    }
}

fn add_port(d: &mut Discovery, field: &str, p: VipPort) -> EcsResult<()> {
    if let Some(other) = d
        .ports
        .iter()
        .find(|o| o.port == p.port && o.protocol == p.protocol)
    {
        if *other == p {
            return Ok(());
        }
        return Err(EcsError::invalid(format!(
            "{field}: port {}/{} is served twice by the service",
            p.port, p.protocol
        )));
    }
    d.ports.push(p);
    Ok(())
}

fn protocol_of(c: &ContainerDefinition, port: u16) -> String {
    c.port_mappings
        .iter()
        .find(|p| p.container_port == Some(port))
        .and_then(|p| p.protocol.clone())
        .unwrap_or_else(|| "tcp".into())
}

/// A namespace as a name: an ARN (`…:namespace/<id>`) by its last part.
pub fn namespace_name(ns: &str) -> &str {
    match ns.starts_with("arn:") {
        true => ns.rsplit('/').next().unwrap_or(ns),
        false => ns,
    }
}

/// The name a Cloud Map registry's ARN gives (its resource part).
pub fn registry_name(arn: &str) -> EcsResult<&str> {
    let bad =
        |why: &str| EcsError::invalid(format!("serviceRegistries[0].registryArn: {arn:?}: {why}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "servicediscovery" {
        return Err(bad(
            "not arn:<partition>:servicediscovery:<region>:<account>:service/<name>",
        ));
    }
    let name = parts[5]
        .strip_prefix("service/")
        .ok_or_else(|| bad("the resource is not service/<name>"))?;
    check_dns_name("serviceRegistries[0].registryArn", name)?;
    Ok(name)
}

/// A host name /etc/hosts can hold: dot-separated labels of letters,
/// digits and hyphens, 1–63 each, 253 in all.
pub fn check_dns_name(field: &str, name: &str) -> EcsResult<()> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        return Ok(());
    }
    Err(EcsError::invalid(format!(
        "{field}: {name:?} is not a DNS name (labels of letters, digits and hyphens)"
    )))
}

/// The virtual address range `spec` names (`BERTH_SERVICE_VIP_RANGE`).
pub fn vip_range(spec: &str) -> EcsResult<berth_net::Subnet> {
    spec.parse().map_err(|e: berth_net::Error| {
        EcsError::invalid(format!("BERTH_SERVICE_VIP_RANGE: {spec:?}: {e}"))
    })
}

/// The first address of `range` no service holds.
pub fn pick_vip(range: &berth_net::Subnet, used: &BTreeSet<Ipv4Addr>) -> EcsResult<Ipv4Addr> {
    berth_net::allocate(range, used).ok_or_else(|| {
        EcsError::invalid(format!(
            "service discovery: every virtual address of {range} is taken (BERTH_SERVICE_VIP_RANGE)"
        ))
    })
}

/// The tasks' backends for one port: `service`'s in-service tasks, at
/// their address (awsvpc) or the container's (bridge).
pub fn backends(service: &Service, port: &VipPort, tasks: &[Task]) -> Vec<berth_net::lb::Backend> {
    let entry = ServiceLoadBalancer {
        container_name: port.container.clone(),
        container_port: port.container_port,
        ..Default::default()
    };
    let mut out: Vec<_> = tasks
        .iter()
        .filter(|t| t.service_name() == Some(service.service_name.as_str()) && t.in_service())
        .filter_map(|t| crate::load_balancing::backend_of(t, &entry))
        .collect();
    out.sort();
    out
}

/// berth's part of /etc/hosts: each service's address and names, sorted
/// by address so the text only changes when the services do.
pub fn hosts_block(entries: &[(Ipv4Addr, Vec<String>)]) -> String {
    let mut sorted: Vec<&(Ipv4Addr, Vec<String>)> =
        entries.iter().filter(|(_, n)| !n.is_empty()).collect();
    sorted.sort();
    let mut out = String::from(HOSTS_MARK);
    for (vip, names) in sorted {
        out.push_str(&format!("{vip}\t{}\n", names.join(" ")));
    }
    out
}

/// `current` (a task's /etc/hosts) with berth's part replaced by `block`.
pub fn with_block(current: &str, block: &str) -> String {
    let own = match current.find(HOSTS_MARK) {
        Some(at) => &current[..at],
        None => current,
    };
    let mut out = own.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(block);
    out
}

#[cfg(test)]
mod tests;

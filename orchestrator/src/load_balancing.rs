//! Load balancers' rules, pure: what create-load-balancer and a service's
//! `loadBalancers` may say, and what the kernel is told (a listener, the
//! backends a service's tasks give it) from the records.
//!
//! A rule module like `taskdef.rs`, not the scheduler: it decides nothing
//! about where tasks run, only what a load balancer is and sends to. The
//! store glue is `ecs::load_balancers`, the kernel work `lb_sync`.

use std::net::Ipv4Addr;

use crate::error::{EcsError, EcsResult};
use crate::model::{LoadBalancer, NetworkMode, Service, ServiceLoadBalancer, Task, TaskDefinition};

/// ELB's default deregistration delay.
pub const DEFAULT_DEREGISTRATION_DELAY: u32 = 300;

/// ELB's name rule: 1–32 letters, digits and hyphens, no hyphen at the ends.
pub(crate) fn check_lb_name(name: &str) -> EcsResult<()> {
    let valid = (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(EcsError::invalid(format!(
            "loadBalancerName: {name:?}: 1 to 32 letters, digits and hyphens, not starting or ending with a hyphen"
        )))
    }
}

/// A listener's protocol: tcp (the default) or udp, in lower case.
pub(crate) fn protocol(requested: Option<&str>) -> EcsResult<String> {
    let protocol = requested.unwrap_or("tcp").to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp") {
        return Err(EcsError::invalid(format!(
            "protocol: {protocol:?}: tcp or udp"
        )));
    }
    Ok(protocol)
}

/// The deregistration delay, ELB's default when none is asked for.
pub(crate) fn deregistration_delay(requested: Option<u32>) -> EcsResult<u32> {
    let delay = requested.unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
    if delay > 3600 {
        return Err(EcsError::invalid(
            "deregistrationDelaySeconds: 0–3600 (as ELB)",
        ));
    }
    Ok(delay)
}

/// `[ADDR:]PORT` → (address, port).
pub(crate) fn parse_listen(listen: &str) -> EcsResult<(Option<Ipv4Addr>, u16)> {
    let bad = |why: &str| EcsError::invalid(format!("listen: {listen:?}: {why}"));
    let (addr, port) = match listen.rsplit_once(':') {
        Some((a, p)) => (
            Some(
                a.parse::<Ipv4Addr>()
                    .map_err(|_| bad("not an IPv4 address"))?,
            ),
            p,
        ),
        None => (None, listen),
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("the port must be 1–65535"))?;
    Ok((addr.filter(|a| !a.is_unspecified()), port))
}

impl LoadBalancer {
    pub(crate) fn listener(&self) -> EcsResult<berth_net::lb::Listener> {
        Ok(berth_net::lb::Listener {
            name: self.load_balancer_name.clone(),
            address: self
                .address
                .as_deref()
                .map(|a| a.parse())
                .transpose()
                .map_err(|_| EcsError::invalid(format!("stored address {:?}", self.address)))?,
            port: self.port,
            protocol: self.protocol.clone(),
        })
    }
}

/// Where `task` takes connections for `entry`: its own address (awsvpc) or
/// its container's (bridge), at the container port.
pub(crate) fn backend_of(
    task: &Task,
    entry: &ServiceLoadBalancer,
) -> Option<berth_net::lb::Backend> {
    let b = task.berth.as_ref()?;
    let net = b.network.as_ref().or_else(|| {
        b.container_networks
            .iter()
            .find(|cn| cn.container == entry.container_name)
            .map(|cn| &cn.network)
    })?;
    Some(berth_net::lb::Backend {
        address: net.address.parse().ok()?,
        port: entry.container_port,
        bridge: net.bridge.clone(),
    })
}

/// The backends `service`'s `tasks` give load balancer `name`: the tasks
/// in service (RUNNING, healthy, not stopping), at each of the service's
/// entries for `name`.
pub(crate) fn service_backends<'a>(
    service: &Service,
    tasks: &'a [Task],
    name: &str,
) -> Vec<(&'a Task, berth_net::lb::Backend)> {
    let mut out = Vec::new();
    for entry in service
        .load_balancers
        .iter()
        .filter(|e| e.load_balancer_name.as_deref() == Some(name))
    {
        for task in tasks
            .iter()
            .filter(|t| t.service_name() == Some(service.service_name.as_str()) && t.in_service())
        {
            if let Some(backend) = backend_of(task, entry) {
                out.push((task, backend));
            }
        }
    }
    out
}

/// The load balancer a service's `loadBalancers[i]` names, refusing what
/// berth has not (target groups) and a missing name.
pub(crate) fn entry_name(i: usize, e: &ServiceLoadBalancer) -> EcsResult<&str> {
    if e.target_group_arn.is_some() {
        return Err(EcsError::invalid(format!(
            "loadBalancers[{i}].targetGroupArn: berth has no target groups; name a load balancer from create-load-balancer in loadBalancerName"
        )));
    }
    e.load_balancer_name
        .as_deref()
        .ok_or_else(|| EcsError::invalid(format!("loadBalancers[{i}].loadBalancerName: missing")))
}

/// Check a service's `loadBalancers[i]` against its task definition and
/// the load balancer it names: the container maps the port in the load
/// balancer's protocol, in a network mode a load balancer reaches.
pub(crate) fn check_entry(
    i: usize,
    e: &ServiceLoadBalancer,
    lb: &LoadBalancer,
    td: &TaskDefinition,
) -> EcsResult<()> {
    let field = format!("loadBalancers[{i}]");
    let Some(c) = td
        .container_definitions
        .iter()
        .find(|c| c.name == e.container_name)
    else {
        return Err(EcsError::invalid(format!(
            "{field}.containerName: the task definition has no container {:?}",
            e.container_name
        )));
    };
    let maps = c.port_mappings.iter().any(|pm| {
        pm.container_port == Some(e.container_port)
            && pm.protocol.as_deref().unwrap_or("tcp") == lb.protocol
    });
    if !maps {
        return Err(EcsError::invalid(format!(
            "{field}.containerPort: container {:?} has no {}/{} port mapping",
            e.container_name, e.container_port, lb.protocol
        )));
    }
    if !matches!(
        td.network_mode,
        Some(NetworkMode::Awsvpc | NetworkMode::Bridge) | None
    ) {
        return Err(EcsError::invalid(format!(
            "{field}: load balancers need the bridge or awsvpc network mode"
        )));
    }
    Ok(())
}

/// Names of the load balancers `service` is attached to.
pub fn names_of(service: &Service) -> Vec<String> {
    service
        .load_balancers
        .iter()
        .filter_map(|e| e.load_balancer_name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DesiredStatus, TaskInternals, TaskNetwork, TaskStatus};

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("8080").unwrap(), (None, 8080));
        assert_eq!(
            parse_listen("127.0.0.1:80").unwrap(),
            (Some(Ipv4Addr::LOCALHOST), 80)
        );
        assert_eq!(parse_listen("0.0.0.0:80").unwrap(), (None, 80));
        for bad in ["", "0", "70000", "host:80", "1.2.3:80"] {
            let e = parse_listen(bad).unwrap_err().to_string();
            assert!(e.contains("listen"), "{e}");
        }
    }

    #[test]
    fn names() {
        assert!(check_lb_name("web-lb1").is_ok());
        for bad in ["", "-a", "a-", "a_b", &"x".repeat(33)] {
            assert!(check_lb_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocols_and_delays() {
        assert_eq!(protocol(None).unwrap(), "tcp");
        assert_eq!(protocol(Some("UDP")).unwrap(), "udp");
        assert!(protocol(Some("sctp")).is_err());
        assert_eq!(
            deregistration_delay(None).unwrap(),
            DEFAULT_DEREGISTRATION_DELAY
        );
        assert_eq!(deregistration_delay(Some(0)).unwrap(), 0);
        assert_eq!(deregistration_delay(Some(3600)).unwrap(), 3600);
        assert!(deregistration_delay(Some(3601)).is_err());
    }

    fn entry(name: Option<&str>, container: &str, port: u16) -> ServiceLoadBalancer {
        ServiceLoadBalancer {
            load_balancer_name: name.map(str::to_string),
            target_group_arn: None,
            container_name: container.into(),
            container_port: port,
        }
    }

    fn lb(protocol: &str) -> LoadBalancer {
        LoadBalancer {
            load_balancer_name: "web".into(),
            protocol: protocol.into(),
            port: 80,
            ..Default::default()
        }
    }

    fn td(network_mode: &str) -> TaskDefinition {
        serde_json::from_value(serde_json::json!({
            "networkMode": network_mode,
            "containerDefinitions": [{
                "name": "app",
                "image": "busybox",
                "portMappings": [{"containerPort": 8080}],
            }],
        }))
        .expect("a task definition")
    }

    #[test]
    fn service_entries() {
        assert_eq!(
            entry_name(0, &entry(Some("web"), "app", 8080)).unwrap(),
            "web"
        );
        let e = entry_name(1, &entry(None, "app", 8080))
            .unwrap_err()
            .to_string();
        assert!(e.contains("loadBalancers[1].loadBalancerName"), "{e}");
        let mut tg = entry(Some("web"), "app", 8080);
        tg.target_group_arn = Some("arn:tg".into());
        assert!(entry_name(0, &tg)
            .unwrap_err()
            .to_string()
            .contains("targetGroupArn"));

        let ok = entry(Some("web"), "app", 8080);
        assert!(check_entry(0, &ok, &lb("tcp"), &td("awsvpc")).is_ok());
        assert!(check_entry(0, &ok, &lb("tcp"), &td("bridge")).is_ok());
        for (e, lb, td, field) in [
            (
                entry(Some("web"), "db", 8080),
                lb("tcp"),
                td("awsvpc"),
                "containerName",
            ),
            (
                entry(Some("web"), "app", 9090),
                lb("tcp"),
                td("awsvpc"),
                "containerPort",
            ),
            (ok.clone(), lb("udp"), td("awsvpc"), "containerPort"),
            (ok.clone(), lb("tcp"), td("host"), "network mode"),
        ] {
            let err = check_entry(0, &e, &lb, &td).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    fn task(id: &str, service: &str, status: TaskStatus, net: Option<&str>) -> Task {
        Task {
            task_arn: format!("arn:aws:ecs:local:000000000000:task/c/{id}"),
            group: Some(format!("service:{service}")),
            last_status: status,
            desired_status: DesiredStatus::Running,
            berth: Some(TaskInternals {
                network: net.map(|address| TaskNetwork {
                    bridge: "br0".into(),
                    address: address.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn backends_are_the_service_tasks_in_service() {
        let service = Service {
            service_name: "web".into(),
            load_balancers: vec![
                entry(Some("front"), "app", 8080),
                entry(Some("other"), "app", 1),
            ],
            ..Default::default()
        };
        assert_eq!(
            names_of(&service),
            vec!["front".to_string(), "other".to_string()]
        );
        let tasks = [
            task("a", "web", TaskStatus::Running, Some("10.0.0.2")),
            task("pending", "web", TaskStatus::Pending, Some("10.0.0.3")),
            task("theirs", "api", TaskStatus::Running, Some("10.0.0.4")),
            task("no-address", "web", TaskStatus::Running, None),
        ];
        let backends = service_backends(&service, &tasks, "front");
        assert_eq!(backends.len(), 1, "{backends:?}");
        assert_eq!(backends[0].0.id(), "a");
        assert_eq!(
            backends[0].1,
            berth_net::lb::Backend {
                address: Ipv4Addr::new(10, 0, 0, 2),
                port: 8080,
                bridge: "br0".into(),
            }
        );
    }

    #[test]
    fn a_listener_from_the_record() {
        let mut record = lb("udp");
        record.address = Some("127.0.0.1".into());
        let l = record.listener().expect("a listener");
        assert_eq!((l.name.as_str(), l.port), ("web", 80));
        assert_eq!(
            (l.address, l.protocol.as_str()),
            (Some(Ipv4Addr::LOCALHOST), "udp")
        );
        record.address = Some("not-an-address".into());
        assert!(record.listener().is_err());
    }
}

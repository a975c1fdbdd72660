//! Load balancers' rules, pure: the name and `listen` checks, and what
//! the kernel is told (a listener, a task's backend) from the records.

use std::net::Ipv4Addr;

use crate::error::{EcsError, EcsResult};
use crate::model::{LoadBalancer, Service, ServiceLoadBalancer, Task};

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
}

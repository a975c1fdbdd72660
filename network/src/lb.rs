//! Load balancers in the kernel: a listener (host address and port) whose
//! new connections nftables spreads over a set of backends by a random
//! number (`numgen`), as kube-proxy's nftables mode does. Each load
//! balancer is one table, replaced whole in one transaction when its
//! backends change; connections already made keep their backend through
//! conntrack. No process sits in the data path, so the listener works while
//! no berth process runs.

use std::net::Ipv4Addr;

use crate::nat::{loopback_guard, nft_script, route_to_tasks, run_nft};
use crate::{Error, Result};

/// Where a load balancer listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Table-safe name (letters, digits, hyphens).
    pub name: String,
    /// One host address, or None: every address of the host, 127.0.0.1
    /// and the berth bridges' gateways included.
    pub address: Option<Ipv4Addr>,
    pub port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
}

/// Where it sends connections: a task's address and port, on a bridge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Backend {
    pub address: Ipv4Addr,
    pub port: u16,
    pub bridge: String,
}

/// The load balancer's table (see [`crate::tables`]).
pub fn table_name(load_balancer: &str) -> String {
    crate::tables::lb_table(load_balancer)
}

/// The table for `listener` sending to `backends` (none: nothing is
/// translated and the host refuses the connection as it would anyway).
pub fn ruleset(listener: &Listener, backends: &[Backend]) -> Result<String> {
    ruleset_in(&table_name(&listener.name), listener, backends, "")
}

/// The table `t` for `listener` sending to `backends`, with `extra`
/// (chains of the caller's own, e.g. a service address's refusal, see
/// [`crate::vip`]) before its end: the one copy of the spreading rules
/// that load balancers and services' virtual addresses share.
pub(crate) fn ruleset_in(
    t: &str,
    listener: &Listener,
    backends: &[Backend],
    extra: &str,
) -> Result<String> {
    let proto = match listener.protocol.as_str() {
        p @ ("tcp" | "udp") => p,
        other => {
            return Err(Error::Netlink {
                context: format!("load balancer {}", listener.name),
                reason: format!("protocol {other:?} is not tcp or udp"),
            })
        }
    };
    let to_listener = match listener.address {
        Some(a) => format!("ip daddr {a} {proto} dport {}", listener.port),
        None => format!("fib daddr type local {proto} dport {}", listener.port),
    };
    let mut s = format!("table ip {t} {{\n");
    if !backends.is_empty() {
        let arms: Vec<String> = (0..backends.len())
            .map(|i| format!("{i} : goto backend{i}"))
            .collect();
        s += &format!(
            "  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; {to_listener} jump pick; }}\n\
             \x20 chain output {{ type nat hook output priority -100; policy accept; {to_listener} jump pick; }}\n\
             \x20 chain pick {{ numgen random mod {} vmap {{ {} }}; }}\n",
            backends.len(),
            arms.join(", ")
        );
        for (i, b) in backends.iter().enumerate() {
            s += &format!(
                "  chain backend{i} {{ meta l4proto {proto} dnat ip to {}:{}; }}\n",
                b.address, b.port
            );
        }
        // Replies must come back through the host: from loopback, from a
        // task on the same bridge, or from afar.
        let targets: Vec<String> = backends
            .iter()
            .map(|b| format!("{} . {}", b.address, b.port))
            .collect();
        // The bridges route 127.0.0.1 sources for this (see `apply`): keep
        // their tasks off the host's loopback.
        let mut bridges: Vec<String> = backends
            .iter()
            .map(|b| format!("\"{}\"", b.bridge))
            .collect();
        bridges.sort_unstable();
        bridges.dedup();
        s += &format!(
            "  chain input {{ type filter hook input priority filter; policy accept; {}; }}\n",
            loopback_guard(&format!("{{ {} }}", bridges.join(", ")))
        );
        s += &format!(
            "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; \
             meta l4proto {proto} ct original proto-dst {port} ct status dnat \
             ip daddr . {proto} dport {{ {} }} masquerade; }}\n",
            targets.join(", "),
            port = listener.port,
        );
    }
    s += extra;
    s += "}\n";
    Ok(s)
}

/// Make or replace the load balancer's table, in one transaction (which
/// also deletes the table an older berth named it by, see
/// [`crate::tables::legacy_table`]).
pub fn apply(listener: &Listener, backends: &[Backend]) -> Result<()> {
    let mut script = String::new();
    let legacy = crate::tables::legacy_table("berth_lb_", &listener.name);
    for t in std::iter::once(table_name(&listener.name)).chain(legacy) {
        script += &format!("table ip {t}\ndelete table ip {t}\n");
    }
    script += &ruleset(listener, backends)?;
    replace_table(&script, backends)
}

/// Run `script` (which replaces a table whole) and let `backends`'
/// bridges route what it translates to them.
pub(crate) fn replace_table(script: &str, backends: &[Backend]) -> Result<()> {
    nft_script(script)?;
    let mut bridges: Vec<&str> = backends.iter().map(|b| b.bridge.as_str()).collect();
    bridges.sort_unstable();
    bridges.dedup();
    bridges.into_iter().try_for_each(route_to_tasks)
}

/// Remove the load balancer's table (and an older berth's name of it);
/// gone already is no error.
pub fn remove(load_balancer: &str) -> Result<()> {
    let legacy = crate::tables::legacy_table("berth_lb_", load_balancer);
    for t in std::iter::once(table_name(load_balancer)).chain(legacy) {
        delete_table(&t)?;
    }
    Ok(())
}

/// Delete the table `t`; gone already is no error.
pub(crate) fn delete_table(t: &str) -> Result<()> {
    match run_nft(&["-f", "-"], &format!("delete table ip {t}\n")) {
        Err(Error::Netlink { reason, .. }) if reason.contains("No such file") => Ok(()),
        other => other,
    }
}

/// The load balancers that have a table in the kernel.
pub fn tables() -> Result<Vec<String>> {
    Ok(kernel_tables()?
        .iter()
        .filter_map(|t| crate::tables::lb_of_table(t))
        .collect())
}

/// Every `ip` table in the kernel, by name.
pub(crate) fn kernel_tables() -> Result<Vec<String>> {
    let out = std::process::Command::new("nft")
        .args(["list", "tables", "ip"])
        .output()
        .map_err(|e| Error::Netlink {
            context: "run nft (apt-get install nftables)".into(),
            reason: e.to_string(),
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("table ip "))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(address: Option<Ipv4Addr>) -> Listener {
        Listener {
            name: "web-lb".into(),
            address,
            port: 8080,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn ruleset_spreads_over_backends() {
        let backends = [
            Backend {
                address: Ipv4Addr::new(10, 88, 0, 2),
                port: 80,
                bridge: "berth0".into(),
            },
            Backend {
                address: Ipv4Addr::new(10, 88, 0, 3),
                port: 80,
                bridge: "berth0".into(),
            },
        ];
        let r = ruleset(&listener(None), &backends).unwrap();
        assert!(r.starts_with("table ip berth_lb_web_dlb {"), "{r}");
        assert!(
            r.contains("fib daddr type local tcp dport 8080 jump pick"),
            "{r}"
        );
        assert!(
            r.contains("numgen random mod 2 vmap { 0 : goto backend0, 1 : goto backend1 }"),
            "{r}"
        );
        assert!(
            r.contains("chain backend1 { meta l4proto tcp dnat ip to 10.88.0.3:80; }"),
            "{r}"
        );
        assert!(r.contains("{ 10.88.0.2 . 80, 10.88.0.3 . 80 }"), "{r}");
        assert!(
            r.contains("chain input { type filter hook input priority filter; policy accept; iifname { \"berth0\" } ip daddr 127.0.0.0/8 ct status & dnat == 0 ct state & (established | related) == 0 drop; }"),
            "{r}"
        );
        let one = ruleset(&listener(Some(Ipv4Addr::LOCALHOST)), &backends[..1]).unwrap();
        assert!(one.contains("ip daddr 127.0.0.1 tcp dport 8080"), "{one}");
    }

    #[test]
    fn no_backends_no_rules_and_bad_protocol_named() {
        assert_eq!(
            ruleset(&listener(None), &[]).unwrap(),
            "table ip berth_lb_web_dlb {\n}\n"
        );
        let mut l = listener(None);
        l.protocol = "sctp".into();
        assert!(ruleset(&l, &[]).unwrap_err().to_string().contains("sctp"));
    }
}

//! Services' virtual addresses in the kernel (kube-proxy's ClusterIP
//! shape): a stable address per service that tasks reach by name (their
//! /etc/hosts), translated by nftables to one of the service's tasks.
//! Each (address, port) is a load balancer listener whose backends are
//! the service's in-service tasks, written by [`crate::lb`]'s one copy of
//! the spreading rules into a table of its own (`berth_vip_<a_b_c_d>_<port>`),
//! replaced whole in one transaction. The table also refuses what reaches
//! the address without being translated (a port the service does not
//! serve, or no task in service), so a client is told at once rather than
//! waiting on a packet the host would drop. No process is in the path.

use std::net::Ipv4Addr;

use crate::lb::{delete_table, kernel_tables, replace_table, ruleset_in, Backend, Listener};
use crate::tables::{vip_of_table, vip_table};
use crate::Result;

/// The table for `vip`:`port`/`protocol` sending to `backends`.
pub fn ruleset(vip: Ipv4Addr, port: u16, protocol: &str, backends: &[Backend]) -> Result<String> {
    let t = vip_table(vip, port);
    let listener = Listener {
        name: t.clone(),
        address: Some(vip),
        port,
        protocol: protocol.to_string(),
    };
    // After prerouting's DNAT a translated packet no longer has the
    // virtual address as its destination: what still has it was not
    // translated, and nothing else answers for it.
    let refuse = format!(
        "  chain refuse {{ type filter hook forward priority filter; policy accept; \
         ip daddr {vip} meta l4proto tcp reject with tcp reset; ip daddr {vip} reject; }}\n\
         \x20 chain refuse_local {{ type filter hook output priority filter; policy accept; \
         ip daddr {vip} meta l4proto tcp reject with tcp reset; ip daddr {vip} reject; }}\n"
    );
    ruleset_in(&t, &listener, backends, &refuse)
}

/// Make or replace the table of `vip`:`port`.
pub fn apply(vip: Ipv4Addr, port: u16, protocol: &str, backends: &[Backend]) -> Result<()> {
    let t = vip_table(vip, port);
    let script = format!(
        "table ip {t}\ndelete table ip {t}\n{}",
        ruleset(vip, port, protocol, backends)?
    );
    replace_table(&script, backends)
}

/// The (address, port) pairs that have a table in the kernel.
pub fn tables() -> Result<Vec<(Ipv4Addr, u16)>> {
    Ok(kernel_tables()?
        .iter()
        .filter_map(|t| vip_of_table(t))
        .collect())
}

/// Remove the table of `vip`:`port`; gone already is no error.
pub fn remove(vip: Ipv4Addr, port: u16) -> Result<()> {
    delete_table(&vip_table(vip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_on_the_address_that_refuses_the_rest() {
        let vip = Ipv4Addr::new(10, 255, 0, 1);
        let backends = [Backend {
            address: Ipv4Addr::new(10, 88, 0, 2),
            port: 8080,
            bridge: "berth0".into(),
        }];
        let r = ruleset(vip, 80, "tcp", &backends).unwrap();
        assert!(r.starts_with("table ip berth_vip_10_255_0_1_80 {"), "{r}");
        assert!(
            r.contains("ip daddr 10.255.0.1 tcp dport 80 jump pick"),
            "{r}"
        );
        assert!(r.contains("dnat ip to 10.88.0.2:8080"), "{r}");
        assert!(r.contains("type filter hook forward"), "{r}");
        assert!(r.contains("ip daddr 10.255.0.1 meta l4proto tcp reject with tcp reset"));
        assert!(r.trim_end().ends_with('}'), "{r}");
        // No task: refused, not translated.
        let none = ruleset(vip, 80, "tcp", &[]).unwrap();
        assert!(!none.contains("dnat"), "{none}");
        assert!(none.contains("reject"), "{none}");
        assert!(ruleset(vip, 80, "sctp", &[]).is_err());
    }
}

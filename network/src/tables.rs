//! nftables table names: one table per network (bridge) and one per load
//! balancer, each kind under a prefix of its own, with the name escaped so
//! that two different names never share a table.
//!
//! The escaping keeps letters and digits and writes every other byte as
//! `_` and a code: `_` as `__`, `-` as `_d`, `.` as `_p`, anything else as
//! `_x` and two hex digits. A name is read back unambiguously, so the
//! mapping is injective, and the result stays within nft's identifier
//! characters (letters, digits, `_`). Bridge names are at most 15 bytes
//! and load balancer names at most 32, so the longest table name (every
//! byte escaped in hex) is far below nft's 256-byte limit.

/// The prefix of a network's table.
pub const NETWORK_PREFIX: &str = "berth_net_";
/// The prefix of a load balancer's table.
pub const LB_PREFIX: &str = "berth_lb_";
/// The prefix of a service's virtual address's table ([`crate::vip`]).
pub const VIP_PREFIX: &str = "berth_vip_";
/// The table a task's own network namespace holds (never the host's):
/// the metadata endpoint's redirect ([`crate::nat::redirect_local_port_here`]).
pub const LOCAL_REDIRECT_TABLE: &str = "berth_task_endpoint";

/// The table of the network on `bridge`.
pub fn network_table(bridge: &str) -> String {
    format!("{NETWORK_PREFIX}{}", escape(bridge))
}

/// The table of the load balancer `name`.
pub fn lb_table(name: &str) -> String {
    format!("{LB_PREFIX}{}", escape(name))
}

/// The load balancer whose table is `table`, if it is one.
pub fn lb_of_table(table: &str) -> Option<String> {
    unescape(table.strip_prefix(LB_PREFIX)?)
}

/// The table of a service's virtual address `vip` at `port`: the
/// address's octets and the port in decimal, which need no escaping.
pub fn vip_table(vip: std::net::Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = vip.octets();
    format!("{VIP_PREFIX}{a}_{b}_{c}_{d}_{port}")
}

/// The virtual address and port whose table is `table`, if it is one.
pub fn vip_of_table(table: &str) -> Option<(std::net::Ipv4Addr, u16)> {
    let parts: Vec<&str> = table.strip_prefix(VIP_PREFIX)?.split('_').collect();
    let [a, b, c, d, port] = parts.as_slice() else {
        return None;
    };
    let address = format!("{a}.{b}.{c}.{d}").parse().ok()?;
    let port: u16 = port.parse().ok()?;
    // Only the one spelling berth writes (no leading zeros, no sign).
    (vip_table(address, port) == table).then_some((address, port))
}

/// The bridge whose network table is `table`, if it is one.
pub fn network_of_table(table: &str) -> Option<String> {
    unescape(table.strip_prefix(NETWORK_PREFIX)?)
}

/// What berth before this naming called the table of `name` (`-` and `.`
/// made `_`, under `berth_` for a network and `berth_lb_` for a load
/// balancer), when that old name cannot be the table of anything under
/// the current naming, so deleting it harms nothing of today's.
pub fn legacy_table(prefix: &str, name: &str) -> Option<String> {
    let old = format!("{prefix}{}", name.replace(['-', '.'], "_"));
    let current = lb_of_table(&old).is_some()
        || network_of_table(&old).is_some()
        || vip_of_table(&old).is_some();
    (!current).then_some(old)
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(char::from(b)),
            b'_' => out.push_str("__"),
            b'-' => out.push_str("_d"),
            b'.' => out.push_str("_p"),
            other => out.push_str(&format!("_x{other:02x}")),
        }
    }
    out
}

fn unescape(escaped: &str) -> Option<String> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(b),
            b'_' => match bytes.next()? {
                b'_' => out.push(b'_'),
                b'd' => out.push(b'-'),
                b'p' => out.push(b'.'),
                b'x' => {
                    let hex = [bytes.next()?, bytes.next()?];
                    let hex = std::str::from_utf8(&hex).ok()?;
                    if hex.bytes().any(|h| h.is_ascii_uppercase()) {
                        return None;
                    }
                    let v = u8::from_str_radix(hex, 16).ok()?;
                    if v.is_ascii_alphanumeric() || matches!(v, b'_' | b'-' | b'.') {
                        return None;
                    }
                    out.push(v);
                }
                _ => return None,
            },
            _ => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const NAMES: &[&str] = &[
        "br-a", "br_a", "br.a", "br__a", "br_da", "br_pa", "br-_a", "br_-a", "lb_web", "web", "a",
        "A", "x-a", "x_a", "berth0", "net_x", "lb-x", "_", "-", ".", "__", "_d", "x@y",
    ];

    #[test]
    fn injective_over_colliding_names_and_kinds() {
        let mut seen = BTreeSet::new();
        for name in NAMES {
            assert!(seen.insert(network_table(name)), "network {name}");
            assert!(seen.insert(lb_table(name)), "load balancer {name}");
        }
        assert_eq!(seen.len(), NAMES.len() * 2);
        // The old collisions, apart now.
        assert_ne!(network_table("lb_web"), lb_table("web"));
        assert_ne!(network_table("br-a"), network_table("br_a"));
        assert_ne!(network_table("br-a"), network_table("br.a"));
    }

    #[test]
    fn names_read_back_and_stay_nft_identifiers() {
        for name in NAMES {
            let t = network_table(name);
            assert!(
                t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{t}"
            );
            assert_eq!(network_of_table(&t).as_deref(), Some(*name), "{t}");
            assert_eq!(lb_of_table(&lb_table(name)).as_deref(), Some(*name));
            assert_eq!(lb_of_table(&t), None, "{t} is no load balancer's");
        }
        assert_eq!(network_table("br-a.b_c"), "berth_net_br_da_pb__c");
        assert_eq!(lb_table("web-lb"), "berth_lb_web_dlb");
        // The longest: a 15-byte bridge of escaped bytes, a 32-byte name.
        assert!(network_table(&"@".repeat(15)).len() < 256);
        assert!(lb_table(&"-".repeat(32)).len() < 256);
    }

    #[test]
    fn vip_tables_read_back() {
        let vip = std::net::Ipv4Addr::new(10, 255, 0, 7);
        assert_eq!(vip_table(vip, 80), "berth_vip_10_255_0_7_80");
        assert_eq!(vip_of_table("berth_vip_10_255_0_7_80"), Some((vip, 80)));
        for t in [
            "berth_vip_10_255_0_80",
            "berth_vip_10_255_0_07_80",
            "berth_lb_web",
        ] {
            assert_eq!(vip_of_table(t), None, "{t}");
        }
        assert_eq!(lb_of_table(&vip_table(vip, 80)), None);
    }

    #[test]
    fn malformed_table_names_are_nobodys() {
        for t in [
            "berth_lb_",
            "berth_lb_web_",
            "berth_lb_web_q",
            "berth_lb_web_x2",
            "berth_lb_x_x2d",
            "berth_lb_x_x41",
            "berth_lb_x_x4A",
            "berth_lb_a-b",
            "berth_web",
            "filter",
        ] {
            assert_eq!(lb_of_table(t), None, "{t}");
            assert_eq!(network_of_table(t), None, "{t}");
        }
    }

    #[test]
    fn legacy_names_only_when_unambiguous() {
        assert_eq!(
            legacy_table("berth_", "bt1x0").as_deref(),
            Some("berth_bt1x0")
        );
        assert_eq!(
            legacy_table("berth_", "br-a").as_deref(),
            Some("berth_br_a")
        );
        assert_eq!(
            legacy_table("berth_lb_", "web-lb").as_deref(),
            Some("berth_lb_web_lb")
        );
        // Today's name of load balancer "web", and bridge "lb_web"'s old
        // one: never deleted as legacy.
        assert_eq!(legacy_table("berth_", "lb_web"), None);
        assert_eq!(legacy_table("berth_lb_", "web"), None);
    }
}

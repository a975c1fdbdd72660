//! A cluster's network: the bridge and subnet its tasks join, checked,
//! and the rules for networks side by side. Pure: the clusters' records
//! are read by `clusters.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::routes::PeerRoute;
use berth_net::Subnet;

use crate::error::{EcsError, EcsResult};
use crate::model::ClusterNetwork;

/// A cluster network tasks join: a bridge and its subnet. Each cluster
/// names its own at create-cluster; the default is like Podman's
/// (`berth0`, 10.88.0.0/16), and `BERTH_BRIDGE` and `BERTH_SUBNET` change
/// the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    pub bridge: String,
    pub subnet: berth_net::Subnet,
}

impl NetworkConfig {
    /// `bridge` and `subnet` checked; `fields` name them in errors.
    pub fn new(bridge: &str, subnet: &str, fields: (&str, &str)) -> EcsResult<Self> {
        // A link name: IFNAMSIZ less the NUL, and nothing `ip` or sysfs
        // would choke on.
        let valid = (1..=15).contains(&bridge.len())
            && bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && bridge != "."
            && bridge != "..";
        if !valid {
            return Err(EcsError::invalid(format!(
                "{}: {bridge:?}: 1 to 15 letters, digits, '-', '_' or '.'",
                fields.0
            )));
        }
        let subnet = subnet
            .parse()
            .map_err(|e: berth_net::Error| EcsError::invalid(format!("{}: {e}", fields.1)))?;
        Ok(Self {
            bridge: bridge.to_string(),
            subnet,
        })
    }

    pub fn from_env() -> EcsResult<Self> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Self::new(
            &var("BERTH_BRIDGE", "berth0"),
            &var("BERTH_SUBNET", "10.88.0.0/16"),
            ("BERTH_BRIDGE", "BERTH_SUBNET"),
        )
    }

    pub(super) fn record(&self) -> ClusterNetwork {
        ClusterNetwork {
            bridge: self.bridge.clone(),
            subnet: self.subnet.to_string(),
        }
    }

    /// Why `self` cannot sit beside `other`: one bridge has one subnet, and
    /// two bridges' subnets must not overlap (routes would clash).
    pub(super) fn clash(&self, other: &NetworkConfig) -> Option<String> {
        if self.bridge == other.bridge && self.subnet != other.subnet {
            Some(format!(
                "bridge {} has subnet {}",
                other.bridge, other.subnet
            ))
        } else if self.bridge != other.bridge && self.subnet.overlaps(&other.subnet) {
            Some(format!(
                "subnet {} overlaps {} of bridge {}",
                self.subnet, other.subnet, other.bridge
            ))
        } else {
            None
        }
    }

    /// The network for a new cluster on `bridge` beside the networks
    /// `existing`: the subnet the bridge already has, or else the first
    /// /24 of 10.89.0.0/16 that clashes with none (as Podman picks for a
    /// new network).
    pub(super) fn for_bridge(
        bridge: &str,
        existing: &[(String, NetworkConfig)],
    ) -> EcsResult<Self> {
        if let Some((_, n)) = existing.iter().find(|(_, n)| n.bridge == bridge) {
            return Ok(n.clone());
        }
        for third in 0..=255u8 {
            let candidate =
                NetworkConfig::new(bridge, &format!("10.89.{third}.0/24"), ("bridge", "subnet"))?;
            if existing.iter().all(|(_, n)| candidate.clash(n).is_none()) {
                return Ok(candidate);
            }
        }
        Err(EcsError::invalid(
            "subnet: no free /24 left in 10.89.0.0/16; name one",
        ))
    }
}

/// The routes host `own` wants on a network spread over hosts: every other
/// host's slice via that host's address. A host with no address recorded
/// yet is left out (its agent has not passed yet), and so is one claiming
/// this host's own address (a misconfigured `--host-address`: routing a
/// slice via oneself would loop).
pub fn peer_routes(
    own: &str,
    own_address: Ipv4Addr,
    slices: &BTreeMap<String, Subnet>,
    addresses: &BTreeMap<String, Ipv4Addr>,
) -> Vec<PeerRoute> {
    slices
        .iter()
        .filter(|(host, _)| host.as_str() != own)
        .filter_map(|(host, slice)| {
            let via = *addresses.get(host)?;
            (via != own_address).then_some(PeerRoute { slice: *slice, via })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_other_hosts_slice_is_routed_via_its_address() {
        let slice = |s: &str| -> Subnet { s.parse().expect("slice") };
        let slices: BTreeMap<String, Subnet> = [
            ("a", "10.88.0.0/24"),
            ("b", "10.88.1.0/24"),
            ("c", "10.88.2.0/24"),
            ("d", "10.88.3.0/24"),
        ]
        .into_iter()
        .map(|(h, s)| (h.to_string(), slice(s)))
        .collect();
        let addresses: BTreeMap<String, Ipv4Addr> = [
            ("a", [192, 0, 2, 1]),
            ("b", [192, 0, 2, 2]),
            // d claims a's address: never routed via a itself.
            ("d", [192, 0, 2, 1]),
        ]
        .into_iter()
        .map(|(h, a)| (h.to_string(), Ipv4Addr::from(a)))
        .collect();
        assert_eq!(
            peer_routes("a", Ipv4Addr::new(192, 0, 2, 1), &slices, &addresses),
            [PeerRoute {
                slice: slice("10.88.1.0/24"),
                via: Ipv4Addr::new(192, 0, 2, 2)
            }]
        );
    }

    fn net(bridge: &str, subnet: &str) -> NetworkConfig {
        NetworkConfig::new(bridge, subnet, ("bridge", "subnet")).expect("net")
    }

    #[test]
    fn a_bridge_has_one_subnet_and_subnets_do_not_overlap() {
        let lab = net("lab0", "10.77.0.0/24");
        assert_eq!(lab.clash(&net("lab0", "10.77.0.0/24")), None);
        assert!(lab.clash(&net("lab0", "10.78.0.0/24")).is_some());
        assert!(lab.clash(&net("lab1", "10.77.0.128/25")).is_some());
        assert_eq!(lab.clash(&net("lab1", "10.78.0.0/24")), None);
    }

    #[test]
    fn a_new_bridge_gets_the_first_free_24() {
        let existing = vec![
            ("a".to_string(), net("lab0", "10.89.0.0/24")),
            ("b".to_string(), net("lab1", "10.89.2.0/23")),
        ];
        assert_eq!(
            NetworkConfig::for_bridge("lab0", &existing).expect("known"),
            existing[0].1
        );
        let fresh = NetworkConfig::for_bridge("lab9", &existing).expect("fresh");
        assert_eq!(fresh.subnet.to_string(), "10.89.1.0/24");
        let full: Vec<(String, NetworkConfig)> = vec![("all".into(), net("big", "10.89.0.0/16"))];
        assert!(NetworkConfig::for_bridge("lab9", &full).is_err());
    }
}

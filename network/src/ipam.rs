//! Addresses in a subnet: the gateway is the first host address; tasks get
//! the lowest free one after it. A network spread over several hosts is cut
//! into per-host slices (flannel's host-gw shape): each host's bridge
//! carries its own slice, and the other slices are routed via their hosts.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// Ordered by network address, then prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network)
    }

    /// True when the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The prefix of this network's per-host slices: /24s (254 tasks a
    /// host, as flannel gives each node) of a network of /22 or wider; a
    /// narrower one is cut in four, down to /30 (one task a host, the
    /// narrowest slice that still has a gateway and an address).
    pub fn slice_prefix(&self) -> u8 {
        if self.prefix <= 22 {
            24
        } else {
            (self.prefix + 2).min(30)
        }
    }

    /// How many slices the network has.
    pub fn slice_count(&self) -> u32 {
        1u32 << (self.slice_prefix() - self.prefix)
    }

    /// The slice number `index` (0-based), or None past the last one.
    pub fn slice(&self, index: u32) -> Option<Subnet> {
        if index >= self.slice_count() {
            return None;
        }
        let size = 1u32 << (32 - self.slice_prefix());
        Some(Subnet {
            network: Ipv4Addr::from(u32::from(self.network) + index * size),
            prefix: self.slice_prefix(),
        })
    }

    /// The slice whose network address is `network`, if it is one of ours.
    pub fn slice_at(&self, network: Ipv4Addr) -> Option<Subnet> {
        let size = 1u32 << (32 - self.slice_prefix());
        let offset = u32::from(network).checked_sub(u32::from(self.network))?;
        if offset % size != 0 {
            return None;
        }
        self.slice(offset / size)
    }
}

/// The lowest slice of `network` that is not in `taken` (slices held by
/// other hosts), or None when every slice is held.
pub fn free_slice(network: &Subnet, taken: &BTreeSet<Ipv4Addr>) -> Option<Subnet> {
    (0..network.slice_count())
        .filter_map(|i| network.slice(i))
        .find(|s| !taken.contains(&s.network))
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidSubnet(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The lowest address of `subnet` that is not the network, the gateway,
/// the broadcast address or in `used`.
pub fn allocate(subnet: &Subnet, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.gateway()) + 1;
    let last = u32::from(subnet.broadcast()) - 1;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation() {
        let s: Subnet = "10.88.0.0/16".parse().expect("subnet");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        let mut used = BTreeSet::new();
        let a = allocate(&s, &used).expect("first");
        assert_eq!(a, Ipv4Addr::new(10, 88, 0, 2));
        used.insert(a);
        assert_eq!(allocate(&s, &used), Some(Ipv4Addr::new(10, 88, 0, 3)));
        let tiny: Subnet = "192.168.7.0/30".parse().expect("subnet");
        assert_eq!(
            allocate(&tiny, &BTreeSet::new()),
            Some(Ipv4Addr::new(192, 168, 7, 2))
        );
        let full: BTreeSet<Ipv4Addr> = [Ipv4Addr::new(192, 168, 7, 2)].into();
        assert_eq!(allocate(&tiny, &full), None);
        assert_eq!(
            "10.1.2.3/24".parse::<Subnet>().expect("s").network,
            Ipv4Addr::new(10, 1, 2, 0)
        );
        let wide: Subnet = "10.88.0.0/16".parse().expect("subnet");
        let inner: Subnet = "10.88.7.0/24".parse().expect("subnet");
        let apart: Subnet = "10.89.0.0/16".parse().expect("subnet");
        assert!(wide.overlaps(&inner) && inner.overlaps(&wide));
        assert!(!wide.overlaps(&apart));
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "10.0.0.0/31"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    fn subnet(s: &str) -> Subnet {
        s.parse().expect("subnet")
    }

    #[test]
    fn a_wide_network_is_cut_in_24s() {
        let net = subnet("10.88.0.0/16");
        assert_eq!((net.slice_prefix(), net.slice_count()), (24, 256));
        assert_eq!(net.slice(0), Some(subnet("10.88.0.0/24")));
        assert_eq!(net.slice(7), Some(subnet("10.88.7.0/24")));
        assert_eq!(net.slice(255), Some(subnet("10.88.255.0/24")));
        assert_eq!(net.slice(256), None);
        assert_eq!(
            net.slice(3).map(|s| s.gateway()),
            Some(Ipv4Addr::new(10, 88, 3, 1))
        );
        assert_eq!(subnet("10.0.0.0/8").slice_count(), 65536);
        assert_eq!(
            subnet("10.0.0.0/8").slice(65535),
            Some(subnet("10.255.255.0/24"))
        );
        let narrowest_wide = subnet("10.1.4.0/22");
        assert_eq!(narrowest_wide.slice_count(), 4);
        assert_eq!(narrowest_wide.slice(3), Some(subnet("10.1.7.0/24")));
    }

    #[test]
    fn a_narrow_network_is_cut_in_four() {
        let net = subnet("10.89.3.0/24");
        assert_eq!((net.slice_prefix(), net.slice_count()), (26, 4));
        assert_eq!(net.slice(1), Some(subnet("10.89.3.64/26")));
        assert_eq!(net.slice(3), Some(subnet("10.89.3.192/26")));
        assert_eq!(net.slice(4), None);
        assert_eq!(subnet("10.1.0.0/23").slice(2), Some(subnet("10.1.1.0/25")));
        // /29 and /30 stop at /30: a gateway and one address a host.
        assert_eq!(subnet("10.1.0.0/29").slice_count(), 2);
        let tiny = subnet("10.1.0.0/30");
        assert_eq!((tiny.slice_prefix(), tiny.slice_count()), (30, 1));
        assert_eq!(
            allocate(&tiny.slice(0).expect("one"), &BTreeSet::new()),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        // Every slice lies inside its network, and they do not overlap.
        for net in ["10.88.0.0/16", "10.89.3.0/24", "10.1.0.0/23", "10.1.0.0/29"] {
            let net = subnet(net);
            let slices: Vec<Subnet> = (0..net.slice_count())
                .filter_map(|i| net.slice(i))
                .collect();
            assert!(slices
                .iter()
                .all(|s| net.contains(s.network) && net.contains(s.broadcast())));
            assert!(slices.windows(2).all(|w| !w[0].overlaps(&w[1])));
        }
    }

    #[test]
    fn slices_are_found_by_address_and_taken_lowest_first() {
        let net = subnet("10.88.0.0/16");
        assert_eq!(
            net.slice_at(Ipv4Addr::new(10, 88, 9, 0)),
            Some(subnet("10.88.9.0/24"))
        );
        assert_eq!(net.slice_at(Ipv4Addr::new(10, 88, 9, 1)), None);
        assert_eq!(net.slice_at(Ipv4Addr::new(10, 87, 0, 0)), None);
        assert_eq!(net.slice_at(Ipv4Addr::new(10, 89, 0, 0)), None);
        let mut taken = BTreeSet::new();
        assert_eq!(free_slice(&net, &taken), Some(subnet("10.88.0.0/24")));
        taken.insert(Ipv4Addr::new(10, 88, 0, 0));
        taken.insert(Ipv4Addr::new(10, 88, 2, 0));
        assert_eq!(free_slice(&net, &taken), Some(subnet("10.88.1.0/24")));
        let tiny = subnet("10.1.0.0/30");
        assert_eq!(
            free_slice(&tiny, &[Ipv4Addr::new(10, 1, 0, 0)].into()),
            None
        );
    }
}

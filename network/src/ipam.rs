//! Addresses in a subnet: the gateway is the first host address; tasks get
//! the lowest free one after it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

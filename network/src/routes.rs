//! Routes between hosts (flannel's host-gw shape, no overlay): each host's
//! bridge carries its own slice of a cluster network, and the host routes
//! every other host's slice via that host's underlay address, which must be
//! on a link it shares (one L2 segment).
//!
//! berth marks its routes with its own route protocol number
//! ([`ROUTE_PROTOCOL`], shown by `ip route` as `proto 98`) and only ever
//! lists, replaces or deletes routes so marked, inside the network it is
//! given: the routes of the host, of other tools, and of other berth
//! networks are left alone.
//!
//! Forwarding between the bridge and the underlay link is switched on per
//! interface (`net.ipv4.conf.<link>.forwarding`), never through the global
//! `ip_forward`; the network's nftables table accepts what leaves the bridge
//! for the network through the underlay link, and still drops what leaves
//! it for anywhere else.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use crate::links::{err, with_handle};
use crate::nat::{cross_chain, ensure_table, loopback_guard, nft_script, route_to_tasks};
use crate::{Error, Result, Subnet};

/// berth's route protocol number (RTPROT_*): unused by the kernel and by
/// iproute2's `rt_protos` (0-18, 42, 99, 186-192 are taken).
pub const ROUTE_PROTOCOL: u8 = 98;

/// A route to another host's slice of a network, via its host address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerRoute {
    pub slice: Subnet,
    pub via: Ipv4Addr,
}

/// What a sync changes: the routes added (or whose gateway changed) and
/// the ones removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutePlan {
    pub add: Vec<PeerRoute>,
    pub remove: Vec<PeerRoute>,
}

impl RoutePlan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// From berth's routes now inside `network` (`existing`) to `wanted`:
/// what to add and what to remove. Pure. A wanted route outside `network`
/// is never added, and berth's routes outside it are never removed (they
/// are another network's), so syncs of two networks do not fight.
pub fn plan(network: &Subnet, existing: &[PeerRoute], wanted: &[PeerRoute]) -> RoutePlan {
    let inside = |r: &&PeerRoute| network.contains(r.slice.network);
    let existing: BTreeSet<PeerRoute> = existing.iter().filter(inside).copied().collect();
    let wanted: BTreeSet<PeerRoute> = wanted.iter().filter(inside).copied().collect();
    let wanted_slices: BTreeSet<Subnet> = wanted.iter().map(|r| r.slice).collect();
    RoutePlan {
        add: wanted.difference(&existing).copied().collect(),
        // A slice whose gateway changed is replaced in place, not removed.
        remove: existing
            .iter()
            .filter(|r| !wanted_slices.contains(&r.slice))
            .copied()
            .collect(),
    }
}

/// berth's routes (main table, berth's protocol) inside `network` now.
pub fn routes(network: &Subnet) -> Result<Vec<PeerRoute>> {
    let network = *network;
    with_handle(None, move |h| {
        Box::pin(async move {
            let found = berth_routes(&h, &network).await?;
            Ok(found.into_iter().map(|(r, _)| r).collect())
        })
    })
}

/// Make berth's routes inside `network` exactly `wanted`: each missing
/// one added (or its gateway replaced), each one no longer wanted
/// removed. Every change is tried; the first failure is the error, naming
/// the slice and its gateway (a gateway not on any link of this host
/// cannot be routed via).
pub fn sync_routes(network: &Subnet, wanted: &[PeerRoute]) -> Result<RoutePlan> {
    let (network, wanted) = (*network, wanted.to_vec());
    with_handle(None, move |h| {
        Box::pin(async move {
            let found = berth_routes(&h, &network).await?;
            let existing: Vec<PeerRoute> = found.iter().map(|(r, _)| *r).collect();
            let todo = plan(&network, &existing, &wanted);
            let mut first_error = None;
            for r in &todo.add {
                let message = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(r.slice.network, r.slice.prefix)
                    .gateway(r.via)
                    .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
                    .build();
                if let Err(e) = h.route().add(message).replace().execute().await {
                    let e = err(format!("route {} via {}", r.slice, r.via), e);
                    first_error.get_or_insert(e);
                }
            }
            for r in &todo.remove {
                let Some((_, message)) = found.iter().find(|(f, _)| f == r) else {
                    continue;
                };
                match h.route().del(message.clone()).execute().await {
                    Ok(()) => {}
                    // ESRCH: gone already.
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -3 => {}
                    Err(e) => {
                        let e = err(format!("remove route {} via {}", r.slice, r.via), e);
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(todo),
            }
        })
    })
}

/// The routes of the main table marked with berth's protocol, inside
/// `network`, each with the message that deletes it.
async fn berth_routes(
    h: &rtnetlink::Handle,
    network: &Subnet,
) -> Result<Vec<(PeerRoute, RouteMessage)>> {
    let mut dump = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    let mut out = Vec::new();
    while let Some(message) = dump.try_next().await.map_err(|e| err("list routes", e))? {
        if let Some(route) = peer_route(&message) {
            if network.contains(route.slice.network) {
                out.push((route, message));
            }
        }
    }
    Ok(out)
}

/// The berth route a message describes, if it is one.
fn peer_route(message: &RouteMessage) -> Option<PeerRoute> {
    let header = &message.header;
    if header.address_family != AddressFamily::Inet
        || header.table != RouteHeader::RT_TABLE_MAIN
        || u8::from(header.protocol) != ROUTE_PROTOCOL
    {
        return None;
    }
    let mut destination = None;
    let mut via = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => destination = Some(*a),
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => via = Some(*a),
            _ => {}
        }
    }
    let slice: Subnet = format!("{}/{}", destination?, header.destination_prefix_length)
        .parse()
        .ok()?;
    Some(PeerRoute { slice, via: via? })
}

/// Let the network on `bridge` reach the other hosts through the link
/// `underlay`: both forward (per interface), and the network's table
/// accepts what leaves the bridge for `network` through `underlay`
/// (unmasqueraded: the other host routes the replies back by this host's
/// slice), and the replies of connections made to the tasks from the
/// underlay (a load balancer or port mapping on another host, which
/// masquerades); a task still opens nothing new beyond the network.
/// `slice` is this host's, which the bridge carries.
///
/// The underlay also routes 127.0.0.1 sources, as the bridges do: a port
/// mapping or load balancer reached on the host's loopback may send to a
/// task on another host (masqueraded by its own rule). As for the bridges
/// (CVE-2020-8558), what arrives on the underlay for 127.0.0.0/8 is
/// dropped unless DNATed or a reply.
pub fn open_underlay(bridge: &str, slice: &Subnet, network: &Subnet, underlay: &str) -> Result<()> {
    ensure_table(bridge, slice)?;
    route_to_tasks(bridge)?;
    for knob in ["forwarding", "route_localnet"] {
        let path = format!("/proc/sys/net/ipv4/conf/{underlay}/{knob}");
        std::fs::write(&path, "1").map_err(|e| Error::Netlink {
            context: format!("write {path}"),
            reason: e.to_string(),
        })?;
    }
    let t = crate::nat::table_name(bridge);
    let chain = cross_chain();
    // One transaction: the chains are never seen empty by a packet that
    // the old rules accepted (or dropped).
    nft_script(&format!(
        "add chain ip {t} {chain}\n\
         flush chain ip {t} {chain}\n\
         add rule ip {t} {chain} oifname \"{underlay}\" ip daddr {network} accept\n\
         add rule ip {t} {chain} oifname \"{underlay}\" ct state established,related accept\n\
         add chain ip {t} {chain}_input {{ type filter hook input priority filter; policy accept; }}\n\
         flush chain ip {t} {chain}_input\n\
         add rule ip {t} {chain}_input {}\n",
        loopback_guard(&format!("\"{underlay}\""))
    ))
}

/// The address this host sends from toward `peer` (the route's source
/// address), found by connecting a UDP socket, which sends nothing.
pub fn source_address_toward(peer: SocketAddr) -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(peer).ok()?;
    match socket.local_addr().ok()? {
        SocketAddr::V4(a) if !a.ip().is_unspecified() => Some(*a.ip()),
        _ => None,
    }
}

/// This host's addresses of global scope (not loopback, not link-local),
/// each with the link that has it, in the kernel's order.
pub fn global_addresses() -> Result<Vec<(Ipv4Addr, String)>> {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressScope};
    use rtnetlink::packet_route::link::LinkAttribute;
    with_handle(None, move |h| {
        Box::pin(async move {
            let mut names = std::collections::BTreeMap::new();
            let mut links = h.link().get().execute();
            while let Some(link) = links.try_next().await.map_err(|e| err("list links", e))? {
                for a in &link.attributes {
                    if let LinkAttribute::IfName(name) = a {
                        names.insert(link.header.index, name.clone());
                    }
                }
            }
            let mut out = Vec::new();
            let mut addresses = h.address().get().execute();
            while let Some(a) = addresses
                .try_next()
                .await
                .map_err(|e| err("list addresses", e))?
            {
                if a.header.scope != AddressScope::Universe {
                    continue;
                }
                for attribute in &a.attributes {
                    if let AddressAttribute::Local(std::net::IpAddr::V4(ip)) = attribute {
                        if let Some(name) = names.get(&a.header.index) {
                            out.push((*ip, name.clone()));
                        }
                    }
                }
            }
            Ok(out)
        })
    })
}

/// The link that has `address`, if any does.
pub fn link_with_address(address: Ipv4Addr) -> Result<Option<String>> {
    Ok(global_addresses()?
        .into_iter()
        .find(|(a, _)| *a == address)
        .map(|(_, link)| link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(slice: &str, via: [u8; 4]) -> PeerRoute {
        PeerRoute {
            slice: slice.parse().expect("slice"),
            via: Ipv4Addr::from(via),
        }
    }

    #[test]
    fn a_sync_adds_the_missing_and_removes_the_gone() {
        let net: Subnet = "10.88.0.0/16".parse().expect("net");
        let existing = [
            route("10.88.1.0/24", [192, 0, 2, 2]),
            route("10.88.2.0/24", [192, 0, 2, 3]),
        ];
        let wanted = [
            route("10.88.1.0/24", [192, 0, 2, 2]),
            route("10.88.3.0/24", [192, 0, 2, 4]),
        ];
        let p = plan(&net, &existing, &wanted);
        assert_eq!(p.add, [route("10.88.3.0/24", [192, 0, 2, 4])]);
        assert_eq!(p.remove, [route("10.88.2.0/24", [192, 0, 2, 3])]);
        assert!(plan(&net, &wanted, &wanted).is_empty());
    }

    #[test]
    fn a_moved_host_is_replaced_in_place() {
        let net: Subnet = "10.88.0.0/16".parse().expect("net");
        let p = plan(
            &net,
            &[route("10.88.1.0/24", [192, 0, 2, 2])],
            &[route("10.88.1.0/24", [192, 0, 2, 9])],
        );
        assert_eq!(p.add, [route("10.88.1.0/24", [192, 0, 2, 9])]);
        assert!(p.remove.is_empty());
    }

    #[test]
    fn other_networks_routes_are_left_alone() {
        let net: Subnet = "10.88.0.0/16".parse().expect("net");
        let theirs = route("10.99.1.0/24", [192, 0, 2, 2]);
        let p = plan(&net, &[theirs], &[theirs]);
        assert!(p.is_empty(), "{p:?}");
    }
}

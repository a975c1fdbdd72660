//! Networks across hosts, this host's side (flannel's host-gw shape): each
//! agent pass makes this host's bridge carry its slice of each cluster
//! network it has an instance in, routes every other host's slice via that
//! host's address, and lets the bridge and the underlay link forward the
//! network's traffic. Glue: the store through `Ecs` (`ecs/slices.rs`), the
//! routes decided by `ecs::peer_routes`, the kernel through
//! `berth_net::routes`. Nothing happens with the embedded store (one host,
//! nothing to route) or before the agent set this host's address.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use berth_net::routes::{self, RoutePlan};

use crate::ecs::peer_routes;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::store::StoreUrl;
use crate::Ecs;

fn kernel(what: String) -> EcsError {
    EcsError::new(ErrorKind::ServerException, what)
}

/// This host's underlay address: `explicit` (`--host-address`, checked to
/// be an address of this host), else the source address of the route
/// toward the store's first etcd endpoint, else (no route to it known) the
/// host's first global address. None with the embedded store, or when the
/// store is reached over loopback: every host is on this machine, in one
/// network namespace, so there is nothing to route (and no link of the
/// machine's is made to forward). The error names the flag.
pub fn host_address(explicit: Option<Ipv4Addr>, store: &StoreUrl) -> EcsResult<Option<Ipv4Addr>> {
    if let Some(address) = explicit {
        return match routes::link_with_address(address) {
            Ok(Some(_)) => Ok(Some(address)),
            Ok(None) => Err(EcsError::invalid(format!(
                "--host-address: {address} is not an address of this host"
            ))),
            Err(e) => Err(kernel(format!(
                "--host-address: list this host's addresses: {e}"
            ))),
        };
    }
    let StoreUrl::Etcd { endpoints, .. } = store else {
        return Ok(None);
    };
    let toward: Option<SocketAddr> = endpoints
        .first()
        .and_then(|e| e.to_socket_addrs().ok()?.find(SocketAddr::is_ipv4));
    if let Some(source) = toward.and_then(routes::source_address_toward) {
        return Ok((!source.is_loopback()).then_some(source));
    }
    let global = routes::global_addresses()
        .map_err(|e| kernel(format!("list this host's addresses: {e}")))?;
    match global.first() {
        Some((a, _)) => Ok(Some(*a)),
        None => Err(EcsError::invalid(
            "--host-address: this host has no global IPv4 address to be reached at; name one",
        )),
    }
}

/// [`sync`] over every cluster this host has an instance in, each failure
/// logged: the agent's one call each pass.
pub fn sync_all(ecs: &Ecs, bridge_locks: &Path) {
    if !ecs.shared_store() || ecs.host_address().is_none() {
        return;
    }
    let clusters = match ecs.cluster_names() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("routes: list the clusters: {e}");
            return;
        }
    };
    for c in clusters {
        if matches!(ecs.has_instance(&c), Ok(true)) {
            if let Err(e) = sync(ecs, &c, bridge_locks) {
                tracing::warn!("routes of cluster {c}: {e}");
            }
        }
    }
}

/// Bring this host's side of `cluster`'s network in step: its address on
/// its instance, its slice leased and on its bridge, the other hosts'
/// slices routed via their addresses (exactly those of berth's routes in
/// the network), forwarding between the bridge and the underlay link for
/// the network. What changed in the routes; None with the embedded store
/// or before this host's address is set. The bridge is made and opened
/// under a shared hold of its lock in `bridge_locks`, as a task's plug-in
/// is (`berth_net::plug_in`): a supervisor removing it waits.
pub fn sync(ecs: &Ecs, cluster: &str, bridge_locks: &Path) -> EcsResult<Option<RoutePlan>> {
    let Some(address) = ecs.host_address().filter(|_| ecs.shared_store()) else {
        return Ok(None);
    };
    let cluster = ecs.cluster(Some(cluster))?;
    let net = ecs.cluster_network(&cluster)?;
    ecs.record_host_address(&cluster)?;
    let slice = ecs.host_slice(&net, ecs.host_id())?;
    let slices = ecs
        .slices(&net)?
        .into_iter()
        .map(|(host, (slice, _))| (host, slice))
        .collect();
    let wanted = peer_routes(ecs.host_id(), address, &slices, &ecs.host_addresses(&net)?);
    let underlay = routes::link_with_address(address)
        .map_err(|e| kernel(format!("list this host's addresses: {e}")))?
        .ok_or_else(|| {
            kernel(format!(
                "host address {address} is on no link of this host any more"
            ))
        })?;
    let lock = berth_net::BridgeLock::shared(bridge_locks, &net.bridge)
        .map_err(|e| kernel(format!("bridge {}: {e}", net.bridge)))?;
    berth_net::ensure_bridge(&net.bridge, slice.gateway(), slice.prefix)
        .map_err(|e| kernel(format!("bridge {} for slice {slice}: {e}", net.bridge)))?;
    routes::open_underlay(&net.bridge, &slice, &net.subnet, &underlay)
        .map_err(|e| kernel(format!("open {underlay} to {}: {e}", net.subnet)))?;
    drop(lock);
    let plan = routes::sync_routes(&net.subnet, &wanted)
        .map_err(|e| kernel(format!("routes of {}: {e}", net.subnet)))?;
    if !plan.is_empty() {
        tracing::info!(
            "routes of {}: added {:?}, removed {:?}",
            net.subnet,
            plan.add,
            plan.remove
        );
    }
    Ok(Some(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_address_not_on_this_host_is_refused_naming_the_flag() {
        // 192.0.2.0/24 is TEST-NET-1: on no host's link.
        let e = host_address(Some(Ipv4Addr::new(192, 0, 2, 77)), &StoreUrl::Sqlite)
            .expect_err("not ours");
        assert!(
            e.message.starts_with("--host-address: 192.0.2.77"),
            "{}",
            e.message
        );
    }

    #[test]
    fn no_address_is_looked_for_with_the_embedded_store_or_a_store_on_loopback() {
        assert_eq!(host_address(None, &StoreUrl::Sqlite).expect("sqlite"), None);
        let local = StoreUrl::Etcd {
            endpoints: vec!["127.0.0.1:2379".into()],
            prefix: "berth".into(),
            tls: false,
        };
        assert_eq!(host_address(None, &local).expect("loopback"), None);
    }

    #[test]
    fn nothing_is_routed_with_the_embedded_store() {
        let (_dir, ecs) = crate::ecs::fixtures::ecs();
        ecs.set_host_address(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            sync(&ecs, "default", Path::new("/nonexistent")).expect("no-op"),
            None
        );
    }
}

//! Bridges and veth pairs through rtnetlink.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::{Error, Result};

pub(crate) fn err(context: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Netlink {
        context: context.into(),
        reason: e.to_string(),
    }
}

/// Run `work` with a netlink handle on a thread of its own, optionally
/// inside the network namespace at `netns`.
pub(crate) fn with_handle<T: Send + 'static>(
    netns: Option<&Path>,
    work: impl FnOnce(Handle) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>
        + Send
        + 'static,
) -> Result<T> {
    let netns = netns.map(Path::to_path_buf);
    std::thread::spawn(move || {
        if let Some(path) = &netns {
            let file = std::fs::File::open(path)
                .map_err(|e| err(format!("open {}", path.display()), e))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| err(format!("join {}", path.display()), e))?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err("start netlink runtime", e))?;
        rt.block_on(async move {
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|e| err("open netlink", e))?;
            tokio::spawn(connection);
            work(handle).await
        })
    })
    .join()
    .map_err(|_| err("netlink thread", "panicked"))?
}

pub(crate) async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such link.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(None),
        Err(e) => Err(err(format!("look up link {name}"), e)),
    }
}

pub fn link_exists(name: &str) -> Result<bool> {
    let name = name.to_string();
    with_handle(None, move |h| {
        Box::pin(async move { Ok(index_of(&h, &name).await?.is_some()) })
    })
}

/// Set the IPv6 knob `knob` of `link` to `value`; a host without IPv6
/// (no such file) has nothing to set.
fn ipv6_knob(link: &str, knob: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/{knob}");
    match std::fs::write(&path, value) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| err(format!("write {path}"), e)),
    }
}

/// Make the bridge `name` with `gateway/prefix` on it, up; a no-op when it
/// exists already. It takes no IPv6 router advertisements: a task with
/// CAP_NET_RAW could send them and so route the host's IPv6 traffic.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    ensure_bridge_link(name, gateway, prefix)?;
    ipv6_knob(name, "accept_ra", "0")
}

fn ensure_bridge_link(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    let name = name.to_string();
    with_handle(None, move |h| {
        Box::pin(async move {
            let index = match index_of(&h, &name).await? {
                Some(i) => i,
                None => {
                    match h.link().add(LinkBridge::new(&name).build()).execute().await {
                        Ok(()) => {}
                        // Another berth made it meanwhile.
                        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -17 => {}
                        Err(e) => return Err(err(format!("create bridge {name}"), e)),
                    }
                    index_of(&h, &name)
                        .await?
                        .ok_or_else(|| err(format!("create bridge {name}"), "vanished"))?
                }
            };
            match h
                .address()
                .add(index, gateway.into(), prefix)
                .execute()
                .await
            {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -17 => {}
                Err(e) => return Err(err(format!("address {gateway}/{prefix} on {name}"), e)),
            }
            h.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| err(format!("bring {name} up"), e))
        })
    })
}

pub fn remove_bridge(name: &str) -> Result<()> {
    delete_link(name)
}

/// Remove a task's host-side veth; its peer in the namespace goes with it.
pub fn detach(host_ifname: &str) -> Result<()> {
    delete_link(host_ifname)
}

fn delete_link(name: &str) -> Result<()> {
    let name = name.to_string();
    with_handle(None, move |h| {
        Box::pin(async move {
            if let Some(index) = index_of(&h, &name).await? {
                h.link()
                    .del(index)
                    .execute()
                    .await
                    .map_err(|e| err(format!("delete {name}"), e))?;
            }
            Ok(())
        })
    })
}

/// Plug the namespace at `netns` into `bridge`: a veth pair whose host end
/// (`host_ifname`) joins the bridge and whose other end becomes `eth0` in
/// the namespace with `address/prefix` and a default route via `gateway`.
/// The host end, a bridge port only, has IPv6 off: it takes no address or
/// router advertisement of its own.
pub fn attach(
    netns: &Path,
    bridge: &str,
    host_ifname: &str,
    address: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<()> {
    let ns_file =
        std::fs::File::open(netns).map_err(|e| err(format!("open {}", netns.display()), e))?;
    let (bridge, host) = (bridge.to_string(), host_ifname.to_string());
    let ns_fd = ns_file.as_raw_fd();
    with_handle(None, move |h| {
        Box::pin(async move {
            let bridge_index = index_of(&h, &bridge)
                .await?
                .ok_or_else(|| err(format!("attach to {bridge}"), "no such bridge"))?;
            // The peer is born in the namespace, as eth0: moving a link
            // between namespaces waits for RCU grace periods (~30 ms here).
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name("eth0".to_string())
                .setns_by_fd(ns_fd)
                .build();
            let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(host.clone())
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build();
            h.link()
                .add(veth)
                .execute()
                .await
                .map_err(|e| err(format!("create veth {host}"), e))?;
            let host_index = index_of(&h, &host)
                .await?
                .ok_or_else(|| err("veth", "vanished"))?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(host_index)
                        .controller(bridge_index)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| err(format!("plug {host} into {bridge}"), e))
        })
    })?;
    drop(ns_file);
    ipv6_knob(host_ifname, "disable_ipv6", "1")?;
    with_handle(Some(netns), move |h| {
        Box::pin(async move {
            let index = index_of(&h, "eth0")
                .await?
                .ok_or_else(|| err("veth in namespace", "not found"))?;
            h.address()
                .add(index, address.into(), prefix)
                .execute()
                .await
                .map_err(|e| err(format!("address {address}/{prefix}"), e))?;
            h.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| err("bring eth0 up", e))?;
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build();
            h.route()
                .add(route)
                .execute()
                .await
                .map_err(|e| err(format!("default route via {gateway}"), e))
        })
    })
}

//! Task networks over netlink (rtnetlink; no `ip` commands): a bridge per
//! cluster network, a veth pair per task namespace with its address and
//! default route, and address management as pure functions over what the
//! store says is taken.
//!
//! A netlink socket belongs to the network namespace of the thread that
//! opens it, so work inside a task's namespace runs on a thread of its own
//! that has joined it.

mod bridges;
mod ipam;
pub mod lb;
mod links;
mod local_address;
pub mod nat;
mod netlink_msg;
mod nft_netlink;
pub mod routes;
pub mod tables;
pub mod vip;

pub use bridges::{has_ports, plug_in, remove_bridge_if_unused, BridgeLock, Removal};
pub use ipam::{allocate, free_slice, Subnet};
pub use links::{attach, detach, ensure_bridge, link_exists, remove_bridge};
pub use local_address::add_local_address_here;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {reason}")]
    Netlink { context: String, reason: String },
    #[error("invalid subnet {0:?}: expected A.B.C.D/N with N from 8 to 30")]
    InvalidSubnet(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

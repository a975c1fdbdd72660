//! berth's container runtime: OCI containers started through youki's
//! `libcontainer`, each parented by a small monitor process so that no daemon
//! is needed (Podman's conmon is the model).
//!
//! This crate knows nothing of ECS: callers hand it a [`ContainerSpec`] (or an
//! OCI bundle), a cgroup parent and a state root, and get back container
//! states, exit records and logs.

pub mod bounded_read;
pub mod cgroup_stats;
pub mod cgroups;
mod container;
mod error;
pub mod exit;
mod fsutil;
pub mod log_forward;
pub mod logs;
pub mod memory;
mod meta;
pub mod monitor;
pub mod namespaces;
mod paths;
pub mod probe;
pub mod proc;
pub mod resources;
pub mod sealed_exe;
mod seccomp_cache;
pub mod spawn;
pub mod spec;
pub mod start_slots;

pub use container::{
    ContainerState, ContainerStatus, CreateOptions, Created, ExecSpec, ExitWaiter, MonitorStatus,
    Runtime, Source, StopOutcome,
};
pub use error::{Error, Result};
pub use paths::RuntimeRoot;
pub use resources::Resources;
pub use spec::{ContainerSpec, Mount, NamespaceJoin, Rlimit};

//! ECS's model on berth's hosts: clusters, task definitions, tasks and
//! container instances, kept in a [`store::Store`] (SQLite by default).
//!
//! Knows nothing of netlink or libcontainer: it decides, validates and
//! records; the runtime and the network code act.

mod error;
pub mod model;
pub mod names;
pub mod store;
pub mod taskdef;

pub use error::{EcsError, EcsResult, ErrorKind};
pub mod containerize;
pub mod ecs;
pub mod gc;
pub mod health;
pub mod host;
mod lb_sync;
pub mod load_balancing;
pub mod reconcile;
pub mod resolv;
pub mod runnable;
pub mod scheduler;
pub mod supervisor;

pub use ecs::Ecs;
/// The old path, kept while callers elsewhere still use it.
pub use scheduler::placement;

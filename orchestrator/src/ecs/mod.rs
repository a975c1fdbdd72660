//! The ECS API over a [`Store`]: each method is one ECS action, taking and
//! returning ECS's shapes.
//!
//! One `impl Ecs` per resource: `clusters.rs` (with `networks.rs`, the
//! rules for a cluster's bridge and subnet), `task_definitions.rs`,
//! `instances.rs` (container instances), `tasks.rs`, `run_task.rs`
//! (run-task and start-task), `housekeeping.rs` (reservation GC, listings
//! the reconciler and `system gc` read, usage); `metering.rs` is usage's
//! pure arithmetic. `slices.rs`: each host's slice of a cluster network
//! and its underlay address, when a network spans hosts.

use std::path::Path;

use serde::Serialize;

use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::host::Host;
use crate::model::Partition;
use crate::store::{Store, StoreConfig, StoreError};

mod agents;
pub mod bench;
// Issue 14's operations: tags, attributes, settings, capacity
// providers, deleting task definitions, idempotency.
pub mod capacity_providers;
mod clusters;
pub mod discovery;
mod housekeeping;
mod idempotency;
pub mod instance_attributes;
mod instances;
pub mod load_balancers;
pub mod metering;
mod networks;
pub mod run_task;
pub mod services;
pub mod settings;
mod slices;
mod tagging;
mod task_definition_deletes;
mod task_definitions;
pub mod tasks;

pub use instance_attributes::{ListAttributes, TargetedAttribute};
pub use instances::AGENT_VERSION;
pub use networks::peer_routes;
pub use networks::NetworkConfig;
pub(crate) use run_task::launch_type_for;
pub use run_task::{task_needs, RunTask};
pub use settings::{ListAccountSettings, UpdateCluster};
pub use slices::{instance_address, HOST_ADDRESS_ATTRIBUTE};
pub use tasks::{public, TaskFilter};

pub const DEFAULT_CLUSTER: &str = "default";
/// Attempts at an optimistic read-modify-write before giving up.
const MAX_RETRIES: usize = 200;

pub struct Ecs {
    pub(crate) store: Box<dyn Store>,
    pub(crate) partition: Partition,
    pub(crate) host: Host,
    pub(crate) network: NetworkConfig,
    /// This host's underlay address, which the other hosts route its
    /// slices via (`berth agent --host-address`; see `ecs/slices.rs`).
    pub(crate) host_address: std::sync::OnceLock<std::net::Ipv4Addr>,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> EcsResult<T> {
    Ok(serde_json::from_slice(bytes)?)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> EcsResult<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// Run `attempt` until it commits without a conflict.
pub(crate) fn retry<T>(
    mut attempt: impl FnMut() -> EcsResult<Result<T, StoreError>>,
) -> EcsResult<T> {
    for _ in 0..MAX_RETRIES {
        match attempt()? {
            Ok(v) => return Ok(v),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EcsError::new(
        ErrorKind::ServerException,
        "too much contention on the store; try again",
    ))
}

impl Ecs {
    /// The store `store` names (`--store`): by default the embedded one
    /// under `state_root` (`state.db`). This host's facts (its id) are
    /// under `state_root` either way.
    pub fn open(state_root: &Path, store: &StoreConfig, partition: Partition) -> EcsResult<Self> {
        let store = crate::store::open(store, state_root)?;
        let host = Host::detect(state_root).map_err(|e| {
            EcsError::new(
                ErrorKind::ServerException,
                format!("read this host's facts: {e}"),
            )
        })?;
        Self::with_store(store, partition, host)
    }

    pub fn with_store(store: Box<dyn Store>, partition: Partition, host: Host) -> EcsResult<Self> {
        let ecs = Self {
            store,
            partition,
            host,
            network: NetworkConfig::from_env()?,
            host_address: Default::default(),
        };
        ecs.ensure_cluster(DEFAULT_CLUSTER)?;
        Ok(ecs)
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    pub(crate) fn cluster_arn(&self, name: &str) -> String {
        self.partition.arn(&format!("cluster/{name}"))
    }
}

/// What the resources' unit tests share: an `Ecs` on a fresh SQLite store
/// in a temporary directory (kept alive by the returned guard).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Ecs;
    use crate::model::Partition;

    pub(crate) fn ecs() -> (tempfile::TempDir, Ecs) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ecs = Ecs::open(dir.path(), &Default::default(), Partition::default()).expect("open");
        (dir, ecs)
    }

    /// Registers `td`, a task definition in ECS's JSON.
    pub(crate) fn register(ecs: &Ecs, td: serde_json::Value) {
        let td = serde_json::from_value(td).expect("td");
        ecs.register_task_definition(td).expect("register");
    }

    /// Registers family `web`: one small busybox container.
    pub(crate) fn register_web(ecs: &Ecs) {
        register(
            ecs,
            serde_json::json!({
                "family": "web",
                "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 8 }],
            }),
        );
    }
}

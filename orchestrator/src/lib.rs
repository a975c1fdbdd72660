//! ECS's model on berth's hosts: clusters, task definitions, container
//! instances, tasks and services, kept in a [`store::Store`] (SQLite by
//! default), and the per-task supervisor that runs a task.
//!
//! Knows nothing of netlink or libcontainer: it decides, validates and
//! records; the runtime and the network crates act.
//!
//! # The house, by concern
//!
//! - Shapes: [`model`] (ECS's JSON; [`model::status`] its states as enums).
//! - State: [`store`] (the `Store` trait, SQLite, etcd, [`store::keys`]
//!   the key schema, `store::contract` the suite every backend passes;
//!   [`store::url`] parses `--store`, [`store::open`] opens it).
//! - Rules, pure: [`names`], [`taskdef`], [`runnable`], [`containerize`],
//!   [`health`], [`resolv`], [`load_balancing`].
//! - Decisions, pure: [`scheduler`] (placement, deployments, daemons).
//! - ECS's verbs over the store: [`ecs`], one `impl Ecs` per resource.
//! - Effects: [`reconcile`] (passes, the agent loop, orphans, gc, the
//!   routes between hosts' slices: [`reconcile::routes`]),
//!   [`supervisor`] (one process per task, by phase), `lb_sync` (the
//!   load balancers' kernel side).
//! - Shared small effects: [`files`] (a small file made whole and durable),
//!   [`random`] (random bytes and hex, for ids, nonces and keys).
//!
//! # One run-task, file by file
//!
//! 1. `cli/src/ecs/tasks.rs` parses the flags into an [`ecs::RunTask`]
//!    and calls [`Ecs::run_task`].
//! 2. `ecs/run_task.rs` walks the steps: validate (`run_task/request.rs`:
//!    cluster, definition, [`taskdef::check_launch`], overrides, needs) →
//!    place (`run_task/decide.rs` over a snapshot of the instances; the
//!    choice is [`scheduler::placement::place_tasks`]) → reserve
//!    (`run_task/record.rs`: the task record, its addresses, host ports and
//!    the instance's capacity as store ops, keys from [`store::keys`]) →
//!    commit (one transaction per task; a conflict places again).
//! 3. The CLI hands the placed tasks to [`reconcile::start`], which spawns
//!    each one's supervisor (`berth __berth-task`), and prints ECS's
//!    `{"tasks", "failures"}`.
//! 4. The supervisor ([`supervisor`]) claims the task (`orphans.rs`),
//!    prepares it (`prepare.rs`: images, namespaces, network, cgroup,
//!    volumes), starts its containers in `dependsOn` order (`start.rs`,
//!    specs from [`containerize`]), watches them (`events.rs`, `health.rs`),
//!    stops them (`stop.rs`) and releases what the task made
//!    (`teardown.rs`); each state it reaches is written by `record.rs`, and
//!    a failure is a typed `TaskError` carrying ECS's stop code
//!    (`error.rs`).

mod error;
pub mod metadata;
pub mod model;
pub mod names;
pub mod store;
pub mod taskdef;

pub use error::{EcsError, EcsResult, ErrorKind};
// Issue 14's pure rules: ARNs read back, tags, settings, capacity.
pub mod account_settings;
pub mod agent_config;
pub mod arns;
pub mod attributes;
pub mod awslogs;
pub mod capacity;
pub mod client_tokens;
pub mod containerize;
pub mod credentials;
pub mod discovery;
mod discovery_sync;
pub mod ecs;
pub mod files;
pub mod health;
pub mod host;
mod lb_sync;
pub mod load_balancing;
pub mod log_drivers;
pub mod log_forwarding;
pub mod random;
pub mod reconcile;
pub mod resolv;
pub mod runnable;
pub mod scheduler;
pub mod secrets;
pub mod supervisor;
pub mod tags;

pub use ecs::Ecs;

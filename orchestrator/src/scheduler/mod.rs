//! The scheduler: pure decisions about where tasks go.
//!
//! What it decides: given a snapshot of the cluster (container instances,
//! what is left of them and what already runs there) and what a task asks
//! for, which instance takes each task, or why none can, in ECS's terms.
//! Decisions come back as values; thin glue elsewhere (run-task, the
//! service reconciler) reads the store to build the snapshot and commits
//! what the decision says, in one transaction.
//!
//! What it must never do: read or write the store, touch the kernel or the
//! network, or read the clock (only `placement::bench` times itself).
//! Whatever it needs comes in as arguments, so every decision can be
//! replayed (random tie-breaks are seeded) and unit-tested without root.
//! Nomad's `scheduler/` is the model: decisions returning a result, applied
//! elsewhere.

pub mod daemon;
pub mod deployments;
pub mod hosts;
pub mod placement;
pub mod reserved;

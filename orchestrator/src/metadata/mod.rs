//! The task metadata endpoint v4 (TMDS), served by each task's supervisor
//! inside the task's network namespace at 169.254.170.2:80 (see
//! ARCHITECTURE.md, "The task metadata endpoint"): [`json`] builds the
//! answers from the task record (pure), [`server`] listens and answers.

pub mod json;
pub mod server;
pub mod stats;

pub use json::{ContainerTimes, Snapshot, ADDRESS};

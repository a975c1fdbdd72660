//! berth's secret store: SSM parameters and Secrets Manager secrets kept
//! in the cluster's store (`parameters/`, `secrets/` in `store::keys`),
//! their values sealed under the host's key file ([`sealing`]), and what
//! a task's container reads from it and from environment files when it
//! starts ([`env_files`]).
//!
//! - [`refs`]: names, ARNs and `valueFrom` (pure);
//! - [`records`]: the records and their version/label changes (pure);
//! - [`sealing`]: the key file and encryption;
//! - [`store`]: the operations on the store, in aws's shapes.

pub mod env_files;
pub mod records;
pub mod refs;
pub mod sealing;
mod store;

pub use records::ParameterType;
pub use refs::{parse_value_from, SecretRef};
pub use sealing::{SealError, SealingKey};
pub use store::PutParameter;

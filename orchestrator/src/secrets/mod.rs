//! berth's secret store: SSM parameters and Secrets Manager secrets kept
//! in the cluster's store (`parameters/`, `secrets/` in `store::keys`),
//! their values sealed under the host's key file ([`sealing`]), and what
//! a task's container reads from it and from environment files when it
//! starts ([`env_files`]).
//!
//! - [`refs`]: names, ARNs and `valueFrom` (pure);
//! - [`records`]: the records and their version/label changes (pure);
//! - [`sealing`]: the encryption (pure but for the nonce's randomness);
//! - [`key_file`]: the host's key file, read, made, exported, imported;
//! - [`store`]: the operations on the store, in aws's shapes;
//! - [`registry_auth`]: a container's `repositoryCredentials` (pure).

pub mod env_files;
mod key_file;
pub mod records;
pub mod refs;
pub mod registry_auth;
pub mod sealing;
mod store;

pub use records::ParameterType;
pub use refs::{parse_value_from, SecretRef};
pub use sealing::{SealError, SealingKey};
pub use store::PutParameter;

/// The container definition fields the secret store acts on, which
/// registration checks ([`check_container`]) rather than ignores.
pub const CONTAINER_FIELDS: [&str; 3] = [
    env_files::CONTAINER_FIELDS[0],
    env_files::CONTAINER_FIELDS[1],
    registry_auth::CONTAINER_FIELD,
];

/// Registration's check of a container's `secrets`, `environmentFiles`
/// and `repositoryCredentials`; an error names the field under `path`.
pub fn check_container(
    path: &str,
    other: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), String> {
    env_files::check_container(path, other)?;
    registry_auth::credentials_parameter(path, other).map(|_| ())
}

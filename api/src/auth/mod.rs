//! Who may call: anyone (the default: clients send dummy keys, as they do
//! to every local emulator), or, with `--auth sigv4 --credentials FILE`,
//! only a request whose SigV4 signature matches a local access key.
//!
//! - `sigv4.rs`: the verifier (pure: request, body, keys, clock in);
//! - `header.rs`: the Authorization header's shape;
//! - `canonical.rs`: the canonical request the client signed;
//! - `credentials.rs`: the keys file (AWS shared-credentials INI).

mod canonical;
pub mod credentials;
mod header;
pub mod sigv4;

use std::path::Path;

pub use credentials::{AuthError, Credentials};

use crate::protocol::ApiError;

/// The server's authentication mode.
#[derive(Debug, Default)]
pub enum Auth {
    /// Any signature, or none, is accepted.
    #[default]
    Any,
    /// A valid SigV4 signature by one of these keys is required.
    SigV4(Credentials),
}

impl Auth {
    /// SigV4 against the keys of an AWS shared-credentials file.
    pub fn sigv4_from_file(path: &Path) -> Result<Auth, AuthError> {
        Credentials::from_file(path).map(Auth::SigV4)
    }

    /// Whether the request (its head and its whole body) may be served.
    pub fn check(&self, parts: &http::request::Parts, body: &[u8]) -> Result<(), ApiError> {
        match self {
            Self::Any => Ok(()),
            Self::SigV4(keys) => Ok(sigv4::verify(parts, body, keys, chrono::Utc::now())?),
        }
    }
}

//! Who may call: anyone (the default: clients send dummy keys, as they do
//! to every local emulator), or, with `--auth sigv4 --credentials FILE`,
//! only a request whose SigV4 signature matches a local access key.

use crate::protocol::ApiError;

/// The server's authentication mode.
#[derive(Debug, Default)]
pub enum Auth {
    /// Any signature, or none, is accepted.
    #[default]
    Any,
}

impl Auth {
    /// Whether the request (its head and its whole body) may be served.
    pub fn check(&self, _parts: &http::request::Parts, _body: &[u8]) -> Result<(), ApiError> {
        match self {
            Self::Any => Ok(()),
        }
    }
}

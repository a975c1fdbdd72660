use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    InvalidDigest(String),
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("blob {expected}: content has digest {actual} (corrupt or truncated)")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    #[error("blob {0} is not in the store")]
    BlobNotFound(String),
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("image {image}: layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        image: String,
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("image {image}: layer {layer}: {reason}")]
    BadLayer {
        image: String,
        layer: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadSource { path: PathBuf, reason: String },
    #[error("image {image}: {reason}")]
    BadImage { image: String, reason: String },
    #[error("pull {image}: {reason}")]
    Registry { image: String, reason: String },
    /// The registry wants credentials, or refused the ones it was given:
    /// apart, so that a caller can say where its credentials come from.
    #[error(
        "pull {image}: {url}: 401 Unauthorized: give credentials (--username with \
         --password-stdin, or ~/.docker/config.json)"
    )]
    Unauthorized { image: String, url: String },
    #[error("image {image} is used by {users}")]
    InUse { image: String, users: String },
    #[error("{name}={value:?}: {reason}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(context(), source))
    }
}

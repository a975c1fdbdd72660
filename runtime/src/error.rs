use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error names the thing it is about: the container, the field of the
/// spec, or the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {0:?} not found")]
    NotFound(String),
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("invalid container spec: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },
    #[error("invalid bundle {path}: {reason}")]
    InvalidBundle { path: PathBuf, reason: String },
    #[error("container {id:?} is {status}: {hint}")]
    WrongState {
        id: String,
        status: String,
        hint: &'static str,
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
    #[error("container {id:?}: {source}")]
    Libcontainer {
        id: String,
        #[source]
        source: libcontainer::error::LibcontainerError,
    },
    #[error("container {id:?}: the process ran longer than {timeout:?} and was killed")]
    ExecTimedOut {
        id: String,
        timeout: std::time::Duration,
    },
    #[error("container {id:?}: monitor: {reason}")]
    Monitor { id: String, reason: String },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            context: context.into(),
            source,
        }
    }
}

/// Attach a context string to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(context(), source))
    }
}

//! AWS JSON 1.1, as botocore's ECS model speaks it: every call is
//! `POST /` with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`
//! and a JSON body; every error is a JSON body naming a modeled
//! exception in `__type`.

use berth_orchestrator::{EcsError, ErrorKind};
use serde_json::{json, Value};

/// The target prefix of ECS's operations.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

/// The operation an `X-Amz-Target` value names, if it is ECS's.
pub fn operation(target: &str) -> Option<&str> {
    let (prefix, op) = target.split_once('.')?;
    (prefix == TARGET_PREFIX && !op.is_empty()).then_some(op)
}

/// The service a request to `target` must be signed for (SigV4's
/// credential scope): SSM's and Secrets Manager's for their targets,
/// which berth's secret store answers; ECS's for any other (an unknown
/// target is refused after the signature is checked).
pub fn signing_service(target: Option<&str>) -> &'static str {
    match target
        .and_then(|t| t.split_once('.'))
        .map(|(prefix, _)| prefix)
    {
        Some("AmazonSSM") => "ssm",
        Some("secretsmanager") => "secretsmanager",
        _ => "ecs",
    }
}

/// Why a call failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the orchestrator refused (or failed at, for ServerException).
    #[error(transparent)]
    Ecs(#[from] EcsError),
    /// An `X-Amz-Target` naming no operation berth serves.
    #[error("{0}")]
    UnknownOperation(String),
    /// A body that is not JSON, or a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// A body over the server's limit.
    #[error("{0}")]
    TooLarge(String),
    /// A request without a valid signature, under `--auth sigv4`.
    #[error("{message}")]
    Auth {
        exception: AuthException,
        message: String,
    },
}

/// The exceptions AWS answers for a request it cannot authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthException {
    /// No Authorization header (or no signature in it).
    MissingAuthenticationToken,
    /// An access key berth does not know.
    UnrecognizedClient,
    /// A signature that does not match, or a request too old or too new.
    InvalidSignature,
    /// An Authorization header that is not SigV4's shape.
    IncompleteSignature,
}

impl AuthException {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::IncompleteSignature => "IncompleteSignatureException",
        }
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Ecs(EcsError::invalid(message))
    }

    /// The `__type` the client's SDK maps to an exception class.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Ecs(e) => e.kind.as_str(),
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Serialization(_) => "SerializationException",
            Self::TooLarge(_) => "RequestEntityTooLargeException",
            Self::Auth { exception, .. } => exception.as_str(),
        }
    }

    /// The HTTP status: 400 for whatever the client must change, 403 for
    /// authentication, 413 for a body over the limit, and 500 only for
    /// ServerException, as SDKs retry 5xx.
    pub fn status(&self) -> u16 {
        match self {
            Self::Ecs(e) if e.kind == ErrorKind::ServerException => 500,
            Self::Auth { .. } => 403,
            Self::TooLarge(_) => 413,
            _ => 400,
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> Value {
        let message = match self {
            Self::Ecs(e) => e.message.clone(),
            other => other.to_string(),
        };
        json!({ "__type": self.type_name(), "message": message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_is_signed_for_its_service() {
        assert_eq!(signing_service(Some("AmazonSSM.PutParameter")), "ssm");
        assert_eq!(
            signing_service(Some("secretsmanager.GetSecretValue")),
            "secretsmanager"
        );
        assert_eq!(
            signing_service(Some("AmazonEC2ContainerServiceV20141113.ListClusters")),
            "ecs"
        );
        assert_eq!(signing_service(Some("AmazonSSM")), "ecs");
        assert_eq!(signing_service(None), "ecs");
    }

    #[test]
    fn only_ecs_targets_name_an_operation() {
        assert_eq!(
            operation("AmazonEC2ContainerServiceV20141113.ListClusters"),
            Some("ListClusters")
        );
        assert_eq!(operation("AmazonEC2ContainerServiceV20141113."), None);
        assert_eq!(operation("AmazonSSM.GetParameter"), None);
        assert_eq!(operation("ListClusters"), None);
    }

    #[test]
    fn only_server_exceptions_are_5xx() {
        let server = ApiError::Ecs(EcsError::new(ErrorKind::ServerException, "disk"));
        assert_eq!(server.status(), 500);
        let missing = ApiError::Ecs(EcsError::new(ErrorKind::ClusterNotFoundException, "x"));
        assert_eq!(missing.status(), 400);
        assert_eq!(missing.body()["__type"], "ClusterNotFoundException");
        assert_eq!(ApiError::Serialization("x".into()).status(), 400);
    }
}

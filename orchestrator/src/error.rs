use crate::store::StoreError;

/// ECS's error types, as `aws ecs` users see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    ClientException,
    InvalidParameterException,
    ClusterNotFoundException,
    ClusterContainsTasksException,
    ClusterContainsServicesException,
    ClusterContainsContainerInstancesException,
    ServerException,
    ServiceNotFoundException,
    ServiceNotActiveException,
    // Issue 14's operations (tags, attributes, capacity providers,
    // idempotency): ECS's names for what they refuse.
    ResourceNotFoundException,
    ResourceInUseException,
    TargetNotFoundException,
    AttributeLimitExceededException,
    UnsupportedFeatureException,
    ConflictException,
    // berth's secret store: SSM's and Secrets Manager's names.
    ParameterNotFound,
    ParameterAlreadyExists,
    ResourceExistsException,
    ValidationException,
}

impl ErrorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClientException => "ClientException",
            Self::InvalidParameterException => "InvalidParameterException",
            Self::ClusterNotFoundException => "ClusterNotFoundException",
            Self::ClusterContainsTasksException => "ClusterContainsTasksException",
            Self::ClusterContainsServicesException => "ClusterContainsServicesException",
            Self::ClusterContainsContainerInstancesException => {
                "ClusterContainsContainerInstancesException"
            }
            Self::ServerException => "ServerException",
            Self::ServiceNotFoundException => "ServiceNotFoundException",
            Self::ServiceNotActiveException => "ServiceNotActiveException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::ResourceInUseException => "ResourceInUseException",
            Self::TargetNotFoundException => "TargetNotFoundException",
            Self::AttributeLimitExceededException => "AttributeLimitExceededException",
            Self::UnsupportedFeatureException => "UnsupportedFeatureException",
            Self::ConflictException => "ConflictException",
            Self::ParameterNotFound => "ParameterNotFound",
            Self::ParameterAlreadyExists => "ParameterAlreadyExists",
            Self::ResourceExistsException => "ResourceExistsException",
            Self::ValidationException => "ValidationException",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct EcsError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EcsError {
    pub fn client(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::ClientException,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidParameterException,
            message: message.into(),
        }
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<StoreError> for EcsError {
    fn from(e: StoreError) -> Self {
        Self::new(ErrorKind::ServerException, e.to_string())
    }
}

impl From<serde_json::Error> for EcsError {
    fn from(e: serde_json::Error) -> Self {
        Self::new(ErrorKind::ServerException, format!("stored record: {e}"))
    }
}

pub type EcsResult<T> = Result<T, EcsError>;

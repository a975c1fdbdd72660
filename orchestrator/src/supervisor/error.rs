//! Why a supervisor stops its task: a [`TaskError`] when the task cannot
//! start or be watched any more, a [`StopCause`] for every stop the
//! supervisor itself asks for. Each knows its ECS stop code and the
//! `stoppedReason` text written to the store.
//!
//! The texts are ECS's where ECS has one (`CannotPullContainerError: …`,
//! `CannotStartContainerError: …`); where berth's own text carries no ECS
//! prefix, it is kept as it was, since clients and the e2e tests read it.

use crate::model::StopCode;
use crate::EcsError;

/// The task could not start, or its supervisor cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Reading or writing the task's record (or its definition) failed.
    #[error("{0}")]
    Store(#[from] EcsError),
    /// The host's image store cannot be opened.
    #[error("{0}")]
    ImageStore(#[from] berth_rootfs::Error),
    /// An image could not be parsed, loaded or pulled.
    #[error("CannotPullContainerError: {0}")]
    CannotPull(String),
    /// ECS's ResourceInitializationError: the task's namespaces, network,
    /// port mappings, cgroup, volumes or /etc files could not be made.
    #[error("{0}")]
    ResourceInitialization(String),
    /// ECS's CannotCreateContainerError: a container's spec, root
    /// filesystem or log could not be made.
    #[error("{0}")]
    CannotCreateContainer(String),
    /// The runtime could not create or start a container.
    #[error("CannotStartContainerError: container {container}: {message}")]
    CannotStartContainer { container: String, message: String },
    /// A dependency with condition SUCCESS exited with another code.
    #[error("Dependency {dependency} exited with code {code} (condition SUCCESS for {container})")]
    DependencyFailed {
        dependency: String,
        code: i32,
        container: String,
    },
    /// A dependency with condition HEALTHY ended or became UNHEALTHY.
    #[error("Dependency {dependency} did not become HEALTHY (condition HEALTHY for {container})")]
    DependencyUnhealthy {
        dependency: String,
        container: String,
    },
    /// An adopted task had not reached RUNNING: its start cannot go on.
    #[error("The task's supervisor died while starting it")]
    SupervisorDiedStarting,
    /// The threads watching containers are gone: nothing reports exits.
    #[error("event channel closed")]
    EventsClosed,
    /// A new supervisor for an orphan could not be started.
    #[error("start a supervisor: {0}")]
    SpawnSupervisor(#[source] std::io::Error),
}

impl TaskError {
    /// The stop code of a task stopped by this error. Every one of them
    /// keeps the task from starting or running as asked, which ECS calls
    /// TaskFailedToStart; the match is whole, so a new variant chooses.
    pub fn stop_code(&self) -> StopCode {
        match self {
            Self::Store(_)
            | Self::ImageStore(_)
            | Self::CannotPull(_)
            | Self::ResourceInitialization(_)
            | Self::CannotCreateContainer(_)
            | Self::CannotStartContainer { .. }
            | Self::DependencyFailed { .. }
            | Self::DependencyUnhealthy { .. }
            | Self::SupervisorDiedStarting
            | Self::EventsClosed
            | Self::SpawnSupervisor(_) => StopCode::TaskFailedToStart,
        }
    }

    /// The task's `stoppedReason`.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// A stop the supervisor asks for itself (a stop-task's code and reason
/// are the caller's).
#[derive(Debug)]
pub enum StopCause {
    /// An essential container ended: the task is over.
    EssentialContainerExited,
    /// A service task's essential container is UNHEALTHY past its grace
    /// period: its service's scheduler replaces it.
    Unhealthy,
    /// The task cannot start or go on.
    Failed(TaskError),
}

impl StopCause {
    pub fn stop_code(&self) -> StopCode {
        match self {
            Self::EssentialContainerExited => StopCode::EssentialContainerExited,
            Self::Unhealthy => StopCode::ServiceSchedulerInitiated,
            Self::Failed(e) => e.stop_code(),
        }
    }

    /// The task's `stoppedReason`.
    pub fn reason(&self) -> String {
        match self {
            Self::EssentialContainerExited => "Essential container in task exited".into(),
            Self::Unhealthy => "Task failed container health checks".into(),
            Self::Failed(e) => e.reason(),
        }
    }
}

impl From<TaskError> for StopCause {
    fn from(e: TaskError) -> Self {
        Self::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes and texts clients (and the e2e tests) read, byte for byte.
    #[test]
    fn each_stop_knows_its_code_and_reason() {
        let cases: Vec<(StopCause, StopCode, &str)> = vec![
            (
                StopCause::EssentialContainerExited,
                StopCode::EssentialContainerExited,
                "Essential container in task exited",
            ),
            (
                StopCause::Unhealthy,
                StopCode::ServiceSchedulerInitiated,
                "Task failed container health checks",
            ),
            (
                TaskError::CannotPull("manifest unknown".into()).into(),
                StopCode::TaskFailedToStart,
                "CannotPullContainerError: manifest unknown",
            ),
            (
                TaskError::CannotStartContainer {
                    container: "app".into(),
                    message: "exec: no such file".into(),
                }
                .into(),
                StopCode::TaskFailedToStart,
                "CannotStartContainerError: container app: exec: no such file",
            ),
            (
                TaskError::DependencyFailed {
                    dependency: "init".into(),
                    code: 3,
                    container: "app".into(),
                }
                .into(),
                StopCode::TaskFailedToStart,
                "Dependency init exited with code 3 (condition SUCCESS for app)",
            ),
            (
                TaskError::DependencyUnhealthy {
                    dependency: "db".into(),
                    container: "app".into(),
                }
                .into(),
                StopCode::TaskFailedToStart,
                "Dependency db did not become HEALTHY (condition HEALTHY for app)",
            ),
            (
                TaskError::SupervisorDiedStarting.into(),
                StopCode::TaskFailedToStart,
                "The task's supervisor died while starting it",
            ),
            (
                TaskError::ResourceInitialization("volumes[0].name: bad".into()).into(),
                StopCode::TaskFailedToStart,
                "volumes[0].name: bad",
            ),
            (
                TaskError::EventsClosed.into(),
                StopCode::TaskFailedToStart,
                "event channel closed",
            ),
        ];
        for (cause, code, reason) in cases {
            assert_eq!(cause.stop_code(), code, "{cause:?}");
            assert_eq!(cause.reason(), reason);
        }
    }

    #[test]
    fn a_store_error_reads_as_the_store_said() {
        let e = EcsError::client("task x not found");
        let text = e.to_string();
        assert_eq!(TaskError::from(e).reason(), text);
    }
}

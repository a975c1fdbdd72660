//! The states and kinds ECS spells as strings (`lastStatus`, `launchType`,
//! `networkMode`, `stopCode`...), as enums. Each spelling is written once,
//! in [`ecs_enum!`]: it gives the enum its `as_str`, `Display`, `FromStr`
//! and serde, so the JSON stays the plain string ECS prints. A value berth
//! does not know (a newer ECS, a hand-edited record) is kept as `Other`
//! and written back as it came, as the model keeps fields it does not know.

use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One enum per ECS string set: `Variant = "SPELLING"`, plus
/// `Other(String)` for anything else.
macro_rules! ecs_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value berth does not know, kept as given.
            Other(String),
        }

        impl $name {
            /// Every known value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling ECS uses.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $spelling, )+
                    $name::Other(s) => s,
                }
            }

            /// The known value spelled `s`, else `Other(s)`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $spelling => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// Where a known value stands in the declaration order.
            #[allow(dead_code)]
            fn position(&self) -> Option<usize> {
                $name::ALL.iter().position(|v| v == self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Infallible;
            fn from_str(s: &str) -> Result<Self, Infallible> {
                Ok($name::parse(s))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(match $name::parse(&s) {
                    $name::Other(_) => $name::Other(s),
                    known => known,
                })
            }
        }
    };
}

ecs_enum! {
    /// A task's or container's `lastStatus`, and a task's `desiredStatus`,
    /// in lifecycle order: known states compare by it ("past RUNNING" is
    /// `> TaskStatus::Running`); `Other` compares with nothing but itself.
    #[derive(Default)]
    pub enum TaskStatus {
        #[default]
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

impl PartialOrd for TaskStatus {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        self.position()?.partial_cmp(&other.position()?)
    }
}

/// ECS's `desiredStatus` takes the same spellings (RUNNING, PENDING,
/// STOPPED) as `lastStatus`.
pub type DesiredStatus = TaskStatus;

ecs_enum! {
    /// Where a task runs: this host's capacity (EC2) or none of it (FARGATE).
    /// Also a task definition's `compatibilities`.
    #[derive(Default)]
    pub enum LaunchType {
        #[default]
        Ec2 = "EC2",
        Fargate = "FARGATE",
        External = "EXTERNAL",
    }
}

ecs_enum! {
    /// A task definition's `networkMode`; absent means `bridge`.
    #[derive(Default)]
    pub enum NetworkMode {
        #[default]
        Bridge = "bridge",
        Host = "host",
        Awsvpc = "awsvpc",
        None = "none",
    }
}

ecs_enum! {
    /// A service deployment's `status`: PRIMARY is the newest, ACTIVE ones
    /// are being replaced.
    #[derive(Default)]
    pub enum DeploymentStatus {
        #[default]
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A deployment's `rolloutState`.
    #[derive(Default)]
    pub enum RolloutState {
        Completed = "COMPLETED",
        Failed = "FAILED",
        #[default]
        InProgress = "IN_PROGRESS",
    }
}

ecs_enum! {
    /// A container instance's `status`: DRAINING ones get no new tasks.
    #[derive(Default)]
    pub enum InstanceStatus {
        #[default]
        Active = "ACTIVE",
        Draining = "DRAINING",
        Registering = "REGISTERING",
        Deregistering = "DEREGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Inactive = "INACTIVE",
        DeregistrationFailed = "DEREGISTRATION_FAILED",
    }
}

ecs_enum! {
    /// A cluster's `status`: ACTIVE, or INACTIVE once deleted.
    #[derive(Default)]
    pub enum ClusterStatus {
        #[default]
        Active = "ACTIVE",
        Provisioning = "PROVISIONING",
        Deprovisioning = "DEPROVISIONING",
        Failed = "FAILED",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A service's `status`: ACTIVE, DRAINING (deleted, tasks stopping) or
    /// INACTIVE.
    #[derive(Default)]
    pub enum ServiceStatus {
        #[default]
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
}

ecs_enum! {
    /// A task definition revision's `status`.
    #[derive(Default)]
    pub enum TaskDefinitionStatus {
        #[default]
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

ecs_enum! {
    /// A container's or task's `healthStatus`: UNKNOWN until a check
    /// passes or fails often enough.
    #[derive(Default)]
    pub enum HealthStatus {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        #[default]
        Unknown = "UNKNOWN",
    }
}

ecs_enum! {
    /// A service's `schedulingStrategy`.
    #[derive(Default)]
    pub enum SchedulingStrategy {
        #[default]
        Replica = "REPLICA",
        Daemon = "DAEMON",
    }
}

ecs_enum! {
    /// What a container's `dependsOn` waits for in the container it names:
    /// started, exited, exited 0, or HEALTHY.
    #[derive(Default)]
    pub enum ContainerCondition {
        #[default]
        Start = "START",
        Complete = "COMPLETE",
        Success = "SUCCESS",
        Healthy = "HEALTHY",
    }
}

ecs_enum! {
    /// Why a task stopped (`stopCode`).
    pub enum StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    /// Every known value and an unknown one go through JSON and back
    /// unchanged, as a plain string spelled as ECS spells it.
    fn round_trips<T>(all: &[T], spell: impl Fn(&T) -> &str)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug + fmt::Display + FromStr,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in all {
            let json = serde_json::to_value(v).expect("serialize");
            assert_eq!(json, Value::String(spell(v).to_owned()));
            assert_eq!(&serde_json::from_value::<T>(json).expect("deserialize"), v);
            assert_eq!(&spell(v).parse::<T>().expect("parse"), v);
            assert_eq!(v.to_string(), spell(v));
        }
        let unknown: T = serde_json::from_value(json!("SOMETHING_NEW")).expect("unknown");
        assert_eq!(
            serde_json::to_value(&unknown).expect("serialize"),
            json!("SOMETHING_NEW")
        );
        assert_eq!(unknown.to_string(), "SOMETHING_NEW");
    }

    #[test]
    fn every_value_round_trips_as_a_plain_string() {
        round_trips(TaskStatus::ALL, TaskStatus::as_str);
        round_trips(LaunchType::ALL, LaunchType::as_str);
        round_trips(NetworkMode::ALL, NetworkMode::as_str);
        round_trips(DeploymentStatus::ALL, DeploymentStatus::as_str);
        round_trips(RolloutState::ALL, RolloutState::as_str);
        round_trips(InstanceStatus::ALL, InstanceStatus::as_str);
        round_trips(ClusterStatus::ALL, ClusterStatus::as_str);
        round_trips(ServiceStatus::ALL, ServiceStatus::as_str);
        round_trips(TaskDefinitionStatus::ALL, TaskDefinitionStatus::as_str);
        round_trips(HealthStatus::ALL, HealthStatus::as_str);
        round_trips(SchedulingStrategy::ALL, SchedulingStrategy::as_str);
        round_trips(StopCode::ALL, StopCode::as_str);
        round_trips(ContainerCondition::ALL, ContainerCondition::as_str);
    }

    #[test]
    fn spellings_are_ecs_own() {
        let lifecycle: Vec<&str> = TaskStatus::ALL.iter().map(TaskStatus::as_str).collect();
        assert_eq!(
            lifecycle,
            [
                "PROVISIONING",
                "PENDING",
                "ACTIVATING",
                "RUNNING",
                "DEACTIVATING",
                "STOPPING",
                "DEPROVISIONING",
                "STOPPED"
            ]
        );
        assert_eq!(NetworkMode::Awsvpc.as_str(), "awsvpc");
        assert_eq!(RolloutState::InProgress.as_str(), "IN_PROGRESS");
        assert_eq!(StopCode::UserInitiated.as_str(), "UserInitiated");
        assert_eq!(
            TaskDefinitionStatus::DeleteInProgress.as_str(),
            "DELETE_IN_PROGRESS"
        );
    }

    #[test]
    fn an_unknown_value_is_kept_in_a_record() {
        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Rec {
            last_status: TaskStatus,
            launch_type: LaunchType,
        }
        let text = r#"{"lastStatus":"HIBERNATING","launchType":"MANAGED_INSTANCES"}"#;
        let rec: Rec = serde_json::from_str(text).expect("decode");
        assert_eq!(rec.last_status, TaskStatus::Other("HIBERNATING".into()));
        assert_eq!(serde_json::to_string(&rec).expect("encode"), text);
        // Spellings are exact: another case is another (unknown) value.
        assert_eq!(
            TaskStatus::parse("running"),
            TaskStatus::Other("running".into())
        );
        assert!(serde_json::from_value::<TaskStatus>(json!(1)).is_err());
    }

    #[test]
    fn task_states_compare_in_lifecycle_order() {
        assert!(TaskStatus::Pending < TaskStatus::Running);
        assert!(TaskStatus::Deactivating > TaskStatus::Running);
        assert!(TaskStatus::Stopped >= TaskStatus::Stopped);
        let other = TaskStatus::Other("X".into());
        assert_eq!(other.partial_cmp(&TaskStatus::Running), None);
        assert_eq!(other.partial_cmp(&other.clone()), Some(Ordering::Equal));
    }
}

//! The pure decisions behind [`super`]: whose supervisor a task gets, how
//! long the agent rests between passes, how long a stopped task's
//! supervisor waits out a service's backoff, and the tally of a recovery.
//! No store, no processes: unit-tested without root.

use std::path::PathBuf;
use std::time::Duration;

use super::cleanup_plan::Housekeeping;
use crate::agent_config::PullBehavior;
use crate::model::{Attribute, Task};
use crate::scheduler::reserved::Reserved;
use crate::store::StoreConfig;
use crate::supervisor::{Recovered, SupervisorArgs};

/// The longest a supervisor waits out a service's restart backoff; longer
/// waits are the agent's.
pub const MAX_BACKOFF_WAIT: Duration = Duration::from_secs(30);

/// How long a one-off pass (a CLI verb, the agent) waits for another
/// reconciler's lease before it gives up on this pass.
pub const PASS_PATIENCE: Duration = Duration::from_secs(30);

/// How long a stopped task's supervisor waits for the lease: longer than a
/// lease lives, as the holder may have read the tasks before this one
/// changed.
pub const STOPPED_TASK_PATIENCE: Duration = Duration::from_secs(35);

/// Where this host's supervisors keep their state and which store they
/// open: filled by the CLI from its flags and environment (`--root`,
/// `--store`, `BERTH_CGROUP_PARENT`).
#[derive(Clone, Debug)]
pub struct Config {
    pub state_root: PathBuf,
    pub runtime_root: PathBuf,
    /// Parent of task cgroups (`berth` unless the environment names one).
    pub cgroup_parent: String,
    /// The store the CLI opened; its supervisors open the same.
    pub store: StoreConfig,
    /// `ECS_IMAGE_PULL_BEHAVIOR` of the host's agent config, which every
    /// supervisor started here follows.
    pub pull: PullBehavior,
}

impl Config {
    /// The supervisor of `task` under these roots.
    pub fn supervisor_args(&self, task: &Task) -> SupervisorArgs {
        SupervisorArgs {
            state_root: self.state_root.clone(),
            runtime_root: self.runtime_root.clone(),
            cluster: cluster_of(task).to_string(),
            task_id: task.id().to_string(),
            cgroup_parent: self.cgroup_parent.clone(),
            adopt: false,
            store: self.store.clone(),
            pull: self.pull,
        }
    }
}

/// `berth agent`'s settings (its flags).
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The cluster this host joins (`--cluster`, default `default`).
    pub cluster: String,
    /// `--attributes`, checked (`scheduler::hosts::parse_attributes`).
    pub attributes: Vec<Attribute>,
    /// How long the agent's lease lives unrenewed (`--lease-ttl`): how
    /// soon the cluster counts this host lost.
    pub lease_ttl: Duration,
    /// Seconds between reconcile passes (`--interval`).
    pub interval: u64,
    /// What it keeps from the host's tasks (`ECS_RESERVED_*`).
    pub reserved: Reserved,
    /// Stopped tasks' cleanup and image collection (`ECS_*CLEANUP*`).
    pub housekeeping: Housekeeping,
}

impl AgentOptions {
    /// The default agent of `cluster`: a 3 s lease, a pass every 5 s.
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            attributes: Vec::new(),
            lease_ttl: DEFAULT_LEASE_TTL,
            interval: 5,
            reserved: Reserved::default(),
            housekeeping: Housekeeping::default(),
        }
    }

    /// How often the lease is renewed: three times within its TTL, so a
    /// late renewal or two never lets it lapse.
    pub fn renew_every(&self) -> Duration {
        self.lease_ttl / 3
    }
}

/// The agent lease's default TTL (etcd's own minimum is 2 s).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);

/// How long the agent rests when the store cannot be watched (it is
/// away), before it looks for tasks placed on its host again.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// How long the agent leaves a supervisor it started to claim its task
/// before it starts another (after that, orphan recovery has the task).
pub const CLAIM_PATIENCE: Duration = Duration::from_secs(5);

/// Whether the agent's lease may have expired in the cluster's eyes: no
/// renewal has succeeded within a TTL. The host then fences before it
/// takes the lease again.
pub fn lapsed(since_renewed: Duration, ttl: Duration) -> bool {
    since_renewed >= ttl
}

/// A task that wants a supervisor started: not STOPPED and none recorded.
pub fn wants_supervisor(task: &Task) -> bool {
    !task.is_stopped()
        && task
            .berth
            .as_ref()
            .is_none_or(|b| b.supervisor_pid.is_none())
}

/// The cluster name in a task's cluster ARN (its last `/` part).
fn cluster_of(task: &Task) -> &str {
    task.cluster_arn.rsplit('/').next().unwrap_or("default")
}

/// The agent's rest between passes: `interval` seconds, at least one (a
/// zero would spin on the store).
pub fn agent_pause(interval_secs: u64) -> Duration {
    Duration::from_secs(interval_secs.max(1))
}

/// After a pass that found a service backing off for `retry_after`: how
/// long a stopped task's supervisor sleeps before passing again, or None
/// to leave the rest to the agent.
pub fn backoff_wait(retry_after: Option<Duration>) -> Option<Duration> {
    retry_after.filter(|wait| *wait <= MAX_BACKOFF_WAIT)
}

/// What orphan recovery did in a cluster: ids of the tasks adopted and
/// finished, and what failed (task id, why).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub adopted: Vec<String>,
    pub finished: Vec<String>,
    pub failed: Vec<(String, String)>,
}

impl Recovery {
    /// Record how recovering task `id` went.
    pub fn record(&mut self, id: &str, outcome: Result<Recovered, String>) {
        match outcome {
            Ok(Recovered::Adopted) => self.adopted.push(id.to_string()),
            Ok(Recovered::Reaped) => self.finished.push(id.to_string()),
            Err(e) => self.failed.push((id.to_string(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(cluster_arn: &str, id: &str) -> Task {
        serde_json::from_value(serde_json::json!({
            "taskArn": format!("arn:aws:ecs:us-east-1:000000000000:task/c1/{id}"),
            "clusterArn": cluster_arn,
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "launchType": "EC2",
            "containers": [],
            "version": 1,
            "createdAt": "2026-01-01T00:00:00Z",
        }))
        .expect("a task")
    }

    #[test]
    fn supervisor_args_name_the_task_under_the_roots() {
        let cfg = Config {
            state_root: "/var/lib/b".into(),
            runtime_root: "/run/b".into(),
            cgroup_parent: "berth.slice".into(),
            store: StoreConfig::parse(Some("etcd://h:1/p"), Default::default()).expect("url"),
            pull: PullBehavior::Always,
        };
        let t = task("arn:aws:ecs:us-east-1:000000000000:cluster/c1", "abc");
        let args = cfg.supervisor_args(&t);
        assert_eq!(args.state_root, PathBuf::from("/var/lib/b"));
        assert_eq!(args.runtime_root, PathBuf::from("/run/b"));
        assert_eq!(args.cluster, "c1");
        assert_eq!(args.task_id, t.id());
        assert_eq!(args.cgroup_parent, "berth.slice");
        assert!(!args.adopt, "a new task is started, not adopted");
        assert_eq!(args.store, cfg.store, "it opens the store its spawner did");
        assert_eq!(
            args.pull,
            PullBehavior::Always,
            "it pulls as its host's agent says"
        );
    }

    #[test]
    fn cluster_is_the_arns_last_part() {
        assert_eq!(cluster_of(&task("c2", "x")), "c2");
        assert_eq!(
            cluster_of(&task("arn:aws:ecs:r:1:cluster/prod", "x")),
            "prod"
        );
    }

    #[test]
    fn the_agent_rests_at_least_a_second() {
        assert_eq!(agent_pause(0), Duration::from_secs(1));
        assert_eq!(agent_pause(1), Duration::from_secs(1));
        assert_eq!(agent_pause(5), Duration::from_secs(5));
    }

    #[test]
    fn short_backoffs_are_waited_out_long_ones_left_to_the_agent() {
        assert_eq!(backoff_wait(None), None);
        let short = Duration::from_secs(3);
        assert_eq!(backoff_wait(Some(short)), Some(short));
        assert_eq!(backoff_wait(Some(MAX_BACKOFF_WAIT)), Some(MAX_BACKOFF_WAIT));
        assert_eq!(
            backoff_wait(Some(MAX_BACKOFF_WAIT + Duration::from_millis(1))),
            None
        );
    }

    #[test]
    fn the_lease_is_renewed_thrice_a_ttl_and_lapses_after_one() {
        let opts = AgentOptions::new("c");
        assert_eq!(opts.lease_ttl, Duration::from_secs(3));
        assert_eq!(opts.renew_every(), Duration::from_secs(1));
        assert!(!lapsed(Duration::from_millis(2999), opts.lease_ttl));
        assert!(lapsed(opts.lease_ttl, opts.lease_ttl));
    }

    #[test]
    fn only_live_tasks_without_a_supervisor_want_one() {
        let mut t = task("c", "x");
        assert!(wants_supervisor(&t), "no supervisor recorded");
        t.berth = Some(Default::default());
        assert!(wants_supervisor(&t));
        t.berth.as_mut().expect("internals").supervisor_pid = Some(42);
        assert!(!wants_supervisor(&t));
        t.berth.as_mut().expect("internals").supervisor_pid = None;
        t.last_status = crate::model::TaskStatus::Stopped;
        assert!(!wants_supervisor(&t));
    }

    #[test]
    fn recovery_sorts_outcomes() {
        let mut r = Recovery::default();
        r.record("a", Ok(Recovered::Adopted));
        r.record("b", Ok(Recovered::Reaped));
        r.record("c", Err("no store".into()));
        r.record("d", Ok(Recovered::Reaped));
        assert_eq!(
            r,
            Recovery {
                adopted: vec!["a".into()],
                finished: vec!["b".into(), "d".into()],
                failed: vec![("c".into(), "no store".into())],
            }
        );
    }
}

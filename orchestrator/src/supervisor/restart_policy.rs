//! Whether a container that ended is restarted in place: ECS's
//! `ContainerRestartPolicy` rule, as the ECS agent applies it
//! (`ecs-agent/api/container/restart/restart_tracker.go`): enabled, the
//! task not being stopped, an exit code that is not ignored, and a run of
//! at least `restartAttemptPeriod` since the container started or was last
//! restarted, so that a container failing at once is not restarted in a
//! loop. Pure: the caller measures the run.

use std::time::Duration;

use crate::model::RestartPolicy;

/// ECS's default `restartAttemptPeriod`.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);

/// What ended and how, as the rule needs it.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    /// None: no exit code is known (its monitor died first).
    pub exit_code: Option<i32>,
    /// A stop of the task was asked for or is under way.
    pub task_stopping: bool,
    /// How long this run lasted: since its start, or its last restart.
    pub ran_for: Duration,
}

/// The answer, with ECS's reason when it is no.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Restart,
    Keep(&'static str),
}

/// The policy's attempt period.
pub fn period(policy: &RestartPolicy) -> Duration {
    policy
        .restart_attempt_period
        .map_or(DEFAULT_PERIOD, Duration::from_secs)
}

/// Whether `policy` restarts a container that `ended`.
pub fn decide(policy: Option<&RestartPolicy>, ended: Ended) -> Decision {
    let Some(policy) = policy.filter(|p| p.enabled) else {
        return Decision::Keep("restart policy is not enabled");
    };
    if ended.task_stopping {
        return Decision::Keep("the task is stopping");
    }
    let Some(code) = ended.exit_code else {
        return Decision::Keep("exit code is unknown");
    };
    if policy.ignored_exit_codes.contains(&code) {
        return Decision::Keep("exit code is ignored");
    }
    if ended.ran_for < period(policy) {
        return Decision::Keep("attempt period has not elapsed");
    }
    Decision::Restart
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(enabled: bool, ignored: &[i32], period: Option<u64>) -> RestartPolicy {
        RestartPolicy {
            enabled,
            ignored_exit_codes: ignored.to_vec(),
            restart_attempt_period: period,
        }
    }

    fn ended(code: Option<i32>, secs: u64) -> Ended {
        Ended {
            exit_code: code,
            task_stopping: false,
            ran_for: Duration::from_secs(secs),
        }
    }

    #[test]
    fn restarts_after_a_long_enough_run() {
        let p = policy(true, &[], Some(60));
        assert_eq!(decide(Some(&p), ended(Some(1), 60)), Decision::Restart);
        assert_eq!(decide(Some(&p), ended(Some(0), 61)), Decision::Restart);
    }

    #[test]
    fn a_short_run_is_not_restarted() {
        let p = policy(true, &[], Some(60));
        assert!(matches!(
            decide(Some(&p), ended(Some(1), 59)),
            Decision::Keep(_)
        ));
        // The default period is 300 s.
        let p = policy(true, &[], None);
        assert!(matches!(
            decide(Some(&p), ended(Some(1), 299)),
            Decision::Keep(_)
        ));
        assert_eq!(decide(Some(&p), ended(Some(1), 300)), Decision::Restart);
    }

    #[test]
    fn ignored_codes_disabled_policies_and_stops_keep_it_stopped() {
        let p = policy(true, &[0, 3], Some(60));
        assert_eq!(
            decide(Some(&p), ended(Some(3), 100)),
            Decision::Keep("exit code is ignored")
        );
        assert_eq!(decide(Some(&p), ended(Some(4), 100)), Decision::Restart);
        assert!(matches!(
            decide(None, ended(Some(1), 100)),
            Decision::Keep(_)
        ));
        let off = policy(false, &[], Some(60));
        assert!(matches!(
            decide(Some(&off), ended(Some(1), 100)),
            Decision::Keep(_)
        ));
        let stopping = Ended {
            task_stopping: true,
            ..ended(Some(1), 100)
        };
        assert!(matches!(decide(Some(&p), stopping), Decision::Keep(_)));
        assert!(matches!(
            decide(Some(&p), ended(None, 100)),
            Decision::Keep(_)
        ));
    }
}

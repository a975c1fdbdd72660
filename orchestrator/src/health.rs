//! Container health checks: ECS's `healthCheck`, and the rules that turn
//! probe results into HEALTHY / UNHEALTHY / UNKNOWN. Pure: the supervisor
//! runs the probes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{EcsError, EcsResult};
use crate::model::HealthStatus::{self, Healthy, Unhealthy, Unknown};

/// What a stored status counts as: a spelling berth does not know is
/// UNKNOWN.
pub fn status_known(status: &HealthStatus) -> HealthStatus {
    match status {
        Healthy => Healthy,
        Unhealthy => Unhealthy,
        _ => Unknown,
    }
}

/// A container definition's `healthCheck`, in seconds as ECS has it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
}

impl HealthCheck {
    /// ECS's rules, with `path` naming the field in errors.
    pub fn validate(&self, path: &str) -> EcsResult<()> {
        let invalid =
            |field: &str, why: String| Err(EcsError::client(format!("{path}.{field}: {why}")));
        match self.command.first().map(String::as_str) {
            Some("CMD") if self.command.len() > 1 => {}
            Some("CMD-SHELL") if self.command.len() == 2 => {}
            Some("CMD-SHELL") => {
                return invalid(
                    "command",
                    "CMD-SHELL takes one string, the shell command".into(),
                )
            }
            _ => {
                return invalid(
                    "command",
                    r#"must be ["CMD", program, args…] or ["CMD-SHELL", "shell command"]"#.into(),
                )
            }
        }
        let ranges = [
            ("interval", self.interval, 5, 300),
            ("timeout", self.timeout, 2, 60),
            ("retries", self.retries.map(u64::from), 1, 10),
            ("startPeriod", self.start_period, 0, 300),
        ];
        for (field, value, lo, hi) in ranges {
            if let Some(v) = value.filter(|v| !(lo..=hi).contains(v)) {
                return invalid(field, format!("{v} is outside {lo}–{hi}"));
            }
        }
        Ok(())
    }

    /// The argv to run inside the container.
    pub fn argv(&self) -> Vec<String> {
        match self.command.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                let mut argv = vec!["/bin/sh".to_string(), "-c".to_string()];
                argv.extend(rest.iter().cloned());
                argv
            }
            Some((_, rest)) => rest.to_vec(),
            None => Vec::new(),
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval.unwrap_or(30))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(5))
    }

    fn retries(&self) -> u32 {
        self.retries.unwrap_or(3)
    }

    fn start_period(&self) -> Duration {
        Duration::from_secs(self.start_period.unwrap_or(0))
    }
}

/// One container's health, as Docker (and so ECS) keeps it: UNKNOWN until
/// a probe passes (HEALTHY) or `retries` probes in a row fail
/// (UNHEALTHY); failures within the start period do not count.
#[derive(Clone, Debug)]
pub struct HealthTracker {
    retries: u32,
    start_period_ends: Instant,
    failures: u32,
    status: HealthStatus,
}

impl HealthTracker {
    pub fn new(check: &HealthCheck, started: Instant) -> Self {
        Self {
            retries: check.retries(),
            start_period_ends: started + check.start_period(),
            failures: 0,
            status: Unknown,
        }
    }

    pub fn status(&self) -> &HealthStatus {
        &self.status
    }

    /// Take one probe's result; returns the new status when it changed.
    pub fn record(&mut self, passed: bool, at: Instant) -> Option<HealthStatus> {
        let before = self.status.clone();
        if passed {
            self.failures = 0;
            self.status = Healthy;
        } else if at >= self.start_period_ends {
            self.failures += 1;
            if self.failures >= self.retries {
                self.status = Unhealthy;
            }
        }
        (self.status != before).then(|| self.status.clone())
    }
}

/// A task's health from its essential containers that have checks:
/// UNHEALTHY over UNKNOWN over HEALTHY; UNKNOWN when none has a check.
pub fn task_health<'a>(
    essential_checked: impl IntoIterator<Item = &'a HealthStatus>,
) -> HealthStatus {
    let mut any = false;
    let mut unknown = false;
    for status in essential_checked {
        any = true;
        match status {
            Unhealthy => return Unhealthy,
            Healthy => {}
            _ => unknown = true,
        }
    }
    if any && !unknown {
        Healthy
    } else {
        Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> HealthCheck {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let ok = check(serde_json::json!({"command": ["CMD-SHELL", "exit 0"], "interval": 5}));
        assert!(ok.validate("c").is_ok());
        let cases = [
            (serde_json::json!({"command": []}), "c.command"),
            (serde_json::json!({"command": ["curl", "x"]}), "c.command"),
            (
                serde_json::json!({"command": ["CMD-SHELL", "a", "b"]}),
                "c.command",
            ),
            (
                serde_json::json!({"command": ["CMD", "true"], "interval": 4}),
                "c.interval",
            ),
            (
                serde_json::json!({"command": ["CMD", "true"], "timeout": 61}),
                "c.timeout",
            ),
            (
                serde_json::json!({"command": ["CMD", "true"], "retries": 0}),
                "c.retries",
            ),
            (
                serde_json::json!({"command": ["CMD", "true"], "startPeriod": 301}),
                "c.startPeriod",
            ),
        ];
        for (v, field) in cases {
            let e = check(v).validate("c").unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn argv_for_cmd_and_shell() {
        let shell = check(serde_json::json!({"command": ["CMD-SHELL", "wget -q localhost"]}));
        assert_eq!(shell.argv(), ["/bin/sh", "-c", "wget -q localhost"]);
        let cmd = check(serde_json::json!({"command": ["CMD", "/bin/true", "x"]}));
        assert_eq!(cmd.argv(), ["/bin/true", "x"]);
    }

    #[test]
    fn unhealthy_after_retries_in_a_row() {
        let c = check(serde_json::json!({"command": ["CMD", "x"], "retries": 2}));
        let t0 = Instant::now();
        let mut h = HealthTracker::new(&c, t0);
        assert_eq!(h.record(false, t0), None);
        assert_eq!(h.record(true, t0), Some(Healthy));
        assert_eq!(h.record(false, t0), None);
        assert_eq!(h.record(false, t0), Some(Unhealthy));
        assert_eq!(h.record(true, t0), Some(Healthy));
    }

    #[test]
    fn start_period_failures_do_not_count() {
        let c =
            check(serde_json::json!({"command": ["CMD", "x"], "retries": 1, "startPeriod": 10}));
        let t0 = Instant::now();
        let mut h = HealthTracker::new(&c, t0);
        assert_eq!(h.record(false, t0 + Duration::from_secs(5)), None);
        assert_eq!(h.status(), &Unknown);
        assert_eq!(
            h.record(false, t0 + Duration::from_secs(11)),
            Some(Unhealthy)
        );
    }

    #[test]
    fn task_health_priority() {
        assert_eq!(task_health([]), Unknown);
        assert_eq!(task_health([&Healthy, &Healthy]), Healthy);
        assert_eq!(task_health([&Healthy, &Unknown]), Unknown);
        assert_eq!(task_health([&Unknown, &Unhealthy]), Unhealthy);
        let odd = HealthStatus::Other("STARTING".into());
        assert_eq!(task_health([&Healthy, &odd]), Unknown);
        assert_eq!(status_known(&odd), Unknown);
        assert_eq!(status_known(&Unhealthy), Unhealthy);
    }
}

//! Idempotency tokens (RunTask's `clientToken`): their rules, what makes
//! two requests "the same", and ECS's 24-hour window. Pure.

use serde_json::json;

use crate::ecs::RunTask;
use crate::error::{EcsError, EcsResult};

/// How long ECS remembers a RunTask token.
pub const WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// RunTask's longest token.
const MAX_TOKEN: usize = 64;

/// 1 to 64 ASCII characters from 33 to 126, as ECS takes them.
pub fn check(field: &str, token: &str) -> EcsResult<()> {
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token.bytes().all(|b| (33..=126).contains(&b));
    if ok {
        return Ok(());
    }
    Err(EcsError::invalid(format!(
        "{field}: {token:?}: 1 to {MAX_TOKEN} printable ASCII characters, no spaces"
    )))
}

/// What a retry must repeat to get the first answer: every parameter
/// but the token, the cluster by its resolved name.
pub fn fingerprint(cluster: &str, req: &RunTask) -> String {
    json!({
        "cluster": cluster,
        "taskDefinition": req.task_definition,
        "count": req.count,
        "launchType": req.launch_type,
        "capacityProviderStrategy": req.capacity_provider_strategy,
        "overrides": req.overrides,
        "startedBy": req.started_by,
        "group": req.group,
        "tags": req.tags,
        "placementStrategy": req.placement_strategy,
        "placementConstraints": req.placement_constraints,
    })
    .to_string()
}

/// Whether a token first used at `at` (RFC 3339) is past the window at
/// `now`; an unreadable time counts as past.
pub fn expired(at: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => now.signed_duration_since(t) > WINDOW,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_fingerprints() {
        check("clientToken", "c36802a9-2f4e-4c4d-9b1a-000000000000").expect("uuid");
        for bad in ["", "a b", &"x".repeat(65), "é"] {
            assert!(check("clientToken", bad).is_err(), "{bad:?}");
        }
        let req = RunTask {
            task_definition: "web:1".into(),
            count: 1,
            ..Default::default()
        };
        let more = RunTask {
            count: 2,
            ..req.clone()
        };
        assert_eq!(fingerprint("c", &req), fingerprint("c", &req.clone()));
        assert_ne!(fingerprint("c", &req), fingerprint("c", &more));
        assert_ne!(fingerprint("c", &req), fingerprint("d", &req));
        let now = chrono::Utc::now();
        let fresh = (now - chrono::TimeDelta::hours(1)).to_rfc3339();
        let old = (now - chrono::TimeDelta::hours(25)).to_rfc3339();
        assert!(!expired(&fresh, now));
        assert!(expired(&old, now));
        assert!(expired("yesterday", now));
    }
}

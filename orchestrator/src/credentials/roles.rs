//! The task roles file's shape, a `credential_process` command's output,
//! when cached keys are due for a refresh, and the endpoint's answers, as
//! the ECS agent words them (`agent/handlers/v1/credentials_handler.go`).
//! Pure: no file, no process.
//!
//! The file maps a role ARN to its source, as JSON:
//!
//! ```json
//! {
//!   "arn:aws:iam::123456789012:role/app": {
//!     "AccessKeyId": "AKIAAPP", "SecretAccessKey": "s3cr3t", "SessionToken": "optional"
//!   },
//!   "arn:aws:iam::123456789012:role/rotating": {
//!     "credential_process": "/usr/local/bin/mint-keys app", "timeout_seconds": 10
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// A `credential_process` that has not answered in this long is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout the file may ask for: the serving thread waits
/// this long at most.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Cached keys are fetched again once they expire within this long, so
/// that a client is never handed keys about to lapse (the SDKs refresh
/// theirs from 15 to 5 minutes before Expiration).
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(15);
/// Static keys never expire; the answer still says when to ask again,
/// since the SDKs need an Expiration.
pub const STATIC_LIFETIME: chrono::Duration = chrono::Duration::hours(6);

/// Where a role's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Static(Keys),
    /// Run with `/bin/sh -c`; its stdout is the AWS CLI's
    /// credential_process JSON.
    Process {
        command: String,
        timeout: Duration,
    },
}

/// A set of keys. Debug never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// None: they do not expire (static keys).
    pub expiration: Option<DateTime<Utc>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The roles of a task roles file, by ARN; the error names the role and
/// field at fault.
pub fn parse_roles(text: &str) -> Result<BTreeMap<String, Source>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(roles) = value else {
        return Err("not a JSON object of role ARN to source".into());
    };
    roles
        .into_iter()
        .map(|(arn, v)| {
            check_arn(&arn)?;
            let source = parse_source(&v).map_err(|e| format!("role {arn:?}: {e}"))?;
            Ok((arn, source))
        })
        .collect()
}

fn check_arn(arn: &str) -> Result<(), String> {
    let ok = arn.starts_with("arn:") && arn.contains(":role/");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is no role ARN (arn:aws:iam::<account>:role/<name>)"
        ))
    }
}

const STATIC_FIELDS: &[&str] = &["AccessKeyId", "SecretAccessKey", "SessionToken"];
const PROCESS_FIELDS: &[&str] = &["credential_process", "timeout_seconds"];

fn parse_source(v: &Value) -> Result<Source, String> {
    let Value::Object(o) = v else {
        return Err("not a JSON object".into());
    };
    if let Some(command) = o.get("credential_process") {
        only(o, PROCESS_FIELDS)?;
        let command = command
            .as_str()
            .filter(|c| !c.trim().is_empty())
            .ok_or("credential_process: not a command")?;
        let timeout = match o.get("timeout_seconds") {
            None => DEFAULT_TIMEOUT,
            Some(t) => t
                .as_u64()
                .map(Duration::from_secs)
                .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
                .ok_or_else(|| {
                    format!("timeout_seconds: {t} is not 1 to {}", MAX_TIMEOUT.as_secs())
                })?,
        };
        return Ok(Source::Process {
            command: command.to_string(),
            timeout,
        });
    }
    only(o, STATIC_FIELDS)?;
    Ok(Source::Static(Keys {
        access_key_id: text(o, "AccessKeyId")?,
        secret_access_key: text(o, "SecretAccessKey")?,
        session_token: optional_text(o, "SessionToken")?,
        expiration: None,
    }))
}

/// Refuse a field of neither shape: a typo must not pass unseen.
fn only(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown field {k:?} (expected {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn text(o: &Map<String, Value>, key: &str) -> Result<String, String> {
    optional_text(o, key)?.ok_or_else(|| format!("{key}: missing"))
}

fn optional_text(o: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key}: not a non-empty string")),
    }
}

/// A credential_process command's stdout, as the AWS CLI reads it:
/// `Version` 1, `AccessKeyId`, `SecretAccessKey`, optional `SessionToken`
/// and `Expiration` (ISO 8601).
pub fn parse_process_output(out: &str) -> Result<Keys, String> {
    let value: Value = serde_json::from_str(out.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = value else {
        return Err("not a JSON object".into());
    };
    if o.get("Version").and_then(Value::as_u64) != Some(1) {
        return Err("Version: not 1".into());
    }
    let expiration = match optional_text(&o, "Expiration")? {
        None => None,
        Some(at) => Some(
            DateTime::parse_from_rfc3339(&at)
                .map_err(|e| format!("Expiration {at:?}: {e}"))?
                .with_timezone(&Utc),
        ),
    };
    Ok(Keys {
        access_key_id: text(&o, "AccessKeyId")?,
        secret_access_key: text(&o, "SecretAccessKey")?,
        session_token: optional_text(&o, "SessionToken")?,
        expiration,
    })
}

/// Whether `cached` keys must be fetched again before they are served at
/// `now`: none yet, or expiring within [`REFRESH_MARGIN`].
pub fn needs_refresh(cached: Option<&Keys>, now: DateTime<Utc>) -> bool {
    match cached {
        None => true,
        Some(Keys {
            expiration: Some(at),
            ..
        }) => *at - now <= REFRESH_MARGIN,
        Some(_) => false,
    }
}

/// The agent's answer for `keys` of `role_arn` at `now`.
pub fn credentials_json(role_arn: &str, keys: &Keys, now: DateTime<Utc>) -> Value {
    let expiration = keys.expiration.unwrap_or(now + STATIC_LIFETIME);
    json!({
        "RoleArn": role_arn,
        "AccessKeyId": keys.access_key_id,
        "SecretAccessKey": keys.secret_access_key,
        "Token": keys.session_token.clone().unwrap_or_default(),
        "Expiration": expiration.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

/// The source of task role `arn` from the roles file `file` holds
/// (`roles`), for a task in host mode or not; else the task's
/// `stoppedReason`, worded as ECS's ("ECS was unable to assume the role
/// … that was provided for this task") followed by berth's cause.
pub fn choose(
    roles: Result<&BTreeMap<String, Source>, &str>,
    arn: &str,
    host_mode: bool,
    file: &str,
) -> Result<Source, String> {
    let refuse = |why: &str| {
        format!("ECS was unable to assume the role '{arn}' that was provided for this task: {why}")
    };
    // On the host's loopback any process may connect: no listener there
    // can tell this task's containers from anyone else.
    if host_mode {
        return Err(refuse(
            "berth serves task role credentials to awsvpc, bridge and none network modes only, \
             where no other task can reach the endpoint; networkMode host shares the host's loopback",
        ));
    }
    let roles = roles.map_err(refuse)?;
    roles
        .get(arn)
        .cloned()
        .ok_or_else(|| refuse(&format!("the task roles file {file} has no entry for it")))
}

/// A credentials request's route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsRoute<'a> {
    /// `/v2/credentials/<id>` or `/v1/credentials?id=<id>`.
    Id(&'a str),
    /// One of those without an id.
    NoId,
}

/// The route of `path`, if it asks for credentials.
pub fn credentials_route(path: &str) -> Option<CredentialsRoute<'_>> {
    if let Some(rest) = path.strip_prefix("/v2/credentials") {
        let id = rest.trim_start_matches('/').split('?').next().unwrap_or("");
        return Some(if id.is_empty() {
            CredentialsRoute::NoId
        } else {
            CredentialsRoute::Id(id)
        });
    }
    let query = path.strip_prefix("/v1/credentials")?;
    let id = query
        .strip_prefix('?')
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("id="))
        .filter(|id| !id.is_empty());
    Some(id.map_or(CredentialsRoute::NoId, CredentialsRoute::Id))
}

/// The agent's error body (`{code, message, HTTPErrorCode}`) and status.
pub fn error_json(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"code": code, "message": message, "HTTPErrorCode": status}),
    )
}

/// An id this endpoint holds no credentials for: the agent's 400.
pub fn not_found() -> (u16, Value) {
    error_json(
        400,
        "InvalidIdInRequest",
        "CredentialsV2Request: Credentials not found",
    )
}

/// A request without an id: the agent's 400.
pub fn no_id() -> (u16, Value) {
    error_json(
        400,
        "NoIdInRequest",
        "CredentialsV2Request: No ID in the request",
    )
}

#[cfg(test)]
#[path = "roles_tests.rs"]
mod tests;

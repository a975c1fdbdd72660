//! One task's credentials: its id (the path's last part), its role and
//! where the keys come from, and the keys last fetched. Asked from the
//! endpoint's one serving thread: a command is run only when the cached
//! keys are due ([`roles::needs_refresh`]), and waited for no longer than
//! its timeout.

use std::sync::Mutex;

use chrono::Utc;
use serde_json::Value;

use super::process;
use super::roles::{self, CredentialsRoute, Keys, Source};

#[derive(Debug)]
pub struct Provider {
    /// The id in `/v2/credentials/<id>`: random, the task's own.
    pub id: String,
    pub role_arn: String,
    source: Source,
    cached: Mutex<Option<Keys>>,
}

impl Provider {
    pub fn new(id: String, role_arn: String, source: Source) -> Self {
        Self {
            id,
            role_arn,
            source,
            cached: Mutex::new(None),
        }
    }

    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`'s value.
    pub fn relative_uri(&self) -> String {
        format!("/v2/credentials/{}", self.id)
    }

    /// The keys to hand out now: the cached ones while fresh, else the
    /// source's (a command's answer is cached).
    pub fn keys(&self) -> Result<Keys, String> {
        let (command, timeout) = match &self.source {
            Source::Static(keys) => return Ok(keys.clone()),
            Source::Process { command, timeout } => (command, *timeout),
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if roles::needs_refresh(cached.as_ref(), Utc::now()) {
            match process::run(command, timeout).and_then(|out| roles::parse_process_output(&out)) {
                Ok(keys) => *cached = Some(keys),
                // Keys that have not expired yet still serve while the
                // command fails; expired ones never do.
                Err(e) => match cached.as_ref() {
                    Some(k) if k.expiration.is_some_and(|at| at > Utc::now()) => {
                        tracing::warn!("role {}: refresh: {e}", self.role_arn);
                    }
                    _ => return Err(e),
                },
            }
        }
        cached.clone().ok_or_else(|| "no keys".into())
    }

    /// The status and body for a credentials request.
    pub fn answer(&self, route: CredentialsRoute<'_>) -> (u16, Value) {
        match route {
            CredentialsRoute::NoId => roles::no_id(),
            CredentialsRoute::Id(id) if id != self.id => roles::not_found(),
            CredentialsRoute::Id(_) => match self.keys() {
                Ok(keys) => (
                    200,
                    roles::credentials_json(&self.role_arn, &keys, Utc::now()),
                ),
                Err(e) => {
                    tracing::warn!("role {}: {e}", self.role_arn);
                    roles::error_json(
                        500,
                        "InternalServerError",
                        "CredentialsV2Request: Credentials uninitialized for ID",
                    )
                }
            },
        }
    }
}

/// What the endpoint answers a credentials request when its task has no
/// role: the agent's "not found".
pub fn answer(provider: Option<&Provider>, route: CredentialsRoute<'_>) -> (u16, Value) {
    match (provider, route) {
        (_, CredentialsRoute::NoId) => roles::no_id(),
        (Some(p), route) => p.answer(route),
        (None, _) => roles::not_found(),
    }
}

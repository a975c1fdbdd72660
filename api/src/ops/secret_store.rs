//! berth's secret store under SSM's and Secrets Manager's own targets
//! (`AmazonSSM.<Op>`, `secretsmanager.<Op>`, both AWS JSON 1.1), so the
//! SDKs and aws-cli write and read it against `berth serve` as against
//! AWS. Each handler is one orchestrator call with the host's sealing key;
//! timestamps go on the wire as epoch seconds, as these services send
//! them.

use berth_orchestrator::secrets::{ParameterType, PutParameter, SealingKey};
use berth_orchestrator::{EcsError, ErrorKind};
use serde::Deserialize;
use serde_json::Value;

use super::{input, Context, Handler};
use crate::protocol::ApiError;

/// The handler of a full target (`AmazonSSM.GetParameter`), if berth
/// serves it.
pub fn handler(target: &str) -> Option<Handler> {
    let table: &[(&str, Handler)] = &[
        ("AmazonSSM.PutParameter", put_parameter),
        ("AmazonSSM.GetParameter", get_parameter),
        ("AmazonSSM.DeleteParameter", delete_parameter),
        ("secretsmanager.CreateSecret", create_secret),
        ("secretsmanager.PutSecretValue", put_secret_value),
        ("secretsmanager.GetSecretValue", get_secret_value),
    ];
    table.iter().find(|(t, _)| *t == target).map(|(_, h)| *h)
}

fn key(ctx: &Context<'_>) -> Result<SealingKey, ApiError> {
    Ok(SealingKey::open_or_create(&ctx.cfg.state_root).map_err(EcsError::from)?)
}

/// `member`'s RFC 3339 text as epoch seconds (with milliseconds).
fn epoch(mut v: Value, path: &[&str]) -> Value {
    let mut at = &mut v;
    for p in path {
        at = &mut at[*p];
    }
    if let Some(t) = at
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    {
        *at = serde_json::json!(t.timestamp_millis() as f64 / 1000.0);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PutParameterRequest {
    name: String,
    value: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    overwrite: Option<bool>,
}

fn put_parameter(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: PutParameterRequest = input(body)?;
    let kind = ParameterType::parse(req.kind.as_deref().unwrap_or("String"))
        .map_err(|e| EcsError::new(ErrorKind::ValidationException, e.replace("--type", "Type")))?;
    let put = PutParameter {
        name: req.name,
        value: req.value,
        kind,
        overwrite: req.overwrite.unwrap_or(false),
    };
    Ok(ctx.ecs.put_parameter(&key(ctx)?, put)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct GetParameterRequest {
    name: String,
    with_decryption: Option<bool>,
}

fn get_parameter(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: GetParameterRequest = input(body)?;
    let v = ctx
        .ecs
        .get_parameter(&key(ctx)?, &req.name, req.with_decryption.unwrap_or(false))?;
    Ok(epoch(v, &["Parameter", "LastModifiedDate"]))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DeleteParameterRequest {
    name: String,
}

fn delete_parameter(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: DeleteParameterRequest = input(body)?;
    Ok(ctx.ecs.delete_parameter(&req.name)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CreateSecretRequest {
    name: String,
    secret_string: String,
    /// The SDKs send one of their own (idempotency); not kept.
    #[allow(dead_code)]
    client_request_token: Option<String>,
}

fn create_secret(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: CreateSecretRequest = input(body)?;
    Ok(ctx
        .ecs
        .create_secret(&key(ctx)?, &req.name, &req.secret_string)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PutSecretValueRequest {
    secret_id: String,
    secret_string: String,
    #[allow(dead_code)]
    client_request_token: Option<String>,
}

fn put_secret_value(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: PutSecretValueRequest = input(body)?;
    Ok(ctx
        .ecs
        .put_secret_value(&key(ctx)?, &req.secret_id, &req.secret_string)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct GetSecretValueRequest {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

fn get_secret_value(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: GetSecretValueRequest = input(body)?;
    let v = ctx.ecs.get_secret_value(
        &key(ctx)?,
        &req.secret_id,
        req.version_id.as_deref(),
        req.version_stage.as_deref(),
    )?;
    Ok(epoch(v, &["CreatedDate"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_timestamps() {
        assert!(handler("AmazonSSM.GetParameter").is_some());
        assert!(handler("secretsmanager.GetSecretValue").is_some());
        assert!(handler("AmazonSSM.GetParametersByPath").is_none());
        assert!(handler("GetParameter").is_none());
        let v = epoch(
            serde_json::json!({"CreatedDate": "2026-01-02T03:04:05.250Z"}),
            &["CreatedDate"],
        );
        assert_eq!(v["CreatedDate"], 1767323045.25);
    }
}

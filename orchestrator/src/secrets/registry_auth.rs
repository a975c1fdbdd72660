//! A container's `repositoryCredentials`: the Secrets Manager secret
//! (`credentialsParameter`, its ARN or name) whose value is the JSON
//! `{"username": …, "password": …}` the image's registry is given when
//! it is pulled, as ECS reads it. Pure: the reading is the supervisor's,
//! the pull rootfs-tools' (which is handed plain credentials).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::refs;

/// The container definition field this module acts on.
pub const CONTAINER_FIELD: &str = "repositoryCredentials";

/// `repositoryCredentials` as ECS defines it: one field, no other.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RepositoryCredentials {
    credentials_parameter: String,
}

/// The secret a container's `repositoryCredentials` names (its
/// `credentialsParameter`, checked), or none; an error names the field
/// path under `path`.
pub fn credentials_parameter(
    path: &str,
    other: &BTreeMap<String, serde_json::Value>,
) -> Result<Option<String>, String> {
    let field = format!("{path}.{CONTAINER_FIELD}");
    let v = match other.get(CONTAINER_FIELD) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let rc: RepositoryCredentials =
        serde_json::from_value(v.clone()).map_err(|e| format!("{field}: {e}"))?;
    let id = rc.credentials_parameter.trim();
    if id.is_empty() {
        return Err(format!("{field}.credentialsParameter: empty"));
    }
    // ECS takes the secret's ARN, or its name in the task's region.
    refs::parse_secret_id(id).map_err(|e| format!("{field}.credentialsParameter: {e}"))?;
    Ok(Some(id.to_string()))
}

/// The user and password in a registry credentials secret, with the ECS
/// agent's words for a value it cannot use.
pub fn parse_auth(secret: &str) -> Result<(String, String), String> {
    #[derive(Deserialize)]
    struct AuthData {
        username: Option<String>,
        password: Option<String>,
    }
    if secret.is_empty() {
        return Err("asm fetching authorization data: empty secrets value".into());
    }
    let data: AuthData = serde_json::from_str(secret).map_err(|_| {
        "asm fetching authorization data: unable to unmarshal secret value, invalid schema"
            .to_string()
    })?;
    let username = data.username.filter(|u| !u.is_empty()).ok_or_else(|| {
        "asm fetching username: AuthorizationData is malformed, empty field".to_string()
    })?;
    let password = data.password.filter(|p| !p.is_empty()).ok_or_else(|| {
        "asm fetching password: AuthorizationData is malformed, empty field".to_string()
    })?;
    Ok((username, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(v: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_value(v).expect("map")
    }

    #[test]
    fn the_field_is_checked() {
        let p = "containerDefinitions[0]";
        assert_eq!(
            credentials_parameter(p, &other(serde_json::json!({}))),
            Ok(None)
        );
        let arn = "arn:aws:secretsmanager:local:000000000000:secret:reg-AbCdEf";
        assert_eq!(
            credentials_parameter(
                p,
                &other(serde_json::json!({"repositoryCredentials": {"credentialsParameter": arn}}))
            ),
            Ok(Some(arn.to_string()))
        );
        assert_eq!(
            credentials_parameter(
                p,
                &other(
                    serde_json::json!({"repositoryCredentials": {"credentialsParameter": "reg"}})
                )
            ),
            Ok(Some("reg".to_string()))
        );
        for (bad, says) in [
            (
                serde_json::json!("x"),
                "repositoryCredentials: invalid type",
            ),
            (
                serde_json::json!({}),
                "missing field `credentialsParameter`",
            ),
            (
                serde_json::json!({"credentialsParameter": "x", "extra": 1}),
                "unknown field `extra`",
            ),
            (
                serde_json::json!({"credentialsParameter": " "}),
                "credentialsParameter: empty",
            ),
            (
                serde_json::json!({"credentialsParameter": "arn:aws:ssm:r:1:parameter/x"}),
                "not a Secrets Manager secret ARN",
            ),
            (
                serde_json::json!({"credentialsParameter": "bad name!"}),
                "credentialsParameter: secret name",
            ),
        ] {
            let e = credentials_parameter(p, &other(serde_json::json!({CONTAINER_FIELD: bad})))
                .expect_err("refused");
            assert!(
                e.starts_with("containerDefinitions[0].repositoryCredentials"),
                "{e}"
            );
            assert!(e.contains(says), "{e} does not say {says}");
        }
    }

    #[test]
    fn auth_is_read_as_the_agent_reads_it() {
        assert_eq!(
            parse_auth(r#"{"username":"alice","password":"pw","other":1}"#),
            Ok(("alice".into(), "pw".into()))
        );
        assert!(parse_auth("").unwrap_err().contains("empty secrets value"));
        assert!(parse_auth("alice:pw")
            .unwrap_err()
            .contains("invalid schema"));
        assert!(parse_auth(r#"{"username":7}"#)
            .unwrap_err()
            .contains("invalid schema"));
        assert_eq!(
            parse_auth(r#"{"password":"pw"}"#).unwrap_err(),
            "asm fetching username: AuthorizationData is malformed, empty field"
        );
        assert_eq!(
            parse_auth(r#"{"username":"alice","password":""}"#).unwrap_err(),
            "asm fetching password: AuthorizationData is malformed, empty field"
        );
    }
}

//! Naming in berth's secret store, as SSM Parameter Store and Secrets
//! Manager name things: parameter names, their ARNs, secret ARNs (with
//! Secrets Manager's six random characters), and a task definition's
//! `valueFrom`. Pure: no store, no files.

use crate::model::Partition;

/// The stage a new secret value gets; the one it replaces moves to
/// [`PREVIOUS`].
pub const CURRENT: &str = "AWSCURRENT";
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// What a container's `secrets[].valueFrom` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM parameter, by its name (as given or read out of its ARN).
    Parameter(String),
    /// A Secrets Manager secret: by name or full ARN, with ECS's
    /// optional `:json-key:version-stage:version-id` suffixes.
    Secret {
        /// The part after `secret:`: a name, or a name with its
        /// `-XXXXXX` suffix (a full ARN).
        id: String,
        json_key: Option<String>,
        version_stage: Option<String>,
        version_id: Option<String>,
    },
}

/// Reads `valueFrom` as ECS does: a Secrets Manager ARN, an SSM ARN, or
/// else an SSM parameter name. An error names what is wrong with it.
pub fn parse_value_from(value_from: &str) -> Result<SecretRef, String> {
    let v = value_from.trim();
    if v.is_empty() {
        return Err("valueFrom is empty".into());
    }
    if !v.starts_with("arn:") {
        check_parameter_name(v)?;
        return Ok(SecretRef::Parameter(v.to_string()));
    }
    // arn:<partition>:<service>:<region>:<account>:<resource...>
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let [_, _, service, _, _, resource] = parts[..] else {
        return Err(format!("{v:?} is not an ARN"));
    };
    match service {
        "ssm" => {
            let name = resource
                .strip_prefix("parameter")
                .filter(|n| n.starts_with('/'))
                .ok_or_else(|| format!("{v:?}: an SSM ARN names parameter/NAME"))?;
            // parameter/app/x is /app/x; parameter/x is x.
            let name = if name[1..].contains('/') {
                name
            } else {
                &name[1..]
            };
            check_parameter_name(name)?;
            Ok(SecretRef::Parameter(name.to_string()))
        }
        "secretsmanager" => parse_secret_resource(v, resource),
        _ => Err(format!(
            "{v:?}: valueFrom names an SSM parameter or a Secrets Manager secret"
        )),
    }
}

/// `secret:NAME[:json-key[:version-stage[:version-id]]]`; empty fields
/// mean unset, as in ECS (`...:secret:db::AWSPREVIOUS:`).
fn parse_secret_resource(v: &str, resource: &str) -> Result<SecretRef, String> {
    let rest = resource
        .strip_prefix("secret:")
        .ok_or_else(|| format!("{v:?}: a Secrets Manager ARN names secret:NAME"))?;
    let mut fields = rest.split(':');
    let id = fields.next().unwrap_or_default().to_string();
    let mut next = || fields.next().filter(|f| !f.is_empty()).map(str::to_string);
    let (json_key, version_stage, version_id) = (next(), next(), next());
    if id.is_empty() {
        return Err(format!("{v:?}: the secret's name is empty"));
    }
    if rest.split(':').count() > 4 {
        return Err(format!(
            "{v:?}: at most :json-key:version-stage:version-id follow the secret's name"
        ));
    }
    Ok(SecretRef::Secret {
        id,
        json_key,
        version_stage,
        version_id,
    })
}

/// SSM's rule for names: 1-2048 of a-z A-Z 0-9 _ . - /; not starting with
/// aws or ssm (any case); a name with a `/` starts with one.
pub fn check_parameter_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    if name.is_empty() || name.len() > 2048 || !ok_chars {
        Err(format!(
            "parameter name {name:?}: 1 to 2048 of a-z, A-Z, 0-9, _ . - /"
        ))
    } else if lower.starts_with("aws") || lower.starts_with("ssm") {
        Err(format!(
            "parameter name {name:?}: names beginning with aws or ssm are reserved"
        ))
    } else if name.contains('/') && !name.starts_with('/') {
        Err(format!(
            "parameter name {name:?}: a name with / must begin with /"
        ))
    } else {
        Ok(())
    }
}

/// Secrets Manager's rule for names: 1-512 of a-z A-Z 0-9 / _ + = . @ -.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if name.is_empty() || name.len() > 512 || !ok_chars {
        return Err(format!(
            "secret name {name:?}: 1 to 512 of a-z, A-Z, 0-9, / _ + = . @ -"
        ));
    }
    Ok(())
}

/// SSM's ARN of a parameter: one `/` between `parameter` and the name.
pub fn parameter_arn(p: &Partition, name: &str) -> String {
    let sep = if name.starts_with('/') { "" } else { "/" };
    format!(
        "arn:aws:ssm:{}:{}:parameter{sep}{name}",
        p.region, p.account
    )
}

/// A secret's ARN: its name, `-` and six random characters, so that a
/// secret made again under an old name has another ARN.
pub fn secret_arn(p: &Partition, name: &str, suffix: &str) -> String {
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
        p.region, p.account
    )
}

/// The secret a `--secret-id` or a valueFrom's id names: a name, a full
/// ARN, or a partial ARN (without the suffix). The store key is the
/// name: `Full` carries the name to look up and the ARN to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretId {
    Name(String),
    /// From an ARN: the name before a possible `-XXXXXX` suffix, and the
    /// whole text after `secret:`, which is either the name itself
    /// (partial ARN) or name-suffix (full ARN).
    Arn {
        candidates: Vec<String>,
        tail: String,
    },
}

/// Reads a `--secret-id` (a name or an ARN) or a valueFrom's id part.
pub fn parse_secret_id(id: &str) -> Result<SecretId, String> {
    let tail = match id.strip_prefix("arn:") {
        None => {
            check_secret_name(id)?;
            return Ok(SecretId::Name(id.to_string()));
        }
        Some(_) => id
            .splitn(7, ':')
            .nth(6)
            // The service and the resource type: `...:parameter:db` is
            // no secret.
            .filter(|_| id.split(':').nth(2) == Some("secretsmanager"))
            .filter(|_| id.split(':').nth(5) == Some("secret"))
            .ok_or_else(|| format!("{id:?} is not a Secrets Manager secret ARN"))?,
    };
    // Keep only the name part of a valueFrom-style tail.
    let tail = tail.split(':').next().unwrap_or_default().to_string();
    Ok(SecretId::Arn {
        candidates: secret_name_candidates(&tail),
        tail,
    })
}

/// The names `tail` (the text after `secret:`) may stand for: itself (a
/// partial ARN), and itself less a `-XXXXXX` suffix (a full ARN).
pub fn secret_name_candidates(tail: &str) -> Vec<String> {
    let mut out = vec![tail.to_string()];
    if let Some((name, suffix)) = tail.rsplit_once('-') {
        if suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
            out.insert(0, name.to_string());
        }
    }
    out
}

/// SSM's largest value (the Standard tier's; berth has no other tier).
pub const MAX_PARAMETER_VALUE: usize = 4096;
/// Secrets Manager's largest SecretString.
pub const MAX_SECRET_VALUE: usize = 65536;

/// A value of at most `max` bytes, in AWS's words for `field`. Pure.
pub fn check_value_size(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
             Member must have length less than or equal to {max}"
        ));
    }
    Ok(())
}

/// What an environment variable cannot hold: `=` or NUL in its name, NUL
/// in its value (execve takes C strings). `None` when it is fine. Pure.
pub fn env_var_problem(name: &str, value: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name.contains('=') {
        Some("'=' in its name")
    } else if name.contains('\0') {
        Some("a NUL byte in its name")
    } else if value.contains('\0') {
        Some("a NUL byte in its value")
    } else {
        None
    }
}

/// Six characters from `bytes`, as Secrets Manager's suffixes look.
pub fn arn_suffix(bytes: &[u8; 6]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A version id in the UUID shape Secrets Manager prints, from 16 random
/// bytes.
pub fn version_id(bytes: &[u8; 16]) -> String {
    let h = crate::random::hex(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One key of a secret whose value is a JSON object, as ECS injects it:
/// a string as it is, any other JSON value as its JSON text.
pub fn json_key(secret: &str, key: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(secret)
        .map_err(|e| format!("the secret is not a JSON object ({e}), so it has no key {key:?}"))?;
    match v.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("the secret's JSON has no key {key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> Partition {
        Partition {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }

    #[test]
    fn value_from_names_parameters_by_name_or_arn() {
        assert_eq!(
            parse_value_from("db-pass"),
            Ok(SecretRef::Parameter("db-pass".into()))
        );
        assert_eq!(
            parse_value_from("/app/db/pass"),
            Ok(SecretRef::Parameter("/app/db/pass".into()))
        );
        assert_eq!(
            parse_value_from("arn:aws:ssm:eu-west-1:1:parameter/app/db"),
            Ok(SecretRef::Parameter("/app/db".into()))
        );
        assert_eq!(
            parse_value_from("arn:aws:ssm:eu-west-1:1:parameter/plain"),
            Ok(SecretRef::Parameter("plain".into()))
        );
        assert!(parse_value_from("").is_err());
        assert!(parse_value_from("app/db").is_err());
        assert!(parse_value_from("arn:aws:s3:::b/k").is_err());
    }

    #[test]
    fn value_from_reads_secrets_manager_suffixes() {
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbC123";
        assert_eq!(
            parse_value_from(arn),
            Ok(SecretRef::Secret {
                id: "db-AbC123".into(),
                json_key: None,
                version_stage: None,
                version_id: None
            })
        );
        assert_eq!(
            parse_value_from(&format!("{arn}:password::")),
            Ok(SecretRef::Secret {
                id: "db-AbC123".into(),
                json_key: Some("password".into()),
                version_stage: None,
                version_id: None
            })
        );
        assert_eq!(
            parse_value_from(&format!("{arn}::AWSPREVIOUS:v1")),
            Ok(SecretRef::Secret {
                id: "db-AbC123".into(),
                json_key: None,
                version_stage: Some("AWSPREVIOUS".into()),
                version_id: Some("v1".into())
            })
        );
        assert!(parse_value_from(&format!("{arn}:a:b:c:d")).is_err());
        assert!(parse_value_from("arn:aws:secretsmanager:r:1:secret:").is_err());
    }

    #[test]
    fn parameter_names_follow_ssm() {
        check_parameter_name("a.b-c_d").expect("plain");
        check_parameter_name("/a/b").expect("path");
        assert!(check_parameter_name("awsthing").is_err());
        assert!(check_parameter_name("/SSM/x").is_err());
        assert!(check_parameter_name("a b").is_err());
        assert!(check_parameter_name("a/b").is_err());
        assert!(check_secret_name("db/pass@x").is_ok());
        assert!(check_secret_name("a b").is_err());
    }

    #[test]
    fn arns_as_aws_prints_them() {
        assert_eq!(
            parameter_arn(&part(), "/app/x"),
            "arn:aws:ssm:eu-west-1:123456789012:parameter/app/x"
        );
        assert_eq!(
            parameter_arn(&part(), "x"),
            "arn:aws:ssm:eu-west-1:123456789012:parameter/x"
        );
        assert_eq!(
            secret_arn(&part(), "db", "AbC123"),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC123"
        );
        assert_eq!(arn_suffix(&[0, 1, 2, 61, 62, 255]).len(), 6);
        let v = version_id(&[0xab; 16]);
        assert_eq!(v.len(), 36);
        assert_eq!(v.matches('-').count(), 4);
    }

    #[test]
    fn secret_ids_by_name_full_or_partial_arn() {
        assert_eq!(parse_secret_id("db"), Ok(SecretId::Name("db".into())));
        let full = parse_secret_id("arn:aws:secretsmanager:r:1:secret:my-db-AbC123").expect("arn");
        assert_eq!(
            full,
            SecretId::Arn {
                candidates: vec!["my-db".into(), "my-db-AbC123".into()],
                tail: "my-db-AbC123".into()
            }
        );
        assert!(parse_secret_id("arn:aws:ssm:r:1:parameter/x").is_err());
        // The resource type is checked, not only the service.
        assert!(parse_secret_id("arn:aws:secretsmanager:r:1:parameter:db").is_err());
    }

    #[test]
    fn json_keys_as_ecs_injects_them() {
        let s = r#"{"user":"admin","port":5432}"#;
        assert_eq!(json_key(s, "user"), Ok("admin".into()));
        assert_eq!(json_key(s, "port"), Ok("5432".into()));
        assert!(json_key(s, "nope").is_err());
        assert!(json_key("plain", "user").is_err());
    }

    #[test]
    fn sizes_and_environment_characters() {
        check_value_size(
            "value",
            &"a".repeat(MAX_PARAMETER_VALUE),
            MAX_PARAMETER_VALUE,
        )
        .expect("at the cap");
        let e = check_value_size(
            "value",
            &"a".repeat(MAX_PARAMETER_VALUE + 1),
            MAX_PARAMETER_VALUE,
        )
        .unwrap_err();
        assert!(e.contains("'value'") && e.contains("4096"), "{e}");
        assert_eq!(env_var_problem("A", "x"), None);
        assert_eq!(env_var_problem("A=B", "x"), Some("'=' in its name"));
        assert_eq!(env_var_problem("A\0", "x"), Some("a NUL byte in its name"));
        assert_eq!(
            env_var_problem("A", "x\0y"),
            Some("a NUL byte in its value")
        );
        assert_eq!(env_var_problem("", "x"), Some("an empty name"));
    }
}

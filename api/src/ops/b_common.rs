//! What issue 14's new handlers share until the server's own helpers
//! land (`ops::input`, `paging.rs`): reading a request into its typed
//! shape, and paging a list with `maxResults`/`nextToken`.

use serde_json::Value;

use crate::protocol::ApiError;

/// The request as `T`: a member the model does not define is an
/// InvalidParameterException naming it; a wrong JSON type is a
/// SerializationException naming the member's path.
pub fn input<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        v => v,
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(rest) = inner.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            let at = if path == "." {
                field.to_string()
            } else {
                path.rsplit_once('.')
                    .map_or(field.to_string(), |(p, _)| format!("{p}.{field}"))
            };
            return ApiError::invalid(format!("{at}: unknown parameter"));
        }
        if let Some(rest) = inner.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or(rest);
            let at = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::invalid(format!("{at}: required"));
        }
        ApiError::Serialization(format!("{path}: {inner}"))
    })
}

/// One page of `items` (in `key` order): up to `max_results` (between 1
/// and `most`; `most` when absent) after `next_token`, and the token of
/// the next page when there is one. Tokens are the hex of the last key
/// given, so they never repeat.
pub fn page<T>(
    mut items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
    most: i64,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => most,
        Some(n) if (1..=most).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxResults: {n}: between 1 and {most}"
            )))
        }
    };
    items.sort_by_key(|i| key(i));
    if let Some(token) = next_token {
        let after = unhex(token).ok_or_else(|| {
            ApiError::invalid(format!("nextToken: {token:?} is not a token berth gave"))
        })?;
        items.retain(|i| key(i) > after);
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if items.len() <= size {
        return Ok((items, None));
    }
    items.truncate(size);
    let next = items.last().map(|i| hex(&key(i)));
    Ok((items, next))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        resource_arn: String,
        #[serde(default)]
        tags: Vec<Tag>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tag {
        key: String,
    }

    #[test]
    fn unknown_members_and_wrong_types() {
        let e = input::<Req>(serde_json::json!({"resourceArn": "a", "colour": 1})).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterException");
        assert!(e.body()["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("colour"));
        let e =
            input::<Req>(serde_json::json!({"resourceArn": "a", "tags": [{"key": "k", "x": 1}]}))
                .unwrap_err();
        assert!(
            e.body()["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("tags[0].x"),
            "{:?}",
            e.body()
        );
        let e = input::<Req>(serde_json::json!({"resourceArn": 5})).unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
        assert!(e.body()["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("resourceArn"));
    }

    #[test]
    fn pages_never_repeat_a_token() {
        let items: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let mut token = None;
        let mut seen = Vec::new();
        let mut tokens = Vec::new();
        loop {
            let (got, next) =
                page(items.clone(), Some(2), token.as_deref(), 10, |s| s.clone()).expect("page");
            seen.extend(got);
            match next {
                Some(t) => {
                    assert!(!tokens.contains(&t));
                    tokens.push(t.clone());
                    token = Some(t);
                }
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page(items.clone(), Some(0), None, 10, |s| s.clone()).is_err());
        assert!(page(items, None, Some("zz"), 10, |s| s.clone()).is_err());
    }
}

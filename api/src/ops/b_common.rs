//! What issue 14's list handlers share: [`crate::paging::page`] over
//! items put in key order first (the orchestrator lists them in its own
//! order), with ECS's per-operation largest page.

use serde_json::{json, Value};

use crate::paging;
use crate::protocol::ApiError;

/// One page of the orchestrator's answer `all`'s array `member`, sorted
/// by `key`, at most `most` long (ECS's largest page for the operation),
/// as `{ <member>: [...], nextToken }` (no token on the last page).
pub fn sorted_page(
    member: &str,
    all: &Value,
    max_results: Option<i64>,
    next_token: Option<&str>,
    most: i64,
    key: impl Fn(&Value) -> String,
) -> Result<Value, ApiError> {
    if let Some(n) = max_results.filter(|n| !(1..=most).contains(n)) {
        return Err(ApiError::invalid(format!(
            "maxResults: {n} is not between 1 and {most}"
        )));
    }
    let mut items = all[member].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|i| key(i));
    let size = Some(max_results.unwrap_or(most));
    let (page, next) = paging::page(&items, size, next_token, key)?;
    let mut answer = json!({ member: page });
    if let Some(t) = next {
        answer["nextToken"] = json!(t);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_in_key_order_and_never_repeat_a_token() {
        let items = json!({ "x": ["c", "a", "e", "b", "d"] });
        let key = |v: &Value| v.as_str().unwrap_or("").to_string();
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        let mut tokens = Vec::new();
        loop {
            let out = sorted_page("x", &items, Some(2), token.as_deref(), 10, key).expect("page");
            seen.extend(out["x"].as_array().cloned().unwrap_or_default());
            match out["nextToken"].as_str() {
                Some(t) => {
                    assert!(!tokens.contains(&t.to_string()), "repeated {t}");
                    tokens.push(t.to_string());
                    token = Some(t.to_string());
                }
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"].map(|s| json!(s)));
        assert!(sorted_page("x", &items, Some(11), None, 10, key).is_err());
        assert!(sorted_page("x", &items, Some(0), None, 10, key).is_err());
    }
}

//! `maxResults` and `nextToken` on the List operations. A token is
//! opaque to clients (base64 of the last key served), so a page goes on
//! after that key even when items came or went in between; no token on
//! the last page, and never the same token twice (botocore's paginator
//! stops with an error on a repeat).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use serde_json::{json, Value};

use crate::protocol::ApiError;

/// ECS's largest page (and the page when `maxResults` is absent).
pub const MAX_RESULTS: i64 = 100;

/// The page of `items` (in the order given; `key` unique) after `next_token`,
/// at most `max_results` long, and the token of the page after it.
pub fn page<T: Clone>(
    items: &[T],
    max_results: Option<i64>,
    next_token: Option<&str>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxResults: {n} is not between 1 and {MAX_RESULTS}"
            )))
        }
    } as usize;
    let start = match next_token.map(decode).transpose()? {
        None => 0,
        // After the last item served; if it went away meanwhile, after
        // where it would sort.
        Some(after) => match items.iter().position(|i| key(i) == after) {
            Some(p) => p + 1,
            None => items
                .iter()
                .position(|i| key(i) > after)
                .unwrap_or(items.len()),
        },
    };
    let rest = &items[start.min(items.len())..];
    let chosen: Vec<T> = rest.iter().take(size).cloned().collect();
    let token = (rest.len() > size)
        .then(|| chosen.last().map(|last| encode(&key(last))))
        .flatten();
    Ok((chosen, token))
}

/// A list of ARNs (the List operations' answers), paged in ARN order.
pub fn strings(
    items: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let mut items = items;
    items.sort();
    items.dedup();
    page(&items, max_results, next_token, Clone::clone)
}

fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("berth1:{key}"))
}

fn decode(token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid(format!("nextToken: {token:?} is not a token berth gave"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("berth1:")
        .map(str::to_string)
        .ok_or_else(bad)
}

/// One page of the orchestrator's answer `all`'s array `member` (listed
/// in the orchestrator's own order), sorted
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
    let (page, next) = page(&items, size, next_token, key)?;
    let mut answer = json!({ member: page });
    if let Some(t) = next {
        answer["nextToken"] = json!(t);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_pages(items: &[&str], size: i64) -> Vec<Vec<String>> {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let (page, next) = strings(items.clone(), Some(size), token.as_deref()).unwrap();
            pages.push(page);
            match next {
                Some(t) => {
                    assert!(seen.insert(t.clone()), "token repeated");
                    token = Some(t);
                }
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_cover_everything_once_with_no_token_on_the_last() {
        assert_eq!(
            all_pages(&["c", "a", "b"], 1),
            vec![vec!["a"], vec!["b"], vec!["c"]]
        );
        assert_eq!(all_pages(&["a", "b"], 2), vec![vec!["a", "b"]]);
        assert_eq!(all_pages(&[], 5), vec![Vec::<String>::new()]);
        assert_eq!(all_pages(&["a", "b", "c"], 2).len(), 2);
    }

    #[test]
    fn bad_tokens_and_sizes_are_refused() {
        let items = vec!["a".to_string()];
        let e = strings(items.clone(), Some(0), None).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterException");
        assert!(strings(items.clone(), Some(101), None).is_err());
        let e = strings(items, None, Some("garbage!")).unwrap_err();
        assert!(e.to_string().contains("nextToken"), "{e}");
    }

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

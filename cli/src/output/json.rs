//! `--output json` as aws prints it: Python's `json.dump(indent=4,
//! ensure_ascii=False)`, floats in Python's repr, nothing at all for an
//! empty object (an operation without a response body).

use serde_json::Value;

use super::python;

/// The document, with a final newline; "" for `{}`. An object whose keys
/// are those of one of `orders` prints them in that order (a --query's
/// multi-select hash, as aws keeps it); others in serde_json's (sorted).
pub fn render(v: &Value, orders: &[Vec<String>]) -> String {
    if v.as_object().is_some_and(|o| o.is_empty()) {
        return String::new();
    }
    let mut out = String::new();
    write(&mut out, v, 0, orders);
    out.push('\n');
    out
}

/// `map`'s keys in the order of the first of `orders` with the same keys.
fn keys<'a>(map: &'a serde_json::Map<String, Value>, orders: &'a [Vec<String>]) -> Vec<&'a String> {
    let same = |o: &&Vec<String>| o.len() == map.len() && o.iter().all(|k| map.contains_key(k));
    match orders.iter().find(same) {
        Some(order) => order.iter().collect(),
        None => map.keys().collect(),
    }
}

fn write(out: &mut String, v: &Value, depth: usize, orders: &[Vec<String>]) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&python::number(n)),
        Value::String(s) => string(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, depth + 1);
                write(out, item, depth + 1, orders);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, k) in keys(map, orders).into_iter().enumerate() {
                separator(out, i, depth + 1);
                string(out, k);
                out.push_str(": ");
                write(out, &map[k], depth + 1, orders);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn separator(out: &mut String, i: usize, depth: usize) {
    if i > 0 {
        out.push(',');
    }
    newline(out, depth);
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.push_str(&"    ".repeat(depth));
}

/// A JSON string: serde_json escapes what Python's json does (quote,
/// backslash, control characters) and, as ensure_ascii=False, no more.
fn string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_string()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indents_by_four_as_python() {
        let v = json!({"a": [1, 2.0, {"b": null}], "c": {}, "d": [], "e": "x\u{1}é"});
        assert_eq!(
            render(&v, &[]),
            "{\n    \"a\": [\n        1,\n        2.0,\n        {\n            \"b\": null\n        }\n    ],\n    \"c\": {},\n    \"d\": [],\n    \"e\": \"x\\u0001é\"\n}\n"
        );
        assert_eq!(render(&json!({}), &[]), "");
        assert_eq!(render(&json!(null), &[]), "null\n");
        assert_eq!(render(&json!("s"), &[]), "\"s\"\n");
        let order = vec!["b".to_string(), "a".into()];
        assert_eq!(
            render(&json!([{"a": 1, "b": 2}, {"a": 1}]), &[order]),
            "[\n    {\n        \"b\": 2,\n        \"a\": 1\n    },\n    {\n        \"a\": 1\n    }\n]\n"
        );
    }
}

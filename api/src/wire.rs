//! ECS values as botocore's model puts them on the wire, walked shape by
//! shape (`ecs-shapes.json`, botocore's ECS model without its docs, made
//! by `scripts/ecs_shapes.py`) rather than by guessing member names:
//!
//! - responses ([`response`]): timestamps (RFC 3339 strings in berth's
//!   store) become epoch seconds with their milliseconds; a number where
//!   the model has a string becomes the string and a numeric string where
//!   it has an integer becomes the integer (task `cpu` is a string,
//!   container-definition `cpu` an integer); members the model does not
//!   define (`x-berth`) are left out. The Go SDK rejects any mismatch.
//! - requests ([`check_request`]): a member the model does not define is
//!   an InvalidParameterException, a value of the wrong JSON type a
//!   SerializationException, each naming the member's path.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::protocol::ApiError;

/// One shape of the model: its type and what it holds.
#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: BTreeMap<String, String>,
    #[serde(default)]
    member: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    input: Option<String>,
    output: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Model {
    operations: BTreeMap<String, Operation>,
    shapes: BTreeMap<String, Shape>,
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        // Embedded and checked by the unit tests: a failure here is a
        // build defect, not input.
        serde_json::from_str(include_str!("ecs-shapes.json")).expect("ecs-shapes.json parses")
    })
}

/// Whether the model defines `operation` (an ECS operation, served or not).
pub fn is_modeled(operation: &str) -> bool {
    model().operations.contains_key(operation)
}

/// `value`, the orchestrator's answer to `operation`, in the model's wire
/// form. An operation the model does not know is passed through.
pub fn response(operation: &str, value: Value) -> Value {
    let m = model();
    match m.operations.get(operation).and_then(|o| o.output.as_ref()) {
        Some(shape) => to_wire(m, shape, value),
        None => value,
    }
}

fn to_wire(m: &Model, shape: &str, value: Value) -> Value {
    let Some(s) = m.shapes.get(shape) else {
        return value;
    };
    match (s.kind.as_str(), value) {
        ("structure", Value::Object(o)) => {
            let mut out = Map::new();
            for (k, v) in o {
                // Absent and null are the same to every SDK: leave nulls out.
                if v.is_null() {
                    continue;
                }
                if let Some(member) = s.members.get(&k) {
                    out.insert(k, to_wire(m, member, v));
                }
            }
            Value::Object(out)
        }
        ("list", Value::Array(items)) => {
            let member = s.member.as_deref().unwrap_or_default();
            Value::Array(items.into_iter().map(|v| to_wire(m, member, v)).collect())
        }
        ("map", Value::Object(o)) => {
            let vs = s.value.as_deref().unwrap_or_default();
            Value::Object(o.into_iter().map(|(k, v)| (k, to_wire(m, vs, v))).collect())
        }
        ("timestamp", Value::String(t)) => epoch_seconds(&t).unwrap_or(Value::String(t)),
        ("string", Value::Number(n)) => Value::String(n.to_string()),
        ("string", Value::Bool(b)) => Value::String(b.to_string()),
        ("integer" | "long", Value::String(t)) => match t.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(t),
        },
        ("double" | "float", Value::String(t)) => t
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::String(t), Value::Number),
        (_, v) => v,
    }
}

/// An RFC 3339 time as epoch seconds, milliseconds kept as the fraction
/// (a JSON number, as every SDK's JSON 1.1 parser reads it).
fn epoch_seconds(t: &str) -> Option<Value> {
    let at = chrono::DateTime::parse_from_rfc3339(t).ok()?;
    let millis = at.timestamp_millis();
    if millis % 1000 == 0 {
        return Some(Value::from(millis / 1000));
    }
    Number::from_f64(millis as f64 / 1000.0).map(Value::Number)
}

/// Check a request body against `operation`'s input shape.
pub fn check_request(operation: &str, body: &Value) -> Result<(), ApiError> {
    let m = model();
    let Some(shape) = m.operations.get(operation).and_then(|o| o.input.as_ref()) else {
        // No input: ECS's clients send `{}`.
        return match body {
            Value::Object(o) if o.is_empty() => Ok(()),
            Value::Object(o) => Err(unknown_member(o.keys().next().map_or("", |k| k))),
            _ => Err(wrong_type("", "a JSON object")),
        };
    };
    check(m, shape, body, "")
}

fn unknown_member(path: &str) -> ApiError {
    ApiError::invalid(format!("{path}: not a member of the request"))
}

fn wrong_type(path: &str, expected: &str) -> ApiError {
    let at = if path.is_empty() { "the body" } else { path };
    ApiError::Serialization(format!("{at}: expected {expected}"))
}

fn check(m: &Model, shape: &str, v: &Value, path: &str) -> Result<(), ApiError> {
    let Some(s) = m.shapes.get(shape) else {
        return Ok(());
    };
    if v.is_null() {
        return Ok(());
    }
    let at = |k: &dyn std::fmt::Display| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match s.kind.as_str() {
        "structure" => {
            let o = v
                .as_object()
                .ok_or_else(|| wrong_type(path, "a JSON object"))?;
            for (k, item) in o {
                let member = s.members.get(k).ok_or_else(|| unknown_member(&at(k)))?;
                check(m, member, item, &at(k))?;
            }
        }
        "list" => {
            let items = v
                .as_array()
                .ok_or_else(|| wrong_type(path, "a JSON array"))?;
            let member = s.member.as_deref().unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                check(m, member, item, &format!("{path}[{i}]"))?;
            }
        }
        "map" => {
            let o = v
                .as_object()
                .ok_or_else(|| wrong_type(path, "a JSON object"))?;
            let vs = s.value.as_deref().unwrap_or_default();
            for (k, item) in o {
                check(m, vs, item, &at(k))?;
            }
        }
        "string" if !v.is_string() => return Err(wrong_type(path, "a string")),
        "boolean" if !v.is_boolean() => return Err(wrong_type(path, "a boolean")),
        "integer" | "long" if !(v.is_i64() || v.is_u64()) => {
            return Err(wrong_type(path, "an integer"))
        }
        "double" | "float" | "timestamp" if !v.is_number() => {
            return Err(wrong_type(path, "a number"))
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_model_parses_and_has_ecs_operations() {
        assert!(is_modeled("RunTask"));
        assert!(is_modeled("DescribeServices"));
        assert!(!is_modeled("CreateLoadBalancer"));
    }

    #[test]
    fn task_timestamps_become_epoch_seconds_and_internals_go() {
        let task = json!({
            "taskArn": "arn:aws:ecs:local:000000000000:task/c/abc",
            "createdAt": "2026-11-30T15:00:00.123Z",
            "startedAt": "2026-11-30T15:00:01Z",
            "cpu": 256,
            "memory": "512",
            "version": "3",
            "containers": [{"name": "web", "cpu": "0", "memory": null}],
            "x-berth": {"reservedCpu": 256},
        });
        let out = response("DescribeTasks", json!({"tasks": [task], "failures": []}));
        let t = &out["tasks"][0];
        assert_eq!(t["createdAt"], json!(1796050800.123));
        assert_eq!(t["startedAt"], json!(1796050801));
        assert_eq!(t["cpu"], json!("256"));
        assert_eq!(t["memory"], json!("512"));
        assert_eq!(t["version"], json!(3));
        assert_eq!(t["containers"][0]["cpu"], json!("0"));
        assert!(t["containers"][0].get("memory").is_none());
        assert!(t.get("x-berth").is_none());
    }

    #[test]
    fn container_definition_cpu_and_memory_are_integers() {
        let td = json!({
            "taskDefinition": {
                "family": "web",
                "cpu": "256",
                "registeredAt": "2026-11-30T15:00:00Z",
                "containerDefinitions": [{"name": "web", "cpu": "128", "memory": "64",
                    "berthOnly": true}],
            },
            "tags": [],
        });
        let out = response("DescribeTaskDefinition", td);
        let d = &out["taskDefinition"];
        assert_eq!(d["cpu"], json!("256"));
        assert_eq!(d["registeredAt"], json!(1796050800));
        assert_eq!(d["containerDefinitions"][0]["cpu"], json!(128));
        assert_eq!(d["containerDefinitions"][0]["memory"], json!(64));
        assert!(d["containerDefinitions"][0].get("berthOnly").is_none());
    }

    #[test]
    fn requests_name_unknown_members_and_wrong_types() {
        let ok = json!({"cluster": "c", "taskDefinition": "t:1", "count": 2,
            "overrides": {"containerOverrides": [{"name": "a", "command": ["x"]}]}});
        check_request("RunTask", &ok).unwrap();

        let unknown = json!({"taskDefinition": "t", "overrides": {"bogus": 1}});
        let e = check_request("RunTask", &unknown).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterException");
        assert!(e.to_string().contains("overrides.bogus"), "{e}");

        let wrong = json!({"taskDefinition": "t", "count": "2"});
        let e = check_request("RunTask", &wrong).unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
        assert!(e.to_string().contains("count"), "{e}");

        let nested = json!({"taskDefinition": "t",
            "overrides": {"containerOverrides": [{"name": "a", "command": "x"}]}});
        let e = check_request("RunTask", &nested).unwrap_err();
        assert!(
            e.to_string()
                .contains("overrides.containerOverrides[0].command"),
            "{e}"
        );

        let e = check_request("ListClusters", &json!([])).unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
    }
}

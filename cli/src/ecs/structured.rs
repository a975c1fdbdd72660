//! The one way every structured flag is read, as aws reads it: JSON
//! (inline, or file://PATH) when the value starts with `{` or `[`, else
//! aws's shorthand (`shorthand`). A list flag takes one JSON array for
//! the whole list, or one structure a value (`--tags key=a,value=b
//! key=c,value=d`). The request type `T` plays aws's model: shorthand's
//! strings become the numbers and booleans it has there, and a single
//! value where it has a list becomes a list of one.

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::input::{json_arg, typed};
use super::shorthand;

/// Whether aws reads `arg` as JSON rather than shorthand.
fn is_json(arg: &str) -> bool {
    let t = arg.trim_start();
    t.starts_with('{') || t.starts_with('[') || t.starts_with("file://")
}

/// One structure as JSON, its shorthand strings made `T`'s types.
pub(super) fn one_value<T: DeserializeOwned>(flag: &str, arg: &str) -> anyhow::Result<Value> {
    if is_json(arg) {
        return json_arg(flag, arg);
    }
    let mut v = shorthand::parse(arg).map_err(|e| anyhow::anyhow!("--{flag} {arg:?}: {e}"))?;
    coerce::<T>(&mut v).with_context(|| format!("--{flag} {arg:?}"))?;
    Ok(v)
}

/// A list flag's structures, typed as `T`.
pub(super) fn list<T: DeserializeOwned>(flag: &str, args: &[String]) -> anyhow::Result<Vec<T>> {
    let v = list_values::<T>(flag, args)?;
    typed(Value::Array(v)).with_context(|| format!("--{flag}"))
}

/// A list flag's structures as JSON, shorthand strings made `T`'s types.
pub(super) fn list_values<T: DeserializeOwned>(
    flag: &str,
    args: &[String],
) -> anyhow::Result<Vec<Value>> {
    if let [one] = args {
        if is_json(one) {
            let v = json_arg(flag, one)?;
            return match v {
                Value::Array(items) => Ok(items),
                // A JSON object is one element, as aws takes it too.
                obj @ Value::Object(_) => Ok(vec![obj]),
                _ => anyhow::bail!("--{flag}: not a JSON array"),
            };
        }
    }
    args.iter().map(|a| one_value::<T>(flag, a)).collect()
}

/// Make `v`'s strings the numbers, booleans and lists `T` has where they
/// are, one deserialization error at a time (its path says where).
pub(super) fn coerce<T: DeserializeOwned>(v: &mut Value) -> anyhow::Result<()> {
    // Each pass fixes one string for good: no more passes than strings.
    for _ in 0..=strings(v) {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(v.clone()) else {
            return Ok(());
        };
        let message = e.inner().to_string();
        let path = e.path().to_string();
        let Some(Value::String(s)) = slot(v, e.path()) else {
            return Ok(());
        };
        let fixed = if message.contains("expected a sequence") {
            Value::Array(vec![Value::String(s.clone())])
        } else if let Some(n) = number(s) {
            n
        } else if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
            Value::Bool(s.eq_ignore_ascii_case("true"))
        } else if wants_number(&message) {
            anyhow::bail!("{path}: {s:?} is not a number");
        } else {
            // Not for us to mend: typing reports it, naming the field.
            return Ok(());
        };
        if let Some(slot) = slot(v, e.path()) {
            *slot = fixed;
        }
    }
    Ok(())
}

fn number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(u.into());
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// serde's "expected u32", "expected i64", "expected f64" …
fn wants_number(message: &str) -> bool {
    message.split("expected ").nth(1).is_some_and(|rest| {
        let mut c = rest.chars();
        matches!(c.next(), Some('u' | 'i' | 'f')) && c.next().is_some_and(|d| d.is_ascii_digit())
    })
}

fn strings(v: &Value) -> usize {
    match v {
        Value::String(_) => 1,
        Value::Array(items) => items.iter().map(strings).sum(),
        Value::Object(map) => map.values().map(strings).sum(),
        _ => 0,
    }
}

/// The value at a deserialization error's path.
fn slot<'a>(v: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    use serde_path_to_error::Segment;
    let mut at = v;
    for segment in path.iter() {
        at = match segment {
            Segment::Seq { index } => at.get_mut(*index)?,
            Segment::Map { key } => at.get_mut(key.as_str())?,
            _ => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_orchestrator::model::{ServiceLoadBalancer, Tag};
    use serde_json::json;

    /// One structure, typed as `T`.
    fn one<T: DeserializeOwned>(flag: &str, arg: &str) -> anyhow::Result<T> {
        typed(one_value::<T>(flag, arg)?).with_context(|| format!("--{flag}"))
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        count: u32,
        enabled: bool,
        names: Vec<String>,
        #[serde(default)]
        nested: Option<Box<Shape>>,
    }

    #[test]
    fn shorthand_takes_the_types_of_the_request() {
        let s: Shape = one(
            "x",
            "count=3,enabled=true,names=a,nested={count=1,enabled=FALSE,names=[b,c]}",
        )
        .unwrap();
        assert_eq!(
            (s.count, s.enabled, s.names),
            (3, true, vec!["a".to_string()])
        );
        let n = s.nested.expect("nested");
        assert_eq!((n.count, n.enabled, n.names.len()), (1, false, 2));
        // A number where the request has a string stays a string.
        let tags: Vec<Tag> = list("tags", &strings(&["key=n,value=42"])).unwrap();
        assert_eq!(tags[0].value, "42");
    }

    #[test]
    fn list_flags_take_shorthand_a_value_or_one_json_array() {
        let lbs: Vec<ServiceLoadBalancer> = list(
            "load-balancers",
            &strings(&[
                "loadBalancerName=a,containerName=web,containerPort=80",
                "loadBalancerName=b,containerName=web,containerPort=81",
            ]),
        )
        .unwrap();
        assert_eq!(
            (lbs[1].container_port, lbs[0].load_balancer_name.as_deref()),
            (81, Some("a"))
        );
        let json: Vec<ServiceLoadBalancer> = list(
            "load-balancers",
            &strings(&[
                r#"[{"loadBalancerName": "a", "containerName": "web", "containerPort": 80}]"#,
            ]),
        )
        .unwrap();
        assert_eq!(json.len(), 1);
        let v = list_values::<Value>(
            "placement-strategy",
            &strings(&[
                "type=spread,field=attribute:ecs.availability-zone",
                "type=binpack,field=memory",
            ]),
        )
        .unwrap();
        assert_eq!(
            v,
            vec![
                json!({"type": "spread", "field": "attribute:ecs.availability-zone"}),
                json!({"type": "binpack", "field": "memory"})
            ]
        );
    }

    #[test]
    fn errors_name_the_flag_and_the_field() {
        let e = format!(
            "{:#}",
            one::<Shape>("x", "count=lots,enabled=true,names=a").unwrap_err()
        );
        assert_eq!(
            e,
            r#"--x "count=lots,enabled=true,names=a": count: "lots" is not a number"#
        );
        let e = format!(
            "{:#}",
            one::<Shape>("x", "count=1,enabled=maybe,names=a").unwrap_err()
        );
        assert!(
            e.starts_with("--x: enabled: invalid type: string \"maybe\", expected a boolean"),
            "{e}"
        );
        let e = format!("{:#}", one::<Shape>("x", "count").unwrap_err());
        assert_eq!(e, r#"--x "count": expected '=' at column 6, found the end"#);
        let e = format!("{:#}", list::<Shape>("x", &strings(&["7"])).unwrap_err());
        assert!(e.starts_with("--x \"7\": expected '='"), "{e}");
    }
}

//! Placement strategies and constraints, parsed from ECS's JSON
//! (`placementStrategy`, `placementConstraints`) with errors that name the
//! field the caller wrote.

use serde_json::Value;

use super::{Expr, PlacementError};

/// ECS refuses longer lists; so do we, to keep placement cost bounded.
const MAX_STRATEGIES: usize = 5;
const MAX_CONSTRAINTS: usize = 10;

/// The resource a binpack strategy packs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

/// What a spread strategy balances tasks across.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpreadField {
    /// One bucket per instance (`instanceId`, or its ECS alias `host`).
    InstanceId,
    /// One bucket per value of the attribute (`attribute:NAME`); instances
    /// without it share a bucket of their own.
    Attribute(String),
}

/// One ECS placement strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer the instance with the least of the resource left.
    Binpack(Resource),
    /// Prefer the bucket holding the fewest tasks of the group.
    Spread(SpreadField),
    /// Pick at random among whatever is left.
    Random,
}

impl Strategy {
    /// Parses one `{"type": ..., "field": ...}` object; error paths are
    /// relative to it (`field`, `type`).
    pub fn from_json(value: &Value) -> Result<Self, PlacementError> {
        let object = value
            .as_object()
            .ok_or_else(|| PlacementError::invalid("", "must be an object"))?;
        let kind = required_str(object, "type")?;
        let field = optional_str(object, "field")?;
        match kind {
            "binpack" => match field {
                Some("cpu") => Ok(Self::Binpack(Resource::Cpu)),
                Some("memory") => Ok(Self::Binpack(Resource::Memory)),
                _ => Err(PlacementError::invalid(
                    "field",
                    "binpack needs cpu or memory",
                )),
            },
            "spread" => match field {
                Some("instanceId" | "host") => Ok(Self::Spread(SpreadField::InstanceId)),
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Self::Spread(SpreadField::Attribute(name.to_owned())))
                    }
                    _ => Err(PlacementError::invalid(
                        "field",
                        format!("spread needs instanceId, host or attribute:NAME, not {f:?}"),
                    )),
                },
                None => Err(PlacementError::invalid(
                    "field",
                    "spread needs instanceId, host or attribute:NAME",
                )),
            },
            // ECS ignores `field` for random, and so do we.
            "random" => Ok(Self::Random),
            other => Err(PlacementError::invalid(
                "type",
                format!("unknown strategy {other:?} (expected binpack, spread or random)"),
            )),
        }
    }

    /// Parses a whole `placementStrategy` array (absent or null: none).
    pub fn list_from_json(value: Option<&Value>) -> Result<Vec<Self>, PlacementError> {
        parse_list(value, "placementStrategy", MAX_STRATEGIES, Self::from_json)
    }
}

/// One ECS placement constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// No two tasks of the group on one instance.
    DistinctInstance,
    /// Only instances the expression selects.
    MemberOf(Expr),
}

impl Constraint {
    /// Parses one `{"type": ..., "expression": ...}` object.
    pub fn from_json(value: &Value) -> Result<Self, PlacementError> {
        let object = value
            .as_object()
            .ok_or_else(|| PlacementError::invalid("", "must be an object"))?;
        match required_str(object, "type")? {
            "distinctInstance" => Ok(Self::DistinctInstance),
            "memberOf" => {
                let source = optional_str(object, "expression")?.ok_or_else(|| {
                    PlacementError::invalid("expression", "memberOf needs an expression")
                })?;
                Expr::parse(source).map(Self::MemberOf)
            }
            other => Err(PlacementError::invalid(
                "type",
                format!("unknown constraint {other:?} (expected distinctInstance or memberOf)"),
            )),
        }
    }

    /// Parses a whole `placementConstraints` array (absent or null: none).
    pub fn list_from_json(value: Option<&Value>) -> Result<Vec<Self>, PlacementError> {
        parse_list(
            value,
            "placementConstraints",
            MAX_CONSTRAINTS,
            Self::from_json,
        )
    }
}

fn required_str<'v>(
    object: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'v str, PlacementError> {
    optional_str(object, key)?.ok_or_else(|| PlacementError::invalid(key, "is required"))
}

fn optional_str<'v>(
    object: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, PlacementError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PlacementError::invalid(key, "must be a string")),
    }
}

fn parse_list<T>(
    value: Option<&Value>,
    name: &str,
    max: usize,
    parse_one: impl Fn(&Value) -> Result<T, PlacementError>,
) -> Result<Vec<T>, PlacementError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(PlacementError::invalid(name, "must be an array")),
    };
    if items.len() > max {
        return Err(PlacementError::invalid(
            name,
            format!("at most {max} entries, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_one(item).map_err(|e| e.within(&format!("{name}[{i}]"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::fleet;
    use super::*;
    use serde_json::json;

    #[test]
    fn strategies_parse_from_ecs_json() {
        let strategies = Strategy::list_from_json(Some(&json!([
            {"type": "binpack", "field": "memory"},
            {"type": "binpack", "field": "cpu"},
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"},
            {"type": "random"},
        ])));
        assert_eq!(
            strategies,
            Ok(vec![
                Strategy::Binpack(Resource::Memory),
                Strategy::Binpack(Resource::Cpu),
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Random,
            ])
        );
        assert_eq!(Strategy::list_from_json(None), Ok(vec![]));
        assert_eq!(Strategy::list_from_json(Some(&Value::Null)), Ok(vec![]));
    }

    #[test]
    fn strategy_errors_name_the_field() {
        let error = |value: Value| match Strategy::list_from_json(Some(&value)) {
            Err(e) => e.to_string(),
            Ok(s) => panic!("{value} parsed as {s:?}"),
        };
        assert_eq!(
            error(json!([{"type": "binpack", "field": "disk"}])),
            "placementStrategy[0].field: binpack needs cpu or memory"
        );
        assert_eq!(
            error(json!([{"type": "random"}, {"type": "spread"}])),
            "placementStrategy[1].field: spread needs instanceId, host or attribute:NAME"
        );
        assert_eq!(
            error(json!([{"type": "spread", "field": "attribute:"}])),
            "placementStrategy[0].field: spread needs instanceId, host or attribute:NAME, not \"attribute:\""
        );
        assert_eq!(
            error(json!([{"type": "pack"}])),
            "placementStrategy[0].type: unknown strategy \"pack\" (expected binpack, spread or random)"
        );
        assert_eq!(
            error(json!([{"field": "cpu"}])),
            "placementStrategy[0].type: is required"
        );
        assert_eq!(
            error(json!([{"type": 3}])),
            "placementStrategy[0].type: must be a string"
        );
        assert_eq!(
            error(json!(["binpack"])),
            "placementStrategy[0]: must be an object"
        );
        assert_eq!(
            error(json!({"type": "random"})),
            "placementStrategy: must be an array"
        );
        assert_eq!(
            error(Value::Array(vec![json!({"type": "random"}); 6])),
            "placementStrategy: at most 5 entries, got 6"
        );
    }

    #[test]
    fn constraints_parse_from_ecs_json() {
        let constraints = Constraint::list_from_json(Some(&json!([
            {"type": "distinctInstance"},
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"},
        ])));
        let Ok(constraints) = constraints else {
            panic!("{constraints:?}");
        };
        assert_eq!(constraints[0], Constraint::DistinctInstance);
        let Constraint::MemberOf(expr) = &constraints[1] else {
            panic!("{:?}", constraints[1]);
        };
        assert_eq!(expr.to_string(), "attribute:ecs.instance-type =~ t2.*");
        assert!(expr.matches(&fleet()[0]));

        let error =
            |value: Value| Constraint::list_from_json(Some(&value)).map_err(|e| e.to_string());
        assert_eq!(
            error(json!([{"type": "memberOf"}])),
            Err("placementConstraints[0].expression: memberOf needs an expression".into())
        );
        assert_eq!(
            error(json!([{"type": "distinctInstance"}, {"type": "memberOf", "expression": "attribute:x =="}])),
            Err("placementConstraints[1].expression: expected a value at position 15 (found end of expression)".into())
        );
        assert_eq!(
            error(json!([{"type": "sameInstance"}])),
            Err("placementConstraints[0].type: unknown constraint \"sameInstance\" (expected distinctInstance or memberOf)".into())
        );
    }
}

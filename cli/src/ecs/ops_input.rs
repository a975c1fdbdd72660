//! Flag values of issue 14's verbs: lists of structures given as aws
//! takes them, a JSON array (or file://PATH) or one shorthand
//! `k=v,k=v` per item, read into the orchestrator's types. Each error
//! names its flag.

use anyhow::Context;
use berth_orchestrator::ecs::TargetedAttribute;
use berth_orchestrator::model::{CapacityProviderStrategyItem, ClusterSetting};
use serde_json::{Map, Value};

use super::input::{json_arg, typed};

/// Members whose shorthand values are numbers.
const NUMBERS: [&str; 2] = ["weight", "base"];

/// One shorthand item `k=v,k=v` as a JSON object.
fn shorthand(flag: &str, arg: &str) -> anyhow::Result<Value> {
    let mut m = Map::new();
    for part in arg.split(',') {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--{flag} {arg:?}: expected key=value,…"))?;
        let value = match (NUMBERS.contains(&k), v.parse::<i64>()) {
            (true, Ok(n)) => Value::from(n),
            _ => Value::from(v),
        };
        m.insert(k.to_string(), value);
    }
    Ok(Value::Object(m))
}

/// A list flag's items: one JSON array, or shorthand items.
pub(super) fn items<T: serde::de::DeserializeOwned>(
    flag: &str,
    args: &[String],
) -> anyhow::Result<Vec<T>> {
    let value = match args {
        [one] if one.trim_start().starts_with('[') || one.starts_with("file://") => {
            json_arg(flag, one)?
        }
        _ => Value::Array(
            args.iter()
                .map(|a| shorthand(flag, a))
                .collect::<anyhow::Result<_>>()?,
        ),
    };
    typed(value).with_context(|| format!("--{flag}"))
}

pub(super) fn strategy(
    flag: &str,
    args: &[String],
) -> anyhow::Result<Vec<CapacityProviderStrategyItem>> {
    items(flag, args)
}

pub(super) fn settings(args: &[String]) -> anyhow::Result<Vec<ClusterSetting>> {
    items("settings", args)
}

/// `--attributes name=N,value=V,targetType=T,targetId=I …`.
pub(super) fn attributes(args: &[String]) -> anyhow::Result<Vec<TargetedAttribute>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct A {
        name: String,
        value: Option<String>,
        target_type: Option<String>,
        target_id: Option<String>,
    }
    let list: Vec<A> = items("attributes", args)?;
    Ok(list
        .into_iter()
        .map(|a| TargetedAttribute {
            name: a.name,
            value: a.value,
            target_type: a.target_type,
            target_id: a.target_id,
        })
        .collect())
}

/// A JSON object flag (or file://PATH), or one shorthand item.
pub(super) fn object(flag: &str, arg: &str) -> anyhow::Result<Value> {
    let v = if arg.trim_start().starts_with('{') || arg.starts_with("file://") {
        json_arg(flag, arg)?
    } else {
        shorthand(flag, arg)?
    };
    anyhow::ensure!(v.is_object(), "--{flag}: not a JSON object");
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shorthand_or_json_items() {
        let s = strategy(
            "capacity-provider-strategy",
            &strings(&[
                "capacityProvider=FARGATE,weight=1,base=2",
                "capacityProvider=FARGATE_SPOT,weight=3",
            ]),
        )
        .expect("shorthand");
        assert_eq!((s[0].base, s[1].weight), (2, 3));
        let j = strategy(
            "capacity-provider-strategy",
            &strings(&[r#"[{"capacityProvider":"FARGATE","weight":1}]"#]),
        )
        .expect("json");
        assert_eq!(j[0].capacity_provider, "FARGATE");
        let a = attributes(&strings(&["name=stack,value=prod,targetId=abc"])).expect("attrs");
        assert_eq!(a[0].target_id.as_deref(), Some("abc"));
        let o = object("configuration", r#"{"executeCommandConfiguration":{}}"#).expect("json");
        assert!(o.get("executeCommandConfiguration").is_some());
    }

    #[test]
    fn bad_items_name_the_flag() {
        let e = strategy("capacity-provider-strategy", &strings(&["FARGATE"])).unwrap_err();
        assert!(
            format!("{e:#}").contains("--capacity-provider-strategy"),
            "{e:#}"
        );
        let e = strategy(
            "capacity-provider-strategy",
            &strings(&["capacityProvider=F,weight=x"]),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("weight"), "{e:#}");
        let e = attributes(&strings(&["name=a,colour=red"])).unwrap_err();
        assert!(format!("{e:#}").contains("--attributes"), "{e:#}");
        assert!(object("configuration", "[1]").is_err());
    }
}

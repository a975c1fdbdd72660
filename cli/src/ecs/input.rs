//! The parse helpers of the ECS verbs: flag values (JSON or file://PATH,
//! aws's shorthands, durations) into the orchestrator's request types.
//! Each error names the flag it came from.

use anyhow::Context;
use berth_orchestrator::model::{DeploymentConfiguration, Tag};
use berth_orchestrator::tasks::RunTask;
use serde_json::Value;

use super::LaunchArgs;

pub(super) fn run_request(
    cluster: Option<String>,
    task_definition: String,
    count: u32,
    launch_type: Option<String>,
    launch: LaunchArgs,
) -> anyhow::Result<RunTask> {
    let LaunchArgs {
        overrides,
        started_by,
        group,
        tags,
    } = launch;
    let overrides = overrides
        .as_deref()
        .map(|o| json_arg("overrides", o))
        .transpose()?
        .unwrap_or_else(|| serde_json::json!({}));
    Ok(RunTask {
        cluster,
        task_definition,
        count,
        launch_type,
        overrides,
        started_by,
        group,
        tags: parse_tags(&tags)?,
    })
}

/// Fill what the flags left out from a `RunTask` request's JSON.
pub(super) fn merge_run_input(
    req: &mut RunTask,
    input: &Value,
    count_given: bool,
) -> anyhow::Result<()> {
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
    if req.cluster.is_none() {
        req.cluster = text("cluster");
    }
    if req.task_definition.is_empty() {
        req.task_definition =
            text("taskDefinition").context("--cli-input-json: taskDefinition is required")?;
    }
    if !count_given {
        if let Some(n) = input.get("count").and_then(Value::as_u64) {
            req.count = u32::try_from(n).context("--cli-input-json: count is too large")?;
        }
    }
    if req.launch_type.is_none() {
        req.launch_type = text("launchType");
    }
    if req.overrides.as_object().is_none_or(|o| o.is_empty()) {
        if let Some(o) = input.get("overrides") {
            req.overrides = o.clone();
        }
    }
    if req.started_by.is_none() {
        req.started_by = text("startedBy");
    }
    if req.group.is_none() {
        req.group = text("group");
    }
    if req.tags.is_empty() {
        if let Some(t) = input.get("tags") {
            req.tags = typed(t.clone()).context("--cli-input-json: tags")?;
        }
    }
    Ok(())
}

/// `--since`: `30s`, `5m`, `2h` ago, or an RFC 3339 time.
pub(super) fn parse_since(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("--since {s:?}: expected 30s, 5m, 2h or an RFC 3339 time"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => anyhow::bail!("--since {s:?}: unit must be s, m, h or d"),
    };
    Ok(chrono::Utc::now() - chrono::Duration::seconds(secs))
}

/// Verbs that read `--cli-input-json` themselves (their input has nested
/// shapes that flags cannot carry).
const OWN_CLI_INPUT: &[&str] = &["register-task-definition", "run-task"];

/// aws's `--cli-input-json` for the other verbs: each top-level key of the
/// request becomes its flag (`clusterName` → `--cluster-name`), lists
/// become repeated values, objects stay JSON. Flags given as well win.
pub fn expand_cli_input_json(args: Vec<String>) -> anyhow::Result<Vec<String>> {
    let Some(pos) = args.iter().position(|a| a == "--cli-input-json") else {
        return Ok(args);
    };
    if args.iter().any(|a| OWN_CLI_INPUT.contains(&a.as_str())) {
        return Ok(args);
    }
    let value = args
        .get(pos + 1)
        .context("--cli-input-json: needs a value (JSON or file://PATH)")?;
    let input = json_arg("cli-input-json", value)?;
    let object = input
        .as_object()
        .context("--cli-input-json: expected a JSON object")?;
    let mut out: Vec<String> = args[..pos].to_vec();
    out.extend_from_slice(&args[pos + 2..]);
    for (key, v) in object {
        let mut flag = String::from("--");
        for ch in key.chars() {
            if ch.is_ascii_uppercase() {
                flag.push('-');
                flag.push(ch.to_ascii_lowercase());
            } else {
                flag.push(ch);
            }
        }
        if out.contains(&flag) {
            continue;
        }
        let values: Vec<String> = match v {
            Value::Array(items) if items.iter().all(|i| !i.is_object()) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect(),
            Value::String(s) => vec![s.clone()],
            Value::Bool(true) => vec![],
            Value::Bool(false) | Value::Null => continue,
            other => vec![other.to_string()],
        };
        out.push(flag);
        out.extend(values);
    }
    Ok(out)
}

/// `--deployment-configuration`: JSON, or aws's shorthand
/// `maximumPercent=N,minimumHealthyPercent=N`.
pub(super) fn parse_deployment_configuration(v: &str) -> anyhow::Result<DeploymentConfiguration> {
    let flag = "deployment-configuration";
    if v.trim_start().starts_with('{') || v.starts_with("file://") {
        let mut value = json_arg(flag, v)?;
        let d = DeploymentConfiguration::default();
        // Absent percentages keep ECS's defaults.
        if let Some(o) = value.as_object_mut() {
            o.entry("maximumPercent")
                .or_insert(d.maximum_percent.into());
            o.entry("minimumHealthyPercent")
                .or_insert(d.minimum_healthy_percent.into());
        }
        return typed(value).with_context(|| format!("--{flag}: not a deployment configuration"));
    }
    let mut cfg = DeploymentConfiguration::default();
    for pair in v.split(',') {
        let (k, val) = pair
            .split_once('=')
            .with_context(|| format!("--{flag}: {pair:?} is not KEY=VALUE"))?;
        let n: u32 = val
            .parse()
            .with_context(|| format!("--{flag}: {k}: {val:?} is not a number"))?;
        match k {
            "maximumPercent" => cfg.maximum_percent = n,
            "minimumHealthyPercent" => cfg.minimum_healthy_percent = n,
            _ => anyhow::bail!("--{flag}: unknown key {k:?}"),
        }
    }
    Ok(cfg)
}

/// JSON given inline or as `file://PATH`, as aws takes it.
/// `value` as a `T`; an error names the field, as
/// `containerDefinitions[0].healthCheck.interval: invalid type…`.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })
}

pub(super) fn json_arg(flag: &str, value: &str) -> anyhow::Result<Value> {
    let text = match value.strip_prefix("file://") {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("--{flag}: read {path}"))?
        }
        None => value.to_string(),
    };
    serde_json::from_str(&text).with_context(|| format!("--{flag}: not valid JSON"))
}

/// aws's tag shorthand `key=K,value=V`, or a JSON array of tags.
pub(super) fn parse_tags(args: &[String]) -> anyhow::Result<Vec<Tag>> {
    if let [one] = args {
        if one.trim_start().starts_with('[') {
            return serde_json::from_str(one).context("--tags: not a JSON array of {key, value}");
        }
    }
    args.iter()
        .map(|arg| {
            let (key, value) = parse_shorthand(arg, "tags")?;
            Ok(Tag {
                key,
                value: value.unwrap_or_default(),
            })
        })
        .collect()
}

/// aws's shorthand for a pair: `key=K,value=V` or `name=N,value=V`.
pub(super) fn parse_shorthand(arg: &str, flag: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut name = None;
    let mut value = None;
    for part in arg.split(',') {
        match part.split_once('=') {
            Some(("key" | "name", k)) => name = Some(k.to_string()),
            Some(("value", v)) => value = Some(v.to_string()),
            _ => anyhow::bail!("--{flag} {arg:?}: expected key=K,value=V"),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .with_context(|| format!("--{flag} {arg:?}: no key"))?;
    Ok((name, value))
}

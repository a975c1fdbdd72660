//! The parse helpers of the ECS verbs: flag values (JSON or file://PATH,
//! aws's shorthands, durations) into the orchestrator's request types.
//! Each error names the flag it came from.

use anyhow::Context;
use berth_orchestrator::ecs::RunTask;
use berth_orchestrator::model::{DeploymentConfiguration, LaunchType, Tag};
use serde_json::Value;

use super::LaunchArgs;

/// run-task's and start-task's request from their flags.
pub(super) fn run_request(
    cluster: Option<String>,
    task_definition: String,
    count: u32,
    launch_type: Option<LaunchType>,
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
        ..Default::default()
    })
}

/// A flag holding a JSON array (or file://PATH); none: empty.
pub(super) fn json_list(flag: &str, v: Option<&str>) -> anyhow::Result<Vec<Value>> {
    match v {
        Some(v) => typed(json_arg(flag, v)?).with_context(|| format!("--{flag}: not a JSON array")),
        None => Ok(Vec::new()),
    }
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
        req.launch_type = text("launchType").as_deref().map(LaunchType::parse);
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
    for (key, field) in [
        ("placementStrategy", &mut req.placement_strategy),
        ("placementConstraints", &mut req.placement_constraints),
    ] {
        if field.is_empty() {
            if let Some(v) = input.get(key) {
                *field = typed(v.clone()).with_context(|| format!("--cli-input-json: {key}"))?;
            }
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
        return DeploymentConfiguration::from_json(json_arg(flag, v)?)
            .with_context(|| format!("--{flag}: not a deployment configuration"));
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

/// JSON given inline or as `file://PATH`, as aws takes it.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of an error with its causes, as the CLI prints it.
    fn message<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
        format!("{:#}", r.expect_err("an error"))
    }

    fn launch(overrides: Option<&str>, tags: &[&str]) -> LaunchArgs {
        LaunchArgs {
            overrides: overrides.map(str::to_string),
            started_by: None,
            group: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_arg_reads_inline_and_file_json() {
        assert_eq!(
            json_arg("x", r#"{"a":1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
        let path = std::env::temp_dir().join(format!("berth-input-{}.json", std::process::id()));
        std::fs::write(&path, "[1,2]").unwrap();
        let v = json_arg("volumes", &format!("file://{}", path.display()));
        let _ = std::fs::remove_file(&path);
        assert_eq!(v.unwrap(), serde_json::json!([1, 2]));
    }

    #[test]
    fn json_arg_errors_name_the_flag() {
        assert!(message(json_arg("volumes", "{not json")).starts_with("--volumes: not valid JSON"));
        let m = message(json_arg("overrides", "file:///nonexistent/berth.json"));
        assert!(
            m.starts_with("--overrides: read /nonexistent/berth.json"),
            "{m}"
        );
    }

    #[test]
    fn typed_names_the_field_that_is_wrong() {
        let t: Vec<Tag> = typed(serde_json::json!([{"key": "a", "value": "b"}])).unwrap();
        assert_eq!(
            t,
            vec![Tag {
                key: "a".into(),
                value: "b".into()
            }]
        );
        let m = message(typed::<Vec<Tag>>(serde_json::json!([{"key": 5}])));
        assert!(m.starts_with("[0].key: invalid type"), "{m}");
        let m = message(typed::<Vec<Tag>>(serde_json::json!({})));
        assert!(m.starts_with("invalid type"), "{m}");
    }

    #[test]
    fn tags_in_shorthand_or_json() {
        let tags = parse_tags(&strings(&["key=team,value=web", "key=solo"])).unwrap();
        assert_eq!(
            tags,
            vec![
                Tag {
                    key: "team".into(),
                    value: "web".into()
                },
                Tag {
                    key: "solo".into(),
                    value: String::new()
                },
            ]
        );
        let json = parse_tags(&strings(&[r#"[{"key":"a","value":"b"}]"#])).unwrap();
        assert_eq!(
            json,
            vec![Tag {
                key: "a".into(),
                value: "b".into()
            }]
        );
        assert!(parse_tags(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_tags_name_the_flag() {
        assert!(message(parse_tags(&strings(&["[{"]))).starts_with("--tags: not a JSON array"));
        assert_eq!(
            message(parse_tags(&strings(&["team"]))),
            r#"--tags "team": expected key=K,value=V"#
        );
        assert_eq!(
            message(parse_tags(&strings(&["value=x"]))),
            r#"--tags "value=x": no key"#
        );
        assert_eq!(
            message(parse_tags(&strings(&["key=,value=x"]))),
            r#"--tags "key=,value=x": no key"#
        );
    }

    #[test]
    fn shorthand_takes_key_or_name() {
        assert_eq!(
            parse_shorthand("name=zone,value=a", "attributes").unwrap(),
            ("zone".to_string(), Some("a".to_string()))
        );
        assert_eq!(
            parse_shorthand("name=gpu", "attributes").unwrap(),
            ("gpu".to_string(), None)
        );
        assert_eq!(
            message(parse_shorthand("color=red", "attributes")),
            r#"--attributes "color=red": expected key=K,value=V"#
        );
    }

    #[test]
    fn since_takes_durations_and_times() {
        let t = parse_since("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        for (text, secs) in [
            ("30s", 30),
            ("30", 30),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86400),
        ] {
            let ago = chrono::Utc::now() - parse_since(text).unwrap();
            let off = (ago.num_seconds() - secs).abs();
            assert!(off <= 5, "{text}: {} s ago", ago.num_seconds());
        }
    }

    #[test]
    fn bad_since_names_the_flag() {
        assert_eq!(
            message(parse_since("5w")),
            r#"--since "5w": unit must be s, m, h or d"#
        );
        assert!(message(parse_since("soon"))
            .starts_with(r#"--since "soon": expected 30s, 5m, 2h or an RFC 3339 time"#));
        assert!(message(parse_since("")).starts_with("--since \"\": expected"));
    }

    #[test]
    fn deployment_configuration_in_shorthand_or_json() {
        let c =
            parse_deployment_configuration("maximumPercent=150,minimumHealthyPercent=50").unwrap();
        assert_eq!((c.maximum_percent, c.minimum_healthy_percent), (150, 50));
        // Absent percentages keep ECS's defaults, in either form.
        let d = DeploymentConfiguration::default();
        let c = parse_deployment_configuration("maximumPercent=300").unwrap();
        assert_eq!(
            (c.maximum_percent, c.minimum_healthy_percent),
            (300, d.minimum_healthy_percent)
        );
        let c = parse_deployment_configuration(r#"{"minimumHealthyPercent": 0}"#).unwrap();
        assert_eq!(
            (c.maximum_percent, c.minimum_healthy_percent),
            (d.maximum_percent, 0)
        );
    }

    #[test]
    fn bad_deployment_configuration_names_the_flag() {
        let flag = "--deployment-configuration";
        assert_eq!(
            message(parse_deployment_configuration("maximumPercent")),
            format!(r#"{flag}: "maximumPercent" is not KEY=VALUE"#)
        );
        assert!(
            message(parse_deployment_configuration("maximumPercent=lots")).starts_with(&format!(
                r#"{flag}: maximumPercent: "lots" is not a number"#
            ))
        );
        assert_eq!(
            message(parse_deployment_configuration("speed=3")),
            format!(r#"{flag}: unknown key "speed""#)
        );
        assert!(message(parse_deployment_configuration("{oops"))
            .starts_with(&format!("{flag}: not valid JSON")));
        assert!(
            message(parse_deployment_configuration(r#"{"maximumPercent": "x"}"#))
                .starts_with(&format!("{flag}: not a deployment configuration"))
        );
    }

    #[test]
    fn run_request_reads_overrides_and_tags() {
        let req = run_request(
            Some("c1".into()),
            "web:1".into(),
            2,
            None,
            launch(Some(r#"{"containerOverrides": []}"#), &["key=a,value=b"]),
        )
        .unwrap();
        assert_eq!(req.cluster.as_deref(), Some("c1"));
        assert_eq!((req.task_definition.as_str(), req.count), ("web:1", 2));
        assert_eq!(req.overrides, serde_json::json!({"containerOverrides": []}));
        assert_eq!(
            req.tags,
            vec![Tag {
                key: "a".into(),
                value: "b".into()
            }]
        );
        let none = run_request(None, "web".into(), 1, None, launch(None, &[])).unwrap();
        assert_eq!(none.overrides, serde_json::json!({}));
    }

    #[test]
    fn bad_run_request_names_the_flag() {
        let bad = |l| message(run_request(None, "web".into(), 1, None, l));
        assert!(bad(launch(Some("{"), &[])).starts_with("--overrides: not valid JSON"));
        assert!(bad(launch(None, &["nokey"])).starts_with(r#"--tags "nokey""#));
    }

    #[test]
    fn run_input_fills_what_the_flags_left_out() {
        let mut req = run_request(
            Some("mine".into()),
            String::new(),
            1,
            None,
            launch(None, &[]),
        )
        .unwrap();
        let input = serde_json::json!({
            "cluster": "theirs",
            "taskDefinition": "web:3",
            "count": 4,
            "launchType": "FARGATE",
            "overrides": {"containerOverrides": [{"name": "app"}]},
            "startedBy": "ci",
            "group": "g",
            "tags": [{"key": "k", "value": "v"}],
        });
        merge_run_input(&mut req, &input, false).unwrap();
        assert_eq!(req.cluster.as_deref(), Some("mine"), "a flag wins");
        assert_eq!((req.task_definition.as_str(), req.count), ("web:3", 4));
        assert_eq!(req.launch_type, Some(LaunchType::Fargate));
        assert_eq!(req.overrides["containerOverrides"][0]["name"], "app");
        assert_eq!(
            (req.started_by.as_deref(), req.group.as_deref()),
            (Some("ci"), Some("g"))
        );
        assert_eq!(
            req.tags,
            vec![Tag {
                key: "k".into(),
                value: "v".into()
            }]
        );

        let mut counted = run_request(None, "web".into(), 2, None, launch(None, &[])).unwrap();
        merge_run_input(&mut counted, &serde_json::json!({"count": 9}), true).unwrap();
        assert_eq!(counted.count, 2, "--count given wins");
    }

    #[test]
    fn bad_run_input_names_the_flag() {
        let empty = || run_request(None, String::new(), 1, None, launch(None, &[])).unwrap();
        let merge = |input: Value| message(merge_run_input(&mut empty(), &input, false));
        assert_eq!(
            merge(serde_json::json!({})),
            "--cli-input-json: taskDefinition is required"
        );
        let td = "web";
        assert!(
            merge(serde_json::json!({"taskDefinition": td, "count": 1u64 << 40}))
                .starts_with("--cli-input-json: count is too large")
        );
        assert!(
            merge(serde_json::json!({"taskDefinition": td, "tags": "x"}))
                .starts_with("--cli-input-json: tags: invalid type")
        );
    }

    #[test]
    fn cli_input_json_becomes_flags() {
        let args = strings(&[
            "berth",
            "create-service",
            "--cluster",
            "mine",
            "--cli-input-json",
            r#"{"cluster": "theirs", "serviceName": "web", "desiredCount": 2,
                "placementStrategy": [{"type": "spread"}], "forceNewDeployment": true,
                "enableExecuteCommand": false, "tags": ["a", "b"]}"#,
        ]);
        let out = expand_cli_input_json(args).unwrap();
        assert_eq!(
            out,
            strings(&[
                "berth",
                "create-service",
                "--cluster",
                "mine",
                "--desired-count",
                "2",
                "--force-new-deployment",
                "--placement-strategy",
                r#"[{"type":"spread"}]"#,
                "--service-name",
                "web",
                "--tags",
                "a",
                "b",
            ])
        );
    }

    #[test]
    fn cli_input_json_is_left_to_the_verbs_that_read_it() {
        for verb in ["run-task", "register-task-definition"] {
            let args = strings(&["berth", verb, "--cli-input-json", "{}"]);
            assert_eq!(expand_cli_input_json(args.clone()).unwrap(), args);
        }
        let plain = strings(&["berth", "list-clusters"]);
        assert_eq!(expand_cli_input_json(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn bad_cli_input_json_names_the_flag() {
        let expand = |v: &[&str]| message(expand_cli_input_json(strings(v)));
        assert_eq!(
            expand(&["berth", "list-services", "--cli-input-json"]),
            "--cli-input-json: needs a value (JSON or file://PATH)"
        );
        assert!(expand(&["berth", "list-services", "--cli-input-json", "{"])
            .starts_with("--cli-input-json: not valid JSON"));
        assert_eq!(
            expand(&["berth", "list-services", "--cli-input-json", "[]"]),
            "--cli-input-json: expected a JSON object"
        );
    }
}

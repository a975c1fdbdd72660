//! The renderers against aws-cli v1's own output for the same JSON
//! (fixtures/*.{json,table,text}, made from fixtures/cases.json by
//! scripts/aws_output_fixtures.py with awscli's formatter module).

use std::path::PathBuf;

use serde_json::Value;

use super::{render, Format, Query};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/output/fixtures")
}

fn read(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_case_renders_as_aws_renders_it() {
    let cases: Vec<Value> = serde_json::from_str(&read("cases.json")).expect("cases.json");
    let inputs: std::collections::HashMap<&str, &Value> = cases
        .iter()
        .filter_map(|c| Some((c["name"].as_str()?, c.get("input")?)))
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let source = case.get("same_as").and_then(Value::as_str).unwrap_or(name);
        let mut response = inputs[source].clone();
        let query = case
            .get("query")
            .and_then(Value::as_str)
            .map(|q| Query::compile(q).expect("query"));
        if let Some(q) = &query {
            response = q.apply(&response).expect("apply");
        }
        let operation = case["operation"].as_str().expect("operation");
        let width = case["width"].as_u64().expect("width") as usize;
        for (format, ext) in [
            (Format::Json, "json"),
            (Format::Table, "table"),
            (Format::Text, "text"),
        ] {
            let expected = read(&format!("{name}.{ext}"));
            let got = render(format, operation, &response, width, query.as_ref());
            let same = got == expected;
            if !same {
                failures.push(format!(
                    "{name}.{ext}:\n--- aws\n{expected}--- berth\n{got}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A random JSON value from `seed`, nested up to `depth`.
fn random_value(seed: &mut u64, depth: u32) -> Value {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let pick = (*seed >> 33) % if depth == 0 { 5 } else { 7 };
    let n = (*seed >> 40) % 4;
    match pick {
        0 => Value::Null,
        1 => Value::Bool(n.is_multiple_of(2)),
        2 => serde_json::json!(n as f64 / 3.0),
        3 => serde_json::json!(n),
        4 => Value::String(["", "x", "名前", "a\tb"][n as usize].to_string()),
        5 => Value::Array((0..n).map(|_| random_value(seed, depth - 1)).collect()),
        _ => Value::Object(
            (0..n)
                .map(|i| {
                    (
                        ["k", "b", "a", "名"][i as usize].to_string(),
                        random_value(seed, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

/// Any response renders in every format at any width, without a panic
/// (aws itself fails on some: a table row of another width).
#[test]
fn any_response_renders() {
    let mut seed = 42;
    for i in 0..3_000 {
        let v = random_value(&mut seed, 4);
        for format in [Format::Json, Format::Table, Format::Text] {
            let _ = render(format, "Op", &v, i % 120, None);
        }
    }
}

//! Parsing of flag values shared by several commands.

use anyhow::Context;

/// A command line given as a JSON array (`["sh","-c","echo hi"]`), as ECS
/// and Docker write them, or as plain words.
pub fn words(flag: &str, value: &str) -> anyhow::Result<Vec<String>> {
    if value.trim_start().starts_with('[') {
        serde_json::from_str(value)
            .with_context(|| format!("--{flag} {value:?}: not a JSON array of strings"))
    } else {
        Ok(value.split_whitespace().map(str::to_string).collect())
    }
}

/// `KEY=VALUE`.
pub fn key_value(flag: &str, value: &str) -> anyhow::Result<(String, String)> {
    value
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .with_context(|| format!("--{flag} {value:?}: expected KEY=VALUE"))
}

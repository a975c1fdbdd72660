//! The host agent's housekeeping settings, with the ECS container agent's
//! names (its `/etc/ecs/ecs.config`): `KEY=value` lines in a file
//! (berth's: [`DEFAULT_PATH`], or `berth agent --config FILE`), then
//! variables of the same names in the environment, then `berth agent`'s
//! flags, each overriding the one before. Pure: the file's text, the
//! environment and the flags come in, settings (and warnings for keys the
//! agent does not know, as the ECS agent warns) go out.

pub mod duration;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where `berth agent` (and every verb that starts tasks) reads the
/// settings when no `--config`/`BERTH_AGENT_CONFIG` names a file.
pub const DEFAULT_PATH: &str = "/etc/berth/agent.config";

/// The environment variable naming another file than [`DEFAULT_PATH`].
pub const PATH_ENV: &str = "BERTH_AGENT_CONFIG";

/// `ECS_IMAGE_PULL_BEHAVIOR`: when a task's image is pulled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullBehavior {
    /// Pulled when this host's image store lacks it. (The ECS agent's
    /// `default` pulls every time and falls back to the cache when the
    /// pull fails; berth keeps its images local unless told otherwise, so
    /// that a host with no registry in reach runs what it has.)
    #[default]
    Default,
    /// Pulled every time; a failed pull fails the task.
    Always,
    /// Pulled unless a task on this host pulled it before (and image
    /// cleanup has not removed it since); an image only imported is
    /// pulled once.
    Once,
    /// The cached image whenever there is one, pulled only when missing.
    PreferCached,
}

impl PullBehavior {
    /// Whether a task's image is pulled: `cached`, this host's store has
    /// it; `pulled_before`, a task's pull on this host fetched it.
    pub fn should_pull(self, cached: bool, pulled_before: bool) -> bool {
        match self {
            Self::Default | Self::PreferCached => !cached,
            Self::Always => true,
            Self::Once => !cached || !pulled_before,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Always => "always",
            Self::Once => "once",
            Self::PreferCached => "prefer-cached",
        }
    }
}

impl FromStr for PullBehavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "default" | "" => Ok(Self::Default),
            "always" => Ok(Self::Always),
            "once" => Ok(Self::Once),
            "prefer-cached" => Ok(Self::PreferCached),
            other => Err(format!(
                "{other:?} is not one of default, always, once, prefer-cached"
            )),
        }
    }
}

impl fmt::Display for PullBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings, ECS's defaults unless a source changed them.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    /// `ECS_CLUSTER`: the cluster `berth agent` joins without `--cluster`.
    pub cluster: Option<String>,
    /// `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`: how long a STOPPED task's
    /// record, directories and logs are kept.
    pub task_cleanup_wait: Duration,
    /// `ECS_DISABLE_IMAGE_CLEANUP`.
    pub disable_image_cleanup: bool,
    /// `ECS_IMAGE_CLEANUP_INTERVAL`: between the agent's image collections.
    pub image_cleanup_interval: Duration,
    /// `ECS_IMAGE_MINIMUM_CLEANUP_AGE`: an image pulled more recently is kept.
    pub image_minimum_cleanup_age: Duration,
    /// `ECS_NUM_IMAGES_DELETE_PER_CYCLE`.
    pub images_delete_per_cycle: usize,
    /// `ECS_IMAGE_PULL_BEHAVIOR`.
    pub image_pull_behavior: PullBehavior,
    /// `ECS_RESERVED_PORTS`: TCP host ports no task may take.
    pub reserved_ports: Vec<u16>,
    /// `ECS_RESERVED_PORTS_UDP`.
    pub reserved_ports_udp: Vec<u16>,
    /// `ECS_RESERVED_MEMORY`: MiB of the host kept from tasks.
    pub reserved_memory: i64,
    /// `ECS_INSTANCE_ATTRIBUTES`: the instance's own attributes, set at
    /// registration.
    pub instance_attributes: BTreeMap<String, String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            cluster: None,
            task_cleanup_wait: Duration::from_secs(3 * 3600),
            disable_image_cleanup: false,
            image_cleanup_interval: Duration::from_secs(30 * 60),
            image_minimum_cleanup_age: Duration::from_secs(3600),
            images_delete_per_cycle: 5,
            image_pull_behavior: PullBehavior::Default,
            reserved_ports: vec![22, 2375, 2376, 51678, 51679],
            reserved_ports_udp: Vec::new(),
            reserved_memory: 0,
            instance_attributes: BTreeMap::new(),
        }
    }
}

/// The keys berth reads, in the order the README lists them.
pub const KEYS: &[&str] = &[
    "ECS_CLUSTER",
    "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
    "ECS_DISABLE_IMAGE_CLEANUP",
    "ECS_IMAGE_CLEANUP_INTERVAL",
    "ECS_IMAGE_MINIMUM_CLEANUP_AGE",
    "ECS_NUM_IMAGES_DELETE_PER_CYCLE",
    "ECS_IMAGE_PULL_BEHAVIOR",
    "ECS_RESERVED_PORTS",
    "ECS_RESERVED_PORTS_UDP",
    "ECS_RESERVED_MEMORY",
    "ECS_INSTANCE_ATTRIBUTES",
];

/// A value berth cannot use, named with its key and where it came from:
/// `ECS_RESERVED_PORTS in /etc/berth/agent.config: ...`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key} in {source_name}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub source_name: String,
    pub message: String,
}

/// The `KEY=value` lines of a config file's `text` (blank lines and `#`
/// comments skipped, a value's surrounding quotes dropped, as systemd's
/// EnvironmentFile reads the ECS agent's), in order.
pub fn parse_lines(text: &str, source_name: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigError {
                key: format!("line {}", n + 1),
                source_name: source_name.to_string(),
                message: format!("{line:?} is not KEY=value"),
            });
        };
        out.push((key.trim().to_string(), unquote(value.trim()).to_string()));
    }
    Ok(out)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

impl AgentConfig {
    /// Apply one source's `(KEY, value)` pairs (`source_name` says where
    /// they came from in errors). Keys berth does not read are returned,
    /// for a warning: the ECS agent's file holds many berth has no use for.
    pub fn apply(
        &mut self,
        pairs: &[(String, String)],
        source_name: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let mut unknown = Vec::new();
        for (key, value) in pairs {
            match self.set(key, value) {
                Ok(true) => {}
                Ok(false) => unknown.push(key.clone()),
                Err(message) => {
                    return Err(ConfigError {
                        key: key.clone(),
                        source_name: source_name.to_string(),
                        message,
                    })
                }
            }
        }
        Ok(unknown)
    }

    /// The environment's variables of [`KEYS`]' names, applied.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let pairs: Vec<(String, String)> = KEYS
            .iter()
            .filter_map(|k| env(k).map(|v| (k.to_string(), v)))
            .collect();
        self.apply(&pairs, "the environment").map(|_| ())
    }

    /// Set `key`; false: berth does not read it.
    fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let value = value.trim();
        match key {
            "ECS_CLUSTER" => self.cluster = Some(value.to_string()).filter(|v| !v.is_empty()),
            "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION" => {
                self.task_cleanup_wait = duration::parse(value)?
            }
            "ECS_DISABLE_IMAGE_CLEANUP" => self.disable_image_cleanup = parse_bool(value)?,
            "ECS_IMAGE_CLEANUP_INTERVAL" => self.image_cleanup_interval = duration::parse(value)?,
            "ECS_IMAGE_MINIMUM_CLEANUP_AGE" => {
                self.image_minimum_cleanup_age = duration::parse(value)?
            }
            "ECS_NUM_IMAGES_DELETE_PER_CYCLE" => {
                self.images_delete_per_cycle = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a count of images"))?
            }
            "ECS_IMAGE_PULL_BEHAVIOR" => self.image_pull_behavior = value.parse()?,
            "ECS_RESERVED_PORTS" => self.reserved_ports = parse_ports(value)?,
            "ECS_RESERVED_PORTS_UDP" => self.reserved_ports_udp = parse_ports(value)?,
            "ECS_RESERVED_MEMORY" => {
                self.reserved_memory = value
                    .parse::<u32>()
                    .map_err(|_| format!("{value:?} is not a whole number of MiB"))?
                    .into()
            }
            "ECS_INSTANCE_ATTRIBUTES" => self.instance_attributes = parse_attributes(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

/// A JSON list of ports, as the ECS agent takes them: `[22, 2375]`.
fn parse_ports(value: &str) -> Result<Vec<u16>, String> {
    let ports: Vec<u64> = serde_json::from_str(value)
        .map_err(|e| format!("{value:?} is not a JSON list of ports, e.g. [22, 2375] ({e})"))?;
    ports
        .into_iter()
        .map(|p| match u16::try_from(p) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("{p} is not a port (1-65535)")),
        })
        .collect()
}

/// A JSON object of attribute names to values: `{"stack": "prod"}`.
fn parse_attributes(value: &str) -> Result<BTreeMap<String, String>, String> {
    let attrs: BTreeMap<String, String> = serde_json::from_str(value).map_err(|e| {
        format!("{value:?} is not a JSON object of names to strings, e.g. {{\"stack\": \"prod\"}} ({e})")
    })?;
    for name in attrs.keys() {
        // The rule of `berth agent --attributes` (and of ECS's attribute
        // names).
        if !crate::scheduler::hosts::attribute_name_ok(name) {
            return Err(format!(
                "{name:?} is not an attribute name (1-128 letters, digits, - _ . / @ :)"
            ));
        }
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests;

//! Reading the host agent's settings file (`/etc/berth/agent.config`, or
//! the file `--config`/`BERTH_AGENT_CONFIG` names) and the environment's
//! `ECS_*` variables, for `berth agent`, `berth system gc` and every verb
//! that starts tasks (their pull behaviour). The parsing is the
//! orchestrator's `agent_config`; this reads the file and applies flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_orchestrator::agent_config::{self, AgentConfig};

/// The settings and the keys berth does not read (for a warning).
pub struct Loaded {
    pub config: AgentConfig,
    pub unknown: Vec<String>,
    pub path: PathBuf,
}

/// The file `explicit` names (it must exist), else `BERTH_AGENT_CONFIG`'s
/// (likewise), else [`agent_config::DEFAULT_PATH`] if it exists; then the
/// environment over it.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<Loaded> {
    let named = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(agent_config::PATH_ENV).map(PathBuf::from));
    let path = named
        .clone()
        .unwrap_or_else(|| PathBuf::from(agent_config::DEFAULT_PATH));
    let mut config = AgentConfig::default();
    let mut unknown = Vec::new();
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let pairs = agent_config::parse_lines(&text, &shown)?;
            unknown = config.apply(&pairs, &shown)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "read the agent's settings {shown} (named by --config or {})",
                    agent_config::PATH_ENV
                )
            })
        }
    }
    config.apply_env(|k| std::env::var(k).ok())?;
    Ok(Loaded {
        config,
        unknown,
        path,
    })
}

/// Apply flags given on the command line, each as the setting it
/// overrides: `(flag, ECS key, value)`.
pub fn apply_flags(
    config: &mut AgentConfig,
    flags: &[(&str, &str, Option<String>)],
) -> anyhow::Result<()> {
    for (flag, key, value) in flags {
        if let Some(v) = value {
            config.apply(&[(key.to_string(), v.clone())], flag)?;
        }
    }
    Ok(())
}

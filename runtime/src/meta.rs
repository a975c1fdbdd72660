//! berth's own records in a container's state directory.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::logs::LogConfig;

/// Written once when the container is created (`container.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerMeta {
    pub id: String,
    /// The bundle libcontainer runs: always berth's own copy.
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub cgroups_path: String,
    pub stop_signal: String,
    pub log: LogConfig,
    pub created_at: DateTime<Utc>,
}

/// When the container's process was started (`started.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Started {
    pub at: DateTime<Utc>,
}

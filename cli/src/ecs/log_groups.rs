//! `berth logs --log-group G [--log-stream-prefix P]`: the lines of an
//! awslogs log group kept on this host ([`berth_orchestrator::awslogs`]),
//! from every stream whose name starts with P, oldest first, each
//! prefixed with its stream's name, as `aws logs tail` shows them; with
//! `--follow`, new lines as they come until no task of the cluster writes
//! to those streams.

use std::collections::HashMap;
use std::path::Path;

use berth_orchestrator::awslogs;
use berth_orchestrator::EcsError;
use chrono::{DateTime, Utc};

/// Where printing a group has got to: how many entries of each stream
/// are printed (streams are never rotated, so a count marks the place).
#[derive(Default)]
pub(super) struct Printed(HashMap<String, usize>);

/// Print the group's lines not older than `since` that `printed` has not
/// printed yet; a stream that appears meanwhile is read from its start.
pub(super) fn print(
    state_root: &Path,
    group: &str,
    prefix: &str,
    since: Option<DateTime<Utc>>,
    printed: &mut Printed,
) -> Result<(), EcsError> {
    let dir = awslogs::group_dir(state_root, group);
    let files = match std::fs::read_dir(&dir) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EcsError::invalid(format!(
                "log-group: the specified log group does not exist: {group:?}"
            )))
        }
        Err(e) => {
            return Err(EcsError::invalid(format!(
                "log-group {group:?}: read {}: {e}",
                dir.display()
            )))
        }
    };
    let mut lines = Vec::new();
    for file in files.flatten() {
        let name = file.file_name();
        let Some(stream) = name.to_str().and_then(awslogs::stream_of_file) else {
            continue;
        };
        if !stream.starts_with(prefix) {
            continue;
        }
        let entries = berth_runtime::logs::read_entries(
            &file.path(),
            berth_orchestrator::log_drivers::AWSLOGS_ROTATION.1,
        )
        .map_err(|e| EcsError::invalid(format!("log stream {stream:?}: read: {e}")))?;
        let done = printed.0.entry(stream.clone()).or_default();
        let skip = *done;
        *done = entries.len().max(skip);
        lines.extend(
            entries
                .into_iter()
                .skip(skip)
                .filter(|e| since.is_none_or(|s| e.time >= s))
                .map(|e| (e.time, stream.clone(), e.log)),
        );
    }
    // Oldest first; a stream's lines keep their order (a stable sort).
    lines.sort_by_key(|l| l.0);
    for (_, stream, log) in lines {
        print!("{stream} | {log}");
    }
    Ok(())
}

//! A restartable container's [`Launch`] kept in the task's run directory
//! (`launch/NAME.json`, root only: its spec holds the environment, secrets
//! included), so that a supervisor adopting the task after a restart of
//! its own restarts the container in place as its predecessor would have.
//! The directory goes with the task's at teardown.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::start::Launch;
use crate::names;

fn file(task_dir: &Path, container: &str) -> PathBuf {
    task_dir
        .join("launch")
        .join(format!("{}.json", names::file_stem(container)))
}

/// Write `launch` for `container` (a fresh file renamed into place, so a
/// reader never sees half of one).
pub(super) fn save(task_dir: &Path, container: &str, launch: &Launch) -> Result<(), String> {
    let path = file(task_dir, container);
    let dir = path.parent().unwrap_or(task_dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let json = serde_json::to_vec(launch).map_err(|e| format!("encode launch: {e}"))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("create {}: {e}", tmp.display()))?;
    f.write_all(&json)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename {}: {e}", path.display()))
}

/// The launch kept for `container`, if any (none from a berth before
/// this record, or a container without a restart policy).
pub(super) fn load(task_dir: &Path, container: &str) -> Option<Launch> {
    let path = file(task_dir, container);
    let bytes = std::fs::read(&path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!("{}: {e}", path.display()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_reads_back_and_only_root_reads_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let def: crate::model::ContainerDefinition = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "busybox",
            "restartPolicy": { "enabled": true }
        }))
        .expect("definition");
        let launch = Launch {
            def,
            spec: Default::default(),
            rootfs: "/r/rootfs".into(),
            log_path: "/r/app.log".into(),
        };
        assert!(load(dir.path(), "app").is_none());
        save(dir.path(), "app", &launch).expect("save");
        let back = load(dir.path(), "app").expect("load");
        assert_eq!(back.def.name, "app");
        assert_eq!(back.rootfs, launch.rootfs);
        assert_eq!(back.log_path, launch.log_path);
        let mode = std::fs::metadata(file(dir.path(), "app"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

//! Reading the operator's task roles file. It holds every role's keys, so
//! it is refused, not warned about, unless it is a regular file of at most
//! [`MAX_FILE_BYTES`], owned by root (or this process's user), with no
//! access for group or others: the rule `berth serve`'s credentials file
//! follows (api/src/auth/credentials.rs). The fix is in the error.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::roles::{parse_roles, Source};

/// The variable naming the file; unset: [`DEFAULT_NAME`] in the state root.
pub const ENV: &str = "BERTH_TASK_ROLES";
pub const DEFAULT_NAME: &str = "task-roles.json";
/// A roles file larger than this is not one.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where the roles file is for state root `state_root`.
pub fn path(state_root: &Path) -> PathBuf {
    match std::env::var_os(ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => state_root.join(DEFAULT_NAME),
    }
}

/// The file's roles; every error names the file.
pub fn read(path: &Path) -> Result<BTreeMap<String, Source>, String> {
    let named = |e: String| format!("task roles file {}: {e}", path.display());
    // O_NONBLOCK: a FIFO named as the file must not hang a task's start.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| named(e.to_string()))?;
    let meta = file.metadata().map_err(|e| named(e.to_string()))?;
    check(path, &meta).map_err(named)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| named(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(named(format!("over {MAX_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| named("not UTF-8 text".into()))?;
    parse_roles(&text).map_err(named)
}

/// The open file's kind, size, owner and mode, as the module doc says.
fn check(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes, over {MAX_FILE_BYTES}", meta.len()));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "owned by uid {}, not root: another user could change the keys",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets group or others at its keys; run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, mode: u32, text: &str) -> PathBuf {
        let p = dir.join("roles.json");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn only_a_private_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"arn:aws:iam::1:role/a": {"AccessKeyId": "A", "SecretAccessKey": "S"}}"#;
        let p = write(dir.path(), 0o600, text);
        assert_eq!(read(&p).unwrap().len(), 1);
        let p = write(dir.path(), 0o644, text);
        let e = read(&p).unwrap_err();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        assert!(e.contains(&p.display().to_string()), "{e}");
        let e = read(dir.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read(&dir.path().join("none")).unwrap_err();
        assert!(e.contains("none"), "{e}");
        let p = write(dir.path(), 0o600, "{");
        assert!(read(&p).unwrap_err().contains("not JSON"));
    }
}

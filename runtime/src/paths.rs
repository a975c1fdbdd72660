use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the runtime keeps its per-container state: one directory for
/// berth's own records and one for libcontainer's.
#[derive(Clone, Debug)]
pub struct RuntimeRoot {
    dir: PathBuf,
}

impl RuntimeRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.dir.join("containers")
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    pub(crate) fn libcontainer_root(&self) -> PathBuf {
        self.dir.join("libcontainer")
    }
}

/// Files inside one container's state directory.
pub(crate) struct ContainerFiles {
    pub dir: PathBuf,
}

impl ContainerFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    pub fn meta(&self) -> PathBuf {
        self.dir.join("container.json")
    }
    pub fn monitor(&self) -> PathBuf {
        self.dir.join("monitor.json")
    }
    pub fn started(&self) -> PathBuf {
        self.dir.join("started.json")
    }
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    pub fn monitor_log(&self) -> PathBuf {
        self.dir.join("monitor.log")
    }
    pub fn generated_bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn default_log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
}

/// Ids become directory and cgroup names, so keep them to the characters
/// runc and Docker accept.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("empty");
    }
    if id.len() > 128 {
        return invalid("longer than 128 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || id.starts_with('.')
    {
        return invalid("use letters, digits, '-', '_' and '.', not starting with '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("web-1.a_b").is_ok());
        for bad in ["", "..", ".x", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}

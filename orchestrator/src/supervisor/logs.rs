//! Where a container's output goes, by its log driver: json-file (the
//! default) in the task's directory; awslogs in its log stream, apart from
//! the task so that it outlives it ([`crate::awslogs`]), with a link in
//! the task's directory so that `berth logs TASK` still reads it; syslog,
//! journald and fluentd forwarded by the container's monitor besides
//! ([`crate::log_forwarding`]).

use std::path::PathBuf;

use berth_runtime::log_forward::{journald, Forward};

use super::{Supervisor, SupervisorArgs};
use crate::model::ContainerDefinition;
use crate::names;

/// Names a journal namespace to send the journald driver's lines to
/// (journald started as `systemd-journald NAMESPACE`, read with
/// `journalctl --namespace NAMESPACE`) instead of the system journal.
pub const JOURNAL_NAMESPACE_ENV: &str = "BERTH_JOURNAL_NAMESPACE";

impl Supervisor<'_> {
    /// Where `def`'s monitor forwards its lines, by its log driver.
    pub(super) fn log_forward(
        &self,
        def: &ContainerDefinition,
        runtime_id: &str,
    ) -> Result<Option<Forward>, String> {
        let socket = match std::env::var(JOURNAL_NAMESPACE_ENV) {
            Ok(ns) if !ns.is_empty() => journald::namespace_socket(&ns)
                .map_err(|e| format!("{JOURNAL_NAMESPACE_ENV}: {e}"))?,
            _ => PathBuf::from(journald::SOCKET),
        };
        let source = crate::log_forwarding::Source {
            runtime_id,
            container: &def.name,
            image: &def.image,
            journal_socket: &socket,
        };
        crate::log_forwarding::forward_of(def.log_configuration.as_ref(), &source)
            .map_err(|e| format!("container {}: {e}", def.name))
    }

    /// The file `def`'s output is written to, its directory made.
    pub(super) fn container_log_path(&self, def: &ContainerDefinition) -> Result<PathBuf, String> {
        let (root, task_id) = (&self.args.state_root, &self.args.task_id);
        let task_log = SupervisorArgs::container_log(root, task_id, &def.name)
            .map_err(|e| format!("container {}: {e}", def.name))?;
        make_parent(&task_log)?;
        let runtime_id = names::runtime_id(task_id, &def.name);
        let Some(stream) = crate::awslogs::stream_of(
            def.log_configuration.as_ref(),
            &def.name,
            task_id,
            &runtime_id,
        ) else {
            return Ok(task_log);
        };
        let file = crate::awslogs::stream_file(root, &stream);
        make_parent(&file)?;
        // A restart, or an adopted task, finds the link made.
        match std::os::unix::fs::symlink(&file, &task_log) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("link {}: {e}", task_log.display()))
            }
            _ => {}
        }
        Ok(file)
    }
}

fn make_parent(file: &std::path::Path) -> Result<(), String> {
    match file.parent() {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))
        }
        None => Ok(()),
    }
}

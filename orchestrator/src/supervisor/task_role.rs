//! The task role's credentials for this task: its source from the
//! operator's roles file (`credentials::file`), and the random id of its
//! `/v2/credentials/<id>`, kept in the task's run directory so that a
//! supervisor adopting the task serves the id its containers were told.
//! A role the file lacks stops the task before anything starts.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::TaskError;
use super::Supervisor;
use crate::credentials::{file, roles, Provider, Source};
use crate::model::TaskDefinition;

/// The id's file in the task's run directory.
const ID_FILE: &str = "credentials-id";

impl Supervisor<'_> {
    /// The credentials of `td`'s role (None: it has none), their id new;
    /// keys from a command are fetched once now, so that a broken command
    /// stops the task at its start rather than at a container's request.
    pub(super) fn task_credentials(
        &self,
        td: &TaskDefinition,
        host_mode: bool,
    ) -> Result<Option<Arc<Provider>>, TaskError> {
        let Some(arn) = &td.task_role_arn else {
            return Ok(None);
        };
        let fail = TaskError::ResourceInitialization;
        let source = self.role_source(arn, host_mode).map_err(fail)?;
        let id = new_id().map_err(|e| fail(format!("credentials id: {e}")))?;
        let provider = Provider::new(id, arn.clone(), source);
        if let Err(e) = provider.keys() {
            return Err(fail(format!(
                "ECS was unable to assume the role '{arn}' that was provided for this task: {e}"
            )));
        }
        self.keep_id(&provider.id)
            .map_err(|e| fail(format!("credentials id: {e}")))?;
        Ok(Some(Arc::new(provider)))
    }

    /// An adopted task's credentials: its id as kept, its role's source
    /// read again (a role gone from the file is served no more).
    pub(super) fn task_credentials_again(&self, td: &TaskDefinition) -> Option<Arc<Provider>> {
        let arn = td.task_role_arn.as_ref()?;
        let id = std::fs::read_to_string(self.id_file()).ok()?;
        match self.role_source(arn, false) {
            Ok(source) => Some(Arc::new(Provider::new(
                id.trim().to_string(),
                arn.clone(),
                source,
            ))),
            Err(e) => {
                tracing::warn!("task {}: {e}", self.args.task_id);
                None
            }
        }
    }

    fn role_source(&self, arn: &str, host_mode: bool) -> Result<Source, String> {
        let path = file::path(&self.args.state_root);
        let read = if host_mode {
            Ok(Default::default())
        } else {
            file::read(&path)
        };
        roles::choose(
            read.as_ref().map_err(String::as_str),
            arn,
            host_mode,
            &path.display().to_string(),
        )
    }

    fn id_file(&self) -> PathBuf {
        self.args.task_dir().join(ID_FILE)
    }

    fn keep_id(&self, id: &str) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(self.args.task_dir())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.id_file())?;
        f.write_all(id.as_bytes())
    }
}

/// A fresh random id in a UUID's shape, as the agent's.
fn new_id() -> std::io::Result<String> {
    let hex = crate::host::random_hex32()?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

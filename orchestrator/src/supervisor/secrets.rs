//! A task's secrets, registry credentials and environment files, read
//! when it starts: secrets and credentials from berth's secret store
//! (opened with the host's key file), files from the local bucket
//! mirror. A value that cannot be read stops the task with ECS's
//! ResourceInitializationError text, never an empty variable or an
//! anonymous pull. The layering is `secrets::env_files`'.

use std::collections::BTreeMap;

use std::path::Path;

use berth_runtime::bounded_read::{read_in_root, Symlinks};

use super::error::TaskError;
use super::Supervisor;
use crate::model::TaskDefinition;
use crate::secrets::env_files::{self, EnvironmentFile, ExtraEnv, Secret};
use crate::secrets::refs::env_var_problem;
use crate::secrets::{parse_value_from, registry_auth, SealingKey, SecretRef};

/// ECS's prefix for a secret that could not be read.
const SECRETS_FAILED: &str =
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed";
/// ECS's prefix for an environment file that could not be read.
const ENV_FILES_FAILED: &str = "ResourceInitializationError: failed to download env files";

fn init(message: String) -> TaskError {
    TaskError::ResourceInitialization(message)
}

/// A container's registry credentials, read from the secret its
/// `repositoryCredentials` names.
pub(super) struct RegistryCredentials {
    /// The `credentialsParameter`, for errors.
    pub secret: String,
    pub username: String,
    pub password: String,
}

/// The key file, opened at its first use.
fn sealing_key<'k>(
    state_root: &std::path::Path,
    key: &'k mut Option<SealingKey>,
) -> Result<&'k SealingKey, TaskError> {
    match key {
        Some(k) => Ok(k),
        None => Ok(key.insert(
            SealingKey::open_or_create(state_root)
                .map_err(|e| init(format!("{SECRETS_FAILED}: {e}")))?,
        )),
    }
}

impl Supervisor<'_> {
    /// Every container's environment files and secrets, read.
    pub(super) fn resolve_extra_env(
        &self,
        td: &TaskDefinition,
    ) -> Result<BTreeMap<String, ExtraEnv>, TaskError> {
        let mut out = BTreeMap::new();
        let mut key = None;
        for (i, def) in td.container_definitions.iter().enumerate() {
            let path = format!("containerDefinitions[{i}]");
            let (secrets, files) = env_files::container_fields(&path, &def.other)
                .map_err(|e| init(format!("{SECRETS_FAILED}: {e}")))?;
            if secrets.is_empty() && files.is_empty() {
                continue;
            }
            let extra = ExtraEnv {
                files: self.read_env_files(&files)?,
                secrets: self.read_secrets(&secrets, &mut key)?,
            };
            out.insert(def.name.clone(), extra);
        }
        Ok(out)
    }

    /// Every container's registry credentials (`repositoryCredentials`),
    /// by container name, read before any image is pulled, as ECS does:
    /// a secret that cannot be read stops the task even if the image is
    /// already here.
    pub(super) fn registry_credentials(
        &self,
        td: &TaskDefinition,
    ) -> Result<BTreeMap<String, RegistryCredentials>, TaskError> {
        let mut out = BTreeMap::new();
        let mut key = None;
        for (i, def) in td.container_definitions.iter().enumerate() {
            let path = format!("containerDefinitions[{i}]");
            let Some(secret) = registry_auth::credentials_parameter(&path, &def.other)
                .map_err(|e| init(format!("{SECRETS_FAILED}: {e}")))?
            else {
                continue;
            };
            let k = sealing_key(&self.args.state_root, &mut key)?;
            let value = self
                .ecs
                .get_secret_value(k, &secret, None, None)
                .map_err(|e| {
                    init(format!(
                        "{SECRETS_FAILED}: asm fetching secret from the service for {secret}: {}: {}",
                        e.kind.as_str(),
                        e.message
                    ))
                })?;
            let text = value["SecretString"].as_str().unwrap_or_default();
            let (username, password) = registry_auth::parse_auth(text)
                .map_err(|e| init(format!("{SECRETS_FAILED}: {secret}: {e}")))?;
            out.insert(
                def.name.clone(),
                RegistryCredentials {
                    secret,
                    username,
                    password,
                },
            );
        }
        Ok(out)
    }

    fn read_env_files(
        &self,
        files: &[EnvironmentFile],
    ) -> Result<Vec<Vec<(String, String)>>, TaskError> {
        let var = std::env::var(env_files::S3_ROOT_VAR).ok();
        let root = env_files::s3_root(var.as_deref(), &self.args.state_root);
        files
            .iter()
            .map(|f| {
                read_env_file(&root, f)
                    .map_err(|e| init(format!("{ENV_FILES_FAILED}: {}: {e}", f.value)))
            })
            .collect()
    }

    /// The secrets' values; the key file is opened at the first one.
    fn read_secrets(
        &self,
        secrets: &[Secret],
        key: &mut Option<SealingKey>,
    ) -> Result<Vec<(String, String)>, TaskError> {
        let mut out = Vec::new();
        for s in secrets {
            let r = parse_value_from(&s.value_from)
                .map_err(|e| init(format!("{SECRETS_FAILED}: {e}")))?;
            let k = sealing_key(&self.args.state_root, key)?;
            let value = self.ecs.resolve_secret(k, &r).map_err(|e| {
                init(match &r {
                    SecretRef::Parameter(name) => format!(
                        "{SECRETS_FAILED}: unable to retrieve secrets from ssm: invalid parameters: {name}: {}",
                        e.message
                    ),
                    SecretRef::Secret { .. } => format!(
                        "{SECRETS_FAILED}: unable to retrieve secret from asm: failed to fetch secret {} from secrets manager: {}: {}",
                        s.value_from,
                        e.kind.as_str(),
                        e.message
                    ),
                })
            })?;
            if let Some(problem) = env_var_problem(&s.name, &value) {
                return Err(init(format!(
                    "{SECRETS_FAILED}: secret {} ({}): {problem}, which an environment \
                     variable cannot have",
                    s.name, s.value_from
                )));
            }
            out.push((s.name.clone(), value));
        }
        Ok(out)
    }
}

/// One environment file's variables, from the mirror at `root`. The
/// mirror is not trusted: no symlink (it could name any root-only file),
/// no FIFO or device, a bounded size.
fn read_env_file(root: &Path, f: &EnvironmentFile) -> Result<Vec<(String, String)>, String> {
    let rel = env_files::mirror_key(f)?;
    let at = || root.join(&rel).display().to_string();
    let bytes = read_in_root(root, &rel, Symlinks::Refused, env_files::MAX_FILE_BYTES)
        .map_err(|e| format!("{}: {e}", at()))?
        .ok_or_else(|| format!("{}: no such file", at()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", at()))?;
    let vars = env_files::parse(&text);
    if let Some((name, problem)) = vars
        .iter()
        .find_map(|(k, v)| env_var_problem(k, v).map(|p| (k, p)))
    {
        return Err(format!(
            "{}: variable {name:?}: {problem}, which an environment variable cannot have",
            at()
        ));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(value: &str) -> EnvironmentFile {
        EnvironmentFile {
            kind: "s3".into(),
            value: value.into(),
        }
    }

    #[test]
    fn env_files_are_read_only_as_plain_bounded_files() {
        let d = tempfile::tempdir().expect("tempdir");
        let b = d.path().join("b");
        std::fs::create_dir(&b).expect("mkdir");
        std::fs::write(b.join("ok.env"), "A=1\n").expect("write");
        let got = read_env_file(d.path(), &file("arn:aws:s3:::b/ok.env")).expect("read");
        assert_eq!(got, vec![("A".to_string(), "1".to_string())]);

        std::fs::write(d.path().join("secret"), "K=root-only\n").expect("write");
        std::os::unix::fs::symlink(d.path().join("secret"), b.join("link.env")).expect("ln");
        nix::unistd::mkfifo(
            &b.join("fifo.env"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .expect("mkfifo");
        let big = "A=1\n".repeat(env_files::MAX_FILE_BYTES as usize / 4 + 1);
        std::fs::write(b.join("big.env"), big).expect("write");
        std::fs::write(b.join("nul.env"), "A=x\0y\n").expect("write");
        for (key, reason) in [
            ("link.env", "symlink"),
            ("fifo.env", "FIFO"),
            ("big.env", "larger than"),
            ("none.env", "no such file"),
            ("nul.env", "NUL byte in its value"),
        ] {
            let e =
                read_env_file(d.path(), &file(&format!("arn:aws:s3:::b/{key}"))).expect_err(key);
            assert!(e.contains(reason) && e.contains(key), "{key}: {e}");
        }
    }
}

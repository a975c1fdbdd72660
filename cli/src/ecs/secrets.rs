//! berth's secret store on the command line, in the AWS CLI's shapes:
//! `aws ssm put-parameter/get-parameter/delete-parameter` and `aws
//! secretsmanager create-secret/put-secret-value/get-secret-value`, with
//! their flags and JSON. Flattened beside the ECS verbs; each arm is one
//! orchestrator call with the host's sealing key.

use std::path::Path;

use berth_orchestrator::secrets::{ParameterType, PutParameter, SealingKey};
use berth_orchestrator::{Ecs, EcsError};
use clap::Subcommand;

use super::{usage, value, Outcome};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// SSM: store a parameter (berth's secret store, sealed at rest).
    PutParameter {
        /// The parameter's name (a/b paths begin with /).
        #[arg(long)]
        name: String,
        /// Its value.
        #[arg(long)]
        value: String,
        /// String (default), StringList or SecureString.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Replace an existing parameter (a new version).
        #[arg(long, overrides_with = "no_overwrite")]
        overwrite: bool,
        /// Refuse to replace an existing parameter (the default).
        #[arg(long, hide = true)]
        no_overwrite: bool,
    },
    /// SSM: a parameter and its value.
    GetParameter {
        /// The parameter's name or ARN.
        #[arg(long)]
        name: String,
        /// Show a SecureString's value rather than its ciphertext.
        #[arg(long, overrides_with = "no_with_decryption")]
        with_decryption: bool,
        /// Show a SecureString's ciphertext (the default).
        #[arg(long, hide = true)]
        no_with_decryption: bool,
    },
    /// SSM: delete a parameter.
    DeleteParameter {
        /// The parameter's name or ARN.
        #[arg(long)]
        name: String,
    },
    /// Secrets Manager: a new secret with its first value.
    CreateSecret {
        /// The secret's name.
        #[arg(long)]
        name: String,
        /// Its value (JSON for key lookups from task definitions).
        #[arg(long)]
        secret_string: String,
    },
    /// Secrets Manager: a new value (AWSCURRENT; the old one becomes
    /// AWSPREVIOUS).
    PutSecretValue {
        /// The secret's name or ARN.
        #[arg(long)]
        secret_id: String,
        /// The new value.
        #[arg(long)]
        secret_string: String,
    },
    /// Secrets Manager: a secret's value (AWSCURRENT by default).
    GetSecretValue {
        /// The secret's name or ARN.
        #[arg(long)]
        secret_id: String,
        /// A version by its id.
        #[arg(long)]
        version_id: Option<String>,
        /// A version by its staging label (AWSCURRENT, AWSPREVIOUS).
        #[arg(long)]
        version_stage: Option<String>,
    },
}

impl SecretsCommand {
    pub(super) fn operation(&self) -> &'static str {
        match self {
            Self::PutParameter { .. } => "PutParameter",
            Self::GetParameter { .. } => "GetParameter",
            Self::DeleteParameter { .. } => "DeleteParameter",
            Self::CreateSecret { .. } => "CreateSecret",
            Self::PutSecretValue { .. } => "PutSecretValue",
            Self::GetSecretValue { .. } => "GetSecretValue",
        }
    }
}

pub(super) fn call(ecs: &Ecs, state_root: &Path, cmd: SecretsCommand) -> Result<Outcome, EcsError> {
    use SecretsCommand as C;
    // delete-parameter reads no value: it needs no key.
    if let C::DeleteParameter { name } = &cmd {
        ecs.delete_parameter(name)?;
        // As aws: nothing printed.
        return Ok(Outcome::Printed);
    }
    let key = SealingKey::open_or_create(state_root)?;
    match cmd {
        C::PutParameter {
            name,
            value: v,
            kind,
            overwrite,
            no_overwrite: _,
        } => {
            let kind = match ParameterType::parse(kind.as_deref().unwrap_or("String")) {
                Ok(k) => k,
                Err(e) => return usage(anyhow::anyhow!(e)),
            };
            let req = PutParameter {
                name,
                value: v,
                kind,
                overwrite,
            };
            value(ecs.put_parameter(&key, req))
        }
        C::GetParameter {
            name,
            with_decryption,
            no_with_decryption: _,
        } => value(ecs.get_parameter(&key, &name, with_decryption)),
        C::DeleteParameter { .. } => Ok(Outcome::Printed),
        C::CreateSecret {
            name,
            secret_string,
        } => value(ecs.create_secret(&key, &name, &secret_string)),
        C::PutSecretValue {
            secret_id,
            secret_string,
        } => value(ecs.put_secret_value(&key, &secret_id, &secret_string)),
        C::GetSecretValue {
            secret_id,
            version_id,
            version_stage,
        } => value(ecs.get_secret_value(
            &key,
            &secret_id,
            version_id.as_deref(),
            version_stage.as_deref(),
        )),
    }
}

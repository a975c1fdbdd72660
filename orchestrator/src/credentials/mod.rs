//! Credentials for a task's role (`taskRoleArn`), served by the task's
//! supervisor on the metadata endpoint's listener at
//! `169.254.170.2/v2/credentials/<id>`, as the ECS agent serves them
//! (see ARCHITECTURE.md, "Task role credentials").
//!
//! The keys come from the operator's task roles file ([`file`]): per role
//! ARN, static keys or a `credential_process` command ([`process`]) whose
//! answer is cached and run again shortly before it expires ([`provider`]).
//! [`roles`] parses the file and the command's output and builds the
//! answers: pure.

pub mod file;
pub mod process;
pub mod provider;
pub mod roles;

pub use provider::Provider;
pub use roles::{Keys, Source};

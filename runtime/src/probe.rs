//! Probes: a short command run inside a running container with a time
//! limit, as health checks need.
//!
//! Entering a container forks, which is unsafe in a program with threads
//! (a task supervisor has several), so a probe runs in a fresh `berth`
//! process started with [`PROBE_ARG`] that does the one exec and exits
//! with the command's code.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::container::{ExecSpec, Runtime};
use crate::error::{Error, Result};
use crate::paths::RuntimeRoot;

/// argv[1] that turns `berth` into a probe.
pub const PROBE_ARG: &str = "__berth-probe";
/// The probe's exit code when the command ran out of time (as timeout(1)).
const TIMED_OUT: i32 = 124;
/// The probe's exit code when the command could not be run at all.
const NOT_RUN: i32 = 125;
/// How long a probe process may outlive its command's time limit.
const GRACE: Duration = Duration::from_secs(5);

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Exited(i32),
    TimedOut,
    /// The command could not be started (container gone, no such file…).
    NotRun,
}

impl ProbeOutcome {
    pub fn passed(self) -> bool {
        self == Self::Exited(0)
    }
}

/// What a probe process is asked to run, parsed from its argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeArgs {
    pub runtime_root: PathBuf,
    pub id: String,
    pub timeout: Duration,
    pub command: Vec<String>,
}

impl ProbeArgs {
    /// `Some` when this process was started as a probe.
    pub fn from_args(args: &[String]) -> Option<Self> {
        if args.get(1).map(String::as_str) != Some(PROBE_ARG) {
            return None;
        }
        Some(Self {
            runtime_root: PathBuf::from(args.get(2)?),
            id: args.get(3)?.clone(),
            timeout: Duration::from_millis(args.get(4)?.parse().ok()?),
            command: args.get(5..)?.to_vec(),
        })
    }

    fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = vec![
            PROBE_ARG.into(),
            self.runtime_root.clone().into(),
            self.id.clone().into(),
            self.timeout.as_millis().to_string().into(),
        ];
        argv.extend(self.command.iter().map(Into::into));
        argv
    }
}

/// Body of the probe process: run the command, exit with its code.
pub fn run(args: ProbeArgs) -> i32 {
    let runtime = Runtime::new(RuntimeRoot::new(&args.runtime_root));
    let exec = ExecSpec {
        args: args.command,
        timeout: Some(args.timeout),
        ..Default::default()
    };
    match runtime.exec(&args.id, &exec) {
        Ok(code) => code,
        Err(Error::ExecTimedOut { .. }) => TIMED_OUT,
        Err(e) => {
            tracing::warn!("probe {}: {e}", args.id);
            NOT_RUN
        }
    }
}

/// Run `command` in container `id` under `runtime_root`, killed after
/// `timeout`. Its output is discarded.
pub fn probe(
    runtime_root: &Path,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> Result<ProbeOutcome> {
    let args = ProbeArgs {
        runtime_root: runtime_root.to_path_buf(),
        id: id.to_string(),
        timeout,
        command: command.to_vec(),
    };
    // The probe forks the process that joins the container: it runs from
    // the sealed copy of berth.
    let mut child = crate::sealed_exe::command(runtime_root)?
        .args(args.to_argv())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("start a probe in {id}"), e))?;
    // The probe kills its command at the deadline; this guards against a
    // probe that hangs entering the container.
    let deadline = Instant::now() + timeout + GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(match status.code() {
                    Some(TIMED_OUT) => ProbeOutcome::TimedOut,
                    Some(NOT_RUN) => ProbeOutcome::NotRun,
                    Some(code) => ProbeOutcome::Exited(code),
                    None => ProbeOutcome::NotRun,
                })
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(ProbeOutcome::TimedOut);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::io(format!("wait for a probe in {id}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips() {
        let args = ProbeArgs {
            runtime_root: "/run/berth".into(),
            id: "t-web".into(),
            timeout: Duration::from_millis(2500),
            command: vec!["/bin/sh".into(), "-c".into(), "exit 1".into()],
        };
        let mut argv = vec!["berth".to_string()];
        argv.extend(
            args.to_argv()
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        assert_eq!(ProbeArgs::from_args(&argv), Some(args));
        assert_eq!(ProbeArgs::from_args(&["berth".into(), "ps".into()]), None);
    }
}

//! The per-container monitor, after Podman's conmon.
//!
//! `berth` re-executes itself with [`MONITOR_ARG`]; the monitor forks once
//! more so that it is parented by init (or the nearest subreaper), not by
//! the command that started it, and becomes a child subreaper. A child of
//! it, the builder, builds the container through libcontainer and exits,
//! so the container's init becomes the monitor's child, and the pages
//! libcontainer touched leave with the builder. The monitor copies the
//! container's stdout/stderr into the log, reaps it and records how it
//! ended. It talks to its starter over one pipe, fd 3, with JSON
//! lines: first [`Message::Created`] or [`Message::Failed`], then
//! [`Message::Exited`]. The starter may go away at any time.

mod process;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exit::ExitRecord;

pub use process::run;

/// argv[1] that turns `berth` into a monitor.
pub const MONITOR_ARG: &str = "__berth-monitor";
const SYNC_FD: RawFd = 3;
/// The longest creating (and with `--start`, starting) a container may
/// take before its starter gives up on the monitor.
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const TEE_STDOUT_FD: RawFd = 4;
const TEE_STDERR_FD: RawFd = 5;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Message {
    Created { pid: i32 },
    Failed { error: String },
    Exited(ExitRecord),
}

/// What a monitor is asked to do, parsed from its argv.
#[derive(Debug, Clone)]
pub struct MonitorArgs {
    pub container_dir: PathBuf,
    pub libcontainer_root: PathBuf,
    /// Start the container as soon as it is created.
    pub start: bool,
    /// Also copy output to fds 4 and 5 (the starter's stdout and stderr).
    pub tee: bool,
}

impl MonitorArgs {
    /// `Some` when this process was started as a monitor.
    pub fn from_args(args: &[String]) -> Option<Self> {
        if args.get(1).map(String::as_str) != Some(MONITOR_ARG) {
            return None;
        }
        Some(Self {
            container_dir: PathBuf::from(args.get(2)?),
            libcontainer_root: PathBuf::from(args.get(3)?),
            start: args.iter().any(|a| a == "--start"),
            tee: args.iter().any(|a| a == "--tee"),
        })
    }

    /// The argv that [`from_args`](Self::from_args) reads back.
    pub(crate) fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = vec![
            "berth".into(),
            MONITOR_ARG.into(),
            self.container_dir.clone().into(),
            self.libcontainer_root.clone().into(),
        ];
        if self.start {
            argv.push("--start".into());
        }
        if self.tee {
            argv.push("--tee".into());
        }
        argv
    }

    /// Where the monitor's own diagnostics (and libcontainer's) go.
    pub fn log_file(&self) -> PathBuf {
        crate::paths::ContainerFiles::new(self.container_dir.clone()).monitor_log()
    }
}

/// The starter's end of the pipe to a monitor.
pub(crate) struct MonitorHandle {
    reader: BufReader<File>,
}

impl MonitorHandle {
    fn next(&mut self, id: &str) -> Result<Option<Message>> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Error::Monitor {
                id: id.to_string(),
                reason: format!("read from monitor: {e}"),
            })?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| Error::Monitor {
                id: id.to_string(),
                reason: format!("bad message {line:?}: {e}"),
            })
    }

    /// Wait for the container to be created; returns its init pid.
    ///
    /// libcontainer waits on its intermediate and init processes without a
    /// timeout, and those (clones of the monitor) hold this pipe open: one
    /// killed at the wrong moment would hang the monitor, or leave the pipe
    /// open with nobody to write, for ever. So the wait is bounded.
    pub fn wait_created(&mut self, id: &str) -> Result<i32> {
        if self.reader.buffer().is_empty() && !self.readable_within(id, CREATE_TIMEOUT)? {
            return Err(Error::Monitor {
                id: id.to_string(),
                reason: format!(
                    "no word from the monitor in {}s: creating the container hung",
                    CREATE_TIMEOUT.as_secs()
                ),
            });
        }
        match self.next(id)? {
            Some(Message::Created { pid }) => Ok(pid),
            Some(Message::Failed { error }) => Err(Error::Monitor {
                id: id.to_string(),
                reason: error,
            }),
            Some(other) => Err(Error::Monitor {
                id: id.to_string(),
                reason: format!("unexpected message {other:?}"),
            }),
            None => Err(Error::Monitor {
                id: id.to_string(),
                reason: "exited before the container was created (see monitor.log)".into(),
            }),
        }
    }

    /// True once the pipe has data or is closed, false after `timeout`.
    fn readable_within(&self, id: &str, timeout: std::time::Duration) -> Result<bool> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(
                self.reader.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if left.is_zero() => return Ok(false),
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => return Ok(true),
                Err(e) => {
                    return Err(Error::Monitor {
                        id: id.to_string(),
                        reason: format!("wait for the monitor: {e}"),
                    })
                }
            }
        }
    }

    /// Wait for the container to exit; `None` if the monitor died first.
    pub fn wait_exited(&mut self, id: &str) -> Result<Option<ExitRecord>> {
        loop {
            match self.next(id)? {
                Some(Message::Exited(record)) => return Ok(Some(record)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }
}

fn dup_high(fd: RawFd) -> Result<OwnedFd> {
    let new = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(|e| Error::sys("duplicate fd for monitor", e))?;
    // SAFETY: fcntl just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Start a monitor for the container whose state is in `container_dir`,
/// from the sealed copy of berth shared under `runtime_root`.
pub(crate) fn spawn(
    runtime_root: &Path,
    container_dir: &Path,
    libcontainer_root: &Path,
    start: bool,
    tee: bool,
) -> Result<MonitorHandle> {
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("create monitor pipe", e))?;
    // Keep the fds we hand over clear of 3..=5 so the dup2s cannot collide.
    let sync_w = dup_high(sync_w.as_raw_fd())?;
    let tee_fds = if tee {
        Some((dup_high(1)?, dup_high(2)?))
    } else {
        None
    };
    let args = MonitorArgs {
        container_dir: container_dir.to_path_buf(),
        libcontainer_root: libcontainer_root.to_path_buf(),
        start,
        tee,
    };
    // The container's init is cloned from the monitor: run it from the
    // sealed copy, with no LISTEN_FDS for libcontainer to keep fds open by.
    let program = crate::sealed_exe::program(runtime_root)?;
    let env = crate::spawn::env_without(crate::sealed_exe::SCRUBBED_ENV);
    let mut spawn = crate::spawn::Spawn::new(&program, &args.to_argv(), env)?
        .fd(sync_w.as_raw_fd(), SYNC_FD)
        .setsid();
    if let Some((out, err)) = &tee_fds {
        spawn = spawn
            .fd(out.as_raw_fd(), TEE_STDOUT_FD)
            .fd(err.as_raw_fd(), TEE_STDERR_FD);
    }
    let child = spawn.spawn()?;
    drop(sync_w);
    drop(tee_fds);
    // The monitor's first act is to fork and let this child exit.
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for monitor to detach", e)),
            Ok(_) => break,
        }
    }
    Ok(MonitorHandle {
        reader: BufReader::new(File::from(sync_r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips() {
        let args = MonitorArgs {
            container_dir: "/run/berth/containers/c".into(),
            libcontainer_root: "/run/berth/libcontainer".into(),
            start: true,
            tee: false,
        };
        let argv: Vec<String> = args
            .to_argv()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let back = MonitorArgs::from_args(&argv).expect("monitor args");
        assert_eq!(back.container_dir, args.container_dir);
        assert!(back.start && !back.tee);
        assert!(MonitorArgs::from_args(&["berth".into(), "runtime".into()]).is_none());
    }
}

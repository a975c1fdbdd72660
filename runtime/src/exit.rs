//! How a container ended, as its monitor records it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// The exit status, or 128+N when killed by signal N (as shells report).
    pub exit_code: i32,
    /// The signal that killed the init process, e.g. `SIGKILL`.
    pub signal: Option<String>,
    /// The kernel's OOM killer killed a process of this container.
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
}

impl ExitRecord {
    pub fn from_wait(
        status: nix::sys::wait::WaitStatus,
        oom_killed: bool,
        started_at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        use nix::sys::wait::WaitStatus;
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig.as_str().to_string())),
            _ => return None,
        };
        Some(Self {
            exit_code,
            signal,
            oom_killed,
            started_at,
            finished_at: Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;

    #[test]
    fn codes() {
        let pid = Pid::from_raw(1);
        let r = ExitRecord::from_wait(WaitStatus::Exited(pid, 3), false, None).expect("exit");
        assert_eq!((r.exit_code, r.signal), (3, None));
        let r = ExitRecord::from_wait(
            WaitStatus::Signaled(pid, Signal::SIGKILL, false),
            true,
            None,
        )
        .expect("signal");
        assert_eq!(r.exit_code, 137);
        assert_eq!(r.signal.as_deref(), Some("SIGKILL"));
        assert!(r.oom_killed);
        assert!(ExitRecord::from_wait(WaitStatus::StillAlive, false, None).is_none());
    }
}

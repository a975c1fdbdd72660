//! The supervisor's command line: how run-task, the agent and a reaper
//! start one (`berth __berth-task <state> <runtime> <cluster> <task>
//! [cgroup parent] [--adopt]`, with the store in its environment:
//! `BERTH_STORE*`), and the paths it derives from it.

use std::path::PathBuf;

use crate::agent_config::PullBehavior;
use crate::model::{name_from_arn, Task};
use crate::names;
use crate::store::{StoreConfig, StoreUrlError};

/// argv[1] of a task supervisor.
pub const SUPERVISOR_ARG: &str = "__berth-task";
const ADOPT_ARG: &str = "--adopt";

#[derive(Clone, Debug)]
pub struct SupervisorArgs {
    pub state_root: PathBuf,
    pub runtime_root: PathBuf,
    pub cluster: String,
    pub task_id: String,
    /// Parent of task cgroups (default `berth`).
    pub cgroup_parent: String,
    /// Take over a task whose supervisor died, rather than start it.
    pub adopt: bool,
    /// The store its spawner opened: the supervisor, and the supervisors
    /// it starts in turn, open this one.
    pub store: StoreConfig,
    /// When the task's images are pulled (`ECS_IMAGE_PULL_BEHAVIOR`, which
    /// the spawner sets in the supervisor's environment).
    pub pull: PullBehavior,
}

/// Where the host's bridges have their lock files (`berth_net::BridgeLock`):
/// under the runtime root, which like a bridge lasts until reboot.
pub fn bridge_locks(runtime_root: &std::path::Path) -> PathBuf {
    runtime_root.join("bridges")
}

/// The variable that carries [`SupervisorArgs::pull`] to the supervisor.
const PULL_ENV: &str = "ECS_IMAGE_PULL_BEHAVIOR";

impl SupervisorArgs {
    /// The supervisor's arguments when `args` are a supervisor's command
    /// line; the store comes from the environment its spawner set. An
    /// error: that environment names no store berth can open.
    pub fn from_args(args: &[String]) -> Option<Result<Self, StoreUrlError>> {
        if args.get(1).map(String::as_str) != Some(SUPERVISOR_ARG) {
            return None;
        }
        let store = match StoreConfig::from_env(|name| std::env::var_os(name)) {
            Ok(store) => store,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(Self {
            state_root: PathBuf::from(args.get(2)?),
            runtime_root: PathBuf::from(args.get(3)?),
            cluster: args.get(4)?.clone(),
            // The id names the task's directories: never a path.
            task_id: args
                .get(5)
                .filter(|id| names::check("task", id).is_ok())?
                .clone(),
            cgroup_parent: args.get(6).cloned().unwrap_or_else(|| "berth".into()),
            adopt: args.get(7).map(String::as_str) == Some(ADOPT_ARG),
            store,
            // Its spawner checked the setting; anything else (a supervisor
            // started by hand) pulls as by default.
            pull: std::env::var(PULL_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
        }))
    }

    /// The same roots and cgroup parent, for `task`.
    pub fn for_task(&self, task: &Task) -> Self {
        Self {
            cluster: name_from_arn(&task.cluster_arn).to_string(),
            task_id: task.id().to_string(),
            adopt: false,
            ..self.clone()
        }
    }

    /// The task's run directory: namespace files, scratch volumes, /etc.
    pub(crate) fn task_dir(&self) -> PathBuf {
        self.runtime_root.join("tasks").join(&self.task_id)
    }

    /// The bridges' lock files ([`bridge_locks`]).
    pub(crate) fn bridge_locks(&self) -> PathBuf {
        bridge_locks(&self.runtime_root)
    }

    /// Bridge mode: a container's own namespaces.
    pub(super) fn container_ns_dir(&self, container: &str) -> PathBuf {
        self.task_dir()
            .join(format!("ns-{}", names::file_stem(container)))
    }

    /// The task's cgroup, under which its containers' nest.
    pub(crate) fn cgroup(&self) -> String {
        format!("{}/{}", self.cgroup_parent.trim_matches('/'), self.task_id)
    }

    pub fn log_file(&self) -> PathBuf {
        self.state_root
            .join("tasks")
            .join(format!("{}.log", self.task_id))
    }

    /// A container's log, kept after the task stops.
    pub fn container_log(
        state_root: &std::path::Path,
        task_id: &str,
        container: &str,
    ) -> Result<PathBuf, names::PathNameError> {
        let dir = names::child(&state_root.join("tasks"), task_id)?;
        names::child(&dir, &format!("{}.log", names::file_stem(container)))
    }

    /// Start a detached supervisor for this task; returns once it runs.
    pub fn spawn(&self) -> std::io::Result<()> {
        use std::os::unix::process::CommandExt;
        if let Some(dir) = self.log_file().parent() {
            std::fs::create_dir_all(dir)?;
        }
        // From the sealed copy shared under the runtime root, which its
        // monitors and probes then share too (one page-cache copy of the
        // text for every task, and no copy of its own per supervisor).
        let mut cmd = berth_runtime::sealed_exe::command(&self.runtime_root)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // `berth`, not `/proc/self/fd/N`, in ps.
        cmd.arg0("berth")
            .arg(SUPERVISOR_ARG)
            .arg(&self.state_root)
            .arg(&self.runtime_root)
            .arg(&self.cluster)
            .arg(&self.task_id)
            .arg(&self.cgroup_parent)
            .args(self.adopt.then_some(ADOPT_ARG))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .env(PULL_ENV, self.pull.as_str());
        // Explicitly, not inherited: `--store` may have come as a flag,
        // and a variable inherited from elsewhere must not name another.
        for (name, value) in self.store.env() {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        // A process group of its own at once, so that a ^C to the CLI
        // never reaches it; the supervisor leaves the CLI's session after
        // its fork (`run`). No code runs between fork and exec, so the
        // spawn is a posix_spawn: no copy of the CLI's page tables.
        cmd.process_group(0);
        // The supervisor forks and this child exits at once.
        cmd.spawn()?.wait().map(|_| ())
    }
}

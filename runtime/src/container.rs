//! The runtime's public face: create, start, kill, stop, state, delete,
//! exec and list containers under one [`RuntimeRoot`].

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus as LcStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;
use serde::Serialize;

use crate::cgroups;
use crate::error::{Error, IoContext, Result};
use crate::exit::ExitRecord;
use crate::fsutil::{
    create_private_dir, create_private_dir_all, private_file, read_json, write_json_atomic,
};
use crate::logs::{LogConfig, DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};
use crate::meta::{ContainerMeta, Started};
use crate::monitor;
use crate::paths::{validate_id, ContainerFiles, RuntimeRoot};
use crate::proc::ProcessId;
use crate::spec::{parse_signal, user, ContainerSpec, STOP_SIGNAL_ANNOTATION};
use crate::start_slots;

/// How long a stopped container's monitor gets to finish its records.
const MONITOR_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Parent of the container's cgroup (a task's, a test's, or `berth`).
    pub cgroup_parent: String,
    /// The container's own cgroup name under the parent (default: its id),
    /// e.g. its name within a task.
    pub cgroup_name: Option<String>,
    /// Where the container's log goes (default: its state directory, removed
    /// with it); a task keeps its logs past its containers.
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Where the log's lines are forwarded too.
    pub log_forward: Option<crate::log_forward::Forward>,
    /// Start the process as soon as it is created (`run`).
    pub start: bool,
    /// Copy the container's output to this process's stdout and stderr too.
    pub tee_output: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            cgroup_parent: "berth".into(),
            cgroup_name: None,
            log_path: None,
            log_max_size: DEFAULT_MAX_SIZE,
            log_max_files: DEFAULT_MAX_FILES,
            log_forward: None,
            start: false,
            tee_output: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("unknown"))
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    pub pid: Option<i32>,
    pub alive: bool,
}

/// The OCI state of a container plus what berth's monitor knows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: &'static str,
    pub id: String,
    pub status: ContainerStatus,
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub cgroups_path: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub monitor: MonitorStatus,
    /// Running (or created) with no monitor to reap it or record its exit.
    pub orphaned: bool,
    pub exit: Option<ExitRecord>,
    pub log_path: PathBuf,
    pub stop_signal: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopOutcome {
    /// SIGKILL was needed after the stop timeout.
    pub killed: bool,
    pub exit: Option<ExitRecord>,
}

/// A process to run inside a running container.
#[derive(Clone, Debug, Default)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    /// Kill the process (SIGKILL) when it runs longer than this.
    pub timeout: Option<Duration>,
}

/// A new container, and the way to learn how it ends.
pub struct Created {
    pub state: ContainerState,
    pub exit: ExitWaiter,
}

/// The starter's line to the monitor; dropping it leaves the container be.
pub struct ExitWaiter {
    id: String,
    handle: monitor::MonitorHandle,
}

impl ExitWaiter {
    /// Block until the container exits. `None` if the monitor died first.
    pub fn wait(mut self) -> Result<Option<ExitRecord>> {
        self.handle.wait_exited(&self.id)
    }
}

pub struct Runtime {
    root: RuntimeRoot,
}

/// Where a new container's OCI config comes from.
pub enum Source<'a> {
    /// An existing OCI bundle (config.json plus its root).
    Bundle(&'a Path),
    /// berth's spec over a root filesystem directory.
    Spec {
        rootfs: &'a Path,
        spec: &'a ContainerSpec,
    },
}

impl Runtime {
    pub fn new(root: RuntimeRoot) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &RuntimeRoot {
        &self.root
    }

    fn files(&self, id: &str) -> ContainerFiles {
        ContainerFiles::new(self.root.container_dir(id))
    }

    fn meta(&self, id: &str) -> Result<ContainerMeta> {
        validate_id(id)?;
        read_json(&self.files(id).meta())?.ok_or_else(|| Error::NotFound(id.to_string()))
    }

    /// Create a container and its monitor. With `opts.start` it also runs.
    /// On any error nothing is left behind.
    pub fn create(&self, id: &str, source: Source<'_>, opts: &CreateOptions) -> Result<Created> {
        validate_id(id)?;
        let files = self.files(id);
        create_private_dir_all(&self.root.containers_dir())
            .context(|| format!("create {}", self.root.containers_dir().display()))?;
        match create_private_dir(&files.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("create {}", files.dir.display()), e)),
        }
        if self.root.libcontainer_root().join(id).exists() {
            let _ = fs::remove_dir_all(&files.dir);
            return Err(Error::AlreadyExists(id.to_string()));
        }
        let result = self
            .create_in(id, &files, source, opts)
            .map_err(|e| with_monitor_log(e, &files));
        if result.is_err() {
            if let Err(e) = self.remove(id, &files) {
                tracing::warn!("clean up after failed create of {id}: {e}");
            }
        }
        result
    }

    fn create_in(
        &self,
        id: &str,
        files: &ContainerFiles,
        source: Source<'_>,
        opts: &CreateOptions,
    ) -> Result<Created> {
        let default_cgroup = cgroups::container_path(
            &opts.cgroup_parent,
            opts.cgroup_name.as_deref().unwrap_or(id),
        );
        let spec = match source {
            Source::Spec { rootfs, spec } => {
                let rootfs = rootfs
                    .canonicalize()
                    .map_err(|e| Error::spec("rootfs", format!("{}: {e}", rootfs.display())))?;
                spec.to_oci(id, &rootfs, &default_cgroup)?
            }
            Source::Bundle(bundle) => load_bundle(bundle, &default_cgroup)?,
        };
        let rootfs = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(default_cgroup);
        let stop_signal = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(STOP_SIGNAL_ANNOTATION).cloned())
            .unwrap_or_else(|| "SIGTERM".into());
        parse_signal(&stop_signal).map_err(|r| Error::spec(STOP_SIGNAL_ANNOTATION, r))?;

        let bundle = files.generated_bundle();
        create_private_dir(&bundle).context(|| format!("create {}", bundle.display()))?;
        // config.json holds the environment, secrets included: root only.
        let config = bundle.join("config.json");
        private_file(&config).context(|| format!("create {}", config.display()))?;
        spec.save(&config).map_err(|e| Error::InvalidBundle {
            path: bundle.clone(),
            reason: e.to_string(),
        })?;
        let meta = ContainerMeta {
            id: id.to_string(),
            bundle,
            rootfs,
            cgroups_path,
            stop_signal,
            log: LogConfig {
                path: opts.log_path.clone().unwrap_or_else(|| files.default_log()),
                max_size: opts.log_max_size,
                max_files: opts.log_max_files,
                forward: opts.log_forward.clone(),
            },
            created_at: Utc::now(),
        };
        write_json_atomic(&files.meta(), &meta)?;
        // Held until the monitor says "created": the wait below then times
        // the creation alone, not a host-wide queue of them.
        let _slot = start_slots::take(self.root.dir(), start_slots::slots())?;
        let mut handle = monitor::spawn(
            self.root.dir(),
            &files.dir,
            &self.root.libcontainer_root(),
            opts.start,
            opts.tee_output,
        )?;
        handle.wait_created(id)?;
        Ok(Created {
            state: self.state(id)?,
            exit: ExitWaiter {
                id: id.to_string(),
                handle,
            },
        })
    }

    /// Start a created container's process.
    pub fn start(&self, id: &str) -> Result<ContainerState> {
        self.meta(id)?;
        let mut container = self.load(id)?;
        // Recorded before the process runs: a short-lived one may exit, and
        // its monitor read the record, before `start()` returns here.
        let started = self.files(id).started();
        write_json_atomic(&started, &Started { at: Utc::now() })?;
        if let Err(source) = container.start() {
            let _ = fs::remove_file(&started);
            return Err(Error::Libcontainer {
                id: id.to_string(),
                source,
            });
        }
        self.state(id)
    }

    /// Send `signal` to the container's init, or with `all` to every process.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let state = self.state(id)?;
        if !matches!(
            state.status,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: state.status.to_string(),
                hint: "only a created or running container can be signalled",
            });
        }
        let mut container = self.load(id)?;
        container
            .kill(signal, all)
            .map_err(|source| Error::Libcontainer {
                id: id.to_string(),
                source,
            })
    }

    /// Ask the container to stop with its stop signal; after `timeout`,
    /// SIGKILL every process in it.
    pub fn stop(&self, id: &str, timeout: Duration, signal: Option<Signal>) -> Result<StopOutcome> {
        let state = self.state(id)?;
        if !matches!(
            state.status,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Ok(StopOutcome {
                killed: false,
                exit: state.exit,
            });
        }
        let signal = match signal {
            Some(s) => s,
            None => parse_signal(&state.stop_signal)
                .map_err(|r| Error::spec(STOP_SIGNAL_ANNOTATION, r))?,
        };
        let all = state.status == ContainerStatus::Created;
        self.kill(id, signal, all).or_else(ignore_not_running)?;
        if self.wait_stopped(id, timeout)? {
            return Ok(StopOutcome {
                killed: false,
                exit: self.state(id)?.exit,
            });
        }
        tracing::info!(id, "stop timeout passed; sending SIGKILL");
        self.kill(id, Signal::SIGKILL, true)
            .or_else(ignore_not_running)?;
        self.wait_stopped(id, Duration::from_secs(10))?;
        Ok(StopOutcome {
            killed: true,
            exit: self.state(id)?.exit,
        })
    }

    /// True once the container's processes are gone and, if its monitor
    /// lives, the exit is recorded.
    fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state(id)?;
            let settled = state.status == ContainerStatus::Stopped
                && (state.exit.is_some() || !state.monitor.alive);
            if settled {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Block until the container has stopped (no timeout).
    pub fn wait(&self, id: &str) -> Result<ContainerState> {
        while !self.wait_stopped(id, Duration::from_secs(3600))? {}
        self.state(id)
    }

    pub fn state(&self, id: &str) -> Result<ContainerState> {
        let meta = self.meta(id)?;
        let files = self.files(id);
        let exit: Option<ExitRecord> = read_json(&files.exit())?;
        let started: Option<Started> = read_json(&files.started())?;
        let monitor: Option<ProcessId> = read_json(&files.monitor())?;
        let monitor_alive = monitor.is_some_and(|m| m.is_alive());
        let lc = self.load(id).ok().map(|mut c| {
            let _ = c.refresh_status();
            (c.status(), c.pid().map(|p| p.as_raw()))
        });
        let (status, pid) = match (&exit, lc) {
            (Some(_), lc) => (ContainerStatus::Stopped, lc.and_then(|l| l.1)),
            (None, Some((status, pid))) => (
                match status {
                    LcStatus::Creating => ContainerStatus::Creating,
                    LcStatus::Created => ContainerStatus::Created,
                    LcStatus::Running => ContainerStatus::Running,
                    LcStatus::Paused => ContainerStatus::Paused,
                    LcStatus::Stopped => ContainerStatus::Stopped,
                },
                pid,
            ),
            (None, None) if monitor_alive => (ContainerStatus::Creating, None),
            (None, None) => (ContainerStatus::Stopped, None),
        };
        let orphaned = !monitor_alive
            && matches!(
                status,
                ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
            );
        Ok(ContainerState {
            oci_version: "1.0.2",
            id: meta.id,
            status,
            pid,
            bundle: meta.bundle,
            rootfs: meta.rootfs,
            cgroups_path: meta.cgroups_path,
            created_at: meta.created_at,
            started_at: started.map(|s| s.at),
            monitor: MonitorStatus {
                pid: monitor.map(|m| m.pid),
                alive: monitor_alive,
            },
            orphaned,
            exit,
            log_path: meta.log.path,
            stop_signal: meta.stop_signal,
        })
    }

    /// Every container under this root, by id.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let dir = self.root.containers_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids.iter().filter_map(|id| self.state(id).ok()).collect())
    }

    /// Remove a stopped container: its cgroup, libcontainer state and
    /// berth's records. `force` kills it first if it still runs, and works
    /// on half-created and orphaned containers.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        validate_id(id)?;
        let files = self.files(id);
        if !files.dir.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        if let Ok(state) = self.state(id) {
            let live = matches!(
                state.status,
                ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
            );
            if live && !force {
                return Err(Error::WrongState {
                    id: id.to_string(),
                    status: state.status.to_string(),
                    hint: "stop it first, or delete --force",
                });
            }
            if live {
                self.kill(id, Signal::SIGKILL, true)
                    .or_else(ignore_not_running)?;
                self.wait_stopped(id, MONITOR_GRACE)?;
            } else if state.monitor.alive && !force {
                // Let the monitor finish writing the exit record.
                self.wait_stopped(id, MONITOR_GRACE)?;
            }
        }
        self.remove(id, &files)
    }

    /// Tear down whatever exists of container `id`, in any state.
    fn remove(&self, id: &str, files: &ContainerFiles) -> Result<()> {
        let meta: Option<ContainerMeta> = read_json(&files.meta()).ok().flatten();
        // Before libcontainer removes the cgroup: else its page cache keeps
        // it in the kernel as a dying memory cgroup.
        if let Some(meta) = &meta {
            cgroups::reclaim(&meta.cgroups_path);
        }
        if let Ok(mut container) = self.load(id) {
            // With force, libcontainer kills whatever still runs.
            if let Err(e) = container.delete(true) {
                tracing::warn!(id, "libcontainer delete: {e}");
            }
        }
        if let Some(meta) = &meta {
            cgroups::remove(&meta.cgroups_path).map_err(|reason| Error::Monitor {
                id: id.to_string(),
                reason,
            })?;
        }
        // A monitor still running now has nothing left to watch.
        if let Some(m) = read_json::<ProcessId>(&files.monitor()).ok().flatten() {
            if m.is_alive() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(m.pid), Signal::SIGKILL);
            }
        }
        // Nor do its clones: libcontainer's intermediate and init processes
        // stuck before they reached the cgroup, their monitor killed while
        // it created the container (they carry the monitor's argv). An exit
        // record means creation finished and init was reaped: no clone can
        // be left, and the scan, which reads every process's cmdline (tens
        // of ms on a host running a thousand tasks), is skipped.
        let exited = files.exit().exists();
        let dir = files.dir.to_string_lossy();
        let clones = if exited {
            Vec::new()
        } else {
            crate::proc::find(|argv| {
                argv.get(1).is_some_and(|a| a == monitor::MONITOR_ARG)
                    && argv.get(2).is_some_and(|d| *d == dir)
            })
        };
        for pid in clones {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        let lc_dir = self.root.libcontainer_root().join(id);
        if lc_dir.exists() {
            fs::remove_dir_all(&lc_dir).context(|| format!("remove {}", lc_dir.display()))?;
        }
        fs::remove_dir_all(&files.dir).context(|| format!("remove {}", files.dir.display()))
    }

    /// Run a process inside a running container; it shares this process's
    /// stdout and stderr. Returns its exit code (128+N if killed by N).
    pub fn exec(&self, id: &str, exec: &ExecSpec) -> Result<i32> {
        let state = self.state(id)?;
        if state.status != ContainerStatus::Running {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: state.status.to_string(),
                hint: "exec needs a running container",
            });
        }
        if exec.args.is_empty() || exec.args[0].is_empty() {
            return Err(Error::spec("args", "no command to run"));
        }
        // The process that joins the container is forked from this one, so
        // this one must not be the host's berth binary (CVE-2019-5736).
        if !crate::sealed_exe::running_sealed() {
            return Err(Error::io(
                format!("exec in {id}"),
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "berth must run from its sealed copy to enter a container",
                ),
            ));
        }
        // As `docker exec`: the container's own user unless one is given.
        let user = match exec.user.as_deref() {
            Some(name) => user::resolve(&state.rootfs, Some(name), &[])?,
            None => {
                let config = state.bundle.join("config.json");
                let spec = Spec::load(&config).map_err(|e| Error::InvalidBundle {
                    path: config.clone(),
                    reason: e.to_string(),
                })?;
                let u = spec
                    .process()
                    .as_ref()
                    .map(|p| p.user().clone())
                    .unwrap_or_default();
                user::ResolvedUser {
                    uid: u.uid(),
                    gid: u.gid(),
                    additional_gids: u.additional_gids().clone().unwrap_or_default(),
                    home: None,
                }
            }
        };
        let mut env: HashMap<String, String> = HashMap::new();
        for (i, e) in exec.env.iter().enumerate() {
            let (k, v) = e
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Error::spec(format!("env[{i}]"), format!("{e:?} is not KEY=VALUE"))
                })?;
            env.insert(k.to_string(), v.to_string());
        }
        // The exec'd process may be parented by our child; adopt it.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::sys("set subreaper", e))?;
        let lc_err = |source| Error::Libcontainer {
            id: id.to_string(),
            source,
        };
        let pid = ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(self.root.libcontainer_root())
            .map_err(lc_err)?
            .as_tenant()
            .with_container_args(exec.args.clone())
            .with_env(env)
            .with_cwd(exec.cwd.as_ref().map(PathBuf::from))
            .with_user(Some(user.uid))
            .with_group(Some(user.gid))
            .with_additional_gids(user.additional_gids)
            .with_detach(false)
            .build()
            .map_err(lc_err)?;
        let deadline = exec.timeout.map(|t| (t, Instant::now() + t));
        // With a deadline, poll: a blocking wait could not be cut short.
        let flags = deadline.map(|_| nix::sys::wait::WaitPidFlag::WNOHANG);
        loop {
            match nix::sys::wait::waitpid(pid, flags) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                    if let Some((timeout, at)) = deadline {
                        if Instant::now() >= at {
                            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                            let _ = nix::sys::wait::waitpid(pid, None);
                            return Err(Error::ExecTimedOut {
                                id: id.to_string(),
                                timeout,
                            });
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(format!("wait for exec in {id}"), e)),
            }
        }
    }

    fn load(&self, id: &str) -> Result<Container> {
        let dir = self.root.libcontainer_root().join(id);
        if !dir.exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Container::load(dir).map_err(|source| Error::Libcontainer {
            id: id.to_string(),
            source,
        })
    }
}

/// libcontainer's own reasons reach only the monitor's log; lift its error
/// lines into the error before the log is removed with the container.
fn with_monitor_log(e: Error, files: &ContainerFiles) -> Error {
    let Error::Monitor { id, reason } = e else {
        return e;
    };
    let log = fs::read_to_string(files.monitor_log()).unwrap_or_default();
    let details: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(|l| l.split_once("ERROR").map_or(l, |(_, rest)| rest.trim()))
        .collect();
    let tail = &details[details.len().saturating_sub(4)..];
    if tail.is_empty() {
        return Error::Monitor { id, reason };
    }
    Error::Monitor {
        id,
        reason: format!("{reason}\n  {}", tail.join("\n  ")),
    }
}

fn ignore_not_running(e: Error) -> Result<()> {
    match e {
        Error::WrongState { .. } => Ok(()),
        other => Err(other),
    }
}

/// Read a bundle's config.json; give it a cgroup path if it has none and
/// make its root absolute, so berth's copy runs from anywhere.
fn load_bundle(bundle: &Path, default_cgroup: &str) -> Result<Spec> {
    let config = bundle.join("config.json");
    let invalid = |reason: String| Error::InvalidBundle {
        path: config.clone(),
        reason,
    };
    if !config.is_file() {
        return Err(invalid("no such file".into()));
    }
    let mut spec = Spec::load(&config).map_err(|e| invalid(e.to_string()))?;
    let mut root = spec
        .root()
        .clone()
        .ok_or_else(|| invalid("root: missing".into()))?;
    let path = bundle.join(root.path());
    let path = path
        .canonicalize()
        .map_err(|e| invalid(format!("root.path {}: {e}", path.display())))?;
    if !path.is_dir() {
        return Err(invalid(format!(
            "root.path {} is not a directory",
            path.display()
        )));
    }
    root.set_path(path);
    spec.set_root(Some(root));
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process: missing".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args: no command to run".into()));
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    if linux.cgroups_path().is_none() {
        linux.set_cgroups_path(Some(PathBuf::from(default_cgroup)));
    }
    spec.set_linux(Some(linux));
    Ok(spec)
}

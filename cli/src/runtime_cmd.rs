//! `berth runtime …`: the OCI runtime's verbs over berth's runtime crate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_runtime::logs::{read_entries, DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};
use berth_runtime::spec::parse_signal;
use berth_runtime::{
    ContainerSpec, CreateOptions, ExecSpec, Mount, NamespaceJoin, Resources, Rlimit, Runtime,
    RuntimeRoot, Source,
};
use clap::{Args, Subcommand};

use crate::output::{self, Format};
use crate::Roots;
use crate::{flags, image_cmd, image_run};
use berth_rootfs::snapshot::Snapshotter;

#[derive(Subcommand)]
pub enum RuntimeCommand {
    /// Create a container from an OCI bundle; its process waits for `start`.
    Create {
        /// The OCI bundle: a directory with config.json and the root filesystem.
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        #[command(flatten)]
        common: CommonCreate,
        /// The container's id.
        id: String,
    },
    /// Start a created container's process.
    Start {
        /// The container's id.
        id: String,
    },
    /// Run a container in the foreground, from a bundle or a root
    /// filesystem, and exit with its exit code (128+N when killed by N).
    Run(Box<RunArgs>),
    /// Print a container's state as JSON.
    State {
        /// The container's id.
        id: String,
    },
    /// Send a signal (default SIGTERM) to a container.
    Kill {
        /// The container's id.
        id: String,
        /// The signal: a name (SIGTERM, TERM) or a number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process in the container, not only its init.
        #[arg(long, short)]
        all: bool,
    },
    /// Stop a container: its stop signal, then SIGKILL after the timeout.
    Stop {
        /// The container's id.
        id: String,
        /// Seconds to wait before SIGKILL (ECS's default stop timeout).
        #[arg(long, short, default_value_t = 30)]
        time: u64,
        /// Signal to send instead of the container's stop signal.
        #[arg(long, short)]
        signal: Option<String>,
    },
    /// Delete a stopped container (with --force, a running or broken one).
    Delete {
        /// Kill it first when running, or remove what a broken one left.
        #[arg(long, short)]
        force: bool,
        /// The container's id.
        id: String,
    },
    /// Run a process in a running container; exits with its exit code.
    Exec {
        /// An environment variable for the process (repeatable).
        #[arg(long = "env", short, value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The process's working directory in the container.
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Run as this user: UID or UID:GID.
        #[arg(long, short)]
        user: Option<String>,
        /// The container's id.
        id: String,
        /// The command and its arguments (after --).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// json, table (for people) or text (tab-separated rows).
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Print a container's log.
    Logs {
        /// The container's id.
        id: String,
        /// Print the JSON lines as stored.
        #[arg(long)]
        json: bool,
    },
    /// Block until a container stops; print its state.
    Wait {
        /// The container's id.
        id: String,
    },
}

#[derive(Args)]
pub struct CommonCreate {
    /// Parent cgroup of the container's cgroup.
    #[arg(long, default_value = "berth")]
    cgroup_parent: String,
    /// Rotate the container's log at this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_SIZE)]
    log_max_size: u64,
    /// Log files to keep, the current one included.
    #[arg(long, default_value_t = DEFAULT_MAX_FILES)]
    log_max_files: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

#[derive(Args)]
pub struct RunArgs {
    /// Container id (default: berth-<pid>).
    #[arg(long)]
    id: Option<String>,
    /// An OCI bundle to run.
    #[arg(long, short, conflicts_with_all = ["rootfs", "image"])]
    bundle: Option<PathBuf>,
    /// A root filesystem directory; berth writes the bundle.
    #[arg(long, conflicts_with = "image")]
    rootfs: Option<PathBuf>,
    /// An image in berth's store: its layers under an overlay root, its
    /// config's command, env, workdir, user and stop signal as defaults.
    #[arg(long)]
    image: Option<String>,
    /// When to pull the image: missing (default), always, never.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing, requires = "image")]
    pub(crate) pull: PullPolicy,
    #[command(flatten)]
    pub(crate) registry: image_cmd::RegistryArgs,
    /// Replace the image's entrypoint (JSON array or words).
    #[arg(long, requires = "image")]
    pub(crate) entrypoint: Option<String>,
    /// Return once the container runs instead of waiting; keep it.
    #[arg(long, short)]
    detach: bool,
    /// Keep the stopped container (default: delete it, as `runc run` does).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    common: CommonCreate,
    /// Memory hard limit in MiB.
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    /// Memory soft reservation in MiB.
    #[arg(long, value_name = "MIB")]
    memory_reservation: Option<u64>,
    /// CPU weight in ECS units (1024 a core).
    #[arg(long, value_name = "UNITS")]
    cpu: Option<u64>,
    /// Hard CPU cap in cores, e.g. 0.5.
    #[arg(long, value_name = "CORES")]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long, value_name = "N")]
    pids: Option<i64>,
    /// USER[:GROUP], names looked up in the rootfs.
    #[arg(long, short)]
    user: Option<String>,
    /// Additional groups.
    #[arg(long, value_name = "GROUP")]
    group_add: Vec<String>,
    /// An environment variable for the process (repeatable).
    #[arg(long = "env", short, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The process's working directory in the container.
    #[arg(long, short, value_name = "DIR")]
    workdir: Option<String>,
    /// The container's hostname (its own UTS namespace).
    #[arg(long)]
    hostname: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// All capabilities, no seccomp, no masked paths, all devices.
    #[arg(long)]
    privileged: bool,
    /// Add a capability to the default set (repeatable).
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a capability from the default set (repeatable; ALL for all).
    #[arg(long, value_name = "CAP")]
    cap_drop: Vec<String>,
    /// The process and its children gain no privileges (setuid, file caps).
    #[arg(long)]
    no_new_privileges: bool,
    /// A namespaced sysctl for the container (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    sysctl: Vec<String>,
    /// DEST[:SIZE_BYTES] tmpfs mount.
    #[arg(long, value_name = "DEST[:SIZE]")]
    tmpfs: Vec<String>,
    /// SRC:DEST[:ro] bind mount.
    #[arg(long, short, value_name = "SRC:DEST[:ro]")]
    volume: Vec<String>,
    /// /dev/shm size in bytes.
    #[arg(long, value_name = "BYTES")]
    shm_size: Option<u64>,
    /// NAME=SOFT[:HARD], e.g. nofile=1024:4096.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<String>,
    /// The signal that stops the container (default SIGTERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Join this network namespace (e.g. /run/netns/NAME) instead of a new one.
    #[arg(long, value_name = "PATH")]
    net_ns: Option<PathBuf>,
    /// The command and its arguments (after --).
    #[arg(last = true)]
    command: Vec<String>,
}

pub fn run(cmd: RuntimeCommand, roots: &Roots) -> anyhow::Result<i32> {
    let runtime = Runtime::new(RuntimeRoot::new(&roots.runtime));
    match cmd {
        RuntimeCommand::Create { bundle, common, id } => {
            let created =
                runtime.create(&id, Source::Bundle(&bundle), &common.options(false, false))?;
            output::json(&created.state)?;
        }
        RuntimeCommand::Start { id } => {
            runtime.start(&id)?;
        }
        RuntimeCommand::Run(args) => return run_container(&runtime, roots, *args),
        RuntimeCommand::State { id } => output::json(&runtime.state(&id)?)?,
        RuntimeCommand::Kill { id, signal, all } => {
            let signal = parse_signal(&signal).map_err(anyhow::Error::msg)?;
            runtime.kill(&id, signal, all)?;
        }
        RuntimeCommand::Stop { id, time, signal } => {
            let signal = signal
                .map(|s| parse_signal(&s).map_err(anyhow::Error::msg))
                .transpose()?;
            output::json(&runtime.stop(&id, Duration::from_secs(time), signal)?)?;
        }
        RuntimeCommand::Delete { force, id } => {
            runtime.delete(&id, force)?;
            // A root filesystem `run --image` made for it goes too.
            let store = image_cmd::open_store(roots)?;
            Snapshotter::new(&store).remove(&id)?;
        }
        RuntimeCommand::Exec {
            env,
            cwd,
            user,
            id,
            command,
        } => {
            let spec = ExecSpec {
                args: command,
                env,
                cwd: cwd.map(|c| c.to_string_lossy().into_owned()),
                user,
                timeout: None,
            };
            return Ok(runtime.exec(&id, &spec)?);
        }
        RuntimeCommand::List { output } => {
            let states = runtime.list()?;
            match output {
                Format::Json => output::json(&states)?,
                Format::Table | Format::Text => {
                    let rows: Vec<Vec<String>> = states
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.clone(),
                                s.pid.map(|p| p.to_string()).unwrap_or_default(),
                                s.status.to_string(),
                                s.exit
                                    .as_ref()
                                    .map(|e| e.exit_code.to_string())
                                    .unwrap_or_default(),
                                if s.orphaned {
                                    "orphaned".into()
                                } else {
                                    String::new()
                                },
                                s.created_at.to_rfc3339(),
                            ]
                        })
                        .collect();
                    output::table(
                        output,
                        &["ID", "PID", "STATUS", "EXIT", "MONITOR", "CREATED"],
                        &rows,
                    );
                }
            }
        }
        RuntimeCommand::Logs { id, json } => {
            let state = runtime.state(&id)?;
            let entries = read_entries(&state.log_path, DEFAULT_MAX_FILES.max(16))
                .with_context(|| format!("read log {}", state.log_path.display()))?;
            for e in entries {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else if e.stream == berth_runtime::logs::Stream::Stderr {
                    eprint!("{}", e.log);
                } else {
                    print!("{}", e.log);
                }
            }
        }
        RuntimeCommand::Wait { id } => output::json(&runtime.wait(&id)?)?,
    }
    Ok(0)
}

impl CommonCreate {
    fn options(&self, start: bool, tee_output: bool) -> CreateOptions {
        CreateOptions {
            cgroup_parent: self.cgroup_parent.clone(),
            cgroup_name: None,
            log_path: None,
            log_max_size: self.log_max_size,
            log_max_files: self.log_max_files,
            log_forward: None,
            start,
            tee_output,
        }
    }
}

fn run_container(runtime: &Runtime, roots: &Roots, args: RunArgs) -> anyhow::Result<i32> {
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("berth-{}", std::process::id()));
    let opts = args.common.options(true, !args.detach);
    if let Some(image) = &args.image {
        let store = image_cmd::open_store(roots)?;
        let snapshots = Snapshotter::new(&store);
        let (rootfs, spec) = image_run::prepare(&store, &id, image, &args)?;
        let created = runtime.create(
            &id,
            Source::Spec {
                rootfs: &rootfs,
                spec: &spec,
            },
            &opts,
        );
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                if !matches!(e, berth_runtime::Error::AlreadyExists(_)) {
                    let _ = snapshots.remove(&id);
                }
                return Err(e.into());
            }
        };
        let code = finish_run(runtime, &id, &args, created)?;
        if !args.keep && !args.detach {
            snapshots.remove(&id)?;
        }
        return Ok(code);
    }
    let spec;
    let source = match (&args.bundle, &args.rootfs) {
        (Some(bundle), _) => {
            if !args.command.is_empty() {
                bail!("a command after -- needs --rootfs; a bundle names its own process.args");
            }
            Source::Bundle(bundle)
        }
        (None, Some(rootfs)) => {
            spec = args.spec()?;
            Source::Spec {
                rootfs,
                spec: &spec,
            }
        }
        (None, None) => bail!("give --rootfs DIR, --image REF or --bundle DIR"),
    };
    let created = runtime.create(&id, source, &opts)?;
    finish_run(runtime, &id, &args, created)
}

/// Detached: print the state. Foreground: wait, forward signals, delete
/// unless kept, and return the container's exit code.
fn finish_run(
    runtime: &Runtime,
    id: &str,
    args: &RunArgs,
    created: berth_runtime::Created,
) -> anyhow::Result<i32> {
    let id = id.to_string();
    if args.detach {
        output::json(&created.state)?;
        return Ok(0);
    }
    forward_signals(runtime.root().clone(), id.clone());
    let exit = created.exit.wait()?;
    let code = match &exit {
        Some(record) => record.exit_code,
        None => bail!(
            "the monitor of {id} died before the container exited; see `berth runtime state {id}`"
        ),
    };
    if !args.keep {
        runtime.delete(&id, false)?;
    }
    Ok(code)
}

/// As `runc run` does, pass SIGINT, SIGTERM, SIGHUP and SIGQUIT on to the
/// container while it runs in the foreground. (SIGKILL cannot be caught:
/// killing this process leaves the container to its monitor.)
fn forward_signals(root: RuntimeRoot, id: String) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let runtime = Runtime::new(root);
        while let Ok(signal) = set.wait() {
            if let Err(e) = runtime.kill(&id, signal, false) {
                tracing::warn!("forward {signal} to {id}: {e}");
            }
        }
    });
}

impl RunArgs {
    pub(crate) fn spec(&self) -> anyhow::Result<ContainerSpec> {
        let mut sysctls = std::collections::BTreeMap::new();
        for s in &self.sysctl {
            let (k, v) = flags::key_value("sysctl", s)?;
            sysctls.insert(k, v);
        }
        let mut rlimits = Vec::new();
        for u in &self.ulimit {
            let (name, limits) = flags::key_value("ulimit", u)?;
            let (soft, hard) = limits.split_once(':').unwrap_or((&limits, &limits));
            let parse = |v: &str| {
                v.parse::<u64>()
                    .with_context(|| format!("--ulimit {u:?}: {v:?} is not a number"))
            };
            rlimits.push(Rlimit {
                name,
                soft: parse(soft)?,
                hard: parse(hard)?,
            });
        }
        let mut mounts = Vec::new();
        for t in &self.tmpfs {
            let (dest, size) = match t.split_once(':') {
                Some((d, s)) => (
                    d,
                    Some(
                        s.parse::<u64>()
                            .with_context(|| format!("--tmpfs {t:?}: bad size"))?,
                    ),
                ),
                None => (t.as_str(), None),
            };
            mounts.push(Mount::Tmpfs {
                destination: dest.to_string(),
                size_bytes: size,
                options: vec![],
            });
        }
        for v in &self.volume {
            let parts: Vec<&str> = v.split(':').collect();
            let (src, dest, read_only) = match parts.as_slice() {
                [s, d] => (*s, *d, false),
                [s, d, "ro"] => (*s, *d, true),
                [s, d, "rw"] => (*s, *d, false),
                _ => bail!("--volume {v:?}: expected SRC:DEST[:ro]"),
            };
            mounts.push(Mount::Bind {
                source: PathBuf::from(src),
                destination: dest.to_string(),
                read_only,
            });
        }
        Ok(ContainerSpec {
            args: self.command.clone(),
            env: self.env.clone(),
            cwd: self.workdir.clone(),
            user: self.user.clone(),
            additional_groups: self.group_add.clone(),
            hostname: self.hostname.clone(),
            rlimits,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            read_only_root: self.read_only,
            privileged: self.privileged,
            no_new_privileges: self.no_new_privileges,
            sysctls,
            mounts,
            shm_size: self.shm_size,
            join_namespaces: self
                .net_ns
                .iter()
                .map(|p| NamespaceJoin {
                    kind: "network".into(),
                    path: p.clone(),
                })
                .collect(),
            host_namespaces: Vec::new(),
            resources: Resources {
                cpu_units: self.cpu,
                cpus: self.cpus,
                memory_mib: self.memory,
                memory_reservation_mib: self.memory_reservation,
                pids_limit: self.pids,
            },
            stop_signal: self.stop_signal.clone(),
        })
    }
}

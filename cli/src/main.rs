//! `berth`: the command line. It parses, calls the libraries, and prints.

mod agent_settings;
mod docs_cmd;
mod ecs;
mod flags;
mod image_cmd;
mod image_run;
mod output;
mod progress;
mod runtime_cmd;
mod serve_cmd;
mod system_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_orchestrator::store::{StoreConfig, StoreUrl, TlsFiles};
use berth_orchestrator::supervisor::{self, SupervisorArgs};
use berth_runtime::monitor::{self, MonitorArgs};
use berth_runtime::probe::{self, ProbeArgs};
use berth_runtime::sealed_exe;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// The heading of the flags every verb takes, apart from its own.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(name = "berth", version, about = "Amazon ECS on your own Linux hosts")]
struct Cli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: Command,
}

/// The flags every verb takes.
#[derive(clap::Args)]
struct Globals {
    /// Keep all of berth's state under DIR (runtime state in DIR/run).
    /// Default: /var/lib/berth, with runtime state in /run/berth.
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR", help_heading = GLOBAL)]
    root: Option<PathBuf>,

    /// The store: sqlite (default: DIR/state.db, this host's own),
    /// etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (shared by the cluster's
    /// hosts; PREFIX, default berth, keeps clusters apart), or etcds://...
    /// over TLS.
    #[arg(long, global = true, env = "BERTH_STORE", value_name = "URL", help_heading = GLOBAL)]
    store: Option<String>,

    /// etcds://: the CA that signed the etcd members' certificates.
    #[arg(long, global = true, env = "BERTH_STORE_CA", value_name = "FILE", help_heading = GLOBAL)]
    store_ca: Option<PathBuf>,

    /// etcds://: this client's certificate (with --store-key).
    #[arg(long, global = true, env = "BERTH_STORE_CERT", value_name = "FILE", help_heading = GLOBAL)]
    store_cert: Option<PathBuf>,

    /// etcds://: this client's private key (with --store-cert).
    #[arg(long, global = true, env = "BERTH_STORE_KEY", value_name = "FILE", help_heading = GLOBAL)]
    store_key: Option<PathBuf>,

    /// How the ECS verbs print their answer, as aws does: json, table
    /// or text.
    #[arg(long, global = true, value_enum, default_value_t = output::Format::Json, help_heading = GLOBAL)]
    output: output::Format,

    /// A JMESPath expression the ECS verbs apply to their answer before
    /// printing it, as aws's --query.
    #[arg(long, global = true, value_name = "JMESPATH", help_heading = GLOBAL)]
    query: Option<String>,

    /// Log filter (error, warn, info, debug, trace, or tracing directives).
    #[arg(
        long,
        global = true,
        env = "BERTH_LOG",
        default_value = "warn,libcgroups=error",
        help_heading = GLOBAL
    )]
    log_level: String,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Ecs(ecs::EcsCommand),
    /// Images: import, build from a directory, list, inspect, remove, prune.
    #[command(subcommand)]
    Image(image_cmd::ImageCommand),
    /// Host housekeeping.
    #[command(subcommand)]
    System(system_cmd::SystemCommand),
    /// Low-level OCI runtime verbs, for tests, benchmarks and debugging.
    #[command(subcommand)]
    Runtime(runtime_cmd::RuntimeCommand),
    /// Serve ECS's HTTP API (for aws --endpoint-url, boto3, Terraform)
    /// over this host's state, in the foreground.
    Serve(serve_cmd::ServeArgs),

    /// Print the shell completion script: bash, zsh or fish.
    Completion {
        /// The shell to complete berth's verbs and flags in.
        #[arg(value_enum)]
        shell: docs_cmd::Shell,
    },
    /// Print berth's man page (troff), or write every verb's into --dir.
    #[command(hide = true)]
    Man(docs_cmd::ManArgs),
}

/// The command tree: the derived one, with aws's `--cli-input-json` shown
/// on every ECS verb (`ecs::expand_cli_input_json` reads it before
/// parsing; run-task and register-task-definition declare their own).
fn command() -> clap::Command {
    let verbs = <ecs::EcsCommand as Subcommand>::augment_subcommands(clap::Command::new("ecs"));
    let mut cmd = Cli::command();
    for verb in verbs.get_subcommands() {
        let declared = verb
            .get_arguments()
            .any(|a| a.get_id().as_str() == "cli_input_json");
        if declared || verb.get_name() == "logs" {
            continue;
        }
        cmd = cmd.mut_subcommand(verb.get_name(), |c| {
            c.arg(
                clap::Arg::new("cli_input_json")
                    .long("cli-input-json")
                    .value_name("JSON")
                    .help(
                        "The request as aws takes it: JSON or file://PATH, each key \
                         the flag of its name (clusterName: --cluster-name); flags given \
                         as well win",
                    ),
            )
        });
    }
    cmd
}

/// [`Cli`] with the runtime verbs only. Building clap's whole tree, the
/// aws-shaped ECS verbs included, is most of the parsing a runtime verb
/// pays at every container start; this tree gives the same `runtime`
/// subcommand, flags and help (a test compares them).
#[derive(Parser)]
#[command(name = "berth", version, about = "Amazon ECS on your own Linux hosts")]
struct RuntimeCli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: RuntimeOnly,
}

#[derive(Subcommand)]
enum RuntimeOnly {
    /// Low-level OCI runtime verbs, for tests, benchmarks and debugging.
    #[command(subcommand)]
    Runtime(runtime_cmd::RuntimeCommand),
}

/// The global flags that take a value (`--root DIR`), read from
/// [`Globals`] itself so that a new one needs no second list here.
fn global_value_flags() -> Vec<String> {
    use clap::Args;
    Globals::augment_args(clap::Command::new("berth"))
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(|long| format!("--{long}")))
        .collect()
}

/// Whether the verb is `runtime`, after nothing but global flags: only
/// then does the small tree parse it.
fn names_a_runtime_verb(args: &[String]) -> bool {
    let value_flags = global_value_flags();
    let takes_value = |flag: &str| value_flags.iter().any(|f| f == flag);
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "runtime" {
            return true;
        }
        if takes_value(arg) {
            rest.next();
            continue;
        }
        let with_value = arg
            .split_once('=')
            .is_some_and(|(flag, _)| takes_value(flag));
        if !with_value {
            return false;
        }
    }
    false
}

/// Parse the command line (exits on an error or `--help`, as clap does).
fn parse(args: Vec<String>) -> Cli {
    if names_a_runtime_verb(&args) {
        let matches = RuntimeCli::command().get_matches_from(args);
        let cli = RuntimeCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let RuntimeOnly::Runtime(cmd) = cli.command;
        return Cli {
            globals: cli.globals,
            command: Command::Runtime(cmd),
        };
    }
    let matches = command().get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

impl Command {
    /// Verbs that run a process inside a container from this very process.
    fn enters_a_container(&self) -> bool {
        matches!(
            self,
            Command::Runtime(runtime_cmd::RuntimeCommand::Exec { .. })
                | Command::Ecs(ecs::EcsCommand::Exec { .. })
        )
    }
}

/// Where state lives, from `--root` and `--store`.
pub struct Roots {
    pub state: PathBuf,
    pub runtime: PathBuf,
    /// The store every verb (and every process it starts) opens.
    pub store: StoreConfig,
}

impl Roots {
    /// Create both roots 0700, and take any access for others away from
    /// existing ones: below them are environment secrets (state.db, bundle
    /// configs), logs, volumes, and image layers whose setuid binaries and
    /// device nodes no local user may reach (the CVE-2021-41091 class).
    /// Containers never need to traverse them: their root filesystems and
    /// volumes are mounted in as root, before they switch user.
    fn make_private(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        for dir in [&self.state, &self.runtime] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("create {}", dir.display()))?;
            let mode = std::fs::metadata(dir)
                .with_context(|| format!("stat {}", dir.display()))?
                .permissions()
                .mode();
            // Never take a shared directory (/, /tmp …) away from its users.
            if dir.parent().is_none() || mode & 0o1000 != 0 {
                anyhow::bail!(
                    "--root {}: a shared directory; give berth a directory of its own",
                    dir.display()
                );
            }
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("make {} private", dir.display()))?;
            }
        }
        Ok(())
    }

    /// What the orchestrator's reconcile needs to name a task's
    /// supervisor: these roots and the cgroup parent (BERTH_CGROUP_PARENT,
    /// default `berth`), and the pull behaviour of the host agent's
    /// settings (`ECS_IMAGE_PULL_BEHAVIOR`), which its supervisors follow.
    pub fn reconcile_config(&self) -> anyhow::Result<berth_orchestrator::reconcile::Config> {
        Ok(berth_orchestrator::reconcile::Config {
            state_root: self.state.clone(),
            runtime_root: self.runtime.clone(),
            cgroup_parent: std::env::var("BERTH_CGROUP_PARENT").unwrap_or_else(|_| "berth".into()),
            store: self.store.clone(),
            pull: agent_settings::load(None)?.config.image_pull_behavior,
        })
    }

    /// The store could not be opened: say which (an etcd store's error
    /// already names its URL).
    pub fn open_error(&self, e: berth_orchestrator::EcsError) -> anyhow::Error {
        match self.store.url {
            StoreUrl::Sqlite => {
                anyhow::anyhow!("open the store in {}: {e}", self.state.display())
            }
            StoreUrl::Etcd { .. } => anyhow::anyhow!("open the store: {e}"),
        }
    }

    fn new(root: Option<PathBuf>, store: StoreConfig) -> Self {
        Self {
            runtime: Self::runtime_of(root.as_deref()),
            state: root.unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
            store,
        }
    }

    /// The runtime root that goes with `--root` (none: the default).
    fn runtime_of(root: Option<&std::path::Path>) -> PathBuf {
        match root {
            Some(dir) => dir.join("run"),
            None => PathBuf::from("/run/berth"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(monitor_args) = MonitorArgs::from_args(&args) {
        // Its clone becomes the container's init: from the sealed copy.
        let sealed = sealed_exe::reexec_sealed(None);
        init_file_logging(&monitor_args.log_file());
        if let Err(e) = sealed {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
        return ExitCode::from(monitor::run(monitor_args).clamp(0, 255) as u8);
    }
    if let Some(probe_args) = ProbeArgs::from_args(&args) {
        if let Err(e) = sealed_exe::reexec_sealed(None) {
            eprintln!("berth: {e}");
            return ExitCode::from(125);
        }
        return ExitCode::from(probe::run(probe_args).clamp(0, 255) as u8);
    }
    if let Some(task_args) = SupervisorArgs::from_args(&args) {
        let task_args = match task_args {
            Ok(a) => a,
            Err(e) => {
                eprintln!("berth: the task supervisor's store: {e}");
                return ExitCode::from(1);
            }
        };
        init_file_logging(&task_args.log_file());
        let code = supervisor::run(task_args, ecs::partition());
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = match ecs::expand_cli_input_json(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cli = parse(args);
    match cli.command {
        Command::Completion { shell } => return exit(docs_cmd::completion(shell, command())),
        Command::Man(args) => return exit(docs_cmd::man(args, command())),
        _ => {}
    }
    let printer = match printer(&cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.command.enters_a_container() {
        // It forks the process that joins the container: from the sealed
        // copy its runtime root shares (as the supervisors and monitors
        // do), not a 28 MiB copy of its own per call.
        let runtime = Roots::runtime_of(cli.globals.root.as_deref());
        if let Err(e) = sealed_exe::reexec_sealed(Some(&runtime)) {
            eprintln!("berth: {e}");
            return ExitCode::from(1);
        }
    }
    let globals = cli.globals;
    init_logging(&globals.log_level);
    let tls = TlsFiles {
        ca: globals.store_ca,
        cert: globals.store_cert,
        key: globals.store_key,
    };
    let store = match StoreConfig::parse(globals.store.as_deref(), tls) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(2);
        }
    };
    let roots = Roots::new(globals.root, store);
    if let Err(e) = roots.make_private() {
        eprintln!("berth: {e:#}");
        return ExitCode::from(1);
    }
    let result = match cli.command {
        Command::Ecs(cmd) => ecs::run(cmd, &roots, &printer),
        Command::Image(cmd) => image_cmd::run(cmd, &roots),
        Command::System(cmd) => system_cmd::run(cmd, &roots),
        Command::Runtime(cmd) => runtime_cmd::run(cmd, &roots),
        Command::Serve(args) => serve_cmd::run(args, &roots),

        // Answered above, before any state is touched.
        Command::Completion { .. } | Command::Man(_) => Ok(0),
    };
    exit(result)
}

/// A verb's exit code, or 1 with its error.
fn exit(result: anyhow::Result<i32>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--output` and `--query`, the latter compiled before anything runs.
fn printer(cli: &Cli) -> anyhow::Result<output::Printer> {
    let query = match (&cli.globals.query, &cli.command) {
        (None, _) => None,
        (Some(q), Command::Ecs(_)) => Some(output::Query::compile(q)?),
        (Some(_), _) => anyhow::bail!("--query: only the ECS verbs take it"),
    };
    Ok(output::Printer {
        format: cli.globals.output,
        query,
    })
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Monitors and supervisors have no terminal: they log (with
/// libcontainer's errors) into a file.
fn init_file_logging(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    else {
        return;
    };
    // A plain level, not an EnvFilter: the monitor lives as long as its
    // container and should stay small.
    let level = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn only_runtime_verbs_take_the_small_tree() {
        for line in [
            "berth runtime run --bundle b --id x",
            "berth --root /r runtime list",
            "berth --root=/r --log-level debug runtime delete x",
            "berth runtime",
        ] {
            assert!(super::names_a_runtime_verb(&args(line)), "{line}");
        }
        for line in [
            "berth",
            "berth list-tasks",
            "berth --root /r image ls",
            "berth --help runtime",
            "berth --version",
            "berth help runtime",
            "berth --root runtime",
            "berth --bogus runtime list",
        ] {
            assert!(!super::names_a_runtime_verb(&args(line)), "{line}");
        }
    }

    #[test]
    fn the_global_flags_that_take_a_value_are_read_from_globals() {
        let mut flags = super::global_value_flags();
        flags.sort();
        assert_eq!(
            flags,
            [
                "--log-level",
                "--output",
                "--query",
                "--root",
                "--store",
                "--store-ca",
                "--store-cert",
                "--store-key"
            ]
        );
    }

    /// The small tree's `runtime` is the full tree's: the same verbs, flags
    /// and help, global flags included.
    #[test]
    fn the_small_tree_has_the_same_runtime_verbs_and_help() {
        fn helps(cmd: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
            let path = format!("{path} {}", cmd.get_name());
            out.push((path.clone(), cmd.render_long_help().to_string()));
            for sub in cmd.get_subcommands_mut() {
                helps(sub, &path, out);
            }
        }
        let mut full = super::command();
        full.build();
        let mut small = super::RuntimeCli::command();
        small.build();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        helps(
            full.find_subcommand_mut("runtime").expect("runtime"),
            "berth",
            &mut a,
        );
        helps(
            small.find_subcommand_mut("runtime").expect("runtime"),
            "berth",
            &mut b,
        );
        assert!(a.len() > 5);
        assert_eq!(a, b);
        // And the same command line parses to the same verb.
        let line = args("berth --root /r runtime run --id x --rootfs /x -- true");
        let cli = super::parse(line);
        assert_eq!(
            cli.globals.root.as_deref(),
            Some(std::path::Path::new("/r"))
        );
        assert!(matches!(cli.command, super::Command::Runtime(_)));
    }

    /// Every verb and every flag says what it is for (`--help`, the man
    /// page and the completions show it).
    #[test]
    fn every_verb_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, blank: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd
                .get_about()
                .is_none_or(|a| a.to_string().trim().is_empty())
            {
                blank.push(format!("{path}: no about"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    blank.push(format!("{path} {id}: no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, blank);
            }
        }
        let mut blank = Vec::new();
        walk(&super::command(), "", &mut blank);
        assert!(
            blank.is_empty(),
            "{} blank:\n{}",
            blank.len(),
            blank.join("\n")
        );
    }
}

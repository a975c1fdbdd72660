//! `berth serve`: ECS's HTTP API (AWS JSON 1.1) over this host's
//! orchestrator, so `aws ecs --endpoint-url`, boto3 and Terraform drive
//! the same state the CLI does. Foreground; SIGTERM or SIGINT stop it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use berth_api::auth::Auth;
use berth_api::server::{self, ServeOptions};
use berth_orchestrator::{reconcile, Ecs};

use crate::Roots;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port, printed on the
    /// ready line). Loopback by default: give another address to serve
    /// beyond this host.
    #[arg(long, default_value = "127.0.0.1:8086", value_name = "ADDR:PORT")]
    listen: SocketAddr,

    /// Requests with a larger body are refused (413).
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY, value_name = "N")]
    max_body_bytes: usize,

    /// none: any signature or none is accepted (clients still need dummy
    /// keys and a region, as with every local emulator); sigv4: only
    /// requests signed (SigV4) by a key of --credentials.
    #[arg(long, value_enum, default_value_t = AuthMode::None)]
    auth: AuthMode,

    /// With --auth sigv4: the access keys, as an AWS shared-credentials
    /// file ([profile] with aws_access_key_id and aws_secret_access_key),
    /// readable by its owner only (chmod 600).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate (chain) (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Do not run the services' scheduler in the server: leave the
    /// reconcile passes to the cluster's `berth agent`s (or to `berth
    /// reconcile`). By default the server runs one, taking turns with
    /// agents under each cluster's reconcile lease.
    #[arg(long)]
    no_scheduler: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    None,
    Sigv4,
}

/// `--auth` and `--credentials`, checked together.
fn auth(args: &ServeArgs) -> anyhow::Result<Auth> {
    match (args.auth, &args.credentials) {
        (AuthMode::None, None) => Ok(Auth::Any),
        (AuthMode::None, Some(_)) => {
            anyhow::bail!("--credentials: only with --auth sigv4 (--auth none checks no keys)")
        }
        (AuthMode::Sigv4, None) => {
            anyhow::bail!("--auth sigv4: needs --credentials FILE (the access keys to accept)")
        }
        (AuthMode::Sigv4, Some(file)) => Ok(Auth::sigv4_from_file(file)?),
    }
}

pub fn run(args: ServeArgs, roots: &Roots) -> anyhow::Result<i32> {
    if args.max_body_bytes == 0 {
        anyhow::bail!("--max-body-bytes: must be at least 1");
    }
    let mut opts = ServeOptions::new(args.listen);
    opts.max_body = args.max_body_bytes;
    // Files are checked before the store is opened: a typo fails fast.
    opts.auth = auth(&args)?;
    match &opts.auth {
        Auth::SigV4(keys) => tracing::info!(
            "checking SigV4 signatures against {} access keys",
            keys.len()
        ),
        Auth::Any if !args.listen.ip().is_loopback() => tracing::warn!(
            "--listen {} with --auth none: anyone who reaches it can run containers on this host",
            args.listen
        ),
        Auth::Any => {}
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        opts.tls = Some(berth_api::tls::server_config(cert, key)?);
    }
    // Opened here, outside the server's runtime: the etcd store runs its
    // own.
    let ecs = Ecs::open(&roots.state, &roots.store, crate::ecs::partition())
        .map_err(|e| roots.open_error(e))?;
    // One handle on the store for the server and its scheduler. (A
    // second `Ecs::open` once lost the WAL under this process: opening
    // SQLite's file again dropped the first connection's locks; see
    // `store/sqlite.rs` `make_private`.)
    let ecs = std::sync::Arc::new(ecs);
    let cfg = roots.reconcile_config()?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let scheduler = (!args.no_scheduler).then(|| {
            let (ecs, cfg, stop) = (ecs.clone(), cfg.clone(), &stop);
            std::thread::Builder::new()
                .name("berth-scheduler".into())
                .spawn_scoped(s, move || {
                    reconcile::schedule(&ecs, &cfg, reconcile::SCHEDULER_TICK, stop)
                })
        });
        let scheduler = match scheduler.transpose() {
            Ok(s) => s,
            Err(e) => return Err(anyhow::Error::new(e).context("start the scheduler's thread")),
        };
        let served = serve(ecs, cfg, opts);
        // Stopped (or failed to start): the scheduler ends its pass and
        // is joined before the process exits.
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = scheduler {
            if t.join().is_err() {
                tracing::warn!("the scheduler's thread panicked");
            }
        }
        served
    })
}

/// Serve until SIGTERM or SIGINT, printing the ready line.
fn serve(
    ecs: std::sync::Arc<Ecs>,
    cfg: reconcile::Config,
    opts: ServeOptions,
) -> anyhow::Result<i32> {
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let mut ready_err = None;
    server::serve(ecs, cfg, opts, |addr| {
        // The one line on stdout: tests and scripts read the port from it.
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "listening on {scheme}://{addr}").and_then(|_| out.flush()) {
            ready_err = Some(e);
        }
        tracing::info!("serving ECS's API on {scheme}://{addr}");
    })
    .context("berth serve")?;
    if let Some(e) = ready_err {
        tracing::warn!("print the ready line: {e}");
    }
    Ok(0)
}

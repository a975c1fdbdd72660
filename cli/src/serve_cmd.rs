//! `berth serve`: ECS's HTTP API (AWS JSON 1.1) over this host's
//! orchestrator, so `aws ecs --endpoint-url`, boto3 and Terraform drive
//! the same state the CLI does. Foreground; SIGTERM or SIGINT stop it.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use berth_api::server::{self, ServeOptions};
use berth_orchestrator::Ecs;

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
}

pub fn run(args: ServeArgs, roots: &Roots) -> anyhow::Result<i32> {
    if args.max_body_bytes == 0 {
        anyhow::bail!("--max-body-bytes: must be at least 1");
    }
    // Opened here, outside the server's runtime: the etcd store runs its
    // own.
    let ecs = Ecs::open(&roots.state, &roots.store, crate::ecs::partition())
        .map_err(|e| roots.open_error(e))?;
    let mut opts = ServeOptions::new(args.listen);
    opts.max_body = args.max_body_bytes;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let mut ready_err = None;
    server::serve(ecs, roots.reconcile_config(), opts, |addr| {
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

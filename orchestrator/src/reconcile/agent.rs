//! `berth agent`, one per host: it fences (stops here what the cluster
//! already stopped), takes its host's lease and registers the host as a
//! container instance; then, until stopped, it renews the lease from a
//! thread of its own (every third of its TTL, so a slow pass never lets it
//! lapse), starts the supervisors of tasks placed on its host (woken by a
//! watch on the cluster's tasks), and runs the reconcile passes (orphans,
//! lost hosts, services, load balancers).
//! Effects only; the rules it follows are in [`super::plan`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::gc;
use super::housekeeping;
use super::launch;
use super::plan::{self, AgentOptions, Config, CLAIM_PATIENCE, WATCH_EVERY};
use crate::{Ecs, EcsError, EcsResult};

/// Run the agent until `stop` says so (checked after each pass; the CLI's
/// agent runs until it is killed). A failed pass is logged and the loop
/// goes on; only failing to join the cluster at the start ends it.
pub fn agent(
    ecs: &Ecs,
    cfg: &Config,
    opts: &AgentOptions,
    stop: impl Fn() -> bool,
) -> EcsResult<()> {
    let renewed = join(ecs, cfg, opts)?;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let keeper = s.spawn(|| keep_alive(ecs, cfg, opts, renewed, &done));
        run(ecs, cfg, opts, &stop);
        done.store(true, Ordering::Relaxed);
        let _ = keeper.join();
    });
    Ok(())
}

/// Fencing: what runs on this host that the cluster already stopped (its
/// host lost, or stopped while this host was away) is stopped and
/// released here, as `system gc` does, before the host takes its lease.
pub fn fence(ecs: &Ecs, cfg: &Config, cluster: &str) -> EcsResult<gc::Report> {
    let mut report = gc::Report::default();
    gc::release_tasks(ecs, cluster, &|t| cfg.supervisor_args(t), &mut report)?;
    for f in &report.failed {
        tracing::warn!("fence {cluster}: {f}");
    }
    Ok(report)
}

/// Fence, take the lease, register: the host (re)joins `opts.cluster`.
/// When the lease was taken (just before the call that took it): fencing
/// may take long, and the lease lives from then on.
fn join(ecs: &Ecs, cfg: &Config, opts: &AgentOptions) -> EcsResult<Instant> {
    // The cluster must exist before anything is stopped in its name.
    ecs.cluster(Some(&opts.cluster)).map_err(|e| {
        EcsError::new(
            e.kind,
            format!("--cluster: {} (create it first)", e.message),
        )
    })?;
    let fenced = fence(ecs, cfg, &opts.cluster)?;
    if !fenced.tasks_finished.is_empty() || !fenced.released.is_empty() {
        tracing::warn!(
            "joining {}: stopped {} task(s) the cluster had stopped, released {} leftover(s)",
            opts.cluster,
            fenced.tasks_finished.len(),
            fenced.released.len()
        );
    }
    let taken = Instant::now();
    if !ecs.renew_agent_lease(&opts.cluster, opts.lease_ttl)? {
        return Err(EcsError::new(
            crate::ErrorKind::ServerException,
            format!(
                "cluster {}: another agent holds host {}'s lease (is host-id copied?)",
                opts.cluster,
                ecs.host_id()
            ),
        ));
    }
    ecs.register_agent_reserving(&opts.cluster, &opts.attributes, &opts.reserved)?;
    Ok(taken)
}

/// The lease's own thread: renew it every third of its TTL until `done`;
/// when no renewal succeeded for a whole TTL, the cluster may have counted
/// this host lost, so it fences and joins again.
fn keep_alive(
    ecs: &Ecs,
    cfg: &Config,
    opts: &AgentOptions,
    mut renewed: Instant,
    done: &AtomicBool,
) {
    let mut next = renewed + opts.renew_every();
    while !done.load(Ordering::Relaxed) {
        nap_until(next, done);
        if done.load(Ordering::Relaxed) {
            return;
        }
        // Measured from before the call: the store dates the lease from
        // the moment it gets the request, later than this.
        let at = Instant::now();
        // Start to start: a slow renewal (a loaded host, a busy store)
        // does not push the next one later.
        next = at + opts.renew_every();
        if plan::lapsed(at.duration_since(renewed), opts.lease_ttl) {
            tracing::warn!(
                "cluster {}: this host's lease lapsed; fencing before it rejoins",
                opts.cluster
            );
            match join(ecs, cfg, opts) {
                Ok(taken) => {
                    renewed = taken;
                    next = taken + opts.renew_every();
                }
                Err(e) => tracing::warn!("rejoin {}: {e}", opts.cluster),
            }
            continue;
        }
        match ecs.renew_agent_lease(&opts.cluster, opts.lease_ttl) {
            Ok(true) => renewed = at,
            Ok(false) => {
                tracing::warn!("cluster {}: another holds this host's lease", opts.cluster)
            }
            Err(e) => tracing::warn!("renew the lease in {}: {e}", opts.cluster),
        }
    }
}

/// Sleep until `until`, waking early once `done`.
fn nap_until(until: Instant, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Passes every `opts.interval` seconds; in between, the supervisors of
/// tasks newly placed on this host, as soon as the store's watch on the
/// cluster's tasks says something changed.
fn run(ecs: &Ecs, cfg: &Config, opts: &AgentOptions, stop: &impl Fn() -> bool) {
    let mut started: HashMap<String, Instant> = HashMap::new();
    // The first image collection one interval after the start, as ECS's.
    let mut images_due = Instant::now() + image_interval(opts);
    loop {
        // A store that is down fails this pass, not the agent: the next
        // one tries again (the lease's thread fences if it lapsed).
        if let Err(e) = pass(ecs, cfg, &opts.cluster) {
            tracing::warn!("agent pass: {e}");
        }
        housekeep(ecs, cfg, opts, &mut images_due);
        if stop() {
            return;
        }
        let next = Instant::now() + plan::agent_pause(opts.interval);
        while Instant::now() < next {
            if let Err(e) = watch_placed(ecs, cfg, &opts.cluster, &mut started, next) {
                tracing::warn!("start the tasks placed here in {}: {e}", opts.cluster);
                // The store is away: do not spin on it.
                std::thread::sleep(WATCH_EVERY.min(next.saturating_duration_since(Instant::now())));
            }
        }
    }
}

fn image_interval(opts: &AgentOptions) -> Duration {
    opts.housekeeping
        .images
        .as_ref()
        .map_or(Duration::MAX / 2, |i| i.interval)
}

/// Each pass: this host's STOPPED tasks of its cluster past their wait
/// removed; once `images_due`, an image collection.
fn housekeep(ecs: &Ecs, cfg: &Config, opts: &AgentOptions, images_due: &mut Instant) {
    let mut report = gc::Report::default();
    let args_for = |t: &crate::model::Task| cfg.supervisor_args(t);
    let wait = opts.housekeeping.task_cleanup_wait;
    if let Err(e) =
        housekeeping::remove_stopped_tasks(ecs, &opts.cluster, wait, &args_for, &mut report)
    {
        tracing::warn!("remove stopped tasks: {e}");
    }
    if let Some(images) = &opts.housekeeping.images {
        if Instant::now() >= *images_due {
            *images_due = Instant::now() + images.interval;
            if let Err(e) = housekeeping::collect_images(ecs, &cfg.state_root, images, &mut report)
            {
                tracing::warn!("image cleanup: {e}");
            }
        }
    }
    if !report.tasks_removed.is_empty() || !report.images_removed.is_empty() {
        tracing::info!(
            "housekeeping: removed task(s) {:?}, image(s) {:?}",
            report.tasks_removed,
            report.images_removed
        );
    }
    for f in &report.failed {
        tracing::warn!("housekeeping: {f}");
    }
}

/// Start what was placed here, then sleep until the cluster's tasks
/// change (or `until`).
fn watch_placed(
    ecs: &Ecs,
    cfg: &Config,
    cluster: &str,
    started: &mut HashMap<String, Instant>,
    until: Instant,
) -> EcsResult<()> {
    // Read before the tasks: a change after the read wakes the wait.
    let revision = ecs.store_revision()?;
    start_placed(ecs, cfg, cluster, started)?;
    let left = until.saturating_duration_since(Instant::now());
    ecs.wait_for_tasks(cluster, revision, left)?;
    Ok(())
}

/// Start a supervisor for each task of `cluster` placed on this host that
/// has none, unless one was started for it within [`CLAIM_PATIENCE`]
/// (`started`). A supervisor started twice is harmless: the second finds
/// the task claimed and exits.
fn start_placed(
    ecs: &Ecs,
    cfg: &Config,
    cluster: &str,
    started: &mut HashMap<String, Instant>,
) -> EcsResult<()> {
    started.retain(|_, at| at.elapsed() < CLAIM_PATIENCE);
    let waiting: Vec<_> = ecs
        .local_tasks(cluster)?
        .into_iter()
        .filter(plan::wants_supervisor)
        .filter(|t| !started.contains_key(t.id()))
        .collect();
    for t in &waiting {
        started.insert(t.id().to_string(), Instant::now());
    }
    launch(ecs, &waiting, |t| cfg.supervisor_args(t));
    Ok(())
}

/// One pass: over every cluster with services and the agent's own (whose
/// lost hosts' tasks stop even without a service), orphans recovered and
/// the cluster reconciled; then the load balancers' listeners.
fn pass(ecs: &Ecs, cfg: &Config, own: &str) -> EcsResult<()> {
    let mut clusters = ecs.clusters_with_services()?;
    if !clusters.iter().any(|c| c == own) {
        clusters.push(own.to_string());
    }
    super::scheduler::pass_clusters(ecs, cfg, &clusters);
    super::routes::sync_all(ecs, &crate::supervisor::bridge_locks(&cfg.runtime_root));
    ecs.compact_store();
    // Listeners come back after a reboot, used or not.
    if let Err(e) = ecs.sync_load_balancers(&ecs.load_balancer_names()?) {
        tracing::warn!("{e}");
    }
    Ok(())
}

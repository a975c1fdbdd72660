//! The services' scheduler as a loop of its own, for `berth serve`: an
//! ECS user pointing the AWS CLI at the server expects services to move
//! (tasks replaced, `runningCount` and deployments kept) with no
//! `berth agent` beside it. Each pass is the agent's service pass (orphans
//! recovered, each cluster with services reconciled under its lease, so
//! it takes turns with agents); between passes it sleeps until a record
//! changes (a service created, a task stopped or running) or the tick.
//! Effects only; it runs on a thread of its own, since the orchestrator
//! blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::plan::Config;
use super::{reconcile_and_launch, recover_orphans};
use crate::store::keys;
use crate::Ecs;

/// The tick: a pass at least this often, changes or not (a backing-off
/// service's retry, a lost host's lease expiring write no record).
pub const SCHEDULER_TICK: Duration = Duration::from_secs(2);

/// How long one wait on the store lasts before `stop` is checked again:
/// SIGTERM waits at most this long for the loop to end (after any pass
/// under way).
const STOP_CHECK: Duration = Duration::from_millis(500);

/// After a change wakes the loop, this long for the rest of a burst (a
/// service's tasks are created and started one commit after another),
/// so one pass sees it whole.
const SETTLE: Duration = Duration::from_millis(100);

/// Pass, then sleep until a change or `every`, until `stop` is set. A
/// failed pass (a store away, a cluster deleted under it) is logged; the
/// next one tries again.
pub fn schedule(ecs: &Ecs, cfg: &Config, every: Duration, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let clusters = match ecs.clusters_with_services() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("scheduler: list the clusters with services: {e}");
                Vec::new()
            }
        };
        pass_clusters(ecs, cfg, &clusters);
        ecs.compact_store();
        // Read after the pass, so that its own writes do not wake the
        // wait; a change made during the pass waits for the tick.
        let revision = match ecs.store_revision() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("scheduler: read the store's revision: {e}");
                None
            }
        };
        if nap(ecs, revision, Instant::now() + every, stop) {
            std::thread::sleep(SETTLE);
        }
    }
}

/// One service pass over `clusters`: each one's orphans recovered, then
/// reconciled if no other reconciler (an agent, a CLI verb) holds its
/// lease now; that one's pass does the same, so no waiting for it.
pub(super) fn pass_clusters(ecs: &Ecs, cfg: &Config, clusters: &[String]) {
    for c in clusters {
        if let Err(e) = recover_orphans(ecs, cfg, c) {
            tracing::warn!("recover the tasks of {c}: {e}");
        }
        if let Err(e) = reconcile_and_launch(ecs, c, Duration::ZERO, |t| cfg.supervisor_args(t)) {
            tracing::warn!("reconcile {c}: {e}");
        }
    }
}

/// Sleep until a record changes after `revision`, `until`, or `stop`:
/// true when a change woke it. Without a revision (the store away) it
/// sleeps to `until` in slices.
fn nap(ecs: &Ecs, revision: Option<u64>, until: Instant, stop: &AtomicBool) -> bool {
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let slice = left.min(STOP_CHECK);
        let Some(after) = revision else {
            std::thread::sleep(slice);
            continue;
        };
        match ecs.store.wait(keys::EVERYTHING, after, slice) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("scheduler: watch the store: {e}");
                std::thread::sleep(slice);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_stops_when_asked() {
        let (_dir, ecs, cfg) = crate::reconcile::tests::store();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let loop_ = s.spawn(|| schedule(&ecs, &cfg, Duration::from_secs(3600), &stop));
            stop.store(true, Ordering::Relaxed);
            loop_.join().expect("the scheduler ends");
        });
    }
}

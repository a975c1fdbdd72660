//! The etcd store's history: its revision now, a watch that sleeps until
//! records under a prefix change, and compaction of old revisions (etcd
//! keeps every revision until told to drop them).

use std::time::{Duration, Instant};

use etcd_client::{CompactionOptions, WatchOptions, WatchResponse};

use super::{plan, EtcdStore, Retry};
use crate::store::{StoreError, StoreResult};

/// What one watch stream said.
enum Heard {
    /// A change after the revision watched from (or history compacted
    /// past it: a change may have been missed, so say so).
    Changed,
    /// The stream ended or broke (its member lost): watch again.
    Broken(String),
    TimedOut,
}

impl EtcdStore {
    /// The store's revision now: any read's header carries it.
    pub(super) fn current_revision(&self) -> StoreResult<u64> {
        // A key of the store's own namespace that no record has.
        let probe = self.layout.lease("");
        let resp = self.run("revision", Retry::Read, |c| {
            let probe = probe.clone();
            async move { c.kv_client().get(probe, None).await }
        })?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        u64::try_from(revision).map_err(|_| self.backend("revision", "a negative revision"))
    }

    /// [`crate::store::Store::wait`] on a watch from `after + 1`: changes
    /// since `after` arrive at once, later ones as they come. A broken
    /// stream (a member lost) is watched again from the same revision,
    /// so nothing is missed.
    pub(super) fn wait_for_change(
        &self,
        prefix: &str,
        after: u64,
        timeout: Duration,
    ) -> StoreResult<bool> {
        let key = self.layout.record(prefix);
        let start = i64::try_from(after.saturating_add(1)).unwrap_or(i64::MAX);
        let deadline = Instant::now() + timeout;
        loop {
            match self.watch_once(&key, start, deadline)? {
                Heard::Changed => return Ok(true),
                Heard::TimedOut => return Ok(false),
                // Watch again (a dead etcd fails making the watch, so
                // this ends); the pause keeps a flapping member from
                // spinning it.
                Heard::Broken(why) => {
                    tracing::debug!("{}: watch again: {why}", self.name);
                    std::thread::sleep(super::RETRY_PAUSE);
                }
            }
        }
    }

    fn watch_once(&self, key: &str, start: i64, deadline: Instant) -> StoreResult<Heard> {
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let mut stream = self.run("watch", Retry::Read, |c| {
            let (key, options) = (key.to_string(), options.clone());
            async move { c.watch_client().watch(key, Some(options)).await }
        })?;
        let until = tokio::time::Instant::from_std(deadline);
        self.runtime.block_on(async {
            loop {
                let message = match tokio::time::timeout_at(until, stream.message()).await {
                    Err(_) => return Ok(Heard::TimedOut),
                    Ok(Ok(Some(message))) => message,
                    Ok(Ok(None)) => return Ok(Heard::Broken("the stream ended".into())),
                    Ok(Err(e)) => return Ok(Heard::Broken(e.to_string())),
                };
                if let Some(heard) = self.heard(&message)? {
                    return Ok(heard);
                }
            }
        })
    }

    /// What a watch response means; None for one that says nothing yet
    /// (the watch's creation).
    fn heard(&self, message: &WatchResponse) -> StoreResult<Option<Heard>> {
        if !message.events().is_empty() || message.compact_revision() > 0 {
            return Ok(Some(Heard::Changed));
        }
        if message.canceled() {
            return Err(self.backend("watch", message.cancel_reason()));
        }
        Ok(None)
    }

    /// Compact etcd's history up to `revision`: older revisions are gone
    /// (reads and watches of them fail as compacted), newer ones stay. A
    /// revision already compacted is no error (another host did it).
    pub fn compact_to(&self, revision: u64) -> StoreResult<()> {
        let revision = i64::try_from(revision).unwrap_or(i64::MAX);
        let result = self.run("compact", Retry::Read, |c| async move {
            c.kv_client()
                .compact(revision, Some(CompactionOptions::new()))
                .await
        });
        match result {
            Ok(_) => Ok(()),
            Err(StoreError::Backend(why)) if why.contains("compacted") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// [`crate::store::Store::compact`]: when the policy says it is due,
    /// compact to the revision noted a period ago and note the current one.
    pub(super) fn compact_when_due(&self) -> StoreResult<Option<u64>> {
        let mut policy = self
            .compaction
            .lock()
            .map_err(|_| self.backend("compact", "lock poisoned"))?;
        let now = Instant::now();
        if !policy.due(now) {
            return Ok(None);
        }
        let current = self.current_revision()?;
        let to = policy.advance(now, current);
        if let Some(revision) = to {
            self.compact_to(revision)?;
        }
        Ok(to)
    }

    /// Compact every `period` rather than every 5 minutes
    /// (tests).
    pub fn with_compaction_every(self, period: Duration) -> Self {
        if let Ok(mut policy) = self.compaction.lock() {
            *policy = plan::Compaction::new(period);
        }
        self
    }
}

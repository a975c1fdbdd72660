//! Housekeeping: reservations left behind, the listings the reconciler
//! and `system gc` walk, and usage.

use serde_json::Value;

use super::{decode, Ecs};
use crate::error::EcsResult;
use crate::model::Task;
use crate::store::{keys, Expect, Op, StoreError};

impl Ecs {
    /// True while any task, of any cluster, holds an address on `bridge`,
    /// or this host routes a slice of it (a network across hosts: the
    /// agent keeps the bridge, its gateway and its routes while the host
    /// is in the cluster).
    pub fn addresses_in_use(&self, bridge: &str) -> EcsResult<bool> {
        Ok(!self.store.list(&keys::ips_of(bridge))?.is_empty() || self.routes_slice(bridge)?)
    }
    /// Address and host-port reservations whose task is gone or STOPPED
    /// (left by a crash between steps): released. Returns the keys freed.
    pub fn gc_reservations(&self) -> EcsResult<Vec<String>> {
        let mut freed = Vec::new();
        for prefix in keys::RESERVATIONS {
            for (key, rec) in self.store.list(prefix)? {
                let holder = String::from_utf8_lossy(&rec.value).to_string();
                let Some(keys::Holder::Task { cluster, task_id }) = keys::Holder::parse(&holder)
                else {
                    continue;
                };
                let live = match self.store.get(&keys::task(cluster, task_id))? {
                    Some(t) => !decode::<Task>(&t.value)?.is_stopped(),
                    None => false,
                };
                if !live {
                    let op = Op::Delete {
                        key: key.clone(),
                        expect: Expect::Revision(rec.revision),
                    };
                    match self.store.commit(&[op]) {
                        Ok(_) | Err(StoreError::Conflict(_)) => freed.push(key),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(freed)
    }

    /// The host ports (protocol, port) some task holds, on any host.
    pub fn reserved_host_ports(&self) -> EcsResult<std::collections::BTreeSet<(String, u16)>> {
        Ok(self
            .store
            .list(keys::PORTS)?
            .into_iter()
            .filter_map(|(k, _)| {
                let p = keys::parse_port(&k)?;
                Some((p.protocol.to_string(), p.port))
            })
            .collect())
    }

    /// Every task of `cluster`.
    pub fn all_tasks(&self, cluster: &str) -> EcsResult<Vec<Task>> {
        self.store
            .list(&keys::tasks_of(cluster))?
            .into_iter()
            .map(|(_, rec)| decode::<Task>(&rec.value))
            .collect()
    }

    pub fn cluster_names(&self) -> EcsResult<Vec<String>> {
        Ok(self
            .store
            .list(keys::CLUSTERS)?
            .into_iter()
            .filter_map(|(k, _)| keys::cluster_name(&k).map(str::to_string))
            .collect())
    }

    /// FARGATE usage as AWS bills it: vCPU-seconds and GiB-seconds of the
    /// task-level sizes, from start to stop (or now).
    pub fn usage(&self, cluster: Option<&str>) -> EcsResult<Value> {
        let cluster = self.cluster(cluster)?;
        let tasks: Vec<Task> = self
            .store
            .list(&keys::tasks_of(&cluster.cluster_name))?
            .into_iter()
            .map(|(_, rec)| decode(&rec.value))
            .collect::<EcsResult<_>>()?;
        Ok(super::metering::usage_of(&tasks, chrono::Utc::now()))
    }

    /// Compact the store's history when due (etcd: at most every few
    /// minutes, keeping that much; SQLite keeps none). The agent's pass
    /// calls it; a failure is logged, the next pass tries again.
    pub fn compact_store(&self) {
        match self.store.compact() {
            Ok(Some(revision)) => tracing::info!("store compacted to revision {revision}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("compact the store: {e}"),
        }
    }
}

impl Ecs {
    /// Remove `task`'s record once it is STOPPED (ECS forgets a stopped
    /// task some time after it stopped: describe-tasks then answers
    /// MISSING). Only the record as read: a task changed meanwhile is kept
    /// for the next pass. True: removed.
    pub fn remove_stopped_task(&self, cluster: &str, task_id: &str) -> EcsResult<bool> {
        let key = keys::task(cluster, task_id);
        let Some(rec) = self.store.get(&key)? else {
            return Ok(false);
        };
        if !decode::<Task>(&rec.value)?.is_stopped() {
            return Ok(false);
        }
        let op = Op::Delete {
            key,
            expect: Expect::Revision(rec.revision),
        };
        match self.store.commit(&[op]) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The images the tasks of this host that are not STOPPED use, in
    /// every cluster: image cleanup never removes one.
    pub fn local_images_in_use(&self) -> EcsResult<std::collections::BTreeSet<String>> {
        let mut used = std::collections::BTreeSet::new();
        for cluster in self.cluster_names()? {
            for task in self.local_tasks(&cluster)? {
                if !task.is_stopped() {
                    used.extend(task.containers.iter().map(|c| c.image.clone()));
                }
            }
        }
        Ok(used)
    }
}

//! The task metadata endpoint (v4) of this task: 169.254.170.2 put on
//! `lo` of the task's network namespace (awsvpc, none) or of each
//! container's (bridge), its port 80 redirected there to the listener's
//! (so that a container may bind 0.0.0.0:80), and the URIs each
//! container is told. A host-mode task is served on the host's loopback.
//! Kernel work only: the answers are `metadata::json`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_rootfs::image::Image;
use berth_runtime::ContainerState;

use super::error::TaskError;
use super::Supervisor;
use crate::containerize::TaskContext;
use crate::metadata::server::{self, Place};
use crate::metadata::{ContainerTimes, Snapshot};
use crate::model::{Task, TaskDefinition, TaskStatus};

/// The environment variables that name the endpoint, as the agent sets
/// them: v4's and v3's URIs for container `runtime_id`.
pub(super) fn uris(base: &str, runtime_id: &str) -> Vec<String> {
    vec![
        format!("ECS_CONTAINER_METADATA_URI_V4={base}/v4/{runtime_id}"),
        format!("ECS_CONTAINER_METADATA_URI={base}/v3/{runtime_id}"),
    ]
}

impl Supervisor<'_> {
    /// Serve the endpoint where the task's containers will run, before any
    /// starts: each is told where it is ([`uris`]).
    pub(super) fn serve_metadata(
        &mut self,
        task: &Task,
        td: &TaskDefinition,
        images: &BTreeMap<String, Image>,
        ctx: &TaskContext,
    ) -> Result<(), TaskError> {
        let places = places(ctx);
        let host_mode = matches!(places.as_slice(), [Place::HostLoopback]);
        let credentials = self.task_credentials(td, host_mode)?;
        let snapshot = Snapshot {
            task: task.clone(),
            definition: td.clone(),
            image_ids: images
                .iter()
                .map(|(name, i)| (name.clone(), i.manifest.config.digest.to_string()))
                .collect(),
            availability_zone: self.availability_zone(task),
            cgroup_parent: self.cgroup.clone(),
            credentials,
            times: BTreeMap::new(),
        };
        let shared = Arc::new(Mutex::new(snapshot));
        self.metadata = Some(shared.clone());
        for place in places {
            let base = serve_at(place, &shared).map_err(|e| {
                TaskError::ResourceInitialization(format!("task metadata endpoint: {e}"))
            })?;
            self.metadata_base = Some(base);
        }
        Ok(())
    }

    /// A supervisor adopting a running task: its endpoint, which died with
    /// the last supervisor, served again in the namespaces it had (the
    /// containers keep the URIs they were started with). Host mode is not
    /// served again: its port was the dead supervisor's.
    pub(super) fn serve_metadata_again(&mut self, task: &Task, td: &TaskDefinition) {
        let mut places: Vec<PathBuf> = td
            .container_definitions
            .iter()
            .map(|d| self.args.container_ns_dir(&d.name).join("network"))
            .filter(|p| p.exists())
            .collect();
        if places.is_empty() {
            let task_ns = self.namespaces.as_ref().and_then(|n| n.path("network"));
            places.extend(task_ns);
        }
        let shared = Arc::new(Mutex::new(Snapshot {
            task: task.clone(),
            definition: td.clone(),
            image_ids: BTreeMap::new(),
            availability_zone: self.availability_zone(task),
            cgroup_parent: self.cgroup.clone(),
            credentials: self.task_credentials_again(td),
            times: self.adopted_times(td),
        }));
        self.metadata = Some(shared.clone());
        for netns in places {
            if let Err(e) = serve_at(Place::Namespace(netns), &shared) {
                tracing::warn!("task {}: metadata endpoint: {e}", self.args.task_id);
            }
        }
    }

    /// The task role's credentials URI, if it has a role (beside
    /// [`uris`], which name the metadata endpoint).
    pub(super) fn credentials_env(&self) -> Vec<String> {
        let uri = self.metadata.as_ref().and_then(|s| {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            s.credentials.as_ref().map(|p| p.relative_uri())
        });
        uri.map(|u| format!("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI={u}"))
            .into_iter()
            .collect()
    }

    /// An adopted task's containers' times, from the runtime's states.
    fn adopted_times(&self, td: &TaskDefinition) -> BTreeMap<String, ContainerTimes> {
        td.container_definitions
            .iter()
            .filter_map(|d| {
                let id = crate::names::runtime_id(&self.args.task_id, &d.name);
                let state = self.runtime.state(&id).ok()?;
                Some((d.name.clone(), times(&state)))
            })
            .collect()
    }

    /// Container `name` is being started: the endpoint says RUNNING from
    /// now, since the container may ask before its start is recorded.
    pub(super) fn publish_starting(&self, name: &str) {
        if let Some(shared) = &self.metadata {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = s.task.containers.iter_mut().find(|c| c.name == name) {
                c.last_status = TaskStatus::Running;
            }
        }
    }

    /// Container `name`'s own times, from the runtime's state of
    /// `runtime_id` (once started).
    pub(super) fn publish_times(&self, name: &str, runtime_id: &str) {
        let (Some(shared), Ok(state)) = (&self.metadata, self.runtime.state(runtime_id)) else {
            return;
        };
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.times.insert(name.to_string(), times(&state));
    }

    /// Container `name` ended at `at`.
    pub(super) fn publish_finished(&self, name: &str, at: chrono::DateTime<chrono::Utc>) {
        if let Some(shared) = &self.metadata {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = s.times.get_mut(name) {
                t.finished_at = Some(rfc3339(at));
            }
        }
    }

    /// The endpoint's view of the task, after each write of its record.
    pub(super) fn publish(&self, task: &Task) {
        if let Some(shared) = &self.metadata {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            s.task = task.clone();
        }
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A container's times as the endpoint shows them.
fn times(state: &ContainerState) -> ContainerTimes {
    ContainerTimes {
        created_at: rfc3339(state.created_at),
        started_at: state.started_at.map(rfc3339),
        finished_at: state.exit.as_ref().map(|e| rfc3339(e.finished_at)),
    }
}

/// Where the listeners go: each container's namespace (bridge), else the
/// task's, else (host mode) the host's loopback.
fn places(ctx: &TaskContext) -> Vec<Place> {
    let own: Vec<Place> = ctx
        .per_container
        .values()
        .filter_map(|o| o.0.clone())
        .map(Place::Namespace)
        .collect();
    if !own.is_empty() {
        return own;
    }
    match &ctx.network_ns {
        Some(ns) => vec![Place::Namespace(ns.clone())],
        None => vec![Place::HostLoopback],
    }
}

/// A listener at `place` (in a namespace: with the address on its `lo`
/// and port 80 redirected to it); its base URI.
fn serve_at(place: Place, shared: &server::Shared) -> Result<String, String> {
    server::start(place, shared.clone()).map_err(|e| format!("listen: {e}"))
}

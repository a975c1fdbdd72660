//! Start: containers in `dependsOn` order, each once its dependencies
//! allow it ([`rules::dependency_gate`]), created and started by the
//! runtime, its exit and health then watched.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_rootfs::image::Image;
use berth_rootfs::snapshot::Snapshotter;
use berth_runtime::spec::ContainerSpec;
use berth_runtime::{CreateOptions, Source};

use super::error::{StopCause, TaskError};
use super::rules::{self, Gate};
use super::{endpoint, events, Running, Supervisor};
use crate::containerize::{container_spec, merge_env, overrides_for, TaskContext};
use crate::model::{ContainerDefinition, HealthStatus, Task, TaskDefinition};
use crate::names;

impl Supervisor<'_> {
    /// Start every container of `td` in `dependsOn` order; false if the
    /// task stopped first (a stop request, a dependency that failed).
    pub(super) fn start_containers(
        &mut self,
        td: &TaskDefinition,
        images: &BTreeMap<String, Image>,
        task: &Task,
        ctx: &TaskContext,
    ) -> Result<bool, TaskError> {
        for def in rules::start_order(&td.container_definitions) {
            if !self.wait_for_dependencies(def)? {
                return Ok(false);
            }
            self.start_container(def, &images[&def.name], task, ctx)?;
        }
        Ok(true)
    }

    /// Wait until `def`'s dependencies allow it to start; false if the task
    /// stops first.
    fn wait_for_dependencies(&mut self, def: &ContainerDefinition) -> Result<bool, TaskError> {
        loop {
            let gate =
                rules::dependency_gate(def, |name| self.running.get(name).map(Running::seen));
            match gate {
                Gate::Ready => return Ok(true),
                Gate::Fail(e) => {
                    self.request_stop(StopCause::Failed(e));
                    return Ok(false);
                }
                Gate::Wait => {}
            }
            self.step()?;
            if self.stopping {
                return Ok(false);
            }
        }
    }

    fn start_container(
        &mut self,
        def: &ContainerDefinition,
        image: &Image,
        task: &Task,
        ctx: &TaskContext,
    ) -> Result<(), TaskError> {
        let create = TaskError::CannotCreateContainer;
        let ov = overrides_for(&task.overrides, &def.name);
        let mut spec = container_spec(def, &image.config.config, &ov, ctx)
            .map_err(|e| create(e.to_string()))?;
        let runtime_id = names::runtime_id(&self.args.task_id, &def.name);
        if let Some(base) = &self.metadata_base {
            spec.env = merge_env(&spec.env, &endpoint::uris(base, &runtime_id));
        }
        spec.env = merge_env(&spec.env, &self.credentials_env());
        let images = self
            .images
            .as_ref()
            .ok_or_else(|| create("no image store".into()))?;
        let snapshot = Snapshotter::new(images)
            .prepare(&runtime_id, image)
            .map_err(|e| create(format!("container {}: {e}", def.name)))?;
        let log_path = self.container_log_path(def).map_err(create)?;
        let launch = Launch {
            def: def.clone(),
            spec,
            rootfs: snapshot.rootfs,
            log_path,
        };
        self.launch(&runtime_id, &launch)
            .map_err(|message| TaskError::CannotStartContainer {
                container: def.name.clone(),
                message,
            })?;
        let health = self.start_health_watch(def, &runtime_id, HealthStatus::Unknown);
        let mut running = Running::new(def, &runtime_id, health);
        // Kept to restart it in place, with the same root filesystem.
        running.launch = def
            .restart_policy
            .as_ref()
            .filter(|p| p.enabled)
            .map(|_| Box::new(launch));
        if let Some(launch) = &running.launch {
            // Without it a successor only watches the container.
            if let Err(e) = super::launch_record::save(&self.args.task_dir(), &def.name, launch) {
                tracing::warn!(
                    "task {}: keep {}'s launch: {e}",
                    self.args.task_id,
                    def.name
                );
            }
        }
        self.running.insert(def.name.clone(), running);
        self.record_container_started(&def.name, &runtime_id);
        self.publish_times(&def.name, &runtime_id);
        Ok(())
    }

    /// Create and start container `runtime_id` from `launch`, its exit
    /// watched.
    pub(super) fn launch(&self, runtime_id: &str, launch: &Launch) -> Result<(), String> {
        let (log_max_size, log_max_files) =
            crate::log_drivers::rotation(launch.def.log_configuration.as_ref());
        let log_forward = self.log_forward(&launch.def, runtime_id)?;
        let opts = CreateOptions {
            cgroup_parent: self.cgroup.clone(),
            cgroup_name: Some(launch.def.name.clone()),
            log_path: Some(launch.log_path.clone()),
            log_max_size,
            log_max_files,
            log_forward,
            start: true,
            ..Default::default()
        };
        self.publish_starting(&launch.def.name);
        let created = self
            .runtime
            .create(
                runtime_id,
                Source::Spec {
                    rootfs: &launch.rootfs,
                    spec: &launch.spec,
                },
                &opts,
            )
            .map_err(|e| e.to_string())?;
        events::watch_started(created.exit, launch.def.name.clone(), self.events.0.clone());
        Ok(())
    }
}

/// What a container is started from: enough to start it again (kept on
/// disk for a successor, [`super::launch_record`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Launch {
    pub def: ContainerDefinition,
    pub spec: ContainerSpec,
    pub rootfs: PathBuf,
    pub log_path: PathBuf,
}

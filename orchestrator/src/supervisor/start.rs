//! Start: containers in `dependsOn` order, each once its dependencies
//! allow it.

use berth_rootfs::image::Image;
use berth_rootfs::snapshot::Snapshotter;
use berth_runtime::{CreateOptions, Source};

use super::{Event, Running, Supervisor, SupervisorArgs};
use crate::containerize::{container_spec, overrides_for, TaskContext};
use crate::model::{
    ContainerCondition, ContainerDefinition, HealthStatus, StopCode, Task, TaskStatus,
};
use crate::names;

impl Supervisor<'_> {
    /// Wait until `def`'s dependencies allow it to start; false if the task
    /// stops first.
    pub(super) fn wait_for_dependencies(
        &mut self,
        def: &ContainerDefinition,
    ) -> Result<bool, String> {
        loop {
            let mut ready = true;
            for d in &def.depends_on {
                let dep = self.running.get(&d.container_name);
                match (&d.condition, dep.and_then(|r| r.exit.as_ref())) {
                    (ContainerCondition::Start, _) => ready &= dep.is_some(),
                    (ContainerCondition::Complete, exit) => ready &= exit.is_some(),
                    (ContainerCondition::Success, Some(e)) if e.exit_code != 0 => {
                        let reason = format!(
                            "Dependency {} exited with code {} (condition SUCCESS for {})",
                            d.container_name, e.exit_code, def.name
                        );
                        self.request_stop(StopCode::TaskFailedToStart, &reason);
                        return Ok(false);
                    }
                    (ContainerCondition::Success, exit) => ready &= exit.is_some(),
                    (ContainerCondition::Healthy, exit) => {
                        let health = dep.and_then(|r| r.health.as_ref()).map(|h| &h.status);
                        if exit.is_some() || health == Some(&HealthStatus::Unhealthy) {
                            let reason = format!(
                                "Dependency {} did not become HEALTHY (condition HEALTHY for {})",
                                d.container_name, def.name
                            );
                            self.request_stop(StopCode::TaskFailedToStart, &reason);
                            return Ok(false);
                        }
                        ready &= health == Some(&HealthStatus::Healthy);
                    }
                    _ => ready &= dep.is_some(),
                }
            }
            if ready {
                return Ok(true);
            }
            self.step()?;
            if self.stopping {
                return Ok(false);
            }
        }
    }

    pub(super) fn start_container(
        &mut self,
        def: &ContainerDefinition,
        image: &Image,
        task: &Task,
        ctx: &TaskContext,
    ) -> Result<(), String> {
        let ov = overrides_for(&task.overrides, &def.name);
        let spec =
            container_spec(def, &image.config.config, &ov, ctx).map_err(|e| e.to_string())?;
        let runtime_id = names::runtime_id(&self.args.task_id, &def.name);
        let images = self.images.as_ref().ok_or("no image store")?;
        let snapshot = Snapshotter::new(images)
            .prepare(&runtime_id, image)
            .map_err(|e| format!("container {}: {e}", def.name))?;
        let log_path =
            SupervisorArgs::container_log(&self.args.state_root, &self.args.task_id, &def.name)
                .map_err(|e| format!("container {}: {e}", def.name))?;
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let opts = CreateOptions {
            cgroup_parent: self.cgroup.clone(),
            cgroup_name: Some(def.name.clone()),
            log_path: Some(log_path),
            start: true,
            ..Default::default()
        };
        let created = self
            .runtime
            .create(
                &runtime_id,
                Source::Spec {
                    rootfs: &snapshot.rootfs,
                    spec: &spec,
                },
                &opts,
            )
            .map_err(|e| format!("CannotStartContainerError: container {}: {e}", def.name))?;
        let tx = self.events.0.clone();
        let name = def.name.clone();
        std::thread::spawn(move || {
            let exit = created.exit.wait().ok().flatten();
            let _ = tx.send(Event::Exited(name, exit));
        });
        let health = self.start_health_watch(def, &runtime_id, HealthStatus::Unknown);
        self.running
            .insert(def.name.clone(), Running::new(def, &runtime_id, health));
        self.set_container(&def.name, |c| {
            c.last_status = TaskStatus::Running;
            c.runtime_id = Some(runtime_id.clone());
        });
        Ok(())
    }
}

/// Containers in an order where each comes after those it depends on.
pub(super) fn start_order(defs: &[ContainerDefinition]) -> Vec<&ContainerDefinition> {
    let mut out: Vec<&ContainerDefinition> = Vec::new();
    let mut left: Vec<&ContainerDefinition> = defs.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|c| {
            let ready = c
                .depends_on
                .iter()
                .all(|d| out.iter().any(|o| o.name == d.container_name));
            if ready {
                out.push(c);
            }
            !ready
        });
        if left.len() == before {
            // Registration refuses cycles; keep the rest in order anyway.
            out.append(&mut left);
        }
    }
    out
}

//! A task definition as `register-task-definition` takes it, through
//! registration's rules, `containerize` and the runtime's OCI spec: never a
//! panic, and every definition registration accepts yields, for each of its
//! containers and each launch type run-task allows it, a valid OCI spec
//! that keeps the task inside its sandbox: bind mounts come from the task's
//! own directory (or, outside Fargate, a host volume), and a Fargate
//! container is neither privileged nor given capabilities, namespaces or
//! sysctls beyond what ECS allows on Fargate. A definition registration
//! refuses is also run through the supervisor's own checks (as if written
//! to the store directly): those alone must keep it in the sandbox.

#![no_main]

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use berth_orchestrator::containerize::{
    container_spec, overrides_for, volume_dirs, TaskContext, VolumeDir,
};
use berth_orchestrator::model::{LaunchType, NetworkMode, TaskDefinition};
use berth_orchestrator::names;
use berth_orchestrator::taskdef::{check_launch, prepare};
use berth_rootfs::image::ContainerConfig;
use berth_runtime::{ContainerSpec, Mount};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const TASK_DIR: &str = "/run/berth-fuzz/tasks/0123456789abcdef";

struct Fixture {
    /// A root filesystem with the users the seeds name.
    rootfs: tempfile::TempDir,
    /// Stands in for every bind mount's source once checked (the runtime
    /// wants sources that exist; the fuzzer must not create directories
    /// named by its input).
    placeholder: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rootfs = tempfile::Builder::new()
            .prefix("berth-fuzz-rootfs-")
            .tempdir()
            .expect("rootfs");
        std::fs::create_dir(rootfs.path().join("etc")).expect("etc");
        std::fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(
            rootfs.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\n",
        )
        .expect("group");
        let placeholder = tempfile::Builder::new()
            .prefix("berth-fuzz-volume-")
            .tempdir()
            .expect("placeholder");
        Fixture {
            rootfs,
            placeholder,
        }
    })
}

/// The task's volumes and namespaces as the supervisor makes them
/// (`containerize::volume_dirs`, supervisor.rs `prepare_task`), without touching the
/// disk; `None` where the supervisor refuses the volumes. Returns the
/// context and the host paths of host volumes.
fn context(td: &TaskDefinition, launch_type: &LaunchType) -> Option<(TaskContext, Vec<PathBuf>)> {
    let task_dir = Path::new(TASK_DIR);
    let mut volumes = BTreeMap::new();
    let mut host_sources = Vec::new();
    for (name, dir) in volume_dirs(td, launch_type, &task_dir.join("volumes")).ok()? {
        let path = match dir {
            VolumeDir::Host(p) => {
                host_sources.push(p.clone());
                p
            }
            VolumeDir::Scratch(p) => p,
        };
        volumes.insert(name, path);
    }
    let host_network = td.network_mode == Some(NetworkMode::Host);
    let bridge = td.network_mode == Some(NetworkMode::Bridge);
    let own_ns = || Some(PathBuf::from("/proc/self/ns/net"));
    let per_container = if bridge {
        td.container_definitions
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    (
                        own_ns(),
                        Some("/proc/self/ns/ipc".into()),
                        Some("/proc/self/ns/uts".into()),
                    ),
                )
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let ctx = TaskContext {
        per_container,
        hostname: "0123456789ab".into(),
        network_ns: if host_network { None } else { own_ns() },
        ipc_ns: Some("/proc/self/ns/ipc".into()),
        uts_ns: Some("/proc/self/ns/uts".into()),
        volumes,
        mount_points: berth_orchestrator::containerize::mount_points(td),
        etc_files: vec![
            (task_dir.join("etc/hosts"), "/etc/hosts".into()),
            (task_dir.join("etc/resolv.conf"), "/etc/resolv.conf".into()),
        ],
        extra_env: Default::default(),
    };
    Some((ctx, host_sources))
}

/// `path` is `base/NAME` for one plain NAME: it cannot leave `base`.
fn is_child_of(path: &Path, base: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(base) else {
        return false;
    };
    let parts: Vec<Component> = rest.components().collect();
    matches!(parts.as_slice(), [Component::Normal(_)])
        && !rest.as_os_str().as_encoded_bytes().contains(&b'/')
}

fn check_container_spec(
    spec: &ContainerSpec,
    fargate: bool,
    ctx: &TaskContext,
    host_sources: &[PathBuf],
    name: &str,
) {
    let task_dir = Path::new(TASK_DIR);
    for m in &spec.mounts {
        let Mount::Bind { source, .. } = m else {
            continue;
        };
        let etc = ctx.etc_files.iter().any(|(s, _)| s == source);
        let task_volume = is_child_of(source, &task_dir.join("volumes"));
        let host_volume = host_sources.contains(source);
        assert!(
            etc || task_volume || (host_volume && !fargate),
            "container {name:?}: bind mount source {} is outside the task's volumes (fargate: {fargate})",
            source.display()
        );
    }
    if fargate {
        assert!(
            !spec.privileged,
            "container {name:?}: privileged on Fargate"
        );
        for cap in &spec.cap_add {
            let upper = cap.to_ascii_uppercase();
            let full = upper.strip_prefix("CAP_").unwrap_or(&upper);
            assert_eq!(
                full, "SYS_PTRACE",
                "container {name:?}: capability {cap:?} added on Fargate"
            );
        }
        assert!(
            spec.host_namespaces.is_empty(),
            "container {name:?}: shares {:?} with the host on Fargate",
            spec.host_namespaces
        );
        for key in spec.sysctls.keys() {
            assert!(
                key.starts_with("net."),
                "container {name:?}: sysctl {key:?} on Fargate"
            );
        }
    }
}

fn check_oci(oci: &Value, fargate: bool, name: &str) {
    let caps: Vec<&str> = oci["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let namespaces: Vec<&str> = oci["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["type"].as_str()).collect())
        .unwrap_or_default();
    for ns in ["pid", "ipc", "uts", "mount"] {
        assert!(
            namespaces.contains(&ns),
            "container {name:?}: no {ns} namespace"
        );
    }
    for m in oci["mounts"].as_array().into_iter().flatten() {
        let dest = m["destination"].as_str().unwrap_or_default();
        assert!(
            dest.starts_with('/'),
            "container {name:?}: mount destination {dest:?}"
        );
    }
    if fargate {
        for cap in &caps {
            assert!(
                berth_runtime::spec::DEFAULT_CAPABILITIES.contains(cap) || *cap == "CAP_SYS_PTRACE",
                "container {name:?}: {cap} on Fargate"
            );
        }
        assert!(
            namespaces.contains(&"network"),
            "container {name:?}: host network on Fargate"
        );
        assert!(
            oci["linux"]["seccomp"].is_object(),
            "container {name:?}: no seccomp on Fargate"
        );
        assert!(
            oci["linux"]["maskedPaths"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "container {name:?}: nothing masked on Fargate"
        );
        let first_rule = &oci["linux"]["resources"]["devices"][0];
        assert_eq!(
            (first_rule["allow"].as_bool(), first_rule["access"].as_str()),
            (Some(false), Some("rwm")),
            "container {name:?}: devices not denied by default on Fargate"
        );
    }
}

/// Builds and checks every container's spec, as a task of `td` launched
/// on Fargate or not. `registered`: the definition passed registration, so
/// the runtime must accept what it makes (only the image's users may be
/// missing); otherwise it was written to the store directly and only the
/// supervisor's own checks stand between it and the host.
fn launch_type_of(fargate: bool) -> LaunchType {
    if fargate {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    }
}

fn run(td: &TaskDefinition, fargate: bool, registered: bool) {
    let launch_type = launch_type_of(fargate);
    let Some((ctx, host_sources)) = context(td, &launch_type) else {
        assert!(
            !registered,
            "the supervisor refuses the volumes of a registered definition"
        );
        return;
    };
    let image = ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let fixture = fixture();
    for def in &td.container_definitions {
        let ov = overrides_for(&Value::Null, &def.name);
        let Ok(spec) = container_spec(def, &image, &ov, &ctx) else {
            continue;
        };
        check_container_spec(&spec, fargate, &ctx, &host_sources, &def.name);

        let mut runnable = spec.clone();
        for m in &mut runnable.mounts {
            if let Mount::Bind { source, .. } = m {
                *source = fixture.placeholder.path().to_path_buf();
            }
        }
        let id = names::runtime_id("0123456789abcdef", &def.name);
        match runnable.to_oci(&id, fixture.rootfs.path(), "/berth-fuzz/task") {
            Ok(oci) => {
                let oci = serde_json::to_value(&oci).expect("an OCI spec serializes");
                check_oci(&oci, fargate, &def.name);
            }
            Err(_) if !registered => {}
            // Users and groups are the image's: a definition may name one
            // this image lacks; a command may be meant for the image's
            // entrypoint, which this image does not have.
            Err(berth_runtime::Error::InvalidSpec { field, .. })
                if field == "user" || (field == "args" && def.entry_point.is_none()) => {}
            Err(e) => panic!(
                "container {:?}: registration accepted a definition the runtime refuses: {e}",
                def.name
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(td) = serde_json::from_value::<TaskDefinition>(request) else {
        return;
    };
    let Ok(prepared) = prepare(td.clone()) else {
        // Not registrable, but a store written by hand (or an older berth)
        // may hold it: what the supervisor checks must still keep it in.
        for fargate in [false, true] {
            if check_launch(&td, &launch_type_of(fargate)).is_ok() {
                run(&td, fargate, false);
            }
        }
        return;
    };
    let td = prepared.definition;

    // The store keeps it as JSON: it reads back as itself.
    let stored = serde_json::to_value(&td).expect("an accepted definition serializes");
    let back: TaskDefinition =
        serde_json::from_value(stored.clone()).expect("a stored definition reads back");
    assert_eq!(
        serde_json::to_value(&back).expect("serializes again"),
        stored,
        "a stored definition reads back as itself"
    );

    let requires_fargate = td.requires_compatibilities.contains(&LaunchType::Fargate);
    for fargate in [false, true] {
        match check_launch(&td, &launch_type_of(fargate)) {
            Ok(()) => run(&td, fargate, true),
            Err(e) => assert!(
                !(fargate && requires_fargate),
                "registered for FARGATE but run-task on FARGATE refuses it: {e}"
            ),
        }
    }
});

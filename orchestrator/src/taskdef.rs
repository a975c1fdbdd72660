//! Registering a task definition: ECS's validation, each message naming the
//! field path, and its normalization (units, defaults). Pure: no store.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{EcsError, EcsResult};
use crate::model::{
    ContainerCondition, ContainerDefinition, LaunchType, LinuxParameters, NetworkMode,
    TaskDefinition,
};
use crate::names;

const MAX_CONTAINERS: usize = 10;
const MIN_CONTAINER_MEMORY: u64 = 6;
/// The most CPU units a task or a container may ask for: the kernel's
/// largest cpu.shares (256 vCPUs).
pub const MAX_CPU_UNITS: u64 = 262_144;
/// The most MiB a task or a container may ask for (1 PiB): far above any
/// host, and small enough that bytes, sums and signed casts cannot wrap.
pub const MAX_MEMORY_MIB: u64 = 1 << 30;
/// The longest `stopTimeout` and `startTimeout` (a day), in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Fargate's longest `stopTimeout`.
const FARGATE_MAX_STOP_TIMEOUT: u64 = 120;
/// The one capability a Fargate container may add.
const FARGATE_CAPABILITY: &str = "SYS_PTRACE";

/// Request fields ECS documents that berth accepts but does not act on.
const IGNORED_TASK_FIELDS: &[&str] = &[
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// Container definition fields ECS documents that berth accepts but does
/// not act on (yet).
const IGNORED_CONTAINER_FIELDS: &[&str] = &[
    "disableNetworking",
    "interactive",
    "pseudoTerminal",
    "dockerLabels",
    "firelensConfiguration",
    "resourceRequirements",
    "credentialSpecs",
    "versionConsistency",
    "gpu",
];

/// `linuxParameters` fields berth accepts but does not act on.
const IGNORED_LINUX_PARAMETERS: &[&str] = &[
    "initProcessEnabled",
    "sharedMemorySize",
    "tmpfs",
    "maxSwap",
    "swappiness",
];

/// Fields ECS prints but a registration must not carry.
const RESPONSE_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "deregisteredAt",
    "registeredBy",
    "deleteRequestedAt",
];

/// Fargate's task sizes: cpu units → allowed memory (MiB).
pub fn fargate_memory_allowed(cpu: u64, memory: u64) -> bool {
    let range = |lo: u64, hi: u64, step: u64| {
        memory >= lo && memory <= hi && (memory - lo).is_multiple_of(step)
    };
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => false,
    }
}

/// `value` × `scale`, rounded, if it is finite and lands in 1..=`max`.
fn scaled(value: &str, scale: f64, max: u64) -> Option<u64> {
    let v: f64 = value.trim().parse().ok()?;
    let n = (v * scale).round();
    // `max` is far below 2^53, so it and `n` compare exactly.
    (n.is_finite() && n >= 1.0 && n <= max as f64).then_some(n as u64)
}

/// An integer in 1..=`max`.
fn bounded(value: &str, max: u64) -> Option<u64> {
    value.trim().parse().ok().filter(|n| (1..=max).contains(n))
}

/// Task-level cpu: "1024", "1 vCPU", "0.25 vcpu" → units, at most
/// [`MAX_CPU_UNITS`].
pub fn parse_cpu(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    match t.strip_suffix("vcpu") {
        Some(v) => scaled(v, 1024.0, MAX_CPU_UNITS),
        None => bounded(&t, MAX_CPU_UNITS),
    }
}

/// Task-level memory: "512", "1GB", "0.5 gb" → MiB, at most
/// [`MAX_MEMORY_MIB`].
pub fn parse_memory(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        return scaled(v, 1024.0, MAX_MEMORY_MIB);
    }
    match t.strip_suffix("mb").or_else(|| t.strip_suffix("mib")) {
        Some(v) => bounded(v, MAX_MEMORY_MIB),
        None => bounded(&t, MAX_MEMORY_MIB),
    }
}

/// The outcome of checking a registration: the normalized definition and
/// the field paths berth accepted but will not act on.
#[derive(Debug)]
pub struct Prepared {
    pub definition: TaskDefinition,
    pub ignored: Vec<String>,
}

/// Validate and normalize a `register-task-definition` request.
pub fn prepare(mut td: TaskDefinition) -> EcsResult<Prepared> {
    let mut ignored = Vec::new();
    check_response_only(&td)?;
    check_other("", &td.other, IGNORED_TASK_FIELDS, &mut ignored)?;
    if td.execution_role_arn.is_some() {
        ignored.push("executionRoleArn".into());
    }
    names::check("family", &td.family)?;
    check_namespace_modes(&td, &mut ignored)?;
    for (i, lt) in td.requires_compatibilities.iter().enumerate() {
        if let LaunchType::Other(lt) = lt {
            return Err(EcsError::invalid(format!(
                "requiresCompatibilities[{i}]: {lt:?} is not one of EC2, FARGATE, EXTERNAL"
            )));
        }
    }
    let fargate = td.requires_compatibilities.contains(&LaunchType::Fargate);
    if let Some(NetworkMode::Other(mode)) = &td.network_mode {
        return Err(EcsError::invalid(format!(
            "networkMode: {mode:?} is not one of bridge, host, awsvpc, none"
        )));
    }
    let (cpu, memory) = task_size(&td)?;
    td.cpu = cpu.map(|c| c.to_string());
    td.memory = memory.map(|m| m.to_string());
    check_containers(&td.container_definitions, memory, &mut ignored)?;
    check_depends_on(&td.container_definitions)?;
    check_links(&td)?;
    check_ports(&td)?;
    check_volumes(&td)?;
    if fargate {
        check_fargate(&td)?;
    }
    check_security(&td)?;
    fill_in_defaults(&mut td, fargate);
    Ok(Prepared {
        definition: td,
        ignored,
    })
}

/// Each container definition on its own, then what the list as a whole
/// must hold (a size, unique names, an essential container).
fn check_containers(
    containers: &[ContainerDefinition],
    memory: Option<u64>,
    ignored: &mut Vec<String>,
) -> EcsResult<()> {
    if containers.is_empty() {
        return Err(EcsError::client(
            "containerDefinitions: container list cannot be empty",
        ));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(EcsError::client(format!(
            "containerDefinitions: too many containers ({}); the limit is {MAX_CONTAINERS}",
            containers.len()
        )));
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("containerDefinitions[{i}]");
        // secrets, environmentFiles and repositoryCredentials are acted
        // on (crate::secrets).
        crate::secrets::check_container(&path, &c.other).map_err(EcsError::invalid)?;
        let rest: BTreeMap<String, Value> = c
            .other
            .iter()
            .filter(|(k, _)| !crate::secrets::CONTAINER_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        check_other(&path, &rest, IGNORED_CONTAINER_FIELDS, ignored)?;
        check_container(&path, c, memory)?;
        crate::runnable::check(&path, c)?;
        if let Some(logs) = &c.log_configuration {
            check_log_configuration(&format!("{path}.logConfiguration"), logs, ignored)?;
            crate::awslogs::check_names(&format!("{path}.logConfiguration"), logs, &c.name)
                .map_err(EcsError::client)?;
        }
        if let Some(policy) = &c.restart_policy {
            check_restart_policy(&format!("{path}.restartPolicy"), policy)?;
        }
        if let Some(lp) = &c.linux_parameters {
            check_linux_parameters(&format!("{path}.linuxParameters"), lp, ignored)?;
        }
        if !names.insert(c.name.clone()) {
            return Err(EcsError::client(format!(
                "{path}.name: duplicate container name {:?}",
                c.name
            )));
        }
    }
    if !containers.iter().any(ContainerDefinition::is_essential) {
        return Err(EcsError::client(
            "containerDefinitions: the task definition must have at least one essential container",
        ));
    }
    Ok(())
}

/// What ECS fills in on registration.
fn fill_in_defaults(td: &mut TaskDefinition, fargate: bool) {
    if td.network_mode.is_none() && !fargate {
        td.network_mode = Some(NetworkMode::Bridge);
    }
    for c in &mut td.container_definitions {
        c.essential = Some(c.is_essential());
        for pm in &mut c.port_mappings {
            if pm.protocol.is_none() {
                pm.protocol = Some("tcp".into());
            }
            if pm.host_port.is_none() && td.network_mode != Some(NetworkMode::Bridge) {
                pm.host_port = pm.container_port;
            }
        }
    }
    // In ECS's (alphabetical) order.
    let mut compat: BTreeSet<&str> = td
        .requires_compatibilities
        .iter()
        .map(LaunchType::as_str)
        .collect();
    compat.insert(LaunchType::Ec2.as_str());
    td.compatibilities = compat.into_iter().map(LaunchType::parse).collect();
}

/// A supported driver with valid options; what berth does not act on of
/// it is listed as ignored.
fn check_log_configuration(
    path: &str,
    logs: &crate::model::LogConfiguration,
    ignored: &mut Vec<String>,
) -> EcsResult<()> {
    let driver = crate::log_drivers::check(path, logs)?;
    for key in logs.options.iter().flat_map(|o| o.keys()) {
        if !driver.honours(key) {
            ignored.push(format!("{path}.options.{key}"));
        }
    }
    Ok(())
}

/// ECS's bounds on `restartAttemptPeriod` (seconds) and the number of
/// `ignoredExitCodes`.
pub const RESTART_PERIOD_SECS: std::ops::RangeInclusive<u64> = 60..=1800;
const MAX_IGNORED_EXIT_CODES: usize = 50;

fn check_restart_policy(path: &str, policy: &crate::model::RestartPolicy) -> EcsResult<()> {
    if let Some(period) = policy.restart_attempt_period {
        if !RESTART_PERIOD_SECS.contains(&period) {
            return Err(EcsError::client(format!(
                "{path}.restartAttemptPeriod: {period} is outside {}..={} seconds",
                RESTART_PERIOD_SECS.start(),
                RESTART_PERIOD_SECS.end()
            )));
        }
    }
    if policy.ignored_exit_codes.len() > MAX_IGNORED_EXIT_CODES {
        return Err(EcsError::client(format!(
            "{path}.ignoredExitCodes: at most {MAX_IGNORED_EXIT_CODES} exit codes"
        )));
    }
    Ok(())
}

fn check_response_only(td: &TaskDefinition) -> EcsResult<()> {
    let present = [
        td.task_definition_arn.is_some(),
        td.revision.is_some(),
        td.status.is_some(),
        !td.requires_attributes.is_empty(),
        !td.compatibilities.is_empty(),
        td.registered_at.is_some(),
        td.deregistered_at.is_some(),
        td.registered_by.is_some(),
        td.delete_requested_at.is_some(),
    ];
    match RESPONSE_ONLY.iter().zip(present).find(|(_, p)| *p) {
        Some((name, _)) => Err(EcsError::invalid(format!(
            "{name}: unknown parameter for register-task-definition (it is set by ECS)"
        ))),
        None => Ok(()),
    }
}

/// Sort `other` keys into accepted-and-ignored, or refuse unknown ones.
fn check_other(
    path: &str,
    other: &BTreeMap<String, Value>,
    known: &[&str],
    ignored: &mut Vec<String>,
) -> EcsResult<()> {
    for key in other.keys() {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if known.contains(&key.as_str()) {
            ignored.push(full);
        } else {
            return Err(EcsError::invalid(format!("{full}: unknown parameter")));
        }
    }
    Ok(())
}

fn check_container(path: &str, c: &ContainerDefinition, task_memory: Option<u64>) -> EcsResult<()> {
    names::check(&format!("{path}.name"), &c.name)?;
    if c.image.trim().is_empty() {
        return Err(EcsError::client(format!(
            "{path}.image: container {:?} has no image",
            c.name
        )));
    }
    for (field, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(v) = value {
            if v < MIN_CONTAINER_MEMORY {
                return Err(EcsError::client(format!(
                    "{path}.{field}: invalid '{field}' setting for container {:?}: {v} MiB is below the minimum of {MIN_CONTAINER_MEMORY} MiB",
                    c.name
                )));
            }
        }
    }
    check_container_bounds(path, c)?;
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        if soft > hard {
            return Err(EcsError::client(format!(
                "{path}.memoryReservation: must be less than 'memory' for container {:?} ({soft} > {hard} MiB)",
                c.name
            )));
        }
    }
    if task_memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(EcsError::client(format!(
            "{path}: invalid setting for container {:?}: at least one of 'memory' or 'memoryReservation' must be specified (or task-level 'memory')",
            c.name
        )));
    }
    if let Some(check) = &c.health_check {
        check.validate(&format!("{path}.healthCheck"))?;
    }
    for (j, e) in c.environment.iter().enumerate() {
        if e.name.is_empty() {
            return Err(EcsError::client(format!(
                "{path}.environment[{j}].name: must not be empty"
            )));
        }
    }
    Ok(())
}

/// `links` name the task's other containers, and only in bridge mode
/// (ECS: links are not supported with awsvpc or host networking).
fn check_links(td: &TaskDefinition) -> EcsResult<()> {
    let names: BTreeSet<&str> = td
        .container_definitions
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for (i, c) in td.container_definitions.iter().enumerate() {
        for (j, link) in c.links.iter().enumerate() {
            let path = format!("containerDefinitions[{i}].links[{j}]");
            if !matches!(td.network_mode, None | Some(NetworkMode::Bridge)) {
                return Err(EcsError::client(format!(
                    "{path}: links are only supported with networkMode bridge"
                )));
            }
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let valid_alias = !alias.is_empty()
                && alias
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
            if !names.contains(name) || name == c.name || !valid_alias {
                return Err(EcsError::client(format!(
                    "{path}: {link:?}: expected NAME[:ALIAS] naming another container of this task"
                )));
            }
        }
    }
    Ok(())
}

fn check_depends_on(containers: &[ContainerDefinition]) -> EcsResult<()> {
    let by_name: BTreeMap<&str, &ContainerDefinition> =
        containers.iter().map(|c| (c.name.as_str(), c)).collect();
    for (i, c) in containers.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            let path = format!("containerDefinitions[{i}].dependsOn[{j}]");
            let target = by_name.get(d.container_name.as_str()).ok_or_else(|| {
                EcsError::client(format!(
                    "{path}.containerName: no container named {:?} in this task definition",
                    d.container_name
                ))
            })?;
            if let ContainerCondition::Other(condition) = &d.condition {
                return Err(EcsError::client(format!(
                    "{path}.condition: {condition:?} is not one of START, COMPLETE, SUCCESS, HEALTHY"
                )));
            }
            let exits = matches!(
                d.condition,
                ContainerCondition::Complete | ContainerCondition::Success
            );
            if exits && target.is_essential() {
                return Err(EcsError::client(format!(
                    "{path}: container {:?} is waited on with {} and so must not be essential",
                    d.container_name, d.condition
                )));
            }
            if d.condition == ContainerCondition::Healthy && target.health_check.is_none() {
                return Err(EcsError::client(format!(
                    "{path}: container {:?} is waited on with HEALTHY but has no healthCheck",
                    d.container_name
                )));
            }
        }
    }
    // Cycles: depth-first search with colours.
    fn visit<'a>(
        name: &'a str,
        by_name: &BTreeMap<&'a str, &'a ContainerDefinition>,
        state: &mut BTreeMap<&'a str, u8>,
        trail: &mut Vec<&'a str>,
    ) -> Result<(), String> {
        match state.get(name) {
            Some(2) => return Ok(()),
            Some(1) => {
                let start = trail.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<&str> = trail[start..].to_vec();
                cycle.push(name);
                return Err(cycle.join(" -> "));
            }
            _ => {}
        }
        state.insert(name, 1);
        trail.push(name);
        if let Some(c) = by_name.get(name) {
            for d in &c.depends_on {
                visit(d.container_name.as_str(), by_name, state, trail)?;
            }
        }
        trail.pop();
        state.insert(name, 2);
        Ok(())
    }
    let mut state = BTreeMap::new();
    for c in containers {
        visit(c.name.as_str(), &by_name, &mut state, &mut Vec::new()).map_err(|cycle| {
            EcsError::client(format!(
                "containerDefinitions: dependsOn forms a cycle: {cycle}"
            ))
        })?;
    }
    Ok(())
}

fn check_ports(td: &TaskDefinition) -> EcsResult<()> {
    let mut host_ports: BTreeMap<(u16, String), String> = BTreeMap::new();
    for (i, c) in td.container_definitions.iter().enumerate() {
        let mut seen = BTreeMap::new();
        for (j, pm) in c.port_mappings.iter().enumerate() {
            let path = format!("containerDefinitions[{i}].portMappings[{j}]");
            let protocol = pm.protocol.clone().unwrap_or_else(|| "tcp".into());
            if protocol != "tcp" && protocol != "udp" {
                return Err(EcsError::invalid(format!(
                    "{path}.protocol: {protocol:?} is not tcp or udp"
                )));
            }
            let Some(port) = pm.container_port else {
                if pm.other.contains_key("containerPortRange") {
                    continue;
                }
                return Err(EcsError::invalid(format!("{path}.containerPort: required")));
            };
            if let Some(k) = seen.insert((port, protocol.clone()), j) {
                return Err(EcsError::invalid(format!(
                    "{path}: duplicate of portMappings[{k}] ({port}/{protocol})"
                )));
            }
            let awsvpc_or_host = matches!(
                td.network_mode,
                Some(NetworkMode::Awsvpc | NetworkMode::Host)
            );
            if awsvpc_or_host {
                if let Some(hp) = pm.host_port {
                    if hp != port {
                        return Err(EcsError::invalid(format!(
                            "{path}.hostPort: must equal containerPort ({port}) in {} network mode",
                            td.network_mode.as_ref().map_or("", NetworkMode::as_str)
                        )));
                    }
                }
            }
            let host = pm
                .host_port
                .filter(|&p| p != 0)
                .or(awsvpc_or_host.then_some(port));
            if let Some(hp) = host {
                if let Some(other) = host_ports.insert((hp, protocol.clone()), c.name.clone()) {
                    return Err(EcsError::invalid(format!(
                        "{path}.hostPort: {hp}/{protocol} is already mapped by container {other:?}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Task-level cpu and memory, parsed and range-checked.
fn task_size(td: &TaskDefinition) -> EcsResult<(Option<u64>, Option<u64>)> {
    let cpu = match &td.cpu {
        Some(c) => Some(parse_cpu(c).ok_or_else(|| {
            EcsError::client(format!(
                "cpu: invalid 'cpu' setting for task: {c:?} (1 to {MAX_CPU_UNITS} units, or vCPUs as \"0.25 vCPU\")"
            ))
        })?),
        None => None,
    };
    let memory = match &td.memory {
        Some(m) => Some(parse_memory(m).ok_or_else(|| {
            EcsError::client(format!(
                "memory: invalid 'memory' setting for task: {m:?} (1 to {MAX_MEMORY_MIB} MiB, or \"2GB\")"
            ))
        })?),
        None => None,
    };
    Ok((cpu, memory))
}

/// A container's cpu units and memory (MiB) within the ranges berth can
/// account without wrapping, for its definition and for run-task's
/// overrides alike; the error names the field under `path`.
pub fn container_size_bounds(
    path: &str,
    cpu: Option<u64>,
    memory: Option<u64>,
    memory_reservation: Option<u64>,
) -> Result<(), String> {
    if let Some(cpu) = cpu.filter(|&c| c > MAX_CPU_UNITS) {
        return Err(format!(
            "{path}.cpu: {cpu} is more than the maximum of {MAX_CPU_UNITS} CPU units"
        ));
    }
    for (field, value) in [
        ("memory", memory),
        ("memoryReservation", memory_reservation),
    ] {
        if let Some(v) = value.filter(|&v| v > MAX_MEMORY_MIB) {
            return Err(format!(
                "{path}.{field}: {v} MiB is more than the maximum of {MAX_MEMORY_MIB} MiB"
            ));
        }
    }
    Ok(())
}

/// A container's cpu, memory and timeouts within the ranges berth can
/// account without wrapping.
fn check_container_bounds(path: &str, c: &ContainerDefinition) -> EcsResult<()> {
    container_size_bounds(path, Some(c.cpu), c.memory, c.memory_reservation)
        .map_err(EcsError::client)?;
    for (field, value) in [
        ("stopTimeout", c.stop_timeout),
        ("startTimeout", c.start_timeout),
    ] {
        if let Some(v) = value.filter(|&v| v > MAX_TIMEOUT_SECS) {
            return Err(EcsError::client(format!(
                "{path}.{field}: {v} seconds is more than the maximum of {MAX_TIMEOUT_SECS}"
            )));
        }
    }
    Ok(())
}

/// `pidMode` (`host`, `task`) and `ipcMode` (`host`, `task`, `none`):
/// checked, and reported as not acted on (berth gives each task its own).
fn check_namespace_modes(td: &TaskDefinition, ignored: &mut Vec<String>) -> EcsResult<()> {
    for (field, value, allowed) in [
        ("pidMode", &td.pid_mode, &["host", "task"][..]),
        ("ipcMode", &td.ipc_mode, &["host", "task", "none"][..]),
    ] {
        if let Some(v) = value {
            if !allowed.contains(&v.as_str()) {
                return Err(EcsError::client(format!(
                    "{field}: {v:?} is not one of {}",
                    allowed.join(", ")
                )));
            }
            ignored.push(field.to_string());
        }
    }
    Ok(())
}

/// `linuxParameters`: unknown fields refused, known ones berth does not
/// act on reported.
fn check_linux_parameters(
    path: &str,
    lp: &LinuxParameters,
    ignored: &mut Vec<String>,
) -> EcsResult<()> {
    check_other(path, &lp.other, IGNORED_LINUX_PARAMETERS, ignored)?;
    if let Some(caps) = &lp.capabilities {
        check_other(&format!("{path}.capabilities"), &caps.other, &[], ignored)?;
    }
    Ok(())
}

/// Volume names as ECS allows them (they become directory names), host
/// paths absolute, and every mount point naming a volume of the task.
pub fn check_volumes(td: &TaskDefinition) -> EcsResult<()> {
    let mut seen = BTreeSet::new();
    for (i, v) in td.volumes.iter().enumerate() {
        names::check(&format!("volumes[{i}].name"), &v.name)?;
        if !seen.insert(v.name.as_str()) {
            return Err(EcsError::client(format!(
                "volumes[{i}].name: duplicate volume name {:?}",
                v.name
            )));
        }
        if let Some(p) = v.host_path() {
            if !p.starts_with('/') || p.contains('\0') {
                return Err(EcsError::client(format!(
                    "volumes[{i}].host.sourcePath: {p:?} is not an absolute path"
                )));
            }
        }
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        for (j, mp) in c.mount_points.iter().enumerate() {
            let path = format!("containerDefinitions[{i}].mountPoints[{j}]");
            let source = mp.get("sourceVolume").and_then(Value::as_str);
            if !source.is_some_and(|s| seen.contains(s)) {
                return Err(EcsError::client(format!(
                    "{path}.sourceVolume: {}: not the name of a volume in this task definition",
                    source.map_or("missing".into(), |s| format!("{s:?}"))
                )));
            }
            let dest = mp.get("containerPath").and_then(Value::as_str);
            if !dest.is_some_and(|d| d.starts_with('/') && !d.contains('\0')) {
                return Err(EcsError::client(format!(
                    "{path}.containerPath: {dest:?}: an absolute path is required"
                )));
            }
        }
    }
    Ok(())
}

/// What berth cannot do on any launch type is refused rather than
/// ignored: host devices, and SELinux or AppArmor labels (no LSM here).
pub fn check_security(td: &TaskDefinition) -> EcsResult<()> {
    for (i, c) in td.container_definitions.iter().enumerate() {
        let path = format!("containerDefinitions[{i}]");
        if c.linux_parameters
            .as_ref()
            .is_some_and(|lp| !lp.devices.is_empty())
        {
            return Err(EcsError::client(format!(
                "{path}.linuxParameters.devices: berth does not pass host devices into containers"
            )));
        }
        if td.network_mode == Some(NetworkMode::Host) {
            for (j, sc) in c.system_controls.iter().enumerate() {
                let ns = sc
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if ns.starts_with("net.") {
                    return Err(EcsError::client(format!(
                        "{path}.systemControls[{j}].namespace: {ns:?}: with networkMode 'host' \
                         a net.* parameter would change the host's own network settings"
                    )));
                }
            }
        }
        for (j, opt) in c.docker_security_options.iter().enumerate() {
            security_option(opt).map_err(|why| {
                EcsError::client(format!("{path}.dockerSecurityOptions[{j}]: {opt:?}: {why}"))
            })?;
        }
    }
    Ok(())
}

/// Whether a `dockerSecurityOptions` entry asks for no_new_privs: true for
/// `no-new-privileges`, false for `no-new-privileges:false`; what berth
/// cannot apply is an error.
pub fn security_option(opt: &str) -> Result<bool, &'static str> {
    match opt.split_once(':') {
        None if opt == "no-new-privileges" => Ok(true),
        Some(("no-new-privileges", "true")) => Ok(true),
        Some(("no-new-privileges", "false")) => Ok(false),
        Some(("label", _)) => {
            Err("SELinux labels are not supported: this host runs no SELinux policy for containers")
        }
        Some(("apparmor", _)) => Err(
            "AppArmor profiles are not supported: this host runs no AppArmor policy for containers",
        ),
        _ => Err("not one of no-new-privileges, label:VALUE, apparmor:PROFILE"),
    }
}

/// Whether a definition asks for no_new_privs.
pub fn no_new_privileges(def: &ContainerDefinition) -> bool {
    def.docker_security_options
        .iter()
        .any(|o| security_option(o) == Ok(true))
}

/// A capability's name as ECS writes it: `sys_ptrace`, `CAP_SYS_PTRACE`
/// → `SYS_PTRACE`.
fn capability_name(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// Fargate is a sandbox: what would reach the host is refused, with ECS's
/// wording and the field's path. Checked at registration, at run-task and
/// create-service, and again by the supervisor.
pub fn check_fargate(td: &TaskDefinition) -> EcsResult<()> {
    let refuse = |path: String, what: &str| {
        Err(EcsError::client(format!(
            "{path}: Tasks using the Fargate launch type do not support {what}."
        )))
    };
    let (Some(cpu), Some(memory)) = task_size(td)? else {
        return Err(EcsError::client(
            "cpu, memory: Fargate requires task-level 'cpu' and 'memory'",
        ));
    };
    if !fargate_memory_allowed(cpu, memory) {
        return Err(EcsError::client(format!(
            "cpu, memory: No Fargate configuration exists for given values: cpu {cpu}, memory {memory}"
        )));
    }
    if td.network_mode != Some(NetworkMode::Awsvpc) {
        return Err(EcsError::client(
            "networkMode: Fargate only supports network mode 'awsvpc'",
        ));
    }
    if td.pid_mode.as_deref() == Some("host") {
        return refuse("pidMode".into(), "pidMode 'host'");
    }
    if td.ipc_mode.as_deref() == Some("host") {
        return refuse("ipcMode".into(), "ipcMode 'host'");
    }
    for (i, v) in td.volumes.iter().enumerate() {
        if v.host_path().is_some() {
            return refuse(format!("volumes[{i}].host.sourcePath"), "host volumes");
        }
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        let path = format!("containerDefinitions[{i}]");
        if c.privileged == Some(true) {
            return refuse(format!("{path}.privileged"), "privileged containers");
        }
        for (j, cap) in c.cap_add().iter().enumerate() {
            if capability_name(cap) != FARGATE_CAPABILITY {
                return refuse(
                    format!("{path}.linuxParameters.capabilities.add[{j}]"),
                    &format!("adding capability {cap:?}; only {FARGATE_CAPABILITY} may be added"),
                );
            }
        }
        if c.linux_parameters
            .as_ref()
            .is_some_and(|lp| !lp.devices.is_empty())
        {
            return refuse(format!("{path}.linuxParameters.devices"), "devices");
        }
        for (j, sc) in c.system_controls.iter().enumerate() {
            let ns = sc
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !ns.starts_with("net.") {
                return refuse(
                    format!("{path}.systemControls[{j}].namespace"),
                    &format!("{ns:?}; only namespaced net.* kernel parameters may be set"),
                );
            }
        }
        if !c.docker_security_options.is_empty() {
            return refuse(
                format!("{path}.dockerSecurityOptions"),
                "dockerSecurityOptions",
            );
        }
        if let Some(t) = c.stop_timeout.filter(|&t| t > FARGATE_MAX_STOP_TIMEOUT) {
            return Err(EcsError::client(format!(
                "{path}.stopTimeout: {t} seconds is more than Fargate's maximum of {FARGATE_MAX_STOP_TIMEOUT}"
            )));
        }
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        if let Some(logs) = &c.log_configuration {
            let path = format!("containerDefinitions[{i}].logConfiguration");
            crate::log_drivers::check_fargate(&path, logs)?;
        }
    }
    Ok(())
}

/// What a task of `td` launched as `launch_type` must satisfy, whether
/// the definition came through registration or not: run-task,
/// create-service and the supervisor ask again.
pub fn check_launch(td: &TaskDefinition, launch_type: &LaunchType) -> EcsResult<()> {
    check_volumes(td)?;
    if *launch_type == LaunchType::Fargate {
        check_fargate(td)?;
    }
    check_security(td)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(v: Value) -> TaskDefinition {
        serde_json::from_value(v).expect("task definition")
    }

    fn err(v: Value) -> String {
        prepare(td(v)).expect_err("must be refused").to_string()
    }

    #[test]
    fn host_mode_refuses_net_sysctls_at_registration() {
        let def = |ns: &str| {
            json!({ "family": "h", "networkMode": "host", "containerDefinitions": [{
                "name": "a", "image": "busybox", "memory": 64,
                "systemControls": [{ "namespace": ns, "value": "1" }] }] })
        };
        let e = err(def("net.ipv4.ip_forward"));
        assert!(
            e.contains("containerDefinitions[0].systemControls[0].namespace"),
            "{e}"
        );
        prepare(td(def("kernel.msgmax"))).expect("an IPC sysctl stays the container's");
    }

    fn web() -> Value {
        json!({ "name": "web", "image": "busybox", "memory": 64 })
    }

    /// The example from the ECS developer guide, as AWS documents it.
    const AWS_EXAMPLE: &str = r#"{
      "family": "webserver",
      "containerDefinitions": [{
        "name": "web", "image": "nginx", "memory": 100, "cpu": 99,
        "portMappings": [{ "containerPort": 80, "hostPort": 80 }],
        "essential": true,
        "environment": [{ "name": "A", "value": "b" }],
        "logConfiguration": { "logDriver": "awslogs", "options": { "awslogs-group": "x" } },
        "dockerLabels": { "team": "web" }
      }],
      "requiresCompatibilities": ["EC2"],
      "networkMode": "bridge",
      "runtimePlatform": { "operatingSystemFamily": "LINUX" },
      "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
    }"#;

    #[test]
    fn a_real_ecs_task_definition_registers() {
        let p = prepare(serde_json::from_str(AWS_EXAMPLE).expect("json")).expect("valid");
        assert_eq!(p.definition.network_mode, Some(NetworkMode::Bridge));
        assert_eq!(
            p.definition.container_definitions[0].port_mappings[0]
                .protocol
                .as_deref(),
            Some("tcp")
        );
        // awslogs is honoured (issue 15): kept locally, not ignored.
        assert!(
            !p.ignored.iter().any(|f| f.contains("logConfiguration")),
            "{:?}",
            p.ignored
        );
        assert!(p.ignored.contains(&"runtimePlatform".to_string()));
        assert!(p.ignored.contains(&"executionRoleArn".to_string()));
        // What was given comes back out unchanged.
        let out = serde_json::to_value(&p.definition).expect("json");
        assert_eq!(
            out["containerDefinitions"][0]["dockerLabels"]["team"],
            "web"
        );
        assert_eq!(out["runtimePlatform"]["operatingSystemFamily"], "LINUX");
    }

    #[test]
    fn units_are_normalized() {
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu(".25 vcpu"), Some(256));
        assert_eq!(parse_cpu("512"), Some(512));
        assert_eq!(parse_cpu("lots"), None);
        assert_eq!(parse_memory("1GB"), Some(1024));
        assert_eq!(parse_memory("0.5 GB"), Some(512));
        assert_eq!(parse_memory("2048"), Some(2048));
        let p = prepare(td(json!({
            "family": "f", "cpu": "1 vCPU", "memory": "2GB",
            "containerDefinitions": [{ "name": "a", "image": "busybox" }],
        })))
        .expect("valid");
        assert_eq!(
            (p.definition.cpu.as_deref(), p.definition.memory.as_deref()),
            (Some("1024"), Some("2048"))
        );
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "memory": 64 }] }),
                "containerDefinitions[0].image",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [web(), web()] }),
                "containerDefinitions[1].name",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 4 }] }),
                "containerDefinitions[0].memory",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b" }] }),
                "memoryReservation",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 64, "essential": false }] }),
                "essential container",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 64, "dependsOn": [{ "containerName": "x", "condition": "START" }] }] }),
                "dependsOn[0].containerName",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 64, "links": ["nope:db"] }] }),
                "containerDefinitions[0].links[0]",
            ),
            (
                json!({ "family": "f", "networkMode": "awsvpc", "containerDefinitions": [web(), { "name": "a", "image": "b", "memory": 64, "links": ["web"] }] }),
                "only supported with networkMode bridge",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [
                { "name": "a", "image": "b", "memory": 64, "dependsOn": [{ "containerName": "b", "condition": "START" }] },
                { "name": "b", "image": "b", "memory": 64, "dependsOn": [{ "containerName": "a", "condition": "START" }] }] }),
                "cycle: a -> b -> a",
            ),
            (
                json!({ "family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "4096",
                "containerDefinitions": [web()] }),
                "No Fargate configuration",
            ),
            (
                json!({ "family": "f", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
                "containerDefinitions": [web()] }),
                "awsvpc",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 64,
                "portMappings": [{ "containerPort": 80 }, { "containerPort": 80 }] }] }),
                "portMappings[1]",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [{ "name": "a", "image": "b", "memory": 64, "imagee": "x" }] }),
                "containerDefinitions[0].imagee: unknown parameter",
            ),
            (
                json!({ "family": "bad family!", "containerDefinitions": [web()] }),
                "family",
            ),
            (
                json!({ "family": "f", "networkMode": "mesh", "containerDefinitions": [web()] }),
                "networkMode",
            ),
            (
                json!({ "family": "f", "revision": 3, "containerDefinitions": [web()] }),
                "revision",
            ),
            (
                json!({ "family": "f", "containerDefinitions": [] }),
                "containerDefinitions",
            ),
        ];
        for (input, needle) in cases {
            let e = err(input.clone());
            assert!(e.contains(needle), "{input}: {e}");
        }
    }

    /// The audit's FARGATE definition, with `container` merged into its one
    /// container and `task` into the task.
    fn fargate(task: Value, container: Value) -> Value {
        let mut c = json!({ "name": "app", "image": "busybox", "essential": true });
        for (k, v) in container.as_object().expect("object") {
            c[k] = v.clone();
        }
        let mut td = json!({
            "family": "sandbox", "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [c],
        });
        for (k, v) in task.as_object().expect("object") {
            td[k] = v.clone();
        }
        td
    }

    #[test]
    fn fargate_refuses_what_reaches_the_host() {
        let cases = [
            (
                json!({}),
                json!({ "privileged": true }),
                "containerDefinitions[0].privileged",
            ),
            (
                json!({}),
                json!({ "linuxParameters": { "capabilities": { "add": ["SYS_ADMIN"] } } }),
                "containerDefinitions[0].linuxParameters.capabilities.add[0]",
            ),
            (
                json!({}),
                json!({ "linuxParameters": { "capabilities": { "add": ["SYS_PTRACE", "ALL"] } } }),
                "containerDefinitions[0].linuxParameters.capabilities.add[1]",
            ),
            (
                json!({}),
                json!({ "linuxParameters": { "devices": [{ "hostPath": "/dev/sda" }] } }),
                "containerDefinitions[0].linuxParameters.devices",
            ),
            (
                json!({ "volumes": [{ "name": "h", "host": { "sourcePath": "/etc" } }] }),
                json!({}),
                "volumes[0].host.sourcePath",
            ),
            (json!({ "pidMode": "host" }), json!({}), "pidMode"),
            (json!({ "ipcMode": "host" }), json!({}), "ipcMode"),
            (json!({ "networkMode": "host" }), json!({}), "networkMode"),
            (json!({ "networkMode": "bridge" }), json!({}), "networkMode"),
            (
                json!({}),
                json!({ "systemControls": [{ "namespace": "kernel.shmmax", "value": "1" }] }),
                "containerDefinitions[0].systemControls[0].namespace",
            ),
            (
                json!({}),
                json!({ "dockerSecurityOptions": ["no-new-privileges"] }),
                "containerDefinitions[0].dockerSecurityOptions",
            ),
            (
                json!({}),
                json!({ "stopTimeout": 121 }),
                "containerDefinitions[0].stopTimeout",
            ),
        ];
        for (task, container, field) in cases {
            let input = fargate(task, container);
            let e = prepare(td(input.clone())).expect_err("refused");
            assert_eq!(e.kind, crate::error::ErrorKind::ClientException, "{e}");
            assert!(e.message.starts_with(&format!("{field}: ")), "{input}: {e}");
            // The same rules hold when a stored definition is launched.
            let stored = td(input);
            assert!(
                check_launch(&stored, &LaunchType::Fargate).is_err(),
                "{field}"
            );
        }
        // What Fargate allows.
        let allowed = fargate(
            json!({ "pidMode": "task" }),
            json!({
                "user": "1000",
                "linuxParameters": { "capabilities": { "add": ["SYS_PTRACE"], "drop": ["NET_RAW"] } },
                "systemControls": [{ "namespace": "net.ipv4.tcp_keepalive_time", "value": "60" }],
            }),
        );
        prepare(td(allowed.clone())).expect("allowed on Fargate");
        // The same privileged definition is fine on EC2.
        let mut ec2 = fargate(json!({}), json!({ "privileged": true }));
        ec2["requiresCompatibilities"] = json!(["EC2"]);
        let p = prepare(td(ec2)).expect("EC2 allows privileged");
        check_launch(&p.definition, &LaunchType::Ec2).expect("EC2 launch");
        assert!(check_launch(&p.definition, &LaunchType::Fargate).is_err());
    }

    #[test]
    fn security_options_are_applied_or_refused() {
        let with = |opts: Value| {
            let mut c = web();
            c["dockerSecurityOptions"] = opts;
            json!({ "family": "f", "containerDefinitions": [c] })
        };
        let p = prepare(td(with(json!(["no-new-privileges"])))).expect("valid");
        assert!(no_new_privileges(&p.definition.container_definitions[0]));
        assert!(!p
            .ignored
            .iter()
            .any(|i| i.contains("dockerSecurityOptions")));
        let p = prepare(td(with(json!(["no-new-privileges:false"])))).expect("valid");
        assert!(!no_new_privileges(&p.definition.container_definitions[0]));
        for (opt, needle) in [
            ("label:type:svirt_apache_t", "SELinux"),
            ("apparmor:docker-default", "AppArmor"),
            ("seccomp:unconfined", "not one of"),
        ] {
            let e = err(with(json!(["no-new-privileges", opt])));
            assert!(
                e.contains("containerDefinitions[0].dockerSecurityOptions[1]")
                    && e.contains(needle),
                "{opt}: {e}"
            );
        }
        let mut c = web();
        c["linuxParameters"] = json!({ "devices": [{ "hostPath": "/dev/fuse" }] });
        let e = err(json!({ "family": "f", "containerDefinitions": [c] }));
        assert!(
            e.contains("containerDefinitions[0].linuxParameters.devices"),
            "{e}"
        );
    }

    #[test]
    fn linux_parameters_round_trip_and_report_what_is_ignored() {
        let mut c = web();
        c["linuxParameters"] = json!({
            "capabilities": { "add": ["NET_ADMIN"] },
            "initProcessEnabled": true,
            "tmpfs": [{ "containerPath": "/run", "size": 64 }],
        });
        let p = prepare(td(
            json!({ "family": "f", "containerDefinitions": [c.clone()] }),
        ))
        .expect("valid");
        let out = serde_json::to_value(&p.definition).expect("json");
        assert_eq!(
            out["containerDefinitions"][0]["linuxParameters"],
            c["linuxParameters"]
        );
        for field in ["initProcessEnabled", "tmpfs"] {
            let path = format!("containerDefinitions[0].linuxParameters.{field}");
            assert!(p.ignored.contains(&path), "{path}: {:?}", p.ignored);
        }
        assert_eq!(
            p.definition.container_definitions[0].cap_add(),
            ["NET_ADMIN"]
        );
        c["linuxParameters"] = json!({ "capabilitiez": {} });
        let e = err(json!({ "family": "f", "containerDefinitions": [c] }));
        assert!(
            e.contains("containerDefinitions[0].linuxParameters.capabilitiez: unknown"),
            "{e}"
        );
    }

    #[test]
    fn volume_names_are_ecs_names() {
        let with_volume = |name: &str| {
            let mut c = web();
            c["mountPoints"] = json!([{ "sourceVolume": name, "containerPath": "/data" }]);
            json!({ "family": "f", "volumes": [{ "name": name }], "containerDefinitions": [c] })
        };
        let long = "v".repeat(256);
        for name in [
            "",
            "/",
            "..",
            ".",
            "a/b",
            "../../../../../../../../etc",
            "a\0b",
            &long,
        ] {
            let e = err(with_volume(name));
            assert!(e.contains("volumes[0].name: "), "{name:?}: {e}");
        }
        prepare(td(with_volume("data_1-x"))).expect("a good name");
        prepare(td(with_volume(&"v".repeat(255)))).expect("255 characters");
        let mut c = web();
        c["mountPoints"] = json!([{ "sourceVolume": "nope", "containerPath": "/data" }]);
        let e = err(
            json!({ "family": "f", "volumes": [{ "name": "data" }], "containerDefinitions": [c] }),
        );
        assert!(
            e.contains("containerDefinitions[0].mountPoints[0].sourceVolume"),
            "{e}"
        );
        c["mountPoints"] = json!([{ "sourceVolume": "data", "containerPath": "data" }]);
        let e = err(
            json!({ "family": "f", "volumes": [{ "name": "data" }], "containerDefinitions": [c] }),
        );
        assert!(
            e.contains("containerDefinitions[0].mountPoints[0].containerPath"),
            "{e}"
        );
        let e = err(
            json!({ "family": "f", "volumes": [{ "name": "d" }, { "name": "d" }], "containerDefinitions": [web()] }),
        );
        assert!(e.contains("volumes[1].name: duplicate"), "{e}");
        let e = err(
            json!({ "family": "f", "volumes": [{ "name": "d", "host": { "sourcePath": "etc" } }], "containerDefinitions": [web()] }),
        );
        assert!(e.contains("volumes[0].host.sourcePath"), "{e}");
    }

    #[test]
    fn other_names_are_checked_per_field() {
        let long = "n".repeat(256);
        for name in ["", "/", "..", "a/b", "a\0b", &long] {
            let e = err(json!({ "family": name, "containerDefinitions": [web()] }));
            assert!(e.contains("family: "), "{name:?}: {e}");
            let e = err(
                json!({ "family": "f", "containerDefinitions": [{ "name": name, "image": "b", "memory": 64 }] }),
            );
            assert!(
                e.contains("containerDefinitions[0].name: "),
                "{name:?}: {e}"
            );
        }
        // ECS allows 255-character container names; they still get runtime
        // ids and log names that fit (names::runtime_id, names::file_stem).
        let c = json!({ "name": "c".repeat(255), "image": "b", "memory": 64 });
        prepare(td(json!({ "family": "f", "containerDefinitions": [c] }))).expect("255 characters");
    }

    #[test]
    fn extreme_numbers_are_refused_naming_the_field() {
        for s in [
            "inf vcpu",
            "NaN vcpu",
            "-1 vcpu",
            "1e300 vcpu",
            "18446744073709551615",
            "0",
            "262145",
        ] {
            assert_eq!(parse_cpu(s), None, "{s}");
        }
        for s in [
            "1e300gb",
            "inf gb",
            "-0.5gb",
            "9223372036854775808",
            "0mb",
            "1073741825",
        ] {
            assert_eq!(parse_memory(s), None, "{s}");
        }
        assert_eq!(parse_cpu("256 vcpu"), Some(MAX_CPU_UNITS));
        assert_eq!(parse_memory("1048576 GB"), Some(MAX_MEMORY_MIB));
        let container = |field: &str, value: Value| {
            let mut c = web();
            c[field] = value;
            json!({ "family": "f", "containerDefinitions": [c] })
        };
        let cases = [
            (
                container("cpu", json!(u64::MAX)),
                "containerDefinitions[0].cpu: 18446744073709551615",
            ),
            (
                container("cpu", json!(9_223_372_036_854_775_808u64)),
                "containerDefinitions[0].cpu",
            ),
            (
                container("memory", json!(1u64 << 63)),
                "containerDefinitions[0].memory",
            ),
            (
                container("memoryReservation", json!(u64::MAX)),
                "containerDefinitions[0].memoryReservation",
            ),
            (
                container("stopTimeout", json!(u64::MAX)),
                "containerDefinitions[0].stopTimeout",
            ),
            (
                container("startTimeout", json!(u64::MAX)),
                "containerDefinitions[0].startTimeout",
            ),
            (
                json!({ "family": "f", "cpu": "inf vcpu", "containerDefinitions": [web()] }),
                "cpu: ",
            ),
            (
                json!({ "family": "f", "memory": "1e300gb", "containerDefinitions": [web()] }),
                "memory: ",
            ),
        ];
        for (input, needle) in cases {
            let e = err(input.clone());
            assert!(e.contains(needle), "{input}: {e}");
        }
        // Ten containers at the maximum still sum without wrapping.
        let big =
            json!({ "name": "a", "image": "b", "cpu": MAX_CPU_UNITS, "memory": MAX_MEMORY_MIB });
        let defs: Vec<Value> = (0..10)
            .map(|i| {
                let mut c = big.clone();
                c["name"] = json!(format!("c{i}"));
                c
            })
            .collect();
        let p = prepare(td(json!({ "family": "f", "containerDefinitions": defs }))).expect("valid");
        let needs = crate::ecs::task_needs(&p.definition, &Value::Null).expect("needs");
        assert_eq!(needs, (10 * MAX_CPU_UNITS, 10 * MAX_MEMORY_MIB));
        // A stored definition that skipped registration cannot wrap either.
        let mut hostile = p.definition;
        hostile.container_definitions[0].cpu = u64::MAX;
        assert!(crate::ecs::task_needs(&hostile, &Value::Null).is_err());
    }

    #[test]
    fn fargate_pairs() {
        assert!(fargate_memory_allowed(256, 512));
        assert!(!fargate_memory_allowed(256, 4096));
        assert!(fargate_memory_allowed(1024, 8192));
        assert!(!fargate_memory_allowed(1024, 8193));
        assert!(fargate_memory_allowed(16384, 122880));
        assert!(!fargate_memory_allowed(300, 1024));
    }
}

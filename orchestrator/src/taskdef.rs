//! Registering a task definition: ECS's validation, each message naming the
//! field path, and its normalization (units, defaults). Pure: no store.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{EcsError, EcsResult};
use crate::model::{ContainerDefinition, TaskDefinition};

pub const NETWORK_MODES: &[&str] = &["bridge", "host", "awsvpc", "none"];
pub const LAUNCH_TYPES: &[&str] = &["EC2", "FARGATE", "EXTERNAL"];
const MAX_CONTAINERS: usize = 10;
const MIN_CONTAINER_MEMORY: u64 = 6;
const DEPENDS_ON_CONDITIONS: &[&str] = &["START", "COMPLETE", "SUCCESS", "HEALTHY"];

/// Request fields ECS documents that berth accepts but does not act on.
const IGNORED_TASK_FIELDS: &[&str] = &[
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// Container definition fields ECS documents that berth accepts but does
/// not act on (yet).
const IGNORED_CONTAINER_FIELDS: &[&str] = &[
    "repositoryCredentials",
    "environmentFiles",
    "secrets",
    "disableNetworking",
    "dockerSecurityOptions",
    "interactive",
    "pseudoTerminal",
    "dockerLabels",
    "logConfiguration",
    "firelensConfiguration",
    "resourceRequirements",
    "credentialSpecs",
    "restartPolicy",
    "versionConsistency",
    "gpu",
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

/// Task-level cpu: "1024", "1 vCPU", "0.25 vcpu" → units.
pub fn parse_cpu(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("vcpu") {
        let cores: f64 = v.trim().parse().ok()?;
        return (cores > 0.0).then(|| (cores * 1024.0).round() as u64);
    }
    t.parse().ok().filter(|&n| n > 0)
}

/// Task-level memory: "512", "1GB", "0.5 gb" → MiB.
pub fn parse_memory(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        let gb: f64 = v.trim().parse().ok()?;
        return (gb > 0.0).then(|| (gb * 1024.0).round() as u64);
    }
    if let Some(v) = t.strip_suffix("mb").or_else(|| t.strip_suffix("mib")) {
        return v.trim().parse().ok().filter(|&n| n > 0);
    }
    t.parse().ok().filter(|&n| n > 0)
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
    if td.task_role_arn.is_some() {
        ignored.push("taskRoleArn".into());
    }
    if td.execution_role_arn.is_some() {
        ignored.push("executionRoleArn".into());
    }
    if td.family.is_empty() {
        return Err(EcsError::client("family: must not be empty"));
    }
    if td.family.len() > 255
        || !td
            .family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(EcsError::client(format!(
            "family: {:?}: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed",
            td.family
        )));
    }
    for (i, lt) in td.requires_compatibilities.iter().enumerate() {
        if !LAUNCH_TYPES.contains(&lt.as_str()) {
            return Err(EcsError::invalid(format!(
                "requiresCompatibilities[{i}]: {lt:?} is not one of EC2, FARGATE, EXTERNAL"
            )));
        }
    }
    let fargate = td.requires_compatibilities.iter().any(|l| l == "FARGATE");
    if let Some(mode) = &td.network_mode {
        if !NETWORK_MODES.contains(&mode.as_str()) {
            return Err(EcsError::invalid(format!(
                "networkMode: {mode:?} is not one of bridge, host, awsvpc, none"
            )));
        }
    }
    let cpu = match &td.cpu {
        Some(c) => Some(parse_cpu(c).ok_or_else(|| {
            EcsError::client(format!("cpu: invalid 'cpu' setting for task: {c:?}"))
        })?),
        None => None,
    };
    let memory = match &td.memory {
        Some(m) => Some(parse_memory(m).ok_or_else(|| {
            EcsError::client(format!("memory: invalid 'memory' setting for task: {m:?}"))
        })?),
        None => None,
    };
    td.cpu = cpu.map(|c| c.to_string());
    td.memory = memory.map(|m| m.to_string());

    let containers = &td.container_definitions;
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
        check_other(&path, &c.other, IGNORED_CONTAINER_FIELDS, &mut ignored)?;
        check_container(&path, c, memory)?;
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
    check_depends_on(containers)?;
    check_links(&td)?;
    check_ports(&td)?;
    if fargate {
        check_fargate(&td, cpu, memory)?;
    }

    // What ECS fills in on registration.
    if td.network_mode.is_none() && !fargate {
        td.network_mode = Some("bridge".into());
    }
    for c in &mut td.container_definitions {
        c.essential = Some(c.is_essential());
        for pm in &mut c.port_mappings {
            if pm.protocol.is_none() {
                pm.protocol = Some("tcp".into());
            }
            if pm.host_port.is_none() && td.network_mode.as_deref() != Some("bridge") {
                pm.host_port = pm.container_port;
            }
        }
    }
    let mut compat: BTreeSet<String> = td.requires_compatibilities.iter().cloned().collect();
    compat.insert("EC2".into());
    td.compatibilities = compat.into_iter().collect();
    Ok(Prepared {
        definition: td,
        ignored,
    })
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
    if c.name.is_empty() {
        return Err(EcsError::client(format!("{path}.name: must not be empty")));
    }
    if c.name.len() > 255
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(EcsError::client(format!(
            "{path}.name: {:?}: up to 255 letters, numbers, hyphens and underscores are allowed",
            c.name
        )));
    }
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
            if !matches!(td.network_mode.as_deref(), None | Some("bridge")) {
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
            if !DEPENDS_ON_CONDITIONS.contains(&d.condition.as_str()) {
                return Err(EcsError::client(format!(
                    "{path}.condition: {:?} is not one of START, COMPLETE, SUCCESS, HEALTHY",
                    d.condition
                )));
            }
            if matches!(d.condition.as_str(), "COMPLETE" | "SUCCESS") && target.is_essential() {
                return Err(EcsError::client(format!(
                    "{path}: container {:?} is waited on with {} and so must not be essential",
                    d.container_name, d.condition
                )));
            }
            if d.condition == "HEALTHY" && target.health_check.is_none() {
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
            let awsvpc_or_host = matches!(td.network_mode.as_deref(), Some("awsvpc" | "host"));
            if awsvpc_or_host {
                if let Some(hp) = pm.host_port {
                    if hp != port {
                        return Err(EcsError::invalid(format!(
                            "{path}.hostPort: must equal containerPort ({port}) in {} network mode",
                            td.network_mode.as_deref().unwrap_or_default()
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

fn check_fargate(td: &TaskDefinition, cpu: Option<u64>, memory: Option<u64>) -> EcsResult<()> {
    let (Some(cpu), Some(memory)) = (cpu, memory) else {
        return Err(EcsError::client(
            "cpu, memory: Fargate requires task-level 'cpu' and 'memory'",
        ));
    };
    if !fargate_memory_allowed(cpu, memory) {
        return Err(EcsError::client(format!(
            "cpu, memory: No Fargate configuration exists for given values: cpu {cpu}, memory {memory}"
        )));
    }
    if td.network_mode.as_deref() != Some("awsvpc") {
        return Err(EcsError::client(
            "networkMode: Fargate only supports network mode 'awsvpc'",
        ));
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        if c.privileged == Some(true) {
            return Err(EcsError::client(format!(
                "containerDefinitions[{i}].privileged: Fargate does not support privileged containers"
            )));
        }
    }
    for (i, v) in td.volumes.iter().enumerate() {
        if v.get("host").and_then(|h| h.get("sourcePath")).is_some() {
            return Err(EcsError::client(format!(
                "volumes[{i}].host.sourcePath: Fargate does not support host volumes"
            )));
        }
    }
    Ok(())
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
        assert_eq!(p.definition.network_mode.as_deref(), Some("bridge"));
        assert_eq!(
            p.definition.container_definitions[0].port_mappings[0]
                .protocol
                .as_deref(),
            Some("tcp")
        );
        assert!(p
            .ignored
            .contains(&"containerDefinitions[0].logConfiguration".to_string()));
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

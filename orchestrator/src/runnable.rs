//! What a container definition must be for the runtime to run it, checked
//! at registration: the runtime's own rules (capability and rlimit names,
//! an absolute working directory, environment names, a command),
//! each error naming the request field. Without them a definition was
//! accepted and every task of it failed to start. Pure: no store, no image.

use berth_runtime::spec::{capability_name, rlimit_name, MAX_HOSTNAME};
use serde_json::Value;

use crate::error::{EcsError, EcsResult};
use crate::model::ContainerDefinition;

fn refuse(path: &str, field: &str, why: impl std::fmt::Display) -> EcsError {
    EcsError::client(format!("{path}.{field}: {why}"))
}

/// `path` is the container's request path (`containerDefinitions[0]`).
pub fn check(path: &str, c: &ContainerDefinition) -> EcsResult<()> {
    if let Some(h) = &c.hostname {
        if h.is_empty() || h.len() > MAX_HOSTNAME || h.contains(['/', '\0']) {
            return Err(refuse(
                path,
                "hostname",
                format!("{h:?}: must be 1 to {MAX_HOSTNAME} characters, without '/' or NUL"),
            ));
        }
    }
    if let Some(dir) = &c.working_directory {
        if !dir.starts_with('/') {
            return Err(refuse(
                path,
                "workingDirectory",
                format!("{dir:?}: an absolute path is required"),
            ));
        }
    }
    for (j, e) in c.environment.iter().enumerate() {
        if e.name.contains('=') {
            return Err(refuse(
                path,
                &format!("environment[{j}].name"),
                format!("{:?}: must not contain '='", e.name),
            ));
        }
    }
    if c.entry_point
        .as_ref()
        .and_then(|e| e.first())
        .is_some_and(|a| a.is_empty())
    {
        return Err(refuse(
            path,
            "entryPoint[0]",
            "the program must not be empty",
        ));
    }
    for (j, u) in c.ulimits.iter().flatten().enumerate() {
        check_ulimit(path, j, u)?;
    }
    for (field, caps) in [("add", c.cap_add()), ("drop", c.cap_drop())] {
        for (j, cap) in caps.iter().enumerate() {
            if !cap.eq_ignore_ascii_case("ALL") {
                capability_name(cap).map_err(|why| {
                    refuse(
                        path,
                        &format!("linuxParameters.capabilities.{field}[{j}]"),
                        why,
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// `{"name": "nofile", "softLimit": N, "hardLimit": M}`, N ≤ M.
fn check_ulimit(path: &str, j: usize, u: &Value) -> EcsResult<()> {
    let field = |f: &str| format!("ulimits[{j}].{f}");
    let name = u["name"]
        .as_str()
        .ok_or_else(|| refuse(path, &field("name"), "must be a string"))?;
    if rlimit_name(name).is_none() {
        return Err(refuse(
            path,
            &field("name"),
            format!("unknown ulimit {name:?}"),
        ));
    }
    let limit = |f: &str| {
        u[f].as_u64()
            .ok_or_else(|| refuse(path, &field(f), "must be a whole number from 0"))
    };
    let (soft, hard) = (limit("softLimit")?, limit("hardLimit")?);
    if soft > hard {
        return Err(refuse(
            path,
            &field("softLimit"),
            format!("{soft} is above the hardLimit {hard}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::model::TaskDefinition;
    use crate::taskdef::prepare;

    /// Registration's answer for a definition whose one container has
    /// `extra` merged in.
    fn register(extra: Value) -> Result<(), String> {
        let mut c = json!({ "name": "a", "image": "busybox", "memory": 32 });
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        let td: TaskDefinition =
            serde_json::from_value(json!({ "family": "f", "containerDefinitions": [c] }))
                .expect("task definition");
        prepare(td).map(|_| ()).map_err(|e| e.to_string())
    }

    /// Each was accepted at registration and refused by the runtime when a
    /// task started (found by the taskdef_spec fuzz target).
    #[test]
    fn what_the_runtime_refuses_is_refused_at_registration() {
        for (extra, field) in [
            (
                json!({ "workingDirectory": "tmp" }),
                "containerDefinitions[0].workingDirectory",
            ),
            (
                json!({ "environment": [{ "name": "=x", "value": "1" }] }),
                "containerDefinitions[0].environment[0].name",
            ),
            (
                json!({ "entryPoint": [""] }),
                "containerDefinitions[0].entryPoint[0]",
            ),
            (
                json!({ "ulimits": [{ "name": "bogus", "softLimit": 1, "hardLimit": 2 }] }),
                "containerDefinitions[0].ulimits[0].name",
            ),
            (
                json!({ "ulimits": [{ "name": "nofile", "softLimit": 3, "hardLimit": 2 }] }),
                "containerDefinitions[0].ulimits[0].softLimit",
            ),
            (
                json!({ "ulimits": [{ "name": "nofile", "softLimit": -1, "hardLimit": 2 }] }),
                "containerDefinitions[0].ulimits[0].softLimit",
            ),
            (
                json!({ "linuxParameters": { "capabilities": { "add": ["BOGUS"] } } }),
                "containerDefinitions[0].linuxParameters.capabilities.add[0]",
            ),
            (
                json!({ "linuxParameters": { "capabilities": { "drop": ["NET_RWA"] } } }),
                "containerDefinitions[0].linuxParameters.capabilities.drop[0]",
            ),
        ] {
            let err = register(extra.clone()).expect_err(&extra.to_string());
            assert!(err.contains(&format!("{field}: ")), "{extra}: {err}");
        }
    }

    #[test]
    fn what_the_runtime_takes_is_accepted() {
        for extra in [
            json!({ "workingDirectory": "/srv" }),
            json!({ "environment": [{ "name": "A", "value": "b=c" }] }),
            json!({ "entryPoint": ["sh", "-c"], "command": [""] }),
            json!({ "ulimits": [{ "name": "NOFILE", "softLimit": 0, "hardLimit": 0 },
                                { "name": "RLIMIT_CORE", "softLimit": 1, "hardLimit": 2 }] }),
            json!({ "linuxParameters": { "capabilities": {
                "add": ["ALL", "cap_net_admin"], "drop": ["all", "SYS_ADMIN"] } } }),
        ] {
            register(extra.clone()).unwrap_or_else(|e| panic!("{extra}: {e}"));
        }
    }
}

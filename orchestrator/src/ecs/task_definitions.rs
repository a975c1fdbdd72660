//! Task definitions: families and their revisions.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{decode, encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::model::{name_from_arn, Tag, TaskDefinition, TaskDefinitionStatus};
use crate::store::{keys, Expect, Op};
use crate::{names, taskdef};

/// A task definition as stored: the definition and its tags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredTaskDefinition {
    pub(super) definition: TaskDefinition,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Family {
    latest: u64,
}

impl Ecs {
    /// Register a new revision of the request's family. Returns the
    /// response and the field paths accepted but not acted on.
    pub fn register_task_definition(
        &self,
        request: TaskDefinition,
    ) -> EcsResult<(serde_json::Value, Vec<String>)> {
        let prepared = taskdef::prepare(request)?;
        let mut definition = prepared.definition;
        let tags = std::mem::take(&mut definition.tags);
        crate::tags::check("tags", &tags)?;
        let family = definition.family.clone();
        let stored = retry(|| {
            let (latest, expect) = match self.store.get(&keys::family(&family))? {
                Some(rec) => (
                    decode::<Family>(&rec.value)?.latest,
                    Expect::Revision(rec.revision),
                ),
                None => (0, Expect::Absent),
            };
            let revision = latest + 1;
            let mut d = definition.clone();
            d.revision = Some(revision);
            d.status = Some(TaskDefinitionStatus::Active);
            d.registered_at = Some(now());
            d.task_definition_arn = Some(
                self.partition
                    .arn(&format!("task-definition/{family}:{revision}")),
            );
            let stored = StoredTaskDefinition {
                definition: d,
                tags: tags.clone(),
            };
            let ops = [
                Op::Put {
                    key: keys::family(&family),
                    value: encode(&Family { latest: revision })?,
                    expect,
                },
                Op::Put {
                    key: keys::task_definition(&family, revision),
                    value: encode(&stored)?,
                    expect: Expect::Absent,
                },
            ];
            Ok(self.store.commit(&ops).map(|_| stored))
        })?;
        Ok((
            json!({ "taskDefinition": stored.definition, "tags": stored.tags }),
            prepared.ignored,
        ))
    }

    /// `family`, `family:revision` or an ARN → the stored record. A bare
    /// family means its latest ACTIVE revision.
    pub(super) fn find_task_definition(
        &self,
        reference: &str,
    ) -> EcsResult<(String, crate::store::Record, StoredTaskDefinition)> {
        let missing =
            || EcsError::client(format!("Unable to describe task definition: {reference}"));
        let spec = name_from_arn(reference);
        let spec = spec.strip_prefix("task-definition/").unwrap_or(spec);
        match spec.rsplit_once(':') {
            Some((family, rev)) => {
                let revision: u64 = rev.parse().map_err(|_| {
                    EcsError::client(format!(
                        "taskDefinition: {reference:?}: revision must be a number"
                    ))
                })?;
                names::check("taskDefinition", family)?;
                let key = keys::task_definition(family, revision);
                let rec = self.store.get(&key)?.ok_or_else(missing)?;
                let stored = decode(&rec.value)?;
                Ok((key, rec, stored))
            }
            None => {
                names::check("taskDefinition", spec)?;
                let mut found = None;
                for (key, rec) in self.store.list(&keys::task_definitions_of(spec))? {
                    let stored: StoredTaskDefinition = decode(&rec.value)?;
                    if stored.definition.status == Some(TaskDefinitionStatus::Active) {
                        found = Some((key, rec, stored));
                    }
                }
                found.ok_or_else(missing)
            }
        }
    }

    /// Any revision, ACTIVE or not: a running task keeps its definition.
    pub fn task_definition(&self, reference: &str) -> EcsResult<TaskDefinition> {
        Ok(self.find_task_definition(reference)?.2.definition)
    }

    /// The definition a task will run: it must be ACTIVE.
    pub fn active_task_definition(&self, reference: &str) -> EcsResult<TaskDefinition> {
        let (_, _, stored) = self.find_task_definition(reference)?;
        if stored.definition.status != Some(TaskDefinitionStatus::Active) {
            return Err(EcsError::client(format!(
                "TaskDefinition is inactive: {reference}"
            )));
        }
        Ok(stored.definition)
    }

    pub fn describe_task_definition(
        &self,
        reference: &str,
        include_tags: bool,
    ) -> EcsResult<serde_json::Value> {
        let (_, _, stored) = self.find_task_definition(reference)?;
        let mut out = json!({ "taskDefinition": stored.definition });
        if include_tags {
            out["tags"] = json!(stored.tags);
        }
        Ok(out)
    }

    /// ARNs by family then revision; `status` ACTIVE (default), INACTIVE
    /// or ALL; `descending` reverses.
    pub fn list_task_definitions(
        &self,
        family_prefix: Option<&str>,
        status: Option<&str>,
        descending: bool,
    ) -> EcsResult<serde_json::Value> {
        let wanted = status_filter(status);
        let mut arns = Vec::new();
        for (_, rec) in self.store.list(&keys::task_definitions_with_family_prefix(
            family_prefix.unwrap_or(""),
        ))? {
            let stored: StoredTaskDefinition = decode(&rec.value)?;
            let d = stored.definition;
            if wanted.is_none() || d.status == wanted {
                arns.extend(d.task_definition_arn);
            }
        }
        if descending {
            arns.reverse();
        }
        Ok(json!({ "taskDefinitionArns": arns }))
    }

    pub fn list_task_definition_families(
        &self,
        family_prefix: Option<&str>,
        status: Option<&str>,
    ) -> EcsResult<serde_json::Value> {
        let filter = status_filter(status);
        let mut families: Vec<String> = Vec::new();
        for (_, rec) in self.store.list(&keys::task_definitions_with_family_prefix(
            family_prefix.unwrap_or(""),
        ))? {
            let stored: StoredTaskDefinition = decode(&rec.value)?;
            let d = stored.definition;
            let active = d.status == Some(TaskDefinitionStatus::Active);
            let wanted = match &filter {
                None => true,
                Some(TaskDefinitionStatus::Inactive) => !active,
                _ => active,
            };
            if wanted && families.last() != Some(&d.family) {
                families.push(d.family);
            }
        }
        if filter == Some(TaskDefinitionStatus::Inactive) {
            // A family is INACTIVE only when none of its revisions is ACTIVE.
            let active: Vec<String> = match self.list_task_definition_families(
                family_prefix,
                Some(TaskDefinitionStatus::Active.as_str()),
            )?["families"]
                .as_array()
            {
                Some(a) => a
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect(),
                None => Vec::new(),
            };
            families.retain(|f| !active.contains(f));
        }
        families.dedup();
        Ok(json!({ "families": families }))
    }

    pub fn deregister_task_definition(&self, reference: &str) -> EcsResult<serde_json::Value> {
        if !name_from_arn(reference).contains(':') {
            return Err(EcsError::client(format!(
                "taskDefinition: {reference:?}: give family:revision or a full ARN"
            )));
        }
        let definition = retry(|| {
            let (key, rec, mut stored) = self.find_task_definition(reference)?;
            stored.definition.status = Some(TaskDefinitionStatus::Inactive);
            stored.definition.deregistered_at = Some(now());
            let op = Op::Put {
                key,
                value: encode(&stored)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| stored.definition))
        })?;
        Ok(json!({ "taskDefinition": definition }))
    }
}

/// list-task-definitions' `--status`: one status (ACTIVE when absent),
/// or None for `ALL`.
fn status_filter(status: Option<&str>) -> Option<TaskDefinitionStatus> {
    match status {
        Some("ALL") => None,
        Some(s) => Some(TaskDefinitionStatus::parse(s)),
        None => Some(TaskDefinitionStatus::Active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    fn td(family: &str) -> TaskDefinition {
        serde_json::from_value(json!({
            "family": family,
            "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 32 }],
        }))
        .expect("td")
    }
    #[test]
    fn task_definition_revisions() {
        let (_d, ecs) = ecs();
        for n in 1..=3 {
            let (out, _) = ecs.register_task_definition(td("web")).expect("register");
            assert_eq!(out["taskDefinition"]["revision"], n);
        }
        ecs.register_task_definition(td("worker"))
            .expect("register");
        let arn = |s: &str| format!("arn:aws:ecs:local:000000000000:task-definition/{s}");
        assert_eq!(
            ecs.describe_task_definition("web", false).expect("latest")["taskDefinition"]
                ["taskDefinitionArn"],
            arn("web:3")
        );
        ecs.deregister_task_definition("web:3").expect("deregister");
        assert_eq!(
            ecs.describe_task_definition("web", false).expect("latest")["taskDefinition"]
                ["revision"],
            2
        );
        assert!(
            ecs.active_task_definition("web:3").is_err(),
            "inactive cannot run"
        );
        let all = ecs
            .list_task_definitions(Some("web"), None, false)
            .expect("list");
        assert_eq!(
            all["taskDefinitionArns"],
            json!([arn("web:1"), arn("web:2")])
        );
        let inactive = ecs
            .list_task_definitions(None, Some("INACTIVE"), false)
            .expect("list");
        assert_eq!(inactive["taskDefinitionArns"], json!([arn("web:3")]));
        let desc = ecs
            .list_task_definitions(None, Some("ALL"), true)
            .expect("list");
        assert_eq!(desc["taskDefinitionArns"][0], arn("worker:1"));
        assert_eq!(
            ecs.list_task_definition_families(None, None).expect("fams")["families"],
            json!(["web", "worker"])
        );
        assert!(ecs.describe_task_definition("nope", false).is_err());
        assert!(
            ecs.deregister_task_definition("web").is_err(),
            "needs a revision"
        );
    }
}

//! DeleteTaskDefinitions: INACTIVE revisions become DELETE_IN_PROGRESS
//! (still describable, as in ECS, and never runnable); an ACTIVE one, an
//! unknown one or a name without a revision is a failure, not an error.

use serde_json::{json, Value};

use super::{encode, now, retry, Ecs};
use crate::error::{EcsError, EcsResult};
use crate::model::{name_from_arn, Failure, TaskDefinitionStatus};
use crate::store::{Expect, Op};

/// ECS's most references in one call.
const MAX_REFERENCES: usize = 10;

impl Ecs {
    pub fn delete_task_definitions(&self, references: &[String]) -> EcsResult<Value> {
        if references.is_empty() || references.len() > MAX_REFERENCES {
            return Err(EcsError::invalid(format!(
                "taskDefinitions: name 1 to {MAX_REFERENCES} task definitions (family:revision or ARN)"
            )));
        }
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for r in references {
            match self.delete_task_definition(r)? {
                Ok(d) => deleted.push(d),
                Err(why) => failures.push(Failure::on(r, why, None)),
            }
        }
        Ok(json!({ "taskDefinitions": deleted, "failures": failures }))
    }

    /// One reference: the definition now DELETE_IN_PROGRESS, or why not.
    fn delete_task_definition(
        &self,
        reference: &str,
    ) -> EcsResult<Result<crate::model::TaskDefinition, &'static str>> {
        if !name_from_arn(reference).contains(':') {
            return Ok(Err("The specified task definition identifier is invalid. \
                 Specify a valid name or ARN and try again."));
        }
        retry(|| {
            let Ok((key, rec, mut stored)) = self.find_task_definition(reference) else {
                return Ok(Ok(Err("The specified task definition does not exist. \
                     Specify a valid account, family, revision and try again.")));
            };
            match stored.definition.status {
                Some(TaskDefinitionStatus::Active) | None => {
                    return Ok(Ok(Err("The specified task definition is still in ACTIVE \
                         status. Please deregister the target and try again.")))
                }
                Some(TaskDefinitionStatus::DeleteInProgress) => {
                    return Ok(Ok(Ok(stored.definition)))
                }
                _ => {}
            }
            stored.definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
            stored.definition.delete_requested_at = Some(now());
            let op = Op::Put {
                key,
                value: encode(&stored)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| Ok(stored.definition)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    #[test]
    fn only_inactive_revisions_are_deleted() {
        let (_d, ecs) = ecs();
        let td: crate::model::TaskDefinition = serde_json::from_value(json!({
            "family": "web",
            "containerDefinitions": [{ "name": "web", "image": "busybox", "memory": 32 }],
        }))
        .expect("td");
        ecs.register_task_definition(td.clone()).expect("1");
        ecs.register_task_definition(td).expect("2");
        ecs.deregister_task_definition("web:1").expect("deregister");
        let out = ecs
            .delete_task_definitions(&[
                "web:1".into(),
                "web:2".into(),
                "web".into(),
                "web:9".into(),
            ])
            .expect("delete");
        assert_eq!(out["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
        assert!(out["taskDefinitions"][0]["deleteRequestedAt"].is_string());
        let reasons: Vec<&str> = out["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["reason"].as_str())
            .collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("ACTIVE"), "{reasons:?}");
        let d = ecs
            .describe_task_definition("web:1", false)
            .expect("describable");
        assert_eq!(d["taskDefinition"]["status"], "DELETE_IN_PROGRESS");
        assert!(ecs.active_task_definition("web:1").is_err());
        assert!(ecs.delete_task_definitions(&[]).is_err());
    }
}

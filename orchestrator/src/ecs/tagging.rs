//! TagResource, UntagResource and ListTagsForResource: the tags live in
//! each resource's own record (`tags`, where create-time tags already
//! are), so a tag given at create time and one added later are the same.
//! The rules are `tags.rs`'s; which record an ARN names is `arns.rs`'s.

use serde_json::{json, Value};

use super::{decode, encode, retry, Ecs};
use crate::arns::{self, ResourceRef};
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{ClusterStatus, Tag};
use crate::store::{keys, Expect, Op};
use crate::{names, tags};

/// Which operation asks: ListTagsForResource's model has no
/// ResourceNotFoundException, so its misses are InvalidParameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Edit,
    List,
}

fn not_found(arn: &str, caller: Caller) -> EcsError {
    let kind = match caller {
        Caller::Edit => ErrorKind::ResourceNotFoundException,
        Caller::List => ErrorKind::InvalidParameterException,
    };
    EcsError::new(
        kind,
        format!("resourceArn: {arn}: The specified resource could not be found."),
    )
}

impl Ecs {
    pub fn tag_resource(&self, arn: &str, new: &[Tag]) -> EcsResult<Value> {
        tags::check("tags", new)?;
        self.edit_tags(arn, |old| tags::merge(old, new))?;
        Ok(json!({}))
    }

    pub fn untag_resource(&self, arn: &str, tag_keys: &[String]) -> EcsResult<Value> {
        for (i, k) in tag_keys.iter().enumerate() {
            tags::check_key(&format!("tagKeys[{i}]"), k)?;
        }
        self.edit_tags(arn, |old| Ok(tags::remove(old, tag_keys)))?;
        Ok(json!({}))
    }

    pub fn list_tags_for_resource(&self, arn: &str) -> EcsResult<Value> {
        let key = match self.tagged_key(arn, Caller::List)? {
            Some(key) => key,
            None => return Ok(json!({ "tags": [] })),
        };
        let rec = self
            .store
            .get(&key)?
            .ok_or_else(|| not_found(arn, Caller::List))?;
        Ok(json!({ "tags": record_tags(&decode(&rec.value)?)? }))
    }

    /// Read, change and write back the tags of the record `arn` names.
    fn edit_tags(
        &self,
        arn: &str,
        change: impl Fn(&[Tag]) -> EcsResult<Vec<Tag>>,
    ) -> EcsResult<()> {
        let Some(key) = self.tagged_key(arn, Caller::Edit)? else {
            return Err(EcsError::invalid(format!(
                "resourceArn: {arn}: the built-in capacity providers carry no tags"
            )));
        };
        if let Ok(ResourceRef::Task { cluster, id }) = arns::parse("", &self.partition, arn) {
            // A task changes only through update_task (its STOPPED rule).
            let old = self.task(cluster, id)?.tags;
            let new = change(&old)?;
            self.update_task(cluster, id, |t| t.tags = new.clone())?;
            return Ok(());
        }
        retry(|| {
            let rec = self
                .store
                .get(&key)?
                .ok_or_else(|| not_found(arn, Caller::Edit))?;
            let mut record: Value = decode(&rec.value)?;
            let new = change(&record_tags(&record)?)?;
            record["tags"] = serde_json::to_value(new)?;
            let op = Op::Put {
                key: key.clone(),
                value: encode(&record)?,
                expect: Expect::Revision(rec.revision),
            };
            Ok(self.store.commit(&[op]).map(|_| ()))
        })
    }

    /// The store key of the record holding `arn`'s tags (None for a
    /// built-in capacity provider), after checking that its cluster is
    /// ACTIVE and the record exists.
    fn tagged_key(&self, arn: &str, caller: Caller) -> EcsResult<Option<String>> {
        let missing = || not_found(arn, caller);
        let checked = |field: &str, name: &str| names::check(field, name).map_err(|_| missing());
        let key = match arns::parse("resourceArn", &self.partition, arn)? {
            ResourceRef::Elsewhere => return Err(missing()),
            ResourceRef::CapacityProvider(name) => {
                return match super::capacity_providers::BUILT_IN.contains(&name) {
                    true => Ok(None),
                    false => Err(missing()),
                }
            }
            ResourceRef::Cluster(name) => {
                let c = self.cluster(Some(name))?;
                debug_assert_eq!(c.status, ClusterStatus::Active);
                keys::cluster(name)
            }
            ResourceRef::Service { cluster, name } => {
                self.cluster(Some(cluster))?;
                checked("service", name)?;
                keys::service(cluster, name)
            }
            ResourceRef::Task { cluster, id } => {
                self.cluster(Some(cluster))?;
                checked("task", id)?;
                keys::task(cluster, id)
            }
            ResourceRef::ContainerInstance { cluster, id } => {
                self.cluster(Some(cluster))?;
                checked("containerInstance", id)?;
                keys::instance(cluster, id)
            }
            ResourceRef::TaskDefinition { family, revision } => {
                checked("taskDefinition", family)?;
                keys::task_definition(family, revision)
            }
        };
        if self.store.get(&key)?.is_none() {
            return Err(missing());
        }
        Ok(Some(key))
    }
}

/// The `tags` of a stored record (every tagged record keeps them there).
fn record_tags(record: &Value) -> EcsResult<Vec<Tag>> {
    match record.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(t) => Ok(serde_json::from_value(t.clone())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;
    use crate::tags::tag;

    #[test]
    fn create_time_tags_are_the_same_tags() {
        let (_d, ecs) = ecs();
        ecs.create_cluster("lab", vec![tag("team", "a")], None)
            .expect("create");
        let arn = "arn:aws:ecs:local:000000000000:cluster/lab";
        ecs.tag_resource(arn, &[tag("team", "b"), tag("env", "x")])
            .expect("tag");
        assert_eq!(
            ecs.list_tags_for_resource(arn).expect("list")["tags"],
            json!([{"key": "team", "value": "b"}, {"key": "env", "value": "x"}])
        );
        ecs.untag_resource(arn, &["team".into()]).expect("untag");
        let d = ecs.describe_clusters(&["lab".into()]).expect("describe");
        assert_eq!(
            d["clusters"][0]["tags"],
            json!([{"key": "env", "value": "x"}])
        );
    }

    #[test]
    fn misses_and_bad_input() {
        let (_d, ecs) = ecs();
        let base = "arn:aws:ecs:local:000000000000:";
        let kind = |r: EcsResult<Value>| r.unwrap_err().kind;
        assert_eq!(
            kind(ecs.tag_resource(&format!("{base}cluster/nope"), &[tag("a", "")])),
            ErrorKind::ClusterNotFoundException
        );
        assert_eq!(
            kind(ecs.tag_resource(&format!("{base}service/default/nope"), &[tag("a", "")])),
            ErrorKind::ResourceNotFoundException
        );
        assert_eq!(
            kind(ecs.list_tags_for_resource(&format!("{base}task-definition/x:1"))),
            ErrorKind::InvalidParameterException
        );
        assert_eq!(
            kind(ecs.tag_resource("not-an-arn", &[tag("a", "")])),
            ErrorKind::InvalidParameterException
        );
        assert_eq!(
            kind(ecs.tag_resource(&format!("{base}cluster/default"), &[tag("aws:x", "")])),
            ErrorKind::InvalidParameterException
        );
        assert_eq!(
            ecs.list_tags_for_resource(&format!("{base}capacity-provider/FARGATE"))
                .expect("built-in")["tags"],
            json!([])
        );
    }

    #[test]
    fn create_time_tags_follow_the_same_rules() {
        let (_d, ecs) = ecs();
        let e = ecs
            .create_cluster("lab", vec![tag("aws:x", "")], None)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterException);
        assert!(e.message.starts_with("tags[0].key"), "{}", e.message);
        assert!(ecs.cluster(Some("lab")).is_err(), "nothing made");
    }
}

//! PutAttributes, DeleteAttributes and ListAttributes on container
//! instances (ECS's one target type): the attributes are the instance
//! record's own (`attributes`, where registration puts `ecs.*` and
//! register-container-instance's custom ones), so all three see the same
//! list. The rules are `attributes.rs`'s.

use serde_json::{json, Value};

use super::{decode, encode, retry, Ecs};
use crate::attributes as rules;
use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::{name_from_arn, Attribute, ContainerInstance};
use crate::names;
use crate::store::{keys, Expect, Op};

/// An attribute with its target, as the three operations take and give it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetedAttribute {
    pub name: String,
    pub value: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
}

/// ListAttributes' request.
#[derive(Clone, Debug, Default)]
pub struct ListAttributes {
    pub cluster: Option<String>,
    pub target_type: String,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
}

fn shown(a: &Attribute, target: &str) -> Value {
    let mut v = json!({
        "name": a.name,
        "targetType": rules::CONTAINER_INSTANCE,
        "targetId": target,
    });
    if let Some(value) = &a.value {
        v["value"] = json!(value);
    }
    v
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edit {
    Put,
    Delete,
}

impl Ecs {
    pub fn put_attributes(
        &self,
        cluster: Option<&str>,
        attributes: &[TargetedAttribute],
    ) -> EcsResult<Value> {
        self.edit_attributes(cluster, attributes, Edit::Put)
    }

    pub fn delete_attributes(
        &self,
        cluster: Option<&str>,
        attributes: &[TargetedAttribute],
    ) -> EcsResult<Value> {
        self.edit_attributes(cluster, attributes, Edit::Delete)
    }

    /// Check every attribute and target first, then change all the
    /// instances named in one commit: all or nothing.
    fn edit_attributes(
        &self,
        cluster: Option<&str>,
        attributes: &[TargetedAttribute],
        edit: Edit,
    ) -> EcsResult<Value> {
        if attributes.is_empty() {
            return Err(EcsError::invalid("attributes: name at least one attribute"));
        }
        let cluster = self.cluster(cluster)?;
        self.implicit_instance(&cluster)?;
        let mut by_instance: Vec<(String, Vec<Attribute>)> = Vec::new();
        for (i, a) in attributes.iter().enumerate() {
            let field = format!("attributes[{i}]");
            rules::check_target_type(&format!("{field}.targetType"), a.target_type.as_deref())?;
            let plain = Attribute {
                name: a.name.clone(),
                value: a.value.clone(),
            };
            rules::check(&field, &plain)?;
            let target = a.target_id.as_deref().ok_or_else(|| {
                EcsError::invalid(format!("{field}.targetId: required (a container instance)"))
            })?;
            let id = names::lookup(&format!("{field}.targetId"), target)
                .map_err(|_| target_missing(target))?
                .to_string();
            match by_instance.iter_mut().find(|(x, _)| *x == id) {
                Some((_, list)) => list.push(plain),
                None => by_instance.push((id, vec![plain])),
            }
        }
        let name = cluster.cluster_name.clone();
        retry(|| {
            let mut ops = Vec::new();
            for (id, list) in &by_instance {
                let key = keys::instance(&name, id);
                let rec = self.store.get(&key)?.ok_or_else(|| target_missing(id))?;
                let mut ci: ContainerInstance = decode(&rec.value)?;
                ci.attributes = match edit {
                    Edit::Put => rules::put(&ci.attributes, list)?,
                    Edit::Delete => rules::delete(&ci.attributes, list),
                };
                ci.version += 1;
                ops.push(Op::Put {
                    key,
                    value: encode(&ci)?,
                    expect: Expect::Revision(rec.revision),
                });
            }
            Ok(self.store.commit(&ops).map(|_| ()))
        })?;
        let out: Vec<Value> = by_instance
            .iter()
            .flat_map(|(id, list)| {
                let arn = self
                    .partition
                    .arn(&format!("container-instance/{name}/{id}"));
                list.iter().map(move |a| shown(a, &arn)).collect::<Vec<_>>()
            })
            .collect();
        Ok(json!({ "attributes": out }))
    }

    /// Every attribute of the cluster's container instances (ECS's own
    /// `ecs.*` too), filtered by name and value.
    pub fn list_attributes(&self, req: &ListAttributes) -> EcsResult<Value> {
        rules::check_target_type("targetType", Some(&req.target_type))?;
        if req.attribute_value.is_some() && req.attribute_name.is_none() {
            return Err(EcsError::invalid(
                "attributeValue: give attributeName with attributeValue",
            ));
        }
        let cluster = self.cluster(req.cluster.as_deref())?;
        self.implicit_instance(&cluster)?;
        let mut out = Vec::new();
        for (_, rec) in self
            .store
            .list(&keys::instances_of(&cluster.cluster_name))?
        {
            let ci: ContainerInstance = decode(&rec.value)?;
            for a in &ci.attributes {
                let wanted = rules::matches(
                    a,
                    req.attribute_name.as_deref(),
                    req.attribute_value.as_deref(),
                );
                if wanted {
                    out.push(shown(a, &ci.container_instance_arn));
                }
            }
        }
        Ok(json!({ "attributes": out }))
    }
}

fn target_missing(target: &str) -> EcsError {
    EcsError::new(
        ErrorKind::TargetNotFoundException,
        format!(
            "targetId: {}: Could not find the container instance in the cluster.",
            name_from_arn(target)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::fixtures::ecs;

    #[test]
    fn the_instances_own_attributes() {
        let (_d, ecs) = ecs();
        let listed = ecs.list_container_instances(None).expect("instances");
        let arn = listed["containerInstanceArns"][0]
            .as_str()
            .expect("arn")
            .to_string();
        let attr = |n: &str, v: Option<&str>| TargetedAttribute {
            name: n.into(),
            value: v.map(str::to_string),
            target_type: Some("container-instance".into()),
            target_id: Some(arn.clone()),
        };
        let put = ecs
            .put_attributes(None, &[attr("stack", Some("prod")), attr("gpu", None)])
            .expect("put");
        assert_eq!(put["attributes"][0]["targetId"], arn.as_str());
        let list = |name: Option<&str>, value: Option<&str>| {
            ecs.list_attributes(&ListAttributes {
                target_type: "container-instance".into(),
                attribute_name: name.map(str::to_string),
                attribute_value: value.map(str::to_string),
                ..Default::default()
            })
            .expect("list")["attributes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(list(Some("stack"), Some("prod")).len(), 1);
        assert_eq!(list(Some("stack"), Some("dev")).len(), 0);
        assert!(list(None, None).len() >= 5, "ecs.* and the custom ones");
        let d = ecs
            .describe_container_instances(None, std::slice::from_ref(&arn))
            .expect("describe");
        let names: Vec<&str> = d["containerInstances"][0]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert!(names.contains(&"stack"), "{names:?}");
        ecs.delete_attributes(None, &[attr("stack", None)])
            .expect("delete");
        assert_eq!(list(Some("stack"), None).len(), 0);
        let mut missing = attr("x", None);
        missing.target_id = Some("0123abcd".into());
        let e = ecs
            .put_attributes(None, &[attr("ok", None), missing])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TargetNotFoundException);
        assert_eq!(list(Some("ok"), None).len(), 0, "nothing half-made");
        let e = ecs
            .put_attributes(None, &[attr("ecs.x", None)])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterException);
    }
}

//! PutAttributes, DeleteAttributes, ListAttributes (paged: at most 100).

use berth_orchestrator::ecs::{ListAttributes, TargetedAttribute};
use serde::Deserialize;
use serde_json::Value;

use super::{input, Context};
use crate::paging::sorted_page;
use crate::protocol::ApiError;

/// ECS's largest ListAttributes page.
const MOST: i64 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Attribute {
    name: String,
    value: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EditAttributes {
    cluster: Option<String>,
    attributes: Vec<Attribute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListRequest {
    cluster: Option<String>,
    target_type: String,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn targeted(list: Vec<Attribute>) -> Vec<TargetedAttribute> {
    list.into_iter()
        .map(|a| TargetedAttribute {
            name: a.name,
            value: a.value,
            target_type: a.target_type,
            target_id: a.target_id,
        })
        .collect()
}

pub fn put(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: EditAttributes = input(body)?;
    Ok(ctx
        .ecs
        .put_attributes(req.cluster.as_deref(), &targeted(req.attributes))?)
}

pub fn delete(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: EditAttributes = input(body)?;
    Ok(ctx
        .ecs
        .delete_attributes(req.cluster.as_deref(), &targeted(req.attributes))?)
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: ListRequest = input(body)?;
    let out = ctx.ecs.list_attributes(&ListAttributes {
        cluster: req.cluster,
        target_type: req.target_type,
        attribute_name: req.attribute_name,
        attribute_value: req.attribute_value,
    })?;
    sorted_page(
        "attributes",
        &out,
        req.max_results,
        req.next_token.as_deref(),
        MOST,
        |a| {
            format!(
                "{}\u{0}{}",
                a["targetId"].as_str().unwrap_or(""),
                a["name"].as_str().unwrap_or("")
            )
        },
    )
}

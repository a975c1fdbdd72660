//! TagResource, UntagResource, ListTagsForResource.

use berth_orchestrator::model::Tag;
use serde::Deserialize;
use serde_json::Value;

use super::{input, Context};
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagResource {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UntagResource {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListTagsForResource {
    resource_arn: String,
}

pub fn tag(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: TagResource = input(body)?;
    Ok(ctx.ecs.tag_resource(&req.resource_arn, &req.tags)?)
}

pub fn untag(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: UntagResource = input(body)?;
    Ok(ctx.ecs.untag_resource(&req.resource_arn, &req.tag_keys)?)
}

pub fn list(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: ListTagsForResource = input(body)?;
    Ok(ctx.ecs.list_tags_for_resource(&req.resource_arn)?)
}

//! DeleteTaskDefinitions.

use serde::Deserialize;
use serde_json::Value;

use super::{input, Context};
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteTaskDefinitions {
    task_definitions: Vec<String>,
}

pub fn delete(ctx: &Context<'_>, body: Value) -> Result<Value, ApiError> {
    let req: DeleteTaskDefinitions = input(body)?;
    Ok(ctx.ecs.delete_task_definitions(&req.task_definitions)?)
}

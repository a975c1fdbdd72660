//! The operations: a flat table from ECS's operation name to its
//! handler, one file per resource. A handler takes the request body as
//! the model shapes it and answers the model's response shape.

use berth_orchestrator::reconcile::Config;
use berth_orchestrator::Ecs;
use serde_json::Value;

use crate::protocol::ApiError;

// Issue 14's new operations (helper B): one file a resource.
mod attributes;
mod b_common;
mod capacity_providers;
mod settings;
mod tagging;
mod task_definition_deletes;

/// What every handler works with: the orchestrator and the roots its
/// supervisors are started under.
pub struct Context<'a> {
    pub ecs: &'a Ecs,
    pub cfg: &'a Config,
}

pub type Handler = fn(&Context<'_>, Value) -> Result<Value, ApiError>;

/// The handler of operation `name` (what follows the target prefix).
pub fn handler(name: &str) -> Option<Handler> {
    // One line an operation: `"ListClusters" => clusters::list,`
    let table: &[(&str, Handler)] = &[
        // Tags.
        ("TagResource", tagging::tag),
        ("UntagResource", tagging::untag),
        ("ListTagsForResource", tagging::list),
        // Container instance attributes.
        ("PutAttributes", attributes::put),
        ("DeleteAttributes", attributes::delete),
        ("ListAttributes", attributes::list),
        // Cluster and account settings.
        ("UpdateCluster", settings::update_cluster),
        ("UpdateClusterSettings", settings::update_cluster_settings),
        ("PutAccountSetting", settings::put),
        ("PutAccountSettingDefault", settings::put_default),
        ("DeleteAccountSetting", settings::delete),
        ("ListAccountSettings", settings::list),
        // Task definitions.
        ("DeleteTaskDefinitions", task_definition_deletes::delete),
        // Capacity providers.
        ("DescribeCapacityProviders", capacity_providers::describe),
        (
            "PutClusterCapacityProviders",
            capacity_providers::put_cluster,
        ),
    ];
    table.iter().find(|(op, _)| *op == name).map(|(_, h)| *h)
}

/// Run operation `name` on `input`.
pub fn call(ctx: &Context<'_>, name: &str, input: Value) -> Result<Value, ApiError> {
    let h = handler(name).ok_or_else(|| {
        ApiError::UnknownOperation(format!("berth does not serve the operation {name}"))
    })?;
    h(ctx, input)
}

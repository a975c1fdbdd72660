//! The operations: a flat table from ECS's operation name to its
//! handler, one file per resource. A handler takes the request body as
//! the model shapes it and answers the model's response shape (as the
//! orchestrator produces it: `wire.rs` puts it in wire form).

use berth_orchestrator::reconcile::Config;
use berth_orchestrator::Ecs;
use serde_json::Value;

use crate::protocol::ApiError;

mod clusters;
mod instances;
mod services;
mod task_definitions;
mod tasks;

// Issue 14's new operations (helper B): one file a resource.
mod attributes;
mod capacity_providers;
mod settings;
mod tagging;
mod task_definition_deletes;

// Issue 15: SSM's and Secrets Manager's targets over berth's secret store.
pub mod secret_store;

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
        // Clusters.
        ("CreateCluster", clusters::create),
        ("DescribeClusters", clusters::describe),
        ("ListClusters", clusters::list),
        ("DeleteCluster", clusters::delete),
        // Task definitions.
        ("RegisterTaskDefinition", task_definitions::register),
        ("DescribeTaskDefinition", task_definitions::describe),
        ("ListTaskDefinitions", task_definitions::list),
        (
            "ListTaskDefinitionFamilies",
            task_definitions::list_families,
        ),
        ("DeregisterTaskDefinition", task_definitions::deregister),
        // Tasks.
        ("RunTask", tasks::run),
        ("StartTask", tasks::start),
        ("StopTask", tasks::stop),
        ("DescribeTasks", tasks::describe),
        ("ListTasks", tasks::list),
        // Services.
        ("CreateService", services::create),
        ("UpdateService", services::update),
        ("DeleteService", services::delete),
        ("DescribeServices", services::describe),
        ("ListServices", services::list),
        // Container instances.
        ("RegisterContainerInstance", instances::register),
        ("DeregisterContainerInstance", instances::deregister),
        ("ListContainerInstances", instances::list),
        ("DescribeContainerInstances", instances::describe),
        ("UpdateContainerInstancesState", instances::update_state),
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
    let h = handler(name)
        .or_else(|| secret_store::handler(name))
        .ok_or_else(|| {
            ApiError::UnknownOperation(format!("berth does not serve the operation {name}"))
        })?;
    h(ctx, input)
}

/// The request `value` as a `T` (serde, `rename_all = "camelCase"`,
/// `deny_unknown_fields`): a member `T` does not know is an
/// InvalidParameterException naming it, a value of the wrong JSON type a
/// SerializationException naming its path.
pub fn input<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    // Clients send `{}` for no parameters; `null` is the same.
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        if inner.starts_with("unknown field") || inner.starts_with("missing field") {
            ApiError::invalid(format!("{at}{inner}"))
        } else {
            ApiError::Serialization(format!("{at}{inner}"))
        }
    })
}

/// Whether an `include` list asks for `what` (TAGS, SETTINGS …).
pub(crate) fn includes(include: &Option<Vec<String>>, what: &str) -> bool {
    include.iter().flatten().any(|i| i == what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Probe {
        #[allow(dead_code)]
        cluster: Option<String>,
        #[allow(dead_code)]
        max_results: Option<i64>,
    }

    #[test]
    fn input_names_the_member_and_picks_the_exception() {
        input::<Probe>(json!({"cluster": "c", "maxResults": 3})).unwrap();
        input::<Probe>(Value::Null).unwrap();
        let e = input::<Probe>(json!({"clusterz": "c"})).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterException");
        assert!(e.to_string().contains("clusterz"), "{e}");
        let e = input::<Probe>(json!({"maxResults": "3"})).unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
        assert!(e.to_string().contains("maxResults"), "{e}");
    }

    #[test]
    fn every_operation_in_the_table_is_modeled() {
        for op in ["CreateCluster", "RunTask", "UpdateContainerInstancesState"] {
            assert!(handler(op).is_some());
            assert!(crate::wire::is_modeled(op));
        }
        assert!(handler("CreateLoadBalancer").is_none());
    }
}

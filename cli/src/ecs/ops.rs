//! Issue 14's verbs, as aws spells them: tags, attributes, cluster and
//! account settings, deleting task definitions, capacity providers.
//! Flattened into `berth` beside the other ECS verbs; each arm is one
//! orchestrator call (flag values read by `ops_input`).

use berth_orchestrator::ecs::{ListAccountSettings, ListAttributes, UpdateCluster};
use berth_orchestrator::{Ecs, EcsError};
use clap::Subcommand;

use super::input::parse_tags;
use super::ops_input as read;
use super::{usage, value, Outcome};

#[derive(Subcommand)]
pub enum OpsCommand {
    /// Add tags to a cluster, service, task, task definition or
    /// container instance (tags of the same key are replaced).
    TagResource {
        /// The ARN of the cluster, service, task, task definition or container instance.
        #[arg(long)]
        resource_arn: String,
        /// key=K,value=V … (or a JSON array).
        #[arg(long, num_args = 1.., required = true)]
        tags: Vec<String>,
    },
    /// Remove tags (by key) from a resource.
    UntagResource {
        /// The ARN of the resource to untag.
        #[arg(long)]
        resource_arn: String,
        /// The keys of the tags to remove.
        #[arg(long, num_args = 1.., required = true)]
        tag_keys: Vec<String>,
    },
    /// The tags of a resource.
    ListTagsForResource {
        /// The ARN of the resource whose tags to list.
        #[arg(long)]
        resource_arn: String,
    },
    /// Set custom attributes on container instances.
    PutAttributes {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// name=N,value=V,targetType=container-instance,targetId=ID …
        /// (or a JSON array).
        #[arg(long, num_args = 1.., required = true)]
        attributes: Vec<String>,
    },
    /// Remove custom attributes from container instances.
    DeleteAttributes {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// name=N,targetId=ID … (or a JSON array).
        #[arg(long, num_args = 1.., required = true)]
        attributes: Vec<String>,
    },
    /// The attributes of a cluster's container instances.
    ListAttributes {
        /// The cluster, by name or ARN (default: default).
        #[arg(long)]
        cluster: Option<String>,
        /// container-instance (the only target type).
        #[arg(long)]
        target_type: String,
        /// Only attributes of this name.
        #[arg(long)]
        attribute_name: Option<String>,
        /// Only with --attribute-name.
        #[arg(long)]
        attribute_value: Option<String>,
    },
    /// Change a cluster's settings, configuration or Service Connect
    /// defaults (stored and shown; berth acts on none of them).
    UpdateCluster {
        /// The cluster, by name or ARN.
        #[arg(long)]
        cluster: String,
        /// name=containerInsights,value=enabled|disabled|enhanced.
        #[arg(long, num_args = 1..)]
        settings: Vec<String>,
        /// ECS's ClusterConfiguration: JSON, or file://PATH.
        #[arg(long)]
        configuration: Option<String>,
        /// namespace=NAME (or JSON).
        #[arg(long)]
        service_connect_defaults: Option<String>,
    },
    /// Change a cluster's settings (containerInsights).
    UpdateClusterSettings {
        /// The cluster, by name or ARN.
        #[arg(long)]
        cluster: String,
        /// name=containerInsights,value=enabled|disabled|enhanced (or a JSON array).
        #[arg(long, num_args = 1.., required = true)]
        settings: Vec<String>,
    },
    /// Set an account setting for a principal (the account root by default).
    PutAccountSetting {
        /// The setting's name (e.g. containerInsights, awsvpcTrunking).
        #[arg(long)]
        name: String,
        /// The setting's value (enabled, disabled, …).
        #[arg(long)]
        value: String,
        /// The principal the setting is for (default: the account root).
        #[arg(long)]
        principal_arn: Option<String>,
    },
    /// Set an account setting's default for every principal.
    PutAccountSettingDefault {
        /// The setting's name (e.g. containerInsights, awsvpcTrunking).
        #[arg(long)]
        name: String,
        /// The default value (enabled, disabled, …).
        #[arg(long)]
        value: String,
    },
    /// Remove a principal's account setting.
    DeleteAccountSetting {
        /// The setting's name.
        #[arg(long)]
        name: String,
        /// The principal whose setting to remove (default: the account root).
        #[arg(long)]
        principal_arn: Option<String>,
    },
    /// A principal's account settings (--effective-settings: with the
    /// defaults it inherits).
    ListAccountSettings {
        /// Only the setting of this name.
        #[arg(long)]
        name: Option<String>,
        /// Only settings of this value (with --name).
        #[arg(long)]
        value: Option<String>,
        /// The principal whose settings to list (default: the account root).
        #[arg(long)]
        principal_arn: Option<String>,
        /// Include the defaults the principal inherits.
        #[arg(long)]
        effective_settings: bool,
    },
    /// Delete INACTIVE task definition revisions (DELETE_IN_PROGRESS).
    DeleteTaskDefinitions {
        /// family:revision or ARN of each INACTIVE revision to delete.
        #[arg(long, num_args = 1.., required = true)]
        task_definitions: Vec<String>,
    },
    /// The capacity providers: berth's built-in FARGATE and FARGATE_SPOT.
    DescribeCapacityProviders {
        /// Names or ARNs (default: all).
        #[arg(long, num_args = 1..)]
        capacity_providers: Vec<String>,
        /// The cluster, by name or ARN (unused: the built-in providers serve every cluster).
        #[arg(long)]
        cluster: Option<String>,
        /// TAGS (the built-in providers have none).
        #[arg(long, num_args = 1..)]
        include: Vec<String>,
    },
    /// Set the capacity providers a cluster uses and its default strategy.
    PutClusterCapacityProviders {
        /// The cluster, by name or ARN.
        #[arg(long)]
        cluster: String,
        /// FARGATE and/or FARGATE_SPOT (none to clear).
        #[arg(long, num_args = 0.., required = true)]
        capacity_providers: Vec<String>,
        /// capacityProvider=P,weight=W,base=B … (or a JSON array).
        #[arg(long, num_args = 0.., required = true)]
        default_capacity_provider_strategy: Vec<String>,
    },
}

impl OpsCommand {
    /// ECS's name for the call, as aws prints it in errors.
    pub(super) fn operation(&self) -> &'static str {
        match self {
            Self::TagResource { .. } => "TagResource",
            Self::UntagResource { .. } => "UntagResource",
            Self::ListTagsForResource { .. } => "ListTagsForResource",
            Self::PutAttributes { .. } => "PutAttributes",
            Self::DeleteAttributes { .. } => "DeleteAttributes",
            Self::ListAttributes { .. } => "ListAttributes",
            Self::UpdateCluster { .. } => "UpdateCluster",
            Self::UpdateClusterSettings { .. } => "UpdateClusterSettings",
            Self::PutAccountSetting { .. } => "PutAccountSetting",
            Self::PutAccountSettingDefault { .. } => "PutAccountSettingDefault",
            Self::DeleteAccountSetting { .. } => "DeleteAccountSetting",
            Self::ListAccountSettings { .. } => "ListAccountSettings",
            Self::DeleteTaskDefinitions { .. } => "DeleteTaskDefinitions",
            Self::DescribeCapacityProviders { .. } => "DescribeCapacityProviders",
            Self::PutClusterCapacityProviders { .. } => "PutClusterCapacityProviders",
        }
    }
}

/// A flag that could not be read is the CLI's error, not the service's.
macro_rules! read {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return usage(e),
        }
    };
}

/// One arm a verb, one call each.
pub(super) fn call(ecs: &Ecs, cmd: OpsCommand) -> Result<Outcome, EcsError> {
    use OpsCommand as C;
    match cmd {
        C::TagResource { resource_arn, tags } => {
            value(ecs.tag_resource(&resource_arn, &read!(parse_tags(&tags))))
        }
        C::UntagResource {
            resource_arn,
            tag_keys,
        } => value(ecs.untag_resource(&resource_arn, &tag_keys)),
        C::ListTagsForResource { resource_arn } => value(ecs.list_tags_for_resource(&resource_arn)),
        C::PutAttributes {
            cluster,
            attributes,
        } => value(ecs.put_attributes(cluster.as_deref(), &read!(read::attributes(&attributes)))),
        C::DeleteAttributes {
            cluster,
            attributes,
        } => {
            value(ecs.delete_attributes(cluster.as_deref(), &read!(read::attributes(&attributes))))
        }
        C::ListAttributes {
            cluster,
            target_type,
            attribute_name,
            attribute_value,
        } => value(ecs.list_attributes(&ListAttributes {
            cluster,
            target_type,
            attribute_name,
            attribute_value,
        })),
        C::UpdateCluster {
            cluster,
            settings,
            configuration,
            service_connect_defaults,
        } => value(ecs.update_cluster(&UpdateCluster {
            cluster,
            settings: match settings.is_empty() {
                true => None,
                false => Some(read!(read::settings(&settings))),
            },
            configuration: read!(configuration
                .map(|c| read::object("configuration", &c))
                .transpose()),
            service_connect_defaults: read!(service_connect_defaults
                .map(|c| read::object("service-connect-defaults", &c))
                .transpose()),
        })),
        C::UpdateClusterSettings { cluster, settings } => {
            value(ecs.update_cluster_settings(&cluster, &read!(read::settings(&settings))))
        }
        other => settings_and_capacity(ecs, other),
    }
}

/// The account settings, task definition and capacity provider verbs.
fn settings_and_capacity(ecs: &Ecs, cmd: OpsCommand) -> Result<Outcome, EcsError> {
    use OpsCommand as C;
    match cmd {
        C::PutAccountSetting {
            name,
            value: v,
            principal_arn,
        } => value(ecs.put_account_setting(&name, &v, principal_arn.as_deref())),
        C::PutAccountSettingDefault { name, value: v } => {
            value(ecs.put_account_setting_default(&name, &v))
        }
        C::DeleteAccountSetting {
            name,
            principal_arn,
        } => value(ecs.delete_account_setting(&name, principal_arn.as_deref())),
        C::ListAccountSettings {
            name,
            value: v,
            principal_arn,
            effective_settings,
        } => value(ecs.list_account_settings(&ListAccountSettings {
            name,
            value: v,
            principal_arn,
            effective_settings,
        })),
        C::DeleteTaskDefinitions { task_definitions } => {
            value(ecs.delete_task_definitions(&task_definitions))
        }
        C::DescribeCapacityProviders {
            capacity_providers,
            cluster,
            include: _,
        } => value(ecs.describe_capacity_providers(&capacity_providers, cluster.as_deref())),
        C::PutClusterCapacityProviders {
            cluster,
            capacity_providers,
            default_capacity_provider_strategy,
        } => {
            let strategy = match default_capacity_provider_strategy.as_slice() {
                [] => Vec::new(),
                some => read!(read::strategy("default-capacity-provider-strategy", some)),
            };
            value(ecs.put_cluster_capacity_providers(&cluster, &capacity_providers, &strategy))
        }
        other => Err(EcsError::client(format!(
            "{}: not a settings or capacity verb",
            other.operation()
        ))),
    }
}

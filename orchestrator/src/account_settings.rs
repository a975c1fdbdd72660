//! Account and cluster settings: the names the model defines, the
//! values each takes, and AWS's defaults. berth stores and echoes them
//! (none changes what it does: ARNs are always the long format). Pure.

use crate::error::{EcsError, EcsResult};

/// The model's `SettingName`s, each with the values it takes and AWS's
/// default (what ListAccountSettings' effective settings show when
/// nobody set it).
const SETTINGS: &[(&str, &[&str], &str)] = &[
    ("serviceLongArnFormat", ON_OFF, "enabled"),
    ("taskLongArnFormat", ON_OFF, "enabled"),
    ("containerInstanceLongArnFormat", ON_OFF, "enabled"),
    ("awsvpcTrunking", ON_OFF, "disabled"),
    ("containerInsights", INSIGHTS, "disabled"),
    ("fargateFIPSMode", ON_OFF, "disabled"),
    (
        "tagResourceAuthorization",
        &["on", "off", "enabled", "disabled"],
        "on",
    ),
    ("fargateTaskRetirementWaitPeriod", &["0", "7", "14"], "7"),
    ("guardDutyActivate", ON_OFF, "disabled"),
    (
        "defaultLogDriverMode",
        &["blocking", "non-blocking"],
        "non-blocking",
    ),
    ("fargateEventWindows", ON_OFF, "disabled"),
];
const ON_OFF: &[&str] = &["enabled", "disabled"];
const INSIGHTS: &[&str] = &["enabled", "disabled", "enhanced"];

/// Every account setting name, in the model's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(n, _, _)| *n)
}

fn entry(name: &str) -> EcsResult<&'static (&'static str, &'static [&'static str], &'static str)> {
    SETTINGS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        EcsError::invalid(format!(
            "name: {name:?} is not an account setting: one of {}",
            names().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// A known setting name.
pub fn check_name(name: &str) -> EcsResult<()> {
    entry(name).map(|_| ())
}

/// A known name and a value it takes.
pub fn check(name: &str, value: &str) -> EcsResult<()> {
    let (_, values, _) = entry(name)?;
    if !values.contains(&value) {
        return Err(EcsError::invalid(format!(
            "value: {value:?} is not a value of {name}: one of {}",
            values.join(", ")
        )));
    }
    Ok(())
}

/// AWS's value of `name` where nobody set one.
pub fn aws_default(name: &str) -> Option<&'static str> {
    entry(name).ok().map(|(_, _, d)| *d)
}

/// A cluster setting (`ClusterSettingName`: containerInsights only).
pub fn check_cluster_setting(field: &str, name: &str, value: &str) -> EcsResult<()> {
    if name != "containerInsights" {
        return Err(EcsError::invalid(format!(
            "{field}.name: {name:?}: the only cluster setting is containerInsights"
        )));
    }
    if !INSIGHTS.contains(&value) {
        return Err(EcsError::invalid(format!(
            "{field}.value: {value:?}: one of {}",
            INSIGHTS.join(", ")
        )));
    }
    Ok(())
}

/// A principal ARN as one store key part: `/` and `%` escaped, so the
/// key holds no `/` of its own (keys.rs's invariant).
pub fn principal_key_part(principal: &str) -> String {
    principal.replace('%', "%25").replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        check("containerInsights", "enhanced").expect("insights");
        check("fargateTaskRetirementWaitPeriod", "14").expect("days");
        check("serviceLongArnFormat", "disabled").expect("arn");
        let e = check("nope", "enabled").unwrap_err();
        assert!(e.message.starts_with("name: \"nope\""), "{}", e.message);
        let e = check("awsvpcTrunking", "yes").unwrap_err();
        assert!(e.message.starts_with("value: \"yes\""), "{}", e.message);
        assert_eq!(aws_default("taskLongArnFormat"), Some("enabled"));
        assert_eq!(names().count(), 11);
        check_cluster_setting("settings[0]", "containerInsights", "enabled").expect("ok");
        assert!(check_cluster_setting("settings[0]", "x", "enabled").is_err());
        assert!(check_cluster_setting("settings[0]", "containerInsights", "on").is_err());
    }

    #[test]
    fn principals_become_one_key_part() {
        let p = principal_key_part("arn:aws:iam::1:user/a%b/c");
        assert!(!p.contains('/'));
        assert_eq!(p, "arn:aws:iam::1:user%2Fa%25b%2Fc");
    }
}

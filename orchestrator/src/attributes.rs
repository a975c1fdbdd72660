//! ECS's rules for custom attributes (PutAttributes, DeleteAttributes,
//! ListAttributes, register-container-instance's): names of 1 to 128
//! letters, numbers and `-_/\.`; values of 1 to 128 letters, numbers,
//! `-_.@/\:` and inner spaces; `ecs.` names are ECS's own; at most 10
//! custom attributes on one resource. Pure.

use crate::error::{EcsError, EcsResult, ErrorKind};
use crate::model::Attribute;

/// The one target type ECS has.
pub const CONTAINER_INSTANCE: &str = "container-instance";
/// Custom attributes one resource may carry.
pub const MAX_CUSTOM: usize = 10;
const MAX_LEN: usize = 128;

/// Whether `name` is one of ECS's own (`ecs.os-type` …), which users
/// neither set nor delete.
pub fn is_builtin(name: &str) -> bool {
    name.starts_with("ecs.")
}

/// A custom attribute's name and value; `field` names it in errors.
pub fn check(field: &str, a: &Attribute) -> EcsResult<()> {
    let name_ok = !a.name.is_empty()
        && a.name.len() <= MAX_LEN
        && a.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/\\.".contains(c));
    if !name_ok {
        return Err(EcsError::invalid(format!(
            "{field}.name: {:?}: 1 to {MAX_LEN} letters, numbers, hyphens, underscores, \
             slashes, back slashes or periods",
            a.name
        )));
    }
    if is_builtin(&a.name) {
        return Err(EcsError::invalid(format!(
            "{field}.name: {:?}: names starting with ecs. are reserved",
            a.name
        )));
    }
    if let Some(v) = &a.value {
        let ok = !v.is_empty()
            && v.len() <= MAX_LEN
            && !v.starts_with(' ')
            && !v.ends_with(' ')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c));
        if !ok {
            return Err(EcsError::invalid(format!(
                "{field}.value: {v:?}: 1 to {MAX_LEN} letters, numbers, spaces (not at \
                 either end) and -_.@/\\:"
            )));
        }
    }
    Ok(())
}

/// A request's `targetType`: absent or `container-instance`.
pub fn check_target_type(field: &str, target_type: Option<&str>) -> EcsResult<()> {
    match target_type {
        None | Some(CONTAINER_INSTANCE) => Ok(()),
        Some(other) => Err(EcsError::invalid(format!(
            "{field}: {other:?}: the only target type is container-instance"
        ))),
    }
}

/// `existing` with `new` set over it (by name), refused past
/// [`MAX_CUSTOM`] custom attributes.
pub fn put(existing: &[Attribute], new: &[Attribute]) -> EcsResult<Vec<Attribute>> {
    let mut out = existing.to_vec();
    for a in new {
        match out.iter_mut().find(|o| o.name == a.name) {
            Some(o) => o.value = a.value.clone(),
            None => out.push(a.clone()),
        }
    }
    let custom = out.iter().filter(|a| !is_builtin(&a.name)).count();
    if custom > MAX_CUSTOM {
        return Err(EcsError::new(
            ErrorKind::AttributeLimitExceededException,
            format!(
                "attributes: the resource would have {custom} custom attributes: \
                 you can apply up to {MAX_CUSTOM} custom attributes to each resource"
            ),
        ));
    }
    Ok(out)
}

/// `existing` without the custom attributes named in `gone`.
pub fn delete(existing: &[Attribute], gone: &[Attribute]) -> Vec<Attribute> {
    existing
        .iter()
        .filter(|a| !gone.iter().any(|g| g.name == a.name))
        .cloned()
        .collect()
}

/// ListAttributes' filters: `attributeName`, and `attributeValue` only
/// with a name.
pub fn matches(a: &Attribute, name: Option<&str>, value: Option<&str>) -> bool {
    name.is_none_or(|n| n == a.name) && value.is_none_or(|v| a.value.as_deref() == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(n: &str, v: Option<&str>) -> Attribute {
        Attribute {
            name: n.into(),
            value: v.map(str::to_string),
        }
    }

    #[test]
    fn names_and_values() {
        check("a[0]", &attr("stack/tier\\x.y-z_1", Some("a b:c@d"))).expect("ok");
        check("a[0]", &attr("flag", None)).expect("no value");
        for (bad, field) in [
            (attr("", None), "a[0].name"),
            (attr("a b", None), "a[0].name"),
            (attr(&"n".repeat(129), None), "a[0].name"),
            (attr("ecs.os-type", None), "a[0].name"),
            (attr("n", Some("")), "a[0].value"),
            (attr("n", Some(" lead")), "a[0].value"),
            (attr("n", Some("a;b")), "a[0].value"),
        ] {
            let e = check("a[0]", &bad).unwrap_err();
            assert!(e.message.starts_with(field), "{bad:?}: {}", e.message);
        }
        assert!(check_target_type("targetType", Some("container-instance")).is_ok());
        assert!(check_target_type("targetType", Some("task")).is_err());
    }

    #[test]
    fn put_delete_and_the_limit() {
        let builtin = attr("ecs.os-type", Some("linux"));
        let mut have = vec![builtin.clone()];
        for i in 0..10 {
            have = put(&have, &[attr(&format!("k{i}"), None)]).expect("put");
        }
        let e = put(&have, &[attr("k10", None)]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AttributeLimitExceededException);
        let again = put(&have, &[attr("k0", Some("v"))]).expect("replace");
        assert_eq!(again[1], attr("k0", Some("v")));
        let left = delete(&again, &[attr("k0", None), attr("nope", None)]);
        assert_eq!(left.len(), 10);
        assert!(matches(&builtin, Some("ecs.os-type"), Some("linux")));
        assert!(!matches(&builtin, Some("ecs.os-type"), Some("windows")));
        assert!(matches(&builtin, None, None));
    }
}

//! ECS's tag rules (TagResource, UntagResource, and tags given at
//! create time): at most 50 a resource, keys of 1 to 128 characters,
//! values of up to 256, of letters, numbers, spaces and `_.:/=+-@`, and
//! `aws:` reserved (in any case). Pure.

use crate::error::{EcsError, EcsResult};
use crate::model::Tag;

/// The most tags one resource carries.
pub const MAX_TAGS: usize = 50;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

fn allowed(c: char) -> bool {
    // The model's pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*
    c.is_alphabetic() || c.is_numeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

fn reserved(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// One tag key's rules; `field` names it in the error (`tags[2].key`).
pub fn check_key(field: &str, key: &str) -> EcsResult<()> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY {
        return Err(EcsError::invalid(format!(
            "{field}: {key:?}: a tag key has 1 to {MAX_KEY} characters"
        )));
    }
    if !key.chars().all(allowed) {
        return Err(EcsError::invalid(format!(
            "{field}: {key:?}: only letters, numbers, spaces and _.:/=+-@ are allowed"
        )));
    }
    if reserved(key) {
        return Err(EcsError::invalid(format!(
            "{field}: {key:?}: the aws: prefix is reserved for AWS use"
        )));
    }
    Ok(())
}

/// Each tag's rules, and no more than [`MAX_TAGS`] in one request.
pub fn check(field: &str, tags: &[Tag]) -> EcsResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(EcsError::invalid(format!(
            "{field}: {} tags: a resource has at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        check_key(&format!("{field}[{i}].key"), &t.key)?;
        if t.value.chars().count() > MAX_VALUE || !t.value.chars().all(allowed) {
            return Err(EcsError::invalid(format!(
                "{field}[{i}].value: {:?}: up to {MAX_VALUE} letters, numbers, spaces and _.:/=+-@",
                t.value
            )));
        }
        if reserved(&t.value) {
            return Err(EcsError::invalid(format!(
                "{field}[{i}].value: {:?}: the aws: prefix is reserved for AWS use",
                t.value
            )));
        }
    }
    Ok(())
}

/// `existing` with `new` set over it: a key already there takes the new
/// value in place; others are added in order. Over [`MAX_TAGS`] in all
/// is refused.
pub fn merge(existing: &[Tag], new: &[Tag]) -> EcsResult<Vec<Tag>> {
    let mut out = existing.to_vec();
    for t in new {
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => out.push(t.clone()),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(EcsError::invalid(format!(
            "tags: the resource would have {} tags: at most {MAX_TAGS}",
            out.len()
        )));
    }
    Ok(out)
}

/// `existing` without the tags keyed `keys` (keys it has not are no error).
pub fn remove(existing: &[Tag], keys: &[String]) -> Vec<Tag> {
    existing
        .iter()
        .filter(|t| !keys.contains(&t.key))
        .cloned()
        .collect()
}

/// A tag, for the tests of tags' rules and of the operations using them.
#[cfg(test)]
pub(crate) fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn the_rules_of_keys_and_values() {
        check(
            "tags",
            &[tag("team", ""), tag("a b:c/d=e+f-g@h_i.j", "ü 1")],
        )
        .expect("ok");
        check("tags", &[tag(&"k".repeat(128), &"v".repeat(256))]).expect("longest");
        for (bad, field) in [
            (tag("", "v"), "tags[0].key"),
            (tag(&"k".repeat(129), "v"), "tags[0].key"),
            (tag("a*b", "v"), "tags[0].key"),
            (tag("aws:x", "v"), "tags[0].key"),
            (tag("AwS:x", "v"), "tags[0].key"),
            (tag("k", &"v".repeat(257)), "tags[0].value"),
            (tag("k", "aws:x"), "tags[0].value"),
            (tag("k", "a;b"), "tags[0].value"),
        ] {
            let e = check("tags", std::slice::from_ref(&bad)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameterException);
            assert!(e.message.starts_with(field), "{bad:?}: {}", e.message);
        }
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "")).collect();
        assert!(check("tags", &many).is_err());
        assert!(check("tags", &many[..50]).is_ok());
    }

    #[test]
    fn merge_replaces_in_place_and_appends() {
        let old = [tag("a", "1"), tag("b", "2")];
        let merged = merge(&old, &[tag("b", "3"), tag("c", "4")]).expect("merge");
        assert_eq!(merged, [tag("a", "1"), tag("b", "3"), tag("c", "4")]);
        let full: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "")).collect();
        assert!(
            merge(&full, &[tag("k0", "x")]).is_ok(),
            "a replacement adds none"
        );
        assert!(merge(&full, &[tag("new", "x")]).is_err());
        assert_eq!(
            remove(&merged, &["a".into(), "zz".into()]),
            [tag("b", "3"), tag("c", "4")]
        );
    }
}

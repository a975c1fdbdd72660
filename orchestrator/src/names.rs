//! Names users give (clusters, services, families, containers, volumes,
//! load balancers, task and instance ids): ECS's rules, checked in one
//! place, and the one way a name becomes a path. Pure: no store, no I/O.

use std::path::{Path, PathBuf};

use crate::error::{EcsError, EcsResult};

/// ECS's longest name (clusters, services, families, containers, volumes).
pub const MAX_NAME: usize = 255;
/// The runtime's longest container id.
pub const MAX_RUNTIME_ID: usize = 128;
/// The longest file name berth makes from a name, leaving room for a
/// suffix (`.log`, `.log.1`, `ns-`) under NAME_MAX (255).
const MAX_FILE_STEM: usize = 200;

/// Why a name cannot be a single path component.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must not be '.' or '..'")]
    Dot,
    #[error("must not contain '/' or NUL")]
    Separator,
    #[error("longer than {MAX_NAME} bytes")]
    TooLong,
    #[error("does not name a direct child of {0}")]
    Escapes(PathBuf),
}

/// ECS's rule for names: 1 to 255 letters, digits, hyphens and
/// underscores. `field` is the request path named in the error
/// (`volumes[0].name`, `clusterName` ...).
pub fn check(field: &str, name: &str) -> EcsResult<()> {
    let why = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME {
        Some("longer than 255 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Some("only letters, numbers, hyphens and underscores are allowed")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(EcsError::invalid(format!(
            "{field}: {:?}: {why} (up to 255 letters, numbers, hyphens and underscores)",
            shown(name)
        ))),
    }
}

/// A name or ARN a user gave to find something: its last part, checked by
/// [`check`]. A name that cannot exist is refused rather than looked up.
pub fn lookup<'a>(field: &str, name_or_arn: &'a str) -> EcsResult<&'a str> {
    let name = crate::model::name_from_arn(name_or_arn);
    check(field, name)?;
    Ok(name)
}

/// At most the first 300 characters of `name`, for error messages.
fn shown(name: &str) -> String {
    name.chars().take(300).collect()
}

/// `base/name`, for a `name` that is one path component: refuses empty,
/// `.`, `..`, `/`, NUL and over-long names, and checks that the result is
/// a direct child of `base`. Every path berth builds from a user-supplied
/// name goes through here.
pub fn child(base: &Path, name: &str) -> Result<PathBuf, PathNameError> {
    if name.is_empty() {
        return Err(PathNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(PathNameError::Dot);
    }
    if name.contains(['/', '\0']) {
        return Err(PathNameError::Separator);
    }
    if name.len() > MAX_NAME {
        return Err(PathNameError::TooLong);
    }
    let joined = base.join(name);
    let direct =
        joined.parent() == Some(base) && joined.file_name().and_then(|n| n.to_str()) == Some(name);
    if direct {
        Ok(joined)
    } else {
        Err(PathNameError::Escapes(base.to_path_buf()))
    }
}

/// A stable 64-bit FNV-1a hash: the same on every build and host, so ids
/// derived from it survive upgrades (adoption rebuilds them).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `name` if it has at most `max` bytes, else its first bytes and a hash
/// of the whole, `max` bytes in all. Names are ASCII once checked; for
/// others the cut falls on a character boundary.
fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = format!("{:016x}", fnv1a(name));
    let mut cut = max.saturating_sub(hash.len() + 1);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &name[..cut])
}

/// A container's id for the runtime: `<task id>-<container>`, with a long
/// container name shortened by a hash so the id fits the runtime's 128.
pub fn runtime_id(task_id: &str, container: &str) -> String {
    let room = MAX_RUNTIME_ID.saturating_sub(task_id.len() + 1);
    format!("{task_id}-{}", fit(container, room))
}

/// A file name stem for a container (its log, its namespaces' directory):
/// the name, shortened by a hash past 200 bytes so that suffixes fit.
pub fn file_stem(container: &str) -> String {
    fit(container, MAX_FILE_STEM)
}

/// The kernel's longest hostname (`__NEW_UTS_LEN`).
pub const MAX_HOSTNAME: usize = 64;

/// A hostname made from a container name: its first 63 characters (a DNS
/// label), since the kernel refuses more than 64.
pub fn hostname(name: &str) -> String {
    name.chars().take(63).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &[
        "clusterName",
        "serviceName",
        "family",
        "containerDefinitions[0].name",
        "volumes[0].name",
        "loadBalancerName",
        "task",
        "containerInstance",
    ];

    #[test]
    fn hostile_names_are_refused_naming_the_field() {
        let long = "a".repeat(256);
        let bad = [
            ("", "must not be empty"),
            ("/", "only letters"),
            ("..", "only letters"),
            ("../../../../etc", "only letters"),
            ("a/b", "only letters"),
            ("a\0b", "only letters"),
            (".", "only letters"),
            ("a b", "only letters"),
            ("é", "only letters"),
            (long.as_str(), "longer than 255"),
        ];
        for field in FIELDS {
            for (name, why) in bad {
                let e = check(field, name).expect_err(name).to_string();
                assert!(e.contains(&format!("{field}: ")), "{field} {name:?}: {e}");
                assert!(e.contains(why), "{field} {name:?}: {e}");
                assert!(e.starts_with("InvalidParameterException"), "{e}");
            }
            for good in ["a", "web-1", "Data_2", &"z".repeat(255)] {
                check(field, good).expect(good);
            }
        }
    }

    #[test]
    fn lookups_take_arns_and_refuse_what_cannot_exist() {
        assert_eq!(
            lookup("task", "arn:aws:ecs:local:0:task/c/abc").expect("arn"),
            "abc"
        );
        assert_eq!(lookup("cluster", "prod").expect("name"), "prod");
        for bad in ["../x", "", "arn:aws:ecs:local:0:task/c/..", "a\0"] {
            let e = lookup("task", bad).expect_err(bad).to_string();
            assert!(e.contains("task: "), "{e}");
        }
    }

    #[test]
    fn child_paths_never_leave_their_base() {
        let base = Path::new("/run/berth/tasks/t/volumes");
        assert_eq!(child(base, "data"), Ok(base.join("data")));
        let cases = [
            ("", PathNameError::Empty),
            (".", PathNameError::Dot),
            ("..", PathNameError::Dot),
            ("/", PathNameError::Separator),
            ("/etc", PathNameError::Separator),
            ("../../etc", PathNameError::Separator),
            ("a/b", PathNameError::Separator),
            ("a\0", PathNameError::Separator),
        ];
        for (name, want) in cases {
            assert_eq!(child(base, name), Err(want), "{name:?}");
        }
        assert_eq!(child(base, &"a".repeat(256)), Err(PathNameError::TooLong));
        // A trailing-slash base is still the parent of what it makes.
        assert!(child(Path::new("/tmp/"), "x").is_ok());
    }

    #[test]
    fn long_container_names_fit_the_runtime() {
        let task = "0123456789abcdef0123456789abcdef";
        assert_eq!(runtime_id(task, "web"), format!("{task}-web"));
        let long = "c".repeat(255);
        let id = runtime_id(task, &long);
        assert_eq!(id.len(), MAX_RUNTIME_ID, "{id}");
        // Deterministic, and distinct for names that share a prefix.
        assert_eq!(id, runtime_id(task, &long));
        let other = format!("{}d", "c".repeat(254));
        assert_ne!(id, runtime_id(task, &other));
        let stem = file_stem(&long);
        assert_eq!(stem.len(), 200);
        assert_eq!(file_stem("web"), "web");
        assert!(format!("ns-{stem}.log.10").len() <= 255);
        assert_eq!(hostname(&long).len(), 63);
        assert_eq!(hostname("web"), "web");
    }
}

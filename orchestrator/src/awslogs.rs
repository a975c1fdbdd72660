//! The awslogs driver kept locally: each container's output in a log
//! stream of a log group, named as ECS names them
//! (`awslogs-stream-prefix/container-name/task-id`; with no prefix, the
//! container's id, as Docker's driver does), stored under the state root
//! apart from the task (`logs/awslogs/GROUP/STREAM.log`, json-file lines),
//! so that they outlive it. Names are encoded into single file names
//! (a group's `/` and every character but `A-Z a-z 0-9 _ -` as `%XX`), so
//! no name can reach outside its directory. Pure: paths and names only.

use std::path::{Path, PathBuf};

use crate::model::{LogConfiguration, TaskDefinition};

/// An awslogs container's group and stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    pub group: String,
    pub stream: String,
}

/// Where `config` sends the output of `container` of task `task_id`
/// (runtime id `runtime_id`), if its driver is awslogs.
pub fn stream_of(
    config: Option<&LogConfiguration>,
    container: &str,
    task_id: &str,
    runtime_id: &str,
) -> Option<Stream> {
    let config = config.filter(|c| c.log_driver == "awslogs")?;
    let options = config.options.as_ref()?;
    let group = options.get("awslogs-group")?.clone();
    let stream = match (
        options.get("awslogs-stream"),
        options.get("awslogs-stream-prefix"),
    ) {
        (Some(stream), _) => stream.clone(),
        (None, Some(prefix)) => format!("{prefix}/{container}/{task_id}"),
        (None, None) => runtime_id.to_string(),
    };
    Some(Stream { group, stream })
}

/// The directory of every log group.
pub fn groups_dir(state_root: &Path) -> PathBuf {
    state_root.join("logs").join("awslogs")
}

/// A group's directory.
pub fn group_dir(state_root: &Path, group: &str) -> PathBuf {
    groups_dir(state_root).join(encode(group))
}

/// A stream's file.
pub fn stream_file(state_root: &Path, s: &Stream) -> PathBuf {
    group_dir(state_root, &s.group).join(format!("{}.log", encode(&s.stream)))
}

/// The stream a file of a group's directory holds, if it is one.
pub fn stream_of_file(file_name: &str) -> Option<String> {
    decode(file_name.strip_suffix(".log")?)
}

/// The longest encoded name a group's directory or a stream's file may
/// have: NAME_MAX (255) less a rotated stream file's suffix (`.log.NN`).
pub const MAX_ENCODED: usize = 255 - ".log.NN".len();

/// Registration's check that `config`'s group and stream (for container
/// `container`, with a task id of 32 hex digits) encode to file names the
/// kernel takes: CloudWatch's 512-character names can encode to three
/// bytes a character, and the failure would otherwise come at every start.
/// The error names the field under `path` (the `logConfiguration`).
pub fn check_names(path: &str, config: &LogConfiguration, container: &str) -> Result<(), String> {
    let task_id = "0".repeat(32);
    let runtime_id = crate::names::runtime_id(&task_id, container);
    let Some(s) = stream_of(Some(config), container, &task_id, &runtime_id) else {
        return Ok(());
    };
    let has = |k: &str| config.options.as_ref().is_some_and(|o| o.contains_key(k));
    let stream_field = if has("awslogs-stream") {
        "awslogs-stream"
    } else {
        "awslogs-stream-prefix"
    };
    for (field, name) in [("awslogs-group", &s.group), (stream_field, &s.stream)] {
        let len = encode(name).len();
        if len > MAX_ENCODED {
            return Err(format!(
                "{path}.options.{field}: the log {} {name:?} is kept as a file name of {len} \
                 bytes (each character but A-Z a-z 0-9 _ - takes 3), more than {MAX_ENCODED}: \
                 shorten it",
                if field == "awslogs-group" {
                    "group"
                } else {
                    "stream"
                }
            ));
        }
    }
    Ok(())
}

fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(name: &str) -> Option<String> {
    let mut out = Vec::with_capacity(name.len());
    let mut bytes = name.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a task `task_id` of definition `def` writes to a stream of
/// `group` whose name starts with `prefix` (what `berth logs --log-group
/// --follow` waits on).
pub fn writes_to(def: &TaskDefinition, task_id: &str, group: &str, prefix: &str) -> bool {
    def.container_definitions.iter().any(|c| {
        let runtime_id = crate::names::runtime_id(task_id, &c.name);
        stream_of(c.log_configuration.as_ref(), &c.name, task_id, &runtime_id)
            .is_some_and(|s| s.group == group && s.stream.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &[(&str, &str)]) -> LogConfiguration {
        crate::log_drivers::test_config("awslogs", options)
    }

    #[test]
    fn streams_are_named_as_ecs_names_them() {
        let c = config(&[
            ("awslogs-group", "/ecs/web"),
            ("awslogs-stream-prefix", "ecs"),
        ]);
        let s = stream_of(Some(&c), "app", "abc123", "abc123-app").expect("awslogs");
        assert_eq!(s.group, "/ecs/web");
        assert_eq!(s.stream, "ecs/app/abc123");
        let c = config(&[("awslogs-group", "g")]);
        let s = stream_of(Some(&c), "app", "abc123", "abc123-app").expect("awslogs");
        assert_eq!(s.stream, "abc123-app");
        let json = LogConfiguration {
            log_driver: "json-file".into(),
            ..Default::default()
        };
        assert_eq!(stream_of(Some(&json), "app", "t", "r"), None);
        assert_eq!(stream_of(None, "app", "t", "r"), None);
    }

    #[test]
    fn a_task_writes_to_its_containers_streams() {
        let def: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "web",
            "containerDefinitions": [
                { "name": "app", "image": "busybox", "logConfiguration": {
                    "logDriver": "awslogs", "options": {
                        "awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs" } } },
                { "name": "side", "image": "busybox" }
            ]
        }))
        .expect("definition");
        assert!(writes_to(&def, "t1", "/ecs/web", ""));
        assert!(writes_to(&def, "t1", "/ecs/web", "ecs/app/"));
        assert!(!writes_to(&def, "t1", "/ecs/web", "other/"));
        assert!(!writes_to(&def, "t1", "/ecs/db", ""));
    }

    #[test]
    fn names_stay_inside_their_directory_and_read_back() {
        let root = Path::new("/r");
        let s = Stream {
            group: "../..".into(),
            stream: "a/../b%".into(),
        };
        let file = stream_file(root, &s);
        assert!(file.starts_with("/r/logs/awslogs"), "{file:?}");
        assert_eq!(file.components().count(), 6, "{file:?}");
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(stream_of_file(name).as_deref(), Some("a/../b%"));
        assert_eq!(stream_of_file("x%2"), None);
    }

    #[test]
    fn names_too_long_as_file_names_are_refused_naming_the_field() {
        let p = "containerDefinitions[0].logConfiguration";
        let ok = config(&[
            ("awslogs-group", "/ecs/web"),
            ("awslogs-stream-prefix", "ecs"),
        ]);
        check_names(p, &ok, "app").expect("fits");
        let slashes = "/".repeat(100);
        let e = check_names(p, &config(&[("awslogs-group", &slashes)]), "app").unwrap_err();
        assert!(
            e.starts_with(&format!("{p}.options.awslogs-group: ")),
            "{e}"
        );
        let long = "p".repeat(250);
        let c = config(&[("awslogs-group", "g"), ("awslogs-stream-prefix", &long)]);
        let e = check_names(p, &c, "app").unwrap_err();
        assert!(
            e.starts_with(&format!("{p}.options.awslogs-stream-prefix: ")),
            "{e}"
        );
        let c = config(&[
            ("awslogs-group", "g"),
            ("awslogs-stream", &"\u{1F600}".repeat(30)),
        ]);
        let e = check_names(p, &c, "app").unwrap_err();
        assert!(
            e.starts_with(&format!("{p}.options.awslogs-stream: ")),
            "{e}"
        );
        // Every name that fits gives a file the kernel takes.
        let s = stream_of(Some(&ok), "app", "t", "r").expect("awslogs");
        let file = stream_file(Path::new("/r"), &s);
        assert!(file.file_name().map_or(0, |n| n.len()) <= MAX_ENCODED + 4);
    }
}

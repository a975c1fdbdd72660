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
        LogConfiguration {
            log_driver: "awslogs".into(),
            options: Some(
                options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            secret_options: None,
        }
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
}

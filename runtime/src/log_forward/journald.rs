//! Docker's `journald` driver's fields, in the journal's native protocol:
//! one datagram a line of `KEY=value` fields, a value holding a newline
//! sent as `KEY`, newline, its length as 64-bit little-endian, the value
//! and a newline (systemd's "Native Journal Protocol").

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Identity;
use crate::logs::Stream;

/// The system journal's native socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// The native socket of journal namespace `namespace` (journald started
/// as `systemd-journald NAMESPACE`, read by `journalctl --namespace`).
pub fn namespace_socket(namespace: &str) -> Result<PathBuf, String> {
    let ok = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !namespace.starts_with('.');
    if ok {
        Ok(PathBuf::from(format!(
            "/run/systemd/journal.{namespace}/socket"
        )))
    } else {
        Err(format!("{namespace:?} is not a journal namespace name"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournaldConfig {
    pub socket: PathBuf,
    pub id: Identity,
    pub buffer: usize,
}

impl JournaldConfig {
    /// The datagram for `text` (its newline removed): Docker's fields,
    /// PRIORITY 6 for stdout and 3 for stderr.
    pub fn frame(&self, stream: Stream, text: &str) -> Vec<u8> {
        let priority = match stream {
            Stream::Stdout => "6",
            Stream::Stderr => "3",
        };
        let mut out = Vec::with_capacity(text.len() + 256);
        for (key, value) in [
            ("MESSAGE", text),
            ("CONTAINER_ID", self.id.short_id()),
            ("CONTAINER_ID_FULL", &self.id.full_id),
            ("CONTAINER_NAME", &self.id.name),
            ("CONTAINER_TAG", &self.id.tag),
            ("IMAGE_NAME", &self.id.image),
            ("SYSLOG_IDENTIFIER", &self.id.tag),
            ("PRIORITY", priority),
        ] {
            push_field(&mut out, key, value.as_bytes());
        }
        out
    }
}

fn push_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> JournaldConfig {
        JournaldConfig {
            socket: SOCKET.into(),
            id: Identity {
                full_id: "0123456789abcdef-app".into(),
                name: "app".into(),
                image: "busybox".into(),
                tag: "web".into(),
            },
            buffer: 1024,
        }
    }

    #[test]
    fn fields_in_the_native_protocol() {
        let d = config().frame(Stream::Stderr, "hello");
        assert_eq!(
            String::from_utf8(d).expect("utf8"),
            "MESSAGE=hello\nCONTAINER_ID=0123456789ab\nCONTAINER_ID_FULL=0123456789abcdef-app\n\
             CONTAINER_NAME=app\nCONTAINER_TAG=web\nIMAGE_NAME=busybox\nSYSLOG_IDENTIFIER=web\n\
             PRIORITY=3\n"
        );
        let d = config().frame(Stream::Stdout, "a\nb");
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\nCONTAINER_ID=");
        assert!(d.starts_with(&want), "{d:?}");
        assert!(d.ends_with(b"PRIORITY=6\n"));
    }

    #[test]
    fn namespaces_name_their_sockets() {
        assert_eq!(
            namespace_socket("berth-1").expect("ok"),
            PathBuf::from("/run/systemd/journal.berth-1/socket")
        );
        assert!(namespace_socket("../x").is_err());
        assert!(namespace_socket("").is_err());
    }
}

//! Log forwarding drivers (Docker's `syslog`, `journald`, `fluentd`): the
//! container's monitor keeps its json-file log as ever (Docker's "dual
//! logging" cache, so `berth logs` still reads it) and also hands every
//! line to one of these. Each driver's framing is a pure function in its
//! own module; [`queue`] sends the framed messages from a thread of the
//! monitor with a bounded buffer, so a slow or absent receiver never
//! blocks the container: past the bound, lines are dropped and counted.

pub mod address;
pub mod fluentd;
pub mod journald;
mod queue;
pub mod syslog;
mod transport;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use address::Address;

use crate::logs::Stream;

/// Docker's non-blocking mode buffers 1 MiB by default; so does berth.
pub const DEFAULT_BUFFER: usize = 1 << 20;
/// How long a closing monitor waits for its last lines to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Where a container's lines are forwarded, with what framing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "driver")]
pub enum Forward {
    Syslog(syslog::SyslogConfig),
    Journald(journald::JournaldConfig),
    Fluentd(fluentd::FluentdConfig),
}

/// The container's identity, as Docker's drivers name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The runtime's container id (Docker's `FullID`).
    pub full_id: String,
    /// The container's name (without Docker's leading `/`).
    pub name: String,
    pub image: String,
    /// The expanded `tag` option.
    pub tag: String,
}

impl Identity {
    /// Docker's short id: the first 12 characters.
    pub fn short_id(&self) -> &str {
        let end = self
            .full_id
            .char_indices()
            .nth(12)
            .map_or(self.full_id.len(), |(i, _)| i);
        &self.full_id[..end]
    }
}

/// A running forwarder: frames lines, queues them to its sender thread.
pub struct Forwarding {
    config: Forward,
    hostname: String,
    pid: u32,
    queue: queue::Queue,
}

impl Forwarding {
    /// Start forwarding to `config`'s receiver; nothing is sent yet, so an
    /// absent receiver is no error here (it is retried as lines come).
    pub fn start(config: Forward) -> std::io::Result<Self> {
        let (driver, address, limit, retry) = match &config {
            Forward::Syslog(c) => ("syslog", c.address.clone(), c.buffer, None),
            Forward::Journald(c) => (
                "journald",
                Address::Unixgram(c.socket.clone()),
                c.buffer,
                None,
            ),
            Forward::Fluentd(c) => (
                "fluentd",
                c.address.clone(),
                c.buffer,
                Some(Duration::from_millis(c.retry_wait_ms)),
            ),
        };
        // The host's name, as Docker's syslog driver gives its daemon's.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let queue = queue::Queue::start(driver, address, limit, retry)?;
        Ok(Self {
            config,
            hostname,
            pid: std::process::id(),
            queue,
        })
    }

    /// Frame and queue one line (its newline, if any, included).
    pub fn send(&self, stream: Stream, line: &[u8]) {
        let time = SystemTime::now();
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let message = match &self.config {
            Forward::Syslog(c) => {
                let local = chrono::DateTime::<chrono::Local>::from(time).fixed_offset();
                c.frame(&self.hostname, self.pid, stream, text, local)
            }
            Forward::Journald(c) => c.frame(stream, text),
            Forward::Fluentd(c) => c.frame(stream, text, time),
        };
        self.queue.push(message);
    }

    /// Send what is queued, waiting at most a few seconds.
    pub fn close(self) {
        self.queue.close(CLOSE_GRACE);
    }
}

/// Expand Docker's `tag` template: `{{.ID}}`, `{{.FullID}}`, `{{.Name}}`,
/// `{{.ImageName}}`, `{{.DaemonName}}`; other text is kept as it is.
pub fn expand_tag(template: &str, id: &Identity) -> String {
    template
        .replace("{{.ID}}", id.short_id())
        .replace("{{.FullID}}", &id.full_id)
        .replace("{{.Name}}", &id.name)
        .replace("{{.ImageName}}", &id.image)
        .replace("{{.DaemonName}}", "berth")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_expand_as_dockers_templates() {
        let id = Identity {
            full_id: "0123456789abcdef-app".into(),
            name: "app".into(),
            image: "busybox:latest".into(),
            tag: String::new(),
        };
        assert_eq!(id.short_id(), "0123456789ab");
        assert_eq!(
            expand_tag(
                "{{.Name}}/{{.ID}}/{{.FullID}}/{{.ImageName}}/{{.DaemonName}}",
                &id
            ),
            "app/0123456789ab/0123456789abcdef-app/busybox:latest/berth"
        );
        assert_eq!(expand_tag("web", &id), "web");
    }

    #[test]
    fn configs_round_trip_through_container_json() {
        let f = Forward::Journald(journald::JournaldConfig {
            socket: "/run/systemd/journal/socket".into(),
            id: Identity {
                full_id: "x".into(),
                name: "n".into(),
                image: "i".into(),
                tag: "t".into(),
            },
            buffer: DEFAULT_BUFFER,
        });
        let json = serde_json::to_string(&f).expect("json");
        assert!(json.contains("\"driver\":\"journald\""), "{json}");
        assert_eq!(serde_json::from_str::<Forward>(&json).expect("back"), f);
    }
}

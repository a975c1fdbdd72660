//! A container's `logConfiguration` as the runtime's log forwarding
//! (syslog, journald, fluentd): what the container's monitor sends where,
//! with Docker's defaults (tag `{{.ID}}`, syslog to `/dev/log` at facility
//! daemon, fluentd to `localhost:24224`, 1 MiB buffered). Always
//! non-blocking: a receiver never holds the container (see
//! `berth_runtime::log_forward`). Pure: options were checked at
//! registration ([`crate::log_drivers::check`]); a value still wrong is
//! an error naming its option.

use std::collections::BTreeMap;
use std::path::Path;

use berth_runtime::log_forward::{
    expand_tag, fluentd, journald, syslog, Address, Forward, Identity, DEFAULT_BUFFER,
};

use crate::log_drivers::{parse_duration_ms, parse_size, LogDriver};
use crate::model::LogConfiguration;

/// Docker's default tag: the short container id.
const DEFAULT_TAG: &str = "{{.ID}}";

/// Who is logging.
pub struct Source<'a> {
    pub runtime_id: &'a str,
    pub container: &'a str,
    pub image: &'a str,
    /// The journal's native socket (the system's, or a namespace's).
    pub journal_socket: &'a Path,
}

/// The forwarding `config` asks for; none for the drivers that only
/// write files.
pub fn forward_of(
    config: Option<&LogConfiguration>,
    source: &Source<'_>,
) -> Result<Option<Forward>, String> {
    let Some(config) = config else {
        return Ok(None);
    };
    let empty = BTreeMap::new();
    let options = config.options.as_ref().unwrap_or(&empty);
    let get = |k: &str| options.get(k).map(String::as_str);
    let field = |k: &str, e: String| format!("logConfiguration.options.{k}: {e}");
    let mut id = Identity {
        full_id: source.runtime_id.to_string(),
        name: source.container.to_string(),
        image: source.image.to_string(),
        tag: String::new(),
    };
    id.tag = expand_tag(get("tag").unwrap_or(DEFAULT_TAG), &id);
    let buffer = |key: &str| match get(key) {
        Some(v) => parse_size(v)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| field(key, format!("{v:?} is not a size"))),
        None => Ok(DEFAULT_BUFFER),
    };
    let forward = match LogDriver::parse(&config.log_driver) {
        Some(LogDriver::Syslog) => Forward::Syslog(syslog::SyslogConfig {
            address: Address::syslog(get("syslog-address"))
                .map_err(|e| field("syslog-address", e))?,
            facility: syslog::facility(get("syslog-facility"))
                .map_err(|e| field("syslog-facility", e))?,
            format: syslog::SyslogFormat::parse(get("syslog-format"))
                .map_err(|e| field("syslog-format", e))?,
            id,
            buffer: buffer("max-buffer-size")?,
        }),
        Some(LogDriver::Journald) => Forward::Journald(journald::JournaldConfig {
            socket: source.journal_socket.to_path_buf(),
            id,
            buffer: buffer("max-buffer-size")?,
        }),
        Some(LogDriver::Fluentd) => Forward::Fluentd(fluentd::FluentdConfig {
            address: Address::fluentd(get("fluentd-address"))
                .map_err(|e| field("fluentd-address", e))?,
            id,
            sub_second: get("fluentd-sub-second-precision") == Some("true"),
            buffer: buffer("fluentd-buffer-limit")?,
            retry_wait_ms: match get("fluentd-retry-wait") {
                Some(v) => parse_duration_ms(v).ok_or_else(|| {
                    field("fluentd-retry-wait", format!("{v:?} is not a duration"))
                })?,
                None => fluentd::DEFAULT_RETRY_WAIT_MS,
            },
        }),
        _ => return Ok(None),
    };
    Ok(Some(forward))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log_drivers::test_config as config;

    fn source() -> Source<'static> {
        Source {
            runtime_id: "0123456789abcdef-app",
            container: "app",
            image: "busybox",
            journal_socket: Path::new(journald::SOCKET),
        }
    }

    #[test]
    fn file_drivers_forward_nothing() {
        for c in [
            None,
            Some(config("json-file", &[])),
            Some(config("awslogs", &[("awslogs-group", "g")])),
            Some(config("none", &[])),
        ] {
            assert_eq!(forward_of(c.as_ref(), &source()), Ok(None));
        }
    }

    #[test]
    fn dockers_defaults() {
        let Some(Forward::Syslog(s)) =
            forward_of(Some(&config("syslog", &[])), &source()).expect("ok")
        else {
            panic!("syslog")
        };
        assert_eq!(s.address, Address::Local("/dev/log".into()));
        assert_eq!((s.facility, s.id.tag.as_str()), (3, "0123456789ab"));
        assert_eq!(s.format, syslog::SyslogFormat::Default);
        assert_eq!(s.buffer, DEFAULT_BUFFER);
        let Some(Forward::Fluentd(f)) =
            forward_of(Some(&config("fluentd", &[])), &source()).expect("ok")
        else {
            panic!("fluentd")
        };
        assert_eq!(f.address, Address::Tcp("localhost:24224".into()));
        assert_eq!((f.sub_second, f.retry_wait_ms), (false, 1000));
        let Some(Forward::Journald(j)) = forward_of(
            Some(&config("journald", &[("tag", "{{.Name}}")])),
            &source(),
        )
        .expect("ok") else {
            panic!("journald")
        };
        assert_eq!(j.socket, Path::new("/run/systemd/journal/socket"));
        assert_eq!(j.id.tag, "app");
    }

    #[test]
    fn options_are_taken() {
        let c = config(
            "fluentd",
            &[
                ("fluentd-address", "tcp://127.0.0.1:24225"),
                ("fluentd-buffer-limit", "2k"),
                ("fluentd-retry-wait", "2s"),
                ("fluentd-sub-second-precision", "true"),
                ("tag", "docker.{{.Name}}"),
            ],
        );
        let Some(Forward::Fluentd(f)) = forward_of(Some(&c), &source()).expect("ok") else {
            panic!("fluentd")
        };
        assert_eq!(f.address, Address::Tcp("127.0.0.1:24225".into()));
        assert_eq!(
            (f.buffer, f.retry_wait_ms, f.sub_second),
            (2048, 2000, true)
        );
        assert_eq!(f.id.tag, "docker.app");
        let c = config(
            "syslog",
            &[
                ("syslog-address", "udp://127.0.0.1:5514"),
                ("syslog-facility", "local3"),
                ("syslog-format", "rfc5424"),
            ],
        );
        let Some(Forward::Syslog(s)) = forward_of(Some(&c), &source()).expect("ok") else {
            panic!("syslog")
        };
        assert_eq!(s.address, Address::Udp("127.0.0.1:5514".into()));
        assert_eq!((s.facility, s.format), (19, syslog::SyslogFormat::Rfc5424));
        let e = forward_of(
            Some(&config("syslog", &[("syslog-facility", "x")])),
            &source(),
        )
        .expect_err("bad");
        assert!(e.contains("options.syslog-facility"), "{e}");
    }
}

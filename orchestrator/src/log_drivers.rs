//! `logConfiguration`: which Docker log drivers berth takes, and each
//! one's options checked at registration as Docker checks them when it
//! creates a container, so that a mistake is refused then, naming the
//! field, rather than when a task starts. Pure: no store, no kernel.

use std::collections::BTreeMap;

use crate::error::{EcsError, EcsResult};
use crate::model::LogConfiguration;

/// The drivers berth takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogDriver {
    JsonFile,
    Awslogs,
    Syslog,
    Journald,
    Fluentd,
    None,
}

impl LogDriver {
    pub const ALL: [LogDriver; 6] = [
        Self::JsonFile,
        Self::Awslogs,
        Self::Syslog,
        Self::Journald,
        Self::Fluentd,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonFile => "json-file",
            Self::Awslogs => "awslogs",
            Self::Syslog => "syslog",
            Self::Journald => "journald",
            Self::Fluentd => "fluentd",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether berth acts on option `key` of this driver (the others
    /// are accepted and listed as ignored): json-file's rotation, awslogs'
    /// group and stream names, and what the forwarding drivers
    /// ([`crate::log_forwarding`]) use.
    pub fn honours(self, key: &str) -> bool {
        let forwarding = ["tag", "mode", "max-buffer-size"];
        match self {
            Self::JsonFile => matches!(key, "max-size" | "max-file"),
            Self::Awslogs => matches!(
                key,
                "awslogs-group" | "awslogs-stream-prefix" | "awslogs-stream"
            ),
            Self::Syslog => {
                forwarding.contains(&key)
                    || matches!(key, "syslog-address" | "syslog-facility" | "syslog-format")
            }
            Self::Journald => forwarding.contains(&key),
            Self::Fluentd => {
                forwarding.contains(&key)
                    || matches!(
                        key,
                        "fluentd-address"
                            | "fluentd-async"
                            | "fluentd-async-connect"
                            | "fluentd-buffer-limit"
                            | "fluentd-retry-wait"
                            | "fluentd-sub-second-precision"
                    )
            }
            Self::None => false,
        }
    }

    /// The options it takes, besides [`COMMON`].
    fn options(self) -> &'static [&'static str] {
        match self {
            Self::JsonFile => &["max-size", "max-file", "compress"],
            Self::Awslogs => &[
                "awslogs-group",
                "awslogs-region",
                "awslogs-stream-prefix",
                "awslogs-stream",
                "awslogs-create-group",
                "awslogs-datetime-format",
                "awslogs-multiline-pattern",
                "awslogs-endpoint",
                "awslogs-credentials-endpoint",
                "awslogs-force-flush-interval-seconds",
                "awslogs-max-buffered-events",
                "awslogs-format",
            ],
            Self::Syslog => &[
                "syslog-address",
                "syslog-facility",
                "syslog-format",
                "syslog-tls-ca-cert",
                "syslog-tls-cert",
                "syslog-tls-key",
                "syslog-tls-skip-verify",
            ],
            Self::Journald => &[],
            Self::Fluentd => &[
                "fluentd-address",
                "fluentd-async",
                "fluentd-async-connect",
                "fluentd-buffer-limit",
                "fluentd-retry-wait",
                "fluentd-max-retries",
                "fluentd-sub-second-precision",
                "fluentd-request-ack",
            ],
            Self::None => &[],
        }
    }
}

/// Options every driver but none takes (Docker's).
const COMMON: &[&str] = &[
    "mode",
    "max-buffer-size",
    "tag",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
];

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Check `config` (at field path `path`); returns its driver.
pub fn check(path: &str, config: &LogConfiguration) -> EcsResult<LogDriver> {
    let driver = LogDriver::parse(&config.log_driver).ok_or_else(|| {
        let known: Vec<&str> = LogDriver::ALL.iter().map(|d| d.as_str()).collect();
        EcsError::client(format!(
            "{path}.logDriver: {:?} is not supported; berth takes {}",
            config.log_driver,
            known.join(", ")
        ))
    })?;
    if config
        .secret_options
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(EcsError::client(format!(
            "{path}.secretOptions: not supported by berth's log drivers"
        )));
    }
    let empty = BTreeMap::new();
    let options = config.options.as_ref().unwrap_or(&empty);
    for (key, value) in options {
        let field = format!("{path}.options.{key}");
        let known = driver.options().contains(&key.as_str())
            || (driver != LogDriver::None && COMMON.contains(&key.as_str()));
        if !known {
            return Err(EcsError::client(format!(
                "{field}: unknown option for log driver {}",
                driver.as_str()
            )));
        }
        check_value(&field, key, value)?;
    }
    check_driver(path, driver, options)?;
    Ok(driver)
}

/// One option's value, by its name.
fn check_value(field: &str, key: &str, value: &str) -> EcsResult<()> {
    let bad = |expected: &str| {
        Err(EcsError::client(format!(
            "{field}: {value:?} is not {expected}"
        )))
    };
    let ok = match key {
        "max-size" | "max-buffer-size" | "fluentd-buffer-limit" => parse_size(value).is_some(),
        "max-file" | "fluentd-max-retries" | "awslogs-max-buffered-events" => {
            value.parse::<u32>().is_ok_and(|n| n >= 1)
        }
        "awslogs-force-flush-interval-seconds" => value.parse::<u32>().is_ok_and(|n| n >= 1),
        "compress"
        | "awslogs-create-group"
        | "syslog-tls-skip-verify"
        | "fluentd-async"
        | "fluentd-async-connect"
        | "fluentd-sub-second-precision"
        | "fluentd-request-ack" => matches!(value, "true" | "false"),
        "mode" => matches!(value, "blocking" | "non-blocking"),
        "syslog-facility" => FACILITIES.contains(&value),
        "syslog-format" => matches!(value, "" | "rfc3164" | "rfc5424" | "rfc5424micro"),
        // TLS is not in berth: refused rather than sent in the clear.
        "syslog-address" => address_ok(value, &["tcp", "udp", "unix", "unixgram"]),
        "fluentd-retry-wait" => parse_duration_ms(value).is_some(),
        "fluentd-address" => address_ok(value, &["tcp", "unix"]) || host_port_ok(value),
        "awslogs-group" => group_name_ok(value),
        "awslogs-stream-prefix" | "awslogs-stream" => stream_name_ok(value),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    match key {
        "max-size" | "max-buffer-size" | "fluentd-buffer-limit" => {
            bad("a size (a number with an optional k, m or g)")
        }
        "mode" => bad("blocking or non-blocking"),
        "syslog-facility" => bad("a syslog facility"),
        "syslog-format" => bad("rfc3164, rfc5424 or rfc5424micro"),
        "syslog-address" => bad("an address berth sends to (tcp://, udp://, unix://, unixgram://)"),
        "fluentd-retry-wait" => bad("a duration (such as 500ms, 1s or 2m)"),
        "fluentd-address" => bad("an address (host:port, tcp://host:port, unix://path)"),
        "awslogs-group" => bad("a log group name (1-512 of A-Z a-z 0-9 _ - / . #)"),
        "awslogs-stream-prefix" | "awslogs-stream" => {
            bad("a log stream name (1-512 characters, no : or *)")
        }
        _ if matches!(value, "true" | "false") => bad("a positive whole number"),
        _ => bad("of the expected form"),
    }
}

/// What a driver needs beyond single values.
fn check_driver(
    path: &str,
    driver: LogDriver,
    options: &BTreeMap<String, String>,
) -> EcsResult<()> {
    let has = |k: &str| options.contains_key(k);
    if driver == LogDriver::Awslogs {
        if !has("awslogs-group") {
            return Err(EcsError::client(format!(
                "{path}.options.awslogs-group: required by the awslogs log driver"
            )));
        }
        if has("awslogs-datetime-format") && has("awslogs-multiline-pattern") {
            return Err(EcsError::client(format!(
                "{path}.options: awslogs-datetime-format and awslogs-multiline-pattern exclude each other"
            )));
        }
    }
    if driver == LogDriver::Fluentd && has("fluentd-async") && has("fluentd-async-connect") {
        return Err(EcsError::client(format!(
            "{path}.options: fluentd-async and fluentd-async-connect exclude each other"
        )));
    }
    if has("max-buffer-size") && options.get("mode").map(String::as_str) != Some("non-blocking") {
        return Err(EcsError::client(format!(
            "{path}.options.max-buffer-size: only with mode non-blocking"
        )));
    }
    Ok(())
}

/// Fargate's own rules (a definition requiring FARGATE): of the drivers
/// ECS allows there (awslogs, splunk, awsfirelens) berth has awslogs, and
/// Fargate requires its `awslogs-stream-prefix` (ECS's wording).
pub fn check_fargate(path: &str, config: &LogConfiguration) -> EcsResult<()> {
    if LogDriver::parse(&config.log_driver) != Some(LogDriver::Awslogs) {
        return Err(EcsError::client(format!(
            "{path}.logDriver: log driver {:?} is not supported on Fargate, which takes awslogs, \
             splunk and awsfirelens (berth: awslogs)",
            config.log_driver
        )));
    }
    let has_prefix = config
        .options
        .as_ref()
        .is_some_and(|o| o.contains_key("awslogs-stream-prefix"));
    if !has_prefix {
        return Err(EcsError::client(format!(
            "{path}.options.awslogs-stream-prefix: Fargate requires log configuration options \
             to include awslogs-stream-prefix to support log driver awslogs"
        )));
    }
    Ok(())
}

/// json-file's rotation (`max-size`, `max-file`), else the runtime's
/// defaults; options checked at registration.
pub fn json_file_limits(config: Option<&LogConfiguration>) -> (u64, u32) {
    use berth_runtime::logs::{DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};
    let options = config
        .filter(|c| c.log_driver == LogDriver::JsonFile.as_str())
        .and_then(|c| c.options.as_ref());
    let get = |k: &str| options.and_then(|o| o.get(k));
    let size = get("max-size")
        .and_then(|v| parse_size(v))
        .unwrap_or(DEFAULT_MAX_SIZE);
    let files = get("max-file")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(DEFAULT_MAX_FILES);
    (size, files)
}

/// An awslogs stream's rotation. CloudWatch keeps a stream whole, but
/// here it lives on the state root's filesystem (state.db's): json-file's
/// defaults (3 files of 10 MiB), the oldest lines dropped past them.
pub const AWSLOGS_ROTATION: (u64, u32) = (
    berth_runtime::logs::DEFAULT_MAX_SIZE,
    berth_runtime::logs::DEFAULT_MAX_FILES,
);

/// A container log's rotation: json-file's; [`AWSLOGS_ROTATION`] for an
/// awslogs stream; no file at all for the none driver.
pub fn rotation(config: Option<&LogConfiguration>) -> (u64, u32) {
    match config.and_then(|c| LogDriver::parse(&c.log_driver)) {
        Some(LogDriver::Awslogs) => return AWSLOGS_ROTATION,
        // The runtime keeps no file then.
        Some(LogDriver::None) => return (berth_runtime::logs::DEFAULT_MAX_SIZE, 0),
        _ => {}
    }
    json_file_limits(config)
}

/// Go's durations as Docker's options take them ("500ms", "1s", "2m",
/// "1h"; a bare number is milliseconds), in milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Docker's sizes: "1024", "10k", "10m", "1g" (any case, an optional b).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, scale) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
}

fn address_ok(value: &str, schemes: &[&str]) -> bool {
    value.split_once("://").is_some_and(|(scheme, rest)| {
        schemes.contains(&scheme)
            && !rest.is_empty()
            && (scheme.starts_with("unix") || host_port_ok(rest))
    })
}

fn host_port_ok(value: &str) -> bool {
    value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// CloudWatch Logs' log group names.
fn group_name_ok(value: &str) -> bool {
    (1..=512).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | '#'))
}

/// CloudWatch Logs' log stream names.
fn stream_name_ok(value: &str) -> bool {
    (1..=512).contains(&value.chars().count()) && !value.contains([':', '*'])
}

/// A `logConfiguration` for the driver modules' unit tests.
#[cfg(test)]
pub(crate) fn test_config(driver: &str, options: &[(&str, &str)]) -> LogConfiguration {
    LogConfiguration {
        log_driver: driver.into(),
        options: Some(
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        secret_options: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_config as config;

    fn err(c: &LogConfiguration) -> String {
        check("c.logConfiguration", c)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_supported_drivers_are_accepted_with_their_options() {
        let ok = [
            config("json-file", &[("max-size", "10m"), ("max-file", "3")]),
            config(
                "awslogs",
                &[
                    ("awslogs-group", "/ecs/web"),
                    ("awslogs-region", "us-east-1"),
                    ("awslogs-stream-prefix", "ecs"),
                ],
            ),
            config(
                "syslog",
                &[("syslog-address", "udp://127.0.0.1:514"), ("tag", "x")],
            ),
            config("journald", &[("tag", "web")]),
            config("fluentd", &[("fluentd-address", "localhost:24224")]),
            config("none", &[]),
            config(
                "json-file",
                &[("mode", "non-blocking"), ("max-buffer-size", "4m")],
            ),
        ];
        for c in ok {
            check("p", &c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
    }

    #[test]
    fn other_drivers_and_bad_options_are_refused_naming_the_field() {
        let e = err(&config("splunk", &[]));
        assert!(e.contains("c.logConfiguration.logDriver"), "{e}");
        assert!(e.contains("json-file"), "{e}");
        let e = err(&config("json-file", &[("max-size", "ten")]));
        assert!(e.contains("c.logConfiguration.options.max-size"), "{e}");
        let e = err(&config("json-file", &[("max-file", "0")]));
        assert!(e.contains("options.max-file"), "{e}");
        let e = err(&config("json-file", &[("awslogs-group", "x")]));
        assert!(e.contains("options.awslogs-group: unknown option"), "{e}");
        let e = err(&config("awslogs", &[("awslogs-region", "x")]));
        assert!(e.contains("options.awslogs-group: required"), "{e}");
        let e = err(&config("awslogs", &[("awslogs-group", "a:b")]));
        assert!(e.contains("options.awslogs-group"), "{e}");
        let e = err(&config("syslog", &[("syslog-address", "http://x:1")]));
        assert!(e.contains("options.syslog-address"), "{e}");
        let e = err(&config("syslog", &[("syslog-facility", "nope")]));
        assert!(e.contains("options.syslog-facility"), "{e}");
        let e = err(&config("syslog", &[("syslog-address", "tcp+tls://h:6514")]));
        assert!(e.contains("options.syslog-address"), "{e}");
        let e = err(&config("fluentd", &[("fluentd-retry-wait", "soon")]));
        assert!(e.contains("options.fluentd-retry-wait"), "{e}");
        let e = err(&config("fluentd", &[("fluentd-address", "host")]));
        assert!(e.contains("options.fluentd-address"), "{e}");
        let e = err(&config("none", &[("tag", "x")]));
        assert!(e.contains("options.tag"), "{e}");
        let e = err(&config("json-file", &[("max-buffer-size", "4m")]));
        assert!(e.contains("options.max-buffer-size"), "{e}");
        let e = err(&config("json-file", &[("mode", "fast")]));
        assert!(e.contains("options.mode"), "{e}");
    }

    #[test]
    fn fargate_takes_awslogs_with_a_stream_prefix() {
        let ok = config(
            "awslogs",
            &[("awslogs-group", "g"), ("awslogs-stream-prefix", "ecs")],
        );
        check_fargate("c", &ok).expect("fargate awslogs");
        let e = check_fargate("c", &config("awslogs", &[("awslogs-group", "g")]))
            .expect_err("no prefix")
            .to_string();
        assert!(e.contains("c.options.awslogs-stream-prefix"), "{e}");
        assert!(e.contains("Fargate requires"), "{e}");
        let e = check_fargate("c", &config("json-file", &[]))
            .expect_err("json-file")
            .to_string();
        assert!(e.contains("c.logDriver"), "{e}");
    }

    #[test]
    fn durations_parse_as_gos() {
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2s"), Some(2000));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("250"), Some(250));
        assert_eq!(parse_duration_ms("1d"), None);
        assert_eq!(parse_duration_ms("s"), None);
    }

    #[test]
    fn what_berth_acts_on_per_driver() {
        assert!(LogDriver::JsonFile.honours("max-size"));
        assert!(!LogDriver::JsonFile.honours("tag"));
        assert!(LogDriver::Syslog.honours("syslog-format"));
        assert!(!LogDriver::Syslog.honours("syslog-tls-ca-cert"));
        assert!(LogDriver::Journald.honours("tag"));
        assert!(!LogDriver::Journald.honours("labels"));
        assert!(LogDriver::Fluentd.honours("fluentd-address"));
        assert!(!LogDriver::Fluentd.honours("fluentd-request-ack"));
    }

    #[test]
    fn json_file_rotation_follows_its_options() {
        use berth_runtime::logs::{DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};
        let c = config("json-file", &[("max-size", "1k"), ("max-file", "2")]);
        assert_eq!(json_file_limits(Some(&c)), (1024, 2));
        let defaults = (DEFAULT_MAX_SIZE, DEFAULT_MAX_FILES);
        assert_eq!(json_file_limits(None), defaults);
        let other = config("syslog", &[("max-size", "1k")]);
        assert_eq!(json_file_limits(Some(&other)), defaults);
    }

    #[test]
    fn awslogs_is_capped_and_none_keeps_no_file() {
        let aws = config("awslogs", &[("awslogs-group", "g")]);
        // Bounded, so that a chatty container cannot fill the state root.
        assert_eq!(rotation(Some(&aws)), AWSLOGS_ROTATION);
        assert!(AWSLOGS_ROTATION.0 <= 64 << 20 && AWSLOGS_ROTATION.1 <= 5);
        assert_eq!(rotation(Some(&config("none", &[]))).1, 0);
        let json = config("json-file", &[("max-file", "5")]);
        assert_eq!(rotation(Some(&json)).1, 5);
    }

    #[test]
    fn sizes_read_as_docker_reads_them() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10k"), Some(10 << 10));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("2gb"), Some(2 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("99999999999g"), None);
    }
}

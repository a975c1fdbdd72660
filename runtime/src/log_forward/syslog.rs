//! Docker's `syslog` driver's framing (its srslog formatters): stdout at
//! severity info (6), stderr at err (3), the facility's code times 8
//! added; every message ends in a newline, as srslog ends them.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::{Address, Identity};
use crate::logs::Stream;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// No `syslog-format`: srslog's UnixFormatter, `<P>Stamp tag[pid]: msg`.
    Default,
    /// `<P>Stamp host tag[pid]: msg`.
    Rfc3164,
    /// `<P>1 RFC3339 host tag pid tag - msg`.
    Rfc5424,
    /// As rfc5424, with microseconds.
    Rfc5424micro,
}

impl SyslogFormat {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or("") {
            "" => Ok(Self::Default),
            "rfc3164" => Ok(Self::Rfc3164),
            "rfc5424" => Ok(Self::Rfc5424),
            "rfc5424micro" => Ok(Self::Rfc5424micro),
            other => Err(format!("{other:?} is not rfc3164, rfc5424 or rfc5424micro")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyslogConfig {
    pub address: Address,
    /// The facility's code (daemon, 3, by default).
    pub facility: u8,
    pub format: SyslogFormat,
    pub id: Identity,
    pub buffer: usize,
}

/// syslog's facility names and codes (RFC 5424 table 1, Go's log/syslog).
pub const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// `syslog-facility`'s code; none is daemon, as Docker's.
pub fn facility(value: Option<&str>) -> Result<u8, String> {
    let name = value.unwrap_or("daemon");
    FACILITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
        .ok_or_else(|| format!("{name:?} is not a syslog facility"))
}

impl SyslogConfig {
    /// One message for `text` (its newline removed), sent by process `pid`
    /// on `hostname` at `time`.
    pub fn frame(
        &self,
        hostname: &str,
        pid: u32,
        stream: Stream,
        text: &str,
        time: DateTime<FixedOffset>,
    ) -> Vec<u8> {
        let severity = match stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        let pri = u32::from(self.facility) * 8 + severity;
        let tag = &self.id.tag;
        let line = match self.format {
            SyslogFormat::Default => {
                format!(
                    "<{pri}>{} {tag}[{pid}]: {text}",
                    time.format("%b %e %H:%M:%S")
                )
            }
            SyslogFormat::Rfc3164 => format!(
                "<{pri}>{} {hostname} {tag}[{pid}]: {text}",
                time.format("%b %e %H:%M:%S")
            ),
            SyslogFormat::Rfc5424 => format!(
                "<{pri}>1 {} {hostname} {tag} {pid} {tag} - {text}",
                time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            SyslogFormat::Rfc5424micro => format!(
                "<{pri}>1 {} {hostname} {tag} {pid} {tag} - {text}",
                time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        };
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(format: SyslogFormat, facility: u8) -> SyslogConfig {
        SyslogConfig {
            address: Address::Local(super::super::address::DEV_LOG.into()),
            facility,
            format,
            id: Identity {
                full_id: "abc-app".into(),
                name: "app".into(),
                image: "busybox".into(),
                tag: "web".into(),
            },
            buffer: 1024,
        }
    }

    fn at() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-03-05T07:08:09.123456789Z").expect("time")
    }

    #[test]
    fn frames_as_dockers_formatters() {
        let msg =
            |f, s| String::from_utf8(config(f, 3).frame("vm", 42, s, "hello", at())).expect("utf8");
        assert_eq!(
            msg(SyslogFormat::Default, Stream::Stdout),
            "<30>Mar  5 07:08:09 web[42]: hello\n"
        );
        assert_eq!(
            msg(SyslogFormat::Rfc3164, Stream::Stderr),
            "<27>Mar  5 07:08:09 vm web[42]: hello\n"
        );
        assert_eq!(
            msg(SyslogFormat::Rfc5424, Stream::Stdout),
            "<30>1 2026-03-05T07:08:09Z vm web 42 web - hello\n"
        );
        assert_eq!(
            msg(SyslogFormat::Rfc5424micro, Stream::Stdout),
            "<30>1 2026-03-05T07:08:09.123456Z vm web 42 web - hello\n"
        );
        let local7 = config(SyslogFormat::Default, facility(Some("local7")).expect("f"));
        let m = local7.frame("vm", 1, Stream::Stderr, "x", at());
        assert!(m.starts_with(b"<187>"), "{}", String::from_utf8_lossy(&m));
    }

    #[test]
    fn facilities_and_formats_parse() {
        assert_eq!(facility(None), Ok(3));
        assert_eq!(facility(Some("kern")), Ok(0));
        assert!(facility(Some("nope")).is_err());
        assert_eq!(SyslogFormat::parse(None), Ok(SyslogFormat::Default));
        assert_eq!(
            SyslogFormat::parse(Some("rfc5424")),
            Ok(SyslogFormat::Rfc5424)
        );
        assert!(SyslogFormat::parse(Some("json")).is_err());
    }
}

//! Receivers' addresses as Docker's drivers write them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "at")]
pub enum Address {
    Udp(String),
    Tcp(String),
    /// A stream socket.
    Unix(PathBuf),
    /// A datagram socket.
    Unixgram(PathBuf),
    /// The local syslog socket: a datagram socket, else a stream one, as
    /// Go's log/syslog tries them.
    Local(PathBuf),
}

/// The local syslog socket Docker uses when no address is given.
pub const DEV_LOG: &str = "/dev/log";

impl Address {
    /// `syslog-address`: `udp://h:p`, `tcp://h:p`, `unix:///p`,
    /// `unixgram:///p`; none is the local `/dev/log`. A port left out is
    /// syslog's 514.
    pub fn syslog(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(Self::Local(DEV_LOG.into()));
        };
        let (scheme, rest) = value.split_once("://").ok_or_else(|| {
            format!("{value:?}: no scheme (udp://, tcp://, unix://, unixgram://)")
        })?;
        match scheme {
            "udp" => Ok(Self::Udp(with_port(rest, 514)?)),
            "tcp" => Ok(Self::Tcp(with_port(rest, 514)?)),
            "unix" => Ok(Self::Unix(path(rest)?)),
            "unixgram" => Ok(Self::Unixgram(path(rest)?)),
            other => Err(format!("{value:?}: scheme {other} is not supported")),
        }
    }

    /// `fluentd-address`: `host:port`, `tcp://host:port`, `unix:///path`;
    /// none is `localhost:24224`.
    pub fn fluentd(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(Self::Tcp("localhost:24224".into()));
        };
        match value.split_once("://") {
            Some(("tcp", rest)) => Ok(Self::Tcp(with_port(rest, 24224)?)),
            Some(("unix", rest)) => Ok(Self::Unix(path(rest)?)),
            Some((other, _)) => Err(format!("{value:?}: scheme {other} is not supported")),
            None => Ok(Self::Tcp(with_port(value, 24224)?)),
        }
    }
}

fn with_port(host_port: &str, default: u16) -> Result<String, String> {
    if host_port.is_empty() {
        return Err("no host".into());
    }
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let port = match host_port.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(_, p)| p),
        None => match host_port.split_once(':') {
            Some((_, p)) if !p.contains(':') => Some(p),
            Some(_) => return Err(format!("{host_port:?}: an IPv6 address needs [brackets]")),
            None => None,
        },
    };
    match port {
        Some(p) => {
            p.parse::<u16>()
                .map_err(|_| format!("{host_port:?}: {p:?} is not a port"))?;
            Ok(host_port.to_string())
        }
        None => Ok(format!("{host_port}:{default}")),
    }
}

fn path(rest: &str) -> Result<PathBuf, String> {
    if rest.starts_with('/') {
        Ok(PathBuf::from(rest))
    } else {
        Err(format!("{rest:?}: not an absolute path"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_addresses() {
        assert_eq!(Address::syslog(None), Ok(Address::Local("/dev/log".into())));
        assert_eq!(
            Address::syslog(Some("udp://127.0.0.1:5514")),
            Ok(Address::Udp("127.0.0.1:5514".into()))
        );
        assert_eq!(
            Address::syslog(Some("tcp://logs.example")),
            Ok(Address::Tcp("logs.example:514".into()))
        );
        assert_eq!(
            Address::syslog(Some("unixgram:///tmp/x.sock")),
            Ok(Address::Unixgram("/tmp/x.sock".into()))
        );
        assert_eq!(
            Address::syslog(Some("unix:///tmp/y.sock")),
            Ok(Address::Unix("/tmp/y.sock".into()))
        );
        assert!(Address::syslog(Some("tcp+tls://h:1")).is_err());
        assert!(Address::syslog(Some("udp://h:x")).is_err());
        assert!(Address::syslog(Some("unix://rel")).is_err());
    }

    #[test]
    fn fluentd_addresses() {
        assert_eq!(
            Address::fluentd(None),
            Ok(Address::Tcp("localhost:24224".into()))
        );
        assert_eq!(
            Address::fluentd(Some("127.0.0.1:24225")),
            Ok(Address::Tcp("127.0.0.1:24225".into()))
        );
        assert_eq!(
            Address::fluentd(Some("tcp://[::1]:9")),
            Ok(Address::Tcp("[::1]:9".into()))
        );
        assert_eq!(
            Address::fluentd(Some("unix:///run/f.sock")),
            Ok(Address::Unix("/run/f.sock".into()))
        );
        assert!(Address::fluentd(Some("udp://h:1")).is_err());
    }
}

//! Which store berth opens: `--store URL` with `--store-ca/-cert/-key`
//! (env `BERTH_STORE`, `BERTH_STORE_CA`, `BERTH_STORE_CERT`,
//! `BERTH_STORE_KEY`), parsed into a [`StoreConfig`]. Pure: no I/O, no
//! connection (`store::open` opens it).
//!
//! - `sqlite` (the default): `<root>/state.db`, this host's own.
//! - `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`: the etcd cluster at those
//!   members; every record of this berth cluster lives under PREFIX
//!   (default `berth`), so several berth clusters or tests share one etcd.
//! - `etcds://...`: the same over TLS, trusting `--store-ca`, with
//!   `--store-cert` and `--store-key` as the client's identity.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The prefix of an etcd store whose URL names none.
pub const DEFAULT_PREFIX: &str = "berth";

/// The environment variables a store is named by: what the CLI reads
/// (through its flags) and what a spawned berth process is given.
pub const ENV_URL: &str = "BERTH_STORE";
pub const ENV_CA: &str = "BERTH_STORE_CA";
pub const ENV_CERT: &str = "BERTH_STORE_CERT";
pub const ENV_KEY: &str = "BERTH_STORE_KEY";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreUrl {
    #[default]
    Sqlite,
    Etcd {
        /// `host:port` of each member, in the order given.
        endpoints: Vec<String>,
        /// Without slashes at either end; never empty.
        prefix: String,
        tls: bool,
    },
}

impl StoreUrl {
    /// The root of this store's keys in etcd's key space (`PREFIX/`).
    pub fn etcd_root(prefix: &str) -> String {
        format!("{prefix}/")
    }
}

/// The URL in its canonical form: what errors name and what a spawned
/// process is handed, so it parses back to the same store.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite => f.write_str("sqlite"),
            StoreUrl::Etcd {
                endpoints,
                prefix,
                tls,
            } => {
                let scheme = if *tls { "etcds" } else { "etcd" };
                write!(f, "{scheme}://{}/{prefix}", endpoints.join(","))
            }
        }
    }
}

/// The files of a TLS connection to etcd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the servers' certificates.
    pub ca: Option<PathBuf>,
    /// The client's certificate and key, for `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A store to open: its URL and, for `etcds://`, its TLS files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub url: StoreUrl,
    pub tls: TlsFiles,
}

/// A `--store*` value that cannot be used, naming the flag.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreUrlError {
    pub flag: &'static str,
    /// What was given (empty for a flag that is missing).
    pub value: String,
    pub why: String,
}

impl fmt::Display for StoreUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.flag, self.why)
        } else {
            write!(f, "{} {:?}: {}", self.flag, self.value, self.why)
        }
    }
}

impl std::error::Error for StoreUrlError {}

fn bad(flag: &'static str, value: &str, why: impl Into<String>) -> StoreUrlError {
    StoreUrlError {
        flag,
        value: value.into(),
        why: why.into(),
    }
}

const EXPECTED: &str =
    "expected sqlite, etcd://HOST:PORT[,HOST:PORT...][/PREFIX] or etcds://... (TLS)";

impl StoreConfig {
    /// The store the flags name: `url` None is the default (SQLite).
    pub fn parse(url: Option<&str>, tls: TlsFiles) -> Result<Self, StoreUrlError> {
        let url = match url {
            None => StoreUrl::Sqlite,
            Some(value) => parse_url(value)?,
        };
        check_tls(&url, &tls)?;
        Ok(StoreConfig { url, tls })
    }

    /// The store named by the environment, read through `var` (a
    /// spawned berth process: its spawner set them, see [`Self::env`]).
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Result<Self, StoreUrlError> {
        let path = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let url = var(ENV_URL).map(|v| v.to_string_lossy().into_owned());
        let tls = TlsFiles {
            ca: path(ENV_CA),
            cert: path(ENV_CERT),
            key: path(ENV_KEY),
        };
        Self::parse(url.as_deref().filter(|u| !u.is_empty()), tls)
    }

    /// The environment a spawned berth process needs to open this very
    /// store: each variable set, or None to remove it (so that nothing
    /// inherited from elsewhere names another store).
    pub fn env(&self) -> Vec<(&'static str, Option<OsString>)> {
        let file = |p: &Option<PathBuf>| p.as_ref().map(|p| p.clone().into_os_string());
        vec![
            (ENV_URL, Some(self.url.to_string().into())),
            (ENV_CA, file(&self.tls.ca)),
            (ENV_CERT, file(&self.tls.cert)),
            (ENV_KEY, file(&self.tls.key)),
        ]
    }
}

fn parse_url(value: &str) -> Result<StoreUrl, StoreUrlError> {
    let flag = "--store";
    if value == "sqlite" {
        return Ok(StoreUrl::Sqlite);
    }
    let (tls, rest) = if let Some(rest) = value.strip_prefix("etcd://") {
        (false, rest)
    } else if let Some(rest) = value.strip_prefix("etcds://") {
        (true, rest)
    } else {
        return Err(bad(flag, value, EXPECTED));
    };
    if let Some(c) = rest.chars().find(|c| matches!(c, '@' | '?' | '#')) {
        return Err(bad(
            flag,
            value,
            format!("{c:?} has no meaning here; {EXPECTED}"),
        ));
    }
    let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let endpoints = hosts
        .split(',')
        .map(|e| endpoint(e).map_err(|why| bad(flag, value, why)))
        .collect::<Result<Vec<_>, _>>()?;
    let prefix = parse_prefix(prefix).map_err(|why| bad(flag, value, why))?;
    Ok(StoreUrl::Etcd {
        endpoints,
        prefix,
        tls,
    })
}

/// One `HOST:PORT`: a host name, an IPv4 address or a bracketed IPv6
/// address, and a port from 1 to 65535.
fn endpoint(text: &str) -> Result<String, String> {
    let what = || format!("{text:?} is not HOST:PORT");
    if text.is_empty() {
        return Err("an empty endpoint; expected HOST:PORT[,HOST:PORT...]".into());
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(what)?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?}: the port must be 1 to 65535"))?;
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    if !host_ok {
        return Err(what());
    }
    Ok(format!("{host}:{port}"))
}

/// PREFIX: `/`-separated names of letters, digits, `.`, `_` and `-`
/// (never `.` or `..`), with slashes at either end dropped; empty is
/// [`DEFAULT_PREFIX`]. Never a `!`: the etcd store names its namespaces
/// with one, so that a prefix extending another (`a`, `a/r`) never
/// reaches into the other's keys.
fn parse_prefix(text: &str) -> Result<String, String> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(DEFAULT_PREFIX.into());
    }
    for part in trimmed.split('/') {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(format!(
                "the prefix {trimmed:?}: names of letters, digits, '.', '_' and '-' separated by '/'"
            ));
        }
    }
    Ok(trimmed.into())
}

/// TLS files go with `etcds://` only, the CA is required there (there is
/// no system trust store for an etcd's private CA), and a client
/// certificate comes with its key.
fn check_tls(url: &StoreUrl, tls: &TlsFiles) -> Result<(), StoreUrlError> {
    let is_tls = matches!(url, StoreUrl::Etcd { tls: true, .. });
    let given = [
        ("--store-ca", &tls.ca),
        ("--store-cert", &tls.cert),
        ("--store-key", &tls.key),
    ];
    if !is_tls {
        if let Some((flag, Some(path))) = given.iter().find(|(_, p)| p.is_some()) {
            return Err(bad(
                flag,
                &path.display().to_string(),
                format!("only for an etcds:// store (--store is {url})"),
            ));
        }
        return Ok(());
    }
    if tls.ca.is_none() {
        return Err(bad(
            "--store-ca",
            "",
            format!(
                "an etcds:// store needs the CA that signed its certificates (--store is {url})"
            ),
        ));
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), None) => Err(bad(
            "--store-cert",
            &cert.display().to_string(),
            "needs --store-key too",
        )),
        (None, Some(key)) => Err(bad(
            "--store-key",
            &key.display().to_string(),
            "needs --store-cert too",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn url(value: &str) -> Result<StoreUrl, StoreUrlError> {
        StoreConfig::parse(Some(value), TlsFiles::default()).map(|c| c.url)
    }

    fn etcd(endpoints: &[&str], prefix: &str, tls: bool) -> StoreUrl {
        StoreUrl::Etcd {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.into(),
            tls,
        }
    }

    fn with_ca() -> TlsFiles {
        TlsFiles {
            ca: Some("/ca.pem".into()),
            ..TlsFiles::default()
        }
    }

    #[test]
    fn the_default_and_sqlite_are_the_embedded_store() {
        let none = StoreConfig::parse(None, TlsFiles::default()).expect("default");
        assert_eq!(none, StoreConfig::default());
        assert_eq!(url("sqlite"), Ok(StoreUrl::Sqlite));
    }

    #[test]
    fn hosts_ports_and_several_endpoints() {
        assert_eq!(
            url("etcd://127.0.0.1:2379"),
            Ok(etcd(&["127.0.0.1:2379"], "berth", false))
        );
        assert_eq!(
            url("etcd://a.example:1,10.0.0.2:2379,[::1]:32000"),
            Ok(etcd(
                &["a.example:1", "10.0.0.2:2379", "[::1]:32000"],
                "berth",
                false
            ))
        );
        assert_eq!(
            url("etcds://etcd-1:2379"),
            Err(bad(
                "--store-ca",
                "",
                "an etcds:// store needs the CA that signed its certificates \
                 (--store is etcds://etcd-1:2379/berth)"
            ))
        );
        let tls = StoreConfig::parse(Some("etcds://etcd-1:2379"), with_ca()).expect("etcds");
        assert_eq!(tls.url, etcd(&["etcd-1:2379"], "berth", true));
    }

    #[test]
    fn a_prefix_keeps_clusters_apart() {
        assert_eq!(
            url("etcd://h:1/team-a"),
            Ok(etcd(&["h:1"], "team-a", false))
        );
        assert_eq!(
            url("etcd://h:1/ci/run_7.x/"),
            Ok(etcd(&["h:1"], "ci/run_7.x", false))
        );
        assert_eq!(url("etcd://h:1/"), Ok(etcd(&["h:1"], "berth", false)));
        assert_eq!(StoreUrl::etcd_root("ci/x"), "ci/x/");
    }

    #[test]
    fn bad_input_names_the_flag() {
        for value in [
            "",
            "postgres://h:1",
            "etcd://",
            "etcd://h",
            "etcd://h:",
            "etcd://h:0",
            "etcd://h:65536",
            "etcd://:2379",
            "etcd://h:1,",
            "etcd://h:1,,g:2",
            "etcd://user@h:1",
            "etcd://h:1?x=1",
            "etcd://h_1:1",
            "etcd://[zz]:1",
            "etcd://h:1/a//b",
            "etcd://h:1/../x",
            "etcd://h:1/a b",
            // `!` names the store's own namespaces (etcd::plan::Layout).
            "etcd://h:1/a/!r",
            "etcd://h:1/a%2fb",
            "etcd://h:1/a\nb",
            "ETCD://h:1",
        ] {
            let err = url(value).expect_err(value);
            assert_eq!(err.flag, "--store", "{value}: {err}");
            assert_eq!(err.value, value);
            assert!(err.to_string().starts_with("--store"), "{err}");
        }
    }

    #[test]
    fn tls_files_go_with_etcds_only_and_a_cert_with_its_key() {
        let err = StoreConfig::parse(Some("etcd://h:1"), with_ca()).expect_err("plain");
        assert_eq!(err.flag, "--store-ca");
        let err = StoreConfig::parse(None, with_ca()).expect_err("sqlite");
        assert_eq!(err.flag, "--store-ca");
        let cert_only = TlsFiles {
            cert: Some("/c.pem".into()),
            ..with_ca()
        };
        let err = StoreConfig::parse(Some("etcds://h:1"), cert_only).expect_err("no key");
        assert_eq!(err.flag, "--store-cert");
        let key_only = TlsFiles {
            key: Some("/k.pem".into()),
            ..with_ca()
        };
        let err = StoreConfig::parse(Some("etcds://h:1"), key_only).expect_err("no cert");
        assert_eq!(err.flag, "--store-key");
        let both = TlsFiles {
            cert: Some("/c.pem".into()),
            key: Some("/k.pem".into()),
            ..with_ca()
        };
        StoreConfig::parse(Some("etcds://h:1"), both).expect("a full identity");
    }

    /// What a spawner hands its child parses back to the same store, and
    /// clears what the child may have inherited.
    #[test]
    fn the_environment_round_trips() {
        let config = StoreConfig::parse(
            Some("etcds://a:1,b:2/x/y"),
            TlsFiles {
                ca: Some("/ca.pem".into()),
                cert: Some("/c.pem".into()),
                key: Some("/k.pem".into()),
            },
        )
        .expect("parse");
        let env: HashMap<_, _> = config.env().into_iter().collect();
        let back = StoreConfig::from_env(|name| env.get(name).cloned().flatten()).expect("back");
        assert_eq!(back, config);
        let sqlite = StoreConfig::default().env();
        assert!(sqlite.contains(&(ENV_URL, Some("sqlite".into()))));
        assert!(sqlite.contains(&(ENV_CA, None)));
        assert_eq!(
            StoreConfig::from_env(|_| None).expect("nothing set"),
            StoreConfig::default()
        );
        let bad = StoreConfig::from_env(|n| (n == ENV_URL).then(|| "etcd://x".into()));
        assert_eq!(bad.expect_err("bad").flag, "--store");
    }
}

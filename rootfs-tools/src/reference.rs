//! Image references, normalized as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
/// Of `registry/repository`, as Docker has it.
pub const MAX_NAME_LEN: usize = 255;

/// `host`, `host:port` or `[ipv6]:port`, as Docker's grammar allows.
fn registry_ok(registry: &str) -> bool {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, port)) => {
                if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                (None, port)
            }
            None => return false,
        },
        None => match registry.find(':') {
            Some(i) => (registry.get(..i), registry.get(i..).unwrap_or_default()),
            None => (Some(registry), ""),
        },
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let host_ok = host.is_none_or(|h| {
        h.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
    });
    port_ok && host_ok
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `localhost`…
    pub registry: String,
    /// `library/busybox`
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest a registry is asked for.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(invalid("bad tag"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if !registry_ok(&registry) {
            return Err(invalid(
                "the registry is a host name or address, with an optional :port",
            ));
        }
        let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if !path.split('/').all(component_ok) {
            return Err(invalid(
                "repository names use lowercase letters, digits and . _ - between /",
            ));
        }
        if registry.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(invalid("the name is longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Self {
            registry,
            repository: path,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        s.parse::<Reference>().expect(s).to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("127.0.0.1:5000/busybox"),
            "127.0.0.1:5000/busybox:latest"
        );
        assert_eq!(norm("localhost/a/b:v1"), "localhost/a/b:v1");
        assert_eq!(norm("quay.io/x/y:z"), "quay.io/x/y:z");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        let r: Reference = "localhost:5000/x:1".parse().expect("ref");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "x")
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "UPPER", "a:", "a:-x", "a//b", "a@sha256:12", "-a"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }

    /// Found by the image_reference fuzz target: the registry part was
    /// taken as written, so `qu:ay.io/x` named the registry `qu:ay.io`.
    #[test]
    fn registries_are_host_and_port() {
        for bad in [
            "qu:ay.io/x/q:z",
            "../x",
            "a..b/x",
            "a b.c/x",
            "x.y:/z",
            "x.y:5000a/z",
            "-x.io/z",
            "[zz]:1/x",
            "[::1/x",
        ] {
            let err = bad.parse::<Reference>().expect_err(bad).to_string();
            assert!(err.contains("registry"), "{bad}: {err}");
        }
        assert_eq!(norm("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(
            norm("my-registry.local:443/a/b"),
            "my-registry.local:443/a/b:latest"
        );
    }

    #[test]
    fn hostile_references_are_errors_not_panics() {
        let long = format!("localhost/{}", "a".repeat(250));
        for bad in [
            "../x",
            "..:1/x",
            "a..b.com/x",
            "exa_mple.com/x",
            "host.com:/x",
            "host.com:99999999/x",
            "host.com:port/x",
            "[::1/x",
            "[zz]:5000/x",
            "-bad.com/x",
            "é.com/x",
            "ä",
            "a/ä:é",
            "a@",
            "@",
            ":",
            "/",
            "a/:b",
            "a:b@",
            "a@sha256:é",
            "\0",
            long.as_str(),
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?}");
        }
        for good in [
            "[::1]:5000/x",
            "my-reg.example.com:443/a/b:c",
            "localhost:5000/x",
        ] {
            let r: Reference = good.parse().expect(good);
            assert_eq!(r.to_string().parse::<Reference>().expect("again"), r);
        }
    }
}

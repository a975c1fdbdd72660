//! Image manifests and configs (OCI and Docker schema 2), and what an
//! image's config means for a container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::ContentStore;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    pub const MANIFESTS: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST];
    pub const INDEXES: &[&str] = &[OCI_INDEX, DOCKER_LIST];
    pub const CONFIGS: &[&str] = &[OCI_CONFIG, DOCKER_CONFIG];

    /// Layer media types berth can unpack, non-distributable ones included.
    pub fn is_layer(media_type: &str) -> bool {
        let base = media_type.replace(".nondistributable", "");
        [OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP].contains(&base.as_str())
            || base == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this berth runs on, in OCI's words.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: (architecture == "arm64").then(|| "v8".to_string()),
        }
    }

    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || other.variant.is_none() || self.variant == other.variant)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// The parts of an image config that shape a container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
}

/// An image in the store, resolved to its manifest and config.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        context: format!("parse {what}"),
        source,
    })
}

/// The media type a manifest or index declares (field, or the caller's).
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.media_type.or_else(|| {
        if probe.manifests.is_some() {
            Some(media::OCI_INDEX.to_string())
        } else if probe.layers.is_some() {
            Some(media::OCI_MANIFEST.to_string())
        } else {
            None
        }
    })
}

/// Check a manifest: known media types throughout.
pub fn parse_manifest(image: &str, bytes: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = parse(&format!("manifest of {image}"), bytes)?;
    let declared = manifest
        .media_type
        .as_deref()
        .unwrap_or(media::OCI_MANIFEST);
    if !media::MANIFESTS.contains(&declared) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest of {image}"),
            media_type: declared.to_string(),
        });
    }
    if !media::CONFIGS.contains(&manifest.config.media_type.as_str()) {
        return Err(Error::UnsupportedMediaType {
            what: format!("config of {image}"),
            media_type: manifest.config.media_type.clone(),
        });
    }
    for layer in &manifest.layers {
        if !media::is_layer(&layer.media_type) {
            return Err(Error::UnsupportedMediaType {
                what: format!("layer {} of {image}", layer.digest),
                media_type: layer.media_type.clone(),
            });
        }
    }
    Ok(manifest)
}

pub fn parse_index(image: &str, bytes: &[u8]) -> Result<Index> {
    parse(&format!("index of {image}"), bytes)
}

/// Pick the host's manifest from an index.
pub fn select_platform<'a>(image: &str, index: &'a Index) -> Result<&'a Descriptor> {
    let host = Platform::host();
    index
        .manifests
        .iter()
        .filter(|d| media::MANIFESTS.contains(&d.media_type.as_str()))
        .find(|d| d.platform.as_ref().is_none_or(|p| host.matches(p)))
        .ok_or_else(|| Error::BadImage {
            image: image.to_string(),
            reason: format!(
                "no manifest for {}/{} in its index",
                host.os, host.architecture
            ),
        })
}

pub fn parse_config(image: &str, bytes: &[u8]) -> Result<ImageConfig> {
    parse(&format!("config of {image}"), bytes)
}

impl Image {
    /// Load the image a reference names from the store.
    pub fn load(store: &ContentStore, name: &str) -> Result<Self> {
        let refs = store.refs()?;
        let entry = refs
            .get(name)
            .ok_or_else(|| Error::ImageNotFound(name.to_string()))?;
        Self::load_manifest(store, name, &entry.manifest)
    }

    pub fn load_manifest(store: &ContentStore, name: &str, digest: &Digest) -> Result<Self> {
        let manifest = parse_manifest(name, &store.read_blob(digest)?)?;
        let config = parse_config(name, &store.read_blob(&manifest.config.digest)?)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::BadImage {
                image: name.to_string(),
                reason: format!(
                    "{} layers but {} diff_ids in its config",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        Ok(Self {
            name: name.to_string(),
            manifest_digest: digest.clone(),
            manifest,
            config,
        })
    }
}

/// The command a container runs, with ECS's rules: a task definition's
/// `entryPoint` replaces the image's Entrypoint (and then the image's Cmd
/// is dropped, as Docker does), and `command` replaces Cmd.
pub fn resolve_command(
    config: &ContainerConfig,
    entry_point: Option<&[String]>,
    command: Option<&[String]>,
) -> Vec<String> {
    let entry: Vec<String> = match entry_point {
        Some(e) => e.to_vec(),
        None => config.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = match (command, entry_point) {
        (Some(c), _) => c.to_vec(),
        (None, Some(_)) => Vec::new(),
        (None, None) => config.cmd.clone().unwrap_or_default(),
    };
    entry.into_iter().chain(cmd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ecs_command_overrides() {
        let config = ContainerConfig {
            entrypoint: Some(v(&["/entry"])),
            cmd: Some(v(&["--serve"])),
            ..Default::default()
        };
        assert_eq!(
            resolve_command(&config, None, None),
            v(&["/entry", "--serve"])
        );
        assert_eq!(
            resolve_command(&config, None, Some(&v(&["--debug"]))),
            v(&["/entry", "--debug"])
        );
        assert_eq!(
            resolve_command(&config, Some(&v(&["sh"])), None),
            v(&["sh"])
        );
        assert_eq!(
            resolve_command(&config, Some(&v(&["sh", "-c"])), Some(&v(&["echo"]))),
            v(&["sh", "-c", "echo"])
        );
    }

    #[test]
    fn manifests_and_platforms() {
        let layer = format!("sha256:{}", "1".repeat(64));
        let config = format!("sha256:{}", "2".repeat(64));
        let docker = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": { "mediaType": media::DOCKER_CONFIG, "digest": config, "size": 10 },
            "layers": [{ "mediaType": media::DOCKER_LAYER_GZIP, "digest": layer, "size": 5 }],
        });
        let m = parse_manifest("x", docker.to_string().as_bytes()).expect("docker manifest");
        assert_eq!(m.layers.len(), 1);
        let mut odd = docker.clone();
        odd["layers"][0]["mediaType"] = "application/x-strange".into();
        let err = parse_manifest("x", odd.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("application/x-strange"), "{err}");
        let mut odd = docker;
        odd["mediaType"] = "application/vnd.example+json".into();
        assert!(parse_manifest("x", odd.to_string().as_bytes()).is_err());

        let host = Platform::host();
        let index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![
                Descriptor {
                    media_type: media::OCI_MANIFEST.into(),
                    digest: layer.parse().expect("digest"),
                    size: 1,
                    platform: Some(Platform {
                        architecture: "s390x".into(),
                        os: "linux".into(),
                        variant: None,
                    }),
                    annotations: None,
                },
                Descriptor {
                    media_type: media::OCI_MANIFEST.into(),
                    digest: config.parse().expect("digest"),
                    size: 1,
                    platform: Some(host),
                    annotations: None,
                },
            ],
        };
        assert_eq!(
            select_platform("x", &index)
                .expect("host")
                .digest
                .to_string(),
            config
        );
    }
}

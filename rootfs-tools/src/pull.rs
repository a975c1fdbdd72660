//! Pull images over the OCI distribution API (oci-client): anonymous,
//! basic or bearer auth, image indexes resolved to this host's platform,
//! layers downloaded in parallel with a bound, each verified before it
//! enters the store, and a blob already in the store never fetched again.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{self, media, Descriptor, Image};
pub use crate::progress::{Progress, Quiet};
use crate::reference::{Reference, DEFAULT_REGISTRY};
use crate::store::ContentStore;

#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// `host:port` of registries spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// User and password; else `~/.docker/config.json`; else anonymous.
    pub credentials: Option<(String, String)>,
    /// Where Docker keeps credentials (default `$HOME/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once (default 4).
    pub max_concurrent_downloads: usize,
}

fn registry_error(image: &str, e: OciDistributionError) -> Error {
    let reason = match e {
        OciDistributionError::UnauthorizedError { url }
        | OciDistributionError::ServerError { code: 401, url, .. } => {
            return Error::Unauthorized {
                image: image.to_string(),
                url,
            }
        }
        OciDistributionError::ServerError { code, url, message } => {
            format!("{url}: the registry answered {code}: {message}")
        }
        OciDistributionError::RegistryError { envelope, url } => {
            format!("{url}: {envelope}")
        }
        other => {
            // reqwest's own message is terse; its causes say what happened.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    };
    Error::Registry {
        image: image.to_string(),
        reason,
    }
}

/// Credentials for `registry` from a Docker config file (`auths.*.auth`).
fn docker_credentials(config: &std::path::Path, registry: &str) -> Option<(String, String)> {
    let bytes = std::fs::read(config).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let candidates: Vec<String> = if registry == DEFAULT_REGISTRY {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    let entry = candidates.iter().find_map(|c| auths.get(c))?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn client_reference(r: &Reference) -> oci_client::Reference {
    match &r.digest {
        Some(d) => oci_client::Reference::with_digest(
            r.registry.clone(),
            r.repository.clone(),
            d.to_string(),
        ),
        None => oci_client::Reference::with_tag(
            r.registry.clone(),
            r.repository.clone(),
            r.tag_or_digest(),
        ),
    }
}

/// Pull `reference` into the store and tag it; returns the image.
pub async fn pull(
    store: &ContentStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<Image> {
    // reqwest needs a process-wide TLS provider; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = reference.to_string();
    let err = |e| registry_error(&name, e);
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(opts.insecure_registries.clone()),
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        ..Default::default()
    };
    let client = oci_client::Client::try_from(config).map_err(err)?;
    let docker_config = opts
        .docker_config
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")));
    let auth = match opts
        .credentials
        .clone()
        .or_else(|| docker_config.and_then(|c| docker_credentials(&c, &reference.registry)))
    {
        Some((user, pass)) => RegistryAuth::Basic(user, pass),
        None => RegistryAuth::Anonymous,
    };
    let accept = [
        media::OCI_INDEX,
        media::DOCKER_LIST,
        media::OCI_MANIFEST,
        media::DOCKER_MANIFEST,
    ];
    let _lease = store.writer_lease()?;
    let mut target = client_reference(reference);
    let (mut bytes, mut digest) = client
        .pull_manifest_raw(&target, &auth, &accept)
        .await
        .map_err(err)?;
    let declared = image::declared_media_type(&bytes).unwrap_or_default();
    if media::INDEXES.contains(&declared.as_str()) {
        let index = image::parse_index(&name, &bytes)?;
        let chosen = image::select_platform(&name, &index)?;
        target = target.clone_with_digest(chosen.digest.to_string());
        (bytes, digest) = client
            .pull_manifest_raw(&target, &auth, &accept)
            .await
            .map_err(err)?;
    } else if !media::MANIFESTS.contains(&declared.as_str()) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest of {name}"),
            media_type: declared,
        });
    }
    let manifest = image::parse_manifest(&name, &bytes)?;
    let manifest_digest: Digest = digest.parse()?;
    if Digest::of(&bytes) != manifest_digest {
        return Err(Error::DigestMismatch {
            expected: manifest_digest.to_string(),
            actual: Digest::of(&bytes).to_string(),
        });
    }

    let mut wanted: Vec<&Descriptor> = vec![&manifest.config];
    wanted.extend(manifest.layers.iter());
    let missing: Vec<&Descriptor> = wanted
        .into_iter()
        .filter(|d| !store.has_blob(&d.digest))
        .collect();
    let parallel = opts.max_concurrent_downloads.max(1);
    futures_util::stream::iter(missing.into_iter().map(|d| {
        let client = &client;
        let target = &target;
        let progress = progress.clone();
        let name = &name;
        async move { fetch_blob(store, client, target, d, progress.as_ref(), name).await }
    }))
    .buffer_unordered(parallel)
    .try_collect::<Vec<()>>()
    .await?;

    store.write_blob(&bytes[..], Some(&manifest_digest), Some(bytes.len() as u64))?;
    let image = Image::load_manifest(store, &name, &manifest_digest)?;
    store.set_ref(&name, &manifest_digest)?;
    Ok(image)
}

async fn fetch_blob(
    store: &ContentStore,
    client: &oci_client::Client,
    target: &oci_client::Reference,
    d: &Descriptor,
    progress: &dyn Progress,
    name: &str,
) -> Result<()> {
    let (file, tmp) = store.ingest_file()?;
    // Removes the partial file however this ends, a cancelled download
    // (another layer failed first) included.
    let _cleanup = RemoveOnDrop(tmp.clone());
    async {
        progress.blob_started(&d.digest, d.size);
        let mut stream = client
            .pull_blob_stream(target, d.digest.to_string().as_str())
            .await
            .map_err(|e| registry_error(name, e))?;
        let mut out = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Registry {
                image: name.to_string(),
                reason: format!("blob {}: {e}", d.digest),
            })?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::io(format!("write blob {}", d.digest), e))?;
            progress.blob_advanced(&d.digest, chunk.len() as u64);
        }
        out.flush()
            .await
            .map_err(|e| Error::io(format!("write blob {}", d.digest), e))?;
        let actual = Digest::from_hex(format!("{:x}", hasher.finalize()));
        let file = out.into_std().await;
        store.commit(file, &tmp, &actual, written, Some(&d.digest), Some(d.size))?;
        progress.blob_finished(&d.digest);
        Ok(())
    }
    .await
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // After a successful commit the file has been renamed away.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// [`pull`] on a runtime of its own, for callers that are not async.
pub fn pull_blocking(
    store: &ContentStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<Image> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(pull(store, reference, opts, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_docker_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        std::fs::write(
            &path,
            serde_json::json!({ "auths": {
                "127.0.0.1:5000": { "auth": auth },
                "https://index.docker.io/v1/": { "auth": base64::engine::general_purpose::STANDARD.encode("bob:pw") },
            }})
            .to_string(),
        )
        .expect("write");
        assert_eq!(
            docker_credentials(&path, "127.0.0.1:5000"),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(
            docker_credentials(&path, "docker.io"),
            Some(("bob".into(), "pw".into()))
        );
        assert_eq!(docker_credentials(&path, "quay.io"), None);
    }
}

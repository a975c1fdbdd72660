//! Write an image out as an OCI image layout directory (`oci:DIR[:TAG]`),
//! which skopeo, umoci and other runtimes read.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::error::{Error, IoContext, Result};
use crate::image::{media, Image};
use crate::store::ContentStore;

/// Export `image` into the new directory `dir`, its index naming it `tag`.
pub fn export_oci_dir(store: &ContentStore, image: &Image, dir: &Path, tag: &str) -> Result<()> {
    if dir.exists()
        && fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::BadSource {
            path: dir.to_path_buf(),
            reason: "exists and is not empty".into(),
        });
    }
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).context(|| format!("create {}", blobs.display()))?;
    let mut digests = vec![
        image.manifest_digest.clone(),
        image.manifest.config.digest.clone(),
    ];
    digests.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
    for d in &digests {
        let to = blobs.join(d.hex());
        // A hard link where the store shares the filesystem; else a copy.
        if fs::hard_link(store.blob_path(d), &to).is_err() {
            fs::copy(store.blob_path(d), &to).context(|| format!("copy blob {d}"))?;
        }
    }
    let size = fs::metadata(store.blob_path(&image.manifest_digest))
        .context(|| format!("stat manifest {}", image.manifest_digest))?
        .len();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": image.manifest.media_type.as_deref().unwrap_or(media::OCI_MANIFEST),
            "digest": image.manifest_digest.to_string(),
            "size": size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .context(|| format!("write {}/oci-layout", dir.display()))?;
    fs::write(dir.join("index.json"), index.to_string())
        .context(|| format!("write {}/index.json", dir.display()))
}

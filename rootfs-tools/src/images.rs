//! Listing, removing and pruning the store's images.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::snapshot::Snapshotter;
use crate::store::ContentStore;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    pub name: String,
    pub id: Digest,
    /// Compressed size of the layers plus the config.
    pub size: u64,
    pub layers: usize,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub fn list(store: &ContentStore) -> Result<Vec<ImageSummary>> {
    let mut out = Vec::new();
    for (name, entry) in store.refs()? {
        let image = Image::load_manifest(store, &name, &entry.manifest)?;
        out.push(ImageSummary {
            size: image.manifest.config.size
                + image.manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            layers: image.manifest.layers.len(),
            name,
            id: entry.manifest,
            created_at: entry.created_at,
        });
    }
    Ok(out)
}

/// Untag `name`; refused while a container's root filesystem uses it.
pub fn remove(store: &ContentStore, name: &str) -> Result<Digest> {
    let users: Vec<String> = {
        let refs = store.refs()?;
        let entry = refs
            .get(name)
            .ok_or_else(|| Error::ImageNotFound(name.to_string()))?;
        Snapshotter::new(store)
            .list()
            .into_iter()
            .filter(|s| s.manifest == entry.manifest)
            .map(|s| s.key)
            .collect()
    };
    if !users.is_empty() {
        return Err(Error::InUse {
            image: name.to_string(),
            users: format!("container(s) {}", users.join(", ")),
        });
    }
    store.update_refs(|refs| {
        refs.remove(name)
            .map(|e| e.manifest)
            .ok_or_else(|| Error::ImageNotFound(name.to_string()))
    })
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

/// Remove blobs and unpacked layers that no image and no container's root
/// filesystem uses, and leftovers of interrupted writes.
pub fn prune(store: &ContentStore) -> Result<PruneReport> {
    let _gc = store.gc_lock()?;
    let mut live_blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut live_layers: BTreeSet<String> = BTreeSet::new();
    for (name, entry) in store.refs()? {
        let image = Image::load_manifest(store, &name, &entry.manifest)?;
        live_blobs.insert(entry.manifest.clone());
        live_blobs.insert(image.manifest.config.digest.clone());
        for l in &image.manifest.layers {
            live_blobs.insert(l.digest.clone());
            live_layers.insert(l.digest.hex().to_string());
        }
    }
    for snapshot in Snapshotter::new(store).list() {
        live_blobs.insert(snapshot.manifest.clone());
        for l in &snapshot.layers {
            live_blobs.insert(l.clone());
            live_layers.insert(l.hex().to_string());
        }
    }
    let mut report = PruneReport::default();
    for blob in store.list_blobs()? {
        if !live_blobs.contains(&blob) {
            report.bytes_freed += fs::metadata(store.blob_path(&blob)).map_or(0, |m| m.len());
            store.remove_blob(&blob)?;
            report.blobs_removed += 1;
        }
    }
    let layers = store.layers_dir();
    for entry in fs::read_dir(&layers).context(|| format!("read {}", layers.display()))? {
        let entry = entry.context(|| format!("read {}", layers.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // No writer holds the lease now, so temp dirs are leftovers.
        if !live_layers.contains(&name) || name.starts_with(".tmp-") {
            report.bytes_freed += dir_size(&entry.path());
            fs::remove_dir_all(entry.path())
                .context(|| format!("remove {}", entry.path().display()))?;
            report.layers_removed += 1;
        }
    }
    let ingest = store.root().join("ingest");
    for entry in fs::read_dir(&ingest)
        .context(|| format!("read {}", ingest.display()))?
        .flatten()
    {
        let _ = fs::remove_file(entry.path());
    }
    Ok(report)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

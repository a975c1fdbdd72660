//! `berth image build-rootfs`: directories become an image (one layer
//! each), so a lab user can make an image with no registry and no Docker.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::json;

use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, IoContext, Result};
use crate::image::{media, ContainerConfig, Image, Platform};
use crate::reference::Reference;
use crate::store::ContentStore;

/// Pack `dir` as a gzip layer into the store; returns (blob, size, diff id).
pub fn pack_layer(store: &ContentStore, dir: &Path) -> Result<(Digest, u64, Digest)> {
    if !dir.is_dir() {
        return Err(Error::BadSource {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let (file, tmp) = store.ingest_file()?;
    let result = (|| {
        let compressed = DigestWriter::new(io::BufWriter::with_capacity(1 << 20, file));
        let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
        let mut builder = tar::Builder::new(DigestWriter::new(gz));
        builder.mode(tar::HeaderMode::Complete);
        builder.follow_symlinks(false);
        append_tree(&mut builder, dir, Path::new(""))?;
        let uncompressed = builder
            .into_inner()
            .context(|| format!("pack {}", dir.display()))?;
        let (gz, diff_id, _) = uncompressed.finish();
        let compressed = gz.finish().context(|| "compress layer".to_string())?;
        let (buffered, digest, size) = compressed.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("flush layer", e.into_error()))?;
        store.commit(file, &tmp, &digest, size, None, None)?;
        Ok((digest, size, diff_id))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Entries in name order, so the same tree packs to the same layer.
fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path, rel: &Path) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).context(|| format!("stat {}", path.display()))?;
        if meta.is_dir() {
            b.append_dir(&rel, &path)
                .context(|| format!("pack {}", path.display()))?;
            append_tree(b, root, &rel)?;
        } else if meta.file_type().is_file() || meta.file_type().is_symlink() {
            b.append_path_with_name(&path, &rel)
                .context(|| format!("pack {}", path.display()))?;
        } else {
            // Devices and fifos: the header alone. Sockets are not kept.
            if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                continue;
            }
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            header.set_size(0);
            let rdev = meta.rdev();
            header
                .set_device_major(nix::sys::stat::major(rdev) as u32)
                .and_then(|()| header.set_device_minor(nix::sys::stat::minor(rdev) as u32))
                .context(|| format!("pack {}", path.display()))?;
            b.append_data(&mut header, &rel, io::empty())
                .context(|| format!("pack {}", path.display()))?;
        }
    }
    Ok(())
}

/// A layer as a manifest lists it: blob digest, size, diff id, media type.
pub type LayerRecord<'a> = (Digest, u64, Digest, &'a str);

/// Store an image of the given layers and container config; tag it `name`.
pub fn write_image(
    store: &ContentStore,
    name: &Reference,
    layers: &[LayerRecord<'_>],
    config: &ContainerConfig,
) -> Result<Image> {
    let platform = Platform::host();
    let config_json = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.2.to_string()).collect::<Vec<_>>(),
        },
    });
    let config_bytes = serde_json::to_vec(&config_json).map_err(|source| Error::Json {
        context: "encode image config".into(),
        source,
    })?;
    let config_digest = store.write_blob_bytes(&config_bytes)?;
    write_manifest(
        store,
        name,
        (&config_digest, config_bytes.len() as u64),
        layers,
    )
}

/// Store a manifest over blobs already in the store; tag it `name`.
pub fn write_manifest(
    store: &ContentStore,
    name: &Reference,
    (config_digest, config_size): (&Digest, u64),
    layers: &[LayerRecord<'_>],
) -> Result<Image> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": layers.iter().map(|(digest, size, _, media_type)| json!({
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
        context: "encode manifest".into(),
        source,
    })?;
    let manifest_digest = store.write_blob_bytes(&manifest_bytes)?;
    let full = name.to_string();
    let image = Image::load_manifest(store, &full, &manifest_digest)?;
    store.set_ref(&full, &manifest_digest)?;
    Ok(image)
}

/// Pack `dirs` as an image named `name`, one layer each, bottom first.
pub fn build_rootfs(
    store: &ContentStore,
    dirs: &[&Path],
    name: &Reference,
    config: &ContainerConfig,
) -> Result<Image> {
    let _lease = store.writer_lease()?;
    let mut layers = Vec::new();
    for dir in dirs {
        let (digest, size, diff_id) = pack_layer(store, dir)?;
        layers.push((digest, size, diff_id, media::OCI_LAYER_GZIP));
    }
    write_image(store, name, &layers, config)
}

//! Bring images in from files, named as skopeo names them:
//! `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::build_image::write_manifest;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, media, Descriptor, Image};
use crate::reference::Reference;
use crate::store::ContentStore;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    OciDir { dir: PathBuf, tag: Option<String> },
    OciArchive { file: PathBuf, tag: Option<String> },
    DockerArchive { file: PathBuf },
}

impl std::str::FromStr for Source {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::BadSource {
            path: PathBuf::from(s),
            reason: "expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE".into(),
        };
        let (transport, rest) = s.split_once(':').ok_or_else(bad)?;
        let split_tag = |rest: &str| match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') && !tag.is_empty() => {
                (PathBuf::from(path), Some(tag.to_string()))
            }
            _ => (PathBuf::from(rest), None),
        };
        match transport {
            "oci" => {
                let (dir, tag) = split_tag(rest);
                Ok(Self::OciDir { dir, tag })
            }
            "oci-archive" => {
                let (file, tag) = split_tag(rest);
                Ok(Self::OciArchive { file, tag })
            }
            "docker-archive" => Ok(Self::DockerArchive {
                file: PathBuf::from(rest),
            }),
            _ => Err(bad()),
        }
    }
}

/// Import `source`, naming its images `tag` if given, else by the names the
/// source carries.
pub fn import(
    store: &ContentStore,
    source: &Source,
    tag: Option<&Reference>,
) -> Result<Vec<Image>> {
    let _lease = store.writer_lease()?;
    match source {
        Source::OciDir { dir, tag: want } => {
            let layout = Layout::Dir(dir.clone());
            import_layout(store, &layout, dir, want.as_deref(), tag)
        }
        Source::OciArchive { file, tag: want } => {
            let layout = Layout::Archive(ingest_archive(store, file)?);
            import_layout(store, &layout, file, want.as_deref(), tag)
        }
        Source::DockerArchive { file } => import_docker_archive(store, file, tag),
    }
}

/// Where an OCI layout's files are: a directory, or an archive whose files
/// were streamed into the store (by path → content digest).
enum Layout {
    Dir(PathBuf),
    Archive(BTreeMap<String, (Digest, u64)>),
}

impl Layout {
    fn index(&self, store: &ContentStore, origin: &Path) -> Result<Vec<u8>> {
        let not_layout = || Error::BadSource {
            path: origin.to_path_buf(),
            reason: "not an OCI image layout (no oci-layout and index.json)".into(),
        };
        match self {
            Layout::Dir(dir) => {
                if !dir.join("oci-layout").is_file() {
                    return Err(not_layout());
                }
                fs::read(dir.join("index.json"))
                    .context(|| format!("read {}/index.json", origin.display()))
            }
            Layout::Archive(files) => {
                if !files.contains_key("oci-layout") {
                    return Err(not_layout());
                }
                read_named(store, files, "index.json")?.ok_or_else(not_layout)
            }
        }
    }

    /// Put the blob `d` into the store, verified.
    fn fetch(&self, store: &ContentStore, origin: &Path, d: &Descriptor) -> Result<()> {
        match self {
            Layout::Dir(dir) => {
                let path = dir.join("blobs/sha256").join(d.digest.hex());
                let file = File::open(&path).map_err(|e| Error::BadSource {
                    path: origin.to_path_buf(),
                    reason: format!("blob {}: {e}", d.digest),
                })?;
                store.write_blob(file, Some(&d.digest), Some(d.size))?;
                Ok(())
            }
            Layout::Archive(files) => {
                match files.get(&format!("blobs/sha256/{}", d.digest.hex())) {
                    Some((digest, _)) if digest != &d.digest => Err(Error::DigestMismatch {
                        expected: d.digest.to_string(),
                        actual: digest.to_string(),
                    }),
                    Some((_, size)) if *size != d.size => Err(Error::SizeMismatch {
                        digest: d.digest.to_string(),
                        expected: d.size,
                        actual: *size,
                    }),
                    Some(_) => Ok(()),
                    None => Err(Error::BadSource {
                        path: origin.to_path_buf(),
                        reason: format!("blob {} is missing", d.digest),
                    }),
                }
            }
        }
    }
}

/// Stream every regular file of a tar into the store by content.
fn ingest_archive(store: &ContentStore, file: &Path) -> Result<BTreeMap<String, (Digest, u64)>> {
    let f = File::open(file).context(|| format!("open {}", file.display()))?;
    let mut archive = tar::Archive::new(io::BufReader::with_capacity(1 << 20, f));
    let not_tar = |e: io::Error| Error::BadSource {
        path: file.to_path_buf(),
        reason: format!("not a tar archive: {e}"),
    };
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(not_tar)? {
        let entry = entry.map_err(not_tar)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(not_tar)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let (digest, size) = store.write_blob(entry, None, None)?;
        out.insert(name, (digest, size));
    }
    Ok(out)
}

fn read_named(
    store: &ContentStore,
    files: &BTreeMap<String, (Digest, u64)>,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    files.get(name).map(|(d, _)| store.read_blob(d)).transpose()
}

fn import_layout(
    store: &ContentStore,
    layout: &Layout,
    origin: &Path,
    want_tag: Option<&str>,
    tag: Option<&Reference>,
) -> Result<Vec<Image>> {
    let bad = |reason: String| Error::BadSource {
        path: origin.to_path_buf(),
        reason,
    };
    let index = image::parse_index(&origin.display().to_string(), &layout.index(store, origin)?)?;
    let ref_name = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
    };
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| match want_tag {
            Some(t) => ref_name(d).is_some_and(|n| n == t || n.ends_with(&format!(":{t}"))),
            None => true,
        })
        .collect();
    let chosen = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(bad(match want_tag {
                Some(t) => format!("no image tagged {t:?} in its index.json"),
                None => "its index.json lists no image".into(),
            }))
        }
        _ => {
            return Err(bad(
                "its index.json lists several images: name one with :TAG".into(),
            ))
        }
    };
    let name = match (tag, ref_name(chosen)) {
        (Some(t), _) => t.clone(),
        (None, Some(n)) => n.parse::<Reference>().map_err(|_| {
            bad(format!(
                "its image is named only {n:?}: give --tag NAME:TAG"
            ))
        })?,
        (None, None) => return Err(bad("its image has no name: give --tag NAME:TAG".into())),
    };
    let display = name.to_string();
    let mut manifest_desc = chosen.clone();
    if media::INDEXES.contains(&manifest_desc.media_type.as_str()) {
        layout.fetch(store, origin, &manifest_desc)?;
        let nested = image::parse_index(&display, &store.read_blob(&manifest_desc.digest)?)?;
        manifest_desc = image::select_platform(&display, &nested)?.clone();
    }
    if !media::MANIFESTS.contains(&manifest_desc.media_type.as_str()) {
        return Err(Error::UnsupportedMediaType {
            what: format!("manifest of {display}"),
            media_type: manifest_desc.media_type.clone(),
        });
    }
    layout.fetch(store, origin, &manifest_desc)?;
    let manifest = image::parse_manifest(&display, &store.read_blob(&manifest_desc.digest)?)?;
    layout.fetch(store, origin, &manifest.config)?;
    for layer in &manifest.layers {
        layout.fetch(store, origin, layer)?;
    }
    let image = Image::load_manifest(store, &display, &manifest_desc.digest)?;
    store.set_ref(&display, &manifest_desc.digest)?;
    Ok(vec![image])
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker_archive(
    store: &ContentStore,
    file: &Path,
    tag: Option<&Reference>,
) -> Result<Vec<Image>> {
    let files = ingest_archive(store, file)?;
    let bad = |reason: String| Error::BadSource {
        path: file.to_path_buf(),
        reason,
    };
    let manifest_bytes = read_named(store, &files, "manifest.json")?
        .ok_or_else(|| bad("not a docker archive (no manifest.json)".into()))?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&manifest_bytes).map_err(|source| Error::Json {
            context: format!("parse manifest.json in {}", file.display()),
            source,
        })?;
    let get = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| bad(format!("{name} is listed in manifest.json but missing")))
    };
    let mut images = Vec::new();
    for entry in &entries {
        let names: Vec<Reference> = match tag {
            Some(t) => vec![t.clone()],
            None => entry
                .repo_tags
                .iter()
                .flatten()
                .map(|t| t.parse())
                .collect::<Result<_>>()?,
        };
        let first = names
            .first()
            .ok_or_else(|| bad("an image in it has no RepoTags: give --tag NAME:TAG".into()))?
            .to_string();
        let (config_digest, config_size) = get(&entry.config)?;
        let config = image::parse_config(&first, &store.read_blob(config_digest)?)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(Error::BadImage {
                image: first,
                reason: "its layers and its config's diff_ids differ in number".into(),
            });
        }
        // `docker save` writes layers uncompressed, so each blob is its own
        // diff id; a compressed one is checked when it is unpacked.
        let layers = entry
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(path, diff_id)| {
                let (digest, size) = get(path)?;
                let media_type = if digest == diff_id {
                    media::OCI_LAYER
                } else {
                    media::OCI_LAYER_GZIP
                };
                Ok((digest.clone(), *size, diff_id.clone(), media_type))
            })
            .collect::<Result<Vec<_>>>()?;
        for name in &names {
            images.push(write_manifest(
                store,
                name,
                (config_digest, *config_size),
                &layers,
            )?);
        }
    }
    if images.is_empty() {
        return Err(bad("its manifest.json lists no image".into()));
    }
    Ok(images)
}

//! `berth image …`: the content store, importers and snapshotter.

use std::path::PathBuf;

use anyhow::Context;
use berth_rootfs::image::{ContainerConfig, Image};
use berth_rootfs::import::{self, Source};
use berth_rootfs::pull::{self, PullOptions};
use berth_rootfs::snapshot::Snapshotter;
use berth_rootfs::{build_image, images, ContentStore, Reference};
use clap::Subcommand;
use serde_json::json;

use crate::output::{self, Format};
use crate::Roots;
use crate::{flags, progress};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry.
    Pull {
        /// The image: [REGISTRY/]NAME[:TAG|@DIGEST].
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Import an image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or
    /// docker-archive:FILE.
    Import {
        /// oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE.
        source: String,
        /// Name the image NAME[:TAG] instead of the name it carries.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Pack directories as an image, one layer each (bottom first).
    BuildRootfs {
        /// The directories, one layer each, bottom first.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The image's name: NAME[:TAG].
        #[arg(long)]
        tag: String,
        /// JSON array (["/bin/sh","-c"]) or words.
        #[arg(long)]
        entrypoint: Option<String>,
        /// JSON array or words.
        #[arg(long)]
        cmd: Option<String>,
        /// An environment variable of the image's config (repeatable).
        #[arg(long = "env", short, value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The working directory of the image's config.
        #[arg(long)]
        workdir: Option<String>,
        /// The user (NAME, UID or UID:GID) of the image's config.
        #[arg(long)]
        user: Option<String>,
        /// The signal that stops its containers (default SIGTERM).
        #[arg(long)]
        stop_signal: Option<String>,
        /// A label of the image's config (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// PORT[/PROTO], e.g. 80/tcp.
        #[arg(long, value_name = "PORT[/PROTO]")]
        expose: Vec<String>,
    },
    /// Write an image out as an OCI layout: oci:DIR[:TAG].
    Export {
        /// The image's name.
        name: String,
        /// oci:DIR[:TAG].
        destination: String,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        /// json, table (for people) or text (tab-separated rows).
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Unpack an image's layers now, so its first container starts at once.
    Unpack {
        /// The image's name.
        name: String,
    },
    /// Show an image's manifest, config and how its root filesystems are made.
    Inspect {
        /// The image's name.
        name: String,
    },
    /// Remove image names (refused while a container uses the image).
    Rm {
        /// Image names (NAME[:TAG]).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove blobs and layers no image and no container uses.
    Prune,
}

/// How to reach registries.
#[derive(clap::Args, Clone, Default)]
pub struct RegistryArgs {
    /// Speak plain HTTP to this registry (HOST:PORT). Repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Registry user; the password is read from stdin (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from stdin (with --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

impl RegistryArgs {
    pub fn options(&self) -> anyhow::Result<PullOptions> {
        let credentials = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .context("read the password from stdin")?;
                Some((
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_string(),
                ))
            }
            None => None,
        };
        Ok(PullOptions {
            insecure_registries: self.insecure_registry.clone(),
            credentials,
            docker_config: None,
            max_concurrent_downloads: 4,
        })
    }
}

/// Pull `reference` into the store.
pub fn pull(
    store: &ContentStore,
    reference: &Reference,
    registry: &RegistryArgs,
) -> anyhow::Result<Image> {
    Ok(pull::pull_blocking(
        store,
        reference,
        &registry.options()?,
        progress::bars("pull"),
    )?)
}

pub fn open_store(roots: &Roots) -> anyhow::Result<ContentStore> {
    Ok(ContentStore::open(roots.state.join("images"))?)
}

/// `busybox` → `docker.io/library/busybox:latest`.
pub fn full_name(name: &str) -> anyhow::Result<String> {
    Ok(name.parse::<Reference>()?.to_string())
}

pub fn run(cmd: ImageCommand, roots: &Roots) -> anyhow::Result<i32> {
    let store = open_store(roots)?;
    match cmd {
        ImageCommand::Pull {
            reference,
            registry,
        } => {
            let image = pull(&store, &reference.parse()?, &registry)?;
            output::json(&json!({ "name": image.name, "id": image.manifest_digest }))?;
        }
        ImageCommand::Import { source, tag } => {
            let source: Source = source.parse()?;
            let tag = tag.map(|t| t.parse::<Reference>()).transpose()?;
            let imported = import::import(&store, &source, tag.as_ref())?;
            output::json(&json!({
                "images": imported.iter().map(|i| json!({
                    "name": i.name,
                    "id": i.manifest_digest,
                })).collect::<Vec<_>>()
            }))?;
        }
        ImageCommand::BuildRootfs {
            dirs,
            tag,
            entrypoint,
            cmd,
            env,
            workdir,
            user,
            stop_signal,
            label,
            expose,
        } => {
            let name: Reference = tag.parse()?;
            let words =
                |flag: &str, v: Option<String>| v.map(|s| flags::words(flag, &s)).transpose();
            let mut labels = std::collections::BTreeMap::new();
            for l in &label {
                let (k, v) = flags::key_value("label", l)?;
                labels.insert(k, v);
            }
            let config = ContainerConfig {
                entrypoint: words("entrypoint", entrypoint)?,
                cmd: words("cmd", cmd)?,
                env: (!env.is_empty()).then_some(env),
                working_dir: workdir,
                user,
                stop_signal,
                exposed_ports: exposed_ports(&expose),
                labels: (!labels.is_empty()).then_some(labels),
            };
            let dirs: Vec<&std::path::Path> = dirs.iter().map(PathBuf::as_path).collect();
            let image = build_image::build_rootfs(&store, &dirs, &name, &config)?;
            output::json(&json!({ "name": image.name, "id": image.manifest_digest }))?;
        }
        ImageCommand::Ls { output } => list(&store, output)?,
        ImageCommand::Inspect { name } => inspect(&store, &name)?,
        ImageCommand::Unpack { name } => {
            let image = Image::load(&store, &full_name(&name)?)?;
            let _lease = store.writer_lease()?;
            let layers = berth_rootfs::unpack::ensure_layers_with(
                &store,
                &image,
                progress::bars("unpack").as_ref(),
            )?;
            output::json(&json!({ "name": image.name, "layers": layers }))?;
        }
        ImageCommand::Rm { names } => {
            let mut removed = Vec::new();
            for name in names {
                let name = full_name(&name)?;
                images::remove(&store, &name)?;
                removed.push(name);
            }
            output::json(&json!({ "removed": removed }))?;
        }
        ImageCommand::Export { name, destination } => export(&store, &name, &destination)?,
        ImageCommand::Prune => output::json(&images::prune(&store)?)?,
    }
    Ok(0)
}

/// `image ls`: JSON, or a table for people.
fn list(store: &ContentStore, output: Format) -> anyhow::Result<()> {
    let list = images::list(store)?;
    match output {
        Format::Json => output::json(&json!({ "images": list }))?,
        Format::Table | Format::Text => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.id.short().to_string(),
                        human_size(i.size),
                        i.layers.to_string(),
                        i.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    ]
                })
                .collect();
            output::table(output, &["NAME", "ID", "SIZE", "LAYERS", "CREATED"], &rows);
        }
    }
    Ok(())
}

/// `image inspect`: the manifest, config and which layers are unpacked.
fn inspect(store: &ContentStore, name: &str) -> anyhow::Result<()> {
    let name = full_name(name)?;
    let image = Image::load(store, &name)?;
    let unpacked: Vec<bool> = image
        .manifest
        .layers
        .iter()
        .map(|l| store.layers_dir().join(l.digest.hex()).is_dir())
        .collect();
    output::json(&json!({
        "name": image.name,
        "id": image.manifest_digest,
        "manifest": image.manifest,
        "config": image.config,
        "layersUnpacked": unpacked,
        "snapshotter": Snapshotter::kind(),
    }))?;
    Ok(())
}

/// `image export NAME oci:DIR[:TAG]`.
fn export(store: &ContentStore, name: &str, destination: &str) -> anyhow::Result<()> {
    let name = full_name(name)?;
    let image = Image::load(store, &name)?;
    let (dir, tag) = match destination.parse::<Source>()? {
        Source::OciDir { dir, tag } => (dir, tag),
        _ => anyhow::bail!("{destination:?}: berth exports to oci:DIR[:TAG]"),
    };
    let tag = tag.unwrap_or_else(|| {
        image
            .name
            .rsplit_once(':')
            .map_or("latest", |(_, t)| t)
            .to_string()
    });
    berth_rootfs::export::export_oci_dir(store, &image, &dir, &tag)?;
    output::json(
        &json!({ "name": image.name, "id": image.manifest_digest, "destination": destination }),
    )?;
    Ok(())
}

/// `--expose 80` or `80/udp` as an image config's ExposedPorts.
fn exposed_ports(
    expose: &[String],
) -> Option<std::collections::BTreeMap<String, serde_json::Value>> {
    (!expose.is_empty()).then(|| {
        expose
            .iter()
            .map(|p| {
                let p = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                (p, json!({}))
            })
            .collect()
    })
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{size:.1}{}", UNITS[unit])
    }
}

//! `runtime run --image`: an image's root filesystem and config defaults
//! under a container. (The orchestrator takes this over for tasks.)

use std::path::PathBuf;

use berth_rootfs::image::{resolve_command, Image};
use berth_rootfs::snapshot::Snapshotter;
use berth_rootfs::ContentStore;
use berth_runtime::ContainerSpec;

use crate::flags;
use crate::runtime_cmd::{PullPolicy, RunArgs};
use crate::{image_cmd, progress};
use berth_rootfs::Reference;

/// Make `id`'s root filesystem from `image` and the spec to run in it.
pub fn prepare(
    store: &ContentStore,
    id: &str,
    image: &str,
    args: &RunArgs,
) -> anyhow::Result<(PathBuf, ContainerSpec)> {
    let reference: Reference = image.parse()?;
    let name = reference.to_string();
    let image = match (args.pull, Image::load(store, &name)) {
        (PullPolicy::Always, _)
        | (PullPolicy::Missing, Err(berth_rootfs::Error::ImageNotFound(_))) => {
            image_cmd::pull(store, &reference, &args.registry)?
        }
        (_, loaded) => loaded?,
    };
    let mut spec = args.spec()?;
    let defaults = &image.config.config;
    let entry = args
        .entrypoint
        .as_deref()
        .map(|e| flags::words("entrypoint", e))
        .transpose()?;
    let command = (!spec.args.is_empty()).then(|| spec.args.clone());
    spec.args = resolve_command(defaults, entry.as_deref(), command.as_deref());
    if spec.args.is_empty() {
        anyhow::bail!("image {name} has no Entrypoint or Cmd: give a command after --");
    }
    spec.env = berth_orchestrator::containerize::merge_env(
        defaults.env.as_deref().unwrap_or_default(),
        &spec.env,
    );
    spec.cwd = spec
        .cwd
        .or_else(|| defaults.working_dir.clone().filter(|w| !w.is_empty()));
    spec.user = spec
        .user
        .or_else(|| defaults.user.clone().filter(|u| !u.is_empty()));
    spec.stop_signal = spec.stop_signal.or_else(|| defaults.stop_signal.clone());
    let snapshot =
        Snapshotter::new(store).prepare_with(id, &image, progress::bars("unpack").as_ref())?;
    Ok((snapshot.rootfs, spec))
}

//! A root filesystem per container: overlayfs over the image's read-only
//! layer directories with the container's own upper and work dirs, so the
//! second container of an image starts with no unpack and no copy. Where
//! overlayfs is unavailable, a flattened copy.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::progress::{Progress, Quiet};
use crate::store::ContentStore;
use crate::unpack::{ensure_layers_with, OPAQUE_XATTR};

/// Set to `copy` to force the flattened-copy snapshotter.
pub const SNAPSHOTTER_ENV: &str = "BERTH_SNAPSHOTTER";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Overlay,
    Copy,
}

/// What a snapshot is of: kept in its directory, so that images in use
/// are known to `rm` and `prune`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub key: String,
    pub image: String,
    pub manifest: Digest,
    pub layers: Vec<Digest>,
    pub kind: Kind,
    pub rootfs: PathBuf,
}

pub struct Snapshotter<'a> {
    store: &'a ContentStore,
}

impl<'a> Snapshotter<'a> {
    pub fn new(store: &'a ContentStore) -> Self {
        Self { store }
    }

    fn dir(&self, key: &str) -> PathBuf {
        self.store.root().join("snapshots").join(key)
    }

    /// Which snapshotter this host gets (overlay unless the kernel lacks it
    /// or `BERTH_SNAPSHOTTER=copy`).
    pub fn kind() -> Kind {
        if std::env::var(SNAPSHOTTER_ENV).is_ok_and(|v| v == "copy") {
            return Kind::Copy;
        }
        match fs::read_to_string("/proc/filesystems") {
            Ok(f) if f.lines().any(|l| l.trim_end().ends_with("overlay")) => Kind::Overlay,
            _ => Kind::Copy,
        }
    }

    /// Make the root filesystem for `key` (a container id) from `image`.
    pub fn prepare(&self, key: &str, image: &Image) -> Result<Snapshot> {
        self.prepare_with(key, image, &Quiet)
    }

    /// [`prepare`](Self::prepare), reporting the unpacking of layers.
    pub fn prepare_with(
        &self,
        key: &str,
        image: &Image,
        progress: &dyn Progress,
    ) -> Result<Snapshot> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::BadImage {
                image: image.name.clone(),
                reason: format!("invalid snapshot key {key:?}"),
            });
        }
        let _lease = self.store.writer_lease()?;
        let layers = ensure_layers_with(self.store, image, progress)?;
        let dir = self.dir(key);
        fs::create_dir_all(dir.parent().unwrap_or(&dir))
            .context(|| format!("create {}", dir.display()))?;
        match fs::create_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::BadImage {
                    image: image.name.clone(),
                    reason: format!("a root filesystem for {key:?} already exists"),
                })
            }
            other => other.context(|| format!("create {}", dir.display()))?,
        }
        let result = self.prepare_in(key, image, &layers, &dir);
        if result.is_err() {
            let _ = self.remove(key);
        }
        result
    }

    fn prepare_in(
        &self,
        key: &str,
        image: &Image,
        layers: &[PathBuf],
        dir: &Path,
    ) -> Result<Snapshot> {
        let rootfs = dir.join("rootfs");
        fs::create_dir(&rootfs).context(|| format!("create {}", rootfs.display()))?;
        let kind = Self::kind();
        let snapshot = Snapshot {
            key: key.to_string(),
            image: image.name.clone(),
            manifest: image.manifest_digest.clone(),
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect(),
            kind,
            rootfs: rootfs.clone(),
        };
        // Recorded first: a half-made snapshot still pins its image.
        let record = serde_json::to_vec_pretty(&snapshot).map_err(|source| Error::Json {
            context: "encode snapshot".into(),
            source,
        })?;
        fs::write(dir.join("snapshot.json"), record)
            .context(|| format!("write {}/snapshot.json", dir.display()))?;
        match kind {
            Kind::Overlay => mount_overlay(layers, dir, &rootfs)?,
            Kind::Copy => {
                for layer in layers {
                    apply_layer(layer, &rootfs).context(|| {
                        format!("copy layer {} into {}", layer.display(), rootfs.display())
                    })?;
                }
            }
        }
        tracing::debug!(key, image = %image.name, ?kind, "prepared root filesystem");
        Ok(snapshot)
    }

    /// Unmount and remove `key`'s root filesystem; a missing one is fine.
    pub fn remove(&self, key: &str) -> Result<()> {
        let dir = self.dir(key);
        if !dir.exists() {
            return Ok(());
        }
        let rootfs = dir.join("rootfs");
        match umount2(&rootfs, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::io(
                    format!("unmount {}", rootfs.display()),
                    io::Error::from(e),
                ))
            }
        }
        fs::remove_dir_all(&dir).context(|| format!("remove {}", dir.display()))
    }

    pub fn get(&self, key: &str) -> Option<Snapshot> {
        let bytes = fs::read(self.dir(key).join("snapshot.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn list(&self) -> Vec<Snapshot> {
        let Ok(entries) = fs::read_dir(self.store.root().join("snapshots")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()))
            .collect()
    }
}

fn mount_overlay(layers: &[PathBuf], dir: &Path, rootfs: &Path) -> Result<()> {
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&upper, &work] {
        fs::create_dir(d).context(|| format!("create {}", d.display()))?;
    }
    let empty;
    let lowers: Vec<String> = if layers.is_empty() {
        empty = dir.join("empty");
        fs::create_dir(&empty).context(|| format!("create {}", empty.display()))?;
        vec![empty.display().to_string()]
    } else {
        // overlayfs lists the top layer first.
        layers
            .iter()
            .rev()
            .map(|l| l.display().to_string())
            .collect()
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| {
        Error::io(
            format!("mount overlay on {}", rootfs.display()),
            io::Error::from(e),
        )
    })
}

/// Copy one unpacked layer over `dest`, applying its whiteouts (0/0
/// character devices) and opaque directories as overlayfs would.
fn apply_layer(layer: &Path, dest: &Path) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(layer)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let src = layer.join(&name);
        let dst = dest.join(&name);
        let meta = fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            remove_any(&dst)?;
            continue;
        }
        if ft.is_dir() {
            match fs::symlink_metadata(&dst) {
                Ok(m) if m.is_dir() => {
                    if is_opaque(&src) {
                        for e in fs::read_dir(&dst)? {
                            remove_any(&e?.path())?;
                        }
                    }
                }
                Ok(_) => {
                    fs::remove_file(&dst)?;
                    fs::create_dir(&dst)?;
                }
                Err(_) => fs::create_dir(&dst)?,
            }
            apply_layer(&src, &dst)?;
            copy_owner_mode_time(&dst, &meta)?;
            continue;
        }
        remove_any(&dst)?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            let kind = if ft.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else if ft.is_block_device() {
                nix::sys::stat::SFlag::S_IFBLK
            } else {
                nix::sys::stat::SFlag::S_IFIFO
            };
            nix::sys::stat::mknod(
                &dst,
                kind,
                nix::sys::stat::Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )?;
        }
        copy_owner_mode_time(&dst, &meta)?;
    }
    Ok(())
}

fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(dir.as_os_str().as_bytes()),
        std::ffi::CString::new(OPAQUE_XATTR),
    ) else {
        return false;
    };
    let mut buf = [0u8; 2];
    // SAFETY: valid NUL-terminated strings and a buffer of the given size.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    n == 1 && buf[0] == b'y'
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn copy_owner_mode_time(dst: &Path, meta: &fs::Metadata) -> io::Result<()> {
    nix::unistd::fchownat(
        None,
        dst,
        Some(meta.uid().into()),
        Some(meta.gid().into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let t = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        None,
        dst,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

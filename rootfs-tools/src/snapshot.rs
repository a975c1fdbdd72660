//! A root filesystem per container: overlayfs over the image's read-only
//! layer directories with the container's own upper and work dirs, so the
//! second container of an image starts with no unpack and no copy. Where
//! overlayfs is unavailable, a flattened copy.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::progress::{Progress, Quiet};
use crate::store::{private_dir, ContentStore, PRIVATE_FILE};
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
        private_dir(dir.parent().unwrap_or(&dir))?;
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
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(dir.join("snapshot.json"))
            .and_then(|mut f| f.write_all(&record))
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
    // nodev: no device node in a layer or made in the upper dir opens a
    // device through this mount (setuid stays: images need sudo and ping).
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::MS_NODEV,
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
/// character devices) and opaque directories as overlayfs would. Files
/// hardlinked in the layer stay hardlinked (one copy, not N), xattrs come
/// along, and device nodes (which unpacking no longer makes, but an older
/// berth did) are left out.
fn apply_layer(layer: &Path, dest: &Path) -> io::Result<()> {
    copy_tree(layer, dest, &mut HashMap::new())
}

/// The first copy of each multiply-linked source inode, by (dev, ino).
type Links = HashMap<(u64, u64), PathBuf>;

fn copy_tree(layer: &Path, dest: &Path, links: &mut Links) -> io::Result<()> {
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
        if ft.is_block_device() || ft.is_char_device() {
            tracing::warn!(path = %src.display(), "left a device node out of the copy");
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
            copy_tree(&src, &dst, links)?;
            copy_owner_mode_time(&dst, &meta)?;
            copy_xattrs(&src, &dst);
            continue;
        }
        remove_any(&dst)?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let id = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&id) {
                    if fs::hard_link(first, &dst).is_ok() {
                        continue;
                    }
                }
                links.insert(id, dst.clone());
            }
            fs::copy(&src, &dst)?;
        } else {
            nix::sys::stat::mknod(
                &dst,
                nix::sys::stat::SFlag::S_IFIFO,
                nix::sys::stat::Mode::from_bits_truncate(meta.mode()),
                0,
            )?;
        }
        copy_owner_mode_time(&dst, &meta)?;
        copy_xattrs(&src, &dst);
    }
    Ok(())
}

/// Copy `src`'s xattrs (file capabilities, ACLs, user ones) to `dst`,
/// after its owner is set (chown drops `security.capability`); overlayfs'
/// own stay behind. One that cannot be set is a warning.
fn copy_xattrs(src: &Path, dst: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(s) = std::ffi::CString::new(src.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a valid path; a null buffer asks for the size.
    let size = unsafe { libc::llistxattr(s.as_ptr(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return;
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: a valid path and a buffer of the given length.
    let size = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if size <= 0 {
        return;
    }
    names.truncate(size as usize);
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let (Ok(n), Ok(text)) = (std::ffi::CString::new(name), std::str::from_utf8(name)) else {
            continue;
        };
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: valid strings and a buffer of the given length.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                n.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        let Ok(len) = usize::try_from(len) else {
            continue;
        };
        value.truncate(len);
        if let Err(e) = crate::unpack::set_xattr_nofollow(dst, text, &value) {
            tracing::warn!(
                path = %dst.display(),
                xattr = text,
                "xattr not copied: {e}"
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    /// A trusted.* xattr: root's, and kept by tmpfs on any kernel (user.*
    /// needs 6.6 there, and the cgroup v2 VM's /tmp is a 6.1 tmpfs).
    fn set(path: &Path, name: &str, value: &[u8]) {
        if let Err(e) = crate::unpack::set_xattr_nofollow(path, name, value) {
            panic!("set {name}: {e}");
        }
    }

    fn get(path: &Path, name: &str) -> Option<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
        let n = std::ffi::CString::new(name).expect("name");
        let mut buf = vec![0u8; 256];
        // SAFETY: valid strings and buffer.
        let len =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (len >= 0).then(|| buf[..len as usize].to_vec())
    }

    #[test]
    fn the_copy_keeps_hardlinks_and_xattrs_and_drops_devices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layer = dir.path().join("layer");
        let dest = dir.path().join("rootfs");
        fs::create_dir_all(layer.join("bin")).expect("layer");
        fs::create_dir(&dest).expect("dest");
        // One 1 MiB file under 50 names, as busybox-style images have.
        fs::write(layer.join("bin/tool"), vec![1u8; 1 << 20]).expect("tool");
        for i in 0..49 {
            fs::hard_link(layer.join("bin/tool"), layer.join(format!("bin/link{i}"))).expect("ln");
        }
        set(&layer.join("bin/tool"), "trusted.berth", b"kept");
        set(&layer.join("bin"), OPAQUE_XATTR, b"y");
        // Nodes an older berth unpacked into a layer.
        mknod(
            &layer.join("sda"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o666),
            makedev(8, 0),
        )
        .expect("blk");
        mknod(
            &layer.join("mem"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 1),
        )
        .expect("chr");
        apply_layer(&layer, &dest).expect("apply");

        let tool = fs::metadata(dest.join("bin/tool")).expect("tool");
        assert_eq!(tool.nlink(), 50, "one inode, not 50 copies");
        assert_eq!(
            fs::metadata(dest.join("bin/link48")).expect("link").ino(),
            tool.ino()
        );
        assert_eq!(
            get(&dest.join("bin/tool"), "trusted.berth").as_deref(),
            Some(&b"kept"[..])
        );
        assert_eq!(
            get(&dest.join("bin"), OPAQUE_XATTR),
            None,
            "overlayfs' own stay behind"
        );
        assert!(fs::symlink_metadata(dest.join("sda")).is_err());
        assert!(fs::symlink_metadata(dest.join("mem")).is_err());
    }
}

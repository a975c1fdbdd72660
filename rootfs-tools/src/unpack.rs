//! Layers into directories: streamed from the compressed blob, every entry
//! checked so that nothing is written outside the layer, OCI whiteouts
//! turned into overlayfs ones. A layer that fails is removed whole.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::progress::{Progress, ProgressReader, Quiet};
use crate::store::ContentStore;

/// overlayfs marks a directory whose lower contents are hidden with this.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Names a layer in errors.
#[derive(Clone, Copy)]
pub struct LayerContext<'a> {
    pub image: &'a str,
    pub layer: &'a Digest,
}

impl LayerContext<'_> {
    fn unsafe_entry(&self, entry: &Path, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            image: self.image.to_string(),
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadLayer {
            image: self.image.to_string(),
            layer: self.layer.to_string(),
            reason: reason.into(),
        }
    }
}

/// Hashes what passes through: the diff id of the uncompressed tar.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// gzip, zstd or plain tar, told apart by their magic bytes.
fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?)
    } else {
        Box::new(buffered)
    })
}

/// A path inside the layer, or why it is not one. `None` is the root.
fn clean(path: &Path) -> std::result::Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' would leave the layer"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path would leave the layer")
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: u64,
}

struct Unpacker<'a> {
    root: &'a Path,
    ctx: LayerContext<'a>,
    dirs: Vec<DirMeta>,
}

impl Unpacker<'_> {
    fn io(&self, entry: &Path, what: &str, e: impl std::fmt::Display) -> Error {
        self.ctx.bad(format!(
            "entry {:?}: {what}: {e}",
            entry.display().to_string()
        ))
    }

    /// Make the parent directories of `rel`, refusing to pass through a
    /// symlink or a non-directory: a later entry must not write through a
    /// link an earlier one planted.
    fn parents(&self, entry: &Path, rel: &Path) -> Result<()> {
        let mut cur = self.root.to_path_buf();
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        for part in parent.components() {
            cur.push(part);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.ctx.unsafe_entry(
                        entry,
                        format!(
                            "path goes through the symlink {}",
                            cur.strip_prefix(self.root).unwrap_or(&cur).display()
                        ),
                    ))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.ctx.unsafe_entry(
                        entry,
                        format!(
                            "{} is not a directory",
                            cur.strip_prefix(self.root).unwrap_or(&cur).display()
                        ),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| self.io(entry, "mkdir", e))?;
                }
                Err(e) => return Err(self.io(entry, "stat", e)),
            }
        }
        Ok(())
    }

    /// Clear whatever an earlier entry of this layer put at `path`.
    fn clear(&mut self, entry: &Path, path: &Path, keep_dir: bool) -> Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() && keep_dir => Ok(()),
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(path).map_err(|e| self.io(entry, "replace", e))?;
                // Their modes and times must not land on what replaces
                // them (a symlink would carry a chmod out of the layer).
                self.dirs.retain(|d| !d.path.starts_with(path));
                Ok(())
            }
            Ok(_) => fs::remove_file(path).map_err(|e| self.io(entry, "replace", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(entry, "stat", e)),
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry
            .path()
            .map_err(|e| self.ctx.bad(format!("bad entry name: {e}")))?
            .into_owned();
        let rel = clean(&raw).map_err(|reason| self.ctx.unsafe_entry(&raw, reason))?;
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let uid = entry.header().uid().unwrap_or(0) as u32;
        let gid = entry.header().gid().unwrap_or(0) as u32;
        let mtime = entry.header().mtime().unwrap_or(0);
        let Some(rel) = rel else {
            if kind.is_dir() {
                self.dirs.push(DirMeta {
                    path: self.root.to_path_buf(),
                    mode,
                    mtime,
                });
            }
            return Ok(());
        };
        self.parents(&raw, &rel)?;
        let path = self.root.join(&rel);
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        if name == OPAQUE_WHITEOUT {
            let dir = path.parent().unwrap_or(self.root);
            return set_xattr(dir, OPAQUE_XATTR, b"y").map_err(|e| self.io(&raw, "mark opaque", e));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(self.ctx.unsafe_entry(&raw, "malformed whiteout"));
            }
            let target = path.with_file_name(hidden);
            self.clear(&raw, &target, false)?;
            return mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| self.io(&raw, "whiteout", e));
        }

        let xattrs: Vec<(String, Vec<u8>)> = match entry.pax_extensions() {
            Ok(Some(exts)) => exts
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let key = e.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string();
                    Some((key, e.value_bytes().to_vec()))
                })
                // An image must not steer overlayfs (redirects, opaque dirs
                // are berth's to set from whiteouts).
                .filter(|(k, _)| !k.starts_with("trusted.overlay."))
                .collect(),
            _ => Vec::new(),
        };

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                self.clear(&raw, &path, true)?;
                if !path.exists() {
                    fs::create_dir(&path).map_err(|e| self.io(&raw, "mkdir", e))?;
                }
                self.dirs.push(DirMeta {
                    path: path.clone(),
                    mode,
                    mtime,
                });
            }
            T::Regular | T::Continuous => {
                self.clear(&raw, &path, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| self.io(&raw, "create", e))?;
                io::copy(&mut entry, &mut file).map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidInput
                    | io::ErrorKind::InvalidData
                    | io::ErrorKind::UnexpectedEof => self.io(&raw, "corrupt or truncated", e),
                    _ => self.io(&raw, "write", e),
                })?;
                nix::unistd::fchown(file.as_raw_fd(), Some(uid.into()), Some(gid.into()))
                    .map_err(|e| self.io(&raw, "chown", e))?;
                // After chown, which clears set-id bits.
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| self.io(&raw, "chmod", e))?;
                let t = TimeSpec::new(mtime as i64, 0);
                nix::sys::stat::futimens(file.as_raw_fd(), &t, &t)
                    .map_err(|e| self.io(&raw, "utimes", e))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.io(&raw, "link name", e))?
                    .ok_or_else(|| self.ctx.unsafe_entry(&raw, "symlink without a target"))?;
                self.clear(&raw, &path, false)?;
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(|e| self.io(&raw, "symlink", e))?;
                lchown(&path, uid, gid).map_err(|e| self.io(&raw, "chown", e))?;
                set_mtime_nofollow(&path, mtime).map_err(|e| self.io(&raw, "utimes", e))?;
            }
            T::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| self.io(&raw, "link name", e))?
                    .ok_or_else(|| self.ctx.unsafe_entry(&raw, "hardlink without a target"))?
                    .into_owned();
                let target_rel = clean(&link)
                    .map_err(|_| {
                        self.ctx.unsafe_entry(
                            &raw,
                            format!("hardlink to {} is outside the layer", link.display()),
                        )
                    })?
                    .ok_or_else(|| self.ctx.unsafe_entry(&raw, "hardlink to the layer's root"))?;
                self.parents(&raw, &target_rel)?;
                let target = self.root.join(&target_rel);
                match fs::symlink_metadata(&target) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(self.ctx.unsafe_entry(&raw, "hardlink to a directory")),
                    Err(_) => {
                        return Err(self.ctx.unsafe_entry(
                            &raw,
                            format!("hardlink to {}, which is not in this layer", link.display()),
                        ))
                    }
                }
                if target != path {
                    self.clear(&raw, &path, false)?;
                    fs::hard_link(&target, &path).map_err(|e| self.io(&raw, "link", e))?;
                }
            }
            T::Char | T::Block | T::Fifo => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let flag = match kind {
                    T::Char => SFlag::S_IFCHR,
                    T::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.clear(&raw, &path, false)?;
                mknod(
                    &path,
                    flag,
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::makedev(major.into(), minor.into()),
                )
                .map_err(|e| self.io(&raw, "mknod", e))?;
                lchown(&path, uid, gid).map_err(|e| self.io(&raw, "chown", e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(|e| self.io(&raw, "chmod", e))?;
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            other => {
                return Err(self
                    .ctx
                    .unsafe_entry(&raw, format!("unsupported entry type {other:?}")))
            }
        }
        for (key, value) in xattrs {
            if let Err(e) = set_xattr_nofollow(&path, &key, &value) {
                tracing::warn!("{}: xattr {key}: {e}", raw.display());
            }
        }
        Ok(())
    }

    /// Directory modes and times last: writing children changed them.
    fn finish_dirs(&mut self) -> Result<()> {
        self.dirs
            .sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
        for d in &self.dirs {
            fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode))
                .map_err(|e| self.io(&d.path, "chmod", e))?;
            set_mtime_nofollow(&d.path, d.mtime).map_err(|e| self.io(&d.path, "utimes", e))?;
        }
        Ok(())
    }
}

fn lchown(path: &Path, uid: u32, gid: u32) -> nix::Result<()> {
    nix::unistd::fchownat(
        None,
        path,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn set_mtime_nofollow(path: &Path, mtime: u64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}

fn cstr(s: impl AsRef<[u8]>) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(s.as_ref().to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    set_xattr_nofollow(path, name, value)
}

fn set_xattr_nofollow(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let p = cstr(path.as_os_str().as_bytes())?;
    let n = cstr(name)?;
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unpack one layer blob into `dest`, which must not exist; returns the
/// layer's diff id. On error `dest` does not exist afterwards.
pub fn unpack_layer(blob: impl Read, dest: &Path, ctx: LayerContext<'_>) -> Result<Digest> {
    let result = (|| {
        fs::create_dir(dest).map_err(|e| ctx.bad(format!("create {}: {e}", dest.display())))?;
        let decompressed = decompress(blob).map_err(|e| ctx.bad(format!("read: {e}")))?;
        let mut hashing = HashingReader {
            inner: decompressed,
            hasher: Sha256::new(),
        };
        {
            let mut archive = tar::Archive::new(&mut hashing);
            let mut unpacker = Unpacker {
                root: dest,
                ctx,
                dirs: Vec::new(),
            };
            let entries = archive
                .entries()
                .map_err(|e| ctx.bad(format!("not a tar archive: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| ctx.bad(format!("corrupt or truncated: {e}")))?;
                unpacker.entry(entry)?;
            }
            unpacker.finish_dirs()?;
        }
        // The diff id covers the archive's trailing blocks too.
        io::copy(&mut hashing, &mut io::sink())
            .map_err(|e| ctx.bad(format!("corrupt or truncated: {e}")))?;
        Ok(Digest::from_hex(format!("{:x}", hashing.hasher.finalize())))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

/// The unpacked directories of an image's layers, bottom first, unpacking
/// (in parallel) those not yet on disk. Each layer is unpacked once, by
/// digest, and checked against its diff id.
pub fn ensure_layers(store: &ContentStore, image: &Image) -> Result<Vec<PathBuf>> {
    ensure_layers_with(store, image, &Quiet)
}

/// [`ensure_layers`], reporting each layer's progress.
pub fn ensure_layers_with(
    store: &ContentStore,
    image: &Image,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    let layers = &image.manifest.layers;
    let dirs: Vec<PathBuf> = layers
        .iter()
        .map(|l| store.layers_dir().join(l.digest.hex()))
        .collect();
    let missing: Vec<usize> = (0..layers.len()).filter(|&i| !dirs[i].is_dir()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    for chunk in missing.chunks(threads) {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let dir = &dirs[i];
                    scope.spawn(move || unpack_one(store, image, i, dir, progress))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::BadImage {
                            image: image.name.clone(),
                            reason: "layer unpacking thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
    }
    Ok(dirs)
}

fn unpack_one(
    store: &ContentStore,
    image: &Image,
    i: usize,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let layer = &image.manifest.layers[i];
    let ctx = LayerContext {
        image: &image.name,
        layer: &layer.digest,
    };
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = store.layers_dir().join(format!(
        ".tmp-{}-{}-{n}",
        layer.digest.short(),
        std::process::id()
    ));
    progress.blob_started(&layer.digest, layer.size);
    let blob = ProgressReader {
        inner: store.open_blob(&layer.digest)?,
        digest: &layer.digest,
        progress,
    };
    let diff_id = unpack_layer(blob, &tmp, ctx)?;
    progress.blob_finished(&layer.digest);
    let want = &image.config.rootfs.diff_ids[i];
    if &diff_id != want {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ctx.bad(format!(
            "uncompressed content has digest {diff_id}, but the config says {want}"
        )));
    }
    if let Err(e) = fs::rename(&tmp, dir) {
        let _ = fs::remove_dir_all(&tmp);
        // Another berth unpacked it first: theirs serves.
        if !dir.is_dir() {
            return Err(ctx.bad(format!("store as {}: {e}", dir.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use crate::testing::{gzip, tar_of as tarball};

    fn unpack(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Result<Digest>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("layer");
        let digest = Digest::of(bytes);
        let ctx = LayerContext {
            image: "test:latest",
            layer: &digest,
        };
        let r = unpack_layer(bytes, &dest, ctx);
        (dir, dest, r)
    }

    use tar::EntryType as T;

    #[test]
    fn unpacks_files_links_dirs_and_whiteouts() {
        let tar = tarball(&[
            (T::Directory, "etc/", "", b""),
            (T::Regular, "etc/hosts", "", b"127.0.0.1 localhost\n"),
            (T::Symlink, "etc/link", "/etc/hosts", b""),
            (T::Link, "etc/hard", "etc/hosts", b""),
            (T::Fifo, "run.fifo", "", b""),
            (T::Regular, "gone/.wh.old", "", b""),
            (T::Regular, "opaque/.wh..wh..opq", "", b""),
        ]);
        for bytes in [
            tar.clone(),
            gzip(&tar),
            zstd::encode_all(&tar[..], 1).expect("zstd"),
        ] {
            let (_dir, dest, r) = unpack(&bytes);
            assert_eq!(
                r.expect("unpack"),
                Digest::of(&tar),
                "diff id is the tar's digest"
            );
            assert_eq!(
                fs::read_to_string(dest.join("etc/hosts")).expect("hosts"),
                "127.0.0.1 localhost\n"
            );
            assert_eq!(
                fs::read_link(dest.join("etc/link")).expect("link"),
                Path::new("/etc/hosts")
            );
            let a = fs::metadata(dest.join("etc/hosts")).expect("meta");
            let b = fs::metadata(dest.join("etc/hard")).expect("meta");
            assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
            assert_eq!(a.mtime(), 1_600_000_000);
            assert!(fs::metadata(dest.join("run.fifo"))
                .expect("fifo")
                .file_type()
                .is_fifo());
            let wh = fs::symlink_metadata(dest.join("gone/old")).expect("whiteout");
            assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
            assert!(!dest.join("gone/.wh.old").exists());
            let mut buf = [0u8; 4];
            let name = cstr(OPAQUE_XATTR).expect("name");
            let path = cstr(dest.join("opaque").as_os_str().as_encoded_bytes()).expect("path");
            // SAFETY: valid strings and buffer.
            let n = unsafe {
                libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 4)
            };
            assert_eq!(&buf[..n.max(0) as usize], b"y");
        }
    }

    #[track_caller]
    fn refused(entries: &[(tar::EntryType, &str, &str, &[u8])], needle: &str) {
        let tar = tarball(entries);
        let (dir, dest, r) = unpack(&tar);
        let err = r.expect_err("must be refused").to_string();
        assert!(err.contains(needle), "{err}");
        assert!(err.contains("test:latest"), "names the image: {err}");
        assert!(!dest.exists(), "the partial layer is removed");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn nothing_is_written_outside_the_layer() {
        refused(&[(T::Regular, "../../etc/x", "", b"x")], "'..'");
        refused(&[(T::Regular, "/etc/x", "", b"x")], "absolute");
        refused(
            &[
                (T::Symlink, "escape", "/tmp", b""),
                (T::Regular, "escape/x", "", b"x"),
            ],
            "through the symlink escape",
        );
        refused(
            &[
                (T::Symlink, "up", "../../..", b""),
                (T::Directory, "up/etc/", "", b""),
            ],
            "symlink up",
        );
        refused(
            &[(T::Link, "passwd", "../../etc/passwd", b"")],
            "outside the layer",
        );
        refused(
            &[(T::Link, "passwd", "/etc/passwd", b"")],
            "outside the layer",
        );
        refused(
            &[
                (T::Symlink, "etc", "/etc", b""),
                (T::Link, "passwd", "etc/passwd", b""),
            ],
            "symlink etc",
        );
    }

    /// Found by the unpack_layer fuzz target: a directory entry that a
    /// later entry replaced with a symlink still had its mode applied at
    /// the end, through the link, to a directory outside the layer.
    #[test]
    fn a_replaced_directory_does_not_chmod_through_a_symlink() {
        for entries in [
            &[
                (T::Directory, "d/", "", &b""[..]),
                (T::Symlink, "d", "../outside", b""),
            ][..],
            &[
                (T::Directory, "a/b/", "", b""),
                (T::Symlink, "a", "../outside", b""),
            ],
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let outside = dir.path().join("outside");
            fs::create_dir(&outside).expect("outside");
            fs::create_dir(outside.join("b")).expect("outside/b");
            for d in [&outside, &outside.join("b")] {
                fs::set_permissions(d, fs::Permissions::from_mode(0o710)).expect("chmod");
            }
            let tar = tarball(entries);
            let digest = Digest::of(&tar);
            let ctx = LayerContext {
                image: "test:latest",
                layer: &digest,
            };
            let dest = dir.path().join("layer");
            unpack_layer(&tar[..], &dest, ctx).expect("unpack");
            for d in [&outside, &outside.join("b")] {
                let mode = fs::metadata(d).expect("meta").mode() & 0o7777;
                assert_eq!(mode, 0o710, "{} was changed", d.display());
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_blobs_are_errors() {
        let tar = tarball(&[(T::Regular, "big", "", &[7u8; 100_000])]);
        let mut corrupt = gzip(&tar);
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0xff;
        corrupt[mid + 1] ^= 0xff;
        let (_d, dest, r) = unpack(&corrupt);
        assert!(r.is_err());
        assert!(!dest.exists());
        let gz = gzip(&tar);
        let (_d, dest, r) = unpack(&gz[..gz.len() / 2]);
        let err = r.expect_err("truncated").to_string();
        assert!(err.contains("corrupt or truncated"), "{err}");
        assert!(!dest.exists());
    }
}

//! Layers into directories: streamed from the compressed blob, every entry
//! checked so that nothing is written outside the layer, OCI whiteouts
//! turned into overlayfs ones. A layer that fails is removed whole.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::{mknod, Mode, SFlag};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::{
    UnpackLimits, MAX_LAYER_BYTES_ENV, MAX_LAYER_ENTRIES_ENV, MAX_NAME_BYTES, MAX_PATH_BYTES_ENV,
    MAX_PAX_BYTES_ENV,
};
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

    /// A layer refused by one of its [`UnpackLimits`].
    fn over_limit(&self, what: impl std::fmt::Display, limit: u64, setting: &str) -> Error {
        self.bad(format!(
            "refused: {what} (limit {limit}; set {setting} to change it)"
        ))
    }

    fn too_large(&self, limits: &UnpackLimits) -> Error {
        self.over_limit(
            "uncompressed, the layer has more bytes than allowed",
            limits.max_layer_bytes,
            MAX_LAYER_BYTES_ENV,
        )
    }
}

/// The uncompressed bytes a layer may still use.
struct Budget {
    used: Cell<u64>,
    max: u64,
    exceeded: Cell<bool>,
}

impl Budget {
    fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used.get())
    }
}

/// Counts what passes through and stops the stream past the budget.
struct BudgetReader<'b, R> {
    inner: R,
    budget: &'b Budget,
}

impl<R: Read> Read for BudgetReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.budget.used.get().saturating_add(n as u64);
        if used > self.budget.max {
            self.budget.exceeded.set(true);
            return Err(io::Error::other("layer over its size limit"));
        }
        self.budget.used.set(used);
        Ok(n)
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

/// GNU long names and a PAX header read so far, for the next entry.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// What an entry is, from its header and the extensions before it.
struct EntryMeta {
    raw: PathBuf,
    link: Option<PathBuf>,
    uid: u32,
    gid: u32,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The name a GNU long-name entry carries, up to its NUL.
fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |i| &bytes[..i])
}

struct Unpacker<'a> {
    root: &'a Path,
    ctx: LayerContext<'a>,
    limits: &'a UnpackLimits,
    budget: &'a Budget,
    dirs: Vec<DirMeta>,
    dir_bytes: usize,
    entries: u64,
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

    /// Take one raw tar entry: GNU long names and PAX headers are read
    /// here, bounded, and kept for the entry they describe (the tar crate
    /// would read them whole into memory, whatever size they declare).
    fn next<R: Read>(&mut self, ext: &mut Extensions, mut entry: tar::Entry<'_, R>) -> Result<()> {
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        let size = entry
            .header()
            .entry_size()
            .map_err(|e| self.ctx.bad(format!("bad entry size: {e}")))?;
        if matches!(kind, T::GNULongName | T::GNULongLink | T::XHeader) {
            let path_max = self.limits.max_path_bytes as u64 + 1;
            let (slot, what, max, setting) = match kind {
                T::GNULongName => (
                    &mut ext.long_name,
                    "GNU long name",
                    path_max,
                    MAX_PATH_BYTES_ENV,
                ),
                T::GNULongLink => (
                    &mut ext.long_link,
                    "GNU long link",
                    path_max,
                    MAX_PATH_BYTES_ENV,
                ),
                _ => (
                    &mut ext.pax,
                    "PAX header",
                    self.limits.max_pax_bytes,
                    MAX_PAX_BYTES_ENV,
                ),
            };
            if slot.is_some() {
                return Err(self.ctx.bad(format!("two {what}s describe one entry")));
            }
            if size > max {
                return Err(self.ctx.over_limit(
                    format_args!("a {what} of {size} bytes"),
                    max,
                    setting,
                ));
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(max)
                .read_to_end(&mut data)
                .map_err(|e| self.ctx.bad(format!("{what}: corrupt or truncated: {e}")))?;
            *slot = Some(data);
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.ctx.over_limit(
                "the layer has more entries than allowed",
                self.limits.max_entries,
                MAX_LAYER_ENTRIES_ENV,
            ));
        }
        let ext = std::mem::take(ext);
        if kind == T::XGlobalHeader {
            // Archive-wide defaults berth has no use for; the data is skipped.
            return Ok(());
        }
        let meta = self.meta(&entry, &ext, size)?;
        self.entry(entry, meta)
    }

    fn path_len(&self, raw: &[u8], what: &str) -> Result<()> {
        if raw.len() > self.limits.max_path_bytes {
            let shown = String::from_utf8_lossy(&raw[..64.min(raw.len())]).into_owned();
            return Err(self.ctx.over_limit(
                format_args!("entry {shown:?}…: a {what} of {} bytes", raw.len()),
                self.limits.max_path_bytes as u64,
                MAX_PATH_BYTES_ENV,
            ));
        }
        Ok(())
    }

    /// Path, link, owner and xattrs: a GNU long name wins over a PAX
    /// `path`, which wins over the header (as the tar crate has it).
    fn meta<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        ext: &Extensions,
        size: u64,
    ) -> Result<EntryMeta> {
        let header = entry.header();
        let header_path = header.path_bytes();
        let mut pax: Vec<(&[u8], &[u8])> = Vec::new();
        if let Some(bytes) = &ext.pax {
            for record in tar::PaxExtensions::new(bytes) {
                let record = record.map_err(|e| {
                    self.ctx.unsafe_entry(
                        Path::new(OsStr::from_bytes(&header_path)),
                        format!("malformed PAX header: {e}"),
                    )
                })?;
                pax.push((record.key_bytes(), record.value_bytes()));
            }
        }
        let find = |key: &[u8]| pax.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let path: &[u8] = match (&ext.long_name, find(b"path")) {
            (Some(long), _) => until_nul(long),
            (None, Some(p)) => p,
            (None, None) => &header_path,
        };
        self.path_len(path, "path")?;
        let raw = PathBuf::from(OsStr::from_bytes(path));
        let header_link = header.link_name_bytes();
        let link: Option<&[u8]> = match (&ext.long_link, find(b"linkpath")) {
            (Some(long), _) => Some(until_nul(long)),
            (None, Some(l)) => Some(l),
            (None, None) => header_link.as_deref(),
        };
        if let Some(link) = link {
            self.path_len(link, "link target")?;
        }
        let link = link.map(|l| PathBuf::from(OsStr::from_bytes(l)));
        if pax.iter().any(|(k, _)| k.starts_with(b"GNU.sparse.")) {
            return Err(self
                .ctx
                .unsafe_entry(&raw, "sparse files are not supported"));
        }
        if let Some(pax_size) = find(b"size") {
            // The stream is framed by the header's size: a PAX size that
            // disagrees would make two readers see two different layers.
            if std::str::from_utf8(pax_size)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                != Some(size)
            {
                return Err(self.ctx.unsafe_entry(
                    &raw,
                    "its PAX size disagrees with its header's (unsupported)",
                ));
            }
        }
        let id = |key: &[u8], from_header: io::Result<u64>, what: &str| -> Result<u32> {
            let n = match find(key) {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                None => from_header.ok().or(Some(0)),
            };
            n.and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.ctx.unsafe_entry(&raw, format!("bad {what}")))
        };
        let uid = id(b"uid", header.uid(), "uid")?;
        let gid = id(b"gid", header.gid(), "gid")?;
        let xattrs = pax
            .iter()
            .filter_map(|(k, v)| {
                let key = std::str::from_utf8(k).ok()?.strip_prefix("SCHILY.xattr.")?;
                Some((key.to_string(), v.to_vec()))
            })
            // An image must not steer overlayfs (redirects, opaque dirs
            // are berth's to set from whiteouts).
            .filter(|(k, _)| !k.starts_with("trusted.overlay."))
            .collect();
        Ok(EntryMeta {
            raw,
            link,
            uid,
            gid,
            xattrs,
        })
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, meta: EntryMeta) -> Result<()> {
        let EntryMeta {
            raw,
            link,
            uid,
            gid,
            xattrs,
        } = meta;
        let rel = clean(&raw).map_err(|reason| self.ctx.unsafe_entry(&raw, reason))?;
        if let Some(rel) = &rel {
            if rel.iter().any(|part| part.len() > MAX_NAME_BYTES) {
                return Err(self.ctx.unsafe_entry(
                    &raw,
                    format!("a name is longer than {MAX_NAME_BYTES} bytes"),
                ));
            }
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let Some(rel) = rel else {
            if kind.is_dir() {
                self.push_dir(self.root.to_path_buf(), mode, mtime)?;
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

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                self.clear(&raw, &path, true)?;
                if !path.exists() {
                    fs::create_dir(&path).map_err(|e| self.io(&raw, "mkdir", e))?;
                }
                self.push_dir(path.clone(), mode, mtime)?;
            }
            T::Regular | T::Continuous => {
                let size = entry.size();
                if size > self.budget.remaining() {
                    return Err(self.ctx.too_large(self.limits));
                }
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
                let target =
                    link.ok_or_else(|| self.ctx.unsafe_entry(&raw, "symlink without a target"))?;
                self.clear(&raw, &path, false)?;
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(|e| self.io(&raw, "symlink", e))?;
                lchown(&path, uid, gid).map_err(|e| self.io(&raw, "chown", e))?;
                set_mtime_nofollow(&path, mtime).map_err(|e| self.io(&raw, "utimes", e))?;
            }
            T::Link => {
                let link =
                    link.ok_or_else(|| self.ctx.unsafe_entry(&raw, "hardlink without a target"))?;
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
            T::Char | T::Block => {
                // Never made: a device node in a layer would open the
                // host's device for whoever reaches it (a container, or a
                // local user through the store). The runtime gives each
                // container its own /dev; images built with device nodes
                // (old debootstrap ones) still run, as in umoci and
                // rootless containerd.
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                tracing::warn!(
                    image = self.ctx.image,
                    layer = %self.ctx.layer,
                    entry = %raw.display(),
                    "skipped a {} device node {major}:{minor} in the layer",
                    if kind == T::Block { "block" } else { "character" },
                );
                return Ok(());
            }
            T::Fifo => {
                self.clear(&raw, &path, false)?;
                mknod(&path, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)
                    .map_err(|e| self.io(&raw, "mknod", e))?;
                lchown(&path, uid, gid).map_err(|e| self.io(&raw, "chown", e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(|e| self.io(&raw, "chmod", e))?;
            }
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

    /// Remember a directory's mode and time for the end, within the
    /// memory its limit allows.
    fn push_dir(&mut self, path: PathBuf, mode: u32, mtime: u64) -> Result<()> {
        self.dir_bytes = self
            .dir_bytes
            .saturating_add(path.as_os_str().len() + std::mem::size_of::<DirMeta>());
        if self.dir_bytes > self.limits.max_dir_bytes {
            return Err(self.ctx.over_limit(
                "the directories' paths take more bytes than allowed",
                self.limits.max_dir_bytes as u64,
                "UnpackLimits::max_dir_bytes",
            ));
        }
        self.dirs.push(DirMeta { path, mode, mtime });
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

pub(crate) fn set_xattr_nofollow(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
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
/// layer's diff id. On error `dest` does not exist afterwards. Bounded by
/// the default [`UnpackLimits`].
pub fn unpack_layer(blob: impl Read, dest: &Path, ctx: LayerContext<'_>) -> Result<Digest> {
    unpack_layer_with_limits(blob, dest, ctx, &UnpackLimits::default())
}

/// [`unpack_layer`] within `limits`.
pub fn unpack_layer_with_limits(
    blob: impl Read,
    dest: &Path,
    ctx: LayerContext<'_>,
    limits: &UnpackLimits,
) -> Result<Digest> {
    let budget = Budget {
        used: Cell::new(0),
        max: limits.max_layer_bytes,
        exceeded: Cell::new(false),
    };
    let mut result = (|| {
        fs::create_dir(dest).map_err(|e| ctx.bad(format!("create {}: {e}", dest.display())))?;
        let decompressed = decompress(blob).map_err(|e| ctx.bad(format!("read: {e}")))?;
        let mut hashing = HashingReader {
            inner: BudgetReader {
                inner: decompressed,
                budget: &budget,
            },
            hasher: Sha256::new(),
        };
        {
            let mut archive = tar::Archive::new(&mut hashing);
            let mut unpacker = Unpacker {
                root: dest,
                ctx,
                limits,
                budget: &budget,
                dirs: Vec::new(),
                dir_bytes: 0,
                entries: 0,
            };
            // Raw: GNU long names and PAX headers come to us unread.
            let entries = archive
                .entries()
                .map_err(|e| ctx.bad(format!("not a tar archive: {e}")))?
                .raw(true);
            let mut ext = Extensions::default();
            for entry in entries {
                let entry = entry.map_err(|e| ctx.bad(format!("corrupt or truncated: {e}")))?;
                unpacker.next(&mut ext, entry)?;
            }
            if !ext.is_empty() {
                return Err(
                    ctx.bad("the archive ends with a GNU or PAX header that describes no entry")
                );
            }
            unpacker.finish_dirs()?;
        }
        // The diff id covers the archive's trailing blocks too.
        io::copy(&mut hashing, &mut io::sink())
            .map_err(|e| ctx.bad(format!("corrupt or truncated: {e}")))?;
        Ok(Digest::from_hex(format!("{:x}", hashing.hasher.finalize())))
    })();
    if budget.exceeded.get() {
        result = Err(ctx.too_large(limits));
    }
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

/// The unpacked directories of an image's layers, bottom first, unpacking
/// (in parallel) those not yet on disk. Each layer is unpacked once, by
/// digest, and checked against its diff id: callers racing on an image's
/// first use wait for one another instead of each unpacking it.
pub fn ensure_layers(store: &ContentStore, image: &Image) -> Result<Vec<PathBuf>> {
    ensure_layers_with(store, image, &Quiet)
}

/// [`ensure_layers`], reporting each layer's progress.
pub fn ensure_layers_with(
    store: &ContentStore,
    image: &Image,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>> {
    let limits = UnpackLimits::from_env()?;
    let layers = &image.manifest.layers;
    let dirs: Vec<PathBuf> = layers
        .iter()
        .map(|l| store.layers_dir().join(l.digest.hex()))
        .collect();
    let missing = |dirs: &[PathBuf]| -> Vec<usize> {
        (0..dirs.len()).filter(|&i| !dirs[i].is_dir()).collect()
    };
    if missing(&dirs).is_empty() {
        return Ok(dirs);
    }
    // One unpacker at a time: who waited finds the layers another unpacked.
    let _lock = store.unpack_lock()?;
    let missing = missing(&dirs);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    for chunk in missing.chunks(threads) {
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let dir = &dirs[i];
                    let limits = &limits;
                    scope.spawn(move || unpack_one(store, image, i, dir, limits, progress))
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
    limits: &UnpackLimits,
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
    let diff_id = unpack_layer_with_limits(blob, &tmp, ctx, limits)?;
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

    fn unpack_with(
        blob: impl Read,
        limits: &UnpackLimits,
    ) -> (tempfile::TempDir, PathBuf, Result<Digest>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("layer");
        let digest = Digest::of(b"hostile");
        let ctx = LayerContext {
            image: "test:latest",
            layer: &digest,
        };
        let r = unpack_layer_with_limits(blob, &dest, ctx, limits);
        (dir, dest, r)
    }

    /// Refused naming the image, the layer and `needles`, leaving nothing.
    #[track_caller]
    fn refused_by(blob: impl Read, limits: &UnpackLimits, needles: &[&str]) {
        let (dir, dest, r) = unpack_with(blob, limits);
        let err = r.expect_err("must be refused").to_string();
        for needle in ["test:latest", &Digest::of(b"hostile").to_string()]
            .iter()
            .copied()
            .chain(needles.iter().copied())
        {
            assert!(err.contains(needle), "{needle:?} in {err}");
        }
        assert!(!dest.exists(), "the partial layer is removed");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_gnu_long_name_bomb_is_refused_before_it_is_read() {
        use crate::testing::Bomb;
        // A header declaring 1 GiB of name, and the zeros to fill it: the
        // tar crate alone reads them all into memory.
        for kind in [T::GNULongName, T::GNULongLink, T::XHeader] {
            let bomb = Bomb::new(kind, 1 << 30);
            let pulled = bomb.pulled.clone();
            let setting = if kind == T::XHeader {
                MAX_PAX_BYTES_ENV
            } else {
                MAX_PATH_BYTES_ENV
            };
            refused_by(
                bomb,
                &UnpackLimits::default(),
                &["of 1073741824 bytes", setting],
            );
            assert!(
                pulled.get() < 4 << 20,
                "{kind:?}: read {} bytes of the bomb",
                pulled.get()
            );
        }
    }

    #[test]
    fn layers_over_the_byte_limit_are_refused() {
        use crate::testing::{archive, header};
        let limits = UnpackLimits {
            max_layer_bytes: 1 << 20,
            ..UnpackLimits::default()
        };
        let big = vec![7u8; 3 << 20];
        let needles = [
            "more bytes than allowed (limit 1048576;",
            MAX_LAYER_BYTES_ENV,
        ];
        // One file declaring more than the layer may hold: refused before
        // it is written.
        let tar = tarball(&[(T::Regular, "big", "", &big)]);
        refused_by(&tar[..], &limits, &needles);
        refused_by(&gzip(&tar)[..], &limits, &needles);
        // Files each under the limit, together over it.
        let chunk = vec![7u8; 400 << 10];
        let tar = tarball(&[
            (T::Regular, "a", "", &chunk),
            (T::Regular, "b", "", &chunk),
            (T::Regular, "c", "", &chunk),
        ]);
        refused_by(
            &zstd::encode_all(&tar[..], 3).expect("zstd")[..],
            &limits,
            &needles,
        );
        // Zeros after the archive's end are read (for the diff id), and
        // counted.
        let mut tar = tarball(&[(T::Regular, "a", "", b"a")]);
        tar.extend(std::iter::repeat_n(0u8, 2 << 20));
        refused_by(&gzip(&tar)[..], &limits, &needles);
        // A GNU long name within its limit whose data is all there: fine.
        let name = "d/".repeat(1000) + "f";
        let long = archive(&[
            (
                header(T::GNULongName, "././@LongLink", name.len() as u64 + 1),
                format!("{name}\0").as_bytes(),
            ),
            (header(T::Regular, "f", 1), b"x"),
        ]);
        let (_d, dest, r) = unpack_with(&long[..], &UnpackLimits::default());
        r.expect("a 2001-byte name unpacks");
        assert_eq!(fs::read(dest.join(&name)).expect("long"), b"x");
    }

    #[test]
    fn layers_over_the_entry_limit_are_refused() {
        use crate::testing::many_files;
        let limits = UnpackLimits {
            max_entries: 100,
            ..UnpackLimits::default()
        };
        let (_d, dest, r) = unpack_with(&many_files(100)[..], &limits);
        r.expect("100 entries");
        assert_eq!(fs::read_dir(dest).expect("dir").count(), 100);
        refused_by(
            &gzip(&many_files(101))[..],
            &limits,
            &[
                "more entries than allowed (limit 100;",
                MAX_LAYER_ENTRIES_ENV,
            ],
        );
    }

    #[test]
    fn over_long_paths_and_names_are_refused() {
        use crate::testing::{archive, header, pax_records};
        let long_path = "d/".repeat(2100) + "f";
        let gnu = archive(&[
            (
                header(T::GNULongName, "././@LongLink", long_path.len() as u64 + 1),
                format!("{long_path}\0").as_bytes(),
            ),
            (header(T::Regular, "f", 0), b""),
        ]);
        refused_by(&gnu[..], &UnpackLimits::default(), &[MAX_PATH_BYTES_ENV]);
        let pax = pax_records(&[("path", long_path.as_bytes())]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/f", pax.len() as u64), &pax),
            (header(T::Regular, "f", 0), b""),
        ]);
        refused_by(
            &tar[..],
            &UnpackLimits::default(),
            &["a path of 4201 bytes", MAX_PATH_BYTES_ENV],
        );
        let pax = pax_records(&[("linkpath", long_path.as_bytes())]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/l", pax.len() as u64), &pax),
            (header(T::Symlink, "l", 0), b""),
        ]);
        refused_by(&tar[..], &UnpackLimits::default(), &["link target"]);
        let long_name = "n".repeat(256);
        let pax = pax_records(&[("path", long_name.as_bytes())]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/n", pax.len() as u64), &pax),
            (header(T::Regular, "n", 0), b""),
        ]);
        refused_by(
            &tar[..],
            &UnpackLimits::default(),
            &["longer than 255 bytes"],
        );
        // PAX paths, owners and xattrs within limits are honoured.
        let pax = pax_records(&[
            ("path", "dir/from-pax".as_bytes()),
            ("uid", b"3000000"),
            ("SCHILY.xattr.user.note", b"kept"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/x", pax.len() as u64), &pax),
            (header(T::Regular, "short", 2), b"hi"),
        ]);
        let (_d, dest, r) = unpack_with(&tar[..], &UnpackLimits::default());
        r.expect("pax");
        let path = dest.join("dir/from-pax");
        assert_eq!(fs::metadata(&path).expect("pax path").uid(), 3_000_000);
        assert!(!dest.join("short").exists());
        let mut buf = [0u8; 8];
        let p = cstr(path.as_os_str().as_encoded_bytes()).expect("path");
        let get = |name: &str, buf: &mut [u8]| {
            let n = cstr(name).expect("name");
            // SAFETY: valid strings and buffer.
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
        };
        assert_eq!(get("user.note", &mut buf), 4);
        assert_eq!(&buf[..4], b"kept");
        assert!(get("trusted.overlay.redirect", &mut buf) < 0);
    }

    #[test]
    fn device_nodes_are_never_made() {
        use crate::testing::{archive, device, header};
        let tar = archive(&[
            (header(T::Directory, "dev/", 0), b""),
            (device(T::Block, "dev/sda", 8, 0, 0o666), b""),
            (device(T::Char, "dev/mem", 1, 1, 0o666), b""),
            (device(T::Char, "dev/null", 1, 3, 0o666), b""),
            (device(T::Char, "hidden", 0, 0, 0o644), b""),
            (header(T::Regular, "etc-file", 1), b"x"),
        ]);
        let (_d, dest, r) = unpack_with(&tar[..], &UnpackLimits::default());
        r.expect("a layer with device nodes unpacks without them");
        for node in ["dev/sda", "dev/mem", "dev/null", "hidden"] {
            assert!(
                fs::symlink_metadata(dest.join(node)).is_err(),
                "{node} must not exist"
            );
        }
        assert!(dest.join("etc-file").is_file());
    }

    #[test]
    fn disagreeing_and_sparse_headers_are_refused() {
        use crate::testing::{archive, header, pax_records};
        // A PAX size that disagrees with the header frames the stream two ways.
        let pax = pax_records(&[("size", b"1024")]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/f", pax.len() as u64), &pax),
            (header(T::Regular, "f", 1), b"x"),
        ]);
        refused_by(&tar[..], &UnpackLimits::default(), &["PAX size"]);
        let pax = pax_records(&[("GNU.sparse.map", b"0,1")]);
        let tar = archive(&[
            (header(T::XHeader, "PaxHeaders/f", pax.len() as u64), &pax),
            (header(T::Regular, "f", 1), b"x"),
        ]);
        refused_by(&tar[..], &UnpackLimits::default(), &["sparse"]);
        // A long name that describes nothing.
        let tar = archive(&[(header(T::GNULongName, "././@LongLink", 2), b"a\0")]);
        refused_by(&tar[..], &UnpackLimits::default(), &["describes no entry"]);
    }
}

#[cfg(test)]
mod first_use {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::build_image::build_rootfs;
    use crate::image::ContainerConfig;
    use crate::progress::Progress;

    /// Counts the layers a caller unpacked.
    #[derive(Default)]
    struct Unpacked(AtomicUsize);

    impl Progress for Unpacked {
        fn blob_started(&self, _digest: &Digest, _size: u64) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn callers_racing_on_an_image_first_use_unpack_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("bin")).expect("mkdir");
        for i in 0..200 {
            fs::write(tree.join("bin").join(format!("tool{i}")), b"x").expect("write");
        }
        let root = dir.path().join("store");
        let store = ContentStore::open(&root).expect("store");
        let name: crate::Reference = "race:latest".parse().expect("reference");
        let image = build_rootfs(
            &store,
            &[tree.as_path()],
            &name,
            &ContainerConfig::default(),
        )
        .expect("build");
        let unpacked = Unpacked::default();
        let dirs: Vec<Vec<PathBuf>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (root, image, unpacked) = (&root, &image, &unpacked);
                    // Each caller opens the store as a process of its own would.
                    scope.spawn(move || {
                        let store = ContentStore::open(root).expect("store");
                        ensure_layers_with(&store, image, unpacked).expect("ensure")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(unpacked.0.load(Ordering::SeqCst), 1);
        assert!(dirs
            .iter()
            .all(|d| d == &dirs[0] && d[0].join("bin/tool199").is_file()));
    }
}

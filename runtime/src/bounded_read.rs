//! Reading a file that someone else controls, safely: resolved inside a
//! root (a symlink cannot lead out of it; optionally no symlink at all),
//! opened without blocking (a FIFO cannot hang the reader) or taking a
//! controlling terminal, checked to be a regular file on the open
//! descriptor (a device cannot feed the reader forever; what is checked is
//! what is read), and read up to a limit. The image's /etc/passwd, an
//! environment file in the S3 mirror and the secret store's key file are
//! read through here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// How symlinks inside the root are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symlinks {
    /// Followed, with the root as `/` (as inside the container).
    InRoot,
    /// Refused, on every component: the file must be where its path says.
    Refused,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is a symlink, which is not followed here")]
    Symlink,
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

const FLAGS: i32 = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

/// Open `rel` read-only under `root`, resolved with `root` as `/`
/// (`..` and absolute symlinks stay inside). `None` when it does not exist.
pub fn open_in_root(root: &Path, rel: &Path, links: Symlinks) -> Result<Option<File>, ReadError> {
    let dir = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
    {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    if links == Symlinks::Refused {
        resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::from_bits_truncate(FLAGS))
        .resolve(resolve);
    match openat2(dir.as_raw_fd(), rel, how) {
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(fd) => Ok(Some(unsafe { File::from_raw_fd(fd) })),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(Errno::ELOOP) => Err(ReadError::Symlink),
        // Kernels before 5.6 (or a seccomp filter) lack openat2.
        Err(Errno::ENOSYS | Errno::EPERM) => fallback(root, rel, links),
        Err(e) => Err(io::Error::from(e).into()),
    }
}

/// Without openat2: the canonical path must stay inside the root (and,
/// when symlinks are refused, be the path itself); the last component is
/// opened without following a symlink.
fn fallback(root: &Path, rel: &Path, links: Symlinks) -> Result<Option<File>, ReadError> {
    let (Ok(root), Ok(real)) = (root.canonicalize(), root.join(rel).canonicalize()) else {
        return Ok(None);
    };
    if !real.starts_with(&root) {
        return Ok(None);
    }
    if links == Symlinks::Refused && real != root.join(rel) {
        return Err(ReadError::Symlink);
    }
    open_no_follow(&real).map(Some)
}

/// Open `path` read-only, refusing a symlink as its last component.
pub fn open_no_follow(path: &Path) -> Result<File, ReadError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | FLAGS)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => ReadError::Symlink,
            _ => e.into(),
        })
}

/// The whole of `file`, which must be a regular file of at most `max`
/// bytes; `meta` is its metadata, for checks of the caller's own.
pub fn read_regular(file: File, max: u64) -> Result<(Vec<u8>, fs::Metadata), ReadError> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(max));
    }
    Ok((bytes, meta))
}

/// `rel` under `root` ([`open_in_root`] then [`read_regular`]); `None`
/// when it does not exist.
pub fn read_in_root(
    root: &Path,
    rel: &Path,
    links: Symlinks,
    max: u64,
) -> Result<Option<Vec<u8>>, ReadError> {
    match open_in_root(root, rel, links)? {
        Some(file) => Ok(Some(read_regular(file, max)?.0)),
        None => Ok(None),
    }
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        fs::create_dir(d.path().join("b")).expect("mkdir");
        fs::write(d.path().join("b/f"), "A=1\n").expect("write");
        d
    }

    #[test]
    fn a_regular_file_is_read_and_a_missing_one_is_none() {
        let d = root();
        let got = read_in_root(d.path(), Path::new("b/f"), Symlinks::Refused, 100).unwrap();
        assert_eq!(got.as_deref(), Some(&b"A=1\n"[..]));
        let none = read_in_root(d.path(), Path::new("b/g"), Symlinks::Refused, 100).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn symlinks_are_refused_on_any_component() {
        let d = root();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("b/x")).unwrap();
        std::os::unix::fs::symlink("f", d.path().join("b/y")).unwrap();
        std::os::unix::fs::symlink("b", d.path().join("c")).unwrap();
        for rel in ["b/x", "b/y", "c/f"] {
            let e = read_in_root(d.path(), Path::new(rel), Symlinks::Refused, 100).unwrap_err();
            assert!(matches!(e, ReadError::Symlink), "{rel}: {e}");
        }
        // Followed inside the root when allowed.
        let got = read_in_root(d.path(), Path::new("c/f"), Symlinks::InRoot, 100).unwrap();
        assert_eq!(got.as_deref(), Some(&b"A=1\n"[..]));
    }

    #[test]
    fn fifos_devices_and_large_files_are_refused() {
        let d = root();
        nix::unistd::mkfifo(
            &d.path().join("b/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = read_in_root(d.path(), Path::new("b/fifo"), Symlinks::Refused, 100).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e}");
        let e = read_regular(File::open("/dev/zero").unwrap(), 100).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular("a character device")),
            "{e}"
        );
        let e = read_in_root(d.path(), Path::new("b/f"), Symlinks::Refused, 3).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge(3)), "{e}");
    }

    #[test]
    fn open_no_follow_refuses_a_last_symlink() {
        let d = root();
        std::os::unix::fs::symlink("f", d.path().join("b/y")).unwrap();
        assert!(matches!(
            open_no_follow(&d.path().join("b/y")),
            Err(ReadError::Symlink)
        ));
        assert!(open_no_follow(&d.path().join("b/f")).is_ok());
    }
}

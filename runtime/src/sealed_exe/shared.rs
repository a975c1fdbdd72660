//! One sealed copy of berth per runtime root, shared by every process
//! started under it, with no process holding it.
//!
//! Why: a memfd per task supervisor cost 28.7 MiB of shared memory per
//! task (1,000 tasks would not fit in 24 GiB), and every `berth runtime
//! run` paid the 30 MB copy on its critical path. One copy also makes the
//! supervisors', monitors' and probes' text one page-cache copy.
//!
//! How: a memfd cannot be kept without a process (the kernel refuses to
//! bind-mount a file of its internal mount, and runc's memfd-bind stays
//! running to keep its `/proc/PID/fd` link alive). So the copy is a file
//! on a tmpfs of its own, mounted at `<runtime root>/exe/<identity>/`:
//! written once, made immutable (`chattr +i`), then the whole tmpfs is
//! remounted read-only. Nothing can then change it: a write through
//! `/proc/PID/exe` from a container meets a read-only superblock (EROFS)
//! and an immutable inode (EPERM); making either writable again needs
//! CAP_SYS_ADMIN in the host's mount namespace, where no container is. A
//! stale copy is only ever unmounted, never made writable, so running
//! processes keep an unchangeable executable.
//!
//! The directory name is the identity of the binary it was copied from
//! (dev, inode, size, mtime of `/proc/self/exe`), so an upgraded or
//! rebuilt berth makes a new copy (and unmounts the old, lazily). It is
//! made under an flock (`<runtime root>/exe/lock`), so CLIs racing make
//! one. Nothing is exec'd that is not verified: a tmpfs, read-only,
//! immutable, of the identity's size. Where it cannot be made (no
//! CAP_SYS_ADMIN, a kernel without tmpfs `chattr +i`), the process keeps
//! a sealed memfd of its own, as before, and says so.
//!
//! The mount lives as long as the runtime root: `/run/berth` is a tmpfs
//! gone at reboot; whoever removes a `--root` directory unmounts
//! `<root>/run/exe/*` first (the tests' and bench scripts' clean-up do).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::seal_copy;
use crate::error::{Error, Result};
use crate::fsutil::{create_private_dir_all, flock, open_lock_file};

/// The directory under a runtime root that holds the shared copy.
pub const DIR: &str = "exe";
/// The lock file in [`DIR`], held while a copy is made.
const LOCK: &str = "lock";

/// What identifies the binary a copy was made from: a rebuilt, replaced
/// or upgraded berth differs in at least one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Identity {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }

    /// The copy's file name, which records the identity.
    pub(super) fn file_name(&self) -> String {
        format!(
            "berth-{:x}-{:x}-{}-{}.{:09}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }
}

/// The executable's name inside its tmpfs.
const FILE: &str = "berth";
/// `FS_IMMUTABLE_FL` (linux/fs.h): no write, truncate, rename or unlink.
const IMMUTABLE: libc::c_long = 0x10;

/// The shared copy under `runtime_root` of the binary `exe` (this
/// process's own, not a copy), opened and verified, made if missing; a
/// sealed memfd of this process's own when it cannot be shared.
pub(super) fn open_or_make(runtime_root: &Path, exe: &mut File) -> Result<OwnedFd> {
    let meta = exe
        .metadata()
        .map_err(|e| Error::io("stat /proc/self/exe", e))?;
    let id = Identity::of(&meta);
    let dir = runtime_root.join(DIR);
    let mount_point = dir.join(id.file_name());
    let path = mount_point.join(FILE);
    if let Some(fd) = open_verified(&path, &id) {
        return Ok(fd);
    }
    let _lock = match lock(&dir) {
        Ok(lock) => lock,
        Err(e) => return own_copy(exe, &dir, &e),
    };
    // Another process may have made it while this one waited.
    if let Some(fd) = open_verified(&path, &id) {
        return Ok(fd);
    }
    if let Err(e) = publish(&dir, &mount_point, exe, id.size) {
        unmount_and_remove(&mount_point);
        return own_copy(exe, &dir, &e);
    }
    match open_verified(&path, &id) {
        Some(fd) => Ok(fd),
        None => {
            unmount_and_remove(&mount_point);
            let e = Error::io(
                format!("verify {}", path.display()),
                std::io::Error::other("not a read-only, immutable tmpfs file of berth's size"),
            );
            own_copy(exe, &dir, &e)
        }
    }
}

/// The fallback: a sealed memfd of this process's own, said with tracing.
fn own_copy(exe: &mut File, dir: &Path, e: &Error) -> Result<OwnedFd> {
    tracing::warn!(
        "cannot share berth's sealed copy in {}: {e}; this process makes a copy of its own",
        dir.display()
    );
    seal_copy(exe)
}

/// `path` opened read-only, if it is a copy berth would exec; anything
/// else (missing, a half-made copy a crash left, another file) is `None`.
fn open_verified(path: &Path, id: &Identity) -> Option<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let size = file.metadata().ok()?.len();
    (size == id.size && is_shared_copy(&file)).then(|| OwnedFd::from(file))
}

/// True when `file` cannot change: a file on a read-only tmpfs, itself
/// immutable. (A tmpfs can be remounted writable only from the host's
/// mount namespace, and `chattr -i` needs a writable mount.)
pub(super) fn is_shared_copy(file: &File) -> bool {
    let fd = file.as_raw_fd();
    // SAFETY: fstatfs/fstatvfs/ioctl(FS_IOC_GETFLAGS) write only into the
    // zeroed structures and the int passed, on an fd this borrows.
    unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(fd, &mut fs) != 0 || fs.f_type != libc::TMPFS_MAGIC {
            return false;
        }
        let mut vfs: libc::statvfs = std::mem::zeroed();
        if libc::fstatvfs(fd, &mut vfs) != 0 || vfs.f_flag & libc::ST_RDONLY == 0 {
            return false;
        }
        let mut flags: libc::c_long = 0;
        libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) == 0 && flags & IMMUTABLE != 0
    }
}

/// An exclusive flock on `<dir>/lock` (the directory made 0700 if
/// missing), released when the file is dropped.
fn lock(dir: &Path) -> Result<File> {
    create_private_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let path = dir.join(LOCK);
    let file =
        open_lock_file(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    flock(&file, libc::LOCK_EX).map_err(|e| Error::io(format!("lock {}", path.display()), e))?;
    Ok(file)
}

/// With the lock held: unmount every other entry of `dir` (copies of
/// other binaries; what a crash left), then mount a tmpfs at
/// `mount_point`, copy `exe` into it, make the file immutable and the
/// tmpfs read-only.
fn publish(dir: &Path, mount_point: &Path, exe: &mut File, size: u64) -> Result<()> {
    for stale in entries(dir) {
        unmount_and_remove(&stale);
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(mount_point)
        .map_err(|e| Error::io(format!("create {}", mount_point.display()), e))?;
    // Room for the file and nothing else.
    let options = format!("size={},nr_inodes=4,mode=0700", size + 64 * 1024);
    let plain = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(
        Some("berth-exe"),
        mount_point,
        Some("tmpfs"),
        plain,
        Some(options.as_str()),
    )
    .map_err(|e| Error::sys(format!("mount a tmpfs on {}", mount_point.display()), e))?;
    let path = mount_point.join(FILE);
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o555)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    use std::io::Seek;
    exe.rewind()
        .map_err(|e| Error::io("rewind /proc/self/exe", e))?;
    std::io::copy(exe, &mut copy)
        .and_then(|_| copy.flush())
        .map_err(|e| Error::io(format!("copy berth to {}", path.display()), e))?;
    drop(copy);
    let file = File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let flags: libc::c_long = IMMUTABLE;
    // SAFETY: FS_IOC_SETFLAGS reads the int passed, on an fd this owns.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(Error::io(
            format!("make {} immutable", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    // Read-only for the superblock, so for every mount of it.
    mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | plain,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("make {} read-only", mount_point.display()), e))
}

/// Entries of `dir` other than the lock file.
fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != LOCK)
        .map(|e| e.path())
        .collect()
}

/// Unmount what is mounted at `path` (lazily: running processes keep
/// their executable) and remove the directory; best effort.
fn unmount_and_remove(path: &Path) {
    // Stacked mounts come off one at a time; EINVAL once none is left.
    for _ in 0..8 {
        if umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_err() {
            break;
        }
    }
    let _ = fs::remove_dir(path).or_else(|_| fs::remove_file(path));
}

/// Unmount and remove every shared copy under `runtime_root`, for
/// whoever tears a runtime root down. Running processes keep theirs.
pub fn remove_all(runtime_root: &Path) {
    let dir = runtime_root.join(DIR);
    for path in entries(&dir) {
        unmount_and_remove(&path);
    }
    let _ = fs::remove_file(dir.join(LOCK));
    let _ = fs::remove_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            dev: 0x803,
            ino: 0x1234,
            size: 30_000_000,
            mtime: 1_700_000_000,
            mtime_nsec: 5,
        }
    }

    #[test]
    fn the_file_name_records_every_field_of_the_identity() {
        let base = id();
        assert_eq!(
            base.file_name(),
            "berth-803-1234-30000000-1700000000.000000005"
        );
        let changed = [
            Identity { dev: 1, ..id() },
            Identity { ino: 1, ..id() },
            Identity { size: 1, ..id() },
            Identity { mtime: 1, ..id() },
            Identity {
                mtime_nsec: 6,
                ..id()
            },
        ];
        for other in changed {
            assert_ne!(other.file_name(), base.file_name(), "{other:?}");
        }
    }

    #[test]
    fn a_plain_file_never_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE);
        fs::write(&path, vec![0u8; 16]).expect("write");
        let sixteen = Identity { size: 16, ..id() };
        assert!(open_verified(&path, &sixteen).is_none());
        assert!(open_verified(&dir.path().join("missing"), &sixteen).is_none());
    }
}

//! The berth binary as a sealed memfd, against CVE-2019-5736.
//!
//! A process that enters a container (a monitor, whose clone becomes the
//! container's init; a probe or `exec`, which fork the process that joins
//! it) carries its executable in `/proc/self/exe`. Were that the host's
//! berth binary, code in the container that gets hold of the link (an
//! entrypoint of `#!/proc/self/exe`, say) could open the host file and
//! rewrite it once the kernel stops refusing writes to running binaries.
//! So those processes run from an in-memory copy sealed against any
//! change: what the container can reach is a copy nobody can write.
//!
//! One copy is shared by every process started under a runtime root
//! (CLIs, task supervisors, monitors, probes): [`shared`] keeps it on a
//! read-only tmpfs at `<runtime root>/exe/<identity>/berth`, immutable,
//! and a process runs it as `/proc/self/fd/N` of the file it opened and
//! checked. A process that already runs from an unchangeable copy hands
//! out that copy; one that cannot share makes a sealed memfd of its own
//! (all four seals).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};

mod shared;
pub use shared::{remove_all as remove_shared, DIR as SHARED_DIR};

/// Every seal: no more seals, no shrinking, no growing, no writing.
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Environment a container must never inherit through berth: libcontainer
/// keeps fds 3..3+LISTEN_FDS open into the container (systemd socket
/// activation), which would hand it the monitor's own pipes.
pub const SCRUBBED_ENV: &[&str] = &["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// True when `file` is a memfd carrying every seal berth sets.
fn is_sealed(file: &File) -> bool {
    // SAFETY: F_GET_SEALS only reads the fd's flags.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// True when `file` cannot change: a sealed memfd, or the shared copy.
fn unchangeable(file: &File) -> bool {
    is_sealed(file) || shared::is_shared_copy(file)
}

/// True when this process runs from a copy nothing can change (a sealed
/// memfd, or the shared copy).
pub fn running_sealed() -> bool {
    File::open("/proc/self/exe").is_ok_and(|f| unchangeable(&f))
}

/// The sealed copy this process hands out (found or made once per
/// process): the one it runs from, else the one shared under
/// `shared_in` (a runtime root), else a copy of its own.
fn sealed_copy(shared_in: Option<&Path>) -> Result<&'static OwnedFd> {
    static COPY: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = COPY.get() {
        return Ok(fd);
    }
    let fd = find_or_make(shared_in)?;
    Ok(COPY.get_or_init(|| fd))
}

fn find_or_make(shared_in: Option<&Path>) -> Result<OwnedFd> {
    let mut exe = File::open("/proc/self/exe").map_err(|e| Error::io("open /proc/self/exe", e))?;
    if unchangeable(&exe) {
        // Already a sealed copy: hand out the same one (close-on-exec).
        return Ok(OwnedFd::from(exe));
    }
    match shared_in {
        Some(root) => shared::open_or_make(root, &mut exe),
        None => seal_copy(&mut exe),
    }
}

/// A new memfd holding all of `exe` (read from its start), sealed.
fn seal_copy(exe: &mut File) -> Result<OwnedFd> {
    use std::io::Seek;
    exe.rewind()
        .map_err(|e| Error::io("rewind /proc/self/exe", e))?;
    let name = CString::new("berth").map_err(|e| Error::io("memfd name", e.into()))?;
    // SAFETY: a valid C string and flags; the result is checked below.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(Error::io(
            "memfd_create for a sealed copy of berth",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: memfd_create just returned this fd and nothing else owns it.
    let mut copy = unsafe { File::from_raw_fd(raw) };
    std::io::copy(exe, &mut copy).map_err(|e| Error::io("copy /proc/self/exe into a memfd", e))?;
    // SAFETY: F_ADD_SEALS on an fd this function owns.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(Error::io(
            "seal the copy of berth",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(OwnedFd::from(copy))
}

/// A [`Command`] that runs berth from the sealed copy shared under
/// `runtime_root` (made there if missing), with the [`SCRUBBED_ENV`] removed.
pub fn command(runtime_root: &Path) -> Result<Command> {
    let mut cmd = Command::new(program(runtime_root)?);
    for key in SCRUBBED_ENV {
        cmd.env_remove(key);
    }
    Ok(cmd)
}

/// The path a child executes to run berth from the sealed copy shared
/// under `runtime_root` (made there if missing): `/proc/self/fd/N` of
/// this process's fd on it, kept open for the process's life. The kernel
/// opens the path before close-on-exec fds go, so the child's copy of the
/// fd is still there when its execve looks it up.
pub fn program(runtime_root: &Path) -> Result<PathBuf> {
    let fd = sealed_copy(Some(runtime_root))?;
    Ok(PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
}

/// Make sure this process runs from the sealed copy: if not, re-execute
/// it from one (the one shared under `shared_in`, a runtime root, when
/// given: no copy of its own to make), with the same arguments and the
/// environment less [`SCRUBBED_ENV`]. Returns only if it already does (or
/// on failure). Call it first thing, before any thread exists.
pub fn reexec_sealed(shared_in: Option<&Path>) -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let fd = sealed_copy(shared_in)?;
    let argv = crate::spawn::c_args(&std::env::args_os().collect::<Vec<_>>())?;
    let env = crate::spawn::c_env(crate::spawn::env_without(SCRUBBED_ENV))?;
    let err = nix::unistd::fexecve(fd.as_raw_fd(), &argv, &env)
        .err()
        .map(std::io::Error::from)
        .unwrap_or_else(std::io::Error::last_os_error);
    Err(Error::io("re-execute berth from its sealed copy", err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn the_copy_is_sealed_against_writes() {
        let fd = sealed_copy(None).expect("sealed copy");
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let file = File::open(&path).expect("open the copy");
        assert!(is_sealed(&file));
        let exe_len = std::fs::metadata("/proc/self/exe").expect("exe").len();
        assert_eq!(file.metadata().expect("copy").len(), exe_len);
        // Writes, growth and truncation all fail.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .expect("open for write (the seals refuse the write itself)");
        assert!(w.write_all(b"x").is_err());
        assert!(w.set_len(0).is_err());
        assert!(w.set_len(exe_len + 1).is_err());
        // Asked again, the same copy comes back.
        assert_eq!(
            sealed_copy(None).expect("again").as_raw_fd(),
            fd.as_raw_fd()
        );
    }
}

//! Starting a process with `posix_spawn`: glibc clones with `CLONE_VM |
//! CLONE_VFORK`, so the parent's page tables are not copied (nor its
//! writable pages made copy-on-write until the child's `execve`), which a
//! `fork` from a large, threaded process (a task's supervisor) pays on
//! every start. std's `Command` takes this path too, unless it is given a
//! `pre_exec` closure, which a child that needs fds at fixed numbers or a
//! session of its own would need; [`Spawn`] does both as spawn actions.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::unistd::Pid;

use crate::error::{Error, Result};

/// What to start: a program, its argv and environment, fds to place at
/// fixed numbers, and whether it leads a session of its own. Its stdin,
/// stdout and stderr are /dev/null; its signal mask is empty and SIGPIPE
/// is back to its default action, as std's `Command` leaves them.
pub struct Spawn {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// (fd in this process, number in the child).
    fds: Vec<(RawFd, RawFd)>,
    setsid: bool,
}

fn c_string(what: &str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| {
        Error::io(
            format!("spawn: {what}"),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "holds a NUL byte"),
        )
    })
}

impl Spawn {
    /// `program` run with `argv` (argv[0] included) and `env`.
    pub fn new(
        program: &Path,
        argv: &[OsString],
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self> {
        Ok(Self {
            program: c_string("the program's path", program.as_os_str().as_bytes())?,
            argv: c_args(argv)?,
            env: c_env(env)?,
            fds: Vec::new(),
            setsid: false,
        })
    }

    /// Hand `fd` to the child as fd `number` (clear of 0..=2 and of the
    /// other fds handed over; close-on-exec does not carry over).
    pub fn fd(mut self, fd: RawFd, number: RawFd) -> Self {
        self.fds.push((fd, number));
        self
    }

    /// Start the child in a session of its own.
    pub fn setsid(mut self) -> Self {
        self.setsid = true;
        self
    }

    /// Start it; returns its pid.
    pub fn spawn(&self) -> Result<Pid> {
        let fail =
            |what: &str, rc: libc::c_int| Error::io(what, std::io::Error::from_raw_os_error(rc));
        let actions = FileActions::new().map_err(|rc| fail("posix_spawn_file_actions_init", rc))?;
        let null = c"/dev/null";
        for (fd, flags) in [
            (0, libc::O_RDONLY),
            (1, libc::O_WRONLY),
            (2, libc::O_WRONLY),
        ] {
            // SAFETY: `actions` is initialized; the path outlives the call
            // (glibc copies it).
            let rc = unsafe {
                libc::posix_spawn_file_actions_addopen(actions.ptr(), fd, null.as_ptr(), flags, 0)
            };
            if rc != 0 {
                return Err(fail("posix_spawn_file_actions_addopen", rc));
            }
        }
        for &(fd, number) in &self.fds {
            // SAFETY: as above; dup2 onto another number clears
            // close-on-exec on the copy.
            let rc = unsafe { libc::posix_spawn_file_actions_adddup2(actions.ptr(), fd, number) };
            if rc != 0 {
                return Err(fail("posix_spawn_file_actions_adddup2", rc));
            }
        }
        let attr = Attributes::new().map_err(|rc| fail("posix_spawnattr_init", rc))?;
        attr.configure(self.setsid)
            .map_err(|rc| fail("posix_spawnattr", rc))?;
        let mut argv: Vec<*mut libc::c_char> =
            self.argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        let mut env: Vec<*mut libc::c_char> =
            self.env.iter().map(|e| e.as_ptr().cast_mut()).collect();
        env.push(std::ptr::null_mut());
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid and NUL-terminated (argv and env
        // end in null) for the duration of the call; posix_spawn does not
        // keep them.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                self.program.as_ptr(),
                actions.ptr(),
                attr.ptr(),
                argv.as_ptr(),
                env.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(fail(
                &format!("start {}", self.program.to_string_lossy()),
                rc,
            ));
        }
        Ok(Pid::from_raw(pid))
    }
}

/// `argv` as C strings, for an exec.
pub(crate) fn c_args(argv: &[OsString]) -> Result<Vec<CString>> {
    argv.iter()
        .map(|a| c_string("an argument", a.as_bytes()))
        .collect()
}

/// `env` as `KEY=value` C strings, for an exec.
pub(crate) fn c_env(env: impl IntoIterator<Item = (OsString, OsString)>) -> Result<Vec<CString>> {
    env.into_iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            c_string("an environment variable", &kv)
        })
        .collect()
}

/// This process's environment less the variables named in `remove`.
pub fn env_without(remove: &[&str]) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| !remove.iter().any(|r| OsStr::new(r) == k))
        .collect()
}

/// A `T` on the heap (it must not move once initialized), set up by
/// `init`: `posix_spawn_file_actions_init` or `posix_spawnattr_init`.
fn initialized<T>(
    init: unsafe extern "C" fn(*mut T) -> libc::c_int,
) -> std::result::Result<Box<T>, libc::c_int> {
    // SAFETY: both types are plain C structs for which all-zero bytes are
    // a valid (if meaningless) value, overwritten by `init`.
    let mut value: Box<T> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: `init` initializes the value just allocated.
    match unsafe { init(&mut *value) } {
        0 => Ok(value),
        rc => Err(rc),
    }
}

/// `posix_spawn_file_actions_t`, destroyed when dropped.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> std::result::Result<Self, libc::c_int> {
        initialized(libc::posix_spawn_file_actions_init).map(Self)
    }

    fn ptr(&self) -> *mut libc::posix_spawn_file_actions_t {
        std::ptr::from_ref(&*self.0).cast_mut()
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut *self.0) };
    }
}

/// `posix_spawnattr_t`, destroyed when dropped.
struct Attributes(Box<libc::posix_spawnattr_t>);

impl Attributes {
    fn new() -> std::result::Result<Self, libc::c_int> {
        initialized(libc::posix_spawnattr_init).map(Self)
    }

    fn ptr(&self) -> *const libc::posix_spawnattr_t {
        &*self.0
    }

    /// An empty signal mask, SIGPIPE at its default action, and a session
    /// of its own if asked.
    fn configure(&self, setsid: bool) -> std::result::Result<(), libc::c_int> {
        let attr = self.ptr().cast_mut();
        // SAFETY: sigset_t values are initialized by sigemptyset before use;
        // `attr` is initialized.
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let mut pipe: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            // The SETSIGMASK and SETSIGDEF flags are c_int in libc,
            // SETSID c_short; setflags takes a c_short. All are small.
            let mut flags =
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
            if setsid {
                flags |= libc::POSIX_SPAWN_SETSID;
            }
            for rc in [
                libc::posix_spawnattr_setsigmask(attr, &empty),
                libc::posix_spawnattr_setsigdefault(attr, &pipe),
                libc::posix_spawnattr_setflags(attr, flags),
            ] {
                if rc != 0 {
                    return Err(rc);
                }
            }
        }
        Ok(())
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(&mut *self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};

    /// The child gets the fd at its number, /dev/null as stdio, a session
    /// of its own, and the environment given.
    #[test]
    fn fds_session_and_env_reach_the_child() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let script = "echo \"$(ls -l /proc/self/fd/0 | sed 's/.*-> //') \
                      $(cut -d' ' -f6 /proc/self/stat) $$ $BERTH_SPAWN_TEST\" >&7";
        let argv: Vec<OsString> = ["sh", "-c", script].iter().map(OsString::from).collect();
        let env = vec![(OsString::from("BERTH_SPAWN_TEST"), OsString::from("yes"))];
        let pid = Spawn::new(Path::new("/bin/sh"), &argv, env)
            .expect("spawn args")
            .fd(std::os::fd::AsRawFd::as_raw_fd(&w), 7)
            .setsid()
            .spawn()
            .expect("spawn");
        drop(w);
        let status = waitpid(pid, None).expect("wait");
        assert_eq!(status, WaitStatus::Exited(pid, 0));
        let out = std::io::read_to_string(std::fs::File::from(r)).expect("read");
        let fields: Vec<&str> = out.split_whitespace().collect();
        // stdin is /dev/null; the session is led by the child itself.
        assert_eq!(fields[0], "/dev/null", "{out}");
        assert_eq!(fields[1], fields[2], "not a session leader: {out}");
        assert_eq!(fields[3], "yes", "{out}");
    }

    #[test]
    fn a_nul_byte_is_refused_with_what_held_it() {
        let argv = vec![OsString::from("a\0b")];
        let err = Spawn::new(Path::new("/bin/true"), &argv, Vec::new())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("an argument"), "{err}");
    }

    #[test]
    fn a_missing_program_is_an_error_not_a_child() {
        let err = Spawn::new(
            Path::new("/nonexistent/berth"),
            &[OsString::from("x")],
            Vec::new(),
        )
        .expect("spawn args")
        .spawn()
        .expect_err("no such program");
        assert!(err.to_string().contains("/nonexistent/berth"), "{err}");
    }
}

//! Namespaces that outlive any one process: a task's network, IPC and UTS
//! namespaces, bind-mounted to files so that each of its containers can
//! join them, whichever starts or stops first.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, Result};

/// The namespace files of one task.
#[derive(Clone, Debug)]
pub struct SharedNamespaces {
    pub dir: PathBuf,
}

const KINDS: &[(&str, &str, CloneFlags)] = &[
    ("network", "net", CloneFlags::CLONE_NEWNET),
    ("ipc", "ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", "uts", CloneFlags::CLONE_NEWUTS),
];

impl SharedNamespaces {
    /// Make new network (`with_network`), IPC and UTS namespaces under
    /// `dir`; a new network namespace gets its loopback up.
    pub fn create(dir: &Path, with_network: bool, hostname: &str) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let ns = Self {
            dir: dir.to_path_buf(),
        };
        let result = ns.create_in(with_network, hostname);
        if result.is_err() {
            let _ = ns.remove();
        }
        result.map(|()| ns)
    }

    fn create_in(&self, with_network: bool, hostname: &str) -> Result<()> {
        let dir = self.dir.clone();
        let hostname = hostname.to_string();
        // unshare() changes the calling thread only: a thread of its own
        // keeps this process's namespaces as they were.
        std::thread::spawn(move || -> Result<()> {
            let mut flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
            if with_network {
                flags |= CloneFlags::CLONE_NEWNET;
            }
            unshare(flags).map_err(|e| Error::sys("unshare task namespaces", e))?;
            nix::unistd::sethostname(&hostname).map_err(|e| Error::sys("set hostname", e))?;
            if with_network {
                loopback_up()?;
            }
            let tid = nix::unistd::gettid();
            for (kind, proc_name, flag) in KINDS {
                if !flags.contains(*flag) {
                    continue;
                }
                let target = dir.join(kind);
                fs::write(&target, b"")
                    .map_err(|e| Error::io(format!("create {}", target.display()), e))?;
                let source = format!("/proc/self/task/{tid}/ns/{proc_name}");
                mount(
                    Some(source.as_str()),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| Error::sys(format!("bind {source} to {}", target.display()), e))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| Error::Monitor {
            id: self.dir.display().to_string(),
            reason: "namespace thread panicked".into(),
        })?
    }

    /// The file to join for `kind` (`network`, `ipc`, `uts`), if made.
    pub fn path(&self, kind: &str) -> Option<PathBuf> {
        let p = self.dir.join(kind);
        p.exists().then_some(p)
    }

    /// Unmount and remove the namespace files; missing ones are fine.
    pub fn remove(&self) -> Result<()> {
        for (kind, _, _) in KINDS {
            let p = self.dir.join(kind);
            if p.exists() {
                let _ = umount2(&p, MntFlags::MNT_DETACH);
                fs::remove_file(&p).map_err(|e| Error::io(format!("remove {}", p.display()), e))?;
            }
        }
        match fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove {}", self.dir.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// `ip link set lo up`, by ioctl: a new network namespace starts with it down.
fn loopback_up() -> Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Error::io("socket", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(Error::io("bring loopback up", err));
        }
    }
    Ok(())
}

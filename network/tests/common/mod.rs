//! What the network crate's root tests share: a network namespace of the
//! test's own.

use std::path::PathBuf;
use std::process::Command;

/// A named network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: String) -> Self {
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.0)
    }

    /// Run `work` on a thread inside this namespace (sockets it opens stay
    /// in it, netlink and /proc/sys/net act on it, commands and threads it
    /// starts run in it).
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                let file = std::fs::File::open(&path).expect("open the namespace");
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("join the namespace");
                work()
            })
            .join()
            .expect("thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

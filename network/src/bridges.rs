//! A bridge's life across processes: made by the first namespace plugged
//! into it, removed once nothing is plugged in any more.
//!
//! Starters and removers are separate processes (one per task), so the
//! gap between "make the bridge" and "plug the veth into it" is held under
//! a shared `flock` of the bridge's lock file in a directory the caller
//! names (one per host: its runtime root), and the one between "nothing
//! uses the bridge" and "delete it" under an exclusive one: starters do
//! not wait for each other (a thousand tasks start at once), a remover
//! waits for every starter under way and they for it. Without it the last
//! task's remover could delete the bridge between a starter's
//! [`ensure_bridge`] and its [`attach`] ("bring X up: No such device", or
//! a veth left on no bridge). The remover asks the kernel whether any link
//! is still a port of the bridge: a starter holding the lock has plugged
//! its veth in before it lets go, and a stopped task's veth is gone.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use nix::fcntl::{Flock, FlockArg};
use rtnetlink::packet_route::link::LinkAttribute;

use crate::links::{attach, err, index_of, with_handle};
use crate::{ensure_bridge, nat, remove_bridge, Result};

/// A hold on one bridge's lock file, shared (starters) or exclusive (a
/// remover); released on drop (or when its process dies: a crash leaves no
/// stale lock).
#[derive(Debug)]
pub struct BridgeLock {
    _file: Flock<File>,
}

impl BridgeLock {
    /// Wait for, then take, a shared hold of the lock of `bridge` in `dir`
    /// (made 0700 if missing): what a starter holds.
    pub fn shared(dir: &Path, bridge: &str) -> Result<Self> {
        Self::acquire(dir, bridge, FlockArg::LockShared)
    }

    /// Wait for, then take, the exclusive hold: what a remover holds.
    pub fn exclusive(dir: &Path, bridge: &str) -> Result<Self> {
        Self::acquire(dir, bridge, FlockArg::LockExclusive)
    }

    fn acquire(dir: &Path, bridge: &str, how: FlockArg) -> Result<Self> {
        let path = lock_path(dir, bridge)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("create {}", dir.display()), e))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A symlink in its place is refused: root must not be led to
            // create or lock a file elsewhere.
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| err(format!("open {}", path.display()), e))?;
        let file =
            Flock::lock(file, how).map_err(|(_, e)| err(format!("lock {}", path.display()), e))?;
        Ok(Self { _file: file })
    }
}

/// The lock file of `bridge` in `dir`. A link's name has no `/` and is
/// neither `.` nor `..`, which the kernel refuses too; anything else is
/// refused here rather than locking some other file.
fn lock_path(dir: &Path, bridge: &str) -> Result<PathBuf> {
    if bridge.is_empty() || bridge.contains('/') || bridge == "." || bridge == ".." {
        return Err(err(format!("lock bridge {bridge:?}"), "not a link name"));
    }
    Ok(dir.join(format!("{bridge}.lock")))
}

/// Plug the namespace at `netns` into `bridge` ([`attach`]), making the
/// bridge with `gateway/prefix` first if it is missing, under a shared
/// hold of the bridge's lock in `locks`: no remover deletes it in between.
pub fn plug_in(
    locks: &Path,
    netns: &Path,
    bridge: &str,
    host_ifname: &str,
    address: std::net::Ipv4Addr,
    prefix: u8,
    gateway: std::net::Ipv4Addr,
) -> Result<()> {
    let _lock = BridgeLock::shared(locks, bridge)?;
    ensure_bridge(bridge, gateway, prefix)?;
    attach(netns, bridge, host_ifname, address, prefix, gateway)
}

/// What [`remove_bridge_if_unused`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The bridge (and its NAT table) removed.
    Removed,
    /// Kept: a link is still plugged in, or the caller's `keep` said so.
    Kept,
    /// There was no bridge (its NAT table, if any, removed).
    Absent,
}

/// Under the exclusive hold of the bridge's lock in `locks`: unless
/// `keep()` (what the caller's own records say, asked under the lock) or a
/// link still plugged into it holds the bridge, remove its NAT table and
/// the bridge. Both removals are tried; the first failure is returned.
pub fn remove_bridge_if_unused(
    locks: &Path,
    bridge: &str,
    keep: impl FnOnce() -> bool,
) -> Result<Removal> {
    let _lock = BridgeLock::exclusive(locks, bridge)?;
    if keep() || has_ports(bridge)? {
        return Ok(Removal::Kept);
    }
    let existed = crate::link_exists(bridge)?;
    let table = nat::remove_table(bridge);
    let link = remove_bridge(bridge);
    table.and(link)?;
    Ok(if existed {
        Removal::Removed
    } else {
        Removal::Absent
    })
}

/// Whether any link is a port of `bridge` (none when there is no bridge).
pub fn has_ports(bridge: &str) -> Result<bool> {
    let bridge = bridge.to_string();
    with_handle(None, move |h| {
        Box::pin(async move {
            let Some(index) = index_of(&h, &bridge).await? else {
                return Ok(false);
            };
            let mut links = h.link().get().execute();
            let mut found = false;
            // Read to the end: the dump's messages are one reply.
            while let Some(link) = links
                .try_next()
                .await
                .map_err(|e| err(format!("list the ports of {bridge}"), e))?
            {
                found |= link
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Controller(c) if *c == index));
            }
            Ok(found)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_is_named_after_its_bridge_and_nothing_else() {
        let dir = Path::new("/run/x");
        assert_eq!(
            lock_path(dir, "berth0").expect("name"),
            Path::new("/run/x/berth0.lock")
        );
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(lock_path(dir, bad).is_err(), "{bad:?}");
        }
    }

    /// Whether another open file of the lock could take `how` now.
    fn could_take(path: &Path, how: FlockArg) -> bool {
        let other = File::open(path).expect("open");
        Flock::lock(other, how).is_ok()
    }

    #[test]
    fn starters_share_the_lock_and_a_remover_has_it_alone() {
        let dir = tempfile_dir();
        let path = lock_path(&dir, "brx0").expect("name");
        let starter = BridgeLock::shared(&dir, "brx0").expect("shared");
        assert!(could_take(&path, FlockArg::LockSharedNonblock));
        assert!(!could_take(&path, FlockArg::LockExclusiveNonblock));
        drop(starter);
        let remover = BridgeLock::exclusive(&dir, "brx0").expect("exclusive");
        assert!(!could_take(&path, FlockArg::LockSharedNonblock));
        drop(remover);
        assert!(could_take(&path, FlockArg::LockExclusiveNonblock));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A directory of the test's own under the system's temporary one.
    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "berth-net-lock-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}

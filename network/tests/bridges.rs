//! A bridge's life across starters and removers (`berth_net::plug_in`,
//! `berth_net::remove_bridge_if_unused`): real kernel, as root, inside a
//! network namespace the test makes (so the bridge, veths and nft tables
//! are its own and go with it on drop), lock files in a directory of its
//! own, removed on drop.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_net::Removal;

mod common;
use common::Netns;

/// A directory of the test's own, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("berth-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests make namespaces and bridges: run them as root"
    );
}

const BRIDGE: &str = "brl0";
const VETH: &str = "vbl0";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

fn plug(locks: &Path, task: &Netns) -> berth_net::Result<()> {
    berth_net::plug_in(locks, &task.path(), BRIDGE, VETH, ADDRESS, 24, GATEWAY)
}

#[test]
fn a_bridge_goes_only_once_nothing_is_plugged_in_and_nothing_keeps_it() {
    require_root();
    let pid = std::process::id();
    let (host, task) = (
        Netns::new(format!("bnl-h-{pid}")),
        Netns::new(format!("bnl-t-{pid}")),
    );
    let locks = Dir::new("locks-kept");
    host.run(|| {
        plug(&locks.0, &task).expect("plug in");
        assert!(berth_net::has_ports(BRIDGE).expect("ports"));
        let remove = |keep: bool| {
            berth_net::remove_bridge_if_unused(&locks.0, BRIDGE, || keep).expect("remove")
        };
        // A veth plugged in keeps it, whatever the caller's records say.
        assert_eq!(remove(false), Removal::Kept);
        assert!(berth_net::link_exists(BRIDGE).expect("link"));
        berth_net::detach(VETH).expect("detach");
        assert!(!berth_net::has_ports(BRIDGE).expect("ports"));
        // The caller's records keep it too.
        assert_eq!(remove(true), Removal::Kept);
        assert!(berth_net::link_exists(BRIDGE).expect("link"));
        assert_eq!(remove(false), Removal::Removed);
        assert!(!berth_net::link_exists(BRIDGE).expect("link"));
        assert_eq!(remove(false), Removal::Absent);
        assert!(!berth_net::has_ports(BRIDGE).expect("no bridge, no ports"));
    });
    assert!(locks.0.join(format!("{BRIDGE}.lock")).exists());
}

/// The race the lock closes: the last task's supervisor removing the
/// bridge while a new task's makes it and plugs in. Whichever goes first,
/// the starter succeeds and ends plugged into a bridge that exists.
#[test]
fn a_remover_never_takes_the_bridge_from_under_a_starter() {
    require_root();
    let pid = std::process::id();
    let (host, task) = (
        Netns::new(format!("bnr-h-{pid}")),
        Netns::new(format!("bnr-t-{pid}")),
    );
    let locks = Dir::new("locks-race");
    host.run(|| {
        for round in 0..30 {
            // The last task's veth gone: an empty bridge, as its
            // supervisor finds it.
            plug(&locks.0, &task).expect("plug in");
            berth_net::detach(VETH).expect("detach");
            let (started, removed) = std::thread::scope(|s| {
                let remover =
                    s.spawn(|| berth_net::remove_bridge_if_unused(&locks.0, BRIDGE, || false));
                let starter = s.spawn(|| plug(&locks.0, &task));
                (
                    starter.join().expect("starter"),
                    remover.join().expect("remover"),
                )
            });
            started.unwrap_or_else(|e| panic!("round {round}: the starter failed: {e}"));
            let removed = removed.unwrap_or_else(|e| panic!("round {round}: remover: {e}"));
            assert!(
                berth_net::has_ports(BRIDGE).expect("ports"),
                "round {round}: the starter's veth is on no bridge (remover: {removed:?})"
            );
            berth_net::detach(VETH).expect("detach");
        }
    });
}

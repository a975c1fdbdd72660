//! `user` as Docker and ECS take it (`uid`, `uid:gid`, `name`, `name:group`),
//! resolved against the container's own /etc/passwd and /etc/group.

use std::io;
use std::path::Path;

use crate::bounded_read::{read_in_root, ReadError, Symlinks};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `user` (None means root) and `extra_groups` inside `rootfs`.
pub fn resolve(rootfs: &Path, user: Option<&str>, extra_groups: &[String]) -> Result<ResolvedUser> {
    let spec = user.unwrap_or("0");
    let err = |reason: String| Error::spec("user", format!("{spec:?}: {reason}"));
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(err("expected USER[:GROUP]".into()));
    }
    let passwd = read_passwd(rootfs)?;
    let groups = read_groups(rootfs)?;

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| err(format!("no user {user_part:?} in the image's /etc/passwd")))?,
        ),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => user_part.parse().map_err(|_| err("not a uid".into()))?,
    };
    let gid = match group_part {
        Some(g) => lookup_group(&groups, g).map_err(err)?,
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if group_part.is_none() {
        if let Some(e) = entry {
            additional_gids.extend(
                groups
                    .iter()
                    .filter(|g| g.gid != gid && g.members.contains(&e.name))
                    .map(|g| g.gid),
            );
        }
    }
    for g in extra_groups {
        let gid = lookup_group(&groups, g)
            .map_err(|r| Error::spec("additionalGroups", format!("{g:?}: {r}")))?;
        if !additional_gids.contains(&gid) {
            additional_gids.push(gid);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: entry.map(|e| e.home.clone()),
    })
}

fn lookup_group(groups: &[GroupEntry], spec: &str) -> std::result::Result<u32, String> {
    if let Ok(gid) = spec.parse::<u32>() {
        return Ok(gid);
    }
    groups
        .iter()
        .find(|g| g.name == spec)
        .map(|g| g.gid)
        .ok_or_else(|| format!("no group {spec:?} in the image's /etc/group"))
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>> {
    Ok(read_db(rootfs, "etc/passwd")?
        .iter()
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect())
}

fn read_groups(rootfs: &Path) -> Result<Vec<GroupEntry>> {
    Ok(read_db(rootfs, "etc/group")?
        .iter()
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// The most of /etc/passwd or /etc/group read: real ones are a few KiB.
pub const MAX_DB_BYTES: u64 = 4 << 20;

/// Colon-separated records of a file inside the rootfs; a missing file is
/// empty. The image is hostile: the file is resolved with the rootfs as its
/// root (a symlink cannot lead onto the host), opened without blocking
/// (a FIFO cannot hang us), must be a regular file (a device cannot feed us
/// forever) and is read up to [`MAX_DB_BYTES`].
fn read_db(rootfs: &Path, rel: &str) -> Result<Vec<Vec<String>>> {
    let fail = |e: ReadError| {
        let source = match e {
            ReadError::Io(io) => io,
            ReadError::TooLarge(_) => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {} MiB", MAX_DB_BYTES >> 20),
            ),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        };
        Error::io(
            format!("read the image's /{rel} ({})", rootfs.join(rel).display()),
            source,
        )
    };
    let read = read_in_root(rootfs, Path::new(rel), Symlinks::InRoot, MAX_DB_BYTES);
    let Some(bytes) = read.map_err(fail)? else {
        return Ok(Vec::new());
    };
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("etc")).expect("etc");
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .expect("passwd");
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nadm:x:4:www,other\nstaff:x:50:\n",
        )
        .expect("group");
        dir
    }

    #[test]
    fn names_and_numbers() {
        let r = rootfs();
        let u = resolve(r.path(), Some("www"), &[]).expect("www");
        assert_eq!((u.uid, u.gid, u.additional_gids.clone()), (33, 33, vec![4]));
        assert_eq!(u.home.as_deref(), Some("/var/www"));
        let u = resolve(r.path(), Some("www:staff"), &["adm".into()]).expect("www:staff");
        assert_eq!((u.uid, u.gid, u.additional_gids), (33, 50, vec![4]));
        let u = resolve(r.path(), Some("1000:1000"), &[]).expect("numeric");
        assert_eq!((u.uid, u.gid), (1000, 1000));
        let u = resolve(r.path(), None, &[]).expect("root");
        assert_eq!((u.uid, u.gid), (0, 0));
    }

    #[test]
    fn unknown_names_are_errors() {
        let r = rootfs();
        let e = resolve(r.path(), Some("nobody"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("user") && e.contains("nobody"), "{e}");
        assert!(resolve(r.path(), Some("www:nogroup"), &[]).is_err());
        assert!(resolve(r.path(), Some(":"), &[]).is_err());
        assert!(resolve(r.path(), Some("0"), &["nope".into()]).is_err());
    }

    #[test]
    fn symlink_out_of_rootfs_is_not_followed() {
        let r = rootfs();
        fs::remove_file(r.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", r.path().join("etc/passwd")).expect("ln");
        // Host's root exists, but must not be found through the link.
        assert!(resolve(r.path(), Some("root"), &[]).is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_rootfs() {
        let r = rootfs();
        let passwd = r.path().join("etc/passwd");
        fs::rename(&passwd, r.path().join("etc/passwd.real")).expect("mv");
        // Absolute and climbing links mean the container's files, never the host's.
        for target in ["/etc/passwd.real", "../../../../../../etc/passwd.real"] {
            let _ = fs::remove_file(&passwd);
            std::os::unix::fs::symlink(target, &passwd).expect("ln");
            let u = resolve(r.path(), Some("www"), &[]).expect(target);
            assert_eq!(u.uid, 33, "{target}");
        }
    }

    /// Replace the image's /etc/passwd with something hostile.
    fn hostile_passwd(make: impl FnOnce(&Path)) -> tempfile::TempDir {
        let r = rootfs();
        let passwd = r.path().join("etc/passwd");
        fs::remove_file(&passwd).expect("rm");
        make(&passwd);
        r
    }

    #[test]
    fn a_device_as_passwd_is_refused() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let r = hostile_passwd(|p| {
            // /dev/null: before the fix it read as an empty passwd.
            mknod(
                p,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(1, 3),
            )
            .expect("mknod");
        });
        let e = resolve(r.path(), None, &[])
            .expect_err("a device")
            .to_string();
        assert!(
            e.contains("/etc/passwd") && e.contains("a character device"),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_as_passwd_does_not_hang() {
        let r = hostile_passwd(|p| {
            nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .expect("mkfifo");
        });
        // A writer that answers a blocking reader (so the test fails rather
        // than hangs when the open blocks); left behind if nobody opens.
        let path = r.path().join("etc/passwd");
        std::thread::spawn(move || {
            use std::io::Write;
            if let Ok(mut f) = OpenOptions::new().write(true).open(&path) {
                let _ = f.write_all(b"root:x:0:0:root:/root:/bin/sh\n");
            }
        });
        let e = resolve(r.path(), None, &[])
            .expect_err("a FIFO")
            .to_string();
        assert!(e.contains("/etc/passwd") && e.contains("a FIFO"), "{e}");
    }

    #[test]
    fn a_huge_passwd_is_refused() {
        let r = hostile_passwd(|p| {
            let line = "u:x:1:1::/:/bin/sh\n";
            let lines = (MAX_DB_BYTES as usize) / line.len() + 1;
            fs::write(p, line.repeat(lines)).expect("write");
        });
        let e = resolve(r.path(), None, &[]).expect_err("huge").to_string();
        assert!(
            e.contains("/etc/passwd") && e.contains("larger than 4 MiB"),
            "{e}"
        );
        // The group file too.
        let r = rootfs();
        fs::write(r.path().join("etc/group"), "g:x:1:\n".repeat(1 << 20)).expect("write");
        let e = resolve(r.path(), None, &[]).expect_err("huge").to_string();
        assert!(e.contains("/etc/group"), "{e}");
    }
}

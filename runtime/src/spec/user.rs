//! `user` as Docker and ECS take it (`uid`, `uid:gid`, `name`, `name:group`),
//! resolved against the container's own /etc/passwd and /etc/group.

use std::fs;
use std::path::{Path, PathBuf};

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

/// Colon-separated records of a file inside the rootfs; a missing file is
/// empty. A symlink that leads out of the rootfs is refused rather than
/// followed onto the host.
fn read_db(rootfs: &Path, rel: &str) -> Result<Vec<Vec<String>>> {
    let path = rootfs.join(rel);
    let resolved = match scoped_canonical(rootfs, &path) {
        Some(p) => p,
        None => return Ok(Vec::new()),
    };
    let text = fs::read_to_string(&resolved)
        .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect())
}

fn scoped_canonical(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    let root = rootfs.canonicalize().ok()?;
    let real = path.canonicalize().ok()?;
    real.starts_with(&root).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! Writes the `unpack_layer` target's seed layers (busybox-like and hostile
//! ones) with rootfs-tools' test builders:
//! `cargo run --example unpack_seeds -- seeds/unpack_layer`.

use std::path::PathBuf;

use berth_rootfs::testing::{gzip, tar_of, Entry};
use tar::EntryType as T;

/// A regular file carrying PAX extended attributes (xattrs).
fn with_xattrs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.user.note", &b"hi"[..]),
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.security.capability", &b"\x01\x00\x00\x02"[..]),
    ])
    .expect("pax");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(T::Regular);
    h.set_mode(0o4755);
    h.set_size(2);
    h.set_cksum();
    b.append_data(&mut h, "bin/ping", &b"#!"[..])
        .expect("append");
    b.into_inner().expect("finish")
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: unpack_seeds DIR"));
    std::fs::create_dir_all(&dir).expect("create seed dir");
    let busybox: &[Entry] = &[
        (T::Directory, "bin/", "", b""),
        (T::Directory, "etc/", "", b""),
        (T::Regular, "bin/busybox", "", b"\x7fELF busybox"),
        (T::Symlink, "bin/sh", "busybox", b""),
        (T::Link, "bin/ls", "bin/busybox", b""),
        (
            T::Regular,
            "etc/passwd",
            "",
            b"root:x:0:0:root:/root:/bin/sh\n",
        ),
        (T::Symlink, "etc/mtab", "/proc/mounts", b""),
        (T::Fifo, "run.fifo", "", b""),
    ];
    let upper: &[Entry] = &[
        (T::Regular, "bin/.wh.ls", "", b""),
        (T::Directory, "etc/", "", b""),
        (T::Regular, "etc/.wh..wh..opq", "", b""),
        (T::Regular, "etc/hostname", "", b"box\n"),
    ];
    let hostile: &[(&str, &[Entry])] = &[
        ("dotdot", &[(T::Regular, "../../outside/bait", "", b"x")]),
        (
            "absolute",
            &[(T::Regular, "/tmp/berth-fuzz-absolute", "", b"x")],
        ),
        (
            "symlink-then-write",
            &[
                (T::Symlink, "esc", "../../outside", b""),
                (T::Regular, "esc/bait", "", b"x"),
            ],
        ),
        (
            "dir-then-symlink",
            &[
                (T::Directory, "d/", "", b""),
                (T::Symlink, "d", "../../outside", b""),
            ],
        ),
        (
            "hardlink-out",
            &[(T::Link, "bait", "../../outside/bait", b"")],
        ),
        (
            "symlink-then-hardlink",
            &[
                (T::Symlink, "o", "../../outside", b""),
                (T::Link, "bait", "o/bait", b""),
            ],
        ),
        (
            "devices",
            &[
                (T::Char, "dev/null", "", b""),
                (T::Block, "dev/sda", "", b""),
            ],
        ),
        ("whiteout-escape", &[(T::Regular, "x/.wh...", "", b"")]),
    ];
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    let base = tar_of(busybox);
    write("busybox.tar", &base);
    write("busybox.tar.gz", &gzip(&base));
    write(
        "busybox.tar.zst",
        &zstd::encode_all(&base[..], 1).expect("zstd"),
    );
    write("upper.tar", &tar_of(upper));
    write("xattrs.tar", &with_xattrs());
    for (name, entries) in hostile {
        write(&format!("hostile-{name}.tar"), &tar_of(entries));
    }
    write("hostile-gzip-truncated", &gzip(&base)[..40]);
}

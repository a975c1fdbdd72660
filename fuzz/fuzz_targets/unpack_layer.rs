//! Layer unpacking of arbitrary bytes (plain, gzip or zstd tar), under
//! small limits so that small inputs reach them: never a panic; nothing
//! written, removed or changed outside the layer's directory; a refused
//! layer leaves nothing behind; an accepted layer stays within the limits;
//! an accepted plain tar's diff id is the digest of its bytes.

#![no_main]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_rootfs::limits::UnpackLimits;
use berth_rootfs::unpack::{unpack_layer_with_limits, LayerContext};
use berth_rootfs::Digest;

const LIMITS: UnpackLimits = UnpackLimits {
    max_layer_bytes: 1 << 20,
    max_entries: 64,
    max_path_bytes: 256,
    max_pax_bytes: 4096,
    max_dir_bytes: 4096,
};

/// What an accepted layer holds: (bytes of distinct regular files, longest
/// path or link target under the layer).
fn measure(dir: &Path, rel: &str, seen: &mut BTreeSet<(u64, u64)>) -> (u64, usize) {
    let (mut bytes, mut longest) = (0, rel.len());
    for entry in fs::read_dir(dir).expect("read layer dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let m = fs::symlink_metadata(entry.path()).expect("stat");
        if m.is_dir() {
            let (b, l) = measure(&entry.path(), &child, seen);
            bytes += b;
            longest = longest.max(l);
        } else {
            if m.file_type().is_symlink() {
                let target = fs::read_link(entry.path()).expect("read link");
                longest = longest.max(target.as_os_str().len());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                bytes += m.len();
            }
            longest = longest.max(child.len());
        }
    }
    (bytes, longest)
}
use libfuzzer_sys::fuzz_target;

/// What the layer could reach if it escaped: a directory and a file beside
/// the layer's parent, with modes and times no layer would give them.
fn plant_bait(outside: &Path) {
    fs::create_dir(outside).expect("create bait dir");
    fs::write(outside.join("bait"), b"bait").expect("write bait");
    fs::set_permissions(outside.join("bait"), fs::Permissions::from_mode(0o640))
        .expect("chmod bait");
    fs::set_permissions(outside, fs::Permissions::from_mode(0o710)).expect("chmod bait dir");
}

/// Everything a write, chmod, chown or utimes through an escape would change.
fn fingerprint(path: &Path) -> Vec<(String, u32, u32, u32, i64, i64, u64)> {
    let mut out = Vec::new();
    for p in [path.to_path_buf(), path.join("bait")] {
        let m = fs::symlink_metadata(&p).expect("bait is still there");
        out.push((
            p.display().to_string(),
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec(),
            m.len(),
        ));
    }
    let names: Vec<String> = fs::read_dir(path)
        .expect("read bait dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.push((names.join(","), 0, 0, 0, 0, 0, 0));
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

fuzz_target!(|data: &[u8]| {
    let scratch = tempfile::Builder::new()
        .prefix("berth-fuzz-unpack-")
        .tempdir()
        .expect("tempdir");
    // scratch/outside: bait; scratch/box/layer: the layer.
    let outside = scratch.path().join("outside");
    plant_bait(&outside);
    let before = fingerprint(&outside);
    let parent = scratch.path().join("box");
    fs::create_dir(&parent).expect("create box");
    let dest = parent.join("layer");
    let digest = Digest::of(data);
    let ctx = LayerContext {
        image: "fuzz:latest",
        layer: &digest,
    };

    let result = unpack_layer_with_limits(data, &dest, ctx, &LIMITS);

    assert_eq!(
        fingerprint(&outside),
        before,
        "the bait beside the layer changed"
    );
    assert_eq!(
        names(scratch.path()),
        ["box", "outside"],
        "a file appeared beside the box"
    );
    match &result {
        Ok(diff_id) => {
            assert_eq!(names(&parent), ["layer"], "only the layer is in its parent");
            let (bytes, longest) = measure(&dest, "", &mut BTreeSet::new());
            assert!(bytes <= LIMITS.max_layer_bytes, "{bytes} bytes unpacked");
            assert!(
                longest <= LIMITS.max_path_bytes,
                "a path of {longest} bytes"
            );
            let plain =
                !data.starts_with(&[0x1f, 0x8b]) && !data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
            if plain {
                assert_eq!(diff_id, &digest, "a plain tar's diff id is its digest");
            }
        }
        Err(e) => {
            assert!(
                names(&parent).is_empty(),
                "a refused layer left {:?}: {e}",
                names(&parent)
            );
            let message = e.to_string();
            assert!(
                message.contains("fuzz:latest"),
                "the error names the image: {message}"
            );
        }
    }
});

//! Images end to end: build, import, export, pull, overlay and copy root
//! filesystems, removal and pruning, and bad input of every kind.

use std::process::Stdio;

use berth_tests::oci::{self, tar_of, FakeRegistry, ImageBlobs, Registry, Reply};
use berth_tests::{assert_ok, parse_json, stderr, stdout, World};
use tar::EntryType as T;

#[test]
fn build_rootfs_and_run_on_overlay() {
    let w = World::new("img-run");
    w.busybox_image(
        "busybox:latest",
        &["--cmd", "sh -c 'echo from-cmd'", "--env", "GREETING=hi"],
    );
    let out = w.run(
        &["--image", "busybox"],
        &["sh", "-c", "echo $GREETING; touch /made-here"],
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "hi\n");

    w.run_detached("one", &["--image", "busybox"], &["sleep", "60"]);
    w.run_detached("two", &["--image", "busybox"], &["sleep", "60"]);
    let mounts = w.mounts();
    assert_eq!(mounts.len(), 2, "one overlay per container: {mounts:?}");
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(info.lines().filter(|l| l.contains(" overlay ")).count() >= 2);
    // The second container reused the unpacked layer.
    let inspect = parse_json(&w.berth(&["image", "inspect", "busybox"]));
    assert_eq!(inspect["layersUnpacked"], serde_json::json!([true]));
    assert_eq!(inspect["snapshotter"], "overlay");
    // A write in one container is not seen by the other.
    assert_ok(&w.berth(&["runtime", "exec", "one", "--", "touch", "/only-one"]));
    let out = w.berth(&["runtime", "exec", "two", "--", "ls", "/only-one"]);
    assert!(!out.status.success());
    w.delete_force("one");
    w.delete_force("two");
    w.assert_clean();
}

#[test]
fn image_config_gives_the_defaults() {
    let w = World::new("img-config");
    w.busybox_image(
        "localhost/app:1",
        &[
            "--entrypoint",
            r#"["sh","-c"]"#,
            "--cmd",
            r#"["echo cmd $A $(pwd) $(id -u)"]"#,
            "--env",
            "A=from-image",
            "--workdir",
            "/tmp",
            "--user",
            "app",
            "--stop-signal",
            "SIGUSR1",
        ],
    );
    let out = w.run(&["--image", "localhost/app:1"], &[]);
    assert_eq!(
        stdout(&out),
        "cmd from-image /tmp 1000\n",
        "{}",
        stderr(&out)
    );
    // ECS: command replaces Cmd; entryPoint replaces Entrypoint.
    let out = w.run(
        &["--image", "localhost/app:1", "--env", "A=mine"],
        &["echo over $A"],
    );
    assert_eq!(stdout(&out), "over mine\n");
    let out = w.run(
        &["--image", "localhost/app:1", "--entrypoint", "echo"],
        &["plain"],
    );
    assert_eq!(stdout(&out), "plain\n");
    let state = w.run_detached("sig", &["--image", "localhost/app:1"], &["sleep 60"]);
    assert_eq!(state["stopSignal"], "SIGUSR1");
    w.delete_force("sig");
    w.assert_clean();
}

/// Two layers: the upper deletes a file and makes a directory opaque.
fn layered_image() -> ImageBlobs {
    let base = tar_of(&[
        (T::Directory, "etc/", "", b""),
        (T::Regular, "etc/gone", "", b"x"),
        (T::Regular, "etc/kept", "", b"kept\n"),
        (T::Directory, "opaque/", "", b""),
        (T::Regular, "opaque/old", "", b"old"),
    ]);
    let upper = tar_of(&[
        (T::Regular, "etc/.wh.gone", "", b""),
        (T::Directory, "opaque/", "", b""),
        (T::Regular, "opaque/.wh..wh..opq", "", b""),
        (T::Regular, "opaque/new", "", b"new"),
    ]);
    ImageBlobs::new(&[base, upper], &["/bin/busybox", "sh"])
}

fn check_whiteouts(w: &World, env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("dir");
    layered_image().write_layout(dir.path(), "layered");
    let src = format!("oci:{}", dir.path().display());
    assert_ok(&w.berth(&["image", "import", &src, "--tag", "localhost/layered:1"]));
    // The layers hold no shell: busybox comes in through a bind mount.
    let busybox = w.rootfs().join("bin/busybox").display().to_string();
    let mut cmd = w.command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(w.run_args(
            &[
                "--image",
                "localhost/layered:1",
                "--volume",
                &format!("{busybox}:/bin/busybox:ro"),
            ],
            &[
                "/bin/busybox",
                "sh",
                "-c",
                "/bin/busybox ls /etc /opaque; /bin/busybox cat /etc/kept",
            ],
        ))
        .output()
        .expect("berth");
    assert_ok(&out);
    assert_eq!(stdout(&out), "/etc:\nkept\n\n/opaque:\nnew\nkept\n");
}

#[test]
fn whiteouts_apply_on_overlay() {
    let w = World::new("img-wh-overlay");
    check_whiteouts(&w, &[]);
    w.assert_clean();
}

#[test]
fn whiteouts_apply_on_the_copy_fallback() {
    let w = World::new("img-wh-copy");
    check_whiteouts(&w, &[("BERTH_SNAPSHOTTER", "copy")]);
    w.assert_clean();
}

#[test]
fn import_formats_and_export() {
    let w = World::new("img-import");
    w.busybox_image("busybox:latest", &["--cmd", "echo imported"]);
    let dir = tempfile::tempdir().expect("dir");
    let layout = dir.path().join("layout");
    let dest = format!("oci:{}:v1", layout.display());
    assert_ok(&w.berth(&["image", "export", "busybox", &dest]));

    // oci:DIR:TAG under another name.
    assert_ok(&w.berth(&["image", "import", &dest, "--tag", "localhost/a:1"]));
    // oci-archive:FILE
    let archive = dir.path().join("image.tar");
    oci::tar_dir(&layout, &archive);
    let out = w.berth(&[
        "image",
        "import",
        &format!("oci-archive:{}:v1", archive.display()),
        "--tag",
        "localhost/b:1",
    ]);
    assert_ok(&out);
    // docker-archive:FILE, as `docker save` writes it.
    let docker = dir.path().join("docker.tar");
    write_docker_archive(&w, &docker);
    let out = w.berth(&[
        "image",
        "import",
        &format!("docker-archive:{}", docker.display()),
    ]);
    assert_ok(&out);
    assert_eq!(
        parse_json(&out)["images"][0]["name"],
        "docker.io/library/saved:2"
    );

    for name in ["localhost/a:1", "localhost/b:1", "saved:2"] {
        let out = w.run(&["--image", name], &[]);
        assert_eq!(stdout(&out), "imported\n", "{name}: {}", stderr(&out));
    }
    let list = parse_json(&w.berth(&["image", "ls"]));
    assert_eq!(list["images"].as_array().map(Vec::len), Some(4));
    w.assert_clean();
}

/// A docker-archive of the busybox rootfs: manifest.json, config, layer.tar.
fn write_docker_archive(w: &World, path: &std::path::Path) {
    let mut layer = tar::Builder::new(Vec::new());
    layer.follow_symlinks(false);
    layer.append_dir_all(".", w.rootfs()).expect("layer");
    let layer = layer.into_inner().expect("layer");
    let diff_id = berth_rootfs::Digest::of(&layer).to_string();
    let config = serde_json::json!({
        "architecture": berth_rootfs::image::Platform::host().architecture,
        "os": "linux",
        "config": { "Cmd": ["echo", "imported"], "Env": ["PATH=/bin"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
    .to_string();
    let config_name = format!("{}.json", berth_rootfs::Digest::of(config.as_bytes()).hex());
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": ["saved:2"], "Layers": ["abc/layer.tar"],
    }])
    .to_string();
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("archive"));
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        (config_name.as_str(), config.as_bytes()),
        ("abc/layer.tar", &layer[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("entry");
    }
    b.finish().expect("finish");
}

#[test]
fn rm_is_refused_in_use_and_prune_frees() {
    let w = World::new("img-prune");
    w.busybox_image("busybox:latest", &[]);
    w.run_detached("user", &["--image", "busybox"], &["sleep", "60"]);
    let out = w.berth(&["image", "rm", "busybox"]);
    assert!(
        stderr(&out).contains("used by container(s) user"),
        "{}",
        stderr(&out)
    );
    // Pruning keeps what a running container uses.
    let report = parse_json(&w.berth(&["image", "prune"]));
    assert_eq!(report["layersRemoved"], 0, "{report}");
    w.delete_force("user");
    assert_ok(&w.berth(&["image", "rm", "busybox"]));
    let report = parse_json(&w.berth(&["image", "prune"]));
    assert_eq!(report["blobsRemoved"], 3, "{report}");
    assert_eq!(report["layersRemoved"], 1, "{report}");
    let blobs = w.root.path().join("images/blobs/sha256");
    assert_eq!(std::fs::read_dir(blobs).expect("blobs").count(), 0);
    let out = w.berth(&["image", "rm", "busybox"]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    w.assert_clean();
}

/// A real registry holding the busybox image (whose Cmd is `cmd`) as
/// `repo`; with `user`, behind basic auth.
fn registry_with_busybox(w: &World, cmd: &str, repo: &str, user: Option<(&str, &str)>) -> Registry {
    w.busybox_image("busybox:latest", &["--cmd", cmd]);
    let dir = tempfile::tempdir().expect("dir");
    let dest = format!("oci:{}:latest", dir.path().display());
    assert_ok(&w.berth(&["image", "export", "busybox", &dest]));
    let registry = Registry::start(user);
    let creds = user.map(|(u, p)| format!("{u}:{p}"));
    registry.push(dir.path(), repo, creds.as_deref());
    assert_ok(&w.berth(&["image", "rm", "busybox"]));
    assert_ok(&w.berth(&["image", "prune"]));
    registry
}

#[test]
fn pull_from_a_local_registry() {
    let w = World::new("img-pull");
    let registry = registry_with_busybox(&w, "echo pulled", "lab/busybox:latest", None);
    let name = format!("{}/lab/busybox", registry.addr);
    let out = w.berth(&[
        "image",
        "pull",
        "--insecure-registry",
        &registry.addr,
        &name,
    ]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["name"], format!("{name}:latest"));
    let blobs_before = std::fs::read_dir(w.root.path().join("images/blobs/sha256"))
        .expect("blobs")
        .count();
    // Present blobs are not fetched again (the registry may even be gone).
    drop(registry);
    let out = w.run(&["--image", &name], &[]);
    assert_eq!(stdout(&out), "pulled\n", "{}", stderr(&out));
    let out = w.run(&["--image", &name, "--pull", "always"], &[]);
    assert!(
        !out.status.success(),
        "--pull always asks the registry, which is gone"
    );
    let blobs_after = std::fs::read_dir(w.root.path().join("images/blobs/sha256"))
        .expect("blobs")
        .count();
    assert_eq!(blobs_before, blobs_after);
    // --pull never with a missing image fails without asking.
    let out = w.run(
        &["--image", "localhost/absent:1", "--pull", "never"],
        &["true"],
    );
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    w.assert_clean();
}

#[test]
fn pull_with_basic_auth() {
    let w = World::new("img-auth");
    let registry = registry_with_busybox(
        &w,
        "echo authed",
        "private/bb:latest",
        Some(("alice", "s3cret")),
    );
    let name = format!("{}/private/bb", registry.addr);

    let out = w.berth(&[
        "image",
        "pull",
        "--insecure-registry",
        &registry.addr,
        &name,
    ]);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(stderr(&out).contains("credentials"), "{}", stderr(&out));

    let mut child = w
        .command()
        .args([
            "image",
            "pull",
            "--insecure-registry",
            &registry.addr,
            "--username",
            "alice",
            "--password-stdin",
            &name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret\n")
        .expect("password");
    let out = child.wait_with_output().expect("wait");
    assert_ok(&out);

    // Credentials from ~/.docker/config.json, as docker login leaves them.
    assert_ok(&w.berth(&["image", "rm", &name]));
    assert_ok(&w.berth(&["image", "prune"]));
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir(home.path().join(".docker")).expect("mkdir");
    let auth = "YWxpY2U6czNjcmV0"; // alice:s3cret
    std::fs::write(
        home.path().join(".docker/config.json"),
        serde_json::json!({ "auths": { registry.addr.clone(): { "auth": auth } } }).to_string(),
    )
    .expect("config");
    let out = w
        .command()
        .env("HOME", home.path())
        .args([
            "image",
            "pull",
            "--insecure-registry",
            &registry.addr,
            &name,
        ])
        .output()
        .expect("berth");
    assert_ok(&out);
    let out = w.run(&["--image", &name], &[]);
    assert_eq!(stdout(&out), "authed\n");
    w.assert_clean();
}

/// Every blob in the store is whole: its content has the digest it is
/// filed under. (Verified blobs of a failed pull may stay, as in
/// containerd, so that a retry need not fetch them again.)
fn assert_store_verified(w: &World) {
    for entry in std::fs::read_dir(w.root.path().join("images/blobs/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let bytes = std::fs::read(entry.path()).expect("blob");
        assert_eq!(
            berth_rootfs::Digest::of(&bytes).hex(),
            entry.file_name().to_string_lossy(),
            "blob {} is not what its name says",
            entry.path().display()
        );
    }
}

#[track_caller]
fn pull_fails(w: &World, registry: &FakeRegistry, needle: &str) {
    let name = format!("{}/bad/img", registry.addr);
    let out = w.berth(&[
        "image",
        "pull",
        "--insecure-registry",
        &registry.addr,
        &name,
    ]);
    assert!(!out.status.success(), "pull should fail");
    let err = stderr(&out);
    assert!(err.contains(needle), "error should say {needle:?}: {err}");
    assert!(err.contains("bad/img"), "error names the image: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_store_verified(w);
    let ingest = w.root.path().join("images/ingest");
    assert_eq!(std::fs::read_dir(ingest).map_or(0, |d| d.count()), 0);
    let refs = parse_json(&w.berth(&["image", "ls"]));
    assert_eq!(refs["images"], serde_json::json!([]));
}

fn simple_image() -> ImageBlobs {
    ImageBlobs::new(
        &[tar_of(&[(T::Regular, "hello", "", b"hello\n")])],
        &["/hello"],
    )
}

#[test]
fn registry_failures_are_clear_and_leave_nothing() {
    let w = World::new("img-registry-bad");
    let image = simple_image();
    let layer = berth_rootfs::Digest::of(&image.layers[0].0);
    let layer_path = |r: &str| format!("/v2/{r}/blobs/{layer}");

    let reg = FakeRegistry::serving("bad/img", &image, |routes| {
        routes.insert("/v2/bad/img/manifests/latest".into(), Reply::status(500));
    });
    pull_fails(&w, &reg, "500");

    let reg = FakeRegistry::serving("bad/img", &image, |routes| {
        routes.insert("/v2/bad/img/manifests/latest".into(), Reply::status(404));
    });
    pull_fails(&w, &reg, "manifest unknown");

    let reg = FakeRegistry::serving("bad/img", &image, |routes| {
        routes.insert("/v2/bad/img/manifests/latest".into(), Reply::status(401));
    });
    pull_fails(&w, &reg, "401");

    // A layer whose bytes are not what its digest says.
    let reg = FakeRegistry::serving("bad/img", &image, |routes| {
        let mut wrong = image.layers[0].0.clone();
        wrong[20] ^= 0xff;
        routes.insert(
            layer_path("bad/img"),
            Reply::ok("application/octet-stream", wrong),
        );
    });
    pull_fails(&w, &reg, "digest");

    // A truncated layer.
    let reg = FakeRegistry::serving("bad/img", &image, |routes| {
        let mut reply = Reply::ok("application/octet-stream", image.layers[0].0.clone());
        reply.truncate_to = Some(10);
        routes.insert(layer_path("bad/img"), reply);
    });
    pull_fails(&w, &reg, "blob");

    // A manifest of a media type berth does not know.
    let mut odd = simple_image();
    odd.rewrite_manifest("application/vnd.example.unknown+json");
    let reg = FakeRegistry::serving("bad/img", &odd, |_| {});
    pull_fails(&w, &reg, "application/vnd.example.unknown+json");

    // Nothing listening at all.
    let out = w.berth(&[
        "image",
        "pull",
        "--insecure-registry",
        "127.0.0.1:9",
        "127.0.0.1:9/bad/img",
    ]);
    assert!(stderr(&out).contains("bad/img"), "{}", stderr(&out));
    w.assert_clean();
}

#[track_caller]
fn import_fails(w: &World, source: &str, needle: &str) {
    let out = w.berth(&["image", "import", source, "--tag", "localhost/bad:1"]);
    assert!(!out.status.success(), "{source} should fail");
    let err = stderr(&out);
    assert!(err.contains(needle), "error should say {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let refs = parse_json(&w.berth(&["image", "ls"]));
    assert_eq!(refs["images"], serde_json::json!([]), "no image is named");
}

#[test]
fn bad_images_are_refused() {
    let w = World::new("img-bad");
    let dir = tempfile::tempdir().expect("dir");

    // A blob whose content does not match its name.
    let layout = dir.path().join("mismatch");
    let image = simple_image();
    image.write_layout(&layout, "x");
    let layer = berth_rootfs::Digest::of(&image.layers[0].0);
    std::fs::write(
        layout.join("blobs/sha256").join(layer.hex()),
        b"not the layer",
    )
    .expect("write");
    import_fails(
        &w,
        &format!("oci:{}", layout.display()),
        "corrupt or truncated",
    );

    // A truncated blob: right prefix, short.
    let layout = dir.path().join("truncated");
    image.write_layout(&layout, "x");
    let blob = layout.join("blobs/sha256").join(layer.hex());
    let bytes = std::fs::read(&blob).expect("read");
    std::fs::write(&blob, &bytes[..bytes.len() / 2]).expect("write");
    import_fails(&w, &format!("oci:{}", layout.display()), "blob");

    // An unknown manifest media type.
    let layout = dir.path().join("odd");
    let mut odd = simple_image();
    odd.rewrite_manifest("application/vnd.example.unknown+json");
    odd.write_layout(&layout, "x");
    import_fails(&w, &format!("oci:{}", layout.display()), "unknown+json");

    // An archive that is not an image.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, oci::tar_of(&[(T::Regular, "readme", "", b"hi")])).expect("write");
    import_fails(
        &w,
        &format!("oci-archive:{}", junk.display()),
        "not an OCI image layout",
    );
    import_fails(
        &w,
        &format!("docker-archive:{}", junk.display()),
        "not a docker archive",
    );
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x42u8; 4000]).expect("write");
    import_fails(
        &w,
        &format!("oci-archive:{}", garbage.display()),
        "garbage.tar",
    );
    import_fails(&w, "floppy:/dev/fd0", "oci:DIR");
    import_fails(
        &w,
        &format!("oci:{}", dir.path().join("absent").display()),
        "absent",
    );
    assert_ok(&w.berth(&["image", "prune"]));
    w.assert_clean();
}

/// Import an image of `tar` and run it: the layer must be refused.
#[track_caller]
fn layer_refused(w: &World, name: &str, tar: Vec<u8>, needle: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let image = ImageBlobs::new(&[tar], &["/x"]);
    image.write_layout(dir.path(), "x");
    let tag = format!("localhost/{name}:1");
    assert_ok(&w.berth(&[
        "image",
        "import",
        &format!("oci:{}", dir.path().display()),
        "--tag",
        &tag,
    ]));
    let out = w.run(&["--image", &tag], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(needle),
        "{name}: error should say {needle:?}: {err}"
    );
    assert!(err.contains(&tag), "{name}: error names the image: {err}");
    let layers = w.root.path().join("images/layers/sha256");
    let left: Vec<_> = std::fs::read_dir(&layers)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{name}: partial layer left: {left:?}");
}

#[test]
fn hostile_layers_never_write_outside() {
    let w = World::new("img-hostile");
    let canary = std::path::Path::new("/tmp/berth-hostile-canary");
    let _ = std::fs::remove_file(canary);
    layer_refused(
        &w,
        "dotdot",
        tar_of(&[(T::Regular, "../../../../tmp/berth-hostile-canary", "", b"x")]),
        "'..'",
    );
    layer_refused(
        &w,
        "absolute",
        tar_of(&[(T::Regular, "/tmp/berth-hostile-canary", "", b"x")]),
        "absolute",
    );
    layer_refused(
        &w,
        "symlink",
        tar_of(&[
            (T::Symlink, "tmp", "/tmp", b""),
            (T::Regular, "tmp/berth-hostile-canary", "", b"x"),
        ]),
        "symlink tmp",
    );
    layer_refused(
        &w,
        "hardlink",
        tar_of(&[(T::Link, "passwd", "/etc/passwd", b"")]),
        "outside the layer",
    );
    layer_refused(
        &w,
        "corrupt",
        {
            // Named and digested right, but the tar inside ends mid-file.
            let mut t = tar_of(&[(T::Regular, "big", "", &[7u8; 50_000])]);
            t.truncate(600);
            t
        },
        "corrupt or truncated",
    );
    assert!(
        !canary.exists(),
        "a hostile layer wrote outside its directory"
    );
    w.assert_clean();
}

/// A hostile image: a node of the host's root disk, memory and null
/// devices, and a setuid-root file. No device node is made (in the store
/// or the container), a node the container makes is unusable (the overlay
/// is nodev), setuid still works inside, and no local user reaches the
/// store.
#[test]
fn hostile_image_security_devices_are_unusable_and_the_store_is_private() {
    use berth_rootfs::testing::{archive, device, file, header};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;

    let w = World::new("img-hostile");
    let root_dev = std::fs::metadata("/").expect("stat /").dev();
    let (major, minor) = (libc::major(root_dev), libc::minor(root_dev));
    let tar = archive(&[
        (header(T::Directory, "hostile/", 0), b""),
        (device(T::Block, "hostile/disk", major, minor, 0o666), b""),
        (device(T::Char, "hostile/mem", 1, 1, 0o666), b""),
        (device(T::Char, "hostile/null", 1, 3, 0o666), b""),
        (
            file("hostile/suid", b"#!/bin/busybox sh\n", 0o4755, 0),
            b"#!/bin/busybox sh\n",
        ),
        (header(T::Directory, "tmp/", 0), b""),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let image = ImageBlobs::new(&[tar], &["/bin/busybox", "sh"]);
    image.write_layout(dir.path(), "hostile");
    let src = format!("oci:{}", dir.path().display());
    assert_ok(&w.berth(&["image", "import", &src, "--tag", "localhost/hostile:1"]));
    let busybox = w.rootfs().join("bin/busybox").display().to_string();
    let script = "cd /hostile; /bin/busybox ls -a .; /bin/busybox stat -c '%a %u' suid; \
                  /bin/busybox awk '$5 == \"/\" { print $6 }' /proc/self/mountinfo; \
                  /bin/busybox mknod /tmp/null c 1 3 && \
                  { echo x > /tmp/null && echo made-node-works || echo made-node-unusable; }";
    let out = w.run(
        &[
            "--image",
            "localhost/hostile:1",
            "--volume",
            &format!("{busybox}:/bin/busybox:ro"),
        ],
        &["/bin/busybox", "sh", "-c", script],
    );
    assert_ok(&out);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[..4], [".", "..", "suid", "4755 0"], "{lines:?}");
    let root_options = &lines[4];
    assert!(
        root_options.contains("nodev") && !root_options.contains("nosuid"),
        "root mount: {root_options}"
    );
    assert_eq!(lines[5], "made-node-unusable", "{}", stderr(&out));

    // The store: no node in the unpacked layer, every directory root's.
    let store = w.root.path().join("images");
    let layer_digest = berth_rootfs::Digest::of(&image.layers[0].0);
    let layer = store.join("layers/sha256").join(layer_digest.hex());
    for node in ["disk", "mem", "null"] {
        assert!(
            std::fs::symlink_metadata(layer.join("hostile").join(node)).is_err(),
            "{node} in the unpacked layer"
        );
    }
    for sub in berth_rootfs::store::PRIVATE_DIRS {
        let mode = std::fs::metadata(store.join(sub))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700, "images/{sub}");
    }
    // A local user cannot reach the setuid file.
    let suid = layer.join("hostile/suid");
    assert_eq!(
        std::fs::metadata(&suid).expect("suid").mode() & 0o7777,
        0o4755
    );
    let out = std::process::Command::new("stat")
        .arg(&suid)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("stat as nobody");
    assert!(
        !out.status.success() && stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    w.assert_clean();
}

/// Unpacking limits come from the environment of the berth that unpacks:
/// a layer over one is refused, naming the layer and the variable, and
/// leaves nothing in the store; a bad value is an error naming it.
#[test]
fn hostile_layer_over_a_limit_is_refused_and_leaves_nothing() {
    let w = World::new("img-limits");
    let dir = tempfile::tempdir().expect("dir");
    let image = ImageBlobs::new(&[berth_rootfs::testing::many_files(3)], &["/x"]);
    image.write_layout(dir.path(), "many");
    let src = format!("oci:{}", dir.path().display());
    assert_ok(&w.berth(&["image", "import", &src, "--tag", "localhost/many:1"]));
    let layer = berth_rootfs::Digest::of(&image.layers[0].0).to_string();
    let run = |var: &str, value: &str| {
        w.command()
            .env(var, value)
            .args(w.run_args(&["--image", "localhost/many:1"], &[]))
            .output()
            .expect("berth")
    };
    let out = run("BERTH_MAX_LAYER_ENTRIES", "2");
    assert!(!out.status.success());
    let err = stderr(&out);
    for needle in [
        "localhost/many:1",
        layer.as_str(),
        "more entries than allowed (limit 2;",
        "BERTH_MAX_LAYER_ENTRIES",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
    let left: Vec<_> = std::fs::read_dir(w.root.path().join("images/layers/sha256"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "partial layer left: {left:?}");

    let out = run("BERTH_MAX_LAYER_BYTES", "lots");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("BERTH_MAX_LAYER_BYTES=\"lots\""),
        "{}",
        stderr(&out)
    );
    w.assert_clean();
}

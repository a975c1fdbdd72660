#!/usr/bin/env python3
"""make bench (images): unpack of a 3-layer Debian minbase image with berth,
umoci and plain `tar -x`, and pull throughput from a local registry with
berth and skopeo, side by side in one run."""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BERTH = os.environ["BERTH"]
LAYERS = os.environ["LAYERS"]
RUNS = int(os.environ.get("BENCH_IMAGE_RUNS", "5"))
NAME = "bench/debian:1"


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def berth(root, *args, capture=False):
    out = subprocess.run([BERTH, "--root", root, *args], check=True,
                         stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
    return json.loads(out.stdout) if capture else None


def timed(prepare, action, n=RUNS):
    xs = []
    for _ in range(n):
        prepare()
        start = time.perf_counter()
        action()
        xs.append(time.perf_counter() - start)
    return statistics.median(xs)


def start_registry(work):
    data = os.path.join(work, "registry")
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write(f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
http:
  addr: 127.0.0.1:0
  secret: berth-bench
  draintimeout: 1s
""")
    log = open(os.path.join(work, "registry.log"), "w+")
    proc = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 20
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", log.read())
        if m:
            return proc, m.group(1)
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("docker-registry did not start")


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-images-")
    registry = None
    try:
        root = os.path.join(work, "root")
        layers = [os.path.join(LAYERS, f"layer{i}") for i in (1, 2, 3)]
        berth(root, "image", "build-rootfs", *layers, "--tag", NAME, "--cmd", "/bin/sh")
        layout = os.path.join(work, "layout")
        berth(root, "image", "export", NAME, f"oci:{layout}:1")
        manifest = berth(root, "image", "inspect", NAME, capture=True)["manifest"]
        blobs = [os.path.join(layout, "blobs/sha256", l["digest"].split(":")[1]) for l in manifest["layers"]]
        total = sum(l["size"] for l in manifest["layers"])
        unpacked_dir = os.path.join(root, "images/layers/sha256")

        def clear_berth():
            for d in os.listdir(unpacked_dir):
                shutil.rmtree(os.path.join(unpacked_dir, d))
        t_berth = timed(clear_berth, lambda: berth(root, "image", "unpack", NAME))

        bundle = os.path.join(work, "bundle")
        t_umoci = None
        if shutil.which("umoci"):
            t_umoci = timed(lambda: shutil.rmtree(bundle, ignore_errors=True),
                            lambda: run("umoci", "unpack", "--image", f"{layout}:1", bundle))
        out = os.path.join(work, "tar-out")

        def tar_all():
            os.makedirs(out)
            for blob in blobs:
                run("tar", "-xzf", blob, "-C", out)
        t_tar = timed(lambda: shutil.rmtree(out, ignore_errors=True), tar_all)

        registry, addr = start_registry(work)
        run("skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
            f"oci:{layout}:1", f"docker://{addr}/{NAME}")
        pull_root = os.path.join(work, "pull-root")
        t_pull = timed(lambda: shutil.rmtree(pull_root, ignore_errors=True),
                       lambda: berth(pull_root, "image", "pull", "--insecure-registry", addr, f"{addr}/{NAME}"))
        skopeo_dir = os.path.join(work, "skopeo-dir")
        t_skopeo = timed(lambda: shutil.rmtree(skopeo_dir, ignore_errors=True),
                         lambda: run("skopeo", "copy", "-q", "--src-tls-verify=false",
                                     f"docker://{addr}/{NAME}", f"dir:{skopeo_dir}"))
    finally:
        if registry:
            registry.terminate()
            registry.wait()
        shutil.rmtree(work, ignore_errors=True)

    mib = total / (1 << 20)
    print(f"\nunpack of a 3-layer Debian minbase image ({mib:.1f} MiB gzip), median of {RUNS} (s)")
    print(f"{'tool':<8} {'seconds':>8} {'vs berth':>9}")
    rows = [("berth", t_berth), ("umoci", t_umoci), ("tar -x", t_tar)]
    for name, t in rows:
        if t is not None:
            print(f"{name:<8} {t:8.3f} {t / t_berth:8.2f}x")
    if t_umoci:
        print(f"goal: berth unpack >= 2x faster than umoci: {'met' if t_umoci / t_berth >= 2 else 'not met'} ({t_umoci / t_berth:.2f}x)")
    print(f"\npull from a local registry, median of {RUNS}")
    print(f"{'tool':<8} {'seconds':>8} {'MiB/s':>8}")
    for name, t in [("berth", t_pull), ("skopeo", t_skopeo)]:
        print(f"{name:<8} {t:8.3f} {mib / t:8.1f}")
    print(f"goal: berth pull within 1.2x of skopeo: {'met' if t_pull <= 1.2 * t_skopeo else 'not met'} ({t_pull / t_skopeo:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())

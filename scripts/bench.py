#!/usr/bin/env python3
"""make bench: create+start+wait+delete of /bin/true with berth, runc and
crun on the same bundle, side by side; and the monitor's memory per running
container."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
RUNS = int(os.environ.get("BENCH_RUNS", "50"))
PARENT = f"berth-bench-{os.getpid()}"


def berth(root, *args, **kw):
    return subprocess.run([BERTH, "--root", root, *args], check=True, **kw)


def make_bundle(root, work):
    """berth's own spec for /bin/true, made into a plain OCI bundle."""
    berth(root, "runtime", "run", "--keep", "--id", "tmpl", "--rootfs", ROOTFS,
          "--cgroup-parent", PARENT, "--", "/bin/true")
    src = os.path.join(root, "run", "containers", "tmpl", "bundle", "config.json")
    with open(src) as f:
        config = json.load(f)
    berth(root, "runtime", "delete", "tmpl")
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def timed(cmds_for, n):
    """Time n runs; cmds_for(i) gives the command lines of one run."""
    samples = []
    for i in range(n):
        start = time.perf_counter()
        for cmd in cmds_for(i):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def set_cgroup_path(bundle, path):
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["linux"]["cgroupsPath"] = path
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)


def monitor_rss(root, count=5):
    """Start `count` sleeping containers; (RSS, PSS, private) KiB of each
    monitor. RSS counts the berth binary's and libc's pages that all
    monitors share; private memory is what one more container costs."""
    rss = []
    pids = []
    ids = [f"rss{i}" for i in range(count)]
    try:
        for cid in ids:
            out = berth(root, "runtime", "run", "-d", "--id", cid, "--rootfs", ROOTFS,
                        "--cgroup-parent", PARENT, "--", "sleep", "60",
                        capture_output=True)
            state = json.loads(out.stdout)
            pid = state["monitor"]["pid"]
            pids.append(pid)
        time.sleep(0.5)
        for pid in pids:
            fields = {}
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[1].isdigit():
                        fields[parts[0].rstrip(":")] = int(parts[1])
            rss.append((fields["Rss"], fields["Pss"],
                        fields["Private_Clean"] + fields["Private_Dirty"]))
    finally:
        for cid in ids:
            subprocess.run([BERTH, "--root", root, "runtime", "delete", "--force", cid],
                           stderr=subprocess.DEVNULL)
    return rss


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-")
    root = os.path.join(work, "root")
    results = {}
    try:
        bundle = make_bundle(root, work)
        # Warm caches once per runtime.
        berth(root, "runtime", "run", "--bundle", bundle, "--id", "warm",
              stdout=subprocess.DEVNULL)
        results["berth"] = timed(
            lambda i: [[BERTH, "--root", root, "runtime", "run", "--bundle", bundle,
                        "--id", f"b{i}"]], RUNS)
        if shutil.which("runc"):
            runc_root = os.path.join(work, "runc")
            rb = os.path.join(work, "runc-bundle")
            shutil.copytree(bundle, rb)
            set_cgroup_path(rb, f"/{PARENT}/runc")
            results["runc"] = timed(
                lambda i: [["runc", "--root", runc_root, "run", "--bundle", rb, f"r{i}"]], RUNS)
        if shutil.which("crun"):
            crun_root = os.path.join(work, "crun")
            cb = os.path.join(work, "crun-bundle")
            shutil.copytree(bundle, cb)
            set_cgroup_path(cb, f"/{PARENT}/crun")
            # crun refuses a hybrid cgroup layout; hide the cgroup2 mount in
            # a private mount namespace (berth runs on the layout as booted).
            hybrid = os.path.ismount("/sys/fs/cgroup/unified")
            def crun_cmd(i):
                run = f"crun --root {crun_root} run --bundle {cb} c{i}"
                if hybrid:
                    return [["unshare", "-m", "--propagation", "private", "sh", "-c",
                             f"umount /sys/fs/cgroup/unified && exec {run}"]]
                return [run.split()]
            results["crun"] = timed(crun_cmd, RUNS)
        rss = monitor_rss(root)
    finally:
        for d in [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup/{PARENT}"]:
            for sub in ("runc", "crun"):
                try:
                    os.rmdir(os.path.join(d, sub))
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ncreate+start+wait+delete of /bin/true, {RUNS} runs (ms)")
    print(f"{'runtime':<8} {'median':>8} {'p95':>8} {'vs berth':>9}")
    base = statistics.median(results["berth"])
    for name, xs in results.items():
        med = statistics.median(xs)
        print(f"{name:<8} {med:8.1f} {p95(xs):8.1f} {med / base:8.2f}x")
    goals = []
    if "crun" in results:
        goals.append(("median <= crun's", base <= statistics.median(results["crun"])))
    if "runc" in results:
        goals.append(("median <= half of runc's", base <= statistics.median(results["runc"]) / 2))
    for goal, met in goals:
        print(f"goal: {goal}: {'met' if met else 'not met'}")
    med = lambda i: statistics.median(r[i] for r in rss)
    print(f"\nmonitor memory per running container, {len(rss)} running (KiB, median):")
    print(f"  RSS {med(0):.0f}   PSS {med(1):.0f}   private {med(2):.0f}   (goal: RSS <= 2048)")

if __name__ == "__main__":
    sys.exit(main())

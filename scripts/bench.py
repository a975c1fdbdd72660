#!/usr/bin/env python3
"""make bench: create+start+wait+delete of /bin/true with berth, runc and
crun on the same bundle, side by side (interleaved: run i of each runtime
follows run i of the others, so that load from elsewhere on the host falls
on all alike); and the monitor's memory per running container, once it has
settled, with one monitor's memory by mapping.

Env: BERTH (the binary), ROOTFS (a busybox root), BENCH_RUNS (default 50)."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from memstat import breakdown, private_kib, rollup

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


def timed(runtimes, n):
    """Time n runs of each runtime, interleaved; runtimes maps a name to
    cmds_for(i), the command lines of its run i. Returns name -> ms list."""
    samples = {name: [] for name in runtimes}
    for i in range(n):
        for name, cmds_for in runtimes.items():
            start = time.perf_counter()
            for cmd in cmds_for(i):
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            samples[name].append((time.perf_counter() - start) * 1000)
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


def kib(fields):
    """(RSS, PSS, private) KiB of a rollup."""
    return fields.get("Rss", 0), fields.get("Pss", 0), private_kib(fields)


def monitor_rss(root, count=5):
    """Start `count` sleeping containers; (RSS, PSS, private) KiB of each
    monitor at 0.5 s and once settled (3 s: the monitor drops its start-up
    pages at 2 s), and one settled monitor's breakdown. RSS counts
    the berth binary's and libc's pages that all monitors share; private
    memory is what one more container costs."""
    early = []
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
        early = [kib(rollup(pid)) for pid in pids]
        time.sleep(2.5)
        rss = [kib(rollup(pid)) for pid in pids]
        parts = breakdown(pids[0])
    finally:
        for cid in ids:
            subprocess.run([BERTH, "--root", root, "runtime", "delete", "--force", cid],
                           stderr=subprocess.DEVNULL)
    return early, rss, parts


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-")
    root = os.path.join(work, "root")
    results = {}
    try:
        bundle = make_bundle(root, work)
        # Warm caches once per runtime.
        berth(root, "runtime", "run", "--bundle", bundle, "--id", "warm",
              stdout=subprocess.DEVNULL)
        runtimes = {"berth": lambda i: [[BERTH, "--root", root, "runtime", "run",
                                         "--bundle", bundle, "--id", f"b{i}"]]}
        if shutil.which("runc"):
            runc_root = os.path.join(work, "runc")
            rb = os.path.join(work, "runc-bundle")
            shutil.copytree(bundle, rb)
            set_cgroup_path(rb, f"/{PARENT}/runc")
            runtimes["runc"] = lambda i: [["runc", "--root", runc_root, "run", "--bundle", rb,
                                           f"r{i}"]]
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
            runtimes["crun"] = crun_cmd
        results = timed(runtimes, RUNS)
        early, rss, parts = monitor_rss(root)
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

    print(f"\ncreate+start+wait+delete of /bin/true, {RUNS} runs each, interleaved (ms)")
    print(f"{'runtime':<8} {'median':>8} {'p95':>8} {'min':>8} {'vs berth':>9}")
    base = statistics.median(results["berth"])
    for name, xs in results.items():
        med = statistics.median(xs)
        print(f"{name:<8} {med:8.1f} {p95(xs):8.1f} {min(xs):8.1f} {med / base:8.2f}x")
    goals = []
    if "crun" in results:
        goals.append(("median <= crun's", base <= statistics.median(results["crun"])))
    if "runc" in results:
        goals.append(("median <= half of runc's", base <= statistics.median(results["runc"]) / 2))
    for goal, met in goals:
        print(f"goal: {goal}: {'met' if met else 'not met'}")
    if "crun" in results:
        ratio = base / statistics.median(results["crun"])
        print(f"berth / crun: {ratio:.2f} (goal of issue 16: <= 0.8)")
    med = lambda rs, i: statistics.median(r[i] for r in rs)
    print(f"\nmonitor memory per running container, {len(rss)} running (KiB, median):")
    print(f"  at 0.5 s: RSS {med(early, 0):.0f}   PSS {med(early, 1):.0f}   "
          f"private {med(early, 2):.0f}")
    print(f"  settled:  RSS {med(rss, 0):.0f}   PSS {med(rss, 1):.0f}   "
          f"private {med(rss, 2):.0f}   (goal: RSS <= 1536)")
    print("  one settled monitor by mapping (RSS / PSS / private dirty):")
    for cls, (r, p, d) in parts.items():
        print(f"    {cls:<22} {r:6d} {p:6d} {d:6d}")

if __name__ == "__main__":
    sys.exit(main())

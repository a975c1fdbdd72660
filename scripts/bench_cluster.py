#!/usr/bin/env python3
"""make bench (cluster, issue 13): host loss, run-task through etcd vs
SQLite and 300 tasks over 3 hosts, through real hosts (the bench-cluster
binary, on the cluster tests' harness); then the scheduler against a big
store: `berth system placement-bench --through-store` on a throwaway etcd
(Debian's, temporary data dir, loopback) seeded with 5,000 instances and
100,000 RUNNING tasks."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
CLUSTER_BENCH = os.environ["CLUSTER_BENCH"]
INSTANCES = int(os.environ.get("BENCH_INSTANCES", "5000"))
TASKS = int(os.environ.get("BENCH_TASKS", "100000"))
# run-task calls of 10 to time over the big store.
CALLS = int(os.environ.get("BENCH_CALLS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_etcd(work):
    client, peer = free_port(), free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(os.path.join(work, "etcd.log"), "w")
    proc = subprocess.Popen(
        ["etcd", "--name", "bench", "--data-dir", os.path.join(work, "etcd"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"bench={peer_url}"],
        stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", client), timeout=0.2):
                return proc, f"127.0.0.1:{client}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"etcd did not start; see {log.name}")


def placement_through_store():
    work = tempfile.mkdtemp(prefix="berth-bench-store-")
    etcd = None
    try:
        etcd, endpoint = start_etcd(work)
        out = subprocess.run(
            [BERTH, "--root", os.path.join(work, "root"), "--store", f"etcd://{endpoint}/bench",
             "system", "placement-bench", "--through-store", "--instances", str(INSTANCES),
             "--tasks", str(TASKS), "--calls", str(CALLS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if out.returncode != 0:
            raise SystemExit(f"placement-bench --through-store: {out.stderr.decode()}")
        return json.loads(out.stdout)
    finally:
        if etcd is not None:
            etcd.kill()
            etcd.wait()
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def main():
    env = dict(os.environ, BERTH_BIN=BERTH, BERTH_TEST_ROOTFS=ROOTFS)
    subprocess.run([CLUSTER_BENCH], env=env, check=True)
    r = placement_through_store()
    print(f"scheduler against a store of {r['instances']} connected instances and "
          f"{r['runningTasks']} RUNNING tasks (etcd, seeded in {r['seedSeconds']:.0f} s)")
    print(f"  berth run-task through etcd: {r['placementsPerSecond']:.1f} placements/s "
          f"({r['placements']} placed, {r['failures']} failed, in {r['seconds']:.1f} s; goal >= 2,000/s)")
    print("  Nomad C1M (5 servers): 3,750 containers/s")


if __name__ == "__main__":
    sys.exit(main())

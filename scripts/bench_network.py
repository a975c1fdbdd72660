#!/usr/bin/env python3
"""make bench (network): a task network's setup and teardown beside a bare
network namespace, and TCP throughput from the host to a task through its
port mapping (nftables DNAT on 127.0.0.1) and straight to its address."""

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
TAG = os.getpid() % 100000
ENV = dict(os.environ, BERTH_BRIDGE=f"bnb{TAG}", BERTH_SUBNET=f"10.230.{TAG % 250}.0/24",
           BERTH_CGROUP_PARENT=f"berth-bench-net-{TAG}")
PORT = 40000 + TAG % 20000
MIB = 256


def berth(root, *args):
    out = subprocess.run([BERTH, "--root", root, *args], stdout=subprocess.PIPE, env=ENV, check=True)
    return json.loads(out.stdout) if out.stdout.strip().startswith(b"{") else None


def send(addr, port, mib):
    chunk = b"\0" * (1 << 20)
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    start = time.perf_counter()
    for _ in range(mib):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    return mib / (time.perf_counter() - start)


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-net-")
    root = os.path.join(work, "root")
    try:
        timing = berth(root, "system", "network-timing", "--runs", "30")
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        berth(root, "register-task-definition", "--cli-input-json", json.dumps({
            "family": "sink", "networkMode": "awsvpc",
            "containerDefinitions": [{"name": "sink", "image": "busybox", "memory": 64,
                                      "portMappings": [{"containerPort": PORT}],
                                      "command": ["sh", "-c", f"trap 'exit 0' TERM; while true; do nc -l -p {PORT} > /dev/null; done"]}]}))
        task = berth(root, "run-task", "--task-definition", "sink")["tasks"][0]
        tid = task["taskArn"].rsplit("/", 1)[1]
        ip = [d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address"][0]
        for _ in range(200):
            if berth(root, "describe-tasks", "--tasks", tid)["tasks"][0]["lastStatus"] == "RUNNING":
                break
            time.sleep(0.05)
        send(ip, PORT, 16)  # warm up
        direct = max(send(ip, PORT, MIB) for _ in range(3))
        mapped = max(send("127.0.0.1", PORT, MIB) for _ in range(3))
        berth(root, "stop-task", "--task", tid)
        for _ in range(600):
            if berth(root, "describe-tasks", "--tasks", tid)["tasks"][0]["lastStatus"] == "STOPPED":
                break
            time.sleep(0.05)
    finally:
        for d in [f"/sys/fs/cgroup/{c}/{ENV['BERTH_CGROUP_PARENT']}" for c in os.listdir("/sys/fs/cgroup")]:
            subprocess.run(["find", d, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                           stderr=subprocess.DEVNULL)
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ntask network, median of {timing['runs']} (ms; target < 10 each)")
    print(f"  bare network namespace (the floor): {timing['bareNamespaceMs']:.2f}")
    print(f"  setup (namespaces, veth, address, route, port mapping): {timing['setupMs']:.2f}")
    print(f"  teardown: {timing['teardownMs']:.2f}")
    print(f"TCP host → task, {MIB} MiB, best of 3 (busybox nc as the sink)")
    print(f"  straight to {ip}: {direct:.0f} MiB/s")
    print(f"  through the port mapping on 127.0.0.1: {mapped:.0f} MiB/s ({mapped / direct * 100:.0f}% of straight; target >= 90%)")


if __name__ == "__main__":
    sys.exit(main())

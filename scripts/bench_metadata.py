#!/usr/bin/env python3
"""make bench (metadata): requests/s and p99 of the task metadata endpoint
v4 (GET $ECS_CONTAINER_METADATA_URI_V4, its /task, and the task role's
credentials) from inside a busybox task's network namespace (a Python
client run there with nsenter), and the task supervisor's RSS idle and
while the endpoint serves (issue 15: serving adds at most 1 MiB)."""

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from memstat import private_kib, rollup

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
TAG = os.getpid() % 100000
ENV = dict(os.environ, BERTH_BRIDGE=f"bmd{TAG}", BERTH_SUBNET=f"10.231.{TAG % 250}.0/24",
           BERTH_CGROUP_PARENT=f"berth-bench-meta-{TAG}")
ENV.pop("BERTH_TASK_ROLES", None)
REQUESTS = 2000
ROLE = "arn:aws:iam::123456789012:role/bench"

# Run inside the task's namespace: REQUESTS sequential GETs of each path,
# one connection each (the endpoint closes after each answer, as SDKs and
# wget see it); prints {path: [seconds...]}.
CLIENT = r"""
import http.client, json, sys, time
n = int(sys.argv[1]); out = {}
for path in sys.argv[2:]:
    xs = []
    for _ in range(n):
        start = time.perf_counter()
        c = http.client.HTTPConnection("169.254.170.2", 80, timeout=5)
        c.request("GET", path)
        r = c.getresponse(); body = r.read(); c.close()
        if r.status != 200:
            raise SystemExit(f"{path}: {r.status} {body[:200]!r}")
        xs.append(time.perf_counter() - start)
    out[path] = xs
print(json.dumps(out))
"""


def berth(root, *args):
    out = subprocess.run([BERTH, "--root", root, *args], stdout=subprocess.PIPE, env=ENV, check=True)
    return json.loads(out.stdout) if out.stdout.strip().startswith(b"{") else out.stdout.decode()


def wait(what, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"never: {what}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for {pid}")


def supervisor_pid(root, tid):
    db = sqlite3.connect(os.path.join(root, "state.db"))
    (value,) = db.execute("SELECT value FROM kv WHERE key = ?", (f"tasks/default/{tid}",)).fetchone()
    db.close()
    return json.loads(value)["x-berth"]["supervisorPid"]


def write_roles(root):
    path = os.path.join(root, "task-roles.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({ROLE: {"AccessKeyId": "AKIABENCH", "SecretAccessKey": "bench"}}, f)


def stats(xs):
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(0.99 * (len(xs) - 1) + 0.5))]
    return len(xs) / sum(xs), p99 * 1000


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-meta-")
    root = os.path.join(work, "root")
    tid = None
    try:
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        write_roles(root)
        td = {"family": "meta", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
              "cpu": "256", "memory": "512", "taskRoleArn": ROLE,
              "containerDefinitions": [{"name": "app", "image": "busybox", "command": ["sh", "-c",
                  "echo uri=$ECS_CONTAINER_METADATA_URI_V4; echo creds=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; "
                  "trap 'exit 0' TERM; while true; do sleep 1; done"]}]}
        berth(root, "register-task-definition", "--cli-input-json", json.dumps(td))
        out = berth(root, "run-task", "--task-definition", "meta", "--launch-type", "FARGATE")
        tid = out["tasks"][0]["taskArn"].rsplit("/", 1)[1]
        log = wait("the container's URIs", lambda: (lambda l: "creds=" in l and l)(
            berth(root, "logs", tid, "--container", "app")))
        lines = dict(l.split("=", 1) for l in log.splitlines() if "=" in l)
        base = lines["uri"].removeprefix("http://169.254.170.2")
        paths = [base, base + "/task", lines["creds"]]
        pid = supervisor_pid(root, tid)
        netns = os.path.join(root, "run", "tasks", tid, "ns", "network")
        time.sleep(1)
        idle, idle_private = rss_kib(pid), private_kib(rollup(pid))
        # The supervisor's RSS sampled while the client runs.
        peak, done = [idle], threading.Event()

        def sample():
            while not done.is_set():
                peak.append(rss_kib(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        res = subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-c", CLIENT, str(REQUESTS), *paths],
                             stdout=subprocess.PIPE, check=True)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        after, after_private = rss_kib(pid), private_kib(rollup(pid))
        times = json.loads(res.stdout)
        berth(root, "stop-task", "--task", tid)
        wait("STOPPED", lambda: berth(root, "describe-tasks", "--tasks", tid)["tasks"][0]["lastStatus"] == "STOPPED")
    finally:
        cg = ENV["BERTH_CGROUP_PARENT"]
        for d in [f"/sys/fs/cgroup/{c}/{cg}" for c in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup/{cg}"]:
            subprocess.run(["find", d, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                           stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", ENV["BERTH_BRIDGE"]], stderr=subprocess.DEVNULL)
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    names = {paths[0]: "GET /v4/<id>", paths[1]: "GET /v4/<id>/task", paths[2]: "GET /v2/credentials/<id>"}
    print(f"\ntask metadata endpoint, from inside the task's namespace ({REQUESTS} sequential requests each, "
          f"one connection each; {len(paths) * REQUESTS / wall:.0f} requests/s over the run)")
    for path, xs in times.items():
        rps, p99 = stats(xs)
        print(f"  {names[path]:<26} {rps:6.0f} requests/s, p99 {p99:.2f} ms")
    print("task supervisor RSS (KiB; release build; goal: serving adds <= 1024)")
    print(f"  idle {idle}   while serving (peak) {max(peak)}   after {after}   "
          f"added by serving {max(peak) - idle}")
    print(f"  private (not shared with other berth processes): idle {idle_private}   after serving {after_private}")


if __name__ == "__main__":
    sys.exit(main())

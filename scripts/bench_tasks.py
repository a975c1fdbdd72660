#!/usr/bin/env python3
"""make bench (tasks): run-task → RUNNING latency for 1 task and for 50 at
once, and describe-tasks / list-tasks over 10,000 stored tasks."""

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
PARENT = f"berth-bench-tasks-{os.getpid()}"


def berth(root, *args, check=True):
    env = dict(os.environ, BERTH_CGROUP_PARENT=PARENT)
    out = subprocess.run([BERTH, "--root", root, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    if check and out.returncode != 0:
        raise SystemExit(f"berth {' '.join(args)}: {out.stderr.decode()}")
    return json.loads(out.stdout) if out.stdout.strip().startswith(b"{") else None


def statuses(root, ids):
    tasks = []
    for i in range(0, len(ids), 100):
        tasks += berth(root, "describe-tasks", "--tasks", *ids[i:i + 100])["tasks"]
    return [t["lastStatus"] for t in tasks]


def wait_all(root, ids, status, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(s == status for s in statuses(root, ids)):
            return
        time.sleep(0.005)
    raise SystemExit(f"tasks never reached {status}")


def ms(xs):
    return statistics.median(xs) * 1000, sorted(xs)[min(len(xs) - 1, int(0.95 * (len(xs) - 1) + 0.5))] * 1000


def timed_cmd(root, args, n=20):
    xs = []
    for _ in range(n):
        start = time.perf_counter()
        berth(root, *args)
        xs.append(time.perf_counter() - start)
    return ms(xs)


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-tasks-")
    root = os.path.join(work, "root")
    try:
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        td = {"family": "bench", "networkMode": "none", "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}]}
        berth(root, "register-task-definition", "--cli-input-json", json.dumps(td))

        single = []
        for _ in range(10):
            start = time.perf_counter()
            out = berth(root, "run-task", "--task-definition", "bench")
            tid = out["tasks"][0]["taskArn"].rsplit("/", 1)[1]
            wait_all(root, [tid], "RUNNING")
            single.append(time.perf_counter() - start)
            berth(root, "stop-task", "--task", tid)
            wait_all(root, [tid], "STOPPED")

        start = time.perf_counter()
        procs = [subprocess.Popen([BERTH, "--root", root, "run-task", "--task-definition", "bench", "--count", "10"],
                                  stdout=subprocess.PIPE, env=dict(os.environ, BERTH_CGROUP_PARENT=PARENT))
                 for _ in range(5)]
        ids = []
        for p in procs:
            out = json.loads(p.communicate()[0])
            ids += [t["taskArn"].rsplit("/", 1)[1] for t in out["tasks"]]
        wait_all(root, ids, "RUNNING")
        fifty = time.perf_counter() - start
        for tid in ids:
            berth(root, "stop-task", "--task", tid)
        wait_all(root, ids, "STOPPED")

        # 10,000 stored tasks: copies of a real record, written straight
        # into the store's table.
        db = sqlite3.connect(os.path.join(root, "state.db"))
        key, value = db.execute("SELECT key, value FROM kv WHERE key LIKE 'tasks/default/%' LIMIT 1").fetchone()
        task = json.loads(value)
        rev = db.execute("SELECT value FROM meta WHERE name='revision'").fetchone()[0]
        rows = []
        for i in range(10_000 - 60):
            tid = f"{i:032x}"
            task["taskArn"] = task["taskArn"].rsplit("/", 1)[0] + "/" + tid
            rows.append((f"tasks/default/{tid}", json.dumps(task).encode(), rev))
        db.executemany("INSERT INTO kv (key, value, revision) VALUES (?, ?, ?)", rows)
        db.commit()
        db.close()
        sample = [f"{i:032x}" for i in range(0, 10_000 - 60, 100)]
        t_list = timed_cmd(root, ["list-tasks", "--desired-status", "STOPPED"])
        t_desc = timed_cmd(root, ["describe-tasks", "--tasks", *sample])
        t_one = timed_cmd(root, ["describe-tasks", "--tasks", sample[0]])
    finally:
        for d in [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup/{PARENT}"]:
            try:
                os.rmdir(d)
            except OSError:
                pass
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    med, p95 = ms(single)
    print("\nrun-task → RUNNING (busybox, network none)")
    print(f"  1 task:    median {med:.0f} ms, p95 {p95:.0f} ms (10 runs)")
    print(f"  50 at once (5 run-task --count 10 in parallel): all RUNNING after {fifty * 1000:.0f} ms")
    print("over 10,000 stored tasks (median, p95 of 20; target < 50 ms)")
    print(f"  list-tasks:                 {t_list[0]:.1f} ms, {t_list[1]:.1f} ms")
    print(f"  describe-tasks (100 tasks): {t_desc[0]:.1f} ms, {t_desc[1]:.1f} ms")
    print(f"  describe-tasks (1 task):    {t_one[0]:.1f} ms, {t_one[1]:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""make bench (tasks): run-task → RUNNING latency for 1 task (network none
and awsvpc) and for 100 at once, and describe-tasks / list-tasks over 10,000
stored tasks.

A task's latency runs from the moment run-task is started to the `startedAt`
its supervisor records with RUNNING (millisecond precision), so the waiting
itself neither adds to it nor, put off while the starts run (`wait_all`),
takes the CPU from the starts it measures. As in berth's default layout (state in
/var/lib/berth, runtime state in /run/berth, a tmpfs on every systemd host),
the runtime root (<root>/run) is a tmpfs; the state root (images,
snapshots, logs, the store) is on the disk."""

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

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


def records(root, ids):
    tasks = []
    for i in range(0, len(ids), 100):
        tasks += berth(root, "describe-tasks", "--tasks", *ids[i:i + 100])["tasks"]
    return tasks


def wait_all(root, ids, status, timeout=120, first=0.0, every=0.05):
    """The tasks' records once every one reached `status`: looked at after
    `first` seconds, then every `every`. A look is a berth process (a
    describe-tasks of 100 costs ~14 ms of CPU): while tasks whose start is
    timed are still starting, looks are put off and spaced, so that they
    do not take the CPU from those starts (the time measured is the
    startedAt each supervisor records, whenever it is read)."""
    deadline = time.time() + timeout
    time.sleep(first)
    while time.time() < deadline:
        tasks = records(root, ids)
        if len(tasks) == len(ids) and all(t["lastStatus"] == status for t in tasks):
            return tasks
        if any(t["lastStatus"] == "STOPPED" for t in tasks) and status != "STOPPED":
            raise SystemExit(f"a task stopped: {[t.get('stoppedReason') for t in tasks]}")
        time.sleep(every)
    raise SystemExit(f"tasks never reached {status}")


def started_at(task):
    return datetime.fromisoformat(task["startedAt"].replace("Z", "+00:00")).timestamp()


def run_tasks(root, family, count=1):
    out = berth(root, "run-task", "--task-definition", family, "--count", str(count))
    return [t["taskArn"].rsplit("/", 1)[1] for t in out["tasks"]]


def single_starts(root, family, n=15):
    """run-task → RUNNING of one task, n times (each stopped before the next)."""
    xs = []
    for _ in range(n):
        time.sleep(0.2)
        start = time.time()
        ids = run_tasks(root, family)
        xs.append(started_at(wait_all(root, ids, "RUNNING", first=0.1)[0]) - start)
        berth(root, "stop-task", "--task", ids[0])
        wait_all(root, ids, "STOPPED")
    return xs


def many_at_once(root, family, clis=10):
    """`clis` run-task --count 10 at once: time until all RUNNING."""
    time.sleep(0.5)
    start = time.time()
    procs = [subprocess.Popen([BERTH, "--root", root, "run-task", "--task-definition", family,
                               "--count", "10"], stdout=subprocess.PIPE,
                              env=dict(os.environ, BERTH_CGROUP_PARENT=PARENT))
             for _ in range(clis)]
    ids = []
    for p in procs:
        out = json.loads(p.communicate()[0])
        ids += [t["taskArn"].rsplit("/", 1)[1] for t in out["tasks"]]
    clis_done = time.time() - start
    tasks = wait_all(root, ids, "RUNNING", every=0.5)
    all_running = max(started_at(t) for t in tasks) - start
    for tid in ids:
        berth(root, "stop-task", "--task", tid)
    wait_all(root, ids, "STOPPED")
    return len(ids), clis_done, all_running


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
        os.makedirs(os.path.join(root, "run"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=700", "tmpfs",
                        os.path.join(root, "run")], check=True)
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        for family, mode in (("bench", "none"), ("bench-awsvpc", "awsvpc")):
            td = {"family": family, "networkMode": mode, "containerDefinitions": [{
                "name": "app", "image": "busybox", "memory": 8,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}]}
            berth(root, "register-task-definition", "--cli-input-json", json.dumps(td))

        single_starts(root, "bench", n=2)  # warm: the sealed copy, caches
        single = single_starts(root, "bench")
        awsvpc = single_starts(root, "bench-awsvpc")
        hundred, clis_done, all_running = many_at_once(root, "bench")

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
    a_med, a_p95 = ms(awsvpc)
    print("\nrun-task → RUNNING (busybox; startedAt − the moment run-task was started)")
    print(f"  1 task, network none:   median {med:.1f} ms, p95 {p95:.1f} ms (15 runs; target ≤ 25 ms)")
    print(f"  1 task, network awsvpc: median {a_med:.1f} ms, p95 {a_p95:.1f} ms (15 runs; target ≤ none + 10 ms)")
    print(f"  {hundred} at once (10 run-task --count 10 in parallel): all RUNNING after "
          f"{all_running * 1000:.0f} ms (the CLIs returned after {clis_done * 1000:.0f} ms; target ≤ 1 s)")
    print("over 10,000 stored tasks (median, p95 of 20; target < 50 ms)")
    print(f"  list-tasks:                 {t_list[0]:.1f} ms, {t_list[1]:.1f} ms")
    print(f"  describe-tasks (100 tasks): {t_desc[0]:.1f} ms, {t_desc[1]:.1f} ms")
    print(f"  describe-tasks (1 task):    {t_one[0]:.1f} ms, {t_one[1]:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""make bench (services): kill -9 of a service task's container → its
replacement RUNNING, median and p95 over 20 trials (goal < 500 ms)."""

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
PARENT = f"berth-bench-svc-{os.getpid()}"
TRIALS = 20


def berth(root, *args):
    env = dict(os.environ, BERTH_CGROUP_PARENT=PARENT)
    out = subprocess.run([BERTH, "--root", root, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    if out.returncode != 0:
        raise SystemExit(f"berth {' '.join(args)}: {out.stderr.decode()}")
    return json.loads(out.stdout) if out.stdout.strip().startswith(b"{") else None


def running(root):
    arns = berth(root, "list-tasks")["taskArns"]
    if not arns:
        return []
    tasks = berth(root, "describe-tasks", "--tasks", *arns)["tasks"]
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.002)
    raise SystemExit(f"timed out: {pred.__name__}")


def all_stopped(root):
    arns = berth(root, "list-tasks", "--desired-status", "STOPPED")["taskArns"]
    live = berth(root, "list-tasks")["taskArns"]
    if live:
        return False
    tasks = berth(root, "describe-tasks", "--tasks", *arns)["tasks"] if arns else []
    return all(t["lastStatus"] == "STOPPED" for t in tasks)


def stop_everything(root):
    """Delete the service and wait until its tasks are STOPPED (their
    supervisors clean up), before the state root goes."""
    try:
        berth(root, "delete-service", "--service", "svc", "--force")
        wait_for(lambda: all_stopped(root))
        deadline = time.time() + 10
        while time.time() < deadline and subprocess.run(
                ["pgrep", "-f", f"__berth-(task|monitor) {root}"],
                stdout=subprocess.DEVNULL).returncode == 0:
            time.sleep(0.05)
    except SystemExit as e:
        print(f"cleanup: {e}")


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-svc-")
    root = os.path.join(work, "root")
    xs = []
    try:
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        td = {"family": "svc", "networkMode": "none", "containerDefinitions": [{
            "name": "a", "image": "busybox", "memory": 16,
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}
        berth(root, "register-task-definition", "--cli-input-json", json.dumps(td))
        berth(root, "create-service", "--service-name", "svc", "--task-definition", "svc",
              "--desired-count", "3")
        wait_for(lambda: len(running(root)) == 3)
        for _ in range(TRIALS):
            before = running(root)
            victim = before[0]
            state = subprocess.run([BERTH, "--root", root, "runtime", "state",
                                    victim["containers"][0]["runtimeId"]],
                                   stdout=subprocess.PIPE, check=True)
            pid = json.loads(state.stdout)["pid"]
            start = time.perf_counter()
            os.kill(pid, 9)
            old = {t["taskArn"] for t in before}

            def replaced():
                now = running(root)
                arns = {t["taskArn"] for t in now}
                return len(now) == 3 and victim["taskArn"] not in arns and arns - old
            wait_for(replaced)
            xs.append(time.perf_counter() - start)
            time.sleep(1.2)  # let the replacement settle before the next kill
    finally:
        stop_everything(root)
        for d in [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")]:
            try:
                os.rmdir(d)
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    xs.sort()
    p95 = xs[min(len(xs) - 1, int(0.95 * (len(xs) - 1) + 0.5))]
    print(f"\nservice task kill -9 → replacement RUNNING ({TRIALS} trials; goal < 500 ms)")
    print(f"  median {statistics.median(xs) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    out = subprocess.run([BERTH, "system", "placement-bench", "--instances", "5000",
                          "--tasks", "100000"], stdout=subprocess.PIPE, check=True)
    r = json.loads(out.stdout)
    print("pure scheduler, binpack(memory) + spread(AZ), 5,000 instances (goal >= 50,000/s)")
    print(f"  {r['placements']} placements in {r['seconds']:.2f} s: {r['placementsPerSecond']:,.0f}/s")


if __name__ == "__main__":
    main()

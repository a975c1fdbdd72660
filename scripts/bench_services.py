#!/usr/bin/env python3
"""make bench (services): kill -9 of a service task's container → its
replacement RUNNING, median and p95 over 20 trials (goal < 500 ms); the
pure scheduler's placements/s; requests/s through a load balancer over 3
tasks vs straight to one task (wrk)."""

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


BRIDGE = f"bb{os.getpid() % 100000}"
SUBNET = f"10.251.{os.getpid() % 250}.0/24"


def berth(root, *args):
    env = dict(os.environ, BERTH_CGROUP_PARENT=PARENT, BERTH_BRIDGE=BRIDGE,
               BERTH_SUBNET=SUBNET)
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


def stop_everything(root, service="svc"):
    """Delete the service and wait until its tasks are STOPPED (their
    supervisors clean up), before the state root goes."""
    try:
        berth(root, "delete-service", "--service", service, "--force")
        wait_for(lambda: all_stopped(root))
        deadline = time.time() + 10
        while time.time() < deadline and subprocess.run(
                ["pgrep", "-f", f"__berth-(task|monitor) {root}"],
                stdout=subprocess.DEVNULL).returncode == 0:
            time.sleep(0.05)
    except SystemExit as e:
        print(f"cleanup: {e}")


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d5s", url], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, check=True).stdout.decode()
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(f"wrk: no Requests/sec in:\n{out}")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_balancer():
    """Requests/s through a load balancer over 3 busybox httpd tasks, and
    straight to one of them, in the same run."""
    work = tempfile.mkdtemp(prefix="berth-bench-lb-")
    root = os.path.join(work, "root")
    lb = f"lb{os.getpid()}"
    port = free_port()
    try:
        berth(root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        td = {"family": "web", "containerDefinitions": [{
            "name": "web", "image": "busybox", "memory": 32,
            "portMappings": [{"containerPort": 80}],
            "command": ["sh", "-c", "mkdir -p /www; echo hello > /www/index.html; "
                        "httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}
        berth(root, "register-task-definition", "--cli-input-json", json.dumps(td))
        berth(root, "create-load-balancer", "--name", lb, "--listen", f"127.0.0.1:{port}",
              "--deregistration-delay", "0")
        berth(root, "create-service", "--service-name", "web", "--task-definition", "web",
              "--desired-count", "3", "--load-balancers", json.dumps([
                  {"loadBalancerName": lb, "containerName": "web", "containerPort": 80}]))

        def three_targets():
            d = berth(root, "describe-load-balancers", "--names", lb)
            targets = d["loadBalancers"][0]["targets"]
            return targets if len(targets) == 3 else None
        targets = wait_for(three_targets)
        time.sleep(0.5)  # httpd listening
        via_lb = wrk(f"http://127.0.0.1:{port}/")
        direct = wrk(f"http://{targets[0]['address']}:{targets[0]['port']}/")
    finally:
        stop_everything(root, "web")
        try:
            berth(root, "delete-load-balancer", "--name", lb)
        except SystemExit as e:
            print(f"cleanup: {e}")
        subprocess.run(["nft", "delete", "table", "ip", f"berth_lb_{lb}"],
                       stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)
        # Letters and digits only, so the name needs no escaping
        # (network/src/tables.rs).
        subprocess.run(["nft", "delete", "table", "ip", f"berth_net_{BRIDGE}"],
                       stderr=subprocess.DEVNULL)
        remove_cgroups()
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    print("requests/s, busybox httpd, wrk -t2 -c16 -d5s (a connection per request)")
    print(f"  through the load balancer (3 tasks): {via_lb:,.0f}/s")
    print(f"  straight to one task:                {direct:,.0f}/s")


def remove_cgroups():
    for d in [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")]:
        try:
            os.rmdir(d)
        except OSError:
            pass


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
        remove_cgroups()
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
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
    load_balancer()


if __name__ == "__main__":
    main()

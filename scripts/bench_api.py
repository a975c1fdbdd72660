#!/usr/bin/env python3
"""make bench (API): requests/s and p99 latency of DescribeTasks (100
tasks), ListTasks and RunTask over HTTP, `berth serve` (real busybox tasks)
side by side with moto_server (PyPI moto[server], the ECS emulator most
projects test against) answering the same calls in the same run.

Reads go through wrk (-t2 -c16 -d5s, keep-alive, POST bodies from a Lua
script); RunTask is timed one call at a time (each starts a task), 100
calls. Both servers are up at once but measured in turn, call by call
(berth, moto, next call), so neither competes with the other for the cores
and a change in the machine's load falls on both alike (wrk shares the
cores with the server measured, alike for both). Both get byte-identical ECS requests; moto alone needs a
container instance first (it cannot place EC2 tasks without one), which
it gets through its own EC2 emulation before the clock starts.

Runs under the venv's python (boto3 for moto's EC2 setup): VENV, BERTH,
ROOTFS from the Makefile.
"""

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
VENV = os.environ.get("VENV", os.path.join(os.path.dirname(__file__), "..", ".build", "venv"))
PARENT = f"berth-bench-api-{os.getpid()}"
BRIDGE = f"ba{os.getpid() % 100000}"
SUBNET = f"10.252.{os.getpid() % 250}.0/24"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
import strict  # noqa: E402

TARGET = "AmazonEC2ContainerServiceV20141113."
# A well-formed SigV4 header with a dummy signature: berth serve accepts
# any by default, and moto_server routes on the credential scope's service.
AUTH = ("AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/ecs/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-target, Signature=" + "0" * 64)
CLUSTER = "bench"
TASKS = 100
RUN_CALLS = 100
WRK = ["wrk", "-t2", "-c16", "-d5s", "--latency"]
TASK_DEFINITION = {
    "family": "bench",
    "networkMode": "none",
    "containerDefinitions": [{
        "name": "a", "image": "busybox", "memory": 16,
        # One sleep at a time (no fork every second in 100 tasks to load
        # the cores being measured); TERM ends the wait at once.
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done"]}],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    """One server: ECS calls over one keep-alive connection."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}/"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def raw(self, op, body):
        data = json.dumps(body)
        self.conn.request("POST", "/", body=data, headers=headers(op))
        r = self.conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def call(self, op, body):
        status, _, raw = self.raw(op, body)
        if status != 200:
            raise SystemExit(f"{self.name} {op}: HTTP {status}: {raw[:300].decode(errors='replace')}")
        return json.loads(raw)


def headers(op):
    return {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + op,
            "Authorization": AUTH}


def start_berth(root):
    env = dict(os.environ, BERTH_CGROUP_PARENT=PARENT, BERTH_BRIDGE=BRIDGE, BERTH_SUBNET=SUBNET)
    subprocess.run([BERTH, "--root", root, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest"],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    proc = subprocess.Popen([BERTH, "--root", root, "serve", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, env=env)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"berth serve did not say where it listens (got {line!r})")
    return proc, Endpoint("berth", int(m.group(1)))


def start_moto():
    port = free_port()
    proc = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, Endpoint("moto", port)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start (is the venv made? `make api-deps`)")


def moto_container_instance(ep):
    """moto places EC2 tasks only on a registered container instance, and
    registers one only for an instance of its own EC2 emulation."""
    import boto3
    ec2 = boto3.client("ec2", endpoint_url=ep.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                 InstanceType="m5.24xlarge")["Instances"][0]["InstanceId"]
    doc = json.dumps({"instanceId": instance, "instanceType": "m5.24xlarge", "region": "us-east-1"})
    ep.call("RegisterContainerInstance", {"cluster": CLUSTER, "instanceIdentityDocument": doc})


def run_task(ep, count):
    out = ep.call("RunTask", {"cluster": CLUSTER, "taskDefinition": "bench", "count": count,
                              "clientToken": str(uuid.uuid4())})
    if out.get("failures"):
        raise SystemExit(f"{ep.name} RunTask: {out['failures']}")
    return [t["taskArn"] for t in out["tasks"]]


def setup(ep, is_moto):
    ep.call("CreateCluster", {"clusterName": CLUSTER})
    if is_moto:
        moto_container_instance(ep)
    ep.call("RegisterTaskDefinition", TASK_DEFINITION)
    arns = []
    for _ in range(TASKS // 10):
        arns += run_task(ep, 10)
    if is_moto:
        return arns  # moto runs nothing (its lastStatus never moves)
    deadline = time.time() + 180
    while time.time() < deadline:
        tasks = ep.call("DescribeTasks", {"cluster": CLUSTER, "tasks": arns})["tasks"]
        if all(t["lastStatus"] == "RUNNING" for t in tasks):
            return arns
        time.sleep(0.5)
    raise SystemExit(f"{ep.name}: the {TASKS} tasks did not all reach RUNNING")


def check(ep, op, body):
    """One answer, validated strictly: the figures are for correct answers."""
    status, hdrs, raw = ep.raw(op, body)
    found = strict.validate_response(op, status, hdrs, raw)
    for v in found[:3]:
        print(f"  note: {ep.name} {op}: {v}")
    if len(found) > 3:
        print(f"  note: {ep.name} {op}: ... {len(found) - 3} more")
    return not found


def wrk(ep, op, body, work):
    script = os.path.join(work, f"{ep.name}-{op}.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = [==[{json.dumps(body)}]==]\n")
        for k, v in headers(op).items():
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
    out = subprocess.run(WRK + ["-s", script, ep.url], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, check=True).stdout.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not rps or not p99:
        raise SystemExit(f"wrk: no Requests/sec or 99% in:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{ep.name} {op}: {bad.group(1)} answers were errors under load:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rps.group(1)), float(p99.group(1)) * scale


def run_tasks_timed(ep):
    lat = []
    start = time.perf_counter()
    for _ in range(RUN_CALLS):
        t = time.perf_counter()
        run_task(ep, 1)
        lat.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start
    lat.sort()
    return RUN_CALLS / total, lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def measure(servers, work):
    """Each call on each server in turn (berth, then moto, call by call), so
    a change in the machine's load falls on both alike."""
    valid = {}
    for ep, arns in servers:
        valid[ep.name] = check(ep, "DescribeTasks", {"cluster": CLUSTER, "tasks": arns})
        valid[ep.name] &= check(ep, "ListTasks", {"cluster": CLUSTER})
    results = {ep.name: {} for ep, _ in servers}
    for op in ("DescribeTasks", "ListTasks", "RunTask"):
        for ep, arns in servers:
            if op == "RunTask":
                results[ep.name][op] = run_tasks_timed(ep)
            else:
                body = {"cluster": CLUSTER, "tasks": arns} if op == "DescribeTasks" else {"cluster": CLUSTER}
                results[ep.name][op] = wrk(ep, op, body, work)
    return valid, results


def stop_berth(ep, proc, root):
    """Stop every task, wait for their supervisors, then stop the server."""
    try:
        arns = ep.call("ListTasks", {"cluster": CLUSTER, "maxResults": 100})
        while True:
            for arn in arns["taskArns"]:
                ep.call("StopTask", {"cluster": CLUSTER, "task": arn})
            token = arns.get("nextToken")
            if not token:
                break
            arns = ep.call("ListTasks", {"cluster": CLUSTER, "maxResults": 100, "nextToken": token})
        deadline = time.time() + 120
        while time.time() < deadline:
            live = ep.call("ListTasks", {"cluster": CLUSTER})["taskArns"]
            busy = subprocess.run(["pgrep", "-f", f"__berth-(task|monitor) {root}"],
                                  stdout=subprocess.DEVNULL).returncode == 0
            if not live and not busy:
                break
            time.sleep(0.2)
    except (SystemExit, OSError, http.client.HTTPException) as e:
        print(f"cleanup: {e}")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def remove_host_state():
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)
    subprocess.run(["nft", "delete", "table", "ip", f"berth_net_{BRIDGE}"], stderr=subprocess.DEVNULL)
    for c in os.listdir("/sys/fs/cgroup"):
        try:
            os.rmdir(f"/sys/fs/cgroup/{c}/{PARENT}")
        except OSError:
            pass


def table(results, valid):
    print(f"\nECS API over HTTP, berth serve vs moto_server in the same run "
          f"({TASKS} busybox tasks running)")
    print(f"  reads: {' '.join(WRK[1:])} (keep-alive); RunTask: {RUN_CALLS} calls one at a time, count 1")
    print(f"  {'call':<26} {'berth req/s':>12} {'p99 ms':>8} {'moto req/s':>11} {'p99 ms':>8} {'berth/moto':>11}")
    names = {"DescribeTasks": f"DescribeTasks ({TASKS} tasks)", "ListTasks": f"ListTasks ({TASKS} tasks)",
             "RunTask": "RunTask (count 1)"}
    for op, label in names.items():
        (b, bp), (m, mp) = results["berth"][op], results["moto"][op]
        print(f"  {label:<26} {b:>12,.0f} {bp:>8.1f} {m:>11,.0f} {mp:>8.1f} {b / m:>10.1f}x")
    worst = min(results["berth"][op][0] / results["moto"][op][0] for op in ("DescribeTasks", "ListTasks"))
    print(f"goal: >= 10x moto's throughput on reads: {'met' if worst >= 10 else 'not met'} ({worst:.1f}x)")
    for name, ok in valid.items():
        if not ok:
            print(f"note: {name}'s answers broke the model (above); its figures are for those answers")


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-api-")
    root = os.path.join(work, "root")
    berth_proc = moto_proc = None
    try:
        moto_proc, moto = start_moto()
        moto_arns = setup(moto, is_moto=True)
        berth_proc, berth = start_berth(root)
        try:
            berth_arns = setup(berth, is_moto=False)
            valid, results = measure([(berth, berth_arns), (moto, moto_arns)], work)
        finally:
            stop_berth(berth, berth_proc, root)
            berth_proc = None
    finally:
        for p in (moto_proc, berth_proc):
            if p:
                p.kill()
        remove_host_state()
        # berth's shared sealed copy of itself (<root>/run/exe/*) is a mount.
        for m in sorted((l.split()[4] for l in open("/proc/self/mountinfo")
                         if l.split()[4].startswith(work + "/")), reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    table(results, valid)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""make bench (density, issue 16): N idle one-container busybox tasks on
this host (`run-task --count 10` x N/10, memory 8 each), measured, not
changed: time to all RUNNING, berth's own processes' RSS and PSS
(supervisors and monitors apart, from /proc/PID/smaps_rollup), the Shmem
delta of /proc/meminfo (each supervisor's sealed memfd copy of the binary is
shmem that no process's PSS shows), describe/list latency over the N tasks,
one idle supervisor's RSS by mapping, then time to all STOPPED and a check
that nothing is left.

    python3 scripts/bench_density.py                   # 50 tasks, network none
    python3 scripts/bench_density.py --tasks 1000      # the issue's real run
    python3 scripts/bench_density.py --network awsvpc  # one netns and veth each
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from memstat import breakdown, rollup

BERTH = os.environ["BERTH"]
ROOTFS = os.environ["ROOTFS"]
TAG = os.getpid() % 100000
PARENT = f"berth-bench-density-{TAG}"
BRIDGE = f"bdn{TAG}"
SUPERVISOR_ARG = "__berth-task"  # orchestrator/src/supervisor/args.rs
MONITOR_ARG = "__berth-monitor"  # runtime/src/monitor/mod.rs
WAVE = 5  # run-task --count 10 commands in flight at once (as bench_tasks.py)


def env(tasks):
    # Placement sums task memory: offer room for all of them and some.
    return dict(os.environ, BERTH_CGROUP_PARENT=PARENT, BERTH_BRIDGE=BRIDGE,
                # awsvpc: a /21, room for 2,000 task addresses.
                BERTH_SUBNET=f"10.232.{TAG % 32 * 8}.0/21",
                BERTH_HOST_MEMORY_MIB=str(tasks * 8 + 1024))


def berth(root, e, *args, check=True):
    out = subprocess.run([BERTH, "--root", root, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    if check and out.returncode != 0:
        raise SystemExit(f"berth {' '.join(args[:2])}: {out.stderr.decode()}")
    return json.loads(out.stdout) if out.stdout.strip().startswith(b"{") else None


def stored_statuses(root):
    """lastStatus of every task, read from the SQLite store read-only: polling
    through the CLI would spawn N/100 berth processes per poll and compete for
    the two cores with the tasks being started."""
    db = sqlite3.connect(f"file:{root}/state.db?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT value FROM kv WHERE key LIKE 'tasks/default/%'").fetchall()
    finally:
        db.close()
    return [json.loads(v)["lastStatus"] for (v,) in rows]


def stopped_reasons(root):
    """Why the stopped tasks stopped (task and container reasons), to say it."""
    db = sqlite3.connect(f"file:{root}/state.db?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT value FROM kv WHERE key LIKE 'tasks/default/%'").fetchall()
    finally:
        db.close()
    out = []
    for task in (json.loads(v) for (v,) in rows):
        if task["lastStatus"] == "STOPPED":
            containers = [c.get("reason") for c in task.get("containers", []) if c.get("reason")]
            out.append(f"{task.get('stopCode')}: {task.get('stoppedReason')} {containers}")
    return out


def wait_all(root, n, status, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got = stored_statuses(root)
        except sqlite3.OperationalError:
            got = []
        if len(got) == n and all(s == status for s in got):
            return
        if status != "STOPPED" and "STOPPED" in got:
            raise SystemExit(f"{got.count('STOPPED')} task(s) stopped before all were {status}: "
                             + "; ".join(stopped_reasons(root)))
        time.sleep(0.02)
    raise SystemExit(f"tasks never all reached {status}")


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0])
    return out


def executables(pids):
    """The distinct files berth's processes run from other than a file on
    disk that is no copy: (count, total bytes) of the sealed copies (a memfd
    each, or the root's shared copy), which is their Shmem, measured without
    what other processes on the host do to /proc/meminfo."""
    seen = {}
    for pid in pids:
        try:
            link = os.readlink(f"/proc/{pid}/exe")
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            continue
        if link.startswith("/memfd:") or "/run/exe/berth-" in link:
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return len(seen), sum(seen.values())


def parent_charge():
    """Page cache still charged under the tasks' cgroup parent (memory
    controller) once every task cgroup is removed: what keeps removed task
    memcgs in the kernel as dying ones, this run's own share of them
    (v1 memory.stat total_cache, v2 memory.stat file), in bytes."""
    for path, key in [(f"/sys/fs/cgroup/memory/{PARENT}/memory.stat", "total_cache"),
                      (f"/sys/fs/cgroup/{PARENT}/memory.stat", "file")]:
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == key:
                        return int(v)
        except (OSError, ValueError):
            continue
    return None


def memory_cgroups():
    """The memory controller's cgroup count (/proc/cgroups): it includes the
    dying ones, removed but kept by the kernel while page cache is charged to
    them, which no directory listing shows."""
    with open("/proc/cgroups") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "memory":
                return int(parts[2])
    return 0


def berth_pids(root):
    """(supervisor pids, monitor pids) of this bench's state root."""
    sups, mons = [], []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if root not in cmd:
            continue
        if SUPERVISOR_ARG in cmd:
            sups.append(int(name))
        elif MONITOR_ARG in cmd:
            mons.append(int(name))
    return sups, mons


def totals(pids):
    keys = ["Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous"]
    sums = {k: 0 for k in keys}
    rss = []
    for pid in pids:
        r = rollup(pid)
        for k in keys:
            sums[k] += r.get(k, 0)
        if r:
            rss.append(r.get("Rss", 0))
    return sums, rss


def fds_to_memfd(pids):
    n = 0
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:berth"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            pass
    return n


def cpu_ticks(pids):
    """utime + stime of `pids`, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def idle_cpu(pids, seconds=5):
    """Share of one core that `pids` use while the tasks idle (the
    supervisors poll the store every 100 ms)."""
    before, start = cpu_ticks(pids), time.perf_counter()
    time.sleep(seconds)
    used = (cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
    return used / (time.perf_counter() - start)


def ms(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1000, xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000


def timed_cmd(root, e, args, n=20):
    xs = []
    for _ in range(n):
        start = time.perf_counter()
        berth(root, e, *args)
        xs.append(time.perf_counter() - start)
    return ms(xs)


def start_all(root, e, tasks):
    """`run-task --count 10` x tasks/10, WAVE at a time; the task ids."""
    ids = []
    batches = [min(10, tasks - i) for i in range(0, tasks, 10)]
    for w in range(0, len(batches), WAVE):
        procs = [subprocess.Popen([BERTH, "--root", root, "run-task", "--task-definition", "density",
                                   "--count", str(c)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
                 for c in batches[w:w + WAVE]]
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"run-task: {err.decode()}")
            v = json.loads(out)
            if v.get("failures"):
                raise SystemExit(f"run-task failures: {v['failures']}")
            ids += [t["taskArn"].rsplit("/", 1)[1] for t in v["tasks"]]
    return ids


def stop_all(root, e, ids):
    """stop-task for every task, 8 CLIs in flight at once."""
    pending = list(ids)
    running = []
    while pending or running:
        while pending and len(running) < 8:
            running.append(subprocess.Popen([BERTH, "--root", root, "stop-task", "--task", pending.pop()],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e))
        p = running.pop(0)
        if p.wait() != 0:
            raise SystemExit(f"stop-task: {p.stderr.read().decode()}")


def leftovers(root):
    """What is left of the bench once all tasks are STOPPED: processes,
    run dirs, cgroups, mounts, task netns files, nft tables."""
    left = {}
    sups, mons = berth_pids(root)
    if sups or mons:
        left["processes"] = sups + mons
    for d in ["run/containers", "run/libcontainer"]:
        path = os.path.join(root, d)
        if os.path.isdir(path) and os.listdir(path):
            left[d] = os.listdir(path)
    cgroups = []
    for top in [f"/sys/fs/cgroup/{PARENT}"] + [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")]:
        if os.path.isdir(top):
            cgroups += [os.path.join(top, c) for c in os.listdir(top) if os.path.isdir(os.path.join(top, c))]
    if cgroups:
        left["cgroups"] = cgroups
    # berth's shared sealed copy of itself (run/exe/*) lives as long as the root.
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(root)
                  and not line.split()[4].startswith(os.path.join(root, "run/exe/"))]
    if mounts:
        left["mounts"] = mounts
    netns = []
    for dirpath, _, files in os.walk(os.path.join(root, "run")):
        netns += [os.path.join(dirpath, f) for f in files if "netns" in dirpath or f.startswith("netns")]
    if netns:
        left["netns files"] = netns
    nft = subprocess.run(["nft", "list", "tables"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tables = [line for line in nft.stdout.splitlines() if BRIDGE in line]
    if tables:
        left["nft tables"] = tables
    return left


def settle(root, timeout=60):
    """After all STOPPED, supervisors finish their teardown and exit; wait for
    the processes and mounts to go (netns teardown is asynchronous)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = leftovers(root)
        if not left:
            return {}
        time.sleep(0.1)
    return leftovers(root)


def cleanup(root):
    sups, mons = berth_pids(root)
    for pid in sups:
        subprocess.run(["kill", "-9", str(pid)], stderr=subprocess.DEVNULL)
    out = subprocess.run([BERTH, "--root", root, "runtime", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        for c in json.loads(out.stdout or b"[]"):
            subprocess.run([BERTH, "--root", root, "runtime", "delete", "--force", c["id"]],
                           stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except ValueError:
        pass
    for pid in berth_pids(root)[1]:
        subprocess.run(["kill", "-9", str(pid)], stderr=subprocess.DEVNULL)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(root)]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    parents = [f"/sys/fs/cgroup/{c}/{PARENT}" for c in os.listdir("/sys/fs/cgroup")] + [f"/sys/fs/cgroup/{PARENT}"]
    for d in parents:
        subprocess.run(["find", d, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
                       stderr=subprocess.DEVNULL)
    # The kernel takes a children's removal offline asynchronously (EBUSY
    # meanwhile): the parent may need a few tries.
    for _ in range(50):
        left = [d for d in parents if os.path.isdir(d)]
        if not left:
            break
        for d in left:
            try:
                os.rmdir(d)
            except OSError:
                pass
        time.sleep(0.1)
    subprocess.run(["ip", "link", "del", BRIDGE], stderr=subprocess.DEVNULL)


def kib(n):
    return f"{n / 1024:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--network", choices=["none", "awsvpc"], default="none")
    ap.add_argument("--health", action="store_true", help="give the container a health check")
    a = ap.parse_args()
    e = env(a.tasks)
    work = tempfile.mkdtemp(prefix="berth-bench-density-")
    root = os.path.join(work, "root")
    r = {}
    try:
        berth(root, e, "image", "build-rootfs", ROOTFS, "--tag", "busybox:latest")
        container = {"name": "app", "image": "busybox", "memory": 8,
                     "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}
        if a.health:
            container["healthCheck"] = {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 3}
        td = {"family": "density", "networkMode": a.network, "containerDefinitions": [container]}
        berth(root, e, "register-task-definition", "--cli-input-json", json.dumps(td))

        before = meminfo()
        r["memcg_before"] = memory_cgroups()
        load_before = os.getloadavg()
        start = time.perf_counter()
        ids = start_all(root, e, a.tasks)
        r["cli_done"] = time.perf_counter() - start
        wait_all(root, a.tasks, "RUNNING", timeout=60 + a.tasks)
        r["running"] = time.perf_counter() - start

        # Let start-up bursts finish (an idle host is what is measured): a
        # supervisor sheds its start-up pages first at its store look 5 s
        # after it starts, a monitor 2 s after.
        time.sleep(6)
        during = meminfo()
        sups, mons = berth_pids(root)
        r["sups"], r["sup_rss"] = totals(sups)
        r["mons"], r["mon_rss"] = totals(mons)
        r["nsup"], r["nmon"] = len(sups), len(mons)
        r["memfd_fds"] = fds_to_memfd(sups + mons)
        r["copies"], r["copies_bytes"] = executables(sups + mons)
        r["shmem"] = during["Shmem"] - before["Shmem"]
        r["avail"] = before["MemAvailable"] - during["MemAvailable"]
        r["one"] = breakdown(sups[0]) if sups else {}
        r["one_mon"] = breakdown(mons[0]) if mons else {}
        r["load"] = os.getloadavg()
        r["cpu_sup"], r["cpu_mon"] = idle_cpu(sups), idle_cpu(mons)
        r["load_before"] = load_before

        sample = ids[:100]
        r["list"] = timed_cmd(root, e, ["list-tasks"])
        r["desc"] = timed_cmd(root, e, ["describe-tasks", "--tasks", *sample])
        r["desc1"] = timed_cmd(root, e, ["describe-tasks", "--tasks", ids[0]])
        xs = []
        for _ in range(20):
            t = time.perf_counter()
            subprocess.run(["true"])
            xs.append(time.perf_counter() - t)
        r["true"] = ms(xs)
        r["rtlist"] = timed_cmd(root, e, ["runtime", "list"], n=5)

        start = time.perf_counter()
        stop_all(root, e, ids)
        wait_all(root, a.tasks, "STOPPED", timeout=60 + a.tasks)
        r["stopped"] = time.perf_counter() - start
        r["left"] = settle(root)
        r["settled"] = time.perf_counter() - start
        r["shmem_after"] = meminfo()["Shmem"] - before["Shmem"]
        r["memcg_after"] = memory_cgroups()
        r["parent_charge"] = parent_charge()
        wal = os.path.join(root, "state.db-wal")
        r["wal"] = os.path.getsize(wal) if os.path.exists(wal) else 0
    finally:
        cleanup(root)
        shutil.rmtree(work, ignore_errors=True)

    n = a.tasks
    print(f"\ndensity: {n} idle busybox tasks (network {a.network}{', health check' if a.health else ''}; "
          f"run-task --count 10, {WAVE} at a time; release build)")
    print(f"  time to all RUNNING: {r['running'] * 1000:.0f} ms (run-task CLIs done after {r['cli_done'] * 1000:.0f} ms)")
    for name, key, cnt, rss in [("supervisors", "sups", r["nsup"], r["sup_rss"]),
                                ("monitors", "mons", r["nmon"], r["mon_rss"])]:
        s = r[key]
        each = statistics.median(rss) if rss else 0
        print(f"  {name} ({cnt}): RSS {kib(s['Rss'])} (median {each} KiB each), PSS {kib(s['Pss'])} "
              f"({s['Pss'] // max(cnt, 1)} KiB each), private {kib(s['Private_Clean'] + s['Private_Dirty'])}, "
              f"anonymous {kib(s['Anonymous'])}")
    total_pss = r["sups"]["Pss"] + r["mons"]["Pss"]
    print(f"  berth's own processes: PSS {kib(total_pss)} ({total_pss // max(n, 1)} KiB per task)")
    print(f"  /proc/meminfo Shmem delta: {kib(r['shmem'])} ({r['shmem'] // max(n, 1)} KiB per task; "
          f"{r['memfd_fds']} fds on /memfd:berth), MemAvailable down {kib(r['avail'])} "
          f"({r['avail'] // max(n, 1)} KiB per task)")
    print(f"  load average (1 min): {r['load_before'][0]:.2f} before, {r['load'][0]:.2f} after start")
    print(f"  idle CPU (5 s each): supervisors {r['cpu_sup'] * 100:.1f}% of a core, "
          f"monitors {r['cpu_mon'] * 100:.1f}%")
    print(f"  over {n} running tasks (median, p95 of 20; target < 50 ms):")
    for label, key in [("list-tasks", "list"), (f"describe-tasks ({min(n, 100)} tasks)", "desc"),
                       ("describe-tasks (1 task)", "desc1")]:
        print(f"    {label + ':':<37} {r[key][0]:.1f} ms, {r[key][1]:.1f} ms")
    print(f"    host responsive: fork+exec true       {r['true'][0]:.1f} ms, {r['true'][1]:.1f} ms; "
          f"berth runtime list {r['rtlist'][0]:.1f} ms (median of 5)")
    print(f"  time to all STOPPED: {r['stopped'] * 1000:.0f} ms; nothing left after {r['settled'] * 1000:.0f} ms"
          if not r["left"] else f"  time to all STOPPED: {r['stopped'] * 1000:.0f} ms; LEFT BEHIND: {r['left']}")
    print(f"  sealed copies run by them: {r['copies']} distinct, {kib(r['copies_bytes'] // 1024)} "
          f"({r['copies_bytes'] // 1024 // max(n, 1)} KiB per task)")
    charge = r["parent_charge"]
    print(f"  still charged to the tasks' cgroup parent after stop: "
          f"{'n/a' if charge is None else kib(charge // 1024)} (page cache of dying task memcgs)")
    print(f"  Shmem delta after stop: {kib(r['shmem_after'])}; state.db-wal {r['wal'] // 1024} KiB; "
          f"memory cgroups (live + dying, /proc/cgroups) {r['memcg_before']} before, {r['memcg_after']} after")
    for title, b in [("one idle supervisor", r["one"]), ("one idle monitor", r["one_mon"])]:
        print(f"  {title}, by mapping (KiB: RSS, PSS, private dirty):")
        for cls, (rss, pss, dirty) in b.items():
            if rss:
                print(f"    {cls:<34} {rss:7d} {pss:7d} {dirty:7d}")
    return 1 if r["left"] else 0


if __name__ == "__main__":
    sys.exit(main())

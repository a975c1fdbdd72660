"""What a process's memory is made of, from /proc/PID/smaps(_rollup): shared
by the bench scripts (bench.py, bench_density.py, bench_metadata.py)."""

import os


def rollup(pid):
    """/proc/PID/smaps_rollup as {field: KiB}; {} when the process is gone."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return fields


def private_kib(fields):
    """Private (clean + dirty) KiB of a rollup: what one more such process
    costs beyond the pages every berth process shares."""
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def mapping_class(name, exe):
    if name == "[heap]":
        return "heap"
    if name.startswith("[stack"):
        return "main stack"
    if name in ("[vdso]", "[vvar]", "[vsyscall]", "[vvar_vclock]"):
        return "vdso/vvar"
    if name.startswith("/memfd:"):
        return "memfd (sealed binary)"
    if "/run/exe/berth-" in name or "/exe/berth-" in name:
        return "shared sealed copy"
    if name.endswith("-shm"):
        return "sqlite -shm"
    if name == exe or name.endswith("/berth") or name.endswith("/berth (deleted)"):
        return "berth binary"
    if ".so" in name:
        return "shared libraries"
    if name == "":
        return "anon (arenas, thread stacks)"
    return "other files"


def breakdown(pid):
    """One process's smaps summed by mapping class, with r-x/r--/rw- apart
    for the binary: KiB of (Rss, Pss, Private_Dirty), largest first."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    classes = {}
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                name = " ".join(parts[5:]) if len(parts) > 5 else ""
                cls = mapping_class(name, exe)
                if cls in ("berth binary", "memfd (sealed binary)", "shared sealed copy"):
                    cls += f" {parts[1][:3]}"
                cur = classes.setdefault(cls, [0, 0, 0])
            elif cur is not None and parts[0] in ("Rss:", "Pss:", "Private_Dirty:"):
                cur[("Rss:", "Pss:", "Private_Dirty:").index(parts[0])] += int(parts[1])
    return dict(sorted(classes.items(), key=lambda kv: -kv[1][0]))

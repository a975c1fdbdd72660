#!/bin/bash
# A short tour of berth's runtime: real containers, no daemon.
set -euo pipefail
BERTH=${BERTH:?path to berth}
ROOTFS=${ROOTFS:?busybox rootfs}
root=$(mktemp -d /tmp/berth-demo.XXXXXX)
parent=berth-demo-$$
b() { "$BERTH" --root "$root" "$@"; }
cleanup() {
    for id in $(b runtime list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))' 2>/dev/null); do
        b runtime delete --force "$id" || true
    done
    for d in /sys/fs/cgroup/*/"$parent" /sys/fs/cgroup/"$parent"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    rm -rf "$root"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "berth runtime run --rootfs busybox --memory 64 --user app -- sh -c 'id; hostname; cat /proc/self/cgroup | grep memory'"
b runtime run --rootfs "$ROOTFS" --cgroup-parent "$parent" --memory 64 --user app --hostname demo -- \
    sh -c 'id; hostname; grep memory /proc/self/cgroup'

step "berth runtime run --memory 16 -- (a memory hog)   # OOM-killed: exit 137"
b runtime run --rootfs "$ROOTFS" --cgroup-parent "$parent" --memory 16 --keep --id hog -- \
    sh -c 'x=a; while true; do x=$x$x; done' || echo "exit code: $?"
b runtime state hog | python3 -c 'import json,sys; print("exit:", json.load(sys.stdin)["exit"])'
b runtime delete hog

step "berth runtime run -d --id web -- (a service that logs every 0.2s)"
b runtime run -d --id web --rootfs "$ROOTFS" --cgroup-parent "$parent" -- \
    sh -c 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done' >/dev/null
sleep 1
b runtime list --output table
step "berth runtime exec web -- ps   # the monitor, not a daemon, parents it"
b runtime exec web -- ps
step "berth runtime logs web"
b runtime logs web | head -3
step "berth runtime stop web"
b runtime stop web
b runtime delete web
echo
echo "No daemon ran: each container had only its monitor (berth __berth-monitor)."

#!/bin/bash
# The ECS cluster story on one machine: three "hosts" (network namespaces
# on an underlay bridge, each with its own state root, cgroup parent and
# `berth agent`), etcd on the underlay as the shared store, a service of 6
# spread over three availability zones, one host killed outright (agent,
# supervisors, monitors, containers), and the service back at 6 on the
# other two; the host returns, is fenced, and rejoins. Everything made here
# is removed on exit, Ctrl-C included.
set -euo pipefail
BERTH=${BERTH:?path to berth}
ROOTFS=${ROOTFS:?busybox rootfs}
HOSTS=(a b c)
id=$(($$ % 100000))
work=$(mktemp -d /tmp/berth-demo-cluster.XXXXXX)
br=bdc$id
agents=()
etcd_pid=

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
note() { printf '\033[2m# %s\033[0m\n' "$*"; }
ns() { echo "bdc$id-$1"; }
cgroup_parent() { echo "berth-demo-cluster-$$-$1"; }

# Every process of host $1: in its namespace, in its cgroups, naming its root.
host_pids() {
    {
        ip netns pids "$(ns "$1")" 2>/dev/null || true
        pgrep -f "$work/$1( |/|$)" || true
        cat /sys/fs/cgroup/*/"$(cgroup_parent "$1")"/cgroup.procs \
            /sys/fs/cgroup/*/"$(cgroup_parent "$1")"/*/cgroup.procs \
            /sys/fs/cgroup/*/"$(cgroup_parent "$1")"/*/*/cgroup.procs 2>/dev/null || true
    } | { grep -vx "$$" || true; } | sort -u
}
# kill -9 everything of host $1 at once, until nothing is left.
kill_host() {
    for _ in $(seq 100); do
        pids=$(host_pids "$1")
        [ -z "$pids" ] && return 0
        kill -9 $pids 2>/dev/null || true
        sleep 0.05
    done
}

cleanup() {
    set +e
    trap - INT TERM
    for h in "${HOSTS[@]}"; do kill_host "$h"; done
    for h in "${HOSTS[@]}"; do
        [ -d "$work/$h" ] || continue
        for c in $("$BERTH" --root "$work/$h" runtime list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))' 2>/dev/null); do
            "$BERTH" --root "$work/$h" runtime delete --force "$c" >/dev/null 2>&1
        done
        for d in /sys/fs/cgroup/*/"$(cgroup_parent "$h")" /sys/fs/cgroup/"$(cgroup_parent "$h")"; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
        ip netns del "$(ns "$h")" 2>/dev/null
        ip link del "${br}$h" 2>/dev/null
    done
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    [ -n "$etcd_pid" ] && kill -9 "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
    ip link del "$br" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private /24 no route on this machine covers (172.31.X.0/24).
routes=$(ip -4 route show table all)
net=
for x in $(seq $((id % 200)) 255) $(seq 0 $((id % 200))); do
    grep -q "172\.31\.$x\.\|172\.31\.0\.0/16\|172\.16\.0\.0/12" <<<"$routes" && continue
    net=172.31.$x
    break
done
[ -n "$net" ] || { echo "no free 172.31.X.0/24 for the underlay" >&2; exit 1; }

step "ip link add $br type bridge; ip addr add $net.1/24 dev $br   # the underlay: one L2 segment"
ip link add "$br" type bridge
ip addr add "$net.1/24" dev "$br"
ip link set "$br" up

port=$(python3 -c "import socket; s=socket.socket(); s.bind(('$net.1', 0)); print(s.getsockname()[1])")
peer=$(python3 -c "import socket; s=socket.socket(); s.bind(('$net.1', 0)); print(s.getsockname()[1])")
step "etcd --listen-client-urls http://$net.1:$port ...   # the cluster's store"
etcd --name demo --data-dir "$work/etcd" \
    --listen-client-urls "http://$net.1:$port" --advertise-client-urls "http://$net.1:$port" \
    --listen-peer-urls "http://$net.1:$peer" --initial-advertise-peer-urls "http://$net.1:$peer" \
    --initial-cluster "demo=http://$net.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 200); do
    curl -s "http://$net.1:$port/health" 2>/dev/null | grep -q true && break
    sleep 0.1
done
curl -s "http://$net.1:$port/health"; echo
store="etcd://$net.1:$port/demo"

# berth on host $1, inside its namespace, with its own root and offer.
h() {
    local host=$1
    shift
    BERTH_CGROUP_PARENT=$(cgroup_parent "$host") BERTH_BRIDGE="bdc$id$host"x \
        BERTH_SUBNET="10.$((100 + $(printf '%d' "'$host") % 100)).$((id % 250)).0/24" \
        BERTH_HOST_CPU_UNITS=2048 BERTH_HOST_MEMORY_MIB=96 \
        nsenter --net="/run/netns/$(ns "$host")" -- "$BERTH" --root "$work/$host" --store "$store" "$@"
}

i=10
for host in "${HOSTS[@]}"; do
    step "ip netns add $(ns "$host"); veth to $br; $net.$i/24   # host $host"
    ip netns add "$(ns "$host")"
    ip link add "${br}$host" type veth peer name eth0 netns "$(ns "$host")"
    ip link set "${br}$host" master "$br" up
    ip -n "$(ns "$host")" addr add "$net.$i/24" dev eth0
    ip -n "$(ns "$host")" link set eth0 up
    ip -n "$(ns "$host")" link set lo up
    "$BERTH" --root "$work/$host" image build-rootfs "$ROOTFS" --tag busybox:latest >/dev/null
    i=$((i + 1))
done

step "berth --store $store create-cluster --cluster-name demo"
h a create-cluster --cluster-name demo | python3 -c 'import json,sys; c=json.load(sys.stdin)["cluster"]; print(c["clusterArn"], c["status"])'

for host in "${HOSTS[@]}"; do
    step "[host $host] berth agent --cluster demo --attributes ecs.availability-zone=zone-$host &"
    h "$host" agent --cluster demo --attributes "ecs.availability-zone=zone-$host" >"$work/agent-$host.log" 2>&1 &
    agents+=($!)
done

# Host name of each host id, for the tables below.
host_names() { for host in "${HOSTS[@]}"; do printf '%s=%s ' "$(cat "$work/$host/host-id" 2>/dev/null)" "$host"; done; }
instances() {
    arns=$(h a list-container-instances --cluster demo | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["containerInstanceArns"]))')
    [ -z "$arns" ] && return 0
    # shellcheck disable=SC2086
    h a describe-container-instances --cluster demo --container-instances $arns | NAMES="$(host_names)" python3 -c '
import json,os,sys
names=dict(p.split("=") for p in os.environ["NAMES"].split())
for i in json.load(sys.stdin)["containerInstances"]:
    zone=next((a["value"] for a in i.get("attributes",[]) if a["name"]=="ecs.availability-zone"),"?")
    print("host", names.get(i["containerInstanceArn"].split("/")[-1],"?"), zone, "agentConnected", i["agentConnected"], i["status"], "running", i["runningTasksCount"])'
}
connected() { instances | grep -c "agentConnected True" || true; }
for _ in $(seq 300); do [ "$(connected)" = 3 ] && break; sleep 0.1; done
step "berth describe-container-instances --cluster demo"
instances

cat >"$work/web.json" <<'JSON'
{
  "family": "web",
  "networkMode": "none",
  "containerDefinitions": [
    { "name": "web", "image": "busybox", "memory": 32,
      "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"] }
  ]
}
JSON
h a register-task-definition --cli-input-json "file://$work/web.json" >/dev/null
step "berth create-service --cluster demo --service-name web --task-definition web --desired-count 6 --placement-strategy '[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"}]'"
h a create-service --cluster demo --service-name web --task-definition web --desired-count 6 \
    --placement-strategy '[{"type":"spread","field":"attribute:ecs.availability-zone"}]' >/dev/null

# The service's tasks: "RUNNING-count host:n ..." and the table.
tasks() {
    arns=$(h a list-tasks --cluster demo --service-name web --desired-status "${1:-RUNNING}" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["taskArns"]))')
    [ -z "$arns" ] && return 0
    # shellcheck disable=SC2086
    h a describe-tasks --cluster demo --tasks $arns | NAMES="$(host_names)" python3 -c '
import json,os,sys
names=dict(p.split("=") for p in os.environ["NAMES"].split())
for t in json.load(sys.stdin)["tasks"]:
    host=names.get((t.get("containerInstanceArn") or "").split("/")[-1],"?")
    print(t["taskArn"].split("/")[-1][:12], "on host", host, t["lastStatus"], t.get("stoppedReason",""))'
}
per_host() { tasks | awk '$5=="RUNNING"{n[$4]++} END{for(h in n) printf "%s:%d\n", h, n[h]}' | sort | tr '\n' ' '; }
running() { tasks | grep -c " RUNNING" || true; }
for _ in $(seq 600); do [ "$(running)" = 6 ] && break; sleep 0.1; done
step "berth list-tasks/describe-tasks --cluster demo   # spread: 2 per zone"
tasks
echo "per host: $(per_host)"

# The host to lose: b (spread gives it 2), or the busiest if b has none.
victim=b
[ -z "$(tasks | awk '$4=="b"')" ] && victim=$(tasks | awk '{n[$4]++} END{for(h in n) print n[h], h}' | sort -rn | head -1 | cut -d' ' -f2)
old=$(tasks | awk -v h="$victim" '$4==h{print $1}')
step "kill -9 everything of host $victim at once: agent, supervisors, monitors, containers"
t0=$(date +%s.%N)
kill_host "$victim"
note "host $victim is gone; its lease (3 s) expires, the cluster stops its tasks and places replacements"
for _ in $(seq 600); do
    [ "$(running)" = 6 ] && [ -z "$(tasks | awk -v h="$victim" '$4==h')" ] && break
    sleep 0.1
done
t1=$(date +%s.%N)
step "berth describe-container-instances --cluster demo"
instances
step "berth list-tasks --cluster demo --service-name web   # back at 6, on the other two"
tasks
echo "per host: $(per_host)"
python3 -c "print('host $victim killed -> all 6 RUNNING again on the others: %.1f s' % ($t1 - $t0))"
step "berth describe-tasks ... (host $victim's old tasks)"
tasks STOPPED | grep -F -f <(echo "$old") || true

step "[host $victim] berth agent --cluster demo ... &   # it comes back: fenced first, then it rejoins"
h "$victim" agent --cluster demo --attributes "ecs.availability-zone=zone-$victim" >>"$work/agent-$victim.log" 2>&1 &
agents+=($!)
for _ in $(seq 300); do [ "$(connected)" = 3 ] && break; sleep 0.1; done
instances
step "berth runtime list   # on host $victim: what the cluster stopped is not running there"
n=$("$BERTH" --root "$work/$victim" runtime list | python3 -c 'import json,sys; print(len([c for c in json.load(sys.stdin) if c.get("status")=="running"]))')
echo "$n running containers on host $victim"
step "berth update-service --cluster demo --service web --desired-count 9   # the others are full: host $victim takes the 3 new"
h a update-service --cluster demo --service web --desired-count 9 >/dev/null
for _ in $(seq 600); do [ "$(running)" = 9 ] && break; sleep 0.1; done
echo "per host: $(per_host)"
echo
echo "No central daemon: each host ran one berth agent; etcd held the cluster."

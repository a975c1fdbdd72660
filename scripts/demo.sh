#!/bin/bash
# The ECS story on one host, no daemon: an image from busybox, a cluster, a
# two-container task definition as AWS writes them, tasks run, watched,
# exec'd into, stopped. Everything lives in a throwaway state root.
set -euo pipefail
BERTH=${BERTH:?path to berth}
ROOTFS=${ROOTFS:?busybox rootfs}
root=$(mktemp -d /tmp/berth-demo.XXXXXX)
export BERTH_CGROUP_PARENT=berth-demo-$$
b() { "$BERTH" --root "$root" "$@"; }
cleanup() {
    b delete-service --cluster demo --service web --force >/dev/null 2>&1 || true
    for t in $(b list-tasks --cluster demo 2>/dev/null | python3 -c 'import json,sys; print(" ".join(a.split("/")[-1] for a in json.load(sys.stdin)["taskArns"]))' 2>/dev/null); do
        b stop-task --cluster demo --task "$t" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(b runtime list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))' 2>/dev/null); do
        b runtime delete --force "$id" >/dev/null 2>&1 || true
    done
    for d in /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT" /sys/fs/cgroup/"$BERTH_CGROUP_PARENT"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    for _ in $(seq 100); do
        pgrep -f "__berth-task $root" >/dev/null || break
        sleep 0.1
    done
    b delete-load-balancer --name demo-lb >/dev/null 2>&1 || true
    # berth's shared sealed copy of itself ($root/run/exe/*) is a mount.
    grep -o " $root/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$root"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
wait_status() {
    for _ in $(seq 200); do
        s=$(b describe-tasks --cluster demo --tasks "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"][0]["lastStatus"])')
        [ "$s" = "$2" ] && return 0
        sleep 0.05
    done
    echo "task $1 did not reach $2" >&2; return 1
}

step "berth image build-rootfs .build/busybox --tag busybox:latest"
b image build-rootfs "$ROOTFS" --tag busybox:latest --cmd sh
step "berth create-cluster --cluster-name demo --bridge berth-demo"
b create-cluster --cluster-name demo --bridge berth-demo | python3 -c 'import json,sys; c=json.load(sys.stdin)["cluster"]; print(c["clusterArn"], c["status"])'

cat > "$root/web.json" <<'JSON'
{
  "family": "web",
  "networkMode": "none",
  "volumes": [{ "name": "content" }],
  "containerDefinitions": [
    { "name": "setup", "image": "busybox", "memory": 32, "essential": false,
      "command": ["sh", "-c", "echo '<h1>hello from berth</h1>' > /www/index.html"],
      "mountPoints": [{ "sourceVolume": "content", "containerPath": "/www" }] },
    { "name": "web", "image": "busybox", "memory": 64, "cpu": 256,
      "command": ["sh", "-c", "httpd -p 8080 -h /www; trap 'exit 0' TERM; while true; do wget -qO- http://127.0.0.1:8080/; sleep 1; done"],
      "mountPoints": [{ "sourceVolume": "content", "containerPath": "/www" }],
      "dependsOn": [{ "containerName": "setup", "condition": "SUCCESS" }],
      "logConfiguration": { "logDriver": "awslogs", "options": { "awslogs-group": "/ecs/web" } } }
  ]
}
JSON
step "berth register-task-definition --cli-input-json file://web.json"
b register-task-definition --cli-input-json "file://$root/web.json" | python3 -c 'import json,sys; t=json.load(sys.stdin)["taskDefinition"]; print(t["taskDefinitionArn"], t["status"])'

step "berth run-task --cluster demo --task-definition web --count 2"
out=$(b run-task --cluster demo --task-definition web --count 2)
echo "$out" | python3 -c 'import json,sys; [print(t["taskArn"], t["lastStatus"]) for t in json.load(sys.stdin)["tasks"]]'
ids=$(echo "$out" | python3 -c 'import json,sys; print(" ".join(t["taskArn"].split("/")[-1] for t in json.load(sys.stdin)["tasks"]))')
for id in $ids; do wait_status "$id" RUNNING; done
first=${ids%% *}
step "berth describe-tasks --cluster demo --tasks $first"
b describe-tasks --cluster demo --tasks "$first" | python3 -c '
import json,sys
t=json.load(sys.stdin)["tasks"][0]
print("task", t["lastStatus"], "started", t["startedAt"])
for c in t["containers"]: print("  container", c["name"], c["lastStatus"], "exitCode", c.get("exitCode"))'
sleep 1.5
step "berth logs $first --cluster demo --container web"
b logs "$first" --cluster demo --container web | head -2
step "berth exec --cluster demo --task $first --container web --command 'ps'"
b exec --cluster demo --task "$first" --container web --command ps
step "berth describe-container-instances   # CPU and memory reserved by the 2 tasks"
ci=$(b list-container-instances --cluster demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["containerInstanceArns"][0])')
b describe-container-instances --cluster demo --container-instances "$ci" | python3 -c '
import json,sys
i=json.load(sys.stdin)["containerInstances"][0]
reg={r["name"]: r["integerValue"] for r in i["registeredResources"]}
rem={r["name"]: r["integerValue"] for r in i["remainingResources"]}
print("running tasks", i["runningTasksCount"], "| CPU", rem["CPU"], "of", reg["CPU"], "| MEMORY", rem["MEMORY"], "of", reg["MEMORY"], "MiB free")'
step "berth stop-task --cluster demo --task $first --reason 'demo done'"
for id in $ids; do b stop-task --cluster demo --task "$id" --reason "demo done" >/dev/null; done
for id in $ids; do wait_status "$id" STOPPED; done
b describe-tasks --cluster demo --tasks "$first" | python3 -c 'import json,sys; t=json.load(sys.stdin)["tasks"][0]; print(t["lastStatus"], t["stopCode"], "-", t["stoppedReason"])'
step "berth usage --cluster demo"
b usage --cluster demo

# A service: 3 tasks with a health check, behind a load balancer.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$root/site.json" <<'JSON'
{
  "family": "site",
  "containerDefinitions": [
    { "name": "web", "image": "busybox", "memory": 32,
      "portMappings": [{ "containerPort": 80 }],
      "healthCheck": { "command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/"], "interval": 5 },
      "command": ["sh", "-c", "mkdir -p /www; echo \"hello from $(hostname -i)\" > /www/index.html; httpd -p 80 -h /www; trap 'exit 0' TERM; while true; do sleep 1; done"] }
  ]
}
JSON
b register-task-definition --cli-input-json "file://$root/site.json" >/dev/null
step "berth create-load-balancer --name demo-lb --listen 127.0.0.1:$port --deregistration-delay 1"
b create-load-balancer --name demo-lb --listen "127.0.0.1:$port" --deregistration-delay 1 >/dev/null
step "berth create-service --cluster demo --service-name web --task-definition site --desired-count 3 --load-balancers '[{\"loadBalancerName\":\"demo-lb\",\"containerName\":\"web\",\"containerPort\":80}]'"
b create-service --cluster demo --service-name web --task-definition site --desired-count 3 \
    --load-balancers '[{"loadBalancerName":"demo-lb","containerName":"web","containerPort":80}]' >/dev/null
targets() { b describe-load-balancers --names demo-lb | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["loadBalancers"][0]["targets"]))'; }
echo "(waiting for the health checks: the first runs one interval after start)"
for _ in $(seq 300); do [ "$(targets)" = 3 ] && break; sleep 0.1; done
step "berth describe-tasks ... healthStatus"
b list-tasks --cluster demo --service-name web | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["taskArns"]))' \
    | xargs "$BERTH" --root "$root" describe-tasks --cluster demo --tasks | python3 -c '
import json,sys
for t in json.load(sys.stdin)["tasks"]: print(t["taskArn"].split("/")[-1], t["lastStatus"], t["healthStatus"])'
step "6 requests to 127.0.0.1:$port: nftables spreads them over the tasks, no proxy"
for _ in 1 2 3 4 5 6; do python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/').read().decode().strip())"; done
step "kill -9 one task's container: its supervisor has the service replace it at once"
victim=$(b list-tasks --cluster demo --service-name web | python3 -c 'import json,sys; print(json.load(sys.stdin)["taskArns"][0].split("/")[-1])')
cpid=$(b runtime state "$victim-web" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
kill -9 "$cpid"
wait_status "$victim" STOPPED
sleep 0.5
step "berth describe-services --cluster demo --services web"
b describe-services --cluster demo --services web | python3 -c '
import json,sys
s=json.load(sys.stdin)["services"][0]
print("running", s["runningCount"], "of", s["desiredCount"])
for e in s["events"][:4]: print(" ", e["createdAt"], e["message"])'
step "berth delete-service --cluster demo --service web --force; berth delete-load-balancer --name demo-lb"
b delete-service --cluster demo --service web --force >/dev/null
for _ in $(seq 100); do
    [ "$(b describe-services --cluster demo --services web | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["status"])')" = INACTIVE ] && break
    sleep 0.1
done
b delete-load-balancer --name demo-lb >/dev/null
echo
echo "No daemon ran: each task had a supervisor (berth __berth-task), each container a monitor."

"""Terraform's call sequence for an ECS cluster, task definition and service,
replayed with boto3 (the AWS provider cannot be installed here), every raw
answer validated strictly against botocore's model (strict.py): the Go SDK
under Terraform refuses a member of the wrong JSON type, so this is what
"Terraform works" means short of running it.

The calls and their inputs follow hashicorp/terraform-provider-aws
(internal/service/ecs/{cluster,task_definition,service}.go): create, the
provider's waiters, the Read after each change, updates (cluster settings
and tags, the service's desired count), and destroy
(drain to 0, DeleteService retried while deployments are active, wait for
INACTIVE, deregister, DeleteCluster retried while it still holds things,
wait for INACTIVE).

Usage: python terraform.py --endpoint http://127.0.0.1:PORT [--image busybox]
           [--patience N] [--no-header-checks]
Prints one line per step; exits 1 naming the step and what was wrong.
"""

import argparse
import os
import sys
import time
import uuid

import boto3
import botocore.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strict  # noqa: E402

INCLUDE_CLUSTER = ["TAGS", "CONFIGURATIONS", "SETTINGS"]


class StepFailed(Exception):
    pass


class Run:
    """The client, the strict checker and the waits of one replay."""

    def __init__(self, endpoint, patience, check_headers):
        # Terraform's provider retries throttles and 5xx (standard mode).
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3})
        self.ecs = boto3.client(
            "ecs", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test", config=config)
        # Collect (not raise) so one run reports every violation at once.
        self.checker = strict.attach(self.ecs, raise_=False, check_headers=check_headers)
        self.patience = patience
        self.step_name = ""
        self.no_tasks = False

    def step(self, name):
        self.step_name = name
        print(f"step: {name}", flush=True)

    def expect(self, cond, what):
        if not cond:
            raise StepFailed(f"{self.step_name}: {what}")

    def wait(self, what, probe, timeout, interval=0.5):
        """Call probe() until it returns a true value (what it returns),
        for `timeout` seconds times the patience; fail naming `what`."""
        deadline = time.monotonic() + timeout * self.patience
        last = None
        while True:
            last = probe()
            if last:
                return last
            if time.monotonic() > deadline:
                raise StepFailed(f"{self.step_name}: gave up waiting for {what}")
            time.sleep(interval)

    def retry_on(self, call, codes, message_part, timeout):
        """Call until it stops failing with one of `codes` whose message
        contains `message_part` (Terraform's retry.RetryContext loops)."""
        deadline = time.monotonic() + timeout * self.patience
        while True:
            try:
                return call()
            except self.ecs.exceptions.ClientError as e:
                err = e.response.get("Error", {})
                retryable = err.get("Code") in codes and message_part in err.get("Message", "")
                if not retryable or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def tags_of(items):
    return {t["key"]: t["value"] for t in items or []}


def cluster(run, name):
    r = run.ecs
    run.step("CreateCluster with tags")
    tags = [{"key": "Name", "value": name}, {"key": "managed-by", "value": "terraform"}]
    out = r.create_cluster(clusterName=name, tags=tags,
                           settings=[{"name": "containerInsights", "value": "disabled"}])
    arn = out["cluster"]["clusterArn"]
    run.expect(out["cluster"]["clusterName"] == name, f"clusterName {out['cluster'].get('clusterName')}")

    run.step("DescribeClusters include TAGS/CONFIGURATIONS/SETTINGS until ACTIVE")

    def active():
        got = r.describe_clusters(clusters=[arn], include=INCLUDE_CLUSTER)
        found = [c for c in got["clusters"] if c["clusterArn"] == arn]
        return found[0] if found and found[0]["status"] == "ACTIVE" else None

    c = run.wait("the cluster ACTIVE", active, 30)
    run.expect(tags_of(c.get("tags")) == tags_of(tags), f"tags echoed {c.get('tags')}, sent {tags}")
    settings = {s["name"]: s["value"] for s in c.get("settings", [])}
    run.expect(settings.get("containerInsights") == "disabled", f"settings echoed {c.get('settings')}")
    return arn


def update_cluster(run, arn):
    """A changed `setting` block (UpdateCluster, then the wait and Read) and
    changed tags (the provider's updateTags: UntagResource, TagResource)."""
    r = run.ecs
    run.step("UpdateCluster settings, then DescribeClusters until ACTIVE")
    r.update_cluster(cluster=arn, settings=[{"name": "containerInsights", "value": "enabled"}])
    got = r.describe_clusters(clusters=[arn], include=INCLUDE_CLUSTER)["clusters"][0]
    settings = {s["name"]: s["value"] for s in got.get("settings", [])}
    run.expect(got["status"] == "ACTIVE" and settings.get("containerInsights") == "enabled",
               f"after UpdateCluster: {got['status']} {got.get('settings')}")

    run.step("UntagResource + TagResource, then DescribeClusters include TAGS")
    r.untag_resource(resourceArn=arn, tagKeys=["managed-by"])
    r.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "test"}])
    got = r.describe_clusters(clusters=[arn], include=INCLUDE_CLUSTER)["clusters"][0]
    want = {"Name": arn.rsplit("/", 1)[-1], "env": "test"}
    run.expect(tags_of(got.get("tags")) == want, f"tags after the update {got.get('tags')}, want {want}")


def task_definition(run, name, image):
    r = run.ecs
    run.step("RegisterTaskDefinition with tags")
    container = {
        "name": "app", "image": image, "essential": True, "memory": 16, "cpu": 0,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"],
        "environment": [{"name": "STAGE", "value": "test"}],
    }
    tags = [{"key": "Name", "value": name}]
    out = r.register_task_definition(family=name, containerDefinitions=[container], tags=tags,
                                     requiresCompatibilities=["EC2"])
    td = out["taskDefinition"]
    arn = td["taskDefinitionArn"]
    run.expect(td["family"] == name and td["revision"] >= 1, f"family/revision {td.get('family')}:{td.get('revision')}")

    run.step("DescribeTaskDefinition include TAGS")
    got = r.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    td = got["taskDefinition"]
    run.expect(td["status"] == "ACTIVE", f"status {td.get('status')}")
    run.expect(tags_of(got.get("tags")) == tags_of(tags), f"tags echoed {got.get('tags')}")
    # The provider diffs the container definitions against what it sent:
    # every member sent must come back as sent.
    echoed = td["containerDefinitions"][0]
    for key, value in container.items():
        run.expect(echoed.get(key) == value, f"containerDefinitions[0].{key} echoed {echoed.get(key)!r}, sent {value!r}")
    return arn


def describe_service(run, cluster_arn, arn):
    got = run.ecs.describe_services(cluster=cluster_arn, services=[arn], include=["TAGS"])
    found = [s for s in got["services"] if s["serviceArn"] == arn]
    missing = [f for f in got.get("failures", []) if f.get("reason") == "MISSING"]
    return (found[0] if found else None), missing


def steady(run, cluster_arn, arn, desired):
    """waitServiceStable (wait_for_steady_state), or waitServiceActive when
    the endpoint runs no tasks (moto_server)."""
    def probe():
        svc, _ = describe_service(run, cluster_arn, arn)
        if not svc or svc["status"] != "ACTIVE" or svc["desiredCount"] != desired:
            return None
        if run.no_tasks:
            return svc
        ok = len(svc.get("deployments", [])) == 1 and svc["runningCount"] == desired
        return svc if ok else None

    return run.wait(f"the service steady at {desired} running", probe, 90)


def service(run, cluster_arn, td_arn, name):
    r = run.ecs
    run.step("CreateService (as the provider builds its input)")
    tags = [{"key": "Name", "value": name}]
    out = r.create_service(
        cluster=cluster_arn, serviceName=name, taskDefinition=td_arn, desiredCount=1,
        clientToken=uuid.uuid4().hex, launchType="EC2", schedulingStrategy="REPLICA",
        deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100},
        enableECSManagedTags=False, enableExecuteCommand=False, tags=tags)
    arn = out["service"]["serviceArn"]
    run.expect(out["service"]["serviceName"] == name, f"serviceName {out['service'].get('serviceName')}")

    run.step("DescribeServices include TAGS until steady (wait_for_steady_state)")
    svc = steady(run, cluster_arn, arn, 1)
    run.expect(tags_of(svc.get("tags")) == tags_of(tags), f"tags echoed {svc.get('tags')}")
    run.expect(svc["taskDefinition"] == td_arn, f"taskDefinition {svc.get('taskDefinition')}")
    # Read sets deployment_maximum_percent etc. only from an answer that has
    # deploymentConfiguration (moto's has none); when there, it must match.
    dc = svc.get("deploymentConfiguration")
    run.expect(dc is None or (dc.get("maximumPercent") == 200 and dc.get("minimumHealthyPercent") == 100),
               f"deploymentConfiguration echoed {dc}")

    run.step("UpdateService desiredCount 2, then steady")
    r.update_service(cluster=cluster_arn, service=arn, desiredCount=2)
    steady(run, cluster_arn, arn, 2)
    return arn


def destroy_service(run, cluster_arn, arn):
    r = run.ecs
    run.step("DescribeServices before destroy")
    svc, _ = describe_service(run, cluster_arn, arn)
    run.expect(svc and svc["status"] == "ACTIVE", "service not ACTIVE before destroy")

    run.step("UpdateService desiredCount 0 (drain)")
    r.update_service(cluster=cluster_arn, service=arn, desiredCount=0)

    run.step("DeleteService (retried while deployments are active)")
    run.retry_on(lambda: r.delete_service(cluster=cluster_arn, service=arn),
                 {"InvalidParameterException"}, "deployments are active", 60)

    run.step("DescribeServices until INACTIVE")

    def inactive():
        svc, missing = describe_service(run, cluster_arn, arn)
        return bool(missing) or (svc is not None and svc["status"] == "INACTIVE")

    run.wait("the service INACTIVE", inactive, 90)
    svc, missing = describe_service(run, cluster_arn, arn)
    run.expect(svc is not None and svc["status"] == "INACTIVE",
               f"a deleted service must stay describable as INACTIVE, got {svc and svc['status']} {missing}")


def destroy_rest(run, cluster_arn, td_arn):
    r = run.ecs
    run.step("DeregisterTaskDefinition")
    out = r.deregister_task_definition(taskDefinition=td_arn)
    run.expect(out["taskDefinition"]["status"] == "INACTIVE", f"status {out['taskDefinition'].get('status')}")

    run.step("DeleteCluster (retried while it holds instances, services or tasks)")
    busy = {"ClusterContainsContainerInstancesException", "ClusterContainsServicesException",
            "ClusterContainsTasksException", "UpdateInProgressException"}
    run.retry_on(lambda: r.delete_cluster(cluster=cluster_arn), busy, "", 90)

    run.step("DescribeClusters until INACTIVE")

    def gone():
        got = r.describe_clusters(clusters=[cluster_arn], include=INCLUDE_CLUSTER)
        found = [c for c in got["clusters"] if c["clusterArn"] == cluster_arn]
        return (found and found[0]["status"] == "INACTIVE") or (not found and got.get("failures"))

    run.wait("the cluster INACTIVE", gone, 30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--image", default="busybox")
    ap.add_argument("--name", default=f"tf{uuid.uuid4().hex[:8]}")
    ap.add_argument("--patience", type=int, default=int(os.environ.get("BERTH_TEST_PATIENCE", "1")))
    ap.add_argument("--no-header-checks", action="store_true",
                    help="skip the x-amzn-RequestId and Content-Type checks")
    ap.add_argument("--no-tasks", action="store_true",
                    help="the endpoint runs no tasks (moto_server): wait for ACTIVE, not steady")
    args = ap.parse_args()

    run = Run(args.endpoint, max(args.patience, 1), not args.no_header_checks)
    run.no_tasks = args.no_tasks
    try:
        cluster_arn = cluster(run, args.name)
        update_cluster(run, cluster_arn)
        td_arn = task_definition(run, args.name, args.image)
        svc_arn = service(run, cluster_arn, td_arn, args.name)
        destroy_service(run, cluster_arn, svc_arn)
        destroy_rest(run, cluster_arn, td_arn)
    except StepFailed as e:
        print(f"FAILED {e}", flush=True)
        report(run)
        return 1
    except Exception as e:  # an SDK error: name the step it broke
        print(f"FAILED {run.step_name}: {type(e).__name__}: {e}", flush=True)
        report(run)
        return 1
    if report(run):
        return 1
    print(f"terraform sequence passed: {run.checker.calls} calls, every answer strictly valid", flush=True)
    return 0


def report(run):
    for v in run.checker.violations:
        print(f"VIOLATION {v}", flush=True)
    return len(run.checker.violations)


if __name__ == "__main__":
    sys.exit(main())

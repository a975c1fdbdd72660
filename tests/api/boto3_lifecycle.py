"""boto3 against `berth serve`: the whole lifecycle of a cluster, task
definitions, tasks and a service; modeled exceptions caught by class;
paginators; waiters. Every raw answer is validated strictly against
botocore's model (strict.py) and must carry no violation.

Usage: python boto3_lifecycle.py (BERTH_ENDPOINT names the server; a
`berth agent` of the same state keeps the service's counts).
Prints one line per step; exits non-zero naming what was wrong.
"""

from boto3_common import LOOP, expect, run, step, waiter

CLUSTER = "boto"


def register(ecs, family):
    return ecs.register_task_definition(
        family=family, networkMode="none",
        containerDefinitions=[{
            "name": "a", "image": "busybox", "memory": 16, "cpu": 64, "essential": True,
            "command": ["sh", "-c", LOOP],
        }],
        tags=[{"key": "suite", "value": "boto3"}],
    )["taskDefinition"]


def exceptions(ecs):
    step("modeled exceptions by class")
    try:
        ecs.describe_services(cluster="no-such-cluster", services=["x"])
        raise AssertionError("DescribeServices on a missing cluster succeeded")
    except ecs.exceptions.ClusterNotFoundException as e:
        expect(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"status {e.response}")
        expect(e.response["ResponseMetadata"].get("RequestId"), "no RequestId")
    try:
        ecs.describe_task_definition(taskDefinition="no-such-family:1")
        raise AssertionError("DescribeTaskDefinition of a missing family succeeded")
    except ecs.exceptions.ClientException:
        pass
    try:
        ecs.update_service(cluster=CLUSTER, service="no-such-service", desiredCount=1)
        raise AssertionError("UpdateService of a missing service succeeded")
    except ecs.exceptions.ServiceNotFoundException:
        pass
    try:
        ecs.list_clusters(maxResults=0)
        raise AssertionError("ListClusters maxResults 0 succeeded")
    except ecs.exceptions.InvalidParameterException:
        pass


def tasks(ecs):
    step("RunTask, waiter tasks_running, DescribeTasks include TAGS")
    out = ecs.run_task(cluster=CLUSTER, taskDefinition="boto-a", count=2,
                       tags=[{"key": "run", "value": "1"}])
    expect(not out["failures"], f"failures {out['failures']}")
    arns = [t["taskArn"] for t in out["tasks"]]
    expect(len(arns) == 2, f"tasks {arns}")
    waiter(ecs, "tasks_running", cluster=CLUSTER, tasks=arns)
    got = ecs.describe_tasks(cluster=CLUSTER, tasks=arns + ["no-such-task"], include=["TAGS"])
    expect(all(t["lastStatus"] == "RUNNING" for t in got["tasks"]), "not all RUNNING")
    expect(got["failures"][0]["reason"] == "MISSING", f"failures {got['failures']}")
    expect(got["tasks"][0]["tags"] == [{"key": "run", "value": "1"}], f"tags {got['tasks'][0].get('tags')}")
    expect(hasattr(got["tasks"][0]["createdAt"], "year"), "createdAt is not parsed as a time")
    plain = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)
    expect("tags" not in plain["tasks"][0], "tags without include TAGS")

    step("paginator list_tasks (page size 1)")
    pages = list(ecs.get_paginator("list_tasks").paginate(
        cluster=CLUSTER, PaginationConfig={"PageSize": 1}))
    listed = [a for p in pages for a in p["taskArns"]]
    expect(sorted(listed) == sorted(arns), f"paged {listed}, ran {arns}")
    expect(len(pages) == 2 and "nextToken" not in pages[-1], f"pages {pages}")

    step("StopTask, waiter tasks_stopped")
    for arn in arns:
        stopped = ecs.stop_task(cluster=CLUSTER, task=arn, reason="boto3 test")
        expect(stopped["task"]["desiredStatus"] == "STOPPED", f"stop {stopped['task']}")
    waiter(ecs, "tasks_stopped", cluster=CLUSTER, tasks=arns)


def instances(ecs):
    step("paginator list_container_instances, DescribeContainerInstances, StartTask")
    pages = list(ecs.get_paginator("list_container_instances").paginate(
        cluster=CLUSTER, PaginationConfig={"PageSize": 1}))
    arns = [a for p in pages for a in p["containerInstanceArns"]]
    expect(len(arns) >= 1, f"instances {arns}")
    got = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    expect(all(i["status"] == "ACTIVE" for i in got["containerInstances"]), f"instances {got}")
    started = ecs.start_task(cluster=CLUSTER, taskDefinition="boto-b",
                             containerInstances=[arns[0]], startedBy="boto3")
    expect(not started["failures"], f"failures {started['failures']}")
    arn = started["tasks"][0]["taskArn"]
    expect(started["tasks"][0]["containerInstanceArn"] == arns[0], f"started {started['tasks'][0]}")
    waiter(ecs, "tasks_running", cluster=CLUSTER, tasks=[arn])
    listed = ecs.list_tasks(cluster=CLUSTER, startedBy="boto3")["taskArns"]
    expect(listed == [arn], f"startedBy boto3: {listed}")
    ecs.stop_task(cluster=CLUSTER, task=arn)
    waiter(ecs, "tasks_stopped", cluster=CLUSTER, tasks=[arn])


def service(ecs):
    step("CreateService, waiter services_stable")
    created = ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition="boto-a",
                                 desiredCount=1, tags=[{"key": "svc", "value": "web"}])
    expect(created["service"]["status"] == "ACTIVE", f"created {created['service']['status']}")
    waiter(ecs, "services_stable", cluster=CLUSTER, services=["web"])

    step("UpdateService to 2 and a new revision, waiter services_stable")
    register(ecs, "boto-a")
    ecs.update_service(cluster=CLUSTER, service="web", desiredCount=2, taskDefinition="boto-a:2")
    waiter(ecs, "services_stable", cluster=CLUSTER, services=["web"])
    s = ecs.describe_services(cluster=CLUSTER, services=["web"], include=["TAGS"])["services"][0]
    expect(s["runningCount"] == 2 and s["taskDefinition"].endswith("boto-a:2"), f"service {s}")
    expect(s["tags"] == [{"key": "svc", "value": "web"}], f"tags {s.get('tags')}")

    step("paginator list_services")
    pages = list(ecs.get_paginator("list_services").paginate(
        cluster=CLUSTER, PaginationConfig={"PageSize": 1}))
    expect([a for p in pages for a in p["serviceArns"]] == [s["serviceArn"]], f"pages {pages}")

    step("UpdateService to 0, DeleteService, waiter services_inactive")
    ecs.update_service(cluster=CLUSTER, service="web", desiredCount=0)
    ecs.delete_service(cluster=CLUSTER, service="web")
    waiter(ecs, "services_inactive", cluster=CLUSTER, services=["web"])
    gone = ecs.describe_services(cluster=CLUSTER, services=["web", "never"])
    expect(gone["services"][0]["status"] == "INACTIVE", f"deleted {gone['services']}")
    expect(gone["failures"][0]["reason"] == "MISSING", f"failures {gone['failures']}")


def main(ecs):
    step("CreateCluster, DescribeClusters include TAGS")
    # CLUSTER was made (for the agent to join) before; this one is new.
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.create_cluster(clusterName="boto-tags", tags=[{"key": "k", "value": "v"}])
    got = ecs.describe_clusters(clusters=["boto-tags", "missing"], include=["TAGS"])
    expect(got["clusters"][0]["status"] == "ACTIVE", f"cluster {got['clusters']}")
    expect(got["clusters"][0]["tags"] == [{"key": "k", "value": "v"}], f"tags {got['clusters']}")
    expect(got["failures"][0]["reason"] == "MISSING", f"failures {got['failures']}")

    step("RegisterTaskDefinition, DescribeTaskDefinition include TAGS")
    td = register(ecs, "boto-a")
    register(ecs, "boto-b")
    expect(td["containerDefinitions"][0]["cpu"] == 64, f"cpu {td['containerDefinitions'][0]}")
    d = ecs.describe_task_definition(taskDefinition="boto-a", include=["TAGS"])
    expect(d["tags"] == [{"key": "suite", "value": "boto3"}], f"tags {d.get('tags')}")

    step("paginators list_task_definitions, list_task_definition_families, list_clusters")
    pages = list(ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix="boto", PaginationConfig={"PageSize": 1}))
    expect(len([a for p in pages for a in p["taskDefinitionArns"]]) == 2, f"pages {pages}")
    pages = list(ecs.get_paginator("list_task_definition_families").paginate(
        familyPrefix="boto", PaginationConfig={"PageSize": 1}))
    expect([f for p in pages for f in p["families"]] == ["boto-a", "boto-b"], f"pages {pages}")
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1}))
    names = [a.rsplit("/", 1)[1] for p in pages for a in p["clusterArns"]]
    expect(CLUSTER in names and "default" in names, f"clusters {names}")

    exceptions(ecs)
    tasks(ecs)
    instances(ecs)
    service(ecs)


if __name__ == "__main__":
    run(main)

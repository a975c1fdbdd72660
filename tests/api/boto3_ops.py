"""boto3 against `berth serve`: issue 14's new operations (tags,
attributes, cluster and account settings, DeleteTaskDefinitions,
capacity providers, RunTask's clientToken, CreateService retried, and
DeleteCluster after the teardown), modeled exceptions caught by class,
paginators, waiters. Every raw answer is validated strictly against
botocore's model (strict.py) and must carry no violation.

Usage: python boto3_ops.py (BERTH_ENDPOINT names the server).
Prints one line per step; exits non-zero naming what was wrong.
"""

import time

from boto3_common import LOOP, expect, raises, run, step, waiter

CLUSTER = "ops"


def clusters(ecs):
    step("CreateCluster with tags, settings and capacity providers; DescribeClusters include")
    ecs.create_cluster(
        clusterName=CLUSTER, tags=[{"key": "team", "value": "a"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1, "base": 0}])
    c = ecs.describe_clusters(clusters=[CLUSTER], include=["TAGS", "SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    expect(c["settings"] == [{"name": "containerInsights", "value": "enabled"}], f"settings {c}")
    expect(c["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"], f"providers {c}")
    expect(c["tags"] == [{"key": "team", "value": "a"}], f"tags {c}")
    ecs.update_cluster(cluster=CLUSTER, settings=[{"name": "containerInsights", "value": "enhanced"}],
                       configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}})
    ecs.update_cluster_settings(cluster=CLUSTER, settings=[{"name": "containerInsights", "value": "disabled"}])
    c = ecs.describe_clusters(clusters=[CLUSTER], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    expect(c["settings"][0]["value"] == "disabled", f"settings {c}")
    expect(c["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT", f"config {c}")
    plain = ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]
    expect("settings" not in plain and "tags" not in plain, f"include left out {plain}")
    raises(ecs, "ClusterNotFoundException", ecs.update_cluster_settings,
           cluster="missing", settings=[{"name": "containerInsights", "value": "enabled"}])
    raises(ecs, "InvalidParameterException", ecs.update_cluster_settings,
           cluster=CLUSTER, settings=[{"name": "containerInsights", "value": "on"}])


def tags(ecs):
    step("TagResource, UntagResource, ListTagsForResource")
    arn = ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "b"}, {"key": "env", "value": "x"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["env"])
    got = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    expect(got == [{"key": "team", "value": "b"}], f"tags {got}")
    base = arn.rsplit(":", 1)[0]
    raises(ecs, "ResourceNotFoundException", ecs.tag_resource,
           resourceArn=f"{base}:service/{CLUSTER}/missing", tags=[{"key": "a", "value": "b"}])
    raises(ecs, "ClusterNotFoundException", ecs.tag_resource,
           resourceArn=f"{base}:cluster/missing", tags=[{"key": "a", "value": "b"}])
    raises(ecs, "InvalidParameterException", ecs.tag_resource,
           resourceArn=arn, tags=[{"key": "aws:reserved", "value": "b"}])


def account_settings(ecs):
    step("PutAccountSetting(Default), ListAccountSettings (paginator), DeleteAccountSetting")
    ecs.put_account_setting(name="containerInsights", value="enabled")
    ecs.put_account_setting_default(name="awsvpcTrunking", value="enabled")
    pages = list(ecs.get_paginator("list_account_settings").paginate(
        effectiveSettings=True, PaginationConfig={"PageSize": 1}))
    settings = {s["name"]: s["value"] for p in pages for s in p["settings"]}
    expect(len(pages) == len(settings) == 11, f"pages {len(pages)}: {settings}")
    expect(settings["containerInsights"] == "enabled" and settings["awsvpcTrunking"] == "enabled",
           f"effective {settings}")
    got = ecs.delete_account_setting(name="containerInsights")["setting"]
    expect(got["value"] == "enabled", f"deleted {got}")
    expect(ecs.list_account_settings()["settings"] == [], "none of the principal's left")
    raises(ecs, "InvalidParameterException", ecs.put_account_setting,
           name="awsvpcTrunking", value="maybe")


def attributes(ecs):
    step("PutAttributes, ListAttributes (paginator), DeleteAttributes")
    arn = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"][0]
    ecs.put_attributes(cluster=CLUSTER, attributes=[
        {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": arn},
        {"name": "gpu", "targetId": arn}])
    pages = list(ecs.get_paginator("list_attributes").paginate(
        cluster=CLUSTER, targetType="container-instance", PaginationConfig={"PageSize": 1}))
    names = [a["name"] for p in pages for a in p["attributes"]]
    expect("stack" in names and "ecs.os-type" in names and len(pages) == len(names),
           f"attributes {names} over {len(pages)} pages")
    got = ecs.list_attributes(cluster=CLUSTER, targetType="container-instance",
                              attributeName="stack", attributeValue="prod")["attributes"]
    expect(len(got) == 1 and got[0]["targetId"] == arn, f"filtered {got}")
    ecs.delete_attributes(cluster=CLUSTER, attributes=[{"name": "stack", "targetId": arn}])
    raises(ecs, "TargetNotFoundException", ecs.put_attributes, cluster=CLUSTER,
           attributes=[{"name": "x", "targetId": "0123abcd"}])


def fargate_tasks(ecs):
    step("DescribeCapacityProviders; RunTask by strategy with a clientToken, retried")
    got = ecs.describe_capacity_providers()["capacityProviders"]
    expect([p["name"] for p in got] == ["FARGATE", "FARGATE_SPOT"], f"providers {got}")
    ecs.register_task_definition(
        family="ops-far", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512",
        containerDefinitions=[{"name": "a", "image": "busybox", "command": ["sh", "-c", LOOP]}])
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    run = dict(cluster=CLUSTER, taskDefinition="ops-far", count=2,
               capacityProviderStrategy=strategy, clientToken="ops-token-1")
    first = ecs.run_task(**run)["tasks"]
    again = ecs.run_task(**run)["tasks"]
    arns = [t["taskArn"] for t in first]
    expect(arns == [t["taskArn"] for t in again] and len(arns) == 2, f"retry {arns}")
    expect(all(t["capacityProviderName"] == "FARGATE_SPOT" for t in first), f"providers {first}")
    raises(ecs, "ConflictException", ecs.run_task, **dict(run, count=1))
    waiter(ecs, "tasks_running", cluster=CLUSTER, tasks=arns)
    listed = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    expect(sorted(listed) == sorted(arns), f"no more tasks: {listed}")
    ecs.tag_resource(resourceArn=arns[0], tags=[{"key": "k", "value": "v"}])
    got = ecs.describe_tasks(cluster=CLUSTER, tasks=[arns[0]], include=["TAGS"])["tasks"][0]
    expect(got["tags"] == [{"key": "k", "value": "v"}], f"task tags {got.get('tags')}")
    for arn in arns:
        ecs.stop_task(cluster=CLUSTER, task=arn)
    waiter(ecs, "tasks_stopped", cluster=CLUSTER, tasks=arns)


def task_definitions(ecs):
    step("DeleteTaskDefinitions")
    ecs.register_task_definition(
        family="ops-old", containerDefinitions=[{"name": "a", "image": "busybox", "memory": 16}])
    arn = ecs.deregister_task_definition(taskDefinition="ops-old:1")["taskDefinition"]["taskDefinitionArn"]
    out = ecs.delete_task_definitions(taskDefinitions=[arn, "ops-far:1"])
    expect(out["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS", f"deleted {out}")
    expect(len(out["failures"]) == 1, f"the ACTIVE one fails {out['failures']}")
    got = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    expect(got["status"] == "DELETE_IN_PROGRESS", f"describable {got['status']}")


def services_and_teardown(ecs):
    step("CreateService retried, PutClusterCapacityProviders in use, teardown, DeleteCluster")
    create = dict(cluster=CLUSTER, serviceName="ops-svc", taskDefinition="ops-far", desiredCount=1,
                  capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    first = ecs.create_service(**create)["service"]
    again = ecs.create_service(**create)["service"]
    expect(first["createdAt"] == again["createdAt"], f"same service {first} {again}")
    msg = raises(ecs, "InvalidParameterException", ecs.create_service, **dict(create, desiredCount=2))
    expect("not idempotent" in msg, msg)
    raises(ecs, "ResourceInUseException", ecs.put_cluster_capacity_providers, cluster=CLUSTER,
           capacityProviders=["FARGATE_SPOT"], defaultCapacityProviderStrategy=[])
    waiter(ecs, "services_stable", cluster=CLUSTER, services=["ops-svc"])
    ecs.update_service(cluster=CLUSTER, service="ops-svc", desiredCount=0)
    ecs.delete_service(cluster=CLUSTER, service="ops-svc")
    waiter(ecs, "services_inactive", cluster=CLUSTER, services=["ops-svc"])
    for _ in range(120):
        live = [t for t in ecs.describe_tasks(
            cluster=CLUSTER, tasks=ecs.list_tasks(cluster=CLUSTER)["taskArns"] or ["none"])["tasks"]
            if t["lastStatus"] != "STOPPED"]
        if not live:
            break
        time.sleep(1)
    got = ecs.delete_cluster(cluster=CLUSTER)["cluster"]
    expect(got["status"] == "INACTIVE", f"deleted {got}")


def main(ecs):
    clusters(ecs)
    tags(ecs)
    account_settings(ecs)
    attributes(ecs)
    fargate_tasks(ecs)
    task_definitions(ecs)
    services_and_teardown(ecs)


if __name__ == "__main__":
    run(main)

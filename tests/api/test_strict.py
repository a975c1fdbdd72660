"""Self-test of strict.py: good bodies pass, each kind of bad body is caught
with its JSON path, and attach() catches a bad answer through a real boto3
client (against a stub HTTP server on loopback that answers canned bodies).

Run: python tests/api/test_strict.py  (exit 0 = all passed)
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strict  # noqa: E402

ARN = "arn:aws:ecs:local:000000000000"

GOOD_TASK = {
    "taskArn": f"{ARN}:task/default/0123456789abcdef",
    "clusterArn": f"{ARN}:cluster/default",
    "taskDefinitionArn": f"{ARN}:task-definition/sleep:1",
    "lastStatus": "RUNNING",
    "desiredStatus": "RUNNING",
    "cpu": "256",
    "memory": "512",
    "version": 3,
    "createdAt": 1764500000.125,
    "startedAt": 1764500001,
    "launchType": "EC2",
    "enableExecuteCommand": False,
    "containers": [
        {
            "containerArn": f"{ARN}:container/default/0123/abc",
            "name": "sleep",
            "lastStatus": "RUNNING",
            "exitCode": None,
            "cpu": "0",
            "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
        }
    ],
    "tags": [{"key": "team", "value": "a"}],
    "overrides": {"containerOverrides": [{"name": "sleep", "command": ["sleep", "1"]}]},
}

GOOD_TASKDEF = {
    "taskDefinition": {
        "taskDefinitionArn": f"{ARN}:task-definition/sleep:1",
        "family": "sleep",
        "revision": 1,
        "status": "ACTIVE",
        "cpu": "256",
        "memory": "512",
        "registeredAt": 1764500000.5,
        "containerDefinitions": [
            {"name": "sleep", "image": "busybox", "cpu": 128, "memory": 64, "essential": True,
             "environment": [{"name": "A", "value": "1"}]}
        ],
        "requiresCompatibilities": ["EC2"],
    },
    "tags": [],
}


def bad(task_changes=None, drop=()):
    task = json.loads(json.dumps(GOOD_TASK))
    for key in drop:
        task.pop(key)
    for path, value in (task_changes or {}).items():
        node = task
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    return {"tasks": [task], "failures": []}


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def expect(violations, *needles):
    """Each needle must appear in some violation; no violation without one."""
    for n in needles:
        assert any(n in v for v in violations), f"expected {n!r} in {violations}"
    if not needles:
        assert violations == [], f"expected no violations, got {violations}"


@case
def good_bodies_pass():
    expect(strict.validate("DescribeTasks", {"tasks": [GOOD_TASK], "failures": []}))
    expect(strict.validate("DescribeTasks", json.dumps({"tasks": [], "failures": [
        {"arn": "x", "reason": "MISSING"}]}).encode()))
    expect(strict.validate("DescribeTaskDefinition", GOOD_TASKDEF))
    expect(strict.validate("ListTasks", {"taskArns": ["a", "b"], "nextToken": "t"}))
    expect(strict.validate("ListTasks", {}))
    expect(strict.validate("DescribeClusters", {"clusters": [{
        "clusterArn": f"{ARN}:cluster/default", "clusterName": "default", "status": "ACTIVE",
        "registeredContainerInstancesCount": 1, "runningTasksCount": 0, "pendingTasksCount": 0,
        "activeServicesCount": 0, "statistics": [], "tags": [{"key": "k", "value": "v"}],
        "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": [], "defaultCapacityProviderStrategy": []}], "failures": []}))


@case
def unknown_member_is_refused():
    expect(strict.validate("DescribeTasks", bad({"x-berth": {"pid": 1}})), "tasks[0].x-berth: not a member of Task")
    expect(strict.validate("ListTasks", {"taskArns": [], "extra": 1}), "extra: not a member")


@case
def wrong_types_are_refused():
    expect(strict.validate("DescribeTasks", bad({"cpu": 256})), "tasks[0].cpu: expected a string")
    expect(strict.validate("DescribeTasks", bad({"version": "3"})), "tasks[0].version: expected an integer")
    expect(strict.validate("DescribeTasks", bad({"version": 3.0})), "tasks[0].version: expected an integer")
    expect(strict.validate("DescribeTasks", bad({"version": True})), "tasks[0].version: expected an integer")
    expect(strict.validate("DescribeTasks", bad({"enableExecuteCommand": "false"})),
           "tasks[0].enableExecuteCommand: expected a boolean")
    expect(strict.validate("DescribeTasks", bad({"enableExecuteCommand": 0})), "expected a boolean")
    td = json.loads(json.dumps(GOOD_TASKDEF))
    td["taskDefinition"]["containerDefinitions"][0]["memory"] = "64"
    expect(strict.validate("DescribeTaskDefinition", td),
           "taskDefinition.containerDefinitions[0].memory: expected an integer")
    expect(strict.validate("DescribeTasks", bad({"containers.0.exitCode": 2**40})), "out of range")


@case
def timestamps_must_be_numbers():
    expect(strict.validate("DescribeTasks", bad({"createdAt": "2026-11-30T15:00:00Z"})),
           "tasks[0].createdAt: expected epoch seconds")
    expect(strict.validate("DescribeTasks", bad({"startedAt": "1764500001"})), "tasks[0].startedAt")


@case
def enums_are_checked():
    expect(strict.validate("DescribeTasks", bad({"launchType": "DOCKER"})),
           "tasks[0].launchType: 'DOCKER' is not one of")
    expect(strict.validate("DescribeTasks", bad({"containers.0.networkBindings.0.protocol": "TCP"})),
           "tasks[0].containers[0].networkBindings[0].protocol")


@case
def containers_recurse():
    expect(strict.validate("DescribeTasks", bad({"containers": {"name": "x"}})),
           "tasks[0].containers: expected an array")
    expect(strict.validate("DescribeTasks", bad({"containers.0": "sleep"})),
           "tasks[0].containers[0]: expected an object")
    expect(strict.validate("DescribeTasks", bad({"tags": [{"key": "k", "value": 1}]})),
           "tasks[0].tags[0].value: expected a string")
    expect(strict.validate("DescribeTasks", bad({"tags": [None]})), "tasks[0].tags[0]: null in a list")
    expect(strict.validate("DescribeClusters", {"clusters": [{"attachments": [{"details": [{"name": 1}]}]}]}),
           "clusters[0].attachments[0].details[0].name")


@case
def required_members():
    # Attribute.name is required by the model.
    expect(strict.validate("ListAttributes", {"attributes": [{"value": "v"}]}),
           "attributes[0].name: required by Attribute")


@case
def raw_json_traps():
    expect(strict.validate("ListTasks", b'{"taskArns": [], "taskArns": []}'), "duplicate key")
    expect(strict.validate("DescribeTasks", b'{"tasks": [{"version": NaN}]}'), "not JSON")
    expect(strict.validate("ListTasks", b"[]"), "<body>: expected an object")
    expect(strict.validate("ListTasks", b""), "<body>: not a JSON object")
    expect(strict.validate("ListTasks", b"{not json"), "<body>: not a JSON object")


@case
def errors():
    expect(strict.validate_error("DescribeServices", 400,
                                 {"__type": "ClusterNotFoundException", "message": "no"}))
    expect(strict.validate_error("ListTasks", 500, {"__type": "ServerException", "message": "disk"}))
    expect(strict.validate_error("ListTasks", 400, {"__type": "SerializationException", "message": "x"}))
    expect(strict.validate_error("ListTasks", 413, {"__type": "RequestEntityTooLargeException", "message": "x"}))
    expect(strict.validate_error("ListTasks", 500, {"__type": "ClientException", "message": "x"}),
           "status: ClientException must be HTTP 400")
    expect(strict.validate_error("ListTasks", 400, {"__type": "ServerException", "message": "x"}),
           "must be HTTP 500")
    expect(strict.validate_error("ListTasks", 400, {"__type": "NoSuchThing", "message": "x"}),
           "no modeled ECS exception")
    expect(strict.validate_error("ListTasks", 400, {"message": "x"}), "__type")
    expect(strict.validate_error("ListTasks", 400, {"__type": "ClientException", "message": 3}),
           "message: expected a string")
    expect(strict.validate_error("ListTasks", 400, {"__type": "ClientException", "message": "x", "code": 1}),
           "code: not a member of ClientException")
    expect(strict.validate_error("ListTasks", 400, {"__type": "ClientException", "message": "x"},
                                 {"X-Amzn-ErrorType": "ServerException"}), "differs from __type")
    expect(strict.validate_error("DescribeClusters", 400, {"__type": "ClusterNotFoundException", "message": "x"},
                                 in_operation=True), "not among DescribeClusters's modeled errors")


@case
def headers():
    ok = {"x-amzn-RequestId": "r", "Content-Type": "application/x-amz-json-1.1"}
    expect(strict.validate_response("ListTasks", 200, ok, b"{}"))
    expect(strict.validate_response("ListTasks", 200, {"Content-Type": "application/x-amz-json-1.1"}, b"{}"),
           "x-amzn-RequestId header missing")
    expect(strict.validate_response("ListTasks", 200, {"x-amzn-RequestId": "r", "Content-Type": "text/html"},
                                    b"{}"), "Content-Type")
    expect(strict.validate_response("ListTasks", 200, {}, b"{}", check_headers=False))


@case
def unknown_operation_is_an_error():
    try:
        strict.validate("NoSuchOp", {})
    except ValueError as e:
        assert "NoSuchOp" in str(e)
    else:
        raise AssertionError("validate accepted an unknown operation")


# --- attach(): a real boto3 client against a stub that answers canned bodies.

class Stub(BaseHTTPRequestHandler):
    answers = {}  # operation -> (status, body bytes)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        op = self.headers.get("X-Amz-Target", "").split(".")[-1]
        status, body = self.answers.get(op, (400, b'{"__type":"UnknownOperationException","message":"?"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "stub")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@case
def attach_checks_a_real_client():
    import boto3
    import botocore.config

    server = HTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Stub.answers = {
            "ListTasks": (200, b'{"taskArns": ["a"]}'),
            "DescribeTasks": (200, json.dumps(bad({"createdAt": "2026-11-30T15:00:00Z"})).encode()),
            "ListClusters": (400, b'{"__type": "ClusterNotFoundException", "message": "gone"}'),
        }
        client = boto3.client(
            "ecs", endpoint_url=f"http://127.0.0.1:{server.server_port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=botocore.config.Config(retries={"max_attempts": 1}))
        checker = strict.attach(client)
        assert client.list_tasks()["taskArns"] == ["a"]
        try:
            client.describe_tasks(tasks=["a"])
        except strict.StrictViolation as e:
            assert "tasks[0].createdAt" in str(e), e
        else:
            raise AssertionError("attach let a string timestamp through")
        # A modeled error still reaches the caller as its class.
        try:
            client.list_clusters()
        except client.exceptions.ClusterNotFoundException:
            pass
        collecting = boto3.client(
            "ecs", endpoint_url=f"http://127.0.0.1:{server.server_port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test")
        collected = strict.attach(collecting, raise_=False)
        collecting.describe_tasks(tasks=["a"])
        assert collected.calls == 1 and len(collected.violations) == 1, collected.violations
        try:
            collected.assert_clean()
        except strict.StrictViolation:
            pass
        else:
            raise AssertionError("assert_clean passed with violations")
        assert checker.calls == 3
    finally:
        server.shutdown()


def main():
    failed = 0
    for fn in CASES:
        try:
            fn()
            print(f"ok   {fn.__name__}")
        except Exception as e:  # report every case, then fail
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Bad requests over raw HTTP (urllib) to `berth serve`: each answer must
be a modeled error as strict.py checks it (status, `__type`, message,
request id, content type, X-Amzn-ErrorType); a good call after each must
succeed. Prints "N answers, 0 violations" or the violations (exit 1).
BERTH_ENDPOINT names the server.
"""

import os
import sys
import urllib.error
import urllib.request

import strict

ENDPOINT = os.environ["BERTH_ENDPOINT"]
PREFIX = "AmazonEC2ContainerServiceV20141113."

CASES = [
    ("ListClusters", b'{"maxResults":'),
    ("ListClusters", b'{"maxResults":"1"}'),
    ("DescribeClusters", b'{"clusterz":["a"]}'),
    ("RunTask", b'{"taskDefinition":7}'),
    ("DescribeTasks", b'{"tasks":"abc"}'),
    ("ListClusters", b" " * (2 << 20)),
    ("NoSuchOperation", b"{}"),
    ("DeleteCluster", b"{}"),
    ("DescribeServices", b'{"cluster":"nope","services":["x"]}'),
]


def call(operation, body):
    req = urllib.request.Request(ENDPOINT + "/", data=body, method="POST", headers={
        "X-Amz-Target": PREFIX + operation,
        "Content-Type": "application/x-amz-json-1.1",
    })
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def main():
    violations = []
    for operation, body in CASES:
        status, headers, raw = call(operation, body)
        if status < 400:
            violations.append(f"{operation} {body[:40]!r}: status {status}")
            continue
        found = strict.validate_response(operation, status, headers, raw)
        violations += [f"{operation} {body[:40]!r}: {v}" for v in found]
        ok, _, answer = call("ListClusters", b"{}")
        if ok != 200:
            violations.append(f"after {operation}: ListClusters answered {ok} {answer[:200]!r}")
    for v in violations:
        print(v)
    print(f"{len(CASES)} answers, {len(violations)} violations")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()

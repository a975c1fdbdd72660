"""Generates sigv4_botocore.json: SigV4 vectors signed by botocore's own
signer (botocore.auth.SigV4Auth), for api/src/auth/sigv4.rs's tests.

Run once (python3 with botocore): python3 gen_sigv4.py > sigv4_botocore.json
The clock is fixed, so the output is stable for a given botocore version.
"""
import datetime
import json
import sys
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NOW = datetime.datetime(2026, 11, 30, 15, 4, 5)
TARGET = "AmazonEC2ContainerServiceV20141113."
JSON = "application/x-amz-json-1.1"


def case(name, url, body, headers, region="us-east-1", service="ecs",
         key="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
         token=None, method="POST"):
    req = AWSRequest(method=method, url=url, data=body.encode("utf-8"),
                     headers=dict(headers))
    creds = Credentials(key, secret, token)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
        botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    sent = [["host", botocore.auth._host_from_url(url)]]
    sent += [[k, v] for k, v in req.headers.items()]
    path_and_query = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    return {
        "name": name,
        "method": method,
        "uri": "/" + path_and_query,
        "headers": sent,
        "body": body,
        "access_key": key,
        "secret": secret,
        "now": NOW.strftime("%Y%m%dT%H%M%SZ"),
    }


def ecs(op, body, **kw):
    headers = {"X-Amz-Target": TARGET + op, "Content-Type": JSON}
    headers.update(kw.pop("headers", {}))
    return headers, body, kw


cases = []
h, b, kw = ecs("ListClusters", "{}")
cases.append(case("aws-cli ListClusters", "http://127.0.0.1:8086/", b, h, **kw))
h, b, kw = ecs("RunTask", json.dumps({
    "cluster": "default", "taskDefinition": "sleep360:1", "count": 2,
    "clientToken": "c36802a9-54c2-4b2e-9a0e-6f4c1b1e2f3a"}))
cases.append(case("RunTask in eu-west-3, other key", "https://ecs.example.test/", b, h,
                  region="eu-west-3", key="AKIAOTHERKEY", secret="other/secret+key=="))
h, b, kw = ecs("DescribeClusters", json.dumps({"clusters": ["démo"]}, ensure_ascii=False))
cases.append(case("non-ASCII body", "http://127.0.0.1:39999/", b, h))
h, b, kw = ecs("ListTasks", "{}", headers={"X-Amz-Security-Token": "FQoGZXIvYXdzEBYaDtoken"})
cases.append(case("session token signed", "http://localhost:8086/", b, h, token="FQoGZXIvYXdzEBYaDtoken"))
h, b, kw = ecs("ListServices", "{\"cluster\":\"c\"}", headers={"X-Custom": "  a   b\tc  "})
cases.append(case("header whitespace collapsed", "http://127.0.0.1:8086/", b, h))
h, b, kw = ecs("ListServices", "{}")
cases.append(case("path and query canonicalised",
                  "http://127.0.0.1:8086/a/./b//c/../d%20e/?b=2&a=1&a=0&c=", b, h))
cases.append(case("empty body GET", "http://127.0.0.1:8086/", "", {}, method="GET"))
h, b, kw = ecs("ListClusters", "{}", headers={"Date": "Mon, 30 Nov 2026 15:00:00 GMT"})
cases.append(case("Date header instead of X-Amz-Date", "http://127.0.0.1:8086/", b, h))
body = "{\"cluster\":\"x\"}"
import hashlib
h, b, kw = ecs("DeleteCluster", body,
               headers={"X-Amz-Content-SHA256": hashlib.sha256(body.encode()).hexdigest()})
cases.append(case("x-amz-content-sha256 sent", "http://127.0.0.1:8086/", b, h))

json.dump({"botocore": botocore.__version__, "cases": cases}, sys.stdout, indent=1,
          ensure_ascii=False)
sys.stdout.write("\n")

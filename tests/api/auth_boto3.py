"""boto3 against `berth serve --auth sigv4` (run by tests/api_auth.rs).

argv: ACCESS_KEY SECRET [CA_BUNDLE]; the endpoint is BERTH_ENDPOINT.
The right keys are served; a wrong secret, an unknown key, no signature
and a clock 20 minutes off are each refused with AWS's exception and 403.
"""
import datetime
import os
import sys
from unittest import mock

import boto3
import botocore.auth
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

import strict

ENDPOINT = os.environ["BERTH_ENDPOINT"]
KEY, SECRET = sys.argv[1], sys.argv[2]
VERIFY = sys.argv[3] if len(sys.argv) > 3 else None


def client(key=KEY, secret=SECRET, **config):
    return boto3.client(
        "ecs",
        endpoint_url=ENDPOINT,
        region_name="eu-west-3",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        verify=VERIFY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def refused(c, code, call=None):
    try:
        (call or c.list_clusters)()
    except ClientError as e:
        err, meta = e.response["Error"], e.response["ResponseMetadata"]
        assert err["Code"] == code, e.response
        assert meta["HTTPStatusCode"] == 403, e.response
        print(f"{code}: {err['Message'][:100]}")
        return err["Message"]
    raise AssertionError(f"expected {code}, the call succeeded")


ok = client()
strict.attach(ok)
ok.create_cluster(clusterName="signed-by-boto3", tags=[{"key": "lab", "value": "ünïcode"}])
arns = ok.list_clusters()["clusterArns"]
assert any(a.endswith("/signed-by-boto3") for a in arns), arns
described = ok.describe_clusters(clusters=["signed-by-boto3"])["clusters"]
assert described[0]["clusterName"] == "signed-by-boto3", described
print("served:", len(arns), "clusters")

msg = refused(client(secret=SECRET + "x"), "InvalidSignatureException")
assert "does not match" in msg, msg
msg = refused(client(key="AKIAUNKNOWN"), "UnrecognizedClientException")
assert "AKIAUNKNOWN" in msg, msg
refused(client(signature_version=UNSIGNED), "MissingAuthenticationTokenException")

# A request signed 20 minutes ago (botocore's own clock, moved back).
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
old = now - datetime.timedelta(minutes=20)
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=old):
    msg = refused(client(), "InvalidSignatureException")
assert msg.startswith("Signature expired"), msg
print("ok")

"""boto3 against `berth serve --auth sigv4` for the secret store's services
(run by tests/api_auth.rs).

argv: ACCESS_KEY SECRET; the endpoint is BERTH_ENDPOINT. SSM and Secrets
Manager clients, which sign for `ssm` and `secretsmanager`, write and read
a parameter and a secret; a request whose credential scope names another
service than its X-Amz-Target's (an ECS call signed for ssm, an SSM call
signed for ecs) is refused with InvalidSignatureException and 403.
"""
import json
import os
import sys
import urllib.error
import urllib.request

import boto3
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ENDPOINT = os.environ["BERTH_ENDPOINT"]
KEY, SECRET = sys.argv[1], sys.argv[2]
REGION = "eu-west-3"


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


ssm = client("ssm")
put = ssm.put_parameter(Name="/signed/boto3", Value="pw-b0t3", Type="SecureString")
assert put["Version"] == 1, put
got = ssm.get_parameter(Name="/signed/boto3", WithDecryption=True)["Parameter"]
assert got["Value"] == "pw-b0t3", got
print("ssm: put and read /signed/boto3")

sm = client("secretsmanager")
made = sm.create_secret(Name="signed-boto3", SecretString='{"user":"u-b0t3"}')
value = sm.get_secret_value(SecretId=made["ARN"])["SecretString"]
assert json.loads(value)["user"] == "u-b0t3", value
print("secretsmanager: created and read signed-boto3")


def signed_post(target, service, body):
    """POST / with `target`, signed by botocore's SigV4 for `service`."""
    req = AWSRequest(
        method="POST",
        url=ENDPOINT + "/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), service, REGION).add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.Request(
        prepared.url, data=body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(raw) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# Signed for its own service: served.
status, out = signed_post(
    "AmazonSSM.GetParameter", "ssm", b'{"Name":"/signed/boto3","WithDecryption":true}'
)
assert status == 200 and out["Parameter"]["Value"] == "pw-b0t3", (status, out)

# Signed for another service: refused, and nothing done.
for target, service, body, wanted in [
    ("AmazonEC2ContainerServiceV20141113.CreateCluster", "ssm",
     b'{"clusterName":"cross-signed"}', "ecs"),
    ("AmazonSSM.PutParameter", "ecs",
     b'{"Name":"/cross","Value":"x","Type":"String"}', "ssm"),
    ("secretsmanager.CreateSecret", "ssm",
     b'{"Name":"cross","SecretString":"x"}', "secretsmanager"),
]:
    status, out = signed_post(target, service, body)
    assert status == 403, (target, status, out)
    assert out["__type"] == "InvalidSignatureException", out
    said = f"Credential should be scoped to correct service: '{wanted}', not '{service}'"
    assert said in out["message"], out
    print(f"{target} signed for {service}: refused")

clusters = client("ecs").list_clusters()["clusterArns"]
assert not any(a.endswith("/cross-signed") for a in clusters), clusters
try:
    ssm.get_parameter(Name="/cross")
    raise AssertionError("/cross was written")
except ssm.exceptions.ParameterNotFound:
    pass
print("ok")

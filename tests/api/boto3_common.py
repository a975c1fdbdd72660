"""What the boto3 scripts against `berth serve` (boto3_lifecycle.py,
boto3_ops.py) share: the client, with every raw answer validated
strictly (strict.py); steps, expectations, waiters; the run that reports
any failure by its kind and exits non-zero.
"""

import os
import sys

import boto3
import botocore.config

import strict

ENDPOINT = os.environ["BERTH_ENDPOINT"]
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def step(name):
    print(f"step: {name}", flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(ecs, exception, call, **kwargs):
    cls = getattr(ecs.exceptions, exception)
    try:
        call(**kwargs)
    except cls as e:
        return str(e)
    raise AssertionError(f"{call.__name__}({kwargs}) did not raise {exception}")


def client():
    # No retries: a deterministic error must come back the first time.
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1})
    ecs = boto3.client(
        "ecs", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=config)
    return ecs, strict.attach(ecs)


def waiter(ecs, name, **kwargs):
    # ECS's delays (6 s, 15 s) are for AWS; berth answers at once.
    ecs.get_waiter(name).wait(WaiterConfig={"Delay": 1, "MaxAttempts": 120}, **kwargs)


def run(steps):
    """A client; `steps(ecs)`; every answer strictly valid. Exits 1 naming
    the first failure and its kind."""
    try:
        ecs, checker = client()
        steps(ecs)
        checker.assert_clean()
        print(f"ok: {checker.calls} answers validated strictly", flush=True)
    except Exception as e:  # noqa: BLE001 - report any failure with its kind
        print(f"FAILED: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)

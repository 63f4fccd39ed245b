"""Helpers for the sandbox conformance tests: deploy endpoints, read their logs, drive the AWS CLI,
send raw (signed-looking) HTTP requests, and manage faults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from botocore.config import Config
from botocore.exceptions import ClientError

from byoc.sandbox import ACCOUNT, seed

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ESD-createEndpoint-Role"
ARN_PREFIX = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
PING_FAILURE = ("The primary container for production variant {variant} did not pass the ping health check. "
                "Please check CloudWatch logs for this endpoint.")
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def model(sm, ecr, name: str, behavior: str = "healthy", repository: str = "sd", tag: Optional[str] = None,
          architecture: Optional[str] = None, environment: Optional[dict] = None) -> tuple:
    """Push an image with `behavior` and create model `name` on it; returns (image uri, digest)."""
    image, digest = seed.push_image(ecr, repository, tag or name, behavior, architecture)
    container = {"Image": image, **({"Environment": environment} if environment else {})}
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    return image, digest


OTHER_ACCOUNT = "210987654321"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def other_account_image(sandbox, repository: str = "shared/sd", tag: str = "v1", behavior: str = "healthy") -> tuple:
    """Push an image into account OTHER_ACCOUNT (as a role session there); returns (uri, that account's ECR client)."""
    import boto3

    sts = seed.session(sandbox.url).client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/publisher", RoleSessionName="push")["Credentials"]
    ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=sandbox.url,
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])
    seed.push_image(ecr, repository, tag, behavior)
    return f"{OTHER_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repository}:{tag}", ecr


def grant_pull(ecr, repository: str, *principals: str, actions: Optional[list] = None) -> None:
    """Set the repository policy: `principals` may run `actions` (default: pull)."""
    ecr.set_repository_policy(repositoryName=repository, policyText=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Allow", "Effect": "Allow", "Principal": {"AWS": list(principals)},
                       "Action": actions or PULL}]}))


def config(sm, name: str, model_name: str, instance_type: str = "ml.g5.xlarge", count: int = 1,
           variant: str = "AllTraffic", extra_variants: tuple = (), variant_fields: Optional[dict] = None,
           **fields) -> str:
    """Create an endpoint config with one variant (plus `extra_variants` dicts); returns its name."""
    variants = [{"VariantName": variant, "ModelName": model_name, "InstanceType": instance_type,
                 "InitialInstanceCount": count, "InitialVariantWeight": 1.0, **(variant_fields or {})},
                *extra_variants]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, **fields)
    return name


def revision(sm, ecr, endpoint: str, tag: str, behavior: str = "healthy", instance_type: str = "ml.g5.xlarge",
             count: int = 1, architecture: Optional[str] = None, environment: Optional[dict] = None,
             **fields) -> tuple:
    """Model `<endpoint>-m-<tag>` and config `<endpoint>-c-<tag>` on a new image; returns (config, digest)."""
    _, digest = model(sm, ecr, f"{endpoint}-m-{tag}", behavior, tag=tag, architecture=architecture,
                      environment=environment)
    cfg = config(sm, f"{endpoint}-c-{tag}", f"{endpoint}-m-{tag}", instance_type, count, **fields)
    return cfg, digest


def endpoint(sm, ecr, name: str = "ep", behavior: str = "healthy", wait: bool = True, **kwargs) -> tuple:
    """Create endpoint `name` on revision v1; returns (config, digest) once it settled (if `wait`)."""
    cfg, digest = revision(sm, ecr, name, "v1", behavior, **kwargs)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=cfg)
    if wait:
        seed.wait_status(sm, name)
    return cfg, digest


def endpoints(sm, ecr, names: list, timeout: float = 30.0) -> list:
    """Create the endpoints `names` at once (they provision side by side), then wait for them all."""
    for name in names:
        endpoint(sm, ecr, name, wait=False)
    for name in names:
        seed.wait_status(sm, name, timeout=timeout)
    return names


def settle(sm, name: str, timeout: float = 30.0) -> dict:
    """Describe `name` once it is InService or Failed (after an update: once it left Updating)."""
    return seed.wait_status(sm, name, ("InService", "Failed"), timeout)


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; returns that value (or the last falsy one)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)


def gone(sm, name: str) -> bool:
    try:
        sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        return "Could not find endpoint" in exc.response["Error"]["Message"]
    return False


def error_of(call, *args, **kwargs) -> dict:
    """The AWS error (Code, Message) a boto3 call raises; fails the test if it succeeds."""
    try:
        call(*args, **kwargs)
    except ClientError as exc:
        return {**exc.response["Error"], "Status": exc.response["ResponseMetadata"]["HTTPStatusCode"]}
    raise AssertionError(f"{getattr(call, '__name__', call)} succeeded; an error was expected")


def streams(logs, endpoint_name: str) -> dict:
    """{stream name: [messages]} of the endpoint's log group."""
    group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    out = {}
    for s in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
        out[s["logStreamName"]] = [e["message"] for e in events]
    return out


def digest_served(rt, name: str) -> str:
    body = json.loads(rt.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")["Body"].read())
    return body["digest"]


# -- the sandbox's control paths -------------------------------------------------------------------

def control(sandbox, method: str, path: str, body=None) -> tuple:
    """(status, parsed JSON) of a request to /_sandbox/..."""
    return http(sandbox.url + path, method, json.dumps(body).encode() if body is not None else None)


def add_fault(sandbox, **spec) -> dict:
    status, data = control(sandbox, "POST", "/_sandbox/faults", spec)
    assert status == 200, data
    return data


def http(url: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[dict] = None) -> tuple:
    """(status, body parsed as JSON when possible, else text) of one raw HTTP request."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def signed_headers(service: str, target: Optional[str] = None, content_type: Optional[str] = None,
                   region: str = "us-east-1") -> dict:
    """Headers shaped like a SigV4-signed call (the sandbox reads the credential scope, not the signature)."""
    headers = {"Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/{region}/{service}/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature=0000"}
    if target:
        headers["X-Amz-Target"] = target
    if content_type:
        headers["Content-Type"] = content_type
    return headers


# -- the AWS CLI -------------------------------------------------------------------------------------

def aws_executable() -> str:
    local = Path(sys.executable).with_name("aws")
    found = str(local) if local.exists() else shutil.which("aws")
    assert found, "the AWS CLI (awscli, in the test extra) is not installed"
    return found


def aws(sandbox, *args: str, region: str = "us-east-1", **extra_env: str) -> subprocess.CompletedProcess:
    """Run `aws <args> --output json` against the sandbox, as a user with AWS_ENDPOINT_URL set would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sandbox.env(region))
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", **extra_env})
    return subprocess.run([aws_executable(), *args, "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=120)


def aws_json(sandbox, *args: str, region: str = "us-east-1"):
    out = aws(sandbox, *args, region=region)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}

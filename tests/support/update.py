"""Helpers for the `byoc update | restore | rollback | history | status` tests: run the CLI in-process
or as a subprocess, seed a Stable Diffusion deployment, count SageMaker resources, invoke continuously."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from byoc.cli.common import DEBUG
from byoc.sandbox import seed
from support.cli import run_cli

ASYNC_EP = "infer-endpoint-a1b2c3d"
REALTIME_EP = "infer-endpoint-f9e8d7c"
BYOC = str(Path(sys.executable).with_name("byoc"))
JSON_KEYS = {"endpoint", "result", "image", "digest", "revision", "previous_image", "endpoint_config", "model",
             "elapsed_seconds", "diagnosis"}


def run(capsys, *argv: str) -> tuple:
    """(exit code, stdout, stderr) of `byoc <argv>` run in this process."""
    DEBUG["on"] = False  # --debug sets a process-wide flag; an earlier test's must not leak into this one
    return run_cli(capsys, *argv)


def run_json(capsys, *argv: str) -> tuple:
    """(exit code, the one JSON document on stdout, stderr) of `byoc <argv> -o json`."""
    code, out, err = run(capsys, *argv, "-o", "json")
    return code, json.loads(out), err


def error_lines(err: str) -> list:
    """The `error:` / `  fix:` lines of stderr (a refusal prints exactly these two)."""
    return [line for line in err.splitlines() if line.startswith(("error:", "  fix:"))]


def snapshot(sm) -> tuple:
    """Everything a refused update must leave untouched."""
    models, configs = resources(sm)
    endpoints = {e["EndpointName"]: e["EndpointConfigName"] for e in
                 (sm.describe_endpoint(EndpointName=x["EndpointName"]) for x in sm.list_endpoints()["Endpoints"])}
    tags = {name: tags_of(sm, sm.describe_endpoint(EndpointName=name)["EndpointArn"]) for name in endpoints}
    return models, configs, endpoints, tags


def refused(capsys, sm, *argv: str) -> tuple:
    """Run a command that must be refused; returns its (error line, fix line)."""
    before = snapshot(sm)
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  fix: "), err
    assert snapshot(sm) == before
    return lines[0][len("error: "):], lines[1][len("  fix: "):]


def deployment(clients, startup_timeout=None, **kwargs) -> dict:
    """The solution's async endpoint (autoscaling 0..1) and real-time endpoint, plus custom images;
    `startup_timeout` overrides the release's startup window (a broken image fails when it closes)."""
    dep = seed.solution(clients, startup_timeout=startup_timeout, **kwargs)
    region = kwargs.get("region", "us-east-1")
    ecr = clients.client("ecr")
    dep["custom_image"], dep["custom_digest"] = seed.push_image(ecr, "my-sd-webui", "v2", "healthy", region=region)
    dep["other_image"], dep["other_digest"] = seed.push_image(ecr, "my-sd-webui", "v4", "healthy", region=region)
    dep["broken_image"], dep["broken_digest"] = seed.push_image(ecr, "my-sd-webui", "v3-broken", "crash",
                                                                region=region)
    return dep


def resources(sm) -> tuple:
    """(model names, endpoint config names) that exist now."""
    models = {m["ModelName"] for page in sm.get_paginator("list_models").paginate() for m in page["Models"]}
    configs = {c["EndpointConfigName"] for page in sm.get_paginator("list_endpoint_configs").paginate()
               for c in page["EndpointConfigs"]}
    return models, configs


def hold_deployments(sandbox) -> None:
    """Deployments started from now on stay in progress (minutes) until `release_deployments`."""
    sandbox.app.clock.time_scale = 50.0


def release_deployments(sandbox, time_scale: float = 0.05) -> None:
    """Back to the test speed, and everything the sandbox's clock had scheduled is due now."""
    clock = sandbox.app.clock
    clock.time_scale = time_scale
    clock.due_now()


def tags_of(sm, arn: str) -> dict:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def live(sm, endpoint: str) -> dict:
    """DescribeEndpoint once no deployment is in progress."""
    return seed.wait_status(sm, endpoint, ("InService", "Failed"), timeout=60)


def served_digest(sm, endpoint: str) -> str:
    d = sm.describe_endpoint(EndpointName=endpoint)
    return d["ProductionVariants"][0]["DeployedImages"][0]["ResolvedImage"].split("@", 1)[1]


def model_of(sm, config: str) -> dict:
    cfg = sm.describe_endpoint_config(EndpointConfigName=config)
    return sm.describe_model(ModelName=cfg["ProductionVariants"][0]["ModelName"])


def autoscaling(clients, endpoint: str, variant: str = "prod") -> tuple:
    """(scalable target, scaling policies) of a variant, without the fields AWS sets itself."""
    aas = clients.client("application-autoscaling")
    rid = f"endpoint/{endpoint}/variant/{variant}"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[rid])["ScalableTargets"]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
    volatile = ("CreationTime", "PolicyARN", "Alarms", "ScalableTargetARN")
    return ([{k: v for k, v in t.items() if k not in volatile} for t in targets],
            sorted(({k: v for k, v in p.items() if k not in volatile} for p in policies),
                   key=lambda p: p["PolicyName"]))


class Invoker:
    """InvokeEndpoint in a loop on a thread, each call tried once: counts calls, failures and digests served."""

    def __init__(self, sandbox, endpoint: str, region: str = "us-east-1"):
        import boto3

        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=region)
        self.client = session.client("sagemaker-runtime", endpoint_url=sandbox.url,
                                     config=Config(retries={"total_max_attempts": 1}))
        self.endpoint = endpoint
        self.calls = 0
        self.failures: list = []
        self.digests: list = []  # in the order they were served, consecutive repeats collapsed
        self.per_digest: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.calls += 1
            try:
                body = self.client.invoke_endpoint(EndpointName=self.endpoint, Body=b"{}",
                                                   ContentType="application/json")["Body"].read()
                digest = json.loads(body)["digest"]
                self.per_digest[digest] += 1
                if not self.digests or self.digests[-1] != digest:
                    self.digests.append(digest)
            except (ClientError, BotoCoreError) as exc:
                self.failures.append(str(exc))

    def __enter__(self) -> Invoker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# -- the CLI as a subprocess ------------------------------------------------------------------------

def cli_env(sandbox, region: str = "us-east-1") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(sandbox.env(region))
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def spawn(sandbox, *argv: str) -> subprocess.Popen:
    """Start `byoc <argv>` against the sandbox (stdin is not a TTY, so it never asks)."""
    return subprocess.Popen([BYOC, *argv], env=cli_env(sandbox), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02, proc: Optional[subprocess.Popen] = None):
    """Poll until `predicate()` is truthy (fails the test on timeout, or if `proc` exits first)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"byoc exited ({proc.returncode}) before the awaited state:\n{out}\n{err}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)

"""Sandbox figures: start time (target < 2 s) and DescribeEndpoint calls per second through boto3
on one core (target >= 300). Prints the figures; exits 1 if a target is missed.

    .venv/bin/python bench/bench_sandbox.py [--seconds 3]

Start time is measured twice, each in a fresh interpreter: `Sandbox().start()` in-process (imports
included, until the first SageMaker call is answered) and `byoc sandbox serve` as a subprocess (from
spawn until it answers). Throughput is one boto3 client calling DescribeEndpoint in a loop: against
the served process pinned to one CPU (client elsewhere), with client and server processes sharing that
CPU, and with client and sandbox in one process pinned to one CPU (as tests and `byoc demo` run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

START_TARGET = 2.0
RATE_TARGET = 300.0
REGION = "us-east-1"

_IN_PROCESS_RATE = r"""
import os, sys
cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
if cpus:
    os.sched_setaffinity(0, {cpus[0]})
sys.path.insert(0, sys.argv[1])
from bench_sandbox import deploy, describe_rate
from byoc.sandbox import Sandbox
sb = Sandbox(time_scale=0.05).start()
deploy(sb.url)
print(describe_rate(sb.url, float(sys.argv[2])))
sb.stop()
"""

_IN_PROCESS_START = r"""
import time
t0 = time.perf_counter()
from byoc.sandbox import Sandbox, seed
sb = Sandbox(time_scale=0.05).start()
seed.session(sb.url).client("sagemaker").list_endpoints()
print(time.perf_counter() - t0)
sb.stop()
"""


def _one_cpu() -> set:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return {cpus[0]}


def in_process_start() -> float:
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS_START], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def serve(pin: bool = True) -> tuple:
    """Start `byoc sandbox serve` on a free port; returns (process, url, seconds until it answered)."""
    from byoc.sandbox import seed

    cmd = [sys.executable, "-m", "byoc", "sandbox", "serve", "--port", "0", "--time-scale", "0.05"]
    preexec = (lambda: os.sched_setaffinity(0, _one_cpu())) if pin and hasattr(os, "sched_setaffinity") else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=preexec,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = ""
    for line in proc.stdout:
        if line.startswith("export AWS_ENDPOINT_URL="):
            url = line.split("=", 1)[1].strip()
            break
    if not url:
        proc.kill()
        raise SystemExit("byoc sandbox serve did not print its URL")
    seed.session(url).client("sagemaker").list_endpoints()
    return proc, url, time.perf_counter() - t0


def stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def deploy(url: str) -> None:
    from byoc.sandbox import seed

    clients = seed.session(url)
    sm, ecr = clients.client("sagemaker"), clients.client("ecr")
    image, _ = seed.push_image(ecr, "bench", "v1")
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r", PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    seed.wait_status(sm, "ep")


def describe_rate(url: str, seconds: float) -> float:
    import boto3
    from botocore.config import Config

    sm = boto3.client("sagemaker", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    for _ in range(20):  # warm up connections and caches
        sm.describe_endpoint(EndpointName="ep")
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sm.describe_endpoint(EndpointName="ep")
        calls += 1
    return calls / (time.perf_counter() - t0)


def in_process_rate(seconds: float) -> float:
    """DescribeEndpoint calls per second with client and sandbox in one process pinned to one CPU."""
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS_RATE, str(Path(__file__).parent), str(seconds)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

    starts = sorted(in_process_start() for _ in range(3))
    print(f"start, in-process (imports + start + first call, median of 3): {starts[1]:.2f} s "
          f"(target < {START_TARGET:.0f} s)")
    proc, url, served = serve(pin=True)
    try:
        print(f"start, `byoc sandbox serve` until it answers:                   {served:.2f} s")
        deploy(url)
        split = describe_rate(url, args.seconds)
        print(f"DescribeEndpoint/s, served process pinned to one CPU:            {split:.0f} "
              f"(target >= {RATE_TARGET:.0f})")
        if hasattr(os, "sched_setaffinity"):
            saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, _one_cpu())
            try:
                shared = describe_rate(url, args.seconds)
            finally:
                os.sched_setaffinity(0, saved)
            print(f"DescribeEndpoint/s, client and served process on one CPU:       {shared:.0f}")
    finally:
        stop(proc)
    together = in_process_rate(args.seconds)
    print(f"DescribeEndpoint/s, client and Sandbox in one process, one CPU: {together:.0f} "
          f"(target >= {RATE_TARGET:.0f})")
    missed = starts[1] >= START_TARGET or served >= START_TARGET or min(split, together) < RATE_TARGET
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

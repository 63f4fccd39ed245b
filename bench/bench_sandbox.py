"""Sandbox figures: start time (target < 2 s) and DescribeEndpoint calls per second through boto3
on one core (target >= 300). Prints the figures; exits 1 if a target is missed.

    .venv/bin/python bench/bench_sandbox.py [--seconds 3]

Start time is measured in fresh interpreters: `Sandbox().start()` in-process (imports included,
until the first SageMaker call is answered; median of 3) and `byoc sandbox serve` as a subprocess
(from spawn until it answers). Throughput is one boto3 client calling DescribeEndpoint in a loop,
(a) against `byoc sandbox serve` pinned to one CPU, and (b) with client and Sandbox in one process
pinned to one CPU, as tests and `byoc demo` run it. Besides wall-clock figures, CPU figures are
printed (start-up CPU seconds; calls per server CPU-second for (a), per client + server CPU-second
for (b)): what one dedicated core does even when other programs share the machine. The targets are
checked on those.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

START_TARGET = 2.0
RATE_TARGET = 300.0
REGION = "us-east-1"

_IN_PROCESS_START = r"""
import time
t0 = time.perf_counter()
from byoc.sandbox import Sandbox, seed
sb = Sandbox(time_scale=0.05).start()
seed.session(sb.url).client("sagemaker").list_endpoints()
print(time.perf_counter() - t0, time.process_time())
sb.stop()
"""

_IN_PROCESS_RATE = r"""
import json, os, sys
cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
if cpus:
    os.sched_setaffinity(0, {cpus[0]})
sys.path.insert(0, sys.argv[1])
from bench_sandbox import deploy, describe_loop
from byoc.sandbox import Sandbox
sb = Sandbox(time_scale=0.05).start()
deploy(sb.url)
print(json.dumps(describe_loop(sb.url, float(sys.argv[2]))))
sb.stop()
"""


def _one_cpu() -> set:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return {cpus[0]}


def _cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process_start() -> tuple:
    """(wall seconds, CPU seconds) from interpreter start to the first answered call."""
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS_START], capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def serve() -> tuple:
    """Start `byoc sandbox serve` pinned to one CPU; returns (process, url, (wall, CPU) seconds until it
    answered)."""
    from byoc.sandbox import seed

    cmd = [sys.executable, "-m", "byoc", "sandbox", "serve", "--port", "0", "--time-scale", "0.05"]
    preexec = (lambda: os.sched_setaffinity(0, _one_cpu())) if hasattr(os, "sched_setaffinity") else None
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
    return proc, url, (time.perf_counter() - t0, _cpu_seconds(proc.pid))


def deploy(url: str) -> None:
    from byoc.sandbox import seed

    clients = seed.session(url)
    sm, ecr = clients.client("sagemaker"), clients.client("ecr")
    image, _ = seed.push_image(ecr, "bench", "v1")
    sm.create_model(ModelName="m", ExecutionRoleArn=seed.execution_role(clients.client("iam")),
                    PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    seed.wait_status(sm, "ep")


def describe_loop(url: str, seconds: float, server_pid: Optional[int] = None) -> dict:
    """Call DescribeEndpoint for `seconds`: calls, wall seconds, this process's and the server's CPU seconds."""
    import boto3
    from botocore.config import Config

    sm = boto3.client("sagemaker", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
    for _ in range(20):  # warm up connections and caches
        sm.describe_endpoint(EndpointName="ep")
    server0 = _cpu_seconds(server_pid) if server_pid else None
    calls, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        sm.describe_endpoint(EndpointName="ep")
        calls += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server = _cpu_seconds(server_pid) - server0 if server0 is not None else None
    return {"calls": calls, "wall": wall, "cpu": cpu, "server_cpu": server}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    args = parser.parse_args()
    if hasattr(os, "getloadavg"):
        print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    start = sorted(in_process_start() for _ in range(3))[1]
    print(f"start, Sandbox().start() in a fresh interpreter (median of 3): {start[0]:.2f} s wall, "
          f"{start[1]:.2f} s CPU (target < {START_TARGET:.0f} s)")
    proc, url, served = serve()
    try:
        cpu = f"{served[1]:.2f} s CPU" if served[1] is not None else "CPU not measured"
        print(f"start, `byoc sandbox serve` until it answers:                 {served[0]:.2f} s wall, {cpu}")
        deploy(url)
        a = describe_loop(url, args.seconds, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    a_core = a["calls"] / a["server_cpu"] if a["server_cpu"] else a["calls"] / a["wall"]
    print(f"(a) served process on one CPU:    {a['calls'] / a['wall']:4.0f} DescribeEndpoint/s wall, "
          f"{a_core:4.0f} per server CPU-second (target >= {RATE_TARGET:.0f})")
    out = subprocess.run([sys.executable, "-c", _IN_PROCESS_RATE, str(Path(__file__).parent), str(args.seconds)],
                         capture_output=True, text=True, check=True)
    b = json.loads(out.stdout.strip().splitlines()[-1])
    b_core = b["calls"] / b["cpu"]
    print(f"(b) client + Sandbox on one CPU:  {b['calls'] / b['wall']:4.0f} DescribeEndpoint/s wall, "
          f"{b_core:4.0f} per CPU-second (target >= {RATE_TARGET:.0f})")
    started = max(start[1], served[1] if served[1] is not None else served[0])
    missed = started >= START_TARGET or min(a_core, b_core) < RATE_TARGET
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

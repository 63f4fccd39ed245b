"""Fleet update benchmark: 50 endpoints in the sandbox, concurrency 10 versus 1.

Prints wall time, requests per endpoint (byoc's API calls, and every request the sandbox answered,
throttled ones included), throttled calls retried, and the speed-up as a share of the ideal
(sequential time / concurrency) while the sandbox throttles every SageMaker operation to 10
requests per second (AWS rate-limits each API).
Run: .venv/bin/python bench/bench_fleet.py [--endpoints 50] [--time-scale 0.5] [--operations 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from byoc.aws.client import Aws  # noqa: E402
from byoc.deploy import fleet  # noqa: E402
from byoc.sandbox import seed  # noqa: E402
from support.sandbox import endpoints  # noqa: E402


def _control(url: str, method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


@contextmanager
def sandbox_process(time_scale: float):
    """`byoc sandbox serve` in its own process (as a user runs it), so client and server do not share a core's GIL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "byoc", "sandbox", "serve", "--port", str(port), "--time-scale",
                             str(time_scale)], stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    env = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
    try:
        for line in proc.stdout:
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                os.environ[key] = value
                if key == "AWS_DEFAULT_REGION":
                    break
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(url: str, image: str, names: list, concurrency: int) -> dict:
    aws = Aws()  # one run of `byoc fleet update`: its caches are the fleet's
    before = _control(url, "GET", "/_sandbox/health")["requests"]
    start = time.perf_counter()
    planned = fleet.plan(aws, image, names, concurrency=concurrency)
    fleet.run(aws, planned, concurrency=concurrency)
    wall = time.perf_counter() - start
    answered = _control(url, "GET", "/_sandbox/health")["requests"] - before - 1
    assert planned.summary() == {"updated": len(names)}, planned.summary()
    return {"concurrency": concurrency, "wall_seconds": round(wall, 1), "api_calls": sum(aws.calls.values()),
            "answered": answered, "throttled_retried": aws.throttled + aws.retried,
            "per_operation": dict(aws.calls.most_common())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--throttle", type=float, default=10.0)
    parser.add_argument("--operations", type=int, default=8, help="how many of the busiest operations to print")
    args = parser.parse_args()
    with sandbox_process(args.time_scale) as url:
        clients = seed.session(url)
        sm, ecr = clients.client("sagemaker"), clients.client("ecr")
        seed.execution_role(clients.client("iam"))  # CreateModel assumes the role (the sandbox checks it exists)
        names = endpoints(sm, ecr, [f"bench-{i:03d}" for i in range(args.endpoints)], timeout=300)
        images = [seed.push_image(ecr, "bench", tag, "healthy")[0] for tag in ("c1", "c10")]
        _control(url, "POST", "/_sandbox/faults", {"service": "sagemaker", "throttle_rps": args.throttle})
        serial = run(url, images[0], names, 1)
        parallel = run(url, images[1], names, 10)
        faults = _control(url, "GET", "/_sandbox/faults")
    print(f"fleet of {args.endpoints} endpoints, time scale {args.time_scale}, SageMaker throttled to "
          f"{args.throttle:g} req/s per operation")
    for r in (serial, parallel):
        print(f"  concurrency {r['concurrency']:>2}: {r['wall_seconds']:>7.1f} s wall, {r['api_calls']} API calls "
              f"({r['api_calls'] / args.endpoints:.1f} per endpoint; {r['answered'] / args.endpoints:.1f} requests "
              f"answered per endpoint), {r['throttled_retried']} throttled calls retried")
    busiest = ", ".join(f"{op} {n / args.endpoints:.1f}" for op, n in list(parallel["per_operation"].items())[:args.operations])
    print(f"  busiest operations at concurrency 10 (calls per endpoint): {busiest}")
    speedup = serial["wall_seconds"] / parallel["wall_seconds"]
    print(f"  speed-up at concurrency 10: {speedup:.1f}x, {speedup / 10:.0%} of the ideal (sequential time / 10); "
          f"sandbox refused {faults['throttled']} calls in all, none failed an update")


if __name__ == "__main__":
    main()

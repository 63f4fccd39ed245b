"""Update benchmark on the sandbox: blue/green versus recreate.

1. Service during an update: a client invokes the real-time endpoint continuously (each call tried
   once) through a good update and a failing one, per strategy: failed invocations and seconds
   without service, in sandbox seconds and in the SageMaker seconds they stand for (the sandbox's
   timing model: a fleet takes 180 s to provision, a container 60 s to boot, a deletion 60 s).
2. Cost of one blue/green update: byoc's API calls (Aws.calls) by operation, status polls
   (DescribeEndpoint while watching) apart, and the client's CPU time (no invoking client then).
The sandbox runs in its own process so that its CPU time is not the client's.
Run: .venv/bin/python bench/bench_update.py [--time-scale 0.2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fleet import sandbox_process  # noqa: E402
from byoc.aws.client import Aws  # noqa: E402
from byoc.deploy import watch  # noqa: E402
from byoc.deploy.apply import apply  # noqa: E402
from byoc.deploy.plan import plan_update  # noqa: E402
from byoc.sandbox import seed  # noqa: E402
from byoc.sandbox.clock import SECONDS_PER_SIMULATED  # noqa: E402

ENDPOINT = "infer-endpoint-f9e8d7c"  # the real-time endpoint of seed.solution()


class Invoker:
    """InvokeEndpoint in a loop, each call tried once; keeps (time, succeeded) of every call."""

    def __init__(self, url: str):
        import boto3
        from botocore.config import Config

        self.client = boto3.session.Session().client("sagemaker-runtime", endpoint_url=url,
                                                     config=Config(retries={"total_max_attempts": 1}))
        self.timeline: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not self._stop.is_set():
            try:
                self.client.invoke_endpoint(EndpointName=ENDPOINT, Body=b"{}", ContentType="application/json")
                ok = True
            except (ClientError, BotoCoreError):
                ok = False
            self.timeline.append((time.monotonic(), ok))

    def __enter__(self) -> Invoker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def outage(self) -> tuple:
        """(failed calls, seconds from each first failed call to the next successful one)."""
        failed = sum(1 for _, ok in self.timeline if not ok)
        down, since = 0.0, None
        for t, ok in self.timeline:
            if not ok and since is None:
                since = t
            elif ok and since is not None:
                down, since = down + t - since, None
        if since is not None:
            down += self.timeline[-1][0] - since
        return failed, down


def reset(url: str) -> dict:
    urllib.request.urlopen(urllib.request.Request(url + "/_sandbox/reset", method="POST", data=b"{}")).read()
    clients = seed.session(url)
    dep = seed.solution(clients)
    ecr = clients.client("ecr")
    dep["good"], _ = seed.push_image(ecr, "my-sd-webui", "v2", "healthy")
    dep["broken"], _ = seed.push_image(ecr, "my-sd-webui", "v3-broken", "crash")
    return dep


def service_during(url: str, strategy: str, image_key: str) -> dict:
    dep = reset(url)
    aws = Aws()
    with Invoker(url) as inv:
        while len(inv.timeline) < 20:
            time.sleep(0.01)
        result = apply(aws, plan_update(aws, ENDPOINT, dep[image_key], strategy=strategy), follow_logs=False)
        after = len(inv.timeline)
        while len(inv.timeline) < after + 20:
            time.sleep(0.01)
    failed, down = inv.outage()
    return {"strategy": strategy, "image": image_key, "result": result.result, "calls": len(inv.timeline),
            "failed": failed, "down": down, "reported": result.downtime_seconds}


def cost_of_one_update(url: str) -> dict:
    dep = reset(url)
    aws = Aws()
    aws.identity()  # one GetCallerIdentity per process, not per update
    polls = Counter()
    until_settled = watch.until_settled

    def counted(aws_, *args, **kwargs):
        before = aws_.calls["sagemaker:DescribeEndpoint"]
        try:
            return until_settled(aws_, *args, **kwargs)
        finally:
            polls["sagemaker:DescribeEndpoint"] += aws_.calls["sagemaker:DescribeEndpoint"] - before

    watch.until_settled = counted
    try:
        aws.calls.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        result = apply(aws, plan_update(aws, ENDPOINT, dep["good"]), follow_logs=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        watch.until_settled = until_settled
    assert result.result == "updated", result
    calls = Counter(aws.calls)
    calls.subtract(polls)
    return {"calls": +calls, "polls": polls["sagemaker:DescribeEndpoint"], "cpu": cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    simulated = 1.0 / (SECONDS_PER_SIMULATED * args.time_scale)  # SageMaker seconds per sandbox second
    with sandbox_process(args.time_scale) as url:
        rows = [service_during(url, s, i) for s in ("blue-green", "recreate") for i in ("good", "broken")]
        costs = [cost_of_one_update(url) for _ in range(args.repeat)]
    print(f"update benchmark, sandbox time scale {args.time_scale} (1 sandbox s = {simulated:.0f} SageMaker s)")
    print("service while a client invokes continuously:")
    for r in rows:
        reported = f", byoc reported {r['reported']:.2f} s" if r["reported"] is not None else ""
        print(f"  {r['strategy']:<10} {r['image']:<6} -> {r['result']:<7}: {r['failed']:>4} of {r['calls']:>5} "
              f"invocations failed, {r['down']:.2f} s without service (~{r['down'] * simulated:.0f} s on SageMaker)"
              f"{reported}")
    calls = costs[-1]["calls"]
    print(f"one blue/green update ({args.repeat} runs): {sum(calls.values())} API calls besides "
          f"{min(c['polls'] for c in costs)}-{max(c['polls'] for c in costs)} status polls:")
    print("  " + json.dumps(dict(sorted(calls.items()))))
    cpu = sorted(c["cpu"] for c in costs)
    wall = sorted(c["wall"] for c in costs)
    print(f"  client CPU time per update: median {cpu[len(cpu) // 2] * 1000:.0f} ms (min {cpu[0] * 1000:.0f}, "
          f"max {cpu[-1] * 1000:.0f}); wall time median {wall[len(wall) // 2]:.2f} s")


if __name__ == "__main__":
    main()

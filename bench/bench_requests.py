"""Requests per update: what one `byoc update --keep 3` costs, alone in its region and beside others.

Each update is the CLI as a user runs it (`byoc update ENDPOINT IMAGE --keep 3 --yes`, live log
lines followed), in this process; the sandbox runs in its own. The figure is every request the
sandbox answered during the command (its /_sandbox/health counter): planning, status polls, log
reads, tags and the sweep included. Revisions 1 to 8 of one endpoint, each on a new image, in a
region that holds 0, 100 and 1,000 other endpoints (InService, each with its own model and config).
Run: .venv/bin/python bench/bench_requests.py [--time-scale 0.2] [--others 0,100,1000] [--revisions 8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fleet import sandbox_process  # noqa: E402
from byoc.aws import client as aws_client  # noqa: E402
from byoc.cli.main import main as byoc_main  # noqa: E402
from byoc.deploy import sweep  # noqa: E402
from byoc.sandbox import seed  # noqa: E402

ENDPOINT = "infer-endpoint-f9e8d7c"  # the real-time endpoint of seed.solution()
ROLE = f"arn:aws:iam::{seed.ACCOUNT}:role/ESD-createEndpoint-Role"


def _control(url: str, method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


def answered(url: str) -> int:
    """Requests the sandbox answered so far, this health request excluded."""
    return _control(url, "GET", "/_sandbox/health")["requests"] - 1


def populate(url: str, others: int) -> list:
    """The solution's endpoints, plus `others` endpoints on ml.m5.large; returns pushed images."""
    _control(url, "POST", "/_sandbox/reset", {})
    _control(url, "POST", "/_sandbox/quotas", {"instance_type": "ml.m5.large", "value": others + 10})
    clients = seed.session(url)
    seed.solution(clients)
    sm, ecr = clients.client("sagemaker"), clients.client("ecr")
    other_image, _ = seed.push_image(ecr, "other", "v1", "healthy")
    names = [f"other-{i:04d}" for i in range(others)]
    for name in names:
        sm.create_model(ModelName=f"{name}-m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": other_image})
        sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"{name}-m", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    for name in names:
        seed.wait_status(sm, name, timeout=600)
    # A region's other endpoints were not all changed in the last seconds: wait out the sweep's clock
    # margin, so that they are older than the revisions the sweep considers (as in a real region).
    time.sleep(sweep.CLOCK_MARGIN.total_seconds() + 1)
    return [seed.push_image(ecr, "my-sd-webui", f"r{n}", "healthy")[0] for n in range(1, 9)]


def one_update(url: str, image: str, keep: int) -> tuple:
    """(requests the sandbox answered, byoc's calls by operation, what it swept) of one `byoc update`."""
    made = []
    original = aws_client.Aws.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    aws_client.Aws.__init__ = init
    before = answered(url)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                byoc_main(["update", ENDPOINT, image, "--keep", str(keep), "--yes", "-o", "json"])
            except SystemExit as exc:
                code = exc.code
    finally:
        aws_client.Aws.__init__ = original
    after = answered(url) - 1  # the `before` request
    result = json.loads(out.getvalue())
    assert code == 0 and result["result"] == "updated", (code, out.getvalue(), err.getvalue()[-2000:])
    calls = Counter()
    for aws in made:
        calls.update(aws.calls)
    return after - before, calls, result["swept"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--others", default="0,100,1000")
    parser.add_argument("--revisions", type=int, default=8)
    parser.add_argument("--keep", type=int, default=3)
    args = parser.parse_args()
    rows, last, swept = {}, {}, {}
    with sandbox_process(args.time_scale) as url:
        for others in [int(n) for n in args.others.split(",")]:
            started = time.perf_counter()
            images = populate(url, others)
            setup = time.perf_counter() - started
            runs = [one_update(url, images[(n - 1) % len(images)], args.keep) for n in range(1, args.revisions + 1)]
            rows[others], last[others] = [r[0] for r in runs], runs[-1][1]
            swept[others] = [len(r[2]) for r in runs]
            print(f"  (beside {others}: set up in {setup:.0f} s)", file=sys.stderr)
    print(f"requests per `byoc update --keep {args.keep}` (everything the sandbox answered: planning, polls, "
          f"log reads, tags, sweep), time scale {args.time_scale}")
    print("  other endpoints | " + " ".join(f"r{n:<4}" for n in range(1, args.revisions + 1)) + " | max  | vs alone")
    alone = max(rows.get(0, [0])) or None
    for others, counts in rows.items():
        ratio = f"{max(counts) / alone:.2f}x" if alone else "-"
        print(f"  {others:>15} | " + " ".join(f"{c:<5}" for c in counts) + f" | {max(counts):<4} | {ratio}")
    for others, counts in swept.items():
        print(f"  beside {others}: resources swept per update {counts}")
    for others, calls in last.items():
        print(f"  r{args.revisions} beside {others}, byoc's calls by operation: {json.dumps(dict(sorted(calls.items())))}")


if __name__ == "__main__":
    main()
